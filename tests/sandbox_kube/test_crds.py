"""CustomResourceDefinitions: serving, discovery, status subresource, generation, validation."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from entra_rbac_sandbox.kube.server import ApiServerThread

from .crd_fixture import GROUP, widget, widget_crd
from .helpers import api_error, custom, gone, raw, served

V = "v1alpha1"


@pytest.fixture
def crd(kube_api: client.ApiClient) -> dict[str, object]:
    created = client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(widget_crd()).to_dict()
    served(kube_api, widget_crd())
    return created


def test_a_created_crd_is_established_and_discoverable(
    kube_api: client.ApiClient, crd: dict[str, object]
) -> None:
    read = client.ApiextensionsV1Api(kube_api).read_custom_resource_definition(f"widgets.{GROUP}")
    conditions = {c.type: c.status for c in read.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    _, resources = raw(kube_api, "GET", f"/apis/{GROUP}/{V}")
    names = {r["name"]: r for r in resources["resources"]}
    assert names["widgets"]["kind"] == "Widget"
    assert names["widgets"]["namespaced"] is False
    assert names["widgets"]["shortNames"] == ["wid"]
    assert "widgets/status" in names
    _, groups = raw(kube_api, "GET", "/apis")
    assert GROUP in {g["name"] for g in groups["groups"]}


def test_custom_objects_get_metadata_and_generation(
    kube_api: client.ApiClient, crd: dict[str, object]
) -> None:
    api = custom(kube_api)
    created = api.create_cluster_custom_object(GROUP, V, "widgets", widget("w"))
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["uid"]


def test_generation_moves_on_spec_changes_only(kube_api: client.ApiClient, crd: dict[str, object]) -> None:
    api = custom(kube_api)
    api.create_cluster_custom_object(GROUP, V, "widgets", widget("w"))
    labelled = api.patch_cluster_custom_object(GROUP, V, "widgets", "w", {"metadata": {"labels": {"a": "b"}}})
    assert labelled["metadata"]["generation"] == 1
    status = api.patch_cluster_custom_object_status(GROUP, V, "widgets", "w", {"status": {"message": "hi"}})
    assert status["metadata"]["generation"] == 1
    resized = api.patch_cluster_custom_object(GROUP, V, "widgets", "w", {"spec": {"size": 4}})
    assert resized["metadata"]["generation"] == 2


def test_the_main_endpoint_ignores_status_and_status_ignores_the_rest(
    kube_api: client.ApiClient, crd: dict[str, object]
) -> None:
    api = custom(kube_api)
    body = widget("w")
    body["status"] = {"message": "from create"}
    created = api.create_cluster_custom_object(GROUP, V, "widgets", body)
    assert "status" not in created
    main = api.patch_cluster_custom_object(GROUP, V, "widgets", "w", {"status": {"message": "main"}})
    assert "status" not in main
    both = {"spec": {"size": 9}, "status": {"message": "sub"}}
    sub = api.patch_cluster_custom_object_status(GROUP, V, "widgets", "w", both)
    assert (sub["spec"]["size"], sub["status"]["message"]) == (3, "sub")


def test_strategic_merge_patch_is_refused_for_custom_objects(
    kube_api: client.ApiClient, crd: dict[str, object]
) -> None:
    custom(kube_api).create_cluster_custom_object(GROUP, V, "widgets", widget("w"))
    status, body = raw(
        kube_api,
        "PATCH",
        f"/apis/{GROUP}/{V}/widgets/w",
        body={"spec": {"size": 2}},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")


def test_printer_columns_are_served_as_a_table(kube_api: client.ApiClient, crd: dict[str, object]) -> None:
    api = custom(kube_api)
    api.create_cluster_custom_object(GROUP, V, "widgets", widget("w", size=5))
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}], "message": "fine"}}
    api.patch_cluster_custom_object_status(GROUP, V, "widgets", "w", ready)
    _, table = raw(
        kube_api,
        "GET",
        f"/apis/{GROUP}/{V}/widgets",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Ready", "Size", "Age", "Message"]
    assert table["columnDefinitions"][-1]["priority"] == 1
    assert table["rows"][0]["cells"][:3] == ["w", "True", 5]


@pytest.mark.sandbox_only(reason="reads the sandbox's store through apiserver.call")
def test_deleting_a_crd_stops_serving_it_and_deletes_its_objects(
    kube_api: client.ApiClient, crd: dict[str, object], apiserver: ApiServerThread
) -> None:
    custom(kube_api).create_cluster_custom_object(GROUP, V, "widgets", widget("w"))
    client.ApiextensionsV1Api(kube_api).delete_custom_resource_definition(f"widgets.{GROUP}")
    assert gone(lambda: custom(kube_api).list_cluster_custom_object(GROUP, V, "widgets"))
    assert apiserver.call(lambda s: s.cluster.store.count((GROUP, "widgets"))) == 0


def test_namespaced_custom_objects_live_in_their_namespace(kube_api: client.ApiClient) -> None:
    crd = widget_crd(scope="Namespaced", plural="gadgets", kind="Gadget")
    client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(crd)
    served(kube_api, crd)
    body = widget("g")
    body["kind"] = "Gadget"
    custom(kube_api).create_namespaced_custom_object(GROUP, V, "default", "gadgets", body)
    assert (
        custom(kube_api).get_namespaced_custom_object(GROUP, V, "default", "gadgets", "g")["metadata"][
            "namespace"
        ]
        == "default"
    )
    assert (
        api_error(
            lambda: custom(kube_api).get_namespaced_custom_object(GROUP, V, "kube-system", "gadgets", "g")
        ).status
        == 404
    )


def test_an_invalid_crd_is_refused_naming_the_field(kube_api: client.ApiClient) -> None:
    bad = widget_crd()
    bad["metadata"]["name"] = "wrong.example.com"
    error = api_error(lambda: client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(bad))
    assert error.status == 422
    assert json.loads(error.body)["details"]["causes"][0]["field"] == "metadata.name"


# Schema validation, defaulting and pruning (crd_validation.py) ---------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "spec.size"),
        ({"size": "three"}, "spec.size"),
        ({"size": 11}, "spec.size"),
        ({"size": 3, "color": "green"}, "spec.color"),
        ({"size": 3, "name": "far-too-long"}, "spec.name"),
        ({"size": 3, "tags": ["a", "b", "c", "d"]}, "spec.tags"),
        ({"size": 3, "tags": ["UPPER"]}, "spec.tags[0]"),
        ({"size": 7}, "spec"),
    ],
)
def test_custom_objects_are_validated_against_the_schema(
    kube_api: client.ApiClient, crd: dict[str, object], spec: dict[str, object], field: str
) -> None:
    body = widget("w")
    body["spec"] = spec
    error = api_error(lambda: custom(kube_api).create_cluster_custom_object(GROUP, V, "widgets", body))
    status = json.loads(error.body)
    assert (error.status, status["reason"]) == (422, "Invalid")
    assert field in [cause.get("field") for cause in status["details"]["causes"]], status


def test_custom_objects_are_defaulted_and_pruned(kube_api: client.ApiClient, crd: dict[str, object]) -> None:
    body = widget("w")
    body["spec"]["unknown"] = "dropped"
    created = custom(kube_api).create_cluster_custom_object(GROUP, V, "widgets", body)
    assert created["spec"] == {"size": 3, "color": "red"}


def test_status_writes_are_validated_too(kube_api: client.ApiClient, crd: dict[str, object]) -> None:
    custom(kube_api).create_cluster_custom_object(GROUP, V, "widgets", widget("w"))
    bad = {"status": {"observedGeneration": "one"}}
    error = api_error(
        lambda: custom(kube_api).patch_cluster_custom_object_status(GROUP, V, "widgets", "w", bad)
    )
    assert error.status == 422


def test_strict_field_validation_refuses_unknown_fields(
    kube_api: client.ApiClient, crd: dict[str, object]
) -> None:
    body = widget("w")
    body["spec"]["unknown"] = "x"
    path = f"/apis/{GROUP}/{V}/widgets"
    status, answer = raw(kube_api, "POST", path, body=body, query=[("fieldValidation", "Strict")])
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert 'unknown field "spec.unknown"' in answer["message"]
    status, created = raw(kube_api, "POST", path, body=body, query=[("fieldValidation", "Warn")])
    assert status == 201
    assert "unknown" not in created["spec"]
