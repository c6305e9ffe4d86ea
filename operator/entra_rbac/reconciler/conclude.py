"""The endings every branch of a reconcile shares: revoking through the plan, and concluding.

`revoke_all` deletes bindings through the ordinary plan (so each deletion is audited), `after`
is the bindings as they stand once the successful writes took effect, and `conclude` posts the
Events, writes status from the branch's one `Report` (with kopf's last-handled configuration
when the conclusion is final) and returns the `Outcome`. It decides
nothing: which branch runs, and what it keeps, is `reconciler.reconcile`'s and its branches'.
It must not import kopf.
"""

from __future__ import annotations

from datetime import datetime

from entra_rbac.core.desired import DesiredState, Owner
from entra_rbac.core.plan import ObservedBinding, make_plan
from entra_rbac.core.revocation import after_plan
from entra_rbac.core.windows import next_transition
from entra_rbac.reconciler.apply import ApplyResult, apply_plan
from entra_rbac.reconciler.context import ReconcileContext
from entra_rbac.reconciler.events import post_events
from entra_rbac.reconciler.outcome import Outcome
from entra_rbac.reconciler.report import Report, Resource, write_status


async def revoke_all(owner: Owner, observed: list[ObservedBinding], ctx: ReconcileContext) -> ApplyResult:
    """Fail-closed: delete every owned binding through the ordinary plan (so each is audited)."""
    if not observed:
        return ApplyResult()
    nothing = DesiredState(owner=owner, bindings=(), problems=(), subjects=(), group_ids=())
    return await apply_plan(ctx.kube, owner, make_plan(nothing, observed), (), turns=ctx.writers)


def after(observed: list[ObservedBinding], applied: ApplyResult) -> list[ObservedBinding]:
    """The owned bindings as they stand once the successful writes took effect."""
    return after_plan(observed, applied.executed)


async def conclude(
    resource: Resource,
    report: Report,
    now: datetime,
    ctx: ReconcileContext,
    *,
    retry: str | None = None,
    delay: float | None = None,
) -> Outcome:
    """Write status from `report`; the outcome asks for a requeue (after `delay`, or the policy's
    retry delay) when `retry` says why one is needed. Before it, the Events: the audit summary of
    what was written, and a Warning per problem (deduplicated)."""
    # Events first: a status write that fails must not lose the audit of writes already made.
    await post_events(resource.owner, report, now, ctx)
    # kopf's last-handled configuration goes with a final conclusion only: after a requeue kopf
    # must find the handling unfinished, or it would never retry it (triggers.diffbase).
    written = await write_status(resource, report, now, ctx, stamp=resource.stamp if retry is None else None)
    upcoming = next_transition(report.spec, now) if report.spec is not None else None
    if retry is None:
        return Outcome(
            written.reason,
            next_change=upcoming,
            stamped=written.stamped,
            stamp_dropped=written.stamp_dropped,
        )
    return Outcome(
        written.reason,
        requeue_after=delay if delay is not None else ctx.policy.retry_delay,
        message=retry,
        next_change=upcoming,
    )
