"""The watch verb: a streamed JSON line per event, from a resourceVersion, with bookmarks.

Holds serve_watch(): replays retained events newer than the requested resourceVersion (or sends
the current objects as ADDED when none is given, or when sendInitialEvents=true, followed by
the `k8s.io/initial-events-end` bookmark), then streams live events. Selectors are applied as
the real server does: an object that stops matching is sent as DELETED, one that starts matching
as ADDED. A too-old resourceVersion is answered, like kube-apiserver's watch cache, by an ERROR
event carrying a 410 Expired Status. Bookmarks every `bookmark_interval` when asked for;
`timeoutSeconds` ends the stream. Holds no storage of its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import errors
from .cluster import Cluster, present
from .resources import ResourceType
from .selectors import FieldRequirement, Requirement, matches_labels
from .store import GoneError, WatchEvent
from .table import to_table


@dataclass(frozen=True)
class WatchRequest:
    rtype: ResourceType
    namespace: str | None
    name: str  # a watch on one object (fieldSelector metadata.name, or a named path)
    labels: list[Requirement]
    fields: list[FieldRequirement]
    resource_version: str
    bookmarks: bool
    send_initial: bool
    timeout: float
    table: str | None = None  # includeObject when the client asked for Tables


def _matches(request: WatchRequest, obj: dict[str, Any] | None) -> bool:
    if obj is None:
        return False
    meta = obj["metadata"]
    if request.namespace is not None and (meta.get("namespace") or "") != request.namespace:
        return False
    if request.name and meta["name"] != request.name:
        return False
    return matches_labels(request.labels, meta.get("labels")) and all(f.matches(obj) for f in request.fields)


def _visible(request: WatchRequest, event: WatchEvent) -> tuple[str, dict[str, Any]] | None:
    """The event as this watch sees it, or None when neither state matches its filters."""
    now, before = _matches(request, event.obj), _matches(request, event.old)
    if event.type == "DELETED":
        return ("DELETED", event.obj) if before else None
    if now and before:
        return ("MODIFIED", event.obj)
    if now:
        return ("ADDED", event.obj)
    if before:
        return ("DELETED", event.obj)
    return None


class _Stream:
    def __init__(self, response: web.StreamResponse, rtype: ResourceType, table: str | None) -> None:
        self.response = response
        self.rtype = rtype
        self.table = table  # includeObject of a Table watch (`kubectl get -w`), None for objects

    async def send(self, kind: str, obj: dict[str, Any]) -> None:
        shown = present(self.rtype, obj)
        if self.table is not None and kind in ("ADDED", "MODIFIED", "DELETED"):
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            shown = to_table(self.rtype, [shown], meta, self.table)
        line = json.dumps({"type": kind, "object": shown}, separators=(",", ":"))
        await self.response.write(line.encode() + b"\n")

    async def bookmark(self, rv: int, initial_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.rtype.kind, "apiVersion": self.rtype.api_version, "metadata": meta}
        await self.send("BOOKMARK", obj)


async def serve_watch(
    http: web.Request, cluster: Cluster, request: WatchRequest, bookmark_interval: float
) -> web.StreamResponse:
    store = cluster.store
    key = request.rtype.storage_key
    watcher = store.open_watch(key)  # opened before reading, so no event falls in between
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    await response.prepare(http)
    stream = _Stream(response, request.rtype, request.table)
    try:
        start_rv = await _replay(stream, cluster, request)
        if start_rv is None:
            return response
        await _follow(stream, watcher.queue, request, start_rv, bookmark_interval, cluster)
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the client went away
    finally:
        store.close_watch(watcher)
    return response


async def _replay(stream: _Stream, cluster: Cluster, request: WatchRequest) -> int | None:
    """Send what precedes live events; the resourceVersion live events must be newer than."""
    store = cluster.store
    rv_text = request.resource_version
    if request.send_initial or rv_text in ("", "0"):
        snapshot = store.rv
        for obj in store.list(request.rtype.storage_key, request.namespace):
            if _matches(request, obj):
                await stream.send("ADDED", obj)
        if request.send_initial and request.bookmarks:
            await stream.bookmark(snapshot, initial_end=True)
        return snapshot
    try:
        since = int(rv_text)
        backlog = store.events_since(request.rtype.storage_key, since)
    except ValueError:
        error = errors.bad_request(f"invalid resource version: {rv_text!r}")
        await stream.send("ERROR", error.status())
        return None
    except GoneError as exc:
        await stream.send("ERROR", errors.gone(str(exc)).status())
        return None
    for event in backlog:
        visible = _visible(request, event)
        if visible:
            await stream.send(*visible)
    return max([since, *(e.rv for e in backlog)])


async def _follow(
    stream: _Stream,
    queue: asyncio.Queue[WatchEvent | None],
    request: WatchRequest,
    after_rv: int,
    bookmark_interval: float,
    cluster: Cluster,
) -> None:
    deadline = time.monotonic() + request.timeout
    next_bookmark = time.monotonic() + bookmark_interval
    while True:
        now = time.monotonic()
        if now >= deadline:
            if request.bookmarks:
                await stream.bookmark(max(after_rv, cluster.store.rv) if queue.empty() else after_rv)
            return
        wait = min(deadline, next_bookmark if request.bookmarks else deadline) - now
        try:
            event = await asyncio.wait_for(queue.get(), timeout=max(wait, 0.0))
        except TimeoutError:
            if request.bookmarks and time.monotonic() >= next_bookmark:
                # Nothing is queued, so every write up to the store's revision has been seen.
                await stream.bookmark(max(after_rv, cluster.store.rv))
                next_bookmark = time.monotonic() + bookmark_interval
            continue
        if event is None:
            return  # dropped on purpose (faults) or the kind went away
        if event.rv <= after_rv:
            continue
        after_rv = event.rv
        visible = _visible(request, event)
        if visible:
            await stream.send(*visible)
