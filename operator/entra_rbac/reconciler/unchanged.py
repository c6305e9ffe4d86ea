"""An unchanged resource is cheap: a reconcile whose inputs are all as they were concludes as before.

Holds `Inputs` (everything a reconcile decides from besides Entra's answer and the clock),
`Settled` (a clean conclusion and what it was drawn from) and `replay`. The reconcile is a
function of its inputs, so when a resource concluded `Reconciled` with nothing pending, and the
resource (spec, status, annotations, generation), its bindings, the namespaces and roles, the
policy, and Entra's answer read now are all equal to that conclusion's, the same reconcile would
plan nothing, write nothing and post nothing: `replay` says so without computing it again
(issue 17 point 5; docs/design.md, Triggers). The directory is still read every time (the cache,
or Graph when the cache has expired or a delta change forgot the group): a refresh still
verifies Entra, and any difference in any input runs the whole reconcile, which decides. Only
clock-free conclusions are kept: no time-bound window still to come, no maxStaleness, no
problem (so no Warning series to count up), no pending deletion, no foreign name, no hold. It
must not decide anything: a miss means "reconcile", never a different answer.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from entra_rbac.core.desired import Owner
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.problems import Reason
from entra_rbac.reconciler.context import Policy, ReconcileContext
from entra_rbac.reconciler.memory import ResourceRecord
from entra_rbac.reconciler.outcome import Outcome
from entra_rbac.reconciler.resolve import DirectoryOutcome, read_directory


@dataclass(frozen=True)
class Inputs:
    """What a reconcile reads from the cluster and the operator, compared by value."""

    owner: Owner  # name, uid and generation
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    bindings: Sequence[Mapping[str, Any]]  # every binding labelled for the owner, as listed
    view: Hashable  # the namespaces, Roles and ClusterRoles (`Cluster.view_version`)
    policy: Policy  # the guardrails in force included


@dataclass(frozen=True)
class Settled:
    """A clean conclusion: from `inputs` and the directory answer `read`, `reason`."""

    inputs: Inputs
    spec: EntraGroupBindingSpec
    read: DirectoryOutcome
    reason: str


def inputs_of(
    owner: Owner,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    annotations: Mapping[str, str],
    bindings: Sequence[Mapping[str, Any]],
    ctx: ReconcileContext,
) -> Inputs | None:
    """The inputs, or None when they cannot be known to be unchanged (no synced cache, or the
    policy's maxStaleness makes the clock an input)."""
    view = ctx.kube.view_version()
    if view is None or ctx.policy.max_staleness is not None:
        return None
    return Inputs(owner, spec, status, annotations, bindings, view, ctx.policy)


def _clean(record: ResourceRecord) -> bool:
    """Nothing in memory that the next reconcile must act on or count."""
    return not (record.pending_deletions or record.foreign_names or record.warnings)


def settled(
    inputs: Inputs | None,
    spec: EntraGroupBindingSpec,
    read: DirectoryOutcome,
    outcome: Outcome,
    record: ResourceRecord,
) -> Settled | None:
    """What to remember of a conclusion: only a clean, clock-free `Reconciled`."""
    clean = (
        inputs is not None
        and read.error is None
        and outcome.reason == Reason.RECONCILED.value
        and outcome.requeue_after is None
        and outcome.next_change is None
        and _clean(record)
    )
    return Settled(inputs, spec, read, outcome.reason) if clean and inputs is not None else None


def same_answer(read: DirectoryOutcome, before: DirectoryOutcome) -> bool:
    """Entra said exactly the same (the shared member tuples compare element by identity first)."""
    return read.error is None and read.resolutions == before.resolutions and read.members == before.members


async def replay(
    inputs: Inputs | None, record: ResourceRecord, ctx: ReconcileContext, now: datetime
) -> tuple[Outcome | None, DirectoryOutcome | None]:
    """(the outcome, None) when every input and Entra's answer equal the last clean conclusion;
    otherwise (None, the directory read made, if one was) for the whole reconcile to decide with."""
    memo = record.settled
    if inputs is None or memo is None or memo.inputs != inputs or not _clean(record):
        return None, None
    read = await read_directory(ctx.directory, memo.spec.groups, inputs.status, memo.spec.subjects.kind)
    if not same_answer(read, memo.read):
        return None, read
    ctx.metrics.directory_verified()
    record.verified_at = now
    return Outcome(memo.reason), read
