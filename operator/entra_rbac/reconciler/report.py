"""The status phase of a reconcile: one `Report` value in, the status written only if it changed.

Holds `Resource` (the EntraGroupBinding as read at the start of a reconcile), `Report` (what the
reconcile found, built by exactly one branch through its constructor) and `write_status`. The
status itself is built by the pure `core.status.build_status`; this module only feeds it and
writes the result. It must not decide anything about bindings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from entra_rbac.constants import LAST_HANDLED_STATUS_KEY
from entra_rbac.core.desired import Owner
from entra_rbac.core.models import EntraGroupBindingSpec, GrantState, SubjectKind
from entra_rbac.core.plan import Action, ObservedBinding
from entra_rbac.core.problems import Problem
from entra_rbac.core.status import build_status, status_changed
from entra_rbac.core.subjects import bound_member_counts
from entra_rbac.reconciler.audit import audit_transitions
from entra_rbac.reconciler.context import ReconcileContext
from entra_rbac.reconciler.hold import HOLD_KEY, RevocationHold
from entra_rbac.reconciler.resolve import DirectoryOutcome

# With maxStaleness set, status's lastDirectorySync is kept within this share of it of the last
# verified read; after a restart (memory empty) the revocation waits that much longer, so it is
# never earlier than promised (docs/design.md, Directory semantics).
STALENESS_SLACK = 0.25


@dataclass(frozen=True)
class Resource:
    """The EntraGroupBinding as it is now (re-read at the start of every reconcile); `stamp`,
    the last-handled configuration of the kopf handling this reconcile serves, if any."""

    owner: Owner
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    stamp: str | None = None

    @classmethod
    def from_manifest(cls, obj: Mapping[str, Any], *, stamp: str | None = None) -> Resource:
        meta = obj.get("metadata") or {}
        return cls(
            owner=Owner.from_manifest(obj),
            spec=obj.get("spec") or {},
            status=obj.get("status") or {},
            annotations=meta.get("annotations") or {},
            stamp=stamp,
        )


class Phase(StrEnum):
    """Which branch of the reconcile a report comes from."""

    INVALID = "Invalid"  # the spec does not parse: nothing was read or written
    REFUSED = "Refused"  # outside the guardrails: its bindings revoked, Entra not read
    SUSPENDED = "Suspended"  # spec.suspend: nothing was read or written
    DIRECTORY_FAILED = "DirectoryFailed"  # fail-static (or fail-closed past maxStaleness)
    HELD = "Held"  # a verified read asked for a mass revocation: nothing was written
    UNCONFIRMED = "Unconfirmed"  # a group reads as deleted, not yet confirmed: nothing was written
    APPLIED = "Applied"  # a verified read, and the plan carried out
    PENDING = "Pending"  # as APPLIED, but some writes must be retried
    EXPIRED = "Expired"  # every time-bound grant has ended: bindings removed, Entra not read


@dataclass(frozen=True)
class Report:
    """What one reconcile found, everything status is built from. Build it with a constructor.

    `bindings` are the owned bindings as they now stand; `read` is the verified directory read
    (None when Entra was not read, or failed); `hold` is the revocation held by this reconcile;
    `written` the writes that took effect and `groups` the Entra ids their subjects come from
    (for the audit Event).
    """

    phase: Phase
    spec: EntraGroupBindingSpec | None
    bindings: Sequence[ObservedBinding]
    problems: Sequence[Problem] = ()
    read: DirectoryOutcome | None = None
    hold: RevocationHold | None = None
    written: Sequence[Action] = ()
    groups: Sequence[str] = ()
    reconciling: bool = False  # writes remain to be retried (besides Phase.PENDING)

    @property
    def decided(self) -> bool:
        """Whether every problem was looked for: not when Entra could not be read, or a deletion
        waits for confirmation (then only that one is known, and the others stand as they were)."""
        return self.phase not in (Phase.DIRECTORY_FAILED, Phase.UNCONFIRMED)

    @classmethod
    def invalid(cls, problems: Sequence[Problem]) -> Report:
        """The spec does not parse: no binding is attributed to the resource (status keeps the
        previous record of its bindings, `core.status.build_status`)."""
        return cls(Phase.INVALID, None, (), problems)

    @classmethod
    def refused(
        cls,
        spec: EntraGroupBindingSpec,
        bindings: Sequence[ObservedBinding],
        problems: Sequence[Problem],
        *,
        pending: bool,
        written: Sequence[Action] = (),
        groups: Sequence[str] = (),
    ) -> Report:
        """Outside the guardrails: `written` are the revocations."""
        return cls(
            Phase.REFUSED, spec, bindings, problems, written=written, groups=groups, reconciling=pending
        )

    @classmethod
    def suspended(cls, spec: EntraGroupBindingSpec, bindings: Sequence[ObservedBinding]) -> Report:
        return cls(Phase.SUSPENDED, spec, bindings)

    @classmethod
    def directory_failed(
        cls,
        spec: EntraGroupBindingSpec,
        bindings: Sequence[ObservedBinding],
        problem: Problem,
        written: Sequence[Action] = (),
    ) -> Report:
        """Fail-static (nothing written), or fail-closed past maxStaleness (`written`: the revocations)."""
        return cls(Phase.DIRECTORY_FAILED, spec, bindings, (problem,), written=written)

    @classmethod
    def unconfirmed(
        cls, spec: EntraGroupBindingSpec, bindings: Sequence[ObservedBinding], problem: Problem
    ) -> Report:
        """A deletion seen but not confirmed: kept exactly, groups `Unverified` (nothing decided)."""
        return cls(Phase.UNCONFIRMED, spec, bindings, (problem,))

    @classmethod
    def held(
        cls,
        spec: EntraGroupBindingSpec,
        read: DirectoryOutcome,
        bindings: Sequence[ObservedBinding],
        problems: Sequence[Problem],
        hold: RevocationHold,
    ) -> Report:
        return cls(Phase.HELD, spec, bindings, problems, read, hold)

    @classmethod
    def applied(
        cls,
        spec: EntraGroupBindingSpec,
        read: DirectoryOutcome,
        bindings: Sequence[ObservedBinding],
        problems: Sequence[Problem],
        *,
        pending: bool,
        written: Sequence[Action] = (),
        groups: Sequence[str] = (),
    ) -> Report:
        phase = Phase.PENDING if pending else Phase.APPLIED
        return cls(phase, spec, bindings, problems, read, written=written, groups=groups)

    @classmethod
    def expired(cls, spec: EntraGroupBindingSpec, bindings: Sequence[ObservedBinding]) -> Report:
        return cls(Phase.EXPIRED, spec, bindings)

    @property
    def starts_applied(self) -> bool:
        """Whether grants whose window opened got their bindings (a verified read was applied);
        otherwise status keeps them Pending until one is."""
        return self.phase in (Phase.APPLIED, Phase.PENDING, Phase.EXPIRED)

    def hold_status(self, previous: Mapping[str, Any]) -> dict[str, Any] | None:
        """`status.revocationHold`: this reconcile's hold; unchanged when Entra could not be read
        (nothing was decided, so an earlier hold still stands); otherwise cleared."""
        if self.hold is not None:
            return self.hold.to_status()
        if self.phase in (Phase.DIRECTORY_FAILED, Phase.UNCONFIRMED):
            earlier = previous.get(HOLD_KEY)
            return dict(earlier) if isinstance(earlier, Mapping) else None
        return None

    def member_counts(self) -> dict[str, int] | None:
        if self.read is None or self.spec is None or self.spec.subjects.kind is not SubjectKind.USER:
            return None
        return bound_member_counts(self.read.members)


@dataclass(frozen=True)
class StatusWritten:
    """What `write_status` did: the Ready reason, whether status holds the stamp it was given, and
    whether the API server dropped it (a CRD older than the field prunes it from every write)."""

    reason: str
    stamped: bool
    stamp_dropped: bool = False


async def write_status(
    resource: Resource, report: Report, now: datetime, ctx: ReconcileContext, *, stamp: str | None = None
) -> StatusWritten:
    """Build the status from `report`, write it only if it changed (or `stamp`, kopf's
    last-handled configuration, is not yet in it: then with it, in the same write)."""
    owner, previous = resource.owner, resource.status
    synced = now if report.read is not None else None
    new = build_status(
        previous,
        now=now,
        generation=owner.generation,
        spec=report.spec,
        resolutions=report.read.resolutions if report.read is not None else None,
        bindings=report.bindings,
        problems=report.problems,
        member_counts=report.member_counts(),
        reconciling=report.phase is Phase.PENDING or report.reconciling,
        suspended=report.phase is Phase.SUSPENDED,
        directory_synced_at=synced,
        starts_applied=report.starts_applied,
    )
    new[HOLD_KEY] = report.hold_status(previous)
    if synced is not None:
        ctx.memory.of(owner.uid).verified_at = synced
    # A newer sync time alone is no reason to write: an idle resync must send nothing. The exact
    # time lives in memory (maxStaleness) and in the metrics; status gets it with the next change,
    # or, with maxStaleness set, once the stored one is older than a fraction of it, so that a
    # restart finds a time at most that much too early (docs/design.md, Directory semantics).
    ignoring = () if _sync_time_due(previous, synced, ctx.policy.max_staleness) else ("lastDirectorySync",)
    # The stamp is written only with a stamp to record: a merge patch without the key leaves the
    # one in status alone, and it is no key `status_changed` compares.
    restamp = stamp is not None and previous.get(LAST_HANDLED_STATUS_KEY) != stamp
    dropped = False
    if status_changed(previous, new, ignoring=ignoring) or restamp:
        answer = await ctx.kube.patch_status(
            owner.name, {**new, LAST_HANDLED_STATUS_KEY: stamp} if restamp else new
        )
        dropped = restamp and (answer.get("status") or {}).get(LAST_HANDLED_STATUS_KEY) != stamp
        if report.spec is not None:
            await audit_transitions(owner, report.spec, previous.get("grants"), new.get("grants"), now, ctx)
    _count_bindings(owner.uid, new["summary"], ctx)
    ctx.metrics.set_time_bound(
        owner.uid, active=_active(new.get("grants")), next_expiry=new.get("nextExpiry")
    )
    ready = next(c for c in new["conditions"] if c["type"] == "Ready")
    return StatusWritten(
        str(ready["reason"]), stamped=stamp is not None and not dropped, stamp_dropped=dropped
    )


def _sync_time_due(previous: Mapping[str, Any], synced: datetime | None, max_staleness: float | None) -> bool:
    """Whether this verified read's time must reach status now: maxStaleness is set and the time
    status holds is older than `STALENESS_SLACK` of it (or missing, or unreadable)."""
    if synced is None or max_staleness is None:
        return False
    stored = previous.get("lastDirectorySync")
    try:
        last = datetime.fromisoformat(stored) if isinstance(stored, str) else None
    except ValueError:
        last = None
    return last is None or (synced - last).total_seconds() > STALENESS_SLACK * max_staleness


def _active(grants: Any) -> int:
    return sum(
        1 for g in grants or [] if isinstance(g, Mapping) and g.get("state") == GrantState.ACTIVE.value
    )


def _count_bindings(owner_uid: str, counts: Mapping[str, Any], ctx: ReconcileContext) -> None:
    """The bindings gauge from status's summary: the same figures (an invalid spec's kept ones too)."""
    ctx.metrics.set_managed_bindings(
        owner_uid,
        cluster_role_bindings=_count(counts.get("clusterRoleBindings")),
        role_bindings=_count(counts.get("roleBindings")),
    )


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0
