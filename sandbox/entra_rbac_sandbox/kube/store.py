"""Object storage of the sandbox API server: objects, resourceVersions, history and watch fan-out.

Holds Store: objects per storage key (group, plural) and (namespace, name), one cluster-wide
resourceVersion counter bumped on every write (as etcd's revision), a bounded event history per
kind (watches resume from it; older resourceVersions are "compacted" and answer 410 Gone), and
the queues of open watches. Everything runs on the server's one event loop, so no locks. Stored
objects are never mutated in place: writers store a new dict. Holds no validation, no HTTP.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
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

    # Reads --------------------------------------------------------------------------------

    def get(self, key: StorageKey, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(key, {}).get((namespace, name))

    def list(self, key: StorageKey, namespace: str | None = None) -> ObjectList:
        """Objects in etcd key order (namespace, then name)."""
        objects = self._objects.get(key, {})
        keys = sorted(k for k in objects if namespace is None or k[0] == namespace)
        return [objects[k] for k in keys]

    def keys_list(self) -> KeyList:
        return list(self._objects)

    def all_objects(self) -> Iterator[tuple[StorageKey, dict[str, Any]]]:
        for key, objects in list(self._objects.items()):
            for obj in list(objects.values()):
                yield key, obj

    def count(self, key: StorageKey) -> int:
        return len(self._objects.get(key, {}))

    # Writes -------------------------------------------------------------------------------

    def put(self, key: StorageKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a created or updated object under a new resourceVersion, and tell the watches."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        objects = self._objects.setdefault(key, {})
        old = objects.get(object_key(obj))
        objects[object_key(obj)] = obj
        self._record(key, WatchEvent(self.rv, "MODIFIED" if old else "ADDED", obj, old))
        return obj

    def remove(self, key: StorageKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Delete an object; the DELETED event carries a new resourceVersion, as etcd's does."""
        objects = self._objects.get(key, {})
        old = objects.pop(object_key(obj), None)
        if old is None:
            return obj
        self.rv += 1
        final = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.rv)}}
        self._record(key, WatchEvent(self.rv, "DELETED", final, old))
        return final

    def drop_kind(self, key: StorageKey) -> None:
        """Forget a kind entirely (its CRD went away); its watches are closed."""
        self._objects.pop(key, None)
        for watcher in self._watchers.pop(key, set()):
            watcher.queue.put_nowait(None)

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
        return [event for event in self._history.get(key, ()) if event.rv > rv]

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

    def open_watch_count(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    def drop_watches(self) -> int:
        """End every open watch now (clients must re-watch); returns how many were open."""
        count = 0
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)
                count += 1
            watchers.clear()
        return count
