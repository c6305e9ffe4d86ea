"""Object storage of the sandbox API server: objects, resourceVersions, history and watch fan-out.

Holds Store: objects per storage key (group, plural) and (namespace, name), one cluster-wide
resourceVersion counter bumped on every write (as etcd's revision), a bounded event history per
kind (watches resume from it; older resourceVersions are "compacted" and answer 410 Gone), and
the queues of open watches. Everything runs on the server's one event loop, so no locks. Stored
objects are never mutated in place: writers store a new dict. Holds no validation, no HTTP.

Indices kept on every write, so no request scans a whole kind (docs/design.md, The sandbox contract): objects
per namespace (a namespaced list or an authorization lookup reads only its namespace), live
objects by uid, dependents by owner uid, the objects being deleted, and the garbage collector's
candidates (objects written with ownerReferences, dependents of a removed object); listeners per
kind let the authorizer keep its own index by subject.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

StorageKey = tuple[str, str]
ObjectKey = tuple[str, str]


@dataclass(frozen=True)
class WatchEvent:
    """One write as watches see it; `old` is the previous state (None for ADDED)."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


@dataclass(eq=False)
class Watcher:
    """An open watch's queue. None in the queue means: the server dropped this watch."""

    key: StorageKey
    queue: asyncio.Queue[WatchEvent | None] = field(default_factory=asyncio.Queue)


ObjectList = list[dict[str, Any]]
Located = tuple[StorageKey, ObjectKey]
Found = list[tuple[StorageKey, dict[str, Any]]]
Listener = Callable[[dict[str, Any] | None, dict[str, Any] | None], None]
EventList = list[WatchEvent]
KeyList = list[StorageKey]


class GoneError(Exception):
    """The resourceVersion asked for is older than the retained history."""


def object_key(obj: dict[str, Any]) -> ObjectKey:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


class Store:
    """Every stored object, its history and the open watches."""

    def __init__(self, history_size: int = 20_000) -> None:
        self.rv = 1
        self._history_size = history_size
        self._objects: dict[StorageKey, dict[ObjectKey, dict[str, Any]]] = {}
        self._history: dict[StorageKey, deque[WatchEvent]] = {}
        self._compacted: dict[StorageKey, int] = {}
        self._watchers: dict[StorageKey, set[Watcher]] = {}
        self._by_namespace: dict[StorageKey, dict[str, dict[str, dict[str, Any]]]] = {}
        self._uids: dict[str, Located] = {}
        self._dependents: dict[str, set[Located]] = {}
        self._deleting: set[Located] = set()
        self._gc_candidates: set[Located] = set()
        self._listeners: dict[StorageKey, list[Listener]] = {}
        # Each kind's keys in etcd order, sorted once and kept until a key comes or goes (an
        # update keeps it), so a paginated list is not a sort of the whole kind per page.
        self._sorted: dict[StorageKey, list[ObjectKey]] = {}

    # Reads --------------------------------------------------------------------------------

    def get(self, key: StorageKey, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(key, {}).get((namespace, name))

    def list(self, key: StorageKey, namespace: str | None = None) -> ObjectList:
        """Objects in etcd key order (namespace, then name)."""
        return list(self.iterate(key, namespace))

    def iterate(
        self, key: StorageKey, namespace: str | None = None, after: ObjectKey | None = None
    ) -> Iterator[dict[str, Any]]:
        """Objects in etcd key order, from the first key after `after` (a continue token's)."""
        if namespace is not None:
            in_namespace = self._by_namespace.get(key, {}).get(namespace, {})
            names = sorted(in_namespace)
            start = 0
            if after is not None:
                start = len(names) if after[0] > namespace else 0
                if after[0] == namespace:
                    start = bisect.bisect_right(names, after[1])
            return (in_namespace[name] for name in names[start:])
        objects = self._objects.get(key, {})
        keys = self._sorted.get(key)
        if keys is None:
            keys = self._sorted[key] = sorted(objects)
        start = 0 if after is None else bisect.bisect_right(keys, after)
        return (objects[k] for k in keys[start:])

    def count_after(self, key: StorageKey, namespace: str | None, after: ObjectKey | None) -> int:
        """How many objects `iterate` would yield, without yielding them."""
        if namespace is not None:
            return sum(1 for _ in self.iterate(key, namespace, after))
        keys = self._sorted.get(key)
        if keys is None:
            keys = self._sorted[key] = sorted(self._objects.get(key, {}))
        return len(keys) - (0 if after is None else bisect.bisect_right(keys, after))

    def keys_list(self) -> KeyList:
        return list(self._objects)

    def count(self, key: StorageKey) -> int:
        return len(self._objects.get(key, {}))

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        """The live object with this uid, if any."""
        located = self._uids.get(uid)
        return None if located is None else self._objects[located[0]][located[1]]

    def dependents(self, uid: str) -> Found:
        """Objects naming `uid` in their ownerReferences, in storage order."""
        return [(key, self._objects[key][okey]) for key, okey in sorted(self._dependents.get(uid, ()))]

    def take_gc_candidates(self, everything: bool = False) -> Found:
        """What the garbage collector must look at now: objects being deleted, and the objects
        written with owners or left by a removed owner since the last call (every object when
        `everything`). The candidate set is emptied; the deleting set stays until they go."""
        if everything:
            located: set[Located] = {
                (key, okey) for key, objects in self._objects.items() for okey in objects
            }
        else:
            located = self._deleting | self._gc_candidates
        self._gc_candidates = set()
        found: Found = []
        for key, okey in sorted(located):
            obj = self._objects.get(key, {}).get(okey)
            if obj is not None:
                found.append((key, obj))
        return found

    def listen(self, key: StorageKey, listener: Listener) -> None:
        """Call `listener(old, new)` after every write of this kind (None = absent); it is first
        called once per object already stored."""
        self._listeners.setdefault(key, []).append(listener)
        for obj in list(self._objects.get(key, {}).values()):
            listener(None, obj)

    # Writes -------------------------------------------------------------------------------

    def put(self, key: StorageKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a created or updated object under a new resourceVersion, and tell the watches."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        objects = self._objects.setdefault(key, {})
        old = objects.get(object_key(obj))
        objects[object_key(obj)] = obj
        if old is None:
            self._sorted.pop(key, None)
        self._index(key, old, obj)
        self._record(key, WatchEvent(self.rv, "MODIFIED" if old else "ADDED", obj, old))
        return obj

    def remove(self, key: StorageKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Delete an object; the DELETED event carries a new resourceVersion, as etcd's does."""
        objects = self._objects.get(key, {})
        old = objects.pop(object_key(obj), None)
        if old is None:
            return obj
        self._sorted.pop(key, None)
        self._index(key, old, None)
        self.rv += 1
        final = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.rv)}}
        self._record(key, WatchEvent(self.rv, "DELETED", final, old))
        return final

    def drop_kind(self, key: StorageKey) -> None:
        """Forget a kind entirely (its CRD went away); its watches are closed."""
        for obj in list(self._objects.get(key, {}).values()):
            self._index(key, obj, None)
        self._objects.pop(key, None)
        self._sorted.pop(key, None)
        self._by_namespace.pop(key, None)
        for watcher in self._watchers.pop(key, set()):
            watcher.queue.put_nowait(None)

    def _index(self, key: StorageKey, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Keep every index equal to the objects after `old` became `new` (None = absent)."""
        current = new if new is not None else old
        assert current is not None
        okey = object_key(current)
        located = (key, okey)
        in_namespace = self._by_namespace.setdefault(key, {}).setdefault(okey[0], {})
        if old is not None:
            old_meta = old["metadata"]
            for ref in old_meta.get("ownerReferences") or []:
                owners = self._dependents.get(ref.get("uid", ""))
                if owners is not None:
                    owners.discard(located)
                    if not owners:
                        del self._dependents[ref.get("uid", "")]
            if new is None:
                in_namespace.pop(okey[1], None)
                if not in_namespace:
                    del self._by_namespace[key][okey[0]]
                self._uids.pop(old_meta.get("uid", ""), None)
                self._deleting.discard(located)
                self._gc_candidates.discard(located)
                # Its dependents may have lost their last owner.
                self._gc_candidates |= self._dependents.get(old_meta.get("uid", ""), set())
        if new is not None:
            meta = new["metadata"]
            if old is not None and old["metadata"].get("uid") != meta.get("uid"):
                self._uids.pop(old["metadata"].get("uid", ""), None)
            in_namespace[okey[1]] = new
            if meta.get("uid"):
                self._uids[meta["uid"]] = located
            for ref in meta.get("ownerReferences") or []:
                self._dependents.setdefault(ref.get("uid", ""), set()).add(located)
            if meta.get("ownerReferences"):
                self._gc_candidates.add(located)  # perhaps written with no live owner
            if meta.get("deletionTimestamp"):
                self._deleting.add(located)
            else:
                self._deleting.discard(located)
        for listener in self._listeners.get(key, ()):
            listener(old, new)

    def _record(self, key: StorageKey, event: WatchEvent) -> None:
        history = self._history.setdefault(key, deque())
        if len(history) >= self._history_size:
            self._compacted[key] = history.popleft().rv
        history.append(event)
        for watcher in self._watchers.get(key, ()):
            watcher.queue.put_nowait(event)

    # History and watches --------------------------------------------------------------------

    def events_since(self, key: StorageKey, rv: int) -> EventList:
        """Events newer than `rv`; GoneError when some of them were compacted away."""
        if rv < self._compacted.get(key, 0):
            raise GoneError(f"too old resource version: {rv} ({self._compacted[key] + 1})")
        # From the newest back: a watch resuming from a recent resourceVersion reads only the events
        # it is sent, not the whole retained history.
        newer: EventList = []
        for event in reversed(self._history.get(key, ())):
            if event.rv <= rv:
                break
            newer.append(event)
        newer.reverse()
        return newer

    def compact(self) -> None:
        """Forget every kind's history up to now, as etcd compaction does (tests use it for 410)."""
        for key, history in self._history.items():
            if history:
                self._compacted[key] = history[-1].rv
            history.clear()
        for key in self._objects:
            self._compacted[key] = self.rv

    def compacted_floor(self) -> int:
        """The newest resourceVersion lost to compaction, over every kind (0 = nothing lost)."""
        return max(self._compacted.values(), default=0)

    def open_watch(self, key: StorageKey) -> Watcher:
        watcher = Watcher(key)
        self._watchers.setdefault(key, set()).add(watcher)
        return watcher

    def close_watch(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.key, set()).discard(watcher)

    def open_watch_count(self, plural: str | None = None) -> int:
        """Watches open now, of every kind or of the kind with this plural only (a test waiting for
        its client's watch counts its kind alone: another test's watch closing meanwhile would
        hide the new one in a total)."""
        return sum(len(w) for key, w in self._watchers.items() if plural is None or key[1] == plural)

    def drop_watches(self) -> int:
        """End every open watch now (clients must re-watch); returns how many were open."""
        count = 0
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)
                count += 1
            watchers.clear()
        return count
