"""Adoption: the one way a hand-made binding becomes the operator's (docs/design.md, Adoption)."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.constants import ADOPT_ANNOTATION, MANAGED_BY_LABEL
from entra_rbac.core.desired import Owner
from entra_rbac.core.plan import ObservedBinding, Verb, make_plan, split_owned
from entra_rbac.core.problems import Reason
from entra_rbac.core.revocation import apply_plan
from entra_rbac.insight.plan import ResourcePlan
from entra_rbac.insight.render_plan import as_json, as_markdown, as_text
from tests.unit.core_builders import G1, UID, desired_for, namespaces, spec

NAME = "egb:payments:clusterrole:view"


def hand_made(**meta: Any) -> dict[str, Any]:
    """A binding someone wrote by hand at the name the resource targets, granting another group."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": NAME,
            "uid": "hand-uid",
            "resourceVersion": "7",
            "labels": {"team": "payments"},
            "annotations": {ADOPT_ANNOTATION: "payments"},
            **meta,
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice@example.com"}],
    }


def desired() -> Any:
    return desired_for(spec(), group_ids=(G1,), namespaces=namespaces("a"))


def test_annotated_binding_at_a_target_is_adopted_into_exactly_the_desired_binding() -> None:
    state = desired()
    plan = make_plan(state, [hand_made()], UID)
    assert plan.conflicts == ()
    assert [(a.verb, a.name, a.adopted, a.event_reason) for a in plan.actions] == [
        (Verb.PATCH, NAME, True, "Adopted")
    ]
    patch = plan.actions[0].patch
    assert patch is not None
    assert patch["metadata"]["resourceVersion"] == "7"  # a change since the read is refused (409)
    assert patch["metadata"]["annotations"][ADOPT_ANNOTATION] is None
    after = apply_plan([hand_made()], plan)
    wanted = state.bindings[0].to_manifest()
    assert after[0]["subjects"] == wanted["subjects"]
    assert after[0]["metadata"]["ownerReferences"] == wanted["metadata"]["ownerReferences"]
    assert after[0]["metadata"]["labels"] == {"team": "payments", **wanted["metadata"]["labels"]}
    assert ADOPT_ANNOTATION not in after[0]["metadata"]["annotations"]
    # Once adopted it counts as the operator's own (split_owned) and needs no further write.
    observed = [ObservedBinding.from_manifest(o) for o in after]
    assert split_owned(observed, UID, state.target_keys()).ours == tuple(observed)
    assert not make_plan(state, after, UID)


def test_adoption_keeps_non_controller_owner_references() -> None:
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "keep", "uid": "cm-uid"}
    after = apply_plan(
        [hand_made(ownerReferences=[other])], make_plan(desired(), [hand_made(ownerReferences=[other])], UID)
    )
    refs = after[0]["metadata"]["ownerReferences"]
    assert refs[0] == other
    assert refs[1]["uid"] == UID
    assert refs[1]["controller"] is True


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("no_annotation", {"annotations": {}}, "has no entra-rbac.io/adopt annotation"),
    ("annotation_names_another_resource", {"annotations": {ADOPT_ANNOTATION: "other"}}, "names 'other'"),
    (
        "controlled_by_another_owner",
        {
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Foo", "name": "f", "uid": "x", "controller": True}
            ]
        },
        "controlled by Foo 'f'",
    ),
    (
        "managed_by_another_tool",
        {"labels": {MANAGED_BY_LABEL: "Helm"}, "annotations": {ADOPT_ANNOTATION: "payments"}},
        "says 'Helm' manages it",
    ),
]


@pytest.mark.parametrize(("meta", "why"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_anything_else_at_a_target_stays_a_conflict(meta: dict[str, Any], why: str) -> None:
    plan = make_plan(desired(), [hand_made(**meta)], UID)
    assert plan.actions == ()
    assert [p.reason for p in plan.problems()] == [Reason.CONFLICT]
    assert why in plan.conflicts[0].message


def test_another_role_is_refused_never_replaced() -> None:
    """roleRef is immutable: replacing the object would leave a moment without access."""
    binding = hand_made()
    binding["roleRef"]["name"] = "edit"
    plan = make_plan(desired(), [binding], UID)
    assert plan.actions == ()
    assert "its roleRef is ClusterRole/edit, not ClusterRole/view" in plan.conflicts[0].message


def test_an_annotated_binding_at_a_name_the_resource_does_not_target_is_never_touched() -> None:
    binding = hand_made()
    binding["metadata"]["name"] = "payments-viewers"
    plan = make_plan(desired(), [binding], UID)
    assert [(a.verb, a.name) for a in plan.actions] == [(Verb.CREATE, NAME)]  # its own, beside it
    assert plan.conflicts == ()


def test_an_annotation_naming_the_resource_does_not_let_another_resource_adopt() -> None:
    other = Owner(name="other", uid="other-uid")
    state = desired_for(spec(), group_ids=(G1,), namespaces=namespaces("a"), owner=other)
    binding = hand_made()
    binding["metadata"]["name"] = state.bindings[0].name
    plan = make_plan(state, [binding], "other-uid")
    assert plan.actions == ()
    assert "names 'payments', not this resource" in plan.conflicts[0].message


def test_kubectl_entra_plan_shows_an_adoption() -> None:
    plans = [
        ResourcePlan(
            name="payments", change="update", source="", plan=make_plan(desired(), [hand_made()], UID)
        )
    ]
    text = as_text(plans)
    assert f"~ adopt ClusterRoleBinding {NAME} (ClusterRole/view)" in text
    assert "0 to update, 0 to replace, 0 to delete, 1 to adopt" in text
    assert '"action": "adopt"' in as_json(plans)
    assert "| adopt |" in as_markdown(plans)
