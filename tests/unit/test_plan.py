"""The plan: create / patch / replace / delete, ownership and ordering (docs/design.md, Ownership)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.plan import ObservedBinding, Plan, Verb, cleanup_plan, make_plan, split_owned
from entra_rbac.core.problems import Reason
from entra_rbac.core.revocation import apply_plan
from tests.unit.core_builders import G1, G2, OTHER_UID, UID, desired_for, namespaces, spec

NS = namespaces("a", "b")


def existing(body: dict[str, Any] | None = None, group_ids: tuple[str, ...] = (G1,)) -> list[dict[str, Any]]:
    """The bindings as the cluster holds them after a successful reconcile of `body`."""
    desired = desired_for(spec(**(body or {})), group_ids=group_ids, namespaces=NS)
    objects = [b.to_manifest() for b in desired.bindings]
    for index, obj in enumerate(objects):
        obj["metadata"].update(uid=f"uid-{index}", resourceVersion=str(100 + index))
    return objects


def plan_for(
    actual: list[dict[str, Any]], body: dict[str, Any] | None = None, group_ids: tuple[str, ...] = (G1,)
) -> Plan:
    return make_plan(desired_for(spec(**(body or {})), group_ids=group_ids, namespaces=NS), actual, UID)


def summary(plan: Plan) -> list[tuple[str, str, str]]:
    return [(a.verb.value, a.namespace or "", a.name) for a in plan.actions]


def test_plan_creates_missing_bindings() -> None:
    assert summary(plan_for([])) == [("create", "", "egb:payments:clusterrole:view")]


def test_plan_is_empty_when_actual_equals_desired() -> None:
    plan = plan_for(existing())
    assert not plan
    assert plan.conflicts == ()


def test_plan_patches_subjects_when_membership_changes() -> None:
    plan = plan_for(existing(), group_ids=(G1, G2))
    assert summary(plan) == [("patch", "", "egb:payments:clusterrole:view")]
    action = plan.actions[0]
    assert action.changes == ("subjects", "annotations")
    assert action.patch is not None
    assert [s["name"] for s in action.patch["subjects"]] == [G1, G2]
    assert action.patch["metadata"]["resourceVersion"] == "100"
    assert [s.name for s in action.added] == [G2]


MUTATIONS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("subject_removed_by_hand", lambda o: o.update(subjects=[]), ("subjects",)),
    ("subjects_reordered", lambda o: o["subjects"].reverse(), ("subjects",)),
    ("subject_api_group_edited", lambda o: o["subjects"][0].update(apiGroup=""), ("subjects",)),
    (
        "owner_uid_label_changed",
        lambda o: o["metadata"]["labels"].update({"entra-rbac.io/owner-uid": "x"}),
        ("labels",),
    ),
    ("groups_annotation_removed", lambda o: o["metadata"]["annotations"].clear(), ("annotations",)),
]


@pytest.mark.parametrize(("mutate", "changes"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_plan_heals_hand_edits_of_owned_bindings(mutate: Any, changes: tuple[str, ...]) -> None:
    actual = existing(group_ids=(G1, G2))
    mutate(actual[0])
    plan = plan_for(actual, group_ids=(G1, G2))
    assert [(a.verb, a.changes) for a in plan.actions] == [(Verb.PATCH, changes)]
    assert not make_plan(plan_desired(group_ids=(G1, G2)), apply_plan(actual, plan), UID)


def plan_desired(**kwargs: Any) -> Any:
    return desired_for(spec(), namespaces=NS, **kwargs)


def test_plan_leaves_labels_and_annotations_added_by_others_alone() -> None:
    actual = existing()
    actual[0]["metadata"]["labels"]["extra"] = "x"
    actual[0]["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    assert not plan_for(actual)


def test_plan_replaces_binding_when_role_ref_changes() -> None:
    actual = existing()
    actual[0]["roleRef"]["name"] = "edit"  # only possible by delete-and-recreate; immutable otherwise
    plan = plan_for(actual)
    assert summary(plan) == [("replace", "", "egb:payments:clusterrole:view")]
    assert plan.actions[0].uid == "uid-0"
    assert plan.actions[0].manifest is not None


def test_role_change_creates_the_new_binding_before_deleting_the_old_one() -> None:
    actual = existing({"roleBindings": [{"clusterRole": "view", "namespaces": ["a", "b"]}]})
    plan = plan_for(actual, {"roleBindings": [{"clusterRole": "edit", "namespaces": ["a", "b"]}]})
    assert summary(plan) == [
        ("create", "a", "egb:payments:clusterrole:edit"),
        ("create", "b", "egb:payments:clusterrole:edit"),
        ("delete", "a", "egb:payments:clusterrole:view"),
        ("delete", "b", "egb:payments:clusterrole:view"),
    ]
    assert plan.actions[2].uid == "uid-0"
    assert plan.actions[2].resource_version == "100"


def test_plan_deletes_owned_bindings_no_longer_desired() -> None:
    actual = existing({"clusterRoleBindings": [{"clusterRole": "view"}, {"clusterRole": "edit"}]})
    assert summary(plan_for(actual)) == [("delete", "", "egb:payments:clusterrole:edit")]


FOREIGN: list[tuple[str, Any]] = [
    ("no_managed_by_label", lambda o: o["metadata"]["labels"].pop("app.kubernetes.io/managed-by")),
    (
        "owner_reference_to_another_resource",
        lambda o: o["metadata"]["ownerReferences"][0].update(uid=OTHER_UID),
    ),
    (
        "owner_reference_not_controller",
        lambda o: o["metadata"]["ownerReferences"][0].update(controller=False),
    ),
    ("no_owner_reference", lambda o: o["metadata"].pop("ownerReferences")),
]


@pytest.mark.parametrize("mutate", [f[1] for f in FOREIGN], ids=[f[0] for f in FOREIGN])
def test_foreign_object_at_a_desired_name_is_a_conflict_never_a_write(mutate: Any) -> None:
    actual = existing(group_ids=(G2,))
    mutate(actual[0])
    plan = plan_for(actual)
    assert plan.actions == ()
    assert [(c.kind, c.name) for c in plan.conflicts] == [
        ("ClusterRoleBinding", "egb:payments:clusterrole:view")
    ]
    assert [p.reason for p in plan.problems()] == [Reason.CONFLICT]
    assert "not managed by this EntraGroupBinding" in plan.conflicts[0].message


@pytest.mark.parametrize("mutate", [f[1] for f in FOREIGN], ids=[f[0] for f in FOREIGN])
def test_foreign_object_not_desired_is_never_deleted(mutate: Any) -> None:
    actual = existing({"clusterRoleBindings": [{"clusterRole": "edit"}]})
    mutate(actual[0])
    plan = plan_for(actual)
    assert summary(plan) == [("create", "", "egb:payments:clusterrole:view")]
    assert plan.conflicts == ()


def test_bindings_in_terminating_namespaces_are_left_alone() -> None:
    actual = existing({"roleBindings": [{"clusterRole": "edit", "namespaces": ["a"]}]})
    body = spec(roleBindings=[{"clusterRole": "edit", "namespaces": ["a"]}])
    desired = desired_for(
        body, group_ids=(G2,), namespaces=[*namespaces("b"), NamespaceInfo("a", terminating=True)]
    )
    assert not make_plan(desired, actual, UID)


def test_list_items_without_kind_are_recognised_by_their_namespace() -> None:
    actual = existing({"roleBindings": [{"clusterRole": "edit", "namespaces": ["a"]}]})
    for obj in actual:
        del obj["kind"], obj["apiVersion"]
    assert [ObservedBinding.from_manifest(o).kind for o in actual] == ["RoleBinding"]
    assert not plan_for(actual, {"roleBindings": [{"clusterRole": "edit", "namespaces": ["a"]}]})


def test_plan_is_deterministic_whatever_the_order_of_actual() -> None:
    actual = existing({"roleBindings": [{"clusterRole": "view", "namespaces": ["a", "b"]}]})
    body = {"roleBindings": [{"clusterRole": "edit", "namespaces": ["a", "b"]}]}
    assert plan_for(actual, body) == plan_for(list(reversed(copy.deepcopy(actual))), body)


def test_action_describe_reads_like_a_kubernetes_event() -> None:
    plan = plan_for(existing(), group_ids=(G1, G2))
    assert plan.actions[0].describe() == (
        f"Updated ClusterRoleBinding egb:payments:clusterrole:view (ClusterRole/view): "
        f"subjects, annotations changed; +Group {G2}"
    )


def test_action_describe_stays_short_for_thousands_of_subjects() -> None:
    groups = tuple(f"{i:08}-0000-0000-0000-000000000000" for i in range(30))
    action = plan_for([], group_ids=groups).actions[0]
    assert action.event_reason == "Created"
    assert action.describe().endswith("and 20 more")
    assert action.describe().count("+Group") == 10


# --- which marked bindings count (docs/design.md, Ownership) -----------------------------


def marked(namespace: str | None, name: str, **changes: Any) -> ObservedBinding:
    """A binding carrying the marks of UID, at `name` in `namespace` (None: cluster-wide)."""
    obj = existing()[0]
    obj["metadata"]["name"] = name
    if namespace is not None:
        obj["metadata"]["namespace"] = namespace
        obj["kind"] = "RoleBinding"
    for key, value in changes.items():
        obj["metadata"][key] = value
    return ObservedBinding.from_manifest(obj)


MARKS = existing()[0]["metadata"]["labels"]  # exactly the labels the operator writes
TARGETED = desired_for(
    spec(roleBindings=[{"clusterRole": "edit", "namespaces": ["a"]}]), namespaces=NS
).target_keys()
AT_TARGET = ("a", "egb:payments:clusterrole:edit")


@pytest.mark.parametrize(
    ("binding", "counted"),
    [
        (marked(*AT_TARGET), "ours"),
        # The same marks in a namespace the resource does not target: a forgery, or a leftover.
        (marked("b", "egb:payments:clusterrole:edit"), "stray"),
        # Targeted namespace, another name: the marks alone do not make it ours.
        (marked("a", "granted-by-hand"), "stray"),
        (marked(None, "egb:payments:clusterrole:edit"), "stray"),
        # Not both marks: neither counted nor ever deleted.
        (marked(*AT_TARGET, labels={"app.kubernetes.io/managed-by": "entra-rbac-operator"}), "neither"),
        (
            marked(
                *AT_TARGET,
                labels={
                    "app.kubernetes.io/managed-by": "entra-rbac-operator",
                    "entra-rbac.io/owner-uid": OTHER_UID,
                },
            ),
            "neither",
        ),
        (marked(*AT_TARGET, ownerReferences=[{"uid": UID, "controller": False}]), "neither"),
        (marked("b", "x", ownerReferences=[]), "neither"),
        # Labels others add (kubectl label) decide nothing: the patch leaves them as they are.
        (marked(*AT_TARGET, labels={**MARKS, "team": "payments"}), "ours"),
        (
            marked(*AT_TARGET, labels={**MARKS, "app.kubernetes.io/managed-by": "another-tool"}),
            "neither",
        ),
    ],
    ids=[
        "at-target",
        "untargeted-namespace",
        "targeted-namespace-other-name",
        "cluster-wide-not-granted",
        "no-owner-uid-label",
        "owner-uid-label-of-another",
        "owner-reference-not-controller",
        "no-owner-reference",
        "extra-label",
        "managed-by-another-tool",
    ],
)
def test_a_marked_binding_counts_only_at_a_target(binding: ObservedBinding, counted: str) -> None:
    owned = split_owned([binding], UID, TARGETED)
    found = {"ours": owned.ours, "stray": owned.strays}
    assert {k for k, v in found.items() if v} == ({counted} if counted != "neither" else set())


def test_strays_are_only_ever_deleted_and_never_in_a_terminating_namespace() -> None:
    strays = [marked("b", "forged"), marked("gone", "forged"), marked(None, "forged")]
    plan = cleanup_plan(strays, frozen_namespaces={"gone"})
    assert summary(plan) == [("delete", "", "forged"), ("delete", "b", "forged")]
    assert all(a.uid == "uid-0" and a.resource_version == "100" for a in plan.actions)


def test_targets_stand_also_without_subjects() -> None:
    empty = desired_for(
        spec(roleBindings=[{"clusterRole": "edit", "namespaces": ["a"]}]), group_ids=(), namespaces=NS
    )
    assert empty.bindings == ()
    assert empty.target_keys() == TARGETED
