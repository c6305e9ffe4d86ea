"""Entra changes within seconds: one operator-wide task following Graph delta queries.

Holds `DeltaFollower`. Every `interval` it asks the directory which of the watched groups (those
the reconciler remembered for each resource: named, pinned, or nested in one) changed, and
reconciles exactly the resources watching a changed group, their cached answers forgotten. It
decides nothing: the reconcile's verified read does, so nothing is ever revoked from delta alone
(docs/design.md, Triggers). Like the refresher it runs beside kopf, not as a kopf timer, and it
asks the refresher's `PeeringGate` first and does nothing while kopf's peering pauses the operator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Protocol

from entra_rbac import reconciler
from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.errors import DirectoryError
from entra_rbac.logsetup import fields
from entra_rbac.triggers.entries import resource_entry
from entra_rbac.triggers.peering import PeeringGate
from entra_rbac.triggers.running import reconcile_all

log = logging.getLogger("entra_rbac.triggers")


class ChangedGroups(Protocol):
    """What the follower needs of the directory (`EntraDirectory.changed_groups`)."""

    async def changed_groups(self, group_ids: Collection[str], /) -> set[str]: ...

    def forget(self, group_ids: Collection[str], /) -> None: ...


class DeltaFollower:
    """Polls Graph's delta for the watched groups; reconciles the resources a change concerns."""

    def __init__(
        self,
        kube: KubeAdapter,
        directory: ChangedGroups,
        ctx: reconciler.ReconcileContext,
        interval: float,
        *,
        gate: PeeringGate | None = None,
    ) -> None:
        self.kube = kube
        self.directory = directory
        self.ctx = ctx
        self.interval = interval
        self.gate = gate
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="entra-rbac-delta")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.follow()
            except Exception:
                log.exception("Following Entra changes failed; the refresh still covers them")

    async def follow(self) -> list[str]:
        """One round: the names of the resources reconciled because a watched group changed.
        Nothing (not even a Graph read) while kopf's peering pauses this instance."""
        if self.gate is not None and await self.gate.paused():
            return []
        watched = self.ctx.memory.watched_groups()
        groups = set().union(*watched.values()) if watched else set()
        if not groups:
            return []
        try:
            changed = await self.directory.changed_groups(groups)
        except DirectoryError as error:
            log.info("Could not read Entra changes; retried next round", extra=fields(error=str(error)))
            return []
        uids = {uid for uid, ids in watched.items() if ids & changed}
        if not uids:
            return []
        # A nested group's change shows in its parents' transitive members: forget every group the
        # concerned resources watch, so their reconciles read all of them from Entra.
        self.directory.forget(set().union(*(watched[uid] for uid in uids)))
        entries = [e for e in map(resource_entry, await self.kube.list_resources()) if e.uid in uids]
        log.info(
            "Entra reported changed groups",
            extra=fields(
                groups=",".join(sorted(changed)), resources=",".join(sorted(e.name for e in entries))
            ),
        )
        await reconcile_all(entries, self.ctx, why="Entra delta")
        return sorted(e.name for e in entries)
