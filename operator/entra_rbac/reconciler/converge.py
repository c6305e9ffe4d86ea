"""Converging from a verified directory read: desired, plan, the revocation guard, apply, cleanup.

`converge` computes the desired bindings from Entra's answer, plans against the bindings at the
resource's targets, keeps them exactly when a binding would be too large or the plan is a
revocation to hold, and otherwise carries the plan out, then deletes the strays (make-before-
break). `targets` is where a spec grants, whoever the subjects: what splits the marked bindings
into the resource's own and strays (`split_owned`). It must not read Entra (its caller did) or
import kopf.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from entra_rbac.core.desired import (
    DesiredState,
    NamespaceInfo,
    Owner,
    RoleInventory,
    compute_desired,
    shards_in_use,
)
from entra_rbac.core.guardrails import ClusterView
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.plan import (
    ObservedBinding,
    OwnedBindings,
    Plan,
    Verb,
    cleanup_plan,
    make_plan,
)
from entra_rbac.core.problems import Problem, Reason
from entra_rbac.core.size import oversized
from entra_rbac.core.status import shards_written
from entra_rbac.core.subjects import SubjectSet, build_subjects
from entra_rbac.core.windows import lapsed_keys
from entra_rbac.logsetup import fields
from entra_rbac.reconciler import ownership
from entra_rbac.reconciler.apply import ApplyResult, apply_plan
from entra_rbac.reconciler.conclude import after, conclude
from entra_rbac.reconciler.context import ReconcileContext
from entra_rbac.reconciler.expiry import remove_lapsed
from entra_rbac.reconciler.guard import inventory
from entra_rbac.reconciler.hold import HoldPolicy, revocation_hold
from entra_rbac.reconciler.memory import ResourceRecord
from entra_rbac.reconciler.outcome import Outcome
from entra_rbac.reconciler.report import Report, Resource
from entra_rbac.reconciler.resolve import DirectoryOutcome, lookups_for

log = logging.getLogger("entra_rbac.reconcile")


async def converge(
    resource: Resource,
    spec: EntraGroupBindingSpec,
    owned: OwnedBindings,
    read: DirectoryOutcome,
    view: ClusterView,
    now: datetime,
    ctx: ReconcileContext,
) -> Outcome:
    """Plan from a verified read and carry the plan out, unless it is a revocation to hold.

    Only the bindings at the targets (`owned.ours`) are planned, guarded and reported; the strays
    are deleted afterwards, never during a hold, and never change status (docs/design.md, Ownership).
    """
    owner, record = resource.owner, ctx.memory.of(resource.owner.uid)
    subjects = build_subjects(spec.subjects, read.resolutions or [], read.members, users=ctx.subject_lists)
    written = own_shards(record, resource.status)
    desired = _desired(owner, spec, subjects, view, now, ctx, shards_now=written)
    wanted = shards_in_use(owner.name, desired.bindings)
    if wanted > written:
        # Growing: the shards the split asks for now are the resource's names too (a binding
        # standing at one is planned, patched to what the resource asks for, like any target).
        grants = targets(owner, spec, list(view.namespaces), ctx)
        owned = ownership.own([*owned.ours, *owned.strays], owner.uid, grants, written, wanted)
    observed = list(owned.ours)
    plan = make_plan(desired, [*observed, *await _known_foreign(owner, desired, record, ctx)])
    problems: list[Problem] = [*desired.problems, *plan.problems()]
    too_large = oversized(plan, ctx.policy.sharding.max_bytes, ctx.policy.sharding.max_shards)
    if too_large is not None:
        return await _too_large(resource, spec, read, observed, [*problems, too_large], now, ctx)
    # An expiry is never held back: the guard weighs only what the directory changed.
    lapsed = lapsed_keys(spec, owner.name, now, (o.key for o in observed))
    hold = revocation_hold(
        owner,
        [o for o in observed if o.key not in lapsed],
        Plan(tuple(a for a in plan.actions if a.key not in lapsed), plan.conflicts),
        resource.status,
        resource.annotations,
        now=now,
        policy=_hold_policy(ctx),
    )
    if hold is not None:
        # The next read must come from Entra, not from the cache (this resource's groups only).
        ctx.directory.invalidate(lookups_for(spec.groups, resource.status))
        problems.append(Problem(Reason.REVOCATION_HELD, hold.message))
        kept = await remove_lapsed(owner, spec, observed, now, ctx)
        report = replace(Report.held(spec, read, kept.left, problems, hold), written=kept.deleted)
        return await conclude(resource, report, now, ctx, retry=hold.message)
    applied = await apply_plan(ctx.kube, owner, plan, desired.group_ids, turns=ctx.writers)
    record.foreign_names = frozenset({c.key for c in plan.conflicts} | set(applied.conflicts))
    if not applied.retry:
        record.shards = shards_in_use(owner.name, desired.bindings)
    # Make-before-break holds for strays too: an old binding left by a role change goes only
    # once its replacement exists, a shard above the count once its members are granted elsewhere.
    cleanup = cleanup_plan(owned.strays, desired.frozen_namespaces)
    swept = await _clean_up(owner, cleanup, desired, ctx) if cleanup and _grants_done(plan, applied) else None
    cleaned = not cleanup or (swept is not None and not swept.retry and not swept.problems)
    report = Report.applied(
        spec,
        read,
        after(observed, applied),
        [*problems, *applied.problems],
        pending=applied.retry,
        written=[*applied.done, *(swept.done if swept else ())],
        groups=desired.group_ids,
    )
    retry = "some writes must be retried" if applied.retry or not cleaned else None
    return await conclude(resource, report, now, ctx, retry=retry)


def own_shards(record: ResourceRecord, status: Mapping[str, Any]) -> int:
    """How many shards the operator wrote the resource's bindings as: the count this process last
    wrote (`ResourceRecord.shards`) or the one status records (`summary.shards`, which a restart
    keeps), the higher. Both are the operator's own writes, never shard names observed (anyone's,
    `ownership.own`). It bounds the shards counted as the resource's and is the count in use for
    the split's hysteresis (`shards_now`)."""
    return max(record.shards or 1, shards_written(status))


async def _too_large(
    resource: Resource,
    spec: EntraGroupBindingSpec,
    read: DirectoryOutcome,
    observed: list[ObservedBinding],
    problems: list[Problem],
    now: datetime,
    ctx: ReconcileContext,
) -> Outcome:
    """A binding the plan would write is too large to store: none of the plan is carried out (no
    resource half-applied), its bindings are kept exactly; an expiry still happens."""
    log.warning(
        "Kept bindings: a binding would be too large to write",
        extra=fields(resource=resource.owner.name, problem=problems[-1].message),
    )
    kept = await remove_lapsed(resource.owner, spec, observed, now, ctx)
    report = replace(Report.applied(spec, read, kept.left, problems, pending=False), written=kept.deleted)
    return await conclude(resource, report, now, ctx)


def _grants_done(plan: Plan, applied: ApplyResult) -> bool:
    """Whether every write of the plan that grants a subject (a create, a replace, a patch adding
    one) was done: the rule of the plan's own deletes (`reconciler.apply`), since a stray may be
    the operator's shard above the count (`ownership.own`) whose members a patch moves elsewhere."""
    done = {(a.verb, a.key) for a in applied.done}
    return all(
        (a.verb, a.key) in done for a in plan.actions if a.verb in (Verb.CREATE, Verb.REPLACE) or a.added
    )


async def _clean_up(owner: Owner, cleanup: Plan, desired: DesiredState, ctx: ReconcileContext) -> ApplyResult:
    """Delete the strays: bindings with this resource's marks outside its targets. Each delete is
    logged and counted in the reconcile's audit Event like any other; a failure is logged and
    retried, but never reported in status: what is outside the targets never changes status."""
    log.info(
        "Deleting bindings outside the resource's targets",
        extra=fields(
            resource=owner.name, bindings=",".join(f"{a.namespace or ''}/{a.name}" for a in cleanup.actions)
        ),
    )
    result = await apply_plan(ctx.kube, owner, cleanup, desired.group_ids, turns=ctx.writers)
    for problem in result.problems:
        log.warning(
            "Failed to delete a binding outside the targets",
            extra=fields(resource=owner.name, error=problem.message),
        )
    return result


def _hold_policy(ctx: ReconcileContext) -> HoldPolicy:
    policy = ctx.policy
    return HoldPolicy(
        max_share=policy.revocation_guard_share,
        min_count=policy.revocation_guard_min,
        retry_delay=policy.retry_delay,
    )


async def _known_foreign(
    owner: Owner, desired: DesiredState, record: ResourceRecord, ctx: ReconcileContext
) -> list[ObservedBinding]:
    """The foreign objects still holding names this resource wants (known from earlier 409s)."""
    wanted = {b.key for b in desired.bindings}
    found = []
    for key in sorted(record.foreign_names & wanted):
        current = await ctx.kube.get_binding(key.kind, key.namespace_or_none, key.name)
        if current is not None:
            observed = ObservedBinding.from_manifest(current)
            if not observed.owned_by(owner.uid):
                found.append(observed)
    return found


def targets(
    owner: Owner, spec: EntraGroupBindingSpec, namespaces: list[NamespaceInfo], ctx: ReconcileContext
) -> DesiredState:
    """Where the spec grants what (`reconciler.ownership.targets`: the rule plan, explain and
    report apply too)."""
    return ownership.targets(owner, spec, namespaces, ctx.policy)


def _compute(
    owner: Owner,
    spec: EntraGroupBindingSpec,
    subjects: SubjectSet,
    namespaces: list[NamespaceInfo],
    roles: RoleInventory | None,
    ctx: ReconcileContext,
    *,
    now: datetime | None = None,
    shards_now: int = 1,
) -> DesiredState:
    return compute_desired(
        owner,
        spec,
        subjects,
        namespaces,
        reserved_namespaces=ctx.policy.reserved_namespaces,
        allowed_roles=ctx.policy.allowed_roles,
        existing_roles=roles,
        now=now,
        sharding=ctx.policy.sharding,
        shards_now=shards_now,
    )


def _desired(
    owner: Owner,
    spec: EntraGroupBindingSpec,
    subjects: SubjectSet,
    view: ClusterView,
    now: datetime,
    ctx: ReconcileContext,
    *,
    shards_now: int,
) -> DesiredState:
    """The desired bindings now (grants outside their window left out), with missing roles
    reported (from the roles `read_cluster` read), sharded from the `shards_now` shards written."""
    return _compute(
        owner, spec, subjects, list(view.namespaces), inventory(view), ctx, now=now, shards_now=shards_now
    )
