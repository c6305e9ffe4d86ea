"""The benchmarks' reads of Kubernetes objects as JSON, typed: the client's methods are declared
to return `object` (custom objects) or a model (lists read with `_preload_content=False`, which
answer the HTTP response itself), so each read here checks what it got."""

from __future__ import annotations

import json
from typing import Any

import urllib3
from kubernetes import client

EGB = ("entra-rbac.io", "v1alpha1", "entragroupbindings")


def json_object(value: object) -> dict[str, Any]:
    """A custom object (or list of them) as the client decoded it: a JSON object."""
    assert isinstance(value, dict), type(value)
    return value


def egbs(custom: client.CustomObjectsApi) -> list[dict[str, Any]]:
    """Every EntraGroupBinding."""
    return list(json_object(custom.list_cluster_custom_object(*EGB))["items"])


def egb(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    """The EntraGroupBinding `name`."""
    return json_object(custom.get_cluster_custom_object(*EGB, name))


def raw_items(response: object) -> list[dict[str, Any]]:
    """The items of a list read with `_preload_content=False`, decoded here rather than by the
    client's models (their cost at the benchmarks' sizes is several times the request's)."""
    assert isinstance(response, urllib3.BaseHTTPResponse), type(response)
    return list(json.loads(response.data)["items"])


def namespace(name: str) -> client.V1Namespace:
    """A Namespace to create."""
    return client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
