"""core.handover: which bindings `entra-rbac release-bindings` turns into hand-made ones, and how."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.constants import GROUPS_ANNOTATION, MANAGED_BY_LABEL, OWNER_NAME_ANNOTATION, OWNER_UID_LABEL
from entra_rbac.core.handover import RELEASED_FROM_ANNOTATION, controlling_resource, released

EGB_REF = {
    "apiVersion": "entra-rbac.io/v1alpha1",
    "kind": "EntraGroupBinding",
    "name": "payments",
    "uid": "u-1",
    "controller": True,
    "blockOwnerDeletion": True,
}
OTHER_REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "u-2"}


def _binding(
    labels: dict[str, str] | None = None, refs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": "egb:payments:clusterrole:edit",
            "namespace": "payments",
            "resourceVersion": "41",
            "labels": {MANAGED_BY_LABEL: "entra-rbac-operator", OWNER_UID_LABEL: "u-1", "team": "payments"}
            if labels is None
            else labels,
            "annotations": {OWNER_NAME_ANNOTATION: "payments", GROUPS_ANNOTATION: "g1"},
            "ownerReferences": [EGB_REF, OTHER_REF] if refs is None else refs,
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "g1"}],
    }


def test_release_removes_the_owner_reference_and_the_operator_labels_and_keeps_the_access() -> None:
    out = released(_binding())
    assert out is not None
    meta = out["metadata"]
    assert meta["ownerReferences"] == [OTHER_REF], "only the EntraGroupBinding reference goes"
    assert meta["labels"] == {"team": "payments"}
    assert meta["annotations"] == {GROUPS_ANNOTATION: "g1", RELEASED_FROM_ANNOTATION: "payments"}
    assert meta["resourceVersion"] == "41", "the update is refused if the binding changed since it was read"
    assert (out["roleRef"], out["subjects"]) == (_binding()["roleRef"], _binding()["subjects"])


def test_release_drops_an_empty_owner_reference_list() -> None:
    out = released(_binding(refs=[EGB_REF]))
    assert out is not None
    assert "ownerReferences" not in out["metadata"]


@pytest.mark.parametrize(
    ("labels", "refs"),
    [
        pytest.param({}, [EGB_REF], id="no managed-by label"),
        pytest.param(None, [OTHER_REF], id="no reference to an EntraGroupBinding"),
        pytest.param(None, [{**EGB_REF, "controller": False}], id="a reference that is not the controller"),
        pytest.param(
            None, [{**EGB_REF, "apiVersion": "example.com/v1"}], id="another group's kind of that name"
        ),
        pytest.param({MANAGED_BY_LABEL: "someone-else"}, [EGB_REF], id="managed by another tool"),
    ],
)
def test_release_never_touches_what_is_not_the_operators(
    labels: dict[str, str] | None, refs: list[dict[str, Any]]
) -> None:
    binding = _binding(labels, refs)
    assert controlling_resource(binding) is None
    assert released(binding) is None


def test_release_of_named_resources_only() -> None:
    assert released(_binding(), frozenset({"shipping"})) is None
    assert released(_binding(), frozenset({"payments"})) is not None


def test_release_does_not_change_its_input() -> None:
    binding = _binding()
    released(binding)
    assert binding == _binding()
