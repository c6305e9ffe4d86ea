"""Conflicts heal by themselves: the names foreign objects hold are watched, not left to the refresh.

Holds `ConflictWatcher`, one operator-wide task. A foreign object at a name a resource wants
(`Conflict`, docs/design.md, Ownership) carries no managed-by label, so the operator's binding
watches, filtered by that label on the server, never see it change. Every `interval` this task
reads exactly those names (one GET each; conflicts are few) and reconciles the resource as soon as
one is deleted or changed (a new uid or resourceVersion: relabelled, edited, replaced), so the
operator's binding is created within seconds and the status clears. It decides nothing: the
reconcile reads the name again and plans. It pauses with kopf's peering, like the refresher.
"""

from __future__ import annotations

import logging

from entra_rbac import reconciler
from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.core.naming import BindingKey
from entra_rbac.errors import KubeError
from entra_rbac.logsetup import fields
from entra_rbac.triggers.peering import PeeringGate
from entra_rbac.triggers.periodic import PeriodicTask

log = logging.getLogger("entra_rbac.triggers")

# How often the held names are read; a conflict heals within about this long once cleared.
CONFLICT_CHECK_INTERVAL = 1.0
Seen = tuple[str, str] | None  # (uid, resourceVersion) of the object at the name, None: no object


class ConflictWatcher(PeriodicTask):
    """Reads the names foreign objects hold; reconciles a resource when one of them changes."""

    task_name = "entra-rbac-conflicts"
    failure = "Checking conflicting names failed; the refresh still covers them"

    def __init__(
        self,
        kube: KubeAdapter,
        ctx: reconciler.ReconcileContext,
        *,
        interval: float = CONFLICT_CHECK_INTERVAL,
        gate: PeeringGate | None = None,
    ) -> None:
        super().__init__(kube, ctx, interval, gate)
        self._seen: dict[BindingKey, Seen] = {}

    async def run_once(self) -> list[str]:
        return await self.check()

    async def check(self) -> list[str]:
        """One round: the names of the resources reconciled because a held name changed."""
        held = self.ctx.memory.foreign_names()
        if not held or await self.paused():
            return []
        keys = set().union(*held.values())
        self._seen = {key: seen for key, seen in self._seen.items() if key in keys}
        changed: set[BindingKey] = set()
        for key in sorted(keys):
            try:
                current = await self.kube.get_binding(key.kind, key.namespace or None, key.name)
            except KubeError as error:
                log.info("Could not read a conflicting name", extra=fields(name=key.name, error=str(error)))
                continue
            meta = (current or {}).get("metadata") or {}
            now: Seen = (str(meta.get("uid")), str(meta.get("resourceVersion"))) if current else None
            # Changed since the last look, or already gone at the first one (deleted in between).
            if (self._seen[key] != now) if key in self._seen else current is None:
                changed.add(key)
            self._seen[key] = now
        uids = {uid for uid, names in held.items() if names & changed}
        if not uids:
            return []
        return await self.reconcile_uids(
            uids,
            "A conflicting object changed or went",
            why="conflicting object changed",
            names=",".join(sorted(k.name for k in changed)),
        )
