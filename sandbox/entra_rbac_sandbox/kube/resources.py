"""The kinds the sandbox API server serves, and the discovery documents describing them.

Holds ResourceType (one served group/version/plural), the Registry of built-in and CRD-backed
types, and builders for `/api`, `/apis`, `/api/v1`, `/apis/<group>[/<version>]`. Holds no object
storage and no HTTP handling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)


@dataclass(frozen=True)
class ResourceType:
    """One resource served at one group/version (a CRD with two versions gives two)."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    has_status: bool = False
    # Set for CRD-backed types: the CRD's name, and its version entry (schema, columns).
    crd_name: str | None = None
    crd_version: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored once per group+plural, whatever version they are read at."""
        return (self.group, self.plural)

    @property
    def persisted(self) -> bool:
        """Review kinds (SubjectAccessReview...) are answered, never stored."""
        return self.verbs != CREATE_ONLY

    def api_resource(self) -> list[dict[str, Any]]:
        """This type's entries of an APIResourceList (the subresource included)."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.has_status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


def _builtin(
    api_version: str, kind: str, plural: str, namespaced: bool, *extra_short: str, **kwargs: Any
) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    return ResourceType(group, version, kind, plural, kind.lower(), namespaced, tuple(extra_short), **kwargs)


BUILTINS: tuple[ResourceType, ...] = (
    _builtin(
        "v1",
        "Namespace",
        "namespaces",
        False,
        "ns",
        has_status=True,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _builtin("v1", "ConfigMap", "configmaps", True, "cm"),
    _builtin("v1", "ServiceAccount", "serviceaccounts", True, "sa"),
    _builtin("v1", "Event", "events", True, "ev"),
    _builtin("events.k8s.io/v1", "Event", "events", True, "ev"),
    # Stored, listed and authorized like any object, but nothing runs them (no scheduler, no
    # controllers): served so that `kubectl auth can-i ... pods` and demos read as on a cluster.
    _builtin("v1", "Pod", "pods", True, "po", has_status=True, categories=("all",)),
    _builtin("v1", "Secret", "secrets", True),
    _builtin("v1", "Service", "services", True, "svc", has_status=True, categories=("all",)),
    _builtin("apps/v1", "Deployment", "deployments", True, "deploy", has_status=True, categories=("all",)),
    _builtin("rbac.authorization.k8s.io/v1", "Role", "roles", True),
    _builtin("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
    _builtin("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    _builtin("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _builtin(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        "crd",
        "crds",
        has_status=True,
        categories=("api-extensions",),
    ),
    _builtin(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        False,
        has_status=True,
        categories=("api-extensions",),
    ),
    _builtin(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        False,
        categories=("api-extensions",),
    ),
    _builtin(
        "authorization.k8s.io/v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=CREATE_ONLY
    ),
    _builtin(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=CREATE_ONLY,
    ),
    _builtin(
        "authorization.k8s.io/v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        True,
        verbs=CREATE_ONLY,
    ),
    _builtin(
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        False,
        verbs=CREATE_ONLY,
    ),
    _builtin("authentication.k8s.io/v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=CREATE_ONLY),
)


class Registry:
    """Every served type, looked up by path parts or by apiVersion+kind."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rtype in BUILTINS:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def remove_crd(self, crd_name: str) -> None:
        for key in [k for k, t in self._types.items() if t.crd_name == crd_name]:
            del self._types[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rtype in self._types.values():
            if rtype.api_version == api_version and rtype.kind == kind:
                return rtype
        return None

    def types(self) -> list[ResourceType]:
        return list(self._types.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Group name to its versions, preferred (first registered) first; "" is the core group."""
        found: dict[str, list[str]] = {}
        for group, version, _ in self._types:
            versions = found.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return found

    # Discovery documents ------------------------------------------------------------------

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        entries = [
            entry
            for rtype in self._types.values()
            if rtype.group == group and rtype.version == version
            for entry in rtype.api_resource()
        ]
        if not entries:
            return None
        group_version = f"{group}/{version}" if group else version
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": sorted(entries, key=lambda e: str(e["name"])),
        }

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if not group or not versions:
            return None
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": listed,
            "preferredVersion": listed[0],
        }

    def api_group_list(self) -> dict[str, Any]:
        groups = [self.api_group(g) for g in self.group_versions() if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}
