"""Pruning and defaulting of custom objects, as the API server does before it validates them.

Holds `prune` (drops the fields a structural schema does not declare, unless it preserves
unknown fields; never touches an object's or embedded resource's apiVersion, kind and metadata)
and `default` (fills `default`s into absent fields and into nulls of non-nullable ones, drops
other such nulls), both in place; `child` joins field paths. Used by crd_validation.py. Holds no
validation; must not import the operator's layers.
"""

from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]
# Fields every object keeps at its root (and an embedded resource keeps at its own root).
_RESOURCE_FIELDS = ("apiVersion", "kind", "metadata")


def child(path: str, name: str) -> str:
    """`spec` + `groups` -> `spec.groups` (the root's children have no leading dot)."""
    return f"{path}.{name}" if path else name


def prune(schema: Schema, value: Any, path: str, dropped: list[str], *, root: bool = False) -> None:
    """Drop undeclared fields from `value` in place, recording their paths in `dropped`."""
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                prune(items, item, f"{path}[{index}]", dropped)
        return
    if not isinstance(value, dict):
        return
    properties: dict[str, Schema] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    keeps_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or additional is True
    keeps_resource = root or bool(schema.get("x-kubernetes-embedded-resource"))
    for key in list(value):
        if keeps_resource and key in _RESOURCE_FIELDS and (key == "metadata" or key not in properties):
            # metadata is the API server's to validate, not the schema's, even when the schema
            # lists it (a CRD may only constrain metadata.name / generateName).
            continue
        if key in properties:
            prune(properties[key], value[key], child(path, key), dropped)
        elif isinstance(additional, dict):
            prune(additional, value[key], child(path, key), dropped)
        elif not keeps_unknown:
            dropped.append(child(path, key))
            del value[key]


def default(schema: Schema, value: Any) -> None:
    """Apply the schema's defaults to `value` in place."""
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                default(items, item)
        return
    if not isinstance(value, dict):
        return
    for name, prop in (schema.get("properties") or {}).items():
        # A null in a non-nullable field is replaced by the default, or dropped without one.
        if value.get(name) is None and not prop.get("nullable"):
            if "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            else:
                value.pop(name, None)
        if name in value:
            default(prop, value[name])
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        for item in value.values():
            default(additional, item)
