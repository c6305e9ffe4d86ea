"""Never two writers: whether this instance may act, by kopf's peering rule (docs/deployment.md,
Never two writers).

Holds `peers_in_charge` (the rule, on a ClusterKopfPeering's status) and `PeeringGate` (asks the
API server, logs each change). kopf pauses its own watches and handlers when a live peer with a
higher or equal priority exists, but its pause toggle is internal (kopf's `spawn_tasks` makes it
and hands it to nothing public); the operator's own tasks (the refresher) read the same peering
object each tick and apply the same rule instead, so a paused instance sends no write and reads
no Entra. It must not decide anything about bindings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.errors import KubeError
from entra_rbac.logsetup import fields

log = logging.getLogger("entra_rbac.triggers")


def peers_in_charge(status: Mapping[str, Any], *, identity: str, priority: int, now: datetime) -> list[str]:
    """The other live instances this one must give way to: a priority higher than or equal to
    its own (kopf pauses on both: equal priorities all pause). Empty: this instance may act."""
    found = []
    for peer, info in status.items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        try:
            lastseen = datetime.fromisoformat(str(info["lastseen"]))
            lifetime = timedelta(seconds=int(info.get("lifetime", 60)))
            their_priority = int(info.get("priority", 0))
        except (KeyError, TypeError, ValueError):
            continue
        if lastseen.tzinfo is None:
            lastseen = lastseen.replace(tzinfo=UTC)
        if lastseen + lifetime > now and their_priority >= priority:
            found.append(peer)
    return sorted(found)


class PeeringGate:
    """Asks, once per call, whether another instance is in charge; None (standalone) never pauses."""

    def __init__(self, kube: KubeAdapter, *, name: str, identity: str, priority: int) -> None:
        self.kube = kube
        self.name = name
        self.identity = identity
        self.priority = priority
        self._paused: bool | None = None

    async def paused(self) -> bool:
        """True while a peer is in charge, the peering object is missing, or cannot be read
        (unsure: pause, as kopf does while its peering object is missing)."""
        why: str | None = None
        try:
            peering = await self.kube.get_peering(self.name)
        except KubeError as error:
            peering, why = None, f"the ClusterKopfPeering could not be read: {error}"
        if peering is None:
            why = why or f"ClusterKopfPeering {self.name!r} does not exist (deploy/peering.yaml)"
        else:
            status = peering.get("status") or {}
            others = peers_in_charge(
                status, identity=self.identity, priority=self.priority, now=datetime.now(UTC)
            )
            if others:
                why = f"another instance is in charge: {', '.join(others)}"
        self._log_change(why)
        return why is not None

    def _log_change(self, why: str | None) -> None:
        paused = why is not None
        if paused == self._paused:
            return
        self._paused = paused
        if paused:
            log.info("Paused the refresher", extra=fields(peering=self.name, reason=why))
        else:
            log.info("Resumed the refresher", extra=fields(peering=self.name, identity=self.identity))
