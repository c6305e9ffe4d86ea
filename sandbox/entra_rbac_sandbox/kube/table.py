"""Server-side printing: objects as a meta.k8s.io/v1 `Table`, which is what `kubectl get` shows.

Holds the columns of the built-in kinds (as kube-apiserver's printers define them, trimmed to
the ones that matter here), CRD `additionalPrinterColumns` evaluated with the JSONPath subset
they use (`.a.b`, `[n]`, `[*]`, `[?(@.k=="v")]`), and human-readable ages. Holds no HTTP.

The JSONPath subset is written here because printer columns use only these forms and no
maintained Python JSONPath library follows the Kubernetes dialect (filters on `@.k=="v"`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .resources import ResourceType

Cell = Callable[[dict[str, Any]], Any]
_TOKEN = re.compile(
    r"\.([A-Za-z0-9_-]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*[\"']([^\"']*)[\"']\)\]"
)


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Evaluate a printer-column JSONPath; every match, in order."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    current = [obj]
    for match in _TOKEN.finditer(path):
        key, index, filter_key, filter_value = match.groups()
        found: list[Any] = []
        for value in current:
            if key is not None and isinstance(value, dict) and key in value:
                found.append(value[key])
            elif index == "*" and isinstance(value, list):
                found += value
            elif index is not None and index != "*" and isinstance(value, list) and int(index) < len(value):
                found.append(value[int(index)])
            elif filter_key is not None and isinstance(value, list):
                found += [
                    i for i in value if [str(v) for v in jsonpath(i, "." + filter_key)][:1] == [filter_value]
                ]
        current = found
    return current


def human_age(timestamp: str | None, now: datetime | None = None) -> str:
    """A duration as kubectl prints ages (k8s.io/apimachinery/pkg/util/duration, simplified)."""
    if not timestamp:
        return "<unknown>"
    created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = int(((now or datetime.now(UTC)) - created).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{days}d"


def _age(obj: dict[str, Any]) -> str:
    return human_age(obj["metadata"].get("creationTimestamp"))


def _role_ref(obj: dict[str, Any]) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind')}/{ref.get('name')}"


def _subjects_of(kind: str) -> Cell:
    return lambda obj: ", ".join(
        s.get("name", "") for s in obj.get("subjects") or [] if s.get("kind") == kind
    )


Column = tuple[str, str, int, Cell]  # name, type, priority, cell
_NAME: Column = ("Name", "string", 0, lambda o: o["metadata"]["name"])
_AGE: Column = ("Age", "string", 0, _age)
_BINDING: list[Column] = [
    _NAME,
    ("Role", "string", 0, _role_ref),
    _AGE,
    ("Users", "string", 1, _subjects_of("User")),
    ("Groups", "string", 1, _subjects_of("Group")),
    ("ServiceAccounts", "string", 1, _subjects_of("ServiceAccount")),
]
_BUILTIN_COLUMNS: dict[str, list[Column]] = {
    "Namespace": [_NAME, ("Status", "string", 0, lambda o: (o.get("status") or {}).get("phase", "")), _AGE],
    "ConfigMap": [
        _NAME,
        ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        _AGE,
    ],
    "Secret": [
        _NAME,
        ("Type", "string", 0, lambda o: o.get("type", "Opaque")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
        _AGE,
    ],
    "ServiceAccount": [_NAME, ("Secrets", "integer", 0, lambda o: len(o.get("secrets") or [])), _AGE],
    "Role": [_NAME, ("Created At", "string", 0, lambda o: o["metadata"].get("creationTimestamp"))],
    "ClusterRole": [_NAME, ("Created At", "string", 0, lambda o: o["metadata"].get("creationTimestamp"))],
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
    "CustomResourceDefinition": [
        _NAME,
        ("Created At", "string", 0, lambda o: o["metadata"].get("creationTimestamp")),
    ],
    "Event": [
        (
            "Last Seen",
            "string",
            0,
            lambda o: human_age(
                o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
            ),
        ),
        ("Type", "string", 0, lambda o: o.get("type", "")),
        ("Reason", "string", 0, lambda o: o.get("reason", "")),
        (
            "Object",
            "string",
            0,
            lambda o: "{}/{}".format(
                str((o.get("involvedObject") or o.get("regarding") or {}).get("kind", "")).lower(),
                (o.get("involvedObject") or o.get("regarding") or {}).get("name", ""),
            ),
        ),
        ("Message", "string", 0, lambda o: o.get("message") or o.get("note") or ""),
    ],
}


def _crd_cell(spec: dict[str, Any]) -> Cell:
    def cell(obj: dict[str, Any]) -> Any:
        found = jsonpath(obj, spec.get("jsonPath", ""))
        if not found:
            return None
        value = found[0] if len(found) == 1 else " ".join(str(v) for v in found)
        if spec.get("type") == "date" and isinstance(value, str):
            return human_age(value)
        return value

    return cell


# kube-apiserver describes the Name column with ObjectMeta.name's documentation, and a CRD
# column without a description with its JSONPath (apiextensions tableconvertor, v1.36.3).
NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)


def columns_for(rtype: ResourceType) -> list[Column]:
    if rtype.crd_name is None:
        return _BUILTIN_COLUMNS.get(rtype.kind, [_NAME, _AGE])
    specs = rtype.crd_version.get("additionalPrinterColumns")
    if not specs:
        return [_NAME, _AGE]
    # The column type is the CRD's own (`date` included: kubectl prints the server's age text).
    return [_NAME] + [
        (s["name"], s.get("type", "string"), int(s.get("priority", 0)), _crd_cell(s)) for s in specs
    ]


def _descriptions(rtype: ResourceType) -> dict[str, str]:
    found = {"Name": NAME_DESCRIPTION}
    for spec in rtype.crd_version.get("additionalPrinterColumns") or []:
        found[spec["name"]] = spec.get("description") or (
            "Custom resource definition column (in JSONPath format): " + spec.get("jsonPath", "")
        )
    return found


def to_table(
    rtype: ResourceType, objects: list[dict[str, Any]], list_meta: dict[str, Any], include: str
) -> dict[str, Any]:
    """A Table of `objects`; `include` is the includeObject parameter (None, Metadata, Object)."""
    columns = columns_for(rtype)
    descriptions = _descriptions(rtype)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [cell(obj) for _, _, _, cell in columns]}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    definitions = [
        {
            "name": name,
            "type": kind,
            "format": "name" if name == "Name" else "",
            "description": descriptions.get(name, ""),
            "priority": priority,
        }
        for name, kind, priority, _ in columns
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": definitions,
        "rows": rows,
    }
