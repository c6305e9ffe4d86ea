"""An informer: one collection of the API server mirrored in memory by list + watch.

Holds `Informer`. It lists the collection, then watches from the list's resourceVersion, resuming
from the last one seen whenever the stream ends; a 410 Gone (that resourceVersion was compacted)
lists again; every `resync` seconds it lists again anyway and reports each difference as an
event, so an event lost to a bug cannot leave the mirror wrong for longer than that. Writes of
this process are folded in from their answers (`observe`, `observe_deleted`), so a read right
after a write sees it; an object is only ever replaced by a newer one (resourceVersion), so a
late event never undoes a newer write. Listeners hear of every change made by someone else
(watch events and resync differences, not the initial list nor our own writes), after the mirror
holds it. It stores objects and answers lookups; it decides nothing (the pure core does).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from entra_rbac.adapters.kube.errors import GoneError
from entra_rbac.adapters.kube.stream import PAGE_SIZE, WATCH_SECONDS, KubeStream
from entra_rbac.errors import KubeError
from entra_rbac.logsetup import fields

log = logging.getLogger("entra_rbac.kube.cache")

Key = tuple[str, str]  # (namespace, or "" for a cluster-scoped object; name)
Object = dict[str, Any]
# (event type: ADDED / MODIFIED / DELETED, the object before, the object after; None: absent)
Listener = Callable[[str, Object | None, Object | None], None]
Indexer = Callable[[Object], Iterable[str]]

# Pauses between attempts after a failed list or watch: doubling from the first to the last.
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
# Deleted uids remembered (ours and the watch's), so a state older than the delete never brings
# the object back; forgotten once a list no longer shows them.
TOMBSTONES = 20_000
_DROPPED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def newer(candidate: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    """Whether `candidate` is a later state than `stored`. A resourceVersion is opaque by the API
    conventions, but both servers here issue increasing integers (etcd's revision); two that are
    not integers count as newer when they differ. Another uid at the same name is always newer."""
    if _uid(candidate) != _uid(stored):
        return True
    a, b = _version(candidate), _version(stored)
    if a.isdigit() and b.isdigit():
        return int(a) > int(b)
    return a != b


def interned(value: Any) -> Any:
    """`value` (decoded JSON) rebuilt with every string interned, so the keys and the values that
    repeat across objects (label and annotation keys, the managed-by value, an owner's uid and
    name in each of its bindings, role names, subject kinds, a group id in every binding granting
    it, namespaces) are held once, not once per object: a decoded object's strings are all its
    own. Unique strings (uids, resourceVersions) cost an entry in the interpreter's table while
    they live; interned strings are freed with their last reference."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        return {sys.intern(key): interned(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interned(item) for item in value]
    return value


def trimmed(obj: Mapping[str, Any]) -> Object:
    """The object as the cache keeps it: without what no lookup needs and that costs the most
    memory (managedFields and kubectl's last-applied copy), its strings interned."""
    meta = {key: value for key, value in (obj.get("metadata") or {}).items() if key != "managedFields"}
    annotations = meta.get("annotations")
    if annotations and _DROPPED_ANNOTATION in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != _DROPPED_ANNOTATION}
    kept: Object = interned({**obj, "metadata": meta})
    return kept


class Informer:
    """The mirror of one collection (`path`, narrowed by `query`'s selectors)."""

    def __init__(
        self,
        stream: KubeStream,
        path: str,
        *,
        what: str,
        resync: float,
        query: Mapping[str, str] | None = None,
        prepare: Callable[[Mapping[str, Any]], Object] = trimmed,
        indexes: Mapping[str, Indexer] | None = None,
        page_size: int = PAGE_SIZE,
        decode: Callable[[bytes], Any] | None = None,
        decode_page: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.stream = stream
        self.decode = decode  # a watch event's bytes -> the event (None: orjson.loads)
        self.decode_page = decode_page  # a list page's bytes -> the page (None: orjson.loads)
        self.path = path
        self.what = what
        self.resync = resync
        self.query = dict(query or {})
        self.prepare = prepare
        self.page_size = page_size
        self.objects: dict[Key, Object] = {}
        # Counts changes: a lookup derived from the whole mirror is memoised against it.
        self.version = 0
        self.synced = asyncio.Event()
        self.listeners: list[Listener] = []
        self.lists = 0  # how many times the collection was listed (the first, 410s, resyncs)
        self._indexers = dict(indexes or {})
        self._index: dict[str, dict[str, set[Key]]] = {name: {} for name in self._indexers}
        self._tombstones: OrderedDict[str, None] = OrderedDict()
        self._resource_version = ""
        self._task: asyncio.Task[None] | None = None
        # Keys with a write of ours in flight, and the events heard for them meanwhile: the echo
        # of a write can arrive before its answer, and must not be told as someone else's change.
        self._writing: dict[Key, int] = {}
        self._held: dict[Key, list[tuple[str, Object | None, Object | None]]] = {}

    # --- lookups ---
    def get(self, key: Key) -> Object | None:
        return self.objects.get(key)

    def values(self) -> list[Object]:
        return list(self.objects.values())

    def indexed(self, index: str, value: str) -> list[Object]:
        return [self.objects[key] for key in sorted(self._index[index].get(value, ()))]

    def index_values(self, index: str) -> dict[str, set[Key]]:
        return self._index[index]

    # --- our own writes, and objects seen elsewhere ---
    def observe(self, obj: Mapping[str, Any]) -> None:
        """A state of an object seen outside the watch (a write's answer, kopf's event): kept if
        newer than the mirror's; listeners are not told (it is not someone else's change)."""
        if self.synced.is_set() and _uid(obj) not in self._tombstones and self._later(obj):
            self._upsert(self.prepare(obj), notify=False)

    def observe_deleted(self, key: Key, uid: str) -> None:
        """This process deleted the object `uid` at `key`."""
        self._tombstone(uid)
        current = self.objects.get(key)
        if current is not None and _uid(current) == uid:
            self._remove(key, notify=False)

    def begin_write(self, key: Key) -> None:
        """A write of ours to `key` is about to be sent: hold what the watch says of it until
        `end_write`."""
        self._writing[key] = self._writing.get(key, 0) + 1

    def end_write(self, key: Key, written: Mapping[str, Any] | None) -> None:
        """The write is answered (`written`: the object it made, or `{"metadata": {"uid"}}` of the
        object it deleted; None: it failed). The events held meanwhile are told, but the echo
        of this write (that state or an older one of the same object) is dropped."""
        left = self._writing.get(key, 1) - 1
        if left > 0:
            self._writing[key] = left
            return
        self._writing.pop(key, None)
        for kind, old, new in self._held.pop(key, []):
            if written is None or not _echo(old, new, written):
                self._tell(kind, old, new)

    # --- running ---
    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"informer {self.what}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _next_resync(self, loop: asyncio.AbstractEventLoop) -> float:
        # Spread by ±10%: informers started together do not all list again in the same second.
        return loop.time() + self.resync * random.uniform(0.9, 1.1)  # noqa: S311 (not security)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff, listed, resync_at = FIRST_BACKOFF, False, 0.0
        while True:
            try:
                if not listed or loop.time() >= resync_at:
                    await self.relist()
                    listed, resync_at = True, self._next_resync(loop)
                await self._watch(int(min(WATCH_SECONDS, max(resync_at - loop.time(), 1))))
                backoff = FIRST_BACKOFF
            except GoneError:
                log.info("Watch expired; listing again", extra=fields(collection=self.what))
                listed = False
            except KubeError as error:
                log.info(
                    "Watch failed; retrying",
                    extra=fields(collection=self.what, error=str(error), delay=backoff),
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def relist(self) -> None:
        """List the collection and make the mirror equal to it, telling listeners each difference
        (none at the first list)."""
        items, version = await self.stream.list(
            self.path,
            what=self.what,
            query=self.query,
            page_size=self.page_size,
            each=self.prepare,
            decode=self.decode_page,
        )
        self.lists += 1
        notify = self.synced.is_set()
        listed: dict[Key, Object] = {}
        for obj in items:
            if _uid(obj) not in self._tombstones:
                listed[key_of(obj)] = obj
        for key in [k for k in self.objects if k not in listed]:
            # Written by us after the list was taken: the watch (from the list's version) follows.
            stored = self.objects[key]
            if not newer(stored, {"metadata": {"uid": _uid(stored), "resourceVersion": version}}):
                self._remove(key, notify=notify)
        for obj in listed.values():
            self._upsert(obj, notify=notify)
        present = {_uid(obj) for obj in listed.values()}
        for uid in [u for u in self._tombstones if u not in present]:
            del self._tombstones[uid]
        self._resource_version = version
        self.synced.set()

    async def _watch(self, seconds: int) -> None:
        async for event in self.stream.watch(
            self.path,
            what=self.what,
            resource_version=self._resource_version,
            query=self.query,
            seconds=seconds,
            decode=self.decode,
        ):
            kind, raw = event.get("type"), event.get("object") or {}
            version = _version(raw)
            if kind == "BOOKMARK":
                self._resource_version = version or self._resource_version
                continue
            if kind in ("ADDED", "MODIFIED"):
                if _uid(raw) not in self._tombstones and self._later(raw):
                    self._upsert(self.prepare(raw), notify=True)
            elif kind == "DELETED":
                self._tombstone(_uid(raw))
                current = self.objects.get(key_of(raw))
                if current is not None and _uid(current) == _uid(raw):
                    self._remove(key_of(raw), notify=True)
            self._resource_version = version or self._resource_version

    # --- the mirror ---
    def _tombstone(self, uid: str) -> None:
        """A deleted uid: no later sighting of it (a late event, kopf's last body) brings it back."""
        self._tombstones[uid] = None
        while len(self._tombstones) > TOMBSTONES:
            self._tombstones.popitem(last=False)

    def _later(self, raw: Mapping[str, Any]) -> bool:
        """Whether `raw` (as received: the key, uid and resourceVersion are those of its prepared
        form) is a later state than the mirror's, so worth preparing: the second sighting of our
        own write (its echo after its answer, or its answer after its echo) is neither trimmed,
        interned nor shared again only for `_upsert` to drop it (issue 17 point 2)."""
        current = self.objects.get(key_of(raw))
        return current is None or newer(raw, current)

    def _upsert(self, obj: Object, *, notify: bool) -> None:
        key = key_of(obj)
        old = self.objects.get(key)
        if old is not None and not newer(obj, old):
            return  # the same state (our write's echo) or an older one
        self._unindex(key, old)
        self.objects[key] = obj
        for name, indexer in self._indexers.items():
            for value in indexer(obj):
                self._index[name].setdefault(value, set()).add(key)
        self.version += 1
        if notify:
            self._tell("ADDED" if old is None else "MODIFIED", old, obj)

    def _remove(self, key: Key, *, notify: bool) -> None:
        old = self.objects.pop(key, None)
        if old is None:
            return
        self._unindex(key, old)
        self.version += 1
        if notify:
            self._tell("DELETED", old, None)

    def _unindex(self, key: Key, old: Object | None) -> None:
        if old is None:
            return
        for name, indexer in self._indexers.items():
            for value in indexer(old):
                keys = self._index[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._index[name][value]

    def _tell(self, kind: str, old: Object | None, new: Object | None) -> None:
        key = key_of(new if new is not None else old or {})
        if key in self._writing:
            self._held.setdefault(key, []).append((kind, old, new))
            return
        for listener in self.listeners:
            try:
                listener(kind, old, new)
            except Exception:
                log.exception("A cache listener failed", extra=fields(collection=self.what, event=kind))


def _echo(old: Object | None, new: Object | None, written: Mapping[str, Any]) -> bool:
    """Whether an event (old -> new) shows nothing after our write `written`: its echo, or older."""
    if new is None:  # a deletion: ours if it deleted the object our delete named
        return old is not None and _uid(old) == _uid(written) and not _version(written)
    return _uid(new) == _uid(written) and bool(_version(written)) and not newer(new, written)
