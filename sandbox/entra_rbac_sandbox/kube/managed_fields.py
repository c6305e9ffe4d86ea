"""Server-side apply and managedFields: a documented subset of structured-merge-diff (SMD).

Holds the pure functions the write path calls: the field set an applied configuration names,
the comparison of two objects (added, modified, removed fields), the merge of a configuration
into the live object, pruning of fields a manager stopped applying, conflicts, and the
managedFields entries (FieldsV1) that record who owns what, in kube-apiserver's order. Holds no
HTTP and no storage.

Written here because no Python library implements SMD. The subset (docs/sandbox.md): maps and
structs are granular; lists are atomic unless a schema says otherwise (`x-kubernetes-list-type`
`set` or `map` with `x-kubernetes-list-map-keys` in a CRD; `metadata.finalizers` is a set and
`metadata.ownerReferences` a map keyed by uid, as in ObjectMeta); `x-kubernetes-map-type: atomic`
and RBAC's `roleRef` and `subjects` items are atomic (the upstream OpenAPI says so). Paths are
FieldsV1 keys: `f:<field>`, `k:<json key>` for associative list items, `v:<json value>` for set
items.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .resources import ResourceType

Path = tuple[str, ...]
FieldSet = set[Path]


@dataclass(frozen=True)
class Schema:
    """What SMD needs to know of a node: its children, and how lists and maps merge."""

    fields: dict[str, Schema] = field(default_factory=dict)
    element: Schema | None = None  # map values and list items
    atomic: bool = False
    list_type: str = "atomic"  # atomic | set | map
    keys: tuple[str, ...] = ()

    def child(self, name: str) -> Schema:
        return self.fields.get(name) or self.element or DEDUCED


DEDUCED = Schema()
_ATOMIC = Schema(atomic=True)
_METADATA = Schema(
    fields={
        "finalizers": Schema(list_type="set"),
        "ownerReferences": Schema(list_type="map", keys=("uid",), element=_ATOMIC),
    }
)
_BUILTIN: dict[str, Schema] = {
    "RoleBinding": Schema(fields={"metadata": _METADATA, "roleRef": _ATOMIC}),
    "ClusterRoleBinding": Schema(fields={"metadata": _METADATA, "roleRef": _ATOMIC}),
}
# Never owned by anyone (SMD's stripped metadata); status is reset on the main resource of a kind
# with a status subresource, and everything but status on /status.
_STRIPPED: FieldSet = {
    ("f:apiVersion",),
    ("f:kind",),
    *(
        ("f:metadata", "f:" + name)
        for name in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "generation",
            "managedFields",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        )
    ),
}


def _from_openapi(node: dict[str, Any]) -> Schema:
    if node.get("x-kubernetes-preserve-unknown-fields") and not node.get("properties"):
        return DEDUCED
    if node.get("type") == "array":
        items = _from_openapi(node.get("items") or {})
        keys = tuple(node.get("x-kubernetes-list-map-keys") or ())
        return Schema(element=items, list_type=node.get("x-kubernetes-list-type", "atomic"), keys=keys)
    extra = node.get("additionalProperties")
    return Schema(
        fields={name: _from_openapi(child) for name, child in (node.get("properties") or {}).items()},
        element=_from_openapi(extra) if isinstance(extra, dict) else None,
        atomic=node.get("x-kubernetes-map-type") == "atomic",
    )


def schema_for(rtype: ResourceType) -> Schema:
    if rtype.crd_name is None:
        return _BUILTIN.get(rtype.kind, Schema(fields={"metadata": _METADATA}))
    openapi = ((rtype.crd_version.get("schema") or {}).get("openAPIV3Schema")) or {}
    root = _from_openapi(openapi)
    return Schema(fields={**root.fields, "metadata": _METADATA}, element=root.element)


def ignored(rtype: ResourceType, subresource: str, obj: dict[str, Any]) -> FieldSet:
    """Paths nobody owns for this write (stripped metadata and the other side's reset fields)."""
    paths = set(_STRIPPED)
    if rtype.storage_key == ("", "namespaces"):  # set by the server, owned by no manager
        paths |= {("f:metadata", "f:labels", "f:kubernetes.io/metadata.name"), ("f:status",)}
    if rtype.has_status and subresource == "status":
        paths |= {("f:" + key,) for key in obj if key not in ("status", "apiVersion", "kind")}
    elif rtype.has_status:
        paths.add(("f:status",))
    return paths


def _drop(paths: FieldSet, ignore: FieldSet) -> FieldSet:
    return {p for p in paths if not any(p[: len(i)] == i for i in ignore)}


# -- field sets and comparison ----------------------------------------------------------------


def _item_key(item: Any, schema: Schema) -> str:
    if schema.list_type == "set":
        return "v:" + json.dumps(item, separators=(",", ":"))
    key = {k: item.get(k) for k in sorted(schema.keys)} if isinstance(item, dict) else {}
    return "k:" + json.dumps(key, separators=(",", ":"))


def to_set(value: Any, schema: Schema, path: Path = ()) -> FieldSet:
    """The fields an applied configuration names (SMD's ToFieldSet)."""
    found: FieldSet = set()
    if isinstance(value, dict) and not schema.atomic:
        for key, child in value.items():
            here = (*path, "f:" + key)
            if child is None or child == {}:
                found.add(here)
            else:
                found |= to_set(child, schema.child(key), here)
    elif isinstance(value, list) and schema.list_type != "atomic":
        element = schema.element or DEDUCED
        for item in value:
            here = (*path, _item_key(item, schema))
            found.add(here)
            if schema.list_type == "map" and isinstance(item, dict) and not element.atomic:
                found |= to_set(item, element, here)
    else:
        found.add(path)
    return found


def _everything(value: Any, schema: Schema, path: Path) -> FieldSet:
    """`path` and every field under it (what appears or disappears with a node)."""
    found = {path}
    if isinstance(value, dict) and not schema.atomic:
        for key, child in value.items():
            found |= _everything(child, schema.child(key), (*path, "f:" + key))
    elif isinstance(value, list) and schema.list_type != "atomic":
        for item in value:
            here = (*path, _item_key(item, schema))
            found |= (
                _everything(item, schema.element or DEDUCED, here) if schema.list_type == "map" else {here}
            )
    return found


def _items(value: list[Any], schema: Schema) -> dict[str, Any]:
    return {_item_key(item, schema): item for item in value}


def compare(old: Any, new: Any, schema: Schema, path: Path = ()) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(added, modified, removed) fields from `old` to `new` (SMD's Compare)."""
    added: FieldSet = set()
    modified: FieldSet = set()
    removed: FieldSet = set()
    if old is None and new is None:
        return added, modified, removed
    if old is None:
        return _everything(new, schema, path), modified, removed
    if new is None:
        return added, modified, _everything(old, schema, path)
    granular_map = isinstance(old, dict) and isinstance(new, dict) and not schema.atomic
    granular_list = isinstance(old, list) and isinstance(new, list) and schema.list_type != "atomic"
    if granular_map:
        for key in dict.fromkeys([*old, *new]):
            a, m, r = compare(old.get(key), new.get(key), schema.child(key), (*path, "f:" + key))
            added, modified, removed = added | a, modified | m, removed | r
    elif granular_list:
        before, after = _items(old, schema), _items(new, schema)
        element = schema.element or DEDUCED if schema.list_type == "map" else _ATOMIC
        for key in dict.fromkeys([*before, *after]):
            a, m, r = compare(before.get(key), after.get(key), element, (*path, key))
            added, modified, removed = added | a, modified | m, removed | r
    elif old != new:
        modified.add(path)
    return added, modified, removed


# -- merge and prune ----------------------------------------------------------------------------


def merge(live: Any, config: Any, schema: Schema) -> Any:
    """The configuration merged into the live object (the configuration wins)."""
    if isinstance(live, dict) and isinstance(config, dict) and not schema.atomic:
        result = dict(live)
        for key, value in config.items():
            result[key] = merge(live.get(key), value, schema.child(key))
        return result
    if isinstance(live, list) and isinstance(config, list) and schema.list_type != "atomic":
        result_items = _items(live, schema)
        element = schema.element or DEDUCED
        for key, item in _items(config, schema).items():
            if schema.list_type == "map" and key in result_items:
                result_items[key] = merge(result_items[key], item, element)
            else:
                result_items[key] = copy.deepcopy(item)
        return list(result_items.values())
    return copy.deepcopy(config)


def _remove(obj: Any, path: Path, schema: Schema) -> None:
    """Remove the field at `path` from `obj` in place, if present."""
    head, rest = path[0], path[1:]
    if isinstance(obj, dict) and head.startswith("f:"):
        name = head[2:]
        if not rest:
            obj.pop(name, None)
        elif name in obj:
            _remove(obj[name], rest, schema.child(name))
    elif isinstance(obj, list):
        for index, item in enumerate(obj):
            if _item_key(item, schema) == head:
                if rest:
                    _remove(item, rest, schema.element or DEDUCED)
                else:
                    del obj[index]
                return


def prune(obj: dict[str, Any], dropped: FieldSet, others: FieldSet, schema: Schema) -> None:
    """Remove what a manager stopped applying, unless another manager owns it or a field under it."""
    for path in sorted(dropped, key=len, reverse=True):
        if any(o[: len(path)] == path for o in others):
            continue
        _remove(obj, path, schema)


# -- managers and FieldsV1 ------------------------------------------------------------------------


@dataclass
class Manager:
    name: str
    operation: str  # Apply | Update
    api_version: str
    subresource: str
    fields: FieldSet
    time: str | None

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.name, self.operation, self.subresource)

    def printed(self) -> str:
        """How a conflict names the manager (apiserver's printManager, without the time)."""
        text = json.dumps(self.name)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


def to_fields_v1(paths: FieldSet) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    for path in paths:  # a path that is itself owned and has children gets "."
        node = tree
        for part in path:
            node = node[part]
        if node and "." not in node:
            node["."] = {}
    return tree


def from_fields_v1(tree: dict[str, Any], path: Path = ()) -> FieldSet:
    found: FieldSet = set()
    if not tree and path:
        return {path}
    for key, child in tree.items():
        if key == ".":
            found.add(path)
        else:
            found |= from_fields_v1(child, (*path, key))
    return found


def read(obj: dict[str, Any]) -> list[Manager]:
    return [
        Manager(
            entry.get("manager", ""),
            entry.get("operation", "Update"),
            entry.get("apiVersion", ""),
            entry.get("subresource", ""),
            from_fields_v1(entry.get("fieldsV1") or {}),
            entry.get("time"),
        )
        for entry in (obj.get("metadata") or {}).get("managedFields") or []
    ]


def encode(managers: list[Manager]) -> list[dict[str, Any]]:
    """managedFields in kube-apiserver's order: Apply before Update, then by time and name."""
    ordered = sorted(
        (m for m in managers if m.fields),
        key=lambda m: (m.operation, m.time or "", m.name, m.api_version, m.subresource),
    )
    entries = []
    for m in ordered:
        entry: dict[str, Any] = {"manager": m.name, "operation": m.operation, "apiVersion": m.api_version}
        if m.time:
            entry["time"] = m.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = to_fields_v1(m.fields)
        if m.subresource:
            entry["subresource"] = m.subresource
        entries.append(entry)
    return entries


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def after_update(
    rtype: ResourceType,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    subresource: str,
) -> list[dict[str, Any]]:
    """managedFields after a create, update or non-apply patch by `manager` (SMD's Update)."""
    schema = schema_for(rtype)
    managers = read(old) if old is not None else []
    before = dict(old or {"metadata": {}})
    added, modified, removed = compare(before, new, schema)
    ignore = ignored(rtype, subresource, new)
    changed = _drop(added | modified, ignore)
    for other in managers:
        other.fields = other.fields - changed - removed
    mine = next((m for m in managers if m.identity == (manager, "Update", subresource)), None)
    if changed:
        if mine is None:
            mine = Manager(manager, "Update", rtype.api_version, subresource, set(), None)
            managers.append(mine)
        mine.fields = (mine.fields | changed) - removed
        mine.api_version, mine.time = rtype.api_version, now()
    return encode(managers)


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[Manager, Path]]) -> None:
        super().__init__("apply conflict")
        self.conflicts = conflicts


def path_text(path: Path) -> str:
    """A path as SMD prints it: `.data.a`, `.metadata.ownerReferences[uid="x"]`, `[="v"]`."""
    text = ""
    for part in path:
        kind, value = part[0], part[2:]
        if kind == "f":
            text += "." + value
        elif kind == "v":
            text += f"[={value}]"
        else:
            key = json.loads(value)
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]"
    return text


def apply(
    rtype: ResourceType,
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    subresource: str,
    *,
    force: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
    """(the new object, its managedFields, whether the object changed) for an apply by `manager`;
    raises ApplyConflict naming each field another manager owns with another value."""
    schema = schema_for(rtype)
    base = copy.deepcopy(live) if live is not None else {"metadata": {}}
    managers = read(base)
    ignore = ignored(rtype, subresource, config)
    applied = _drop(to_set(config, schema), ignore)
    merged = merge(base, config, schema)
    mine = next((m for m in managers if m.identity == (manager, "Apply", subresource)), None)
    others = [m for m in managers if m is not mine]
    if mine is not None:
        owned_by_others = set().union(*(m.fields for m in others)) if others else set()
        prune(merged, mine.fields - applied, owned_by_others, schema)
    added, modified, removed = compare(base, merged, schema)
    changed = _drop(added | modified, ignore)
    conflicts = [(m, p) for m in others for p in sorted(m.fields & changed)]
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for other in others:
        other.fields = other.fields - changed - removed
    object_changed = bool(added or modified or removed)
    if mine is None:
        mine = Manager(manager, "Apply", rtype.api_version, subresource, set(), None)
        managers.append(mine)
    mine.fields, mine.api_version = applied, rtype.api_version
    if object_changed:  # an apply that changes nothing keeps (or lacks) its time
        mine.time = now()
    return merged, encode(managers), object_changed
