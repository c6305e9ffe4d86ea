"""The install in deploy/, applied with `kubectl apply -k` to the sandbox API server, used as the operator.

Proves against a real authorizer (with Kubernetes' escalation check) what docs/deployment.md
claims: the operator's ServiceAccount can create bindings to the allowlisted roles only, and
cannot read Secrets or write roles. The sandbox stores the Deployment but runs no pods;
tests/unit/test_deploy.py checks the pod spec.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = "system:serviceaccount:entra-rbac-system:entra-rbac-operator"
OPERATOR_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:entra-rbac-system")
NAMESPACE = "payments"
# A Role granting what the operator itself does not hold, so only `bind` can let it be bound.
TEAM_ROLE_RULES = [
    client.V1PolicyRule(api_groups=["apps"], resources=["deployments"], verbs=["get", "patch"])
]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def operator_rbac(
    kube_api: client.ApiClient, kubectl: Kubectl, kube_api_as: Callable[..., client.ApiClient]
) -> client.RbacAuthorizationV1Api:
    """`kubectl apply -k deploy/` by the admin, plus a team namespace with two Roles; the operator's API."""
    # The CRDs first, as docs/deployment.md allows for a first install (the Guardrails and
    # ClusterKopfPeering objects cannot be sent before their kinds are served; the sandbox,
    # without /openapi/v2, would refuse the whole apply where a real server applies the rest and
    # asks for a second apply).
    for crd in (
        ROOT / "crds" / "entragroupbindings.yaml",
        ROOT / "deploy" / "admission" / "guardrails-crd.yaml",
        ROOT / "deploy" / "kopf-peering.yaml",  # likewise for the ClusterKopfPeering object
    ):
        assert kubectl("apply", "-f", str(crd)).returncode == 0
    applied = kubectl("apply", "-k", str(ROOT / "deploy"))
    assert applied.returncode == 0, applied.stderr
    client.CoreV1Api(kube_api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
    )
    admin_rbac = client.RbacAuthorizationV1Api(kube_api)
    for role in ("deployer", "not-allowlisted"):
        admin_rbac.create_namespaced_role(
            NAMESPACE, client.V1Role(metadata=client.V1ObjectMeta(name=role), rules=TEAM_ROLE_RULES)
        )
    return client.RbacAuthorizationV1Api(kube_api_as(OPERATOR, OPERATOR_GROUPS))


def _role_binding(kind: str, role: str) -> Any:  # the client accepts plain dicts; its stubs say models
    return {
        "metadata": {"name": f"test-{kind.lower()}-{role}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "some-group-id"}],
    }


def _status_of(call: Callable[[], object]) -> int:
    try:
        call()
    except ApiException as error:
        return int(error.status)
    return 201


@pytest.mark.parametrize(
    ("kind", "role", "expected"),
    [
        ("ClusterRole", "view", 201),
        ("ClusterRole", "edit", 201),
        ("ClusterRole", "admin", 201),
        ("Role", "deployer", 201),
        ("ClusterRole", "cluster-admin", 403),
        ("Role", "not-allowlisted", 403),
    ],
)
def test_operator_binds_in_a_namespace_only_allowlisted_roles(
    operator_rbac: client.RbacAuthorizationV1Api, kind: str, role: str, expected: int
) -> None:
    body = _role_binding(kind, role)
    assert _status_of(lambda: operator_rbac.create_namespaced_role_binding(NAMESPACE, body)) == expected


@pytest.mark.parametrize(("role", "expected"), [("view", 201), ("edit", 201), ("cluster-admin", 403)])
def test_operator_binds_cluster_wide_only_allowlisted_cluster_roles(
    operator_rbac: client.RbacAuthorizationV1Api, role: str, expected: int
) -> None:
    body = _role_binding("ClusterRole", role)
    assert _status_of(lambda: operator_rbac.create_cluster_role_binding(body)) == expected


def test_operator_manages_and_deletes_its_bindings(operator_rbac: client.RbacAuthorizationV1Api) -> None:
    body = _role_binding("ClusterRole", "view")
    operator_rbac.create_namespaced_role_binding(NAMESPACE, body)
    listed = operator_rbac.list_role_binding_for_all_namespaces()
    assert body["metadata"]["name"] in {b.metadata.name for b in listed.items if b.metadata}
    operator_rbac.delete_namespaced_role_binding(body["metadata"]["name"], NAMESPACE)


@pytest.mark.parametrize(
    "forbidden",
    [
        pytest.param(lambda core, rbac: core.list_secret_for_all_namespaces(), id="list-secrets"),
        pytest.param(
            lambda core, rbac: core.list_service_account_for_all_namespaces(), id="list-serviceaccounts"
        ),
        pytest.param(lambda core, rbac: core.list_namespaced_config_map("kube-system"), id="list-configmaps"),
        pytest.param(
            lambda core, rbac: rbac.create_cluster_role({"metadata": {"name": "mine"}, "rules": []}),
            id="create-clusterrole",
        ),
        pytest.param(
            lambda core, rbac: rbac.patch_namespaced_role("deployer", NAMESPACE, {"rules": []}),
            id="change-a-role",
        ),
        pytest.param(lambda core, rbac: core.delete_namespace(NAMESPACE), id="delete-namespace"),
    ],
)
def test_operator_is_refused_everything_else(
    operator_rbac: client.RbacAuthorizationV1Api,
    forbidden: Callable[[client.CoreV1Api, client.RbacAuthorizationV1Api], object],
) -> None:
    core = client.CoreV1Api(operator_rbac.api_client)
    assert _status_of(lambda: forbidden(core, operator_rbac)) == 403


def test_applying_the_install_again_changes_nothing(operator_rbac: object, kubectl: Kubectl) -> None:
    again = kubectl("apply", "-k", str(ROOT / "deploy"))
    assert again.returncode == 0, again.stderr
    lines = again.stdout.strip().splitlines()
    assert lines
    assert all(line.endswith(" unchanged") for line in lines), again.stdout
