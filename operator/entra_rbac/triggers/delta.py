"""Entra changes within seconds: one operator-wide task following Graph delta queries.

Holds `DeltaFollower`. Every `interval` it asks the directory which of the watched groups (those
the reconciler remembered for each resource: named, pinned, or nested in one) changed, and
reconciles exactly the resources watching a changed group, their cached answers forgotten. It
decides nothing: the reconcile's verified read does, so nothing is ever revoked from delta alone
(docs/design.md, Triggers). Like the refresher it runs beside kopf, not as a kopf timer, and it
asks the refresher's `PeeringGate` first and does nothing while kopf's peering pauses the operator.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Protocol

from entra_rbac import reconciler
from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.errors import DirectoryError
from entra_rbac.logsetup import fields
from entra_rbac.triggers.peering import PeeringGate
from entra_rbac.triggers.periodic import PeriodicTask

log = logging.getLogger("entra_rbac.triggers")


class ChangedGroups(Protocol):
    """What the follower needs of the directory (`EntraDirectory.changed_groups`)."""

    async def changed_groups(self, group_ids: Collection[str], /) -> set[str]: ...

    def forget(self, group_ids: Collection[str], /) -> None: ...


class DeltaFollower(PeriodicTask):
    """Polls Graph's delta for the watched groups; reconciles the resources a change concerns."""

    task_name = "entra-rbac-delta"
    failure = "Following Entra changes failed; the refresh still covers them"

    def __init__(
        self,
        kube: KubeAdapter,
        directory: ChangedGroups,
        ctx: reconciler.ReconcileContext,
        interval: float,
        *,
        gate: PeeringGate | None = None,
    ) -> None:
        super().__init__(kube, ctx, interval, gate)
        self.directory = directory

    async def run_once(self) -> list[str]:
        return await self.follow()

    async def follow(self) -> list[str]:
        """One round: the names of the resources reconciled because a watched group changed.
        Nothing (not even a Graph read) while kopf's peering pauses this instance."""
        if await self.paused():
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
        # Read together: the groups were just forgotten, and a restart's first round (every
        # group a new baseline) concerns every resource (one getByIds, not one per resource).
        return await self.reconcile_uids(
            uids,
            "Entra reported changed groups",
            why="Entra delta",
            prefetch=True,
            groups=",".join(sorted(changed)),
        )
