"""The controllers a real control plane runs that the sandbox needs: garbage collector, namespaces.

Holds GarbageCollector, an asyncio task woken after writes that may leave work: it deletes
dependents whose owners (by ownerReference uid, in the dependent's namespace or cluster-scoped)
are all gone; finishes Foreground deletion (dependents first, those with blockOwnerDeletion
holding the owner, then the owner's
`foregroundDeletion` finalizer) and Orphan deletion (ownerReferences stripped, then `orphan`
removed); and runs namespace termination (contents deleted, then the `kubernetes` finalizer
removed and the namespace removed). Passes repeat until nothing changes. Holds no HTTP.

Incremental (docs/design.md, The sandbox contract): a pass looks only at the store's GC candidates (objects
being deleted, objects written with ownerReferences, dependents of a removed owner) and finds
dependents through the store's owner-uid index; a change in the served kinds (a CRD came or went,
so an owner kind may have become resolvable) makes the next pass look at every object.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from typing import Any

from .cluster import NAMESPACES, Cluster
from .store import StorageKey

log = logging.getLogger(__name__)


class GarbageCollector:
    """Runs collection passes on the server's loop whenever `kick()` is called."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._served: frozenset[StorageKey] = frozenset()
        cluster.on_garbage = self.kick

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sandbox-gc")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                # Bounded: each pass makes progress or stops; the bound guards against a bug looping.
                for _ in range(1000):
                    if not self.collect_once():
                        break
                    await asyncio.sleep(0)  # let requests in between passes
            except Exception:  # a bug here must not kill the server; it is logged loudly
                log.exception("Garbage collection pass failed")

    # One pass -----------------------------------------------------------------------------

    def collect_once(self) -> bool:
        """One pass over the candidates; True when it changed something."""
        served = frozenset(t.storage_key for t in self._cluster.registry.types())
        everything, self._served = served != self._served, served
        changed = False
        for key, obj in self._cluster.store.take_gc_candidates(everything):
            meta = obj["metadata"]
            if self._cluster.store.get(key, meta.get("namespace") or "", meta["name"]) is not obj:
                continue  # changed earlier in this pass
            if meta.get("deletionTimestamp"):
                changed |= self._finish_deletion(key, obj)
            elif meta.get("ownerReferences") and not self._has_live_owner(obj):
                changed |= self._delete(key, obj, "Background")
        return changed

    def _has_live_owner(self, obj: dict[str, Any]) -> bool:
        namespace = obj["metadata"].get("namespace") or ""
        for ref in obj["metadata"].get("ownerReferences") or []:
            owner = self._cluster.store.by_uid(ref.get("uid", ""))
            if owner is None:
                rtype = self._cluster.registry.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
                if rtype is None:
                    return True  # an owner kind this server cannot resolve: never collect (as the real GC)
                continue
            owner_ns = owner["metadata"].get("namespace") or ""
            if owner_ns in ("", namespace):
                return True
        return False

    def _finish_deletion(self, key: StorageKey, obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if key == NAMESPACES:
            return self._terminate_namespace(obj)
        if "orphan" in finalizers:
            for dep_key, dep in self._cluster.store.dependents(meta["uid"]):
                stripped = copy.deepcopy(dep)
                stripped["metadata"]["ownerReferences"] = [
                    r for r in dep["metadata"]["ownerReferences"] if r.get("uid") != meta["uid"]
                ]
                self._cluster.store.put(dep_key, stripped)
            return self._remove_finalizer(key, obj, "orphan")
        if "foregroundDeletion" in finalizers:
            # Every dependent is deleted; only those whose reference has blockOwnerDeletion hold
            # the owner until they are gone (as the real garbage collector does).
            changed = False
            blocking = False
            for dep_key, dep in self._cluster.store.dependents(meta["uid"]):
                if not dep["metadata"].get("deletionTimestamp"):
                    changed |= self._delete(dep_key, dep, "Background")
                blocking |= any(
                    r.get("uid") == meta["uid"] and r.get("blockOwnerDeletion") is True
                    for r in dep["metadata"].get("ownerReferences") or []
                )
            if blocking:
                return changed
            return self._remove_finalizer(key, obj, "foregroundDeletion") or changed
        return False

    def _terminate_namespace(self, namespace: dict[str, Any]) -> bool:
        name = namespace["metadata"]["name"]
        store = self._cluster.store
        remaining = [(k, o) for k in store.keys_list() if k != NAMESPACES for o in store.list(k, name)]
        changed = False
        for key, obj in remaining:
            if not obj["metadata"].get("deletionTimestamp"):
                changed |= self._delete(key, obj, "Background")
        if any(store.get(k, name, o["metadata"]["name"]) is not None for k, o in remaining):
            return changed  # content with finalizers still going
        spec_finalizers = (namespace.get("spec") or {}).get("finalizers") or []
        if spec_finalizers:
            done = copy.deepcopy(namespace)
            done["spec"]["finalizers"] = []
            store.put(NAMESPACES, done)
            namespace = done
        if not namespace["metadata"].get("finalizers"):
            store.remove(NAMESPACES, namespace)
        return True

    def _remove_finalizer(self, key: StorageKey, obj: dict[str, Any], finalizer: str) -> bool:
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != finalizer]
        if new["metadata"]["finalizers"]:
            self._cluster.store.put(key, new)
        else:
            self._cluster.store.remove(key, new)
        return True

    def _delete(self, key: StorageKey, obj: dict[str, Any], policy: str) -> bool:
        rtype = self._cluster.type_for_key(key)
        if rtype is None:
            return False
        self._cluster.delete_object(rtype, obj, policy)
        return True
