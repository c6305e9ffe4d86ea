"""The cluster's changes from the operator's own cache, not from kopf (docs/design.md, Triggers).

Holds `CacheFollower` (hands the cache's namespace and managed-binding changes to the routers
of `routing`, and each EntraGroupBinding that arrives or changes its spec to the directory's
look-ahead, docs/design.md, Directory semantics) and `ResourceIndex` (the cache's
EntraGroupBindings as the routers read them: uid -> entry). Why not kopf: kopf ran a worker, a
handler and an index update for every event of every managed RoleBinding, and after a restart
its index-readiness bookkeeping woke every waiter per object: most of the operator's CPU at
20,000 bindings. The informers of `adapters.kube.cache` keep the same objects for the reconciles
anyway; their listeners cost a dict update. Like kopf's handlers, nothing is started while
kopf's peering pauses this instance. It decides nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Coroutine, Iterator, Mapping
from typing import Any

from entra_rbac import reconciler
from entra_rbac.adapters.kube.cache import ClusterCache
from entra_rbac.adapters.kube.informer import Object
from entra_rbac.triggers.entries import ResourceEntry, resource_entry
from entra_rbac.triggers.memo import OperatorMemo
from entra_rbac.triggers.peering import PeeringGate
from entra_rbac.triggers.routing import binding_changed, namespace_changed

log = logging.getLogger("entra_rbac.triggers")


class ResourceIndex(Mapping[str, Collection[ResourceEntry]]):
    """The cache's EntraGroupBindings by uid, read where kopf's resource index was."""

    def __init__(self, cache: ClusterCache) -> None:
        self.cache = cache

    def _by_uid(self) -> dict[str, Any]:
        return self.cache.resources.index_values("uid")

    def __getitem__(self, uid: str) -> Collection[ResourceEntry]:
        keys = self._by_uid()[uid]
        return [resource_entry(self.cache.resources.objects[key]) for key in sorted(keys)]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._by_uid()))

    def __len__(self) -> int:
        return len(self._by_uid())


class CacheFollower:
    """Starts the routers' reconciles for the cache's changes; keeps its tasks until they end."""

    def __init__(self, memo: OperatorMemo, cache: ClusterCache, gate: PeeringGate | None) -> None:
        self.memo = memo
        self.cache = cache
        self.gate = gate
        self.resources = ResourceIndex(cache)
        self._tasks: set[asyncio.Task[None]] = set()
        cache.namespaces.listeners.append(self._namespace)
        cache.role_bindings.listeners.append(self._binding)
        cache.cluster_bindings.listeners.append(self._binding)
        cache.resources.listeners.append(self._resource)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run(work), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            if self.gate is not None and await self.gate.paused():
                work.close()
                return
            await work
        except Exception:
            log.exception("Handling a cluster change failed; the refresh still covers it")

    def _namespace(self, kind: str, old: Object | None, new: Object | None) -> None:
        if old is not None:
            # What it was before this change: the routers compare the labels (kopf gave no `old`).
            meta = old.get("metadata") or {}
            terminating = (
                bool(meta.get("deletionTimestamp")) or (old.get("status") or {}).get("phase") == "Terminating"
            )
            self.memo.namespaces.update(str(meta.get("name", "")), meta.get("labels") or {}, terminating)
        body = new if new is not None else old
        assert body is not None
        name = str((body.get("metadata") or {}).get("name", ""))
        owners = {name: self.cache.owners_in(name)}
        self._spawn(
            namespace_changed(kind, body, self.resources, owners, self.memo), name=f"namespace-{kind.lower()}"
        )

    def _binding(self, kind: str, old: Object | None, new: Object | None) -> None:
        body = new if new is not None else old
        assert body is not None
        self._spawn(binding_changed(kind, body, self.resources, self.memo), name=f"binding-{kind.lower()}")

    def _resource(self, kind: str, old: Object | None, new: Object | None) -> None:
        """A resource arrived (or its spec changed, or it is gone) at the watch, usually well
        before kopf hands it to its reconcile during a burst: its groups join the look-ahead.
        Cheap (the spec's groups parsed once per arrival); it reads nothing itself."""
        directory = self.memo.clients.directory
        if new is None:
            if old is not None:
                directory.unexpect(reconciler.expected_lookups(old))
        elif old is None or _generation(old) != _generation(new):
            directory.expect(reconciler.expected_lookups(new))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _generation(obj: Object) -> object:
    return (obj.get("metadata") or {}).get("generation")
