"""RBAC as the real server enforces it: validation, authorization, tokens, impersonation, reviews,
and the escalation check on bindings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from entra_rbac_sandbox.kube.server import ApiServerThread

from .helpers import api_error, configmap, core, eventually, raw, rbac

RBAC_GROUP = "rbac.authorization.k8s.io"
MakeClient = Callable[..., client.ApiClient]


def _binding(name: str, role_kind: str, role: str, subjects: list[dict[str, str]]) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role},
        "subjects": subjects,
    }


def _user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": RBAC_GROUP, "name": name}


def _group(name: str) -> dict[str, str]:
    return {"kind": "Group", "apiGroup": RBAC_GROUP, "name": name}


@pytest.fixture
def team_namespace(kube_api: client.ApiClient) -> str:
    core(kube_api).create_namespace({"metadata": {"name": "payments"}})
    core(kube_api).create_namespaced_config_map("payments", configmap("settings"))
    return "payments"


def test_role_ref_cannot_change(kube_api: client.ApiClient, team_namespace: str) -> None:
    api = rbac(kube_api)
    api.create_namespaced_role_binding(team_namespace, _binding("b", "ClusterRole", "view", [_user("alice")]))
    patch = {"roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "edit"}}
    error = api_error(lambda: api.patch_namespaced_role_binding("b", team_namespace, patch))
    body = json.loads(error.body)
    assert (error.status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "roleRef"


def test_a_cluster_role_binding_must_reference_a_cluster_role(kube_api: client.ApiClient) -> None:
    error = api_error(
        lambda: rbac(kube_api).create_cluster_role_binding(_binding("b", "Role", "view", [_user("alice")]))
    )
    assert error.status == 422
    assert json.loads(error.body)["details"]["causes"][0]["field"] == "roleRef.kind"


def test_rbac_names_may_contain_colons(kube_api: client.ApiClient) -> None:
    created = rbac(kube_api).create_cluster_role_binding(
        _binding("egb:team:clusterrole:view", "ClusterRole", "view", [_group("g")])
    )
    assert created.metadata.name == "egb:team:clusterrole:view"


def test_a_user_without_bindings_is_forbidden_with_the_real_message(
    kube_api_as: MakeClient, team_namespace: str
) -> None:
    error = api_error(lambda: core(kube_api_as("alice")).list_namespaced_config_map(team_namespace))
    body = json.loads(error.body)
    assert (error.status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        'configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" '
        'in the namespace "payments"'
    )


def test_a_role_binding_grants_only_its_namespace_and_verbs(
    kube_api: client.ApiClient, kube_api_as: MakeClient, team_namespace: str
) -> None:
    rbac(kube_api).create_namespaced_role_binding(
        team_namespace, _binding("view", "ClusterRole", "view", [_user("alice")])
    )
    alice = core(kube_api_as("alice"))
    assert [c.metadata.name for c in alice.list_namespaced_config_map(team_namespace).items] == ["settings"]
    assert api_error(lambda: alice.list_namespaced_config_map("default")).status == 403
    assert api_error(lambda: alice.create_namespaced_config_map(team_namespace, configmap("x"))).status == 403


def test_group_subjects_grant_their_members(
    kube_api: client.ApiClient, kube_api_as: MakeClient, team_namespace: str
) -> None:
    group_id = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
    rbac(kube_api).create_namespaced_role_binding(
        team_namespace, _binding("g", "ClusterRole", "edit", [_group(group_id)])
    )
    member = core(kube_api_as("bob@contoso.com", [group_id]))
    member.create_namespaced_config_map(team_namespace, configmap("by-bob"))
    outsider = core(kube_api_as("eve@contoso.com", ["other"]))
    assert api_error(lambda: outsider.list_namespaced_config_map(team_namespace)).status == 403


def test_aggregated_roles_gain_the_rules_of_matching_roles(
    kube_api: client.ApiClient, kube_api_as: MakeClient
) -> None:
    rules = [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}]
    labels = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    rbac(kube_api).create_cluster_role(
        {"metadata": {"name": "widgets-view", "labels": labels}, "rules": rules}
    )

    def has_widgets(role: str) -> bool:
        return any(r.resources == ["widgets"] for r in rbac(kube_api).read_cluster_role(role).rules or [])

    for role in ("view", "edit", "admin"):
        eventually(lambda role=role: has_widgets(role))
    rbac(kube_api).create_cluster_role_binding(_binding("vera", "ClusterRole", "view", [_user("vera")]))
    review = {"spec": {"resourceAttributes": {"verb": "get", "group": "example.com", "resource": "widgets"}}}
    answer = client.AuthorizationV1Api(kube_api_as("vera")).create_self_subject_access_review(review)
    assert answer.status.allowed is True


def test_bootstrap_roles_hold_their_real_rules(kube_api: client.ApiClient) -> None:
    api = rbac(kube_api)
    admin = api.read_cluster_role("cluster-admin").rules
    assert [(r.api_groups, r.resources, r.verbs) for r in admin if r.resources] == [(["*"], ["*"], ["*"])]
    view = {
        (g, res, v)
        for r in api.read_cluster_role("view").rules
        for g in r.api_groups or []
        for res in r.resources or []
        for v in r.verbs
    }
    assert ("", "configmaps", "list") in view
    assert ("", "secrets", "get") not in view
    edit = {
        (g, res, v)
        for r in api.read_cluster_role("edit").rules
        for g in r.api_groups or []
        for res in r.resources or []
        for v in r.verbs
    }
    assert ("", "secrets", "get") in edit
    assert view <= edit


def test_impersonation_acts_as_the_named_user_and_groups(
    kube_api: client.ApiClient, team_namespace: str
) -> None:
    rbac(kube_api).create_namespaced_role_binding(
        team_namespace, _binding("g", "ClusterRole", "view", [_group("team")])
    )
    path = f"/api/v1/namespaces/{team_namespace}/configmaps"
    status, _ = raw(kube_api, "GET", path, headers={"Impersonate-User": "carol"})
    assert status == 403
    as_team = {"Impersonate-User": "carol", "Impersonate-Group": "team"}
    # A real API server authorizes from an informer's copy of the bindings, which the new one
    # reaches a moment after its create (once in CI: 403).
    eventually(lambda: raw(kube_api, "GET", path, headers=as_team)[0] == 200)


def test_impersonation_needs_the_impersonate_verb(kube_api_as: MakeClient) -> None:
    status, body = raw(
        kube_api_as("mallory"), "GET", "/api/v1/namespaces", headers={"Impersonate-User": "sandbox-admin"}
    )
    assert (status, body["reason"]) == (403, "Forbidden")


@pytest.mark.parametrize(
    ("verb", "namespace", "allowed"),
    [("list", "payments", True), ("delete", "payments", False), ("list", "default", False)],
)
def test_subject_access_review_answers_from_the_same_rules(
    kube_api: client.ApiClient, team_namespace: str, verb: str, namespace: str, allowed: bool
) -> None:
    rbac(kube_api).create_namespaced_role_binding(
        team_namespace, _binding("v", "ClusterRole", "view", [_user("dave")])
    )

    def review(verb: str, namespace: str) -> bool:
        attributes = {"verb": verb, "resource": "configmaps", "namespace": namespace}
        body = {"spec": {"user": "dave", "resourceAttributes": attributes}}
        return bool(client.AuthorizationV1Api(kube_api).create_subject_access_review(body).status.allowed)

    # The real API server authorizes from an informer's copy of the bindings, which a new one
    # reaches a moment after its create: wait until the binding grants what it grants, so the
    # answers below, denials included, are asked of rules that hold it.
    eventually(lambda: review("list", team_namespace))
    assert review(verb, namespace) is allowed


def test_self_subject_access_review_uses_the_callers_identity(
    kube_api: client.ApiClient, kube_api_as: MakeClient, team_namespace: str
) -> None:
    rbac(kube_api).create_namespaced_role_binding(
        team_namespace, _binding("v", "ClusterRole", "view", [_user("erin")])
    )
    review = {
        "spec": {
            "resourceAttributes": {"verb": "list", "resource": "configmaps", "namespace": team_namespace}
        }
    }
    answer = client.AuthorizationV1Api(kube_api_as("erin")).create_self_subject_access_review(review)
    assert answer.status.allowed is True


def test_unknown_tokens_are_unauthorized(apiserver: Any) -> None:
    # Without a client certificate: the real server would accept the admin's and ignore the token.
    answer = httpx.get(
        apiserver.url + "/api/v1/namespaces",
        headers={"Authorization": "Bearer wrong", "Accept": "application/json"},
        verify=str(apiserver.ca_file),
        timeout=10,
    )
    assert (answer.status_code, answer.json()) == (
        401,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        },
    )


def test_identities_can_come_from_a_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.csv"
    token_file.write_text('frank-token,frank,uid-1,"viewers,ops"\n', encoding="utf-8")
    with ApiServerThread(tls=False, token_file=token_file) as server:
        user = server.call(lambda s: s.authenticator.authenticate({"Authorization": "Bearer frank-token"}))
    assert user.name == "frank"
    assert set(user.groups) == {"viewers", "ops", "system:authenticated"}


# The escalation check -------------------------------------------------------------------------


@pytest.fixture
def namespace_admin(
    kube_api: client.ApiClient, kube_api_as: MakeClient, team_namespace: str
) -> client.ApiClient:
    """A user holding `admin` in the team namespace only (may write RoleBindings there)."""
    rbac(kube_api).create_namespaced_role_binding(
        team_namespace, _binding("ns-admin", "ClusterRole", "admin", [_user("nina")])
    )
    return kube_api_as("nina")


def test_binding_a_role_whose_permissions_the_writer_holds_is_allowed(
    namespace_admin: client.ApiClient, team_namespace: str
) -> None:
    rbac(namespace_admin).create_namespaced_role_binding(
        team_namespace, _binding("v", "ClusterRole", "view", [_user("x")])
    )


def test_binding_a_role_with_more_permissions_is_forbidden(
    namespace_admin: client.ApiClient, team_namespace: str
) -> None:
    error = api_error(
        lambda: rbac(namespace_admin).create_namespaced_role_binding(
            team_namespace, _binding("ca", "ClusterRole", "cluster-admin", [_user("x")])
        )
    )
    body = json.loads(error.body)
    assert (error.status, body["reason"]) == (403, "Forbidden")
    assert "attempting to grant RBAC permissions not currently held" in body["message"]


@pytest.mark.parametrize(
    ("bind_names", "allowed"), [(["cluster-admin"], True), (["other"], False), ([], True)]
)
def test_bind_permission_honours_resource_names(
    kube_api: client.ApiClient,
    namespace_admin: client.ApiClient,
    team_namespace: str,
    bind_names: list[str],
    allowed: bool,
) -> None:
    rule = {
        "apiGroups": [RBAC_GROUP],
        "resources": ["clusterroles"],
        "verbs": ["bind"],
        "resourceNames": bind_names,
    }
    rbac(kube_api).create_cluster_role({"metadata": {"name": "binder"}, "rules": [rule]})
    rbac(kube_api).create_cluster_role_binding(_binding("binder", "ClusterRole", "binder", [_user("nina")]))
    create = lambda: rbac(namespace_admin).create_namespaced_role_binding(  # noqa: E731
        team_namespace, _binding("ca", "ClusterRole", "cluster-admin", [_user("x")])
    )
    if allowed:
        create()
    else:
        assert api_error(create).status == 403


def test_writing_a_role_needs_its_permissions_or_escalate(
    namespace_admin: client.ApiClient, team_namespace: str
) -> None:
    held = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
    rbac(namespace_admin).create_namespaced_role(
        team_namespace, {"metadata": {"name": "ok"}, "rules": [held]}
    )
    not_held = {"apiGroups": [""], "resources": ["nodes"], "verbs": ["delete"]}
    error = api_error(
        lambda: rbac(namespace_admin).create_namespaced_role(
            team_namespace, {"metadata": {"name": "too-much"}, "rules": [not_held]}
        )
    )
    assert error.status == 403


def test_an_aggregation_rule_needs_full_authority(
    kube_api: client.ApiClient, kube_api_as: MakeClient
) -> None:
    rule = {"apiGroups": [RBAC_GROUP], "resources": ["clusterroles"], "verbs": ["create"]}
    rbac(kube_api).create_cluster_role({"metadata": {"name": "role-writer"}, "rules": [rule]})
    rbac(kube_api).create_cluster_role_binding(
        _binding("role-writer", "ClusterRole", "role-writer", [_user("rw")])
    )
    aggregated = {
        "metadata": {"name": "gather"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]},
    }
    error = api_error(lambda: rbac(kube_api_as("rw")).create_cluster_role(aggregated))
    assert (
        "must have cluster-admin privileges to use the aggregationRule" in json.loads(error.body)["message"]
    )
    assert rbac(kube_api).create_cluster_role(aggregated).metadata.name == "gather"
