"""Expiry on time, whatever else happens (docs/design.md, Time-bound grants).

Holds `remove_lapsed` (delete the owned bindings that only grants outside their window stand
behind: used when Entra cannot be read, when a revocation is held and when the resource is
suspended, so none of them delays an expiry), `sweep_expired` (the operator's first act on
start-up, before any reconcile: an operator that was down at a `validUntil` revokes at once)
and `check_clock_skew`. Which bindings lapse is the pure core's (`core.windows.lapsed_keys`);
the deletes go through the ordinary plan, so each is audited like any other write. It must not
import kopf.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from entra_rbac.core.desired import DesiredState, Owner
from entra_rbac.core.events import change_event
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.plan import Action, ObservedBinding, make_plan
from entra_rbac.core.revocation import after_plan
from entra_rbac.core.windows import lapsed_keys
from entra_rbac.errors import KubeError
from entra_rbac.logsetup import fields
from entra_rbac.reconciler.apply import apply_plan
from entra_rbac.reconciler.context import ReconcileContext

log = logging.getLogger("entra_rbac.reconcile")

# Beyond this many seconds between our clock and the API server's (its `Date` header, which has
# one-second resolution), windows would start and end visibly off: say so at start-up.
CLOCK_SKEW_WARNING = 2.0


@dataclass(frozen=True)
class Lapsed:
    """What `remove_lapsed` did: the bindings left, and the deletes done (for the audit Event)."""

    left: list[ObservedBinding]
    deleted: tuple[Action, ...] = ()


async def remove_lapsed(
    owner: Owner,
    spec: EntraGroupBindingSpec,
    observed: Sequence[ObservedBinding],
    now: datetime,
    ctx: ReconcileContext,
) -> Lapsed:
    """Delete the owned bindings whose every grant is outside its window."""
    lapsed = lapsed_keys(spec, owner.name, now, (o.key for o in observed))
    if not lapsed:
        return Lapsed(list(observed))
    going = [o for o in observed if o.key in lapsed]
    nothing = DesiredState(owner=owner, bindings=(), problems=(), subjects=(), group_ids=())
    applied = await apply_plan(ctx.kube, owner, make_plan(nothing, going), (), turns=ctx.writers)
    return Lapsed(after_plan(list(observed), applied.executed), tuple(applied.done))


async def sweep_expired(bodies: Iterable[Mapping[str, Any]], ctx: ReconcileContext) -> int:
    """Remove every lapsed binding of every resource in `bodies`, before any reconcile runs.

    Reads only the spec and the owned bindings (never Entra); a resource whose spec does not
    parse is left to its reconcile. Returns how many bindings were deleted.
    """
    now = ctx.clock()
    deleted = 0
    for body in bodies:
        owner = Owner.from_manifest(body)
        try:
            spec = EntraGroupBindingSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            continue
        async with ctx.memory.of(owner.uid).lock:
            try:
                listed = await ctx.kube.list_owned_bindings(owner.uid)
                observed = [o for o in ObservedBinding.from_manifests(listed) if o.owned_by(owner.uid)]
                lapsed = await remove_lapsed(owner, spec, observed, now, ctx)
            except KubeError as error:
                log.warning(
                    "Failed to revoke expired grants at start-up; the reconcile retries",
                    extra=fields(resource=owner.name, error=str(error)),
                )
                continue
        await _audit(owner, lapsed.deleted, now, ctx)
        deleted += len(lapsed.deleted)
    return deleted


async def _audit(owner: Owner, deleted: Sequence[Action], now: datetime, ctx: ReconcileContext) -> None:
    """The start-up deletes get their Event like any reconcile's writes (core.events)."""
    draft = change_event(deleted, ())
    if draft is None:
        return
    try:
        await ctx.kube.create_event(draft, owner_name=owner.name, owner_uid=owner.uid, now=now)
    except KubeError as error:
        log.warning("Failed to record Event", extra=fields(resource=owner.name, error=str(error)))


class ServerClock(Protocol):
    async def server_time(self) -> datetime | None: ...


async def check_clock_skew(kube: ServerClock, now: datetime) -> float | None:
    """Seconds our clock is ahead of the API server's (negative: behind), logged when large."""
    try:
        theirs = await kube.server_time()
    except KubeError as error:
        log.warning("Failed to read the API server's clock", extra=fields(error=str(error)))
        return None
    if theirs is None:
        return None
    skew = (now - theirs).total_seconds()
    if abs(skew) > CLOCK_SKEW_WARNING:
        log.warning(
            "Clock differs from the API server's: time-bound grants start and end by this clock",
            extra=fields(skew_seconds=round(skew, 1), server_time=theirs.isoformat()),
        )
    return skew
