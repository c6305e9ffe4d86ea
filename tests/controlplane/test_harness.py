"""The harness runs the real thing: version, RBAC for minted users, aggregation, GC, namespaces.

Also the failure path: a binary that does not start is named, with why and its log's tail.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.controlplane.binaries import find_binaries, kubernetes_version
from tests.controlplane.harness import ControlPlane, StartupError, wait_for


def _api(kubeconfig: Path) -> client.ApiClient:
    return cast(client.ApiClient, config.new_client_from_config(config_file=str(kubeconfig)))  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def admin(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    with _api(control_plane.admin_kubeconfig) as api:
        yield api


def _gone(read: object) -> bool:
    try:
        read()  # type: ignore[operator]
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_the_server_is_the_pinned_kubernetes(control_plane: ControlPlane) -> None:
    version = control_plane.get_json("/version")
    assert version["gitVersion"] == kubernetes_version()
    assert version["major"] == "1"


def test_rbac_is_enforced_for_a_minted_user(control_plane: ControlPlane, admin: client.ApiClient) -> None:
    user = _name("rbac-user")
    with _api(control_plane.kubeconfig_for(user, ["testers"])) as api:
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(api).list_namespaced_config_map("default")
        assert refused.value.status == 403
        message = json.loads(refused.value.body or "{}").get("message")
        assert f'User "{user}" cannot list resource "configmaps"' in str(message)

        binding = client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=user),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"),
            subjects=[client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")],
        )
        client.RbacAuthorizationV1Api(admin).create_namespaced_role_binding("default", binding)
        wait_for(
            lambda: client.CoreV1Api(api).list_namespaced_config_map("default"), 30, "the binding to apply"
        )
        with pytest.raises(ApiException) as still_refused:  # view does not grant writes
            client.CoreV1Api(api).create_namespaced_config_map(
                "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=user))
            )
        assert still_refused.value.status == 403


def test_groups_of_a_minted_user_are_its_certificate_organizations(control_plane: ControlPlane) -> None:
    kubeconfig = control_plane.kubeconfig_for("alice@contoso.com", ["payments", "system:authenticated"])
    with _api(kubeconfig) as api:
        review = client.AuthenticationV1Api(api).create_self_subject_review(client.V1SelfSubjectReview())
    assert review.status is not None
    assert review.status.user_info is not None
    assert review.status.user_info.username == "alice@contoso.com"
    assert "payments" in (review.status.user_info.groups or [])


def test_aggregated_cluster_roles_have_rules(admin: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    for name in ("admin", "edit", "view"):
        role = rbac.read_cluster_role(name)
        assert role.aggregation_rule is not None
        assert role.rules, f"ClusterRole {name} was not aggregated"
    view = rbac.read_cluster_role("view")
    assert any("configmaps" in (r.resources or []) and "get" in r.verbs for r in view.rules or [])


def test_garbage_collector_deletes_dependents_of_a_cluster_scoped_owner(admin: client.ApiClient) -> None:
    rbac, core = client.RbacAuthorizationV1Api(admin), client.CoreV1Api(admin)
    owner = rbac.create_cluster_role(
        client.V1ClusterRole(metadata=client.V1ObjectMeta(name=_name("gc-owner")))
    )
    assert owner.metadata is not None
    assert owner.metadata.name is not None
    reference = client.V1OwnerReference(
        api_version="rbac.authorization.k8s.io/v1",
        kind="ClusterRole",
        name=owner.metadata.name,
        uid=owner.metadata.uid,
    )
    name = _name("gc-dependent")
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, owner_references=[reference]))
    )
    rbac.delete_cluster_role(owner.metadata.name)
    wait_for(
        lambda: _gone(lambda: core.read_namespaced_config_map(name, "default")), 90, "garbage collection"
    )


def test_a_deleted_namespace_finishes_terminating(admin: client.ApiClient) -> None:
    core = client.CoreV1Api(admin)
    namespace = _name("terminating")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="content"))
    )
    core.delete_namespace(namespace)
    try:
        status = core.read_namespace(namespace).status
        phase = status.phase if status is not None else None
    except ApiException as error:  # the namespace controller may be done already
        if error.status != 404:
            raise
        phase = "gone"
    assert phase in ("Terminating", "gone")
    wait_for(lambda: _gone(lambda: core.read_namespace(namespace)), 60, "the namespace to be deleted")


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_a_binary_that_fails_to_start_is_named_with_its_log(tmp_path: Path) -> None:
    real = find_binaries()
    binaries = tmp_path / "bin"
    binaries.mkdir()
    os.symlink(real / "etcd", binaries / "etcd")
    os.symlink(real / "kube-controller-manager", binaries / "kube-controller-manager")
    _script(binaries / "kube-apiserver", 'echo "E0101 unknown flag: --made-up" >&2; exit 3')
    cp = ControlPlane(binaries=binaries, workdir=tmp_path / "work", timeout=30)
    with pytest.raises(StartupError) as failed:
        cp.start()
    message = str(failed.value)
    assert message.startswith("kube-apiserver failed to start: exited with status 3")
    assert "unknown flag: --made-up" in message
    assert cp.pids == []  # etcd, which had started, was stopped


def test_a_binary_that_cannot_be_executed_is_named(tmp_path: Path) -> None:
    cp = ControlPlane(binaries=tmp_path, workdir=tmp_path / "work", timeout=10)
    with pytest.raises(StartupError, match=r"^etcd failed to start: could not be executed"):
        cp.start()
