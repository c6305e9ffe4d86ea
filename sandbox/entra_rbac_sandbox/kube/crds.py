"""CustomResourceDefinitions: serving a CRD's kinds, its status, and custom-object writes.

Holds the functions the write path calls for CRDs (status that a real apiextensions controller
would set: NamesAccepted and Established, acceptedNames, storedVersions; the ResourceTypes a
CRD serves) and for custom objects (schema validation, defaulting and pruning, delegated to
crd_validation.py; the generation rule). Holds no storage and no HTTP.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from . import crd_validation
from .errors import FieldError
from .resources import ResourceType


def served_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of the CRD, storage version first."""
    spec = crd["spec"]
    names = spec["names"]
    versions = sorted(spec.get("versions") or [], key=lambda v: not v.get("storage"))
    return [
        ResourceType(
            group=spec["group"],
            version=version["name"],
            kind=names["kind"],
            plural=names["plural"],
            singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            has_status="status" in (version.get("subresources") or {}),
            crd_name=crd["metadata"]["name"],
            crd_version=copy.deepcopy(version),
        )
        for version in versions
        if version.get("served", True)
    ]


def with_controller_status(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD with the status the apiextensions controllers give an accepted, established CRD."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = crd["spec"]["names"]
    accepted = {
        "plural": names["plural"],
        "kind": names["kind"],
        "singular": names.get("singular") or names["kind"].lower(),
        "listKind": names.get("listKind") or names["kind"] + "List",
    }
    for key in ("shortNames", "categories"):
        if names.get(key):
            accepted[key] = names[key]
    crd["spec"]["names"].setdefault("singular", accepted["singular"])
    crd["spec"]["names"].setdefault("listKind", accepted["listKind"])
    storage = [v["name"] for v in crd["spec"].get("versions") or [] if v.get("storage")]
    previous = (crd.get("status") or {}).get("storedVersions") or []
    crd["status"] = {
        "acceptedNames": accepted,
        "storedVersions": previous + [v for v in storage if v not in previous],
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
    }
    return crd


def _schema(rtype: ResourceType) -> dict[str, Any]:
    schema: dict[str, Any] = (rtype.crd_version.get("schema") or {}).get("openAPIV3Schema") or {}
    return schema


def validate_custom(
    rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None
) -> tuple[dict[str, Any], list[FieldError]]:
    """Default, prune and validate a custom object against its version's structural schema."""
    return crd_validation.validate_object(_schema(rtype), obj, old)


def unknown_fields(rtype: ResourceType, obj: dict[str, Any]) -> list[str]:
    """The paths pruning would drop from a custom object (for fieldValidation=Strict)."""
    return crd_validation.unknown_fields(_schema(rtype), obj)


def spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether `generation` moves: anything but metadata and status changed."""
    ignored = ("metadata", "status")
    return {k: v for k, v in old.items() if k not in ignored} != {
        k: v for k, v in new.items() if k not in ignored
    }
