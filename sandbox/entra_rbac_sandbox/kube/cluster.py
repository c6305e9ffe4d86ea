"""The API semantics of the sandbox server, independent of HTTP: what each verb does to the store.

Holds Cluster: get/list and the write path (create, update, patch, delete) with everything a
real API server applies on the way: server-set metadata (uid, creationTimestamp,
resourceVersion, generation, generateName), optimistic concurrency, status subresource rules,
validation (built-in kinds here, CRD schemas through crds.py), namespace existence and
termination, RBAC escalation checks on roles and bindings, ValidatingAdmissionPolicies
(admission.py), finalizers and deletionTimestamp, propagation policies, ClusterRole
aggregation and CRD registration. Authentication and the
request's own authorization happen in the HTTP layer; garbage collection in gc.py.
"""

from __future__ import annotations

import base64
import copy
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from . import admission, crds, errors, managed_fields, rbac
from .errors import FieldError
from .escalation import check_escalation
from .known_fields import prune_unknown
from .patch import apply_patch
from .resources import Registry, ResourceType
from .selectors import FieldRequirement, Requirement, matches_labels
from .store import ObjectKey, Store
from .validation import validate, validate_metadata

ManagedFields = list[dict[str, Any]]  # metadata.managedFields (managed_fields.py)
NAMESPACES = ("", "namespaces")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
_GENERATION_KINDS = ("CustomResourceDefinition",)
_SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Named here: inside Cluster, `list` is its method.
Objects = list[dict[str, Any]]
Labels = list[Requirement]
Fields = list[FieldRequirement]


def present(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as read at `rtype`'s version (custom objects are stored once for all versions)."""
    if obj.get("apiVersion") == rtype.api_version:
        return obj
    return {**obj, "apiVersion": rtype.api_version}


class Cluster:
    """The store plus the rules every request goes through."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.registry = Registry()
        self.authorizer = rbac.Authorizer(self.store)
        # Warnings of the request being served (the HTTP layer clears them and sends them as
        # `Warning` headers); safe because a request's write runs without yielding the loop.
        self.warnings: list[str] = []
        # Called after every write that may leave garbage (set by the garbage collector).
        self.on_garbage: Callable[[], None] = lambda: None

    # Reads --------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype.storage_key, namespace, name)
        if obj is None:
            raise errors.not_found(rtype.plural, name, rtype.group)
        return present(rtype, obj)

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
    ) -> list[dict[str, Any]]:
        return self.list_page(rtype, namespace, labels, fields)[0]

    def list_page(
        self,
        rtype: ResourceType,
        namespace: str | None,
        labels: Labels,
        fields: Fields,
        *,
        after: ObjectKey | None = None,
        limit: int = 0,
    ) -> tuple[Objects, bool, int | None]:
        """One page of a list: the first `limit` matches after the key `after` (all when 0), whether
        more follow, and how many (None with a selector: the real server leaves
        remainingItemCount unset then, as it cannot know without reading them). Reads only what
        the page needs, so paging through a kind is linear in its size."""
        page: Objects = []
        for obj in self.store.iterate(rtype.storage_key, namespace, after):
            if not (
                matches_labels(labels, obj["metadata"].get("labels")) and all(f.matches(obj) for f in fields)
            ):
                continue
            if limit and len(page) == limit:
                if labels or fields:
                    return page, True, None
                last = page[-1]["metadata"]
                left = self.store.count_after(
                    rtype.storage_key, namespace, (last.get("namespace") or "", last["name"])
                )
                return page, True, left
            page.append(present(rtype, obj))
        return page, False, 0

    # Writes -------------------------------------------------------------------------------

    def create(
        self,
        rtype: ResourceType,
        namespace: str,
        body: dict[str, Any],
        user: rbac.UserInfo,
        *,
        dry_run: bool = False,
        field_validation: str = "Warn",
        manager: str = "",
        managed: ManagedFields | None = None,
    ) -> dict[str, Any]:
        """Create; `manager` (a field manager) records its fields in managedFields, unless a
        server-side apply gives `managed` itself."""
        obj = self.prepare_new(rtype, namespace, body)
        name = obj["metadata"]["name"]
        self._check_namespace(rtype, namespace, name)
        if self.store.get(rtype.storage_key, namespace, name) is not None:
            raise errors.already_exists(rtype.plural, name, rtype.group)
        if rtype.has_status and rtype.crd_name is not None:
            obj.pop("status", None)  # the main endpoint ignores status on custom objects
        obj = self._validated(rtype, obj, None, field_validation)
        if managed is None and manager:
            managed = managed_fields.after_update(rtype, None, obj, manager, "")
        if managed:
            obj["metadata"]["managedFields"] = managed
        check_escalation(self.authorizer, rtype, obj, user)
        self._admit(admission.Request(rtype, "CREATE", obj, None, user, dry_run=dry_run))
        if dry_run:
            return obj
        return self._commit(rtype, obj)

    def prepare_new(self, rtype: ResourceType, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        meta = obj["metadata"]
        if rtype.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)
            )
        if not meta.get("name"):
            required = FieldError("metadata.name", "FieldValueRequired", "name or generateName is required")
            raise errors.invalid(rtype.kind, "", [required], rtype.group)
        if body.get("kind") not in (None, "", rtype.kind):
            raise errors.bad_request(
                f"the kind in the data ({body['kind']}) does not match the URL ({rtype.kind})"
            )
        for key in (*_SERVER_METADATA, "resourceVersion", "selfLink", "managedFields"):
            meta.pop(key, None)
        if rtype.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if rtype.crd_name is not None or rtype.kind in _GENERATION_KINDS:
            meta["generation"] = 1
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        if rtype.kind == "Namespace" and not rtype.group:
            obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["status"] = {"phase": "Active"}
        return obj

    def _check_namespace(self, rtype: ResourceType, namespace: str, name: str) -> None:
        if not rtype.namespaced:
            return
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.ApiError(
                403,
                "Forbidden",
                f'{rtype.plural} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} "
                "because it is being terminated",
                details={
                    "name": name,
                    "kind": rtype.plural,
                    "causes": [
                        {
                            "reason": "NamespaceTerminating",
                            "message": f"namespace {namespace} is being terminated",
                            "field": "metadata.namespace",
                        }
                    ],
                },
            )

    def update(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: dict[str, Any],
        user: rbac.UserInfo,
        *,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "Warn",
        manager: str = "",
        managed: ManagedFields | None = None,
    ) -> dict[str, Any]:
        old = self.store.get(rtype.storage_key, namespace, name)
        if old is None:
            raise errors.not_found(rtype.plural, name, rtype.group)
        new = copy.deepcopy(body)
        if not isinstance(new.get("metadata"), dict):
            raise errors.bad_request("metadata is required")
        meta = new["metadata"]
        if meta.get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.plural, name, errors.STALE_OBJECT, rtype.group)
        wanted_uid = meta.get("uid")
        if wanted_uid and wanted_uid != old["metadata"]["uid"]:
            raise errors.uid_precondition_failed(
                rtype.plural, rtype.group, rtype.crd_name is not None, namespace, name, wanted_uid, old
            )
        new = self._merge_server_fields(rtype, old, new, subresource)
        new = self._validated(rtype, new, old, field_validation)
        if managed is None and manager:
            managed = managed_fields.after_update(rtype, old, new, manager, subresource)
        elif managed is None:  # a write of the server itself (no field manager): unchanged
            managed = old["metadata"].get("managedFields")
        if managed:
            new["metadata"]["managedFields"] = managed
        check_escalation(self.authorizer, rtype, new, user)
        self._admit(admission.Request(rtype, "UPDATE", new, present(rtype, old), user, subresource, dry_run))
        if dry_run:
            return new
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            removed = self.store.remove(rtype.storage_key, new)
            self._after_removal(rtype, removed)  # its last finalizer went: it goes now
            return present(rtype, removed)
        return self._commit(rtype, new, old)

    def _merge_server_fields(
        self, rtype: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        """Keep what clients cannot change; apply the status subresource split."""
        if subresource == "status":
            new = {**copy.deepcopy(old), "status": new.get("status")}
            if new["status"] is None:
                new.pop("status")
        elif rtype.has_status:
            new.pop("status", None)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        meta = new["metadata"]
        for key in (*_SERVER_METADATA, "namespace", "name"):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        meta.pop("managedFields", None)
        if rtype.storage_key == NAMESPACES:  # the real server keeps this label equal to the name
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        if old["metadata"].get("deletionTimestamp"):
            # Once deleting, finalizers may only be removed (as the real server enforces).
            meta["finalizers"] = [
                f for f in meta.get("finalizers") or [] if f in old["metadata"].get("finalizers", [])
            ]
        new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
        if "generation" in meta and crds.spec_changed(old, new):
            meta["generation"] = int(meta["generation"]) + 1
        return new

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        user: rbac.UserInfo,
        *,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "Warn",
        manager: str = "",
    ) -> dict[str, Any]:
        old = self.store.get(rtype.storage_key, namespace, name)
        if old is None:
            raise errors.not_found(rtype.plural, name, rtype.group)
        patched = apply_patch(
            content_type, copy.deepcopy(present(rtype, old)), body, strategic=rtype.crd_name is None
        )
        if not isinstance(patched.get("metadata"), dict):
            raise errors.bad_request("metadata must be an object")
        patched["metadata"].setdefault("resourceVersion", old["metadata"]["resourceVersion"])
        return self.update(
            rtype,
            namespace,
            name,
            patched,
            user,
            subresource=subresource,
            dry_run=dry_run,
            field_validation=field_validation,
            manager=manager,
        )

    def apply(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        user: rbac.UserInfo,
        *,
        manager: str,
        force: bool,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "Strict",
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply (managed_fields.py); returns the object and whether it was created."""
        if not manager:
            required = FieldError("fieldManager", "FieldValueRequired", "is required for apply patch")
            raise errors.invalid("PatchOptions", "", [required], "meta.k8s.io")
        if not isinstance(body, dict):
            raise errors.bad_request("the apply configuration must be an object")
        old = self.store.get(rtype.storage_key, namespace, name)
        if old is None and subresource:
            raise errors.not_found(rtype.plural, name, rtype.group)
        config = copy.deepcopy(body)
        if not isinstance(config.get("metadata"), dict):
            config["metadata"] = {}
        config["metadata"].setdefault("name", name)
        live = present(rtype, old) if old is not None else None
        try:
            merged, managed, _ = managed_fields.apply(rtype, live, config, manager, subresource, force=force)
        except managed_fields.ApplyConflict as conflict:
            pairs = [(m.printed(), managed_fields.path_text(p)) for m, p in conflict.conflicts]
            raise errors.apply_conflict(pairs) from None
        if old is None:
            made = self.create(
                rtype,
                namespace,
                merged,
                user,
                dry_run=dry_run,
                field_validation=field_validation,
                managed=managed,
            )
            return made, True
        merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        updated = self.update(
            rtype,
            namespace,
            name,
            merged,
            user,
            subresource=subresource,
            dry_run=dry_run,
            field_validation=field_validation,
            managed=managed,
        )
        return updated, False

    def delete(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        options: dict[str, Any],
        *,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete (or start deleting); returns the object and whether it is gone already."""
        obj = self.store.get(rtype.storage_key, namespace, name)
        if obj is None:
            raise errors.not_found(rtype.plural, name, rtype.group)
        preconditions = options.get("preconditions") or {}
        for key in ("uid", "resourceVersion"):
            if preconditions.get(key) and preconditions[key] != obj["metadata"].get(key):
                why = (
                    f"Precondition failed: {key} in precondition: {preconditions[key]}, "
                    f"{key} in object meta: {obj['metadata'].get(key)}"
                )
                raise errors.conflict(rtype.plural, name, why, rtype.group)
        if dry_run:
            return present(rtype, obj), False
        result, gone = self.delete_object(rtype, obj, options.get("propagationPolicy") or "Background")
        return present(rtype, result), gone

    def delete_object(
        self, rtype: ResourceType, obj: dict[str, Any], policy: str
    ) -> tuple[dict[str, Any], bool]:
        """Delete without authorization (also used by the garbage collector and namespace controller)."""
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        elif policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        is_namespace = rtype.storage_key == NAMESPACES
        if not finalizers and not is_namespace:
            removed = self.store.remove(rtype.storage_key, obj)
            self._after_removal(rtype, removed)
            return removed, True
        if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
            return obj, False  # already being deleted; nothing new to record
        new = copy.deepcopy(obj)
        new["metadata"]["deletionTimestamp"] = meta.get("deletionTimestamp") or now()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        if finalizers:
            new["metadata"]["finalizers"] = finalizers
        if is_namespace:
            new["status"] = {"phase": "Terminating"}
        stored = self.store.put(rtype.storage_key, new)
        self.on_garbage()
        return stored, False

    # Internals ----------------------------------------------------------------------------

    def _admit(self, request: admission.Request) -> None:
        """Validating admission policies, after validation (as the real server orders them)."""
        self.warnings += admission.admit(self.store, self.authorizer, request)

    def _validated(
        self, rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, field_validation: str
    ) -> dict[str, Any]:
        """Validate (custom objects: also prune and default); unknown fields per `fieldValidation`."""
        problems: list[FieldError]
        if rtype.kind == "Secret" and obj.get("stringData"):
            # stringData is write-only: the server merges it into data, base64-encoded.
            encoded = {
                k: base64.b64encode(str(v).encode()).decode() for k, v in obj.pop("stringData").items()
            }
            obj["data"] = {**(obj.get("data") or {}), **encoded}
        if rtype.crd_name is not None:
            unknown = crds.unknown_fields(rtype, obj)
        else:
            unknown = prune_unknown(rtype.group, rtype.kind, obj)  # decoding into Go types drops them
        if field_validation == "Strict" and unknown:
            listed = ", ".join(f'unknown field "{path}"' for path in unknown)
            kind = rtype.kind
            decoding = f'{kind} in version "{rtype.version}" cannot be handled as a {kind}'
            raise errors.bad_request(f"{decoding}: strict decoding error: {listed}")
        if field_validation == "Warn":
            self.warnings += [f'unknown field "{path}"' for path in unknown]
        if rtype.crd_name is not None:
            obj, problems = crds.validate_custom(rtype, obj, old)
            problems = validate_metadata(rtype, obj) + problems
        else:
            problems = validate(rtype, obj, old)
        if problems:
            raise errors.invalid(rtype.kind, obj["metadata"].get("name", ""), problems, rtype.group)
        return obj

    def _commit(
        self, rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if rtype.storage_key == CRDS:
            obj = crds.with_controller_status(obj)
        stored = self.store.put(rtype.storage_key, obj)
        if rtype.storage_key == CRDS:
            self.registry.remove_crd(stored["metadata"]["name"])
            for served in crds.served_types(stored):
                self.registry.add(served)
        if rtype.storage_key == rbac.CLUSTER_ROLES:
            self.refresh_aggregation()
        if old is not None or stored["metadata"].get("ownerReferences"):
            self.on_garbage()  # an update may drop finalizers or owners; a new dependent may be orphaned
        return present(rtype, stored)

    def _after_removal(self, rtype: ResourceType, removed: dict[str, Any]) -> None:
        if rtype.storage_key == CRDS:
            spec = removed["spec"]
            self.registry.remove_crd(removed["metadata"]["name"])
            self.store.drop_kind((spec["group"], spec["names"]["plural"]))
        if rtype.storage_key == rbac.CLUSTER_ROLES:
            self.refresh_aggregation()
        self.on_garbage()

    def refresh_aggregation(self) -> None:
        """Give every aggregated ClusterRole the rules its selectors match (the aggregation controller)."""
        changed = True
        while changed:  # aggregated roles may aggregate each other (view -> edit -> admin)
            changed = False
            for role in self.store.list(rbac.CLUSTER_ROLES):
                rules = rbac.aggregated_rules(self.store, role)
                if rules is not None and rules != (role.get("rules") or []):
                    self.store.put(rbac.CLUSTER_ROLES, {**copy.deepcopy(role), "rules": rules})
                    changed = True

    def type_for_key(self, key: tuple[str, str]) -> ResourceType | None:
        return next((t for t in self.registry.types() if t.storage_key == key), None)
