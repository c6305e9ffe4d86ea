"""The operator's cache of the cluster: what every reconcile observes, kept by watches.

Holds `ClusterCache`: one `Informer` per collection a reconcile reads (managed RoleBindings and
ClusterRoleBindings, selected on the server by the managed-by label; Namespaces; Roles and
ClusterRoles, for the guardrails and RoleNotFound; the EntraGroupBindings; kopf's peering object)
and the lookups `KubeAdapter` answers from them once they are synced, so a refresh of unchanged
resources sends no API request at all (docs/design.md, Observing from the cache). Writes of this
process are folded in from their answers (reads see their own writes). It stores objects and
answers lookups by the same selectors the API server would apply; which bindings count is still
decided by the pure core (`core.plan.split_owned`), so a forged label steers nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from entra_rbac.adapters.kube.informer import Informer, Object, interned, trimmed
from entra_rbac.adapters.kube.sharing import ValueSharing
from entra_rbac.adapters.kube.stream import KubeStream
from entra_rbac.constants import (
    API_VERSION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    OWNER_UID_LABEL,
    PLURAL,
    RBAC_API_VERSION,
)
from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.models import LabelSelector
from entra_rbac.core.naming import BindingKind, managed_selector, owner_labels
from entra_rbac.core.plan import Action
from entra_rbac.core.selectors import selector_matches
from entra_rbac.core.subjects import RenderedSubjects, SharedSubjects, SubjectInterner

_RBAC = f"/apis/{RBAC_API_VERSION}"
# How often each collection is listed again although its watch runs: a backstop for an event
# lost to a bug (a resumed watch replays every event since its resourceVersion, or answers 410
# and the collection is listed again at once). docs/configuration.md, ENTRA_RBAC_CACHE_RESYNC.
DEFAULT_RESYNC = 1800.0
# Bindings per page when listing them: a user-mode binding holds thousands of subjects, and a page
# is decoded whole before the cache takes its items in (500 x 1,000 subjects: 500,000 dicts at
# once after a restart, issue 17 point 7); each page is taken in before the next is read.
BINDING_PAGE_SIZE = 100


def _binding(kind: str, subjects: SubjectInterner, sharing: ValueSharing) -> Any:
    """A binding as the cache holds it: trimmed, its kind set, its subject list shared with every
    cached binding listing the same subjects (user mode: one list per resource, not per binding),
    and its labels, annotations, owner references and roleRef shared likewise (every binding of
    a resource carries the same ones: about 0.9 KiB per binding, issue 17 point 6)."""

    def prepare(obj: Mapping[str, Any]) -> Object:
        # The subjects are shared whole (not interned string by string): the rest is trimmed.
        prepared = {**trimmed({k: v for k, v in obj.items() if k != "subjects"}), "kind": kind}
        if "subjects" in obj:
            prepared["subjects"] = subjects.intern(obj["subjects"])
        if "roleRef" in prepared:
            prepared["roleRef"] = sharing.mapping(prepared["roleRef"])
        meta = prepared.get("metadata")
        if isinstance(meta, dict):
            for field in ("labels", "annotations"):
                if field in meta:
                    meta[field] = sharing.mapping(meta[field])
            if "ownerReferences" in meta:
                meta["ownerReferences"] = sharing.mappings(meta["ownerReferences"])
        return prepared

    return prepare


def _role(obj: Mapping[str, Any]) -> Object:
    """A Role or ClusterRole as the guardrails read it: identity, labels, rules, aggregation."""
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "labels") if k in meta}
    role: Object = interned(
        {"metadata": kept, **{k: obj[k] for k in ("kind", "rules", "aggregationRule") if k in obj}}
    )
    return role


def _owner(obj: Object) -> Iterable[str]:
    owner = ((obj.get("metadata") or {}).get("labels") or {}).get(OWNER_UID_LABEL)
    return (owner,) if owner else ()


def _namespace(obj: Object) -> Iterable[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return (namespace,) if namespace else ()


def _uid_index(obj: Object) -> Iterable[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return (str(uid),) if uid else ()


def _labels_match(obj: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in wanted.items())


class ClusterCache:
    """Informers of everything a reconcile observes; lookups answer None until theirs is synced."""

    def __init__(
        self, stream: KubeStream, *, resync: float = DEFAULT_RESYNC, peering: str | None = None
    ) -> None:
        self.stream = stream
        managed = {"labelSelector": managed_selector()}
        self.subjects = SubjectInterner()
        self.sharing = ValueSharing()

        def informer(path: str, what: str, **kwargs: Any) -> Informer:
            return Informer(stream, path, what=what, resync=resync, **kwargs)

        self.cluster_bindings = informer(
            f"{_RBAC}/clusterrolebindings",
            "managed ClusterRoleBindings",
            query=managed,
            prepare=_binding("ClusterRoleBinding", self.subjects, self.sharing),
            page_size=BINDING_PAGE_SIZE,
            decode=self.decode_event,
            decode_page=self.decode_page,
            indexes={"owner": _owner},
        )
        self.role_bindings = informer(
            f"{_RBAC}/rolebindings",
            "managed RoleBindings",
            query=managed,
            prepare=_binding("RoleBinding", self.subjects, self.sharing),
            page_size=BINDING_PAGE_SIZE,
            decode=self.decode_event,
            decode_page=self.decode_page,
            indexes={"owner": _owner, "namespace": _namespace},
        )
        self.namespaces = informer("/api/v1/namespaces", "namespaces")
        self.cluster_roles = informer(f"{_RBAC}/clusterroles", "ClusterRoles", prepare=_role)
        self.roles = informer(f"{_RBAC}/roles", "Roles", prepare=_role)
        self.resources = informer(
            f"/apis/{API_VERSION}/{PLURAL}", "EntraGroupBindings", indexes={"uid": _uid_index}
        )
        self.peering_name = peering
        self.peering = (
            informer(
                "/apis/kopf.dev/v1/clusterkopfpeerings",
                "ClusterKopfPeering",
                query={"fieldSelector": f"metadata.name={peering}"},
            )
            if peering
            else None
        )
        self._selected: dict[tuple[str, int], list[Object]] = {}

    @property
    def informers(self) -> list[Informer]:
        every = [
            self.cluster_bindings,
            self.role_bindings,
            self.namespaces,
            self.cluster_roles,
            self.roles,
            self.resources,
        ]
        return [*every, *([self.peering] if self.peering is not None else [])]

    def start(self) -> None:
        for informer in self.informers:
            informer.start()

    async def wait_synced(self, seconds: float) -> bool:
        """Whether every informer listed its collection within `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self.informers)), seconds)
        return all(i.synced.is_set() for i in self.informers)

    async def stop(self) -> None:
        await asyncio.gather(*(i.stop() for i in self.informers))
        await self.stream.close()

    # --- bindings ---
    def decode_binding(self, data: bytes) -> Any:
        """A binding write's answer from its bytes: subjects that are byte for byte a list the
        cache holds are that list, not decoded again (`core.subject_bytes`)."""
        return self.subjects.decode(data, orjson.loads)

    def hold_subjects(self, actions: Sequence[Action]) -> list[SharedSubjects]:
        """The held lists of the subjects these writes carry (`SubjectInterner.hold`), for the
        caller to keep while they are out, so their answers are recognised by their bytes."""
        held: dict[int, SharedSubjects] = {}
        for action in actions:
            for body in (action.manifest, action.patch):
                rendered = body.get("subjects") if body is not None else None
                if isinstance(rendered, RenderedSubjects) and id(rendered) not in held:
                    found = self.subjects.hold(rendered)
                    if found is not None:
                        held[id(rendered)] = found
        return list(held.values())

    def decode_event(self, data: bytes) -> Any:
        """A binding watch event from its bytes, likewise (the echo of our own write, mostly)."""
        return self.subjects.decode(data, orjson.loads, event=True)

    def decode_page(self, data: bytes) -> Any:
        """A page of a binding list from its bytes, likewise (a restart's list, a resync)."""
        return self.subjects.decode_page(data, orjson.loads)

    def _bindings(self, kind: BindingKind) -> Informer:
        return self.cluster_bindings if kind == "ClusterRoleBinding" else self.role_bindings

    def owned_bindings(self, owner_uid: str) -> list[Object] | None:
        """As `list_owned_bindings`: every binding with this owner's labels (the same selector the
        API server applies); None until both binding informers are synced."""
        if not (self.cluster_bindings.synced.is_set() and self.role_bindings.synced.is_set()):
            return None
        wanted = owner_labels(owner_uid)
        return [
            obj
            for informer in (self.cluster_bindings, self.role_bindings)
            for obj in informer.indexed("owner", wanted[OWNER_UID_LABEL])
            if _labels_match(obj, wanted)
        ]

    def owners_in(self, namespace: str) -> set[str]:
        """The owner uids of the managed RoleBindings in a namespace (one losing a selector match
        still concerns the resources with bindings there)."""
        owners = set()
        for key in self.role_bindings.index_values("namespace").get(namespace, ()):
            labels = (self.role_bindings.objects[key].get("metadata") or {}).get("labels") or {}
            if labels.get(OWNER_UID_LABEL):
                owners.add(str(labels[OWNER_UID_LABEL]))
        return owners

    def observe_binding(self, obj: Mapping[str, Any]) -> None:
        """A binding as a write of ours answered (create, patch): the cache sees it at once."""
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE:
            kind = obj.get("kind")
            self._bindings("ClusterRoleBinding" if kind == "ClusterRoleBinding" else "RoleBinding").observe(
                obj
            )

    def begin_binding_write(self, kind: BindingKind, namespace: str | None, name: str) -> None:
        self._bindings(kind).begin_write((namespace or "", name))

    def end_binding_write(
        self, kind: BindingKind, namespace: str | None, name: str, written: Mapping[str, Any] | None
    ) -> None:
        self._bindings(kind).end_write((namespace or "", name), written)

    def observe_binding_deleted(self, kind: BindingKind, namespace: str | None, name: str, uid: str) -> None:
        self._bindings(kind).observe_deleted((namespace or "", name), uid)

    # --- namespaces and roles ---
    def namespace_infos(self) -> list[NamespaceInfo] | None:
        if not self.namespaces.synced.is_set():
            return None
        return sorted(
            (
                NamespaceInfo(
                    name=str(item["metadata"]["name"]),
                    labels=dict(item["metadata"].get("labels") or {}),
                    terminating=(item.get("status") or {}).get("phase") == "Terminating"
                    or bool(item["metadata"].get("deletionTimestamp")),
                )
                for item in self.namespaces.values()
            ),
            key=lambda namespace: namespace.name,
        )

    def view_version(self) -> tuple[int, int, int] | None:
        """A value that changes whenever a Namespace, Role or ClusterRole changes (what a
        reconcile's cluster view is read from); None until all three informers are synced."""
        informers = (self.namespaces, self.roles, self.cluster_roles)
        if not all(i.synced.is_set() for i in informers):
            return None
        return (self.namespaces.version, self.roles.version, self.cluster_roles.version)

    def role(self, namespace: str, name: str) -> tuple[bool, Object | None]:
        """(answered, the Role or None): not answered until the Role informer is synced."""
        if not self.roles.synced.is_set():
            return False, None
        return True, self.roles.get((namespace, name))

    def cluster_role(self, name: str) -> tuple[bool, Object | None]:
        if not self.cluster_roles.synced.is_set():
            return False, None
        return True, self.cluster_roles.get(("", name))

    def cluster_roles_selected(self, selector: Mapping[str, Any]) -> list[Object] | None:
        """The ClusterRoles a label selector object selects (as the API server would), memoised
        until any ClusterRole changes; None when not synced or the selector does not parse here
        (the API server then answers)."""
        if not self.cluster_roles.synced.is_set():
            return None
        try:
            parsed = LabelSelector.model_validate(selector)
        except ValidationError:
            return None
        memo = (parsed.model_dump_json(), self.cluster_roles.version)
        if memo not in self._selected:
            if len(self._selected) > 1000:
                self._selected.clear()
            self._selected[memo] = sorted(
                (
                    obj
                    for obj in self.cluster_roles.values()
                    if selector_matches(parsed, (obj.get("metadata") or {}).get("labels") or {})
                ),
                key=lambda obj: str(obj["metadata"].get("name")),
            )
        return self._selected[memo]

    # --- the resources and the peering ---
    def resource(self, name: str) -> tuple[bool, Object | None]:
        if not self.resources.synced.is_set():
            return False, None
        return True, self.resources.get(("", name))

    def resource_list(self) -> list[Object] | None:
        if not self.resources.synced.is_set():
            return None
        return sorted(self.resources.values(), key=lambda obj: str(obj["metadata"].get("name")))

    def observe_resource(self, obj: Mapping[str, Any]) -> None:
        """The resource as a write of ours answered (status) or as kopf's watch delivered it."""
        self.resources.observe(obj)

    def peering_object(self, name: str) -> tuple[bool, Object | None]:
        if self.peering is None or name != self.peering_name or not self.peering.synced.is_set():
            return False, None
        return True, self.peering.get(("", name))
