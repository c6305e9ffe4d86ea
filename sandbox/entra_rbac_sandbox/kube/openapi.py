"""The OpenAPI v3 discovery documents, reduced to what kubectl reads from them.

kubectl asks `/openapi/v3` (then `/openapi/v3/<api|apis/group>/<version>`) whether a kind's PATCH
endpoint takes the `fieldValidation` query parameter; when it does, kubectl leaves validation
to the server instead of downloading schemas for client-side validation. Each served
resource's PATCH operation is listed with its `x-kubernetes-group-version-kind` and that
parameter. No request-body media types are listed, so kubectl computes apply patches from its
compiled-in types (built-in kinds) or as JSON merge patches (custom resources), as it does
against a real cluster without published schemas. Component schemas are not served.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType

_PARAMETERS = [
    {"name": name, "in": "query", "schema": {"type": "string"}}
    for name in ("dryRun", "fieldManager", "fieldValidation")
]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _item_path(rtype: ResourceType) -> str:
    base = "/" + _gv_path(rtype.group, rtype.version)
    scope = "/namespaces/{namespace}" if rtype.namespaced else ""
    return f"{base}{scope}/{rtype.plural}/{{name}}"


def group_version_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [t for t in registry.types() if t.group == group and t.version == version and t.persisted]
    if not types:
        return None
    paths = {}
    for rtype in types:
        gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
        operation = {"x-kubernetes-group-version-kind": gvk, "parameters": _PARAMETERS, "responses": {}}
        paths[_item_path(rtype)] = {"patch": operation}
    title = f"Kubernetes sandbox ({_gv_path(group, version)})"
    return {"openapi": "3.0.0", "info": {"title": title, "version": "v1"}, "paths": paths, "components": {}}


def root_document(registry: Registry) -> dict[str, Any]:
    paths = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            document = group_version_document(registry, group, version)
            if document is None:
                continue
            digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
