"""Request paths and verbs: which resource a URL names and which RBAC verb a request is.

Holds Target (type, namespace, name, subresource) and parse_target() for
`/api/v1/...` and `/apis/<group>/<version>/...` paths, and request_verb() mapping an HTTP
method and query to get/list/watch/create/update/patch/delete/deletecollection. Holds no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .resources import Registry, ResourceType


@dataclass(frozen=True)
class Target:
    rtype: ResourceType
    namespace: str  # "" for cluster-scoped kinds and for lists across namespaces
    name: str
    subresource: str


def _split(path: str) -> tuple[str, str, list[str]] | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def parse_target(registry: Registry, path: str) -> Target | None:
    """The resource a path names; None for discovery paths and unknown resources."""
    split = _split(path)
    if split is None:
        return None
    group, version, rest = split
    if len(rest) >= 3 and rest[0] == "namespaces":
        rtype = registry.get(group, version, rest[2])
        if rtype is not None and rtype.namespaced and len(rest) <= 5:
            return Target(rtype, rest[1], rest[3] if len(rest) > 3 else "", rest[4] if len(rest) > 4 else "")
    if not rest or len(rest) > 3:
        return None
    rtype = registry.get(group, version, rest[0])
    if rtype is None:
        return None
    return Target(rtype, "", rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else "")


def is_resource_path(path: str) -> bool:
    split = _split(path)
    return split is not None and bool(split[2])


def request_verb(method: str, target: Target, query: Mapping[str, str]) -> str:
    if method in ("GET", "HEAD"):
        if query.get("watch") in ("true", "1"):
            return "watch"
        return "get" if target.name else "list"
    if method == "DELETE":
        return "delete" if target.name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())
