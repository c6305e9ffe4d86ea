"""PATCH formats through the official client and raw HTTP: merge, JSON patch, strategic merge."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from .helpers import configmap, core, raw

CM = "/api/v1/namespaces/default/configmaps/p"


@pytest.fixture
def patchable(kube_api: client.ApiClient) -> client.ApiClient:
    body = configmap("p", {"a": "1", "b": "2"})
    body["metadata"]["finalizers"] = ["example.com/one"]
    body["data"] = {"x": "1", "y": "2"}
    core(kube_api).create_namespaced_config_map("default", body)
    return kube_api


@pytest.mark.parametrize(
    ("content_type", "patch", "labels", "data"),
    [
        (
            "application/merge-patch+json",
            {"metadata": {"labels": {"a": None, "c": "3"}}},
            {"b": "2", "c": "3"},
            None,
        ),
        ("application/merge-patch+json", {"data": {"y": None}}, None, {"x": "1"}),
        (
            "application/json-patch+json",
            [{"op": "replace", "path": "/data/x", "value": "9"}],
            None,
            {"x": "9", "y": "2"},
        ),
        ("application/json-patch+json", [{"op": "remove", "path": "/metadata/labels/a"}], {"b": "2"}, None),
        (
            "application/strategic-merge-patch+json",
            {"metadata": {"labels": {"c": "3"}}},
            {"a": "1", "b": "2", "c": "3"},
            None,
        ),
    ],
)
def test_patch_formats_change_what_they_name(
    patchable: client.ApiClient,
    content_type: str,
    patch: Any,
    labels: dict[str, str] | None,
    data: dict[str, str] | None,
) -> None:
    status, body = raw(patchable, "PATCH", CM, body=patch, headers={"Content-Type": content_type})
    assert status == 200, body
    if labels is not None:
        assert body["metadata"]["labels"] == labels
    if data is not None:
        assert body["data"] == data


def test_strategic_merge_patch_merges_finalizers_and_deletes_from_them(patchable: client.ApiClient) -> None:
    smp = {"Content-Type": "application/strategic-merge-patch+json"}
    _, added = raw(
        patchable, "PATCH", CM, body={"metadata": {"finalizers": ["example.com/two"]}}, headers=smp
    )
    # The real server puts the patch's new items before the stored ones.
    assert added["metadata"]["finalizers"] == ["example.com/two", "example.com/one"]
    body = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/one"]}}
    _, removed = raw(patchable, "PATCH", CM, body=body, headers=smp)
    assert removed["metadata"]["finalizers"] == ["example.com/two"]


def test_merge_patch_replaces_lists_whole(patchable: client.ApiClient) -> None:
    body = {"metadata": {"finalizers": ["example.com/two"]}}
    _, patched = raw(
        patchable, "PATCH", CM, body=body, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert patched["metadata"]["finalizers"] == ["example.com/two"]


def test_patch_with_a_stale_resource_version_conflicts(patchable: client.ApiClient) -> None:
    body = {"metadata": {"resourceVersion": "1"}, "data": {"x": "2"}}
    status, answer = raw(
        patchable, "PATCH", CM, body=body, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert (status, answer["reason"]) == (409, "Conflict")


def test_failed_json_patch_test_operation_is_refused(patchable: client.ApiClient) -> None:
    body = [{"op": "test", "path": "/data/x", "value": "nope"}]
    status, _ = raw(
        patchable, "PATCH", CM, body=body, headers={"Content-Type": "application/json-patch+json"}
    )
    assert status == 422


def test_official_client_patch_uses_a_format_the_server_accepts(patchable: client.ApiClient) -> None:
    patched = core(patchable).patch_namespaced_config_map("p", "default", {"data": {"z": "3"}})
    assert patched.data == {"x": "1", "y": "2", "z": "3"}
