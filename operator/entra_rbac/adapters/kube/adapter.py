"""The operator's view of the Kubernetes API: bindings, namespaces, roles, status, events.

Holds `KubeAdapter`, async methods over `KubeTransport` (each call runs in one of the adapter's
own worker threads, since the official client is synchronous; `close()` stops them). Once its
`ClusterCache` is started and synced (`start_cache`), the reads a reconcile makes (owned
bindings, namespaces, roles, the resource, the peering) are answered from the cache, and every
write's answer goes into it (docs/design.md, Observing from the cache). Objects
go in and out as plain manifests (dicts), the shape the pure core plans with. Failures are
raised as the typed `KubeError`s of `errors` (callers catch `NotFoundError`, `ConflictError`,
...); nothing is logged and dropped here, and nothing is decided: the reconciler does that.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from entra_rbac.adapters.kube.cache import DEFAULT_RESYNC, ClusterCache
from entra_rbac.adapters.kube.errors import NotFoundError
from entra_rbac.adapters.kube.stream import KubeStream
from entra_rbac.adapters.kube.transport import MERGE_PATCH, KubeTransport
from entra_rbac.constants import (
    API_VERSION,
    FIELD_MANAGER,
    GUARDRAILS_NAME,
    GUARDRAILS_PLURAL,
    KIND,
    OPERATOR_NAME,
    PLURAL,
    RBAC_API_VERSION,
)
from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.events import EVENT_NAMESPACE, EventDraft, event_manifest
from entra_rbac.core.naming import BindingKind, owner_selector
from entra_rbac.core.plan import Action, Verb
from entra_rbac.errors import KubeError

_RBAC = f"/apis/{RBAC_API_VERSION}"
_RESOURCES = f"/apis/{API_VERSION}/{PLURAL}"
# A page of a list; bounded so one huge cluster never means one huge response.
PAGE_SIZE = 500
# Own writes remembered so the watch echo of each can be told from someone else's edit.
OWN_WRITES_REMEMBERED = 20_000
# Kubernetes calls in flight at once. Their own threads, not the loop's default executor: that
# one also resolves host names for aiohttp (Graph), which a backlog of API calls must not delay.
MAX_CONCURRENT_CALLS = 16


def binding_path(kind: BindingKind, namespace: str | None, name: str | None = None) -> str:
    if kind == "ClusterRoleBinding":
        base = f"{_RBAC}/clusterrolebindings"
    else:
        if not namespace:
            raise ValueError("a RoleBinding needs a namespace")
        base = f"{_RBAC}/namespaces/{namespace}/rolebindings"
    return f"{base}/{name}" if name else base


def _where(kind: str, namespace: str | None, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


class KubeAdapter:
    """Async access to what the reconciler reads and writes. One instance per operator."""

    def __init__(
        self,
        transport: KubeTransport,
        *,
        instance: str = OPERATOR_NAME,
        max_concurrency: int = MAX_CONCURRENT_CALLS,
    ) -> None:
        self.transport = transport
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="kube-api")
        # reportingInstance of Events: which replica wrote them (the pod name in a cluster).
        self.instance = instance
        self._own_writes: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.cache: ClusterCache | None = None

    def start_cache(self, *, resync: float = DEFAULT_RESYNC, peering: str | None = None) -> ClusterCache:
        """Start the informers (list + watch) that reads are answered from once they are synced."""
        self.cache = ClusterCache(
            KubeStream(self.transport.api_client.configuration), resync=resync, peering=peering
        )
        self.cache.start()
        return self.cache

    async def stop_cache(self) -> None:
        if self.cache is not None:
            await self.cache.stop()

    def _remember(self, obj: dict[str, Any], *, deleted: bool = False) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        uid, version = meta.get("uid"), meta.get("resourceVersion")
        if self.cache is not None and not deleted:
            self.cache.observe_binding(obj)
        if uid:
            self._own_writes[(str(uid), "deleted" if deleted else str(version))] = None
            while len(self._own_writes) > OWN_WRITES_REMEMBERED:
                self._own_writes.popitem(last=False)
        return obj

    def is_own_write(self, uid: object, resource_version: object, *, deleted: bool = False) -> bool:
        """Whether a watch event shows a binding exactly as this process wrote (or deleted) it."""
        key = (str(uid), "deleted" if deleted else str(resource_version))
        return uid is not None and key in self._own_writes

    def close(self) -> None:
        """Stop the worker threads and close the client's connections."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.transport.api_client.close()  # type: ignore[no-untyped-call]

    async def _call(self, method: str, path: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        call = functools.partial(self.transport.request, method, path, what=what, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _list(
        self, path: str, *, what: str, query: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Every item, page by page (`limit` / `continue`); a failed page fails the whole list."""
        items: list[dict[str, Any]] = []
        params = {**(query or {}), "limit": str(PAGE_SIZE)}
        while True:
            page = await self._call("GET", path, what=what, query=params)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            params = {**params, "continue": token}

    async def server_time(self) -> datetime | None:
        """The API server's clock, from the `Date` header of GET /version (one-second resolution)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.transport.server_date)

    # --- bindings ---
    async def list_owned_bindings(self, owner_uid: str) -> list[dict[str, Any]]:
        """Every RoleBinding and ClusterRoleBinding labelled as managed for this owner (kind set)."""
        cached = self.cache.owned_bindings(owner_uid) if self.cache is not None else None
        if cached is not None:
            return cached
        query = {"labelSelector": owner_selector(owner_uid)}
        cluster, namespaced = await asyncio.gather(
            self._list(f"{_RBAC}/clusterrolebindings", what="list ClusterRoleBindings", query=query),
            self._list(f"{_RBAC}/rolebindings", what="list RoleBindings", query=query),
        )
        return [
            *({**item, "kind": "ClusterRoleBinding"} for item in cluster),
            *({**item, "kind": "RoleBinding"} for item in namespaced),
        ]

    async def get_binding(self, kind: BindingKind, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object at that name (ours or not), or None when there is none."""
        try:
            found = await self._call(
                "GET", binding_path(kind, namespace, name), what=f"get {_where(kind, namespace, name)}"
            )
        except NotFoundError:
            return None
        return {**found, "kind": kind}

    @contextlib.contextmanager
    def _writing(self, kind: BindingKind, namespace: str | None, name: str) -> Iterator[dict[str, Any]]:
        """Around one binding write: the cache holds what its watch says of that name meanwhile,
        then drops the echo (`outcome["written"]`: what the write made or deleted)."""
        outcome: dict[str, Any] = {}
        if self.cache is not None:
            self.cache.begin_binding_write(kind, namespace, name)
        try:
            yield outcome
        finally:
            if self.cache is not None:
                self.cache.end_binding_write(kind, namespace, name, outcome.get("written"))

    async def create_binding(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """POST; 409 AlreadyExists when the name is taken (re-read: it may be foreign)."""
        kind, namespace, name = _identity(manifest)
        with self._writing(kind, namespace, name) as outcome:
            created = await self._in_thread(self._create_sync, kind, namespace, name, manifest)
            outcome["written"] = self._remember({**created, "kind": kind})
        return outcome["written"]  # type: ignore[no-any-return]

    async def patch_binding(
        self, kind: BindingKind, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """JSON merge patch; with `metadata.resourceVersion` in it, a changed object answers 409 Conflict."""
        with self._writing(kind, namespace, name) as outcome:
            patched = await self._in_thread(self._patch_sync, kind, namespace, name, patch)
            outcome["written"] = self._remember({**patched, "kind": kind})
        return outcome["written"]  # type: ignore[no-any-return]

    async def _in_thread(self, call: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    def _create_sync(
        self, kind: BindingKind, namespace: str | None, name: str, manifest: Mapping[str, Any]
    ) -> dict[str, Any]:
        return self.transport.request(
            "POST",
            binding_path(kind, namespace),
            what=f"create {_where(kind, namespace, name)}",
            query={"fieldManager": FIELD_MANAGER},
            body=dict(manifest),
            decode=self._binding_decoder(),
        )

    def _patch_sync(
        self, kind: BindingKind, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        return self.transport.request(
            "PATCH",
            binding_path(kind, namespace, name),
            what=f"patch {_where(kind, namespace, name)}",
            query={"fieldManager": FIELD_MANAGER},
            body=dict(patch),
            content_type=MERGE_PATCH,
            decode=self._binding_decoder(),
        )

    def _binding_decoder(self) -> Callable[[bytes], Any] | None:
        """How a binding write's answer is read: by the cache, which knows the subject lists it
        holds (a user-mode answer's 1,000 subjects are not decoded again), else plain JSON."""
        return self.cache.decode_binding if self.cache is not None else None

    async def delete_binding(
        self, kind: BindingKind, namespace: str | None, name: str, *, uid: str, resource_version: str | None
    ) -> bool:
        """Delete only that very object (preconditions uid and resourceVersion).

        True when deleted, False when it was already gone. A different object at the name, or a
        change since it was read, answers 409 Conflict: nothing is deleted.
        """
        with self._writing(kind, namespace, name) as outcome:
            if not await self._in_thread(self._delete_sync, kind, namespace, name, uid, resource_version):
                return False
            outcome["written"] = self._forget_deleted(kind, namespace, name, uid)
        return True

    async def write_bindings(self, actions: Sequence[Action]) -> list[KubeError | None]:
        """Each action's write (a replace: its delete, then its create), in order, as one job of
        a worker thread instead of one hand-off to a thread and back per write (issue 17 point 2:
        4% of the operator's CPU was those hand-offs). Each write is still its own request with
        its own outcome, in the list's order: None when it took effect (a delete of an object
        already gone included), else its `KubeError`; a failed write does not stop the next.
        The cache holds the watch's news of every name until the job is answered, then takes
        each write's answer as `create_binding` and the others do (own-write bookkeeping)."""
        if not actions:
            return []
        for action in actions:
            if self.cache is not None:
                self.cache.begin_binding_write(action.kind, action.namespace, action.name)
        # Their subject lists held while the job is out, so the answers are recognised by bytes.
        held = self.cache.hold_subjects(actions) if self.cache is not None else []
        halt = threading.Event()  # a cancelled reconcile: the job stops before its next write
        answers: list[_Answer] = []
        try:
            job = functools.partial(self._write_each, actions, answers, halt)
            await asyncio.get_running_loop().run_in_executor(self._executor, job)
        finally:
            halt.set()
            answered = list(answers)  # cancelled: a write in flight meanwhile counts as failed
            for index, action in enumerate(actions):
                made = self._took(action, answered[index]) if index < len(answered) else None
                if self.cache is not None:
                    self.cache.end_binding_write(action.kind, action.namespace, action.name, made)
            del held  # the cache's bindings hold what they took
        return [answer.error for answer in answered]

    def _write_each(self, actions: Sequence[Action], answers: list[_Answer], halt: threading.Event) -> None:
        """In a worker thread: the writes, one request each, each answer appended as it comes."""
        for action in actions:
            if halt.is_set():
                return
            answer = _Answer()
            kind, namespace, name = action.kind, action.namespace, action.name
            try:
                if action.verb in (Verb.REPLACE, Verb.DELETE):
                    assert action.uid is not None
                    answer.deleted = self._delete_sync(
                        kind, namespace, name, action.uid, action.resource_version
                    )
                if action.verb in (Verb.CREATE, Verb.REPLACE):
                    assert action.manifest is not None
                    answer.made = self._create_sync(kind, namespace, name, action.manifest)
                elif action.verb is Verb.PATCH:
                    assert action.patch is not None
                    answer.made = self._patch_sync(kind, namespace, name, action.patch)
            except KubeError as error:
                answer.error = error
            answers.append(answer)

    def _delete_sync(
        self, kind: BindingKind, namespace: str | None, name: str, uid: str, resource_version: str | None
    ) -> bool:
        """That very object deleted (preconditions uid and resourceVersion); False when already gone."""
        preconditions: dict[str, str] = {"uid": uid}
        if resource_version:
            preconditions["resourceVersion"] = resource_version
        try:
            self.transport.request(
                "DELETE",
                binding_path(kind, namespace, name),
                what=f"delete {_where(kind, namespace, name)}",
                body={"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions},
            )
        except NotFoundError:
            return False
        return True

    def _forget_deleted(
        self, kind: BindingKind, namespace: str | None, name: str, uid: str
    ) -> dict[str, Any]:
        """On the loop: a binding our write deleted into the own writes and the cache; what it wrote."""
        self._remember({"metadata": {"uid": uid}}, deleted=True)
        if self.cache is not None:
            self.cache.observe_binding_deleted(kind, namespace, name, uid)
        return {"metadata": {"uid": uid}}

    def _took(self, action: Action, answer: _Answer) -> dict[str, Any] | None:
        """On the loop: one answered action into the own writes and the cache; what it wrote."""
        written: dict[str, Any] | None = None
        if answer.deleted:
            assert action.uid is not None
            written = self._forget_deleted(action.kind, action.namespace, action.name, action.uid)
        if answer.made is not None:
            written = self._remember({**answer.made, "kind": action.kind})
        return written

    # --- the resources ---
    async def list_resources(self) -> list[dict[str, Any]]:
        """Every EntraGroupBinding (paged): the periodic directory refresh walks them."""
        cached = self.cache.resource_list() if self.cache is not None else None
        if cached is not None:
            return cached
        return await self._list(_RESOURCES, what=f"list {KIND}s")

    # --- namespaces and roles ---
    def view_version(self) -> Hashable | None:
        """Changes whenever a namespace or role the reconciles read changes; None without a
        synced cache (every read then goes to the API server, so nothing may be assumed)."""
        return self.cache.view_version() if self.cache is not None else None

    async def list_namespaces(self) -> list[NamespaceInfo]:
        cached = self.cache.namespace_infos() if self.cache is not None else None
        if cached is not None:
            return cached
        items = await self._list("/api/v1/namespaces", what="list namespaces")
        return sorted(
            (
                NamespaceInfo(
                    name=item["metadata"]["name"],
                    labels=dict(item["metadata"].get("labels") or {}),
                    terminating=(item.get("status") or {}).get("phase") == "Terminating"
                    or bool(item["metadata"].get("deletionTimestamp")),
                )
                for item in items
            ),
            key=lambda namespace: namespace.name,
        )

    async def get_role(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Role (its rules are what the guardrails check), or None."""
        if self.cache is not None and (found := self.cache.role(namespace, name))[0]:
            return found[1]
        try:
            return await self._call(
                "GET", f"{_RBAC}/namespaces/{namespace}/roles/{name}", what=f"get Role {namespace}/{name}"
            )
        except NotFoundError:
            return None

    async def get_cluster_role(self, name: str) -> dict[str, Any] | None:
        if self.cache is not None and (found := self.cache.cluster_role(name))[0]:
            return found[1]
        try:
            return await self._call("GET", f"{_RBAC}/clusterroles/{name}", what=f"get ClusterRole {name}")
        except NotFoundError:
            return None

    async def list_cluster_roles(self, selector: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The ClusterRoles a label selector (as in an aggregationRule) matches, filtered by the server."""
        cached = self.cache.cluster_roles_selected(selector) if self.cache is not None else None
        if cached is not None:
            return cached
        return await self._list(
            f"{_RBAC}/clusterroles",
            what="list ClusterRoles",
            query={"labelSelector": selector_query(selector)},
        )

    # --- the guardrails ---
    async def get_guardrails(self) -> dict[str, Any] | None:
        """The Guardrails object (docs/design.md, Guardrails), or None when it (or its kind) is absent."""
        try:
            return await self._call(
                "GET",
                f"/apis/{API_VERSION}/{GUARDRAILS_PLURAL}/{GUARDRAILS_NAME}",
                what=f"get Guardrails {GUARDRAILS_NAME}",
            )
        except NotFoundError:
            return None

    async def get_peering(self, name: str) -> dict[str, Any] | None:
        """kopf's ClusterKopfPeering `name` (its status holds every instance's heartbeat), or None."""
        if self.cache is not None and (found := self.cache.peering_object(name))[0]:
            return found[1]
        try:
            return await self._call(
                "GET", f"/apis/kopf.dev/v1/clusterkopfpeerings/{name}", what=f"get ClusterKopfPeering {name}"
            )
        except NotFoundError:
            return None

    # --- the resource: status and events ---
    async def get_resource(self, name: str) -> dict[str, Any] | None:
        if self.cache is not None and (found := self.cache.resource(name))[0]:
            return found[1]
        try:
            return await self._call("GET", f"{_RESOURCES}/{name}", what=f"get {KIND} {name}")
        except NotFoundError:
            return None

    async def patch_status(self, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource (the main endpoint would ignore `.status`)."""
        patched = await self._call(
            "PATCH",
            f"{_RESOURCES}/{name}/status",
            what=f"patch status of {KIND} {name}",
            query={"fieldManager": FIELD_MANAGER},
            body={"status": dict(status)},
            content_type=MERGE_PATCH,
        )
        if self.cache is not None:
            self.cache.observe_resource(patched)
        return patched

    async def create_event(self, draft: EventDraft, *, owner_name: str, owner_uid: str, now: datetime) -> str:
        """POST a core/v1 Event about the EntraGroupBinding; the name the API server generated."""
        manifest = event_manifest(
            draft, owner_name=owner_name, owner_uid=owner_uid, instance=self.instance, now=now
        )
        created = await self._call(
            "POST",
            f"/api/v1/namespaces/{EVENT_NAMESPACE}/events",
            what=f"create Event {draft.reason} for {owner_name}",
            body=manifest,
        )
        return str(created["metadata"]["name"])

    async def patch_event(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch an Event (a repeat counted up); `NotFoundError` when it expired meanwhile."""
        return await self._call(
            "PATCH",
            f"/api/v1/namespaces/{EVENT_NAMESPACE}/events/{name}",
            what=f"patch Event {name}",
            body=dict(patch),
            content_type=MERGE_PATCH,
        )


class _Answer:
    """What one action's writes answered (filled in the worker thread, read on the loop)."""

    __slots__ = ("deleted", "error", "made")

    def __init__(self) -> None:
        self.deleted = False
        self.made: dict[str, Any] | None = None
        self.error: KubeError | None = None


def selector_query(selector: Mapping[str, Any]) -> str:
    """A LabelSelector object as the `labelSelector` query string (`k=v,k in (a,b),!k`).

    Written here: the official client takes only the string, and the grammar is small."""
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(sorted(expression.get("values") or []))
        parts.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }[operator]
        )
    return ",".join(parts)


def _identity(manifest: Mapping[str, Any]) -> tuple[BindingKind, str | None, str]:
    kind = manifest.get("kind")
    if kind not in ("ClusterRoleBinding", "RoleBinding"):
        raise ValueError(f"kind must be RoleBinding or ClusterRoleBinding, got {kind!r}")
    metadata = manifest.get("metadata") or {}
    return kind, metadata.get("namespace"), str(metadata.get("name", ""))
