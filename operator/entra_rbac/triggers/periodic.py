"""The machinery the operator's small periodic tasks share: start, stop, the loop, the peering gate.

Holds `PeriodicTask`, the base of `ConflictWatcher` (triggers/conflicts.py) and `DeltaFollower`
(triggers/delta.py): every `interval` it runs one `run_once()`, logs a failed round and carries on
(the refresh still covers what a round missed), and is cancelled by `stop()`. `paused()` asks the
refresher's `PeeringGate`, so these tasks do nothing while kopf's peering pauses the instance
(docs/design.md, Triggers; docs/deployment.md, Never two writers). It holds no decision of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from entra_rbac import reconciler
from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.logsetup import fields
from entra_rbac.triggers.entries import resource_entry
from entra_rbac.triggers.peering import PeeringGate
from entra_rbac.triggers.running import reconcile_all

log = logging.getLogger("entra_rbac.triggers")


class PeriodicTask:
    """One operator-wide task that runs `run_once()` every `interval` seconds until stopped."""

    task_name = "entra-rbac-periodic"  # the asyncio task's name, for debugging
    failure = "A periodic task failed"  # logged with the traceback when a round raises

    def __init__(
        self,
        kube: KubeAdapter,
        ctx: reconciler.ReconcileContext,
        interval: float,
        gate: PeeringGate | None,
    ) -> None:
        self.kube = kube
        self.ctx = ctx
        self.interval = interval
        self.gate = gate
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> list[str]:
        """One round: the names of the resources it reconciled."""
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def paused(self) -> bool:
        """True while kopf's peering pauses this instance; never without a gate (standalone)."""
        return self.gate is not None and await self.gate.paused()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except Exception:
                log.exception(self.failure)

    async def reconcile_uids(
        self, uids: Iterable[str], message: str, *, why: str, prefetch: bool = False, **extra: str
    ) -> list[str]:
        """Reconciles the listed resources whose uid is in `uids` and logs `message` with `extra`;
        their names, sorted. One LIST: the uids come from memory, the names and specs from the
        API server, so a resource deleted meanwhile is simply skipped. `prefetch`: their directory
        reads first, in bulk (`reconciler.prefetch_directory`), as a refresh does."""
        wanted = set(uids)
        bodies = [b for b in await self.kube.list_resources() if resource_entry(b).uid in wanted]
        entries = [resource_entry(b) for b in bodies]
        names = sorted(e.name for e in entries)
        log.info(message, extra=fields(**extra, resources=",".join(names)))
        if prefetch and len(entries) > 1:
            try:
                await reconciler.prefetch_directory(self.ctx.directory, bodies)
            except Exception:  # the reconciles read for themselves; a bug here must not stop them
                log.exception("Prefetch of the directory reads failed", extra=fields(trigger=why))
        await reconcile_all(entries, self.ctx, why=why)
        return names
