"""Objects and errors through the official client: server-set metadata and Status failures."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from .helpers import api_error, configmap, core, raw


def test_create_sets_uid_timestamp_and_resource_version(kube_api: client.ApiClient) -> None:
    created = core(kube_api).create_namespaced_config_map("default", configmap("a"))
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.namespace == "default"


def test_every_write_changes_the_resource_version(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    first = api.create_namespaced_config_map("default", configmap("a")).metadata.resource_version
    second = api.patch_namespaced_config_map("a", "default", {"data": {"k": "w"}}).metadata.resource_version
    third = api.patch_namespaced_config_map("a", "default", {"data": {"k": "x"}}).metadata.resource_version
    assert int(first) < int(second) < int(third)


def test_generate_name_gets_a_random_suffix(kube_api: client.ApiClient) -> None:
    created = core(kube_api).create_namespaced_config_map("default", {"metadata": {"generateName": "gen-"}})
    assert created.metadata.name.startswith("gen-")
    assert len(created.metadata.name) == len("gen-") + 5


@pytest.mark.parametrize(
    ("action", "status", "reason"),
    [
        ("get-missing", 404, "NotFound"),
        ("create-twice", 409, "AlreadyExists"),
        ("stale-update", 409, "Conflict"),
        ("bad-name", 422, "Invalid"),
        ("missing-namespace", 404, "NotFound"),
    ],
)
def test_failures_are_status_bodies_with_reason_and_code(
    kube_api: client.ApiClient, action: str, status: int, reason: str
) -> None:
    api = core(kube_api)
    existing = api.create_namespaced_config_map("default", configmap("exists"))
    calls = {
        "get-missing": lambda: api.read_namespaced_config_map("nope", "default"),
        "create-twice": lambda: api.create_namespaced_config_map("default", configmap("exists")),
        "stale-update": lambda: api.replace_namespaced_config_map(
            "exists", "default", {"metadata": {"name": "exists", "resourceVersion": "1"}, "data": {}}
        ),
        "bad-name": lambda: api.create_namespaced_config_map("default", configmap("Bad_Name")),
        "missing-namespace": lambda: api.create_namespaced_config_map("nowhere", configmap("x")),
    }
    error = api_error(calls[action])
    body = json.loads(error.body)
    assert (error.status, body["kind"], body["reason"], body["code"]) == (status, "Status", reason, status)
    assert existing.metadata.name == "exists"


def test_invalid_names_the_field_in_its_causes(kube_api: client.ApiClient) -> None:
    error = api_error(lambda: core(kube_api).create_namespaced_config_map("default", configmap("Bad_Name")))
    body = json.loads(error.body)
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert 'ConfigMap "Bad_Name" is invalid' in body["message"]


def test_put_with_the_current_resource_version_succeeds_and_without_one_overwrites(
    kube_api: client.ApiClient,
) -> None:
    api = core(kube_api)
    created = api.create_namespaced_config_map("default", configmap("a"))
    created.data = {"k": "updated"}
    updated = api.replace_namespaced_config_map("a", "default", created)
    assert updated.data == {"k": "updated"}
    blind = api.replace_namespaced_config_map(
        "a", "default", {"metadata": {"name": "a"}, "data": {"k": "blind"}}
    )
    assert blind.data == {"k": "blind"}
    assert blind.metadata.uid == created.metadata.uid


def test_server_set_fields_cannot_be_changed_by_an_update(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    created = api.create_namespaced_config_map("default", configmap("a"))
    body = {"metadata": {"name": "a", "creationTimestamp": "2000-01-01T00:00:00Z"}, "data": {}}
    updated = api.replace_namespaced_config_map("a", "default", body)
    assert updated.metadata.uid == created.metadata.uid
    assert updated.metadata.creation_timestamp == created.metadata.creation_timestamp


def test_an_update_naming_another_uid_is_a_failed_precondition(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    created = api.create_namespaced_config_map("default", configmap("a"))
    body = {"metadata": {"name": "a", "uid": "forged"}, "data": {}}
    error = api_error(lambda: api.replace_namespaced_config_map("a", "default", body))
    assert (error.status, json.loads(error.body)["message"]) == (
        409,
        'Operation cannot be fulfilled on configmaps "a": StorageError: invalid object, Code: 4, '
        "Key: /registry/configmaps/default/a, ResourceVersion: 0, AdditionalErrorMsg: Precondition "
        f"failed: UID in precondition: forged, UID in object meta: {created.metadata.uid}",
    )


def test_dry_run_does_not_persist(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    api.create_namespaced_config_map("default", configmap("dry"), dry_run="All")
    assert api_error(lambda: api.read_namespaced_config_map("dry", "default")).status == 404


def test_a_new_cluster_has_the_system_namespaces(kube_api: client.ApiClient) -> None:
    names = {ns.metadata.name for ns in core(kube_api).list_namespace().items}
    assert names == {"default", "kube-system", "kube-public", "kube-node-lease"}
    default = core(kube_api).read_namespace("default")
    assert default.status.phase == "Active"
    assert default.metadata.labels["kubernetes.io/metadata.name"] == "default"


@pytest.mark.parametrize(
    ("refs", "field"),
    [
        ([{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": ""}], "metadata.ownerReferences.uid"),
        (
            [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "1", "controller": True},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": "2", "controller": True},
            ],
            "metadata.ownerReferences",
        ),
    ],
)
def test_owner_references_are_validated(
    kube_api: client.ApiClient, refs: list[dict[str, object]], field: str
) -> None:
    error = api_error(
        lambda: core(kube_api).create_namespaced_config_map("default", configmap("d", ownerReferences=refs))
    )
    assert error.status == 422
    assert json.loads(error.body)["details"]["causes"][0]["field"] == field


def test_a_nameless_object_is_invalid_naming_metadata_name(kube_api: client.ApiClient) -> None:
    status, body = raw(kube_api, "POST", "/api/v1/namespaces", body={"metadata": {}})
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_a_body_of_another_kind_is_a_bad_request(kube_api: client.ApiClient) -> None:
    body = {"kind": "Secret", "metadata": {"name": "x"}}
    status, answer = raw(kube_api, "POST", "/api/v1/namespaces/default/configmaps", body=body)
    assert (status, answer["reason"]) == (400, "BadRequest")


def test_unknown_fields_of_built_in_kinds_are_dropped_or_refused_when_strict(
    kube_api: client.ApiClient,
) -> None:
    body = {
        "metadata": {"name": "b", "colour": "red"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subject": [{"kind": "User", "name": "typo"}],
    }
    path = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings"
    status, answer = raw(kube_api, "POST", path, body=body, query=[("fieldValidation", "Strict")])
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert 'unknown field "metadata.colour", unknown field "subject"' in answer["message"]
    status, created = raw(kube_api, "POST", path, body=body)
    assert status == 201
    assert "subject" not in created
    assert "colour" not in created["metadata"]


def test_secret_string_data_is_merged_into_data(kube_api: client.ApiClient) -> None:
    body = {"metadata": {"name": "s"}, "stringData": {"user": "alice"}, "data": {"other": "eA=="}}
    created = core(kube_api).create_namespaced_secret("default", body)
    assert created.data == {"other": "eA==", "user": "YWxpY2U="}
    assert created.string_data is None
