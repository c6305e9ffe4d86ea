"""The mass-revocation guard (docs/design.md, Directory semantics) and the plan simulation it rests on."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from entra_rbac.core.desired import DesiredState, NamespaceInfo, compute_desired
from entra_rbac.core.entra import DirectoryMember, MemberType
from entra_rbac.core.naming import shard_name
from entra_rbac.core.plan import ObservedBinding, make_plan
from entra_rbac.core.revocation import (
    after_plan,
    apply_plan,
    check_revocation,
    is_mass_revocation,
    removed_subjects,
)
from entra_rbac.core.subjects import Subject, build_subjects
from tests.unit.core_builders import G1, OWNER, UID, resolved, spec

BODY = spec(
    subjects={"kind": "User"},
    clusterRoleBindings=[{"clusterRole": "view"}],
    roleBindings=[{"clusterRole": "edit", "namespaces": ["a"]}],
)


def users(count: int) -> list[DirectoryMember]:
    return [DirectoryMember(f"u{i}", MemberType.USER, f"user{i:02}@contoso.com") for i in range(count)]


def desired_with(members: list[DirectoryMember]) -> DesiredState:
    subjects = build_subjects(BODY.subjects, [resolved(G1)], {G1: members})
    return compute_desired(OWNER, BODY, subjects, [NamespaceInfo("a")])


def cluster_with(members: list[DirectoryMember]) -> list[dict[str, Any]]:
    return [b.to_manifest() for b in desired_with(members).bindings]


@pytest.mark.parametrize(
    ("before", "after", "held"),
    [
        (10, 4, True),  # 6 of 10 removed: more than half and at least 5
        (10, 5, False),  # 5 of 10: not more than half
        (8, 3, True),  # 5 of 8: more than half, and 5
        (6, 2, False),  # 4 removed: fewer than 5
        (20, 0, True),
        (4, 0, False),  # a small group may empty freely
        (100, 60, False),  # 40 removed: many, but less than half
    ],
)
def test_guard_holds_plans_removing_more_than_half_and_at_least_five(
    before: int, after: int, held: bool
) -> None:
    actual = cluster_with(users(before))
    plan = make_plan(desired_with(users(after)), actual, UID)
    check = check_revocation(actual, plan, UID)
    assert check.held is held
    assert check.current == before
    assert len(check.removed) == before - after
    assert bool(check.message) is held


@pytest.mark.parametrize(
    ("current", "removed", "share", "minimum", "held"),
    [(10, 3, 0.25, 1, True), (10, 3, 0.3, 1, False), (10, 10, 1.0, 1, False), (2, 2, 0.5, 3, False)],
)
def test_guard_thresholds_are_configurable(
    current: int, removed: int, share: float, minimum: int, held: bool
) -> None:
    assert is_mass_revocation(current, removed, max_share=share, min_count=minimum) is held


def test_held_message_says_how_to_release_it() -> None:
    actual = cluster_with(users(10))
    check = check_revocation(actual, make_plan(desired_with([]), actual, UID), UID)
    assert "10 of 10 subjects" in check.message
    assert "entra-rbac.io/confirm-revocation" in check.message


def test_subjects_kept_in_another_binding_are_not_counted_as_removed() -> None:
    actual = cluster_with(users(3))
    body = spec(subjects={"kind": "User"}, clusterRoleBindings=[{"clusterRole": "view"}])
    subjects = build_subjects(body.subjects, [resolved(G1)], {G1: users(3)})
    plan = make_plan(compute_desired(OWNER, body, subjects, [NamespaceInfo("a")]), actual, UID)
    assert [a.verb.value for a in plan.actions] == ["delete"]
    assert removed_subjects(actual, plan, UID) == ()


def test_removed_subjects_lists_exactly_who_loses_access() -> None:
    actual = cluster_with(users(3))
    plan = make_plan(desired_with(users(1)), actual, UID)
    assert removed_subjects(actual, plan, UID) == (
        Subject("User", "user01@contoso.com"),
        Subject("User", "user02@contoso.com"),
    )


def test_foreign_bindings_do_not_count_as_the_owners_subjects() -> None:
    actual = cluster_with(users(10))
    for obj in actual:
        obj["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    check = check_revocation(actual, make_plan(desired_with([]), actual, UID), UID)
    assert (check.current, check.held) == (0, False)


def test_after_plan_keeps_untouched_bindings_and_agrees_with_apply_plan() -> None:
    actual = [ObservedBinding.from_manifest(m) for m in cluster_with(users(3))]
    plan = make_plan(desired_with(users(4)), actual, UID)
    assert [a.verb.value for a in plan.actions] == ["patch", "patch"]
    after = after_plan(actual, plan)
    assert [o.subjects for o in after] == [
        ObservedBinding.from_manifest(m).subjects for m in apply_plan(actual, plan)
    ]
    assert len(after[0].subjects) == 4
    unchanged = make_plan(desired_with(users(3)), actual, UID)
    assert all(a is b for a, b in zip(after_plan(actual, unchanged), actual, strict=True))


def test_apply_plan_leaves_its_input_unchanged() -> None:
    actual = cluster_with(users(3))
    snapshot = copy.deepcopy(actual)
    apply_plan(actual, make_plan(desired_with(users(1)), actual, UID))
    assert actual == snapshot


def test_after_plan_takes_the_subjects_the_plan_rendered_without_parsing_them_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """User mode's CPU (issue 17 point 7): the plan renders each distinct subject tuple once, and
    that list carries the tuple, so simulating the writes (status, the revocation guard) does not
    parse 1,000 subjects back per reconcile; the result is the very tuple the plan was made from."""
    desired = desired_with(users(1000))
    stale = ObservedBinding.from_manifests(cluster_with(users(999)))  # parsed as the cache would
    patched = make_plan(desired, stale, UID)  # every binding's subjects change
    assert {a.verb.value for a in patched.actions} == {"patch"}
    created = make_plan(desired, [], UID)

    def no_parse(*_: Any) -> Any:
        raise AssertionError("a rendered list was parsed back")

    monkeypatch.setattr("entra_rbac.core.plan.parse_subjects", no_parse)
    for after in (after_plan([], created), after_plan(stale, patched)):
        assert [b.key for b in after] == [b.key for b in desired.bindings]
        assert all(b.subjects is desired.bindings[0].subjects for b in after)
        assert all(b.canonical_subjects for b in after)


# --- forgeries at a target (docs/design.md, Ownership: what the guard weighs) -------------
# A namespace admin of `a` may delete the resource's RoleBinding there and write it again at the
# same name with exactly the operator's marks: indistinguishable from the operator's, so it is
# planned (patched back). But the subjects it adds were never derived from Entra, and their removal
# must not hold the resource's revocations everywhere else.


def forged_at_target(actual: list[dict[str, Any]], invented: int) -> list[dict[str, Any]]:
    """`actual` with the RoleBinding in `a` rewritten at its name, marks intact, plus `invented`
    subjects (and, with a negative count, only the first -invented subjects it held)."""
    forged = copy.deepcopy(actual)
    [binding] = [b for b in forged if b["kind"] == "RoleBinding"]
    if invented >= 0:
        binding["subjects"] += [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"forged{n}"}
            for n in range(invented)
        ]
    else:
        binding["subjects"] = binding["subjects"][:-invented]
    return forged


def test_subjects_a_forgery_adds_at_one_target_never_hold_a_revocation() -> None:
    real = cluster_with(users(3))
    actual = forged_at_target(real, invented=50)
    plan = make_plan(desired_with(users(2)), actual, UID)  # user02 leaves; the forgery is patched back
    assert [(a.verb.value, a.kind) for a in plan.actions] == [
        ("patch", "ClusterRoleBinding"),
        ("patch", "RoleBinding"),
    ]
    check = check_revocation(actual, plan, UID)
    assert check.held is False
    assert check.removed == (Subject("User", "user02@contoso.com"),)  # the one Entra removed
    assert removed_subjects(actual, plan, UID) == check.removed


def test_a_forged_shard_at_a_target_never_holds_a_revocation() -> None:
    real = cluster_with(users(3))
    [binding] = [b for b in real if b["kind"] == "RoleBinding"]
    shard = copy.deepcopy(binding)
    shard["metadata"]["name"] = shard_name(binding["metadata"]["name"], 3)  # a target, not asked for
    shard["subjects"] = [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"forged{n}"} for n in range(50)
    ]
    actual = [*real, shard]
    plan = make_plan(desired_with(users(3)), actual, UID)
    assert [a.verb.value for a in plan.actions] == ["delete"]
    check = check_revocation(actual, plan, UID)
    assert (check.held, check.removed) == (False, ())


@pytest.mark.parametrize("forgery", [50, -1, -6, -10])
@pytest.mark.parametrize("staying", [0, 4, 5, 6, 10])
def test_a_forgery_at_one_target_can_only_weaken_the_guard(forgery: int, staying: int) -> None:
    """Whatever a namespace admin writes at the resource's target in `a` (more subjects, or only
    some of them), a plan is held only if it would be held without the forgery, and never
    removes more than Entra does: the guard's removals are subjects granted at every target."""
    real = cluster_with(users(10))
    actual = forged_at_target(real, forgery)
    desired = desired_with(users(staying))
    honest = check_revocation(real, make_plan(desired, real, UID), UID)
    forged = check_revocation(actual, make_plan(desired, actual, UID), UID)
    assert set(forged.removed) <= set(honest.removed)
    assert forged.held <= honest.held
    assert forged.current >= len(set(honest.removed))
