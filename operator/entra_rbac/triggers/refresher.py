"""The periodic directory refresh: one operator-wide task, not a kopf timer per resource.

Holds `Refresher` and `first_refresh_delay`. Why not kopf timers: kopf puts a finalizer on every
object with a timer, so deleting an EntraGroupBinding would hang whenever the operator is down
or uninstalled. It must not decide anything about bindings: it only says when to reconcile.
kopf's peering pause does not reach it, so each tick first asks the `PeeringGate`: a paused
instance lists nothing, reconciles nothing and reads no Entra (docs/deployment.md, Never two
writers).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from entra_rbac import reconciler
from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.logsetup import fields
from entra_rbac.settings import Freshness
from entra_rbac.triggers.entries import ResourceEntry, resource_entry
from entra_rbac.triggers.peering import PeeringGate
from entra_rbac.triggers.running import FAN_OUT, reconcile_entry

log = logging.getLogger("entra_rbac.triggers")


def first_refresh_delay(uid: str, period: float) -> float:
    """First refresh spread over [period/2, period) by uid: 200 resources resumed at once
    do not all re-read Entra in the same second, and a resource is never re-read right after
    the resume / create handler has just read it."""
    return period * (0.5 + (zlib.crc32(uid.encode()) % 1000) / 2000)


class Refresher:
    """Lists the resources (one LIST per tick) and reconciles each one whose refresh is due, at
    most `concurrency` at a time, never the same resource twice at once."""

    def __init__(
        self,
        kube: KubeAdapter,
        ctx: reconciler.ReconcileContext,
        freshness: Freshness,
        *,
        concurrency: int = FAN_OUT,
        gate: PeeringGate | None = None,
    ) -> None:
        self.kube = kube
        self.gate = gate
        self.ctx = ctx
        # Due every `period`, checked every `tick`: with the cache's lifetime that keeps what a
        # resource shows younger than the refresh interval (settings.Freshness).
        self.period = freshness.period
        self.tick = freshness.tick
        self._due: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="entra-rbac-refresh")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick)
            if self.gate is not None and await self.gate.paused():
                self._due.clear()  # on resuming, every resource is spread out again, then read
                continue
            try:
                bodies = await self.kube.list_resources()
            except Exception as error:
                log.warning(
                    "Failed to list EntraGroupBindings for the refresh", extra=fields(error=str(error))
                )
                continue
            self._schedule(bodies, loop.time())

    def _schedule(self, bodies: Iterable[Mapping[str, Any]], now: float) -> None:
        alive = set()
        for body in bodies:
            entry = resource_entry(body)
            alive.add(entry.uid)
            due = self._due.setdefault(entry.uid, now + first_refresh_delay(entry.uid, self.period))
            if now >= due and entry.uid not in self._running:
                self._due[entry.uid] = now + self.period
                task = asyncio.create_task(self._refresh(entry), name=f"refresh-{entry.name}")
                self._running[entry.uid] = task
        for uid in set(self._due) - alive:
            del self._due[uid]

    async def _refresh(self, entry: ResourceEntry) -> None:
        try:
            async with self._slots:
                outcome = await reconcile_entry(entry, self.ctx)
            if not outcome.settled:
                log.info("Refresh will be retried", extra=fields(resource=entry.name, error=outcome.message))
        except Exception:
            log.exception("Refresh failed", extra=fields(resource=entry.name))
        finally:
            self._running.pop(entry.uid, None)
