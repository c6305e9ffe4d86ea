"""The OpenAPI v3 discovery documents, reduced to what kubectl reads from them.

kubectl asks `/openapi/v3` (then `/openapi/v3/<api|apis/group>/<version>`) whether a kind's PATCH
endpoint takes the `fieldValidation` query parameter; when it does, kubectl leaves validation
to the server instead of downloading schemas for client-side validation. Each served
resource's PATCH operation is listed with its `x-kubernetes-group-version-kind` and that
parameter. No request-body media types are listed, so kubectl computes apply patches from its
compiled-in types (built-in kinds) or as JSON merge patches (custom resources), as it does
against a real cluster without published schemas. Component schemas are served for custom
resources (each CRD version's openAPIV3Schema, named and tagged with its GVK as kube-apiserver
names it, `metadata` a reference to a short ObjectMeta), which is what `kubectl explain` reads;
the built-in kinds' schemas are not (docs/sandbox.md).
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


_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_METADATA = {
    "description": "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    "allOf": [{"$ref": f"#/components/schemas/{_OBJECT_META}"}],
}


def _schema_name(rtype: ResourceType) -> str:
    """kube-apiserver's name for a CRD kind's schema: the group's labels reversed, version, kind."""
    return ".".join([*reversed(rtype.group.split(".")), rtype.version, rtype.kind])


def _crd_schemas(types: list[ResourceType]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for rtype in types:
        openapi = (rtype.crd_version.get("schema") or {}).get("openAPIV3Schema")
        if rtype.crd_name is None or not isinstance(openapi, dict):
            continue
        schema = {**openapi, "properties": {**(openapi.get("properties") or {}), "metadata": _METADATA}}
        gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
        schemas[_schema_name(rtype)] = {**schema, "x-kubernetes-group-version-kind": [gvk]}
    if schemas:
        schemas[_OBJECT_META] = {
            "type": "object",
            "description": "ObjectMeta is metadata that all "
            "persisted resources must have, which includes all objects users must create.",
        }
    return schemas


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
    schemas = _crd_schemas(types)
    components = {"schemas": schemas} if schemas else {}
    return {
        "openapi": "3.0.0",
        "info": {"title": title, "version": "v1"},
        "paths": paths,
        "components": components,
    }


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
