"""What the operator remembers about each resource between reconciles, in one place.

Holds `ResourceRecord` (one resource's memory) and `ResourceMemory` (the records by uid, with
one `forget`). Everything here is a cache or a coordination aid: losing it (a restart) costs a
read or a reconcile, never a wrong decision, because the reconcile is level-based and reads
the cluster each time. It must not hold anything that is only known here and nowhere else.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from entra_rbac.core.events import EventSeries
from entra_rbac.core.naming import BindingKey

if TYPE_CHECKING:
    from entra_rbac.reconciler.unchanged import Settled


@dataclass
class ResourceRecord:
    """One resource's memory."""

    # Serialises reconciles of this resource: kopf serialises its own handlers per object, but
    # namespace events, binding events and the refresher reconcile from other tasks.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # When its groups were last verified in Entra. Status carries it too, but is written only
    # on a change, so after an idle resync this is the fresher of the two (maxStaleness).
    verified_at: datetime | None = None
    # Desired names a foreign object held at the last reconcile: those few are read again (one
    # GET each) instead of answering every create with 409.
    foreign_names: frozenset[BindingKey] = frozenset()
    # Groups (lower-case ids) that last read as deleted (a pinned id's 404, or a user-mode member
    # list emptied), with when that was first seen: acted on only once a fresh read at least the
    # confirmation interval later agrees. Lost on a restart, which only restarts the wait.
    pending_deletions: dict[str, datetime] = field(default_factory=dict)
    # The groups (lower-case ids) whose change in Entra concerns this resource: those its spec
    # names or pins, and the nested groups its last transitive read found. The delta follower
    # reconciles it when one of them changes; a restart empties it until the first reconcile.
    watched_groups: frozenset[str] = frozenset()
    # The Warning Events posted for the problems it has now, by reason: a repeat counts up the
    # one posted instead of adding another. Lost on a restart, which posts each problem once more.
    warnings: dict[str, EventSeries] = field(default_factory=dict)
    # The last clean conclusion and what it was drawn from (`reconciler.unchanged`): a reconcile
    # whose inputs and directory answer are all equal to it concludes the same without planning.
    settled: Settled | None = None
    # How many shards its bindings were last written as by this process: the count of the last
    # plan carried out with nothing left to retry. The split's count in use (its hysteresis) is
    # this, the operator's own decision, not the shard names it observes: a binding carrying its
    # marks at a shard name can be forged (docs/design.md, Ownership). None until then (after a
    # restart): status's `summary.shards` says it (`reconciler.converge.own_shards`).
    shards: int | None = None


@dataclass
class ResourceMemory:
    """The records of every resource seen, by uid."""

    _records: dict[str, ResourceRecord] = field(default_factory=dict)

    def of(self, uid: str) -> ResourceRecord:
        """The resource's record, created empty on first use (not built and dropped on every
        call, as `setdefault` would: a record holds a lock and two dicts, and the refresher asks
        for every resource's every tick)."""
        record = self._records.get(uid)
        if record is None:
            record = self._records[uid] = ResourceRecord()
        return record

    def forget(self, uid: str) -> None:
        """Drop everything remembered about a deleted resource.

        A record whose lock is held is kept: a reconcile is running or waiting on it, and a new
        lock for the same uid would let a second one run beside it.
        """
        record = self._records.get(uid)
        if record is not None and not record.lock.locked():
            del self._records[uid]

    def foreign_names(self) -> dict[str, frozenset[BindingKey]]:
        """Each remembered resource's names held by a foreign object (a Conflict), by uid."""
        return {uid: record.foreign_names for uid, record in self._records.items() if record.foreign_names}

    def watched_groups(self) -> dict[str, frozenset[str]]:
        """Each remembered resource's watched groups, by uid."""
        return {uid: record.watched_groups for uid, record in self._records.items() if record.watched_groups}

    def __contains__(self, uid: object) -> bool:
        return uid in self._records
