"""Binding names and label values (docs/design.md, Ownership)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from entra_rbac.constants import MANAGED_BY_LABEL, OWNER_UID_LABEL
from entra_rbac.core.naming import (
    BindingKey,
    binding_name,
    is_valid_binding_name,
    is_valid_label_value,
    label_value,
    owner_labels,
    owner_selector,
)


@pytest.mark.parametrize(
    ("resource", "kind", "role", "expected"),
    [
        ("payments", "ClusterRole", "edit", "egb:payments:clusterrole:edit"),
        ("payments", "Role", "deployer", "egb:payments:role:deployer"),
        (
            "a.b-c",
            "ClusterRole",
            "system:aggregate-to-edit",
            "egb:a.b-c:clusterrole:system:aggregate-to-edit",
        ),
    ],
)
def test_binding_name_is_readable_when_it_fits(resource: str, kind: str, role: str, expected: str) -> None:
    assert binding_name(resource, kind, role) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("resource", "role"),
    [("r" * 253, "edit"), ("payments", "x" * 253), ("r" * 253, "é" * 200), ("p", "y" * 247)],
)
def test_binding_name_is_shortened_with_a_hash_when_too_long(resource: str, role: str) -> None:
    name = binding_name(resource, "ClusterRole", role)
    assert is_valid_binding_name(name)
    assert len(name.encode()) <= 253
    assert name.startswith(f"egb:{resource[:63]}:clusterrole-")
    assert name == binding_name(resource, "ClusterRole", role)


def test_binding_name_at_exactly_253_bytes_is_not_shortened() -> None:
    role = "z" * (253 - len("egb:p:clusterrole:"))
    assert binding_name("p", "ClusterRole", role) == f"egb:p:clusterrole:{role}"


def test_long_names_that_share_a_prefix_still_differ() -> None:
    first = binding_name("payments", "ClusterRole", "x" * 300 + "a")
    second = binding_name("payments", "ClusterRole", "x" * 300 + "b")
    assert first != second


def test_role_and_cluster_role_of_the_same_name_get_different_names() -> None:
    assert binding_name("p", "Role", "edit") != binding_name("p", "ClusterRole", "edit")


@pytest.mark.parametrize(
    ("text", "unchanged"),
    [
        ("entra-rbac-operator", True),
        ("6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f", True),
        ("", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("has space", False),
        ("-leading", False),
        ("trailing.", False),
        ("système", False),
        ("///", False),
    ],
)
def test_label_value_keeps_valid_values_and_replaces_invalid_ones(text: str, unchanged: bool) -> None:
    value = label_value(text)
    assert is_valid_label_value(value)
    assert (value == text) is unchanged


def test_label_value_stand_ins_differ_for_different_texts() -> None:
    assert label_value("a" * 64) != label_value("a" * 65)
    assert label_value("x y") != label_value("x/y")


def test_owner_labels_select_exactly_one_owner() -> None:
    uid = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
    assert owner_labels(uid) == {MANAGED_BY_LABEL: "entra-rbac-operator", OWNER_UID_LABEL: uid}
    assert owner_selector(uid) == f"{MANAGED_BY_LABEL}=entra-rbac-operator,{OWNER_UID_LABEL}={uid}"


@pytest.mark.parametrize(
    ("name", "valid"),
    [("egb:a:role:b", True), ("a/b", False), ("a%b", False), (".", False), ("..", False), ("", False)],
)
def test_binding_name_validator_follows_rbac_path_segment_rules(name: str, valid: bool) -> None:
    assert is_valid_binding_name(name) is valid


def test_no_two_resource_role_pairs_share_a_name_exhaustively_over_a_small_alphabet() -> None:
    # Every role up to 6 characters over {a, :} against resources that differ only slightly:
    # ':' inside role names never lets one (resource, kind, role) pose as another.
    roles = ["".join(p) for n in range(1, 7) for p in itertools.product("a:", repeat=n)]
    resources = ["a", "aa", "a.a", "a-a", "a" * 240]
    inputs = [(r, k, role) for r in resources for k in ("ClusterRole", "Role") for role in roles]
    names = {binding_name(r, k, role) for r, k, role in inputs}  # type: ignore[arg-type]
    assert len(names) == len(inputs)


def test_binding_keys_sort_cluster_wide_first_then_by_namespace_and_name() -> None:
    keys = [
        BindingKey.of("RoleBinding", "b", "x"),
        BindingKey.of("RoleBinding", "a", "y"),
        BindingKey.of("ClusterRoleBinding", None, "z"),
    ]
    assert sorted(keys) == [
        ("ClusterRoleBinding", "", "z"),
        ("RoleBinding", "a", "y"),
        ("RoleBinding", "b", "x"),
    ]


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ({"metadata": {"name": "n", "namespace": "ns"}}, ("RoleBinding", "ns", "n")),
        ({"metadata": {"name": "n"}}, ("ClusterRoleBinding", "", "n")),
        ({"kind": "ClusterRoleBinding", "metadata": {"name": "n"}}, ("ClusterRoleBinding", "", "n")),
    ],
)
def test_binding_key_of_a_manifest_infers_the_kind_of_list_items(
    manifest: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    key = BindingKey.from_manifest(manifest)
    assert key == expected
    assert key.namespace_or_none == (expected[1] or None)


def test_binding_key_refuses_an_object_that_is_no_binding() -> None:
    with pytest.raises(ValueError, match="ConfigMap"):
        BindingKey.from_manifest({"kind": "ConfigMap", "metadata": {"name": "n"}})
