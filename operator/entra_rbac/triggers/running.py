"""Starting reconciles: for one resource (kopf's handlers) and for many at once (event fan-out).

Holds `reconcile_entry` (an index entry -> the reconciler's one entry point), `reconcile_body`
(the same for kopf's resource handlers, handing the reconcile the last-handled configuration
kopf will store and turning an `Outcome` that asks for a requeue into kopf's `TemporaryError`,
the one place that happens), `resource_gone` (with `is_deletion`, its
kopf filter) and `reconcile_all`. It must not decide which resources an event concerns
(`routing` does) nor anything about bindings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import kopf

from entra_rbac import reconciler
from entra_rbac.logsetup import fields
from entra_rbac.triggers.entries import ResourceEntry, resource_entry
from entra_rbac.triggers.memo import OperatorMemo
from entra_rbac.triggers.trimming import MEMORY

log = logging.getLogger("entra_rbac.triggers")

# Reconciles started together (by one namespace event, or by the refresher when many are due) run
# at most this many at a time, so a namespace matched by hundreds of resources, or a restart with
# hundreds of them, does not open hundreds of API calls at once.
FAN_OUT = 8


async def reconcile_entry(
    entry: ResourceEntry,
    ctx: reconciler.ReconcileContext,
    *,
    deletion: bool = False,
    fresh: bool = False,
    stamp: str | None = None,
) -> reconciler.Outcome:
    with MEMORY.working():  # the burst's memory goes back to the system once none is in flight
        return await reconciler.reconcile(
            entry.name, entry.uid, ctx, deletion=deletion, fresh=fresh, stamp=stamp
        )


async def reconcile_body(
    body: Mapping[str, Any], memo: OperatorMemo, *, deletion: bool = False, fresh: bool = False
) -> None:
    """For kopf's resource handlers: an outcome asking for a requeue becomes kopf's TemporaryError."""
    entry = resource_entry(body)
    clients = getattr(memo, "clients", None)
    kube = getattr(clients, "kube", None)
    cache = getattr(kube, "cache", None)
    if cache is not None and not deletion and not (body.get("metadata") or {}).get("deletionTimestamp"):
        # kopf's watch may be ahead of the cache's: the reconcile must see what woke it.
        cache.observe_resource(body)
    # The last-handled configuration kopf will store after this handling: written with the
    # status when the reconcile's outcome is final, and then kopf writes nothing (triggers.diffbase).
    stamps = getattr(memo, "stamps", None)
    stamp = None if stamps is None or deletion else stamps.stamp_for(_kopf_body(body))
    outcome = await reconcile_entry(entry, memo.ctx, deletion=deletion, fresh=fresh, stamp=stamp)
    if stamps is not None:
        if stamp is not None and outcome.stamped:
            stamps.recorded(entry.uid, stamp)
        elif outcome.stamp_dropped:
            stamps.status_unavailable()  # an old CRD: back to the annotation, no write loop
        elif deletion:
            stamps.forget(entry.uid)
    directory = getattr(clients, "directory", None)
    if directory is not None:  # kopf handed it over: the look-ahead has done its part for it
        directory.unexpect(reconciler.expected_lookups(body))
    refresher = getattr(memo, "refresher", None)  # absent only before startup finished
    if refresher is not None:
        refresher.expect(entry, outcome.next_change)  # the schedule follows every change
        if outcome.settled and not deletion:
            refresher.refreshed(entry)  # read just now: the next refresh is a period away
    if outcome.requeue_after is not None:
        raise kopf.TemporaryError(outcome.message, delay=outcome.requeue_after)


def _kopf_body(body: Mapping[str, Any]) -> kopf.Body:
    return body if isinstance(body, kopf.Body) else kopf.Body(cast(kopf.RawBody, body))


def is_deletion(type: str | None, **_: Any) -> bool:
    """kopf's `when` filter of the DELETED-event handler: a watch event that says the resource is gone."""
    return type == "DELETED"


async def resource_gone(body: Mapping[str, Any], memo: OperatorMemo) -> None:
    """A resource is gone: remove its bindings now (the garbage collector would, a little later)."""
    await reconcile_body(body, memo, deletion=True)


async def reconcile_all(
    entries: Sequence[ResourceEntry], ctx: reconciler.ReconcileContext, *, why: str
) -> None:
    """Reconcile each, independently: one failing resource never blocks the others.

    Event handlers are not retried by kopf; a resource whose reconcile failed here has its
    failure in its status (the reconciler writes it) and is retried by the refresher.
    """
    if not entries:
        return
    gate = asyncio.Semaphore(FAN_OUT)

    async def one(entry: ResourceEntry) -> reconciler.Outcome:
        async with gate:
            return await reconcile_entry(entry, ctx)

    results = await asyncio.gather(*(one(entry) for entry in entries), return_exceptions=True)
    for entry, result in zip(entries, results, strict=True):
        if isinstance(result, BaseException) or not result.settled:
            problem = str(result) if isinstance(result, BaseException) else result.message
            log.warning(
                "Reconcile failed; the refresh retries it",
                extra=fields(resource=entry.name, trigger=why, error=problem),
            )
