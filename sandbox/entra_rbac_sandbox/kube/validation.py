"""Validation of metadata and of the built-in kinds, with field paths as the real server names them.

Holds validate(rtype, obj, old) returning FieldErrors for: object names (DNS subdomain, DNS label
for namespaces, path-segment names for RBAC kinds), labels, RBAC roles and bindings (roleRef
required, immutable, ClusterRoleBinding only to a ClusterRole, subjects) and CRDs (names,
scope, versions). Custom objects are validated against their CRD schema elsewhere (crds.py).
Holds no storage and no HTTP.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import FieldError, GoPrinted
from .resources import ResourceType

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
RBAC = "rbac.authorization.k8s.io"


def _name_errors(rtype: ResourceType, name: str) -> list[FieldError]:
    if rtype.group == RBAC:
        # RBAC names are path segments (ValidateRBACName): colons allowed, no "/" or "%".
        if name in (".", "..") or "/" in name or "%" in name:
            return [FieldError("metadata.name", "FieldValueInvalid", "may not contain '/' or '%'", name)]
        return []
    if rtype.kind == "Namespace":
        pattern, what, limit = _DNS_LABEL, "a lowercase RFC 1123 label", 63
    else:
        pattern, what, limit = _DNS_SUBDOMAIN, "a lowercase RFC 1123 subdomain", 253
    if len(name) > limit or not pattern.match(name):
        detail = (
            f"{what} must consist of lower case alphanumeric characters, '-' or '.', and must "
            "start and end with an alphanumeric character"
        )
        return [FieldError("metadata.name", "FieldValueInvalid", detail, name)]
    return []


def _label_errors(labels: Any) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [FieldError("metadata.labels", "FieldValueTypeInvalid", "must be a map of strings", labels)]
    found = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (prefix and not _DNS_SUBDOMAIN.match(prefix)) or len(name) > 63 or not _LABEL_NAME.match(name):
            found.append(
                FieldError(
                    "metadata.labels",
                    "FieldValueInvalid",
                    "name part must consist of alphanumeric characters, '-', '_' or '.'",
                    key,
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            found.append(
                FieldError(
                    "metadata.labels",
                    "FieldValueInvalid",
                    "a valid label must be an empty string or consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character",
                    value,
                )
            )
    return found


def _owner_reference_errors(refs: Any) -> list[FieldError]:
    """ValidateOwnerReferences: the four identifying fields, and at most one controller."""
    found = []
    for ref in refs or []:
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                detail = f"{key} must not be empty"
                found.append(FieldError("metadata.ownerReferences." + key, "FieldValueInvalid", detail, ""))
    controllers = [r for r in refs or [] if r.get("controller")]
    if len(controllers) > 1:
        detail = "Only one reference can have Controller set to true"
        found.append(FieldError("metadata.ownerReferences", "FieldValueInvalid", detail, refs))
    return found


def validate_metadata(rtype: ResourceType, obj: dict[str, Any]) -> list[FieldError]:
    meta = obj.get("metadata") or {}
    found: list[FieldError] = []
    name = meta.get("name") or ""
    if not name:
        found.append(FieldError("metadata.name", "FieldValueRequired", "name or generateName is required"))
    else:
        found += _name_errors(rtype, name)
    found += _label_errors(meta.get("labels"))
    found += _owner_reference_errors(meta.get("ownerReferences"))
    annotations = meta.get("annotations")
    if annotations is not None and (
        not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values())
    ):
        found.append(
            FieldError(
                "metadata.annotations", "FieldValueTypeInvalid", "must be a map of strings", annotations
            )
        )
    return found


def _rules_errors(rules: Any, allow_non_resource: bool) -> list[FieldError]:
    found = []
    for i, rule in enumerate(rules or []):
        path = f"rules[{i}]"
        if not rule.get("verbs"):
            found.append(
                FieldError(f"{path}.verbs", "FieldValueRequired", "verbs must contain at least one value")
            )
        if rule.get("nonResourceURLs"):
            if not allow_non_resource:
                found.append(
                    FieldError(
                        f"{path}.nonResourceURLs",
                        "FieldValueInvalid",
                        "namespaced rules cannot apply to non-resource URLs",
                        rule["nonResourceURLs"],
                    )
                )
            if rule.get("resources") or rule.get("apiGroups"):
                found.append(
                    FieldError(
                        f"{path}.nonResourceURLs",
                        "FieldValueInvalid",
                        "rules cannot apply to both regular resources and non-resource URLs",
                        rule["nonResourceURLs"],
                    )
                )
        else:
            if not rule.get("resources"):
                found.append(
                    FieldError(
                        f"{path}.resources",
                        "FieldValueRequired",
                        "resource rules must supply at least one resource",
                    )
                )
            if rule.get("apiGroups") is None or len(rule.get("apiGroups")) == 0:
                found.append(
                    FieldError(
                        f"{path}.apiGroups",
                        "FieldValueRequired",
                        "resource rules must supply at least one api group",
                    )
                )
    return found


def _subjects_errors(subjects: Any, cluster: bool) -> list[FieldError]:
    found = []
    for i, subject in enumerate(subjects or []):
        path = f"subjects[{i}]"
        kind = subject.get("kind")
        if not subject.get("name"):
            found.append(FieldError(f"{path}.name", "FieldValueRequired", ""))
        if kind == "ServiceAccount":
            if subject.get("apiGroup"):
                found.append(
                    FieldError(
                        f"{path}.apiGroup",
                        "FieldValueNotSupported",
                        'supported values: ""',
                        subject["apiGroup"],
                    )
                )
            if cluster and not subject.get("namespace"):
                found.append(FieldError(f"{path}.namespace", "FieldValueRequired", ""))
        elif kind in ("User", "Group"):
            if subject.get("apiGroup") != RBAC:
                found.append(
                    FieldError(
                        f"{path}.apiGroup",
                        "FieldValueNotSupported",
                        f'supported values: "{RBAC}"',
                        subject.get("apiGroup"),
                    )
                )
        else:
            found.append(
                FieldError(
                    f"{path}.kind",
                    "FieldValueNotSupported",
                    'supported values: "ServiceAccount", "User", "Group"',
                    kind,
                )
            )
    return found


def _binding_errors(rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    cluster = rtype.kind == "ClusterRoleBinding"
    ref = obj.get("roleRef") or {}
    found = []
    if ref.get("apiGroup") != RBAC:
        found.append(
            FieldError(
                "roleRef.apiGroup",
                "FieldValueNotSupported",
                f'supported values: "{RBAC}"',
                ref.get("apiGroup"),
            )
        )
    allowed_kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
    if ref.get("kind") not in allowed_kinds:
        supported = ", ".join(f'"{k}"' for k in allowed_kinds)
        found.append(
            FieldError(
                "roleRef.kind", "FieldValueNotSupported", f"supported values: {supported}", ref.get("kind")
            )
        )
    if not ref.get("name"):
        found.append(FieldError("roleRef.name", "FieldValueRequired", ""))
    if old is not None and (old.get("roleRef") or {}) != ref:
        # The real server prints the new roleRef as its internal Go struct, JSON-marshalled.
        printed = json.dumps(
            {"APIGroup": ref.get("apiGroup", ""), "Kind": ref.get("kind", ""), "Name": ref.get("name", "")},
            separators=(",", ":"),
        )
        found.append(FieldError("roleRef", "FieldValueInvalid", "cannot change roleRef", GoPrinted(printed)))
    return found + _subjects_errors(obj.get("subjects"), cluster)


def _crd_errors(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    found = []
    if not spec.get("group"):
        found.append(FieldError("spec.group", "FieldValueRequired", ""))
    for key in ("plural", "kind"):
        if not names.get(key):
            found.append(FieldError(f"spec.names.{key}", "FieldValueRequired", ""))
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if obj["metadata"].get("name") != expected:
        found.append(
            FieldError(
                "metadata.name",
                "FieldValueInvalid",
                'must be spec.names.plural+"."+spec.group',
                obj["metadata"].get("name"),
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        found.append(
            FieldError(
                "spec.scope",
                "FieldValueNotSupported",
                'supported values: "Cluster", "Namespaced"',
                spec.get("scope"),
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        found.append(
            FieldError(
                "spec.versions",
                "FieldValueInvalid",
                "must have exactly one version marked as storage version",
                versions,
            )
        )
    elif sum(bool(v.get("storage")) for v in versions) != 1:
        found.append(
            FieldError(
                "spec.versions",
                "FieldValueInvalid",
                "must have exactly one version marked as storage version",
                [v.get("name") for v in versions],
            )
        )
    for i, version in enumerate(versions):
        if not ((version.get("schema") or {}).get("openAPIV3Schema")):
            found.append(
                FieldError(
                    f"spec.versions[{i}].schema.openAPIV3Schema", "FieldValueRequired", "schemas are required"
                )
            )
    return found


def validate(rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    """Every FieldError of a built-in object about to be stored (empty = valid)."""
    found = validate_metadata(rtype, obj)
    if rtype.kind in ("Role", "ClusterRole") and rtype.group == RBAC:
        found += _rules_errors(obj.get("rules"), rtype.kind == "ClusterRole")
    elif rtype.kind in ("RoleBinding", "ClusterRoleBinding"):
        found += _binding_errors(rtype, obj, old)
    elif rtype.kind == "CustomResourceDefinition":
        found += _crd_errors(obj)
    return found
