"""Deletion: finalizers, propagation policies, garbage collection and namespace lifecycle."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from .helpers import api_error, configmap, core, eventually, gone, raw, rbac


def _owner_ref(
    owner: client.V1ConfigMap | client.V1ClusterRole, kind: str, api_version: str
) -> dict[str, object]:
    return {"apiVersion": api_version, "kind": kind, "name": owner.metadata.name, "uid": owner.metadata.uid}


def test_finalizers_keep_an_object_with_a_deletion_timestamp(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    api.create_namespaced_config_map("default", configmap("f", finalizers=["example.com/hold"]))
    api.delete_namespaced_config_map("f", "default")
    held = api.read_namespaced_config_map("f", "default")
    assert held.metadata.deletion_timestamp is not None
    api.patch_namespaced_config_map("f", "default", {"metadata": {"finalizers": None}})
    assert gone(lambda: api.read_namespaced_config_map("f", "default"))


def test_an_unknown_patch_directive_is_refused(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    api.create_namespaced_config_map("default", configmap("f"))
    patch = {"metadata": {"$patch": "merge", "finalizers": None}}
    status, body = raw(
        kube_api,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/f",
        body=patch,
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    observed = {"status": status, "reason": body.get("reason"), "message": body.get("message")}
    assert observed == {
        "status": 500,
        "reason": None,
        "message": "unknown patch type: merge in map: map[$patch:merge finalizers:<nil>]",
    }


def test_dependents_are_collected_when_their_owner_goes(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    owner = api.create_namespaced_config_map("default", configmap("owner"))
    api.create_namespaced_config_map(
        "default", configmap("dep", ownerReferences=[_owner_ref(owner, "ConfigMap", "v1")])
    )
    api.delete_namespaced_config_map("owner", "default")
    eventually(lambda: gone(lambda: api.read_namespaced_config_map("dep", "default")))


def test_a_cluster_scoped_owner_collects_namespaced_dependents(kube_api: client.ApiClient) -> None:
    role = rbac(kube_api).create_cluster_role({"metadata": {"name": "owner-role"}, "rules": []})
    ref = _owner_ref(role, "ClusterRole", "rbac.authorization.k8s.io/v1")
    core(kube_api).create_namespaced_config_map("default", configmap("dep", ownerReferences=[ref]))
    rbac(kube_api).delete_cluster_role("owner-role")
    eventually(lambda: gone(lambda: core(kube_api).read_namespaced_config_map("dep", "default")))


def test_orphan_propagation_keeps_dependents_and_strips_the_reference(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    owner = api.create_namespaced_config_map("default", configmap("owner"))
    api.create_namespaced_config_map(
        "default", configmap("dep", ownerReferences=[_owner_ref(owner, "ConfigMap", "v1")])
    )
    api.delete_namespaced_config_map("owner", "default", propagation_policy="Orphan")
    eventually(lambda: gone(lambda: api.read_namespaced_config_map("owner", "default")))
    assert not api.read_namespaced_config_map("dep", "default").metadata.owner_references


def test_foreground_propagation_deletes_dependents_before_the_owner(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    owner = api.create_namespaced_config_map("default", configmap("owner"))
    ref = _owner_ref(owner, "ConfigMap", "v1")
    hold = ["example.com/hold"]
    api.create_namespaced_config_map(
        "default",
        configmap("blocking", ownerReferences=[{**ref, "blockOwnerDeletion": True}], finalizers=hold),
    )
    api.create_namespaced_config_map("default", configmap("free", ownerReferences=[ref], finalizers=hold))
    api.delete_namespaced_config_map("owner", "default", propagation_policy="Foreground")
    # Both dependents are deleted; only the one with blockOwnerDeletion holds the owner.
    for name in ("blocking", "free"):
        eventually(
            lambda n=name: api.read_namespaced_config_map(n, "default").metadata.deletion_timestamp,
            timeout=60,
        )
    assert "foregroundDeletion" in api.read_namespaced_config_map("owner", "default").metadata.finalizers
    api.patch_namespaced_config_map("blocking", "default", {"metadata": {"finalizers": None}})
    eventually(lambda: gone(lambda: api.read_namespaced_config_map("owner", "default")), timeout=60)
    assert api.read_namespaced_config_map("free", "default").metadata.deletion_timestamp
    api.patch_namespaced_config_map("free", "default", {"metadata": {"finalizers": None}})


def test_delete_precondition_on_uid_conflicts(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    api.create_namespaced_config_map("default", configmap("p"))
    error = api_error(
        lambda: api.delete_namespaced_config_map("p", "default", body={"preconditions": {"uid": "other"}})
    )
    assert error.status == 409


def test_deleting_a_namespace_terminates_it_deletes_contents_then_removes_it(
    kube_api: client.ApiClient,
) -> None:
    api = core(kube_api)
    api.create_namespace({"metadata": {"name": "doomed"}})
    api.create_namespaced_config_map("doomed", configmap("held", finalizers=["example.com/hold"]))
    api.create_namespaced_config_map("doomed", configmap("plain"))
    api.delete_namespace("doomed")
    assert api.read_namespace("doomed").status.phase == "Terminating"
    eventually(lambda: gone(lambda: api.read_namespaced_config_map("plain", "doomed")))
    error = api_error(lambda: api.create_namespaced_config_map("doomed", configmap("late")))
    assert (error.status, json.loads(error.body)["reason"]) == (403, "Forbidden")
    assert "being terminated" in json.loads(error.body)["message"]
    api.patch_namespaced_config_map("held", "doomed", {"metadata": {"finalizers": None}})
    eventually(lambda: gone(lambda: api.read_namespace("doomed")))


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_every_propagation_policy_eventually_removes_the_object(
    kube_api: client.ApiClient, policy: str
) -> None:
    api = core(kube_api)
    api.create_namespaced_config_map("default", configmap("x"))
    api.delete_namespaced_config_map("x", "default", propagation_policy=policy)
    eventually(lambda: gone(lambda: api.read_namespaced_config_map("x", "default")))


def test_a_dependent_created_with_an_absent_owner_is_collected(kube_api: client.ApiClient) -> None:
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "never",
        "uid": "00000000-0000-0000-0000-000000000000",
    }
    core(kube_api).create_namespaced_config_map("default", configmap("orphan", ownerReferences=[ref]))
    eventually(lambda: gone(lambda: core(kube_api).read_namespaced_config_map("orphan", "default")))


def test_an_owner_in_another_namespace_does_not_count(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    owner = api.create_namespaced_config_map("kube-public", configmap("owner"))
    api.create_namespaced_config_map(
        "default", configmap("dep", ownerReferences=[_owner_ref(owner, "ConfigMap", "v1")])
    )
    eventually(lambda: gone(lambda: api.read_namespaced_config_map("dep", "default")))
