"""The branches of a reconcile that carry out no plan from Entra: they keep or revoke.

`refuse` (outside the guardrails: every marked binding goes, Entra unread), `unconfirmed` (a
group reads as deleted, not yet confirmed: every binding is kept) and `directory_failed`
(fail-static: every binding is kept; fail-closed past maxStaleness: every marked binding goes).
An expiry still happens in each. What they revoke goes through the ordinary plan, audited,
never past the revocation guard's reasons. They must not read Entra or import kopf.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.plan import Action, ObservedBinding, OwnedBindings
from entra_rbac.core.problems import Problem, Reason
from entra_rbac.errors import DirectoryError
from entra_rbac.logsetup import fields
from entra_rbac.reconciler.conclude import after, conclude, revoke_all
from entra_rbac.reconciler.confirm import Confirmation
from entra_rbac.reconciler.context import ReconcileContext
from entra_rbac.reconciler.expiry import remove_lapsed
from entra_rbac.reconciler.outcome import Outcome
from entra_rbac.reconciler.report import STALENESS_SLACK, Report, Resource

log = logging.getLogger("entra_rbac.reconcile")

# The shortest pause kopf is asked for after a failed directory read, whatever Entra said.
MIN_DIRECTORY_RETRY = 1.0


async def refuse(
    resource: Resource,
    spec: EntraGroupBindingSpec,
    owned: OwnedBindings,
    violations: Sequence[Problem],
    now: datetime,
    ctx: ReconcileContext,
) -> Outcome:
    """Outside the guardrails: nothing is granted from the resource, whole, suspended or not.

    Every binding with its marks goes (strays included) through the ordinary plan, each deletion
    audited, without the revocation guard: that guard holds back what a directory blip would
    remove, not what a cluster admin's guardrails forbid. Entra is not read (nothing it says
    could make the resource acceptable)."""
    everything = [*owned.ours, *owned.strays]
    if everything:
        log.info(
            "Revoking bindings: the resource is outside the guardrails",
            extra=fields(resource=resource.owner.name, violation=violations[0].text()),
        )
    applied = await revoke_all(resource.owner, everything, ctx)
    bindings = [b for b in after(everything, applied) if b in owned.ours]
    # The audit names the groups as last verified (Entra is not read here).
    groups = sorted({str(g["id"]) for g in resource.status.get("groups") or [] if g.get("id")})
    report = Report.refused(
        spec, bindings, violations, pending=applied.retry, written=applied.done, groups=groups
    )
    retry = "some deletions must be retried" if applied.retry else None
    return await conclude(resource, report, now, ctx, retry=retry)


async def unconfirmed(
    resource: Resource,
    spec: EntraGroupBindingSpec,
    observed: list[ObservedBinding],
    decision: Confirmation,
    now: datetime,
    ctx: ReconcileContext,
) -> Outcome:
    """A group reads as deleted for the first time (or too recently): keep every binding exactly."""
    interval = ctx.policy.deletion_confirmation
    what = "; ".join(decision.unconfirmed[gid] for gid in sorted(decision.unconfirmed))
    message = (
        f"Entra reads a group as deleted ({what}); its bindings are kept until a read from Entra "
        f"at least {interval:.0f}s after the first one agrees"
    )
    log.info(
        "Kept bindings: group deletion not yet confirmed",
        extra=fields(resource=resource.owner.name, groups=",".join(sorted(decision.unconfirmed))),
    )
    kept = await remove_lapsed(resource.owner, spec, observed, now, ctx)
    report = replace(
        Report.unconfirmed(spec, kept.left, Problem(Reason.DELETION_UNCONFIRMED, message)),
        written=kept.deleted,
    )
    delay = max(decision.wait, MIN_DIRECTORY_RETRY)
    return await conclude(resource, report, now, ctx, retry=message, delay=delay)


async def directory_failed(
    resource: Resource,
    spec: EntraGroupBindingSpec,
    owned: OwnedBindings,
    error: DirectoryError,
    now: datetime,
    ctx: ReconcileContext,
) -> Outcome:
    """Fail-static: keep every binding exactly; fail-closed only past the configured maxStaleness
    (then every binding carrying the resource's marks goes, strays included)."""
    message = f"Entra could not be read, bindings are kept unchanged: {error}"
    # Fail-static keeps what Entra decides, never what time does: expired grants still go.
    kept = await remove_lapsed(resource.owner, spec, owned.ours, now, ctx)
    bindings: Sequence[ObservedBinding] = kept.left
    revoked: Sequence[Action] = kept.deleted
    if _stale(resource, now, ctx):
        everything = [*bindings, *owned.strays]
        applied = await revoke_all(resource.owner, everything, ctx)
        bindings = [b for b in after(everything, applied) if b in owned.ours]
        revoked = [*kept.deleted, *applied.done]
        message = (
            f"Entra could not be read for longer than maxStaleness "
            f"({ctx.policy.max_staleness:.0f}s), so every binding was revoked: {error}"
        )
    report = Report.directory_failed(spec, bindings, Problem(Reason(error.reason), message), revoked)
    delay = error.retry_after if error.retry_after is not None else ctx.policy.retry_delay
    return await conclude(resource, report, now, ctx, retry=message, delay=max(delay, MIN_DIRECTORY_RETRY))


def _stale(resource: Resource, now: datetime, ctx: ReconcileContext) -> bool:
    """Whether the last verified read is past maxStaleness: memory knows its time exactly; status
    (what a restart finds) may lag the real read by up to `STALENESS_SLACK` of the limit, so its
    deadline is that much later. Stale only past the later deadline: never earlier than promised."""
    limit = ctx.policy.max_staleness
    if limit is None:
        return False
    deadlines = []
    remembered = ctx.memory.of(resource.owner.uid).verified_at
    if remembered is not None:
        deadlines.append(remembered + timedelta(seconds=limit))
    last = resource.status.get("lastDirectorySync")
    try:
        stored = datetime.fromisoformat(last) if isinstance(last, str) else None
    except ValueError:
        stored = None
    if stored is not None and (remembered is None or stored > remembered):
        # Read by this instance before a restart, or by another instance meanwhile.
        deadlines.append(stored + timedelta(seconds=limit * (1 + STALENESS_SLACK)))
    return bool(deadlines) and now > max(deadlines)
