"""Desired bindings from a resource, its subjects and the cluster's namespaces (docs/design.md: The API;
Ownership; Triggers)."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.core.desired import AllowedRoles, NamespaceInfo, Owner, RoleInventory, namespace_selected
from entra_rbac.core.models import RoleBindingSpec
from entra_rbac.core.naming import is_valid_binding_name, is_valid_label_value
from entra_rbac.core.problems import Reason
from tests.unit.core_builders import G1, G2, OWNER, UID, desired_for, namespaces, spec


def keys(body: dict[str, Any], nss: list[NamespaceInfo], **kwargs: Any) -> list[tuple[str, str, str]]:
    return [b.key for b in desired_for(spec(**body), namespaces=nss, **kwargs).bindings]


def test_cluster_role_binding_manifest_has_names_labels_owner_and_sorted_subjects() -> None:
    desired = desired_for(spec(), group_ids=(G2, G1))
    assert [b.to_manifest() for b in desired.bindings] == [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {
                "name": "egb:payments:clusterrole:view",
                "labels": {
                    "app.kubernetes.io/managed-by": "entra-rbac-operator",
                    "entra-rbac.io/owner-uid": UID,
                },
                "annotations": {"entra-rbac.io/owner": "payments", "entra-rbac.io/groups": f"{G1},{G2}"},
                "ownerReferences": [
                    {
                        "apiVersion": "entra-rbac.io/v1alpha1",
                        "kind": "EntraGroupBinding",
                        "name": "payments",
                        "uid": UID,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": G1},
                {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": G2},
            ],
        }
    ]
    assert desired.problems == ()


def test_role_binding_lives_in_its_namespace() -> None:
    desired = desired_for(
        spec(roleBindings=[{"role": "deployer", "namespaces": ["pay"]}]), namespaces=namespaces("pay")
    )
    manifest = desired.bindings[0].to_manifest()
    assert manifest["kind"] == "RoleBinding"
    assert manifest["metadata"]["namespace"] == "pay"
    assert manifest["metadata"]["name"] == "egb:payments:role:deployer"
    assert manifest["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "deployer",
    }


SELECTOR = {"matchLabels": {"team": "pay"}}
CASES: list[tuple[str, dict[str, Any], list[NamespaceInfo], list[str]]] = [
    (
        "explicit_and_selected_namespaces_are_united",
        {"roleBindings": [{"clusterRole": "edit", "namespaces": ["a"], "namespaceSelector": SELECTOR}]},
        [NamespaceInfo("a"), NamespaceInfo("b", {"team": "pay"}), NamespaceInfo("c", {"team": "ops"})],
        ["a", "b"],
    ),
    (
        "reserved_namespaces_are_never_selected",
        {"roleBindings": [{"clusterRole": "edit", "namespaceSelector": SELECTOR}]},
        [NamespaceInfo("kube-system", {"team": "pay"}), NamespaceInfo("b", {"team": "pay"})],
        ["b"],
    ),
    (
        "reserved_namespaces_can_be_named_explicitly",
        {"roleBindings": [{"clusterRole": "view", "namespaces": ["kube-system"]}]},
        [NamespaceInfo("kube-system")],
        ["kube-system"],
    ),
    (
        "terminating_namespaces_get_no_binding",
        {"roleBindings": [{"clusterRole": "edit", "namespaces": ["a", "b"]}]},
        [NamespaceInfo("a", terminating=True), NamespaceInfo("b")],
        ["b"],
    ),
    (
        "two_entries_for_the_same_role_and_namespace_give_one_binding",
        {
            "roleBindings": [
                {"clusterRole": "edit", "namespaces": ["a"]},
                {"clusterRole": "edit", "namespaceSelector": SELECTOR},
            ]
        },
        [NamespaceInfo("a", {"team": "pay"})],
        ["a"],
    ),
]


@pytest.mark.parametrize(("body", "nss", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_role_bindings_target_the_right_namespaces(
    body: dict[str, Any], nss: list[NamespaceInfo], expected: list[str]
) -> None:
    assert [k[1] for k in keys(body, nss)] == expected


def test_terminating_namespaces_are_frozen_so_the_plan_leaves_them_alone() -> None:
    desired = desired_for(spec(), namespaces=[NamespaceInfo("a", terminating=True), NamespaceInfo("b")])
    assert desired.frozen_namespaces == frozenset({"a"})


def test_missing_explicit_namespace_is_reported_and_does_not_block_the_others() -> None:
    body = spec(roleBindings=[{"clusterRole": "edit", "namespaces": ["gone", "here"]}])
    desired = desired_for(body, namespaces=namespaces("here"))
    assert [b.namespace for b in desired.bindings] == ["here"]
    assert [(p.reason, p.field) for p in desired.problems] == [
        (Reason.NAMESPACE_NOT_FOUND, "spec.roleBindings[0].namespaces[0]")
    ]
    assert "'gone' does not exist" in desired.problems[0].message


def test_role_outside_the_allowlist_is_reported_and_never_bound() -> None:
    body = spec(
        clusterRoleBindings=[{"clusterRole": "cluster-admin"}, {"clusterRole": "view"}],
        roleBindings=[{"role": "deployer", "namespaces": ["a"]}],
    )
    allowed = AllowedRoles(cluster_roles=frozenset({"view"}), roles=frozenset())
    desired = desired_for(body, namespaces=namespaces("a"), allowed_roles=allowed)
    assert [b.role_ref.name for b in desired.bindings] == ["view"]
    assert [(p.reason, p.field) for p in desired.problems] == [
        (Reason.ROLE_NOT_ALLOWED, "spec.clusterRoleBindings[0].clusterRole"),
        (Reason.ROLE_NOT_ALLOWED, "spec.roleBindings[0].role"),
    ]


def test_a_star_in_the_allowlist_allows_any_role() -> None:
    allowed = AllowedRoles(cluster_roles=frozenset({"*"}), roles=frozenset())
    desired = desired_for(spec(clusterRoleBindings=[{"clusterRole": "anything"}]), allowed_roles=allowed)
    assert [b.role_ref.name for b in desired.bindings] == ["anything"]


def test_missing_role_is_reported_but_still_bound() -> None:
    body = spec(roleBindings=[{"role": "deployer", "namespaces": ["a", "b"]}])
    inventory = RoleInventory(cluster_roles=frozenset({"view"}), roles={"a": frozenset({"deployer"})})
    desired = desired_for(body, namespaces=namespaces("a", "b"), existing_roles=inventory)
    assert [b.namespace for b in desired.bindings] == ["a", "b"]
    assert [p.reason for p in desired.problems] == [Reason.ROLE_NOT_FOUND]
    assert "'b'" in desired.problems[0].message


def test_no_subjects_means_no_bindings() -> None:
    desired = desired_for(spec(), group_ids=())
    assert desired.bindings == ()


def test_bindings_are_sorted_cluster_wide_first_then_by_namespace_and_name() -> None:
    body = spec(
        clusterRoleBindings=[{"clusterRole": "view"}, {"clusterRole": "admin"}],
        roleBindings=[
            {"clusterRole": "edit", "namespaces": ["b", "a"]},
            {"clusterRole": "admin", "namespaces": ["a"]},
        ],
    )
    found = keys(body.model_dump(by_alias=True), namespaces("a", "b"))
    assert found == sorted(found)
    assert [k[0] for k in found] == ["ClusterRoleBinding"] * 2 + ["RoleBinding"] * 3


def test_every_name_and_label_is_valid_even_for_long_names() -> None:
    owner = OWNER.__class__(name="n" * 253, uid=UID)
    body = spec(clusterRoleBindings=[{"clusterRole": "r" * 253}])
    for binding in desired_for(body, owner=owner).bindings:
        assert is_valid_binding_name(binding.name)
        assert all(is_valid_label_value(v) for v in binding.labels.values())


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"metadata": {"name": "a"}}, NamespaceInfo("a")),
        (
            {"metadata": {"name": "a", "labels": {"t": "x"}}, "status": {"phase": "Active"}},
            NamespaceInfo("a", {"t": "x"}),
        ),
        (
            {"metadata": {"name": "a"}, "status": {"phase": "Terminating"}},
            NamespaceInfo("a", terminating=True),
        ),
        (
            {"metadata": {"name": "a", "deletionTimestamp": "2026-11-28T10:00:00Z"}},
            NamespaceInfo("a", terminating=True),
        ),
    ],
)
def test_namespace_info_reads_labels_and_termination_from_the_api_object(
    obj: dict[str, Any], expected: NamespaceInfo
) -> None:
    assert NamespaceInfo.from_manifest(obj) == expected


def test_owner_comes_from_the_resource_body() -> None:
    body = {"metadata": {"name": "payments", "uid": UID, "generation": 3}}
    assert Owner.from_manifest(body) == OWNER


SELECTOR = {"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"t": "a"}}}


@pytest.mark.parametrize(
    ("entry", "namespace", "labels", "reserved", "expected"),
    [
        ({"clusterRole": "edit", "namespaces": ["payments"]}, "payments", {}, (), True),
        ({"clusterRole": "edit", "namespaces": ["payments"]}, "billing", {}, (), False),
        # An explicit name is honoured even for a reserved namespace: someone asked for it.
        ({"clusterRole": "edit", "namespaces": ["kube-system"]}, "kube-system", {}, ("kube-system",), True),
        (
            {"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"t": "a"}}},
            "x",
            {"t": "a"},
            (),
            True,
        ),
        (
            {"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"t": "a"}}},
            "x",
            {"t": "b"},
            (),
            False,
        ),
        # A selector never reaches a reserved namespace.
        (
            {"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"t": "a"}}},
            "kube-system",
            {"t": "a"},
            ("kube-system",),
            False,
        ),
    ],
)
def test_namespace_selected_by_explicit_name_or_by_selector_outside_reserved(
    entry: dict[str, Any], namespace: str, labels: dict[str, str], reserved: tuple[str, ...], expected: bool
) -> None:
    rule = RoleBindingSpec.model_validate(entry)
    assert namespace_selected(rule, namespace, labels, reserved) is expected
