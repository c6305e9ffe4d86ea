"""Sharding a binding too large for one object (docs/design.md, Subjects the operator emits:
bindings too large to write): the split (`core.shards`), the shards' names (`core.naming`), the
plan over shards, and the reconciler growing a group across the limit and back."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.core.naming import (
    MAX_NAME_LENGTH,
    BindingKey,
    binding_name,
    is_valid_binding_name,
    shard_index,
    shard_name,
    shard_number,
)
from entra_rbac.core.plan import ObservedBinding, split_owned
from entra_rbac.core.revocation import removed_subjects
from entra_rbac.core.shards import Sharding, split_subjects, subject_bytes
from entra_rbac.core.subjects import Subject
from entra_rbac.reconciler.context import Policy
from tests.unit.reconcile_fakes import UID, World, guid, member_names, user_mode_spec

G1 = guid(1)
BASE = "egb:team:clusterrole:view"


def users(count: int, start: int = 0) -> tuple[Subject, ...]:
    return tuple(sorted(Subject("User", f"user{n:06d}@contoso.com") for n in range(start, start + count)))


# --- the split ---------------------------------------------------------------------------------


def test_subjects_within_the_budget_stay_one_list() -> None:
    subjects = users(10)
    assert split_subjects(subjects, 10_000, 16) == (subjects,)


def test_a_split_keeps_every_subject_once_sorted_and_each_shard_within_the_budget() -> None:
    subjects = users(1_000)
    shards = split_subjects(subjects, 20_000, 16)
    assert len(shards) > 1
    assert sorted(s for shard in shards for s in shard) == list(subjects)
    for shard in shards:
        assert list(shard) == sorted(shard)
        assert sum(subject_bytes(s) for s in shard) <= 20_000


def test_one_member_joining_rewrites_one_shard() -> None:
    before = split_subjects(users(1_000), 30_000, 16)
    after = split_subjects(tuple(sorted((*users(1_000), Subject("User", "new@contoso.com")))), 30_000, 16)
    assert len(before) == len(after)
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1


@pytest.mark.parametrize(("small", "large"), [(1_000, 1_500), (1_000, 3_000)])
def test_members_move_only_into_new_shards_as_they_grow_and_out_of_old_ones_as_they_shrink(
    small: int, large: int
) -> None:
    """Growing n shards to m moves a staying subject only into shards n+1..m (created before any
    patch); shrinking back moves subjects only out of the shards that go (deleted last)."""
    few, many = split_subjects(users(small), 30_000, 16), split_subjects(users(large), 30_000, 16)
    assert len(few) < len(many)
    where_few = {s: i for i, shard in enumerate(few) for s in shard}
    where_many = {s: i for i, shard in enumerate(many) for s in shard}
    moved = [s for s in where_few if where_few[s] != where_many[s]]
    assert moved  # the new shards do take some
    assert all(where_many[s] >= len(few) for s in moved)


def test_the_cap_on_shards_is_kept_and_the_rest_left_over_the_budget() -> None:
    shards = split_subjects(users(1_000), 5_000, 3)
    assert len(shards) == 3
    assert max(sum(subject_bytes(s) for s in shard) for shard in shards) > 5_000
    assert split_subjects(users(1_000), 5_000, 1) == (users(1_000),)


# --- the hysteresis on the count (budget 30,000 B: 87 B a subject; the fresh count is 2 up to 554
# subjects and 3 from 555) ----------------------------------------------------------------------


def fresh_count(count: int) -> int:
    return len(split_subjects(users(count), 30_000, 16))


def test_a_binding_not_yet_sharded_gets_the_fresh_count() -> None:
    for count in (300, 345, 555, 1_000):
        assert split_subjects(users(count), 30_000, 16, current=1) == split_subjects(users(count), 30_000, 16)
    assert fresh_count(344) == 1
    assert fresh_count(345) == 2


@pytest.mark.parametrize("start", [550, 560])
def test_membership_hovering_at_a_boundary_does_not_flip_the_count(start: int) -> None:
    """Across 550..560 the fresh count flips between 2 and 3 (each flip rewrites every shard); with
    the count in use passed back, it stays what it first was."""
    assert (fresh_count(550), fresh_count(560)) == (2, 3)
    shards = len(split_subjects(users(start), 30_000, 16))
    for count in (start, 552, 558, 550, 560, 554, 556, 551, 559):
        split = split_subjects(users(count), 30_000, 16, current=shards)
        assert len(split) == shards
        assert max(sum(subject_bytes(s) for s in shard) for shard in split) <= 30_000


def test_a_count_in_use_grows_only_when_a_shard_would_pass_the_budget() -> None:
    """At 600 subjects (52,200 B) two shards still hold them within the budget: kept, though a
    fresh split would take 3. At 800 (69,600 B) two cannot: it grows, and subjects move only
    into the new shards."""
    assert fresh_count(600) == 3
    assert len(split_subjects(users(600), 30_000, 16, current=2)) == 2
    two = split_subjects(users(800)[:600], 30_000, 16, current=2)
    grown = split_subjects(users(800), 30_000, 16, current=2)
    assert len(grown) >= 3
    assert max(sum(subject_bytes(s) for s in shard) for shard in grown) <= 30_000
    where = {s: i for i, shard in enumerate(grown) for s in shard}
    assert all(where[s] == i or where[s] >= 2 for i, shard in enumerate(two) for s in shard)


@pytest.mark.parametrize(
    ("count", "current", "expected"),
    [
        (450, 3, 3),  # 39,150 B: 2 shards would be over 80% of the budget each: kept
        (400, 3, 2),  # 34,800 B: fits 2 shards at 80%: shrinks
        (300, 2, 2),  # 26,100 B: one binding would be within the budget, not within 80% of it
        (270, 2, 1),  # 23,490 B: within 80%: back to one binding
        (100, 16, 1),
    ],
)
def test_a_count_in_use_shrinks_only_when_the_subjects_fit_fewer_shards_with_a_margin(
    count: int, current: int, expected: int
) -> None:
    split = split_subjects(users(count), 30_000, 16, current=current)
    assert len(split) == expected
    if expected == 1:
        assert split == (users(count),)
    else:
        # shrinking moves subjects only out of the shards that go
        before = split_subjects(users(count), 30_000, current, current=current)
        where = {s: i for i, shard in enumerate(split) for s in shard}
        assert all(where[s] == i for i, shard in enumerate(before[:expected]) for s in shard)


def test_a_count_in_use_over_the_cap_comes_down_to_it() -> None:
    assert len(split_subjects(users(1_000), 30_000, 4, current=9)) == 4


def test_subject_bytes_is_the_compact_json_with_its_comma() -> None:
    import json

    subject = Subject("User", 'ann"o\u00e9@contoso.com')
    assert subject_bytes(subject) == len(json.dumps(subject.to_manifest(), separators=(",", ":"))) + 1


# --- names -------------------------------------------------------------------------------------


def test_shard_one_keeps_the_binding_name_and_the_others_are_numbered_in_the_kind_token() -> None:
    assert shard_name(BASE, 1) == BASE
    assert shard_name(BASE, 2) == "egb:team:clusterrole.2:view"
    assert shard_index("egb:team:clusterrole.12:view", BASE) == 12
    assert shard_index(BASE, BASE) == 1


@pytest.mark.parametrize(
    "name",
    [
        "egb:team:clusterrole:view-2",  # a role named view-2: another binding, not a shard
        "egb:team:clusterrole.1:view",
        "egb:team:clusterrole.02:view",
        "egb:team:role.2:view",
        "egb:other:clusterrole.2:view",
    ],
)
def test_a_name_that_is_not_a_shard_is_not_taken_for_one(name: str) -> None:
    assert shard_index(name, BASE) is None


def test_no_shard_name_is_the_name_of_an_unsharded_binding() -> None:
    """A role may be called anything, `view.2` or `view-2` included: the '.' in the kind token is
    what no unsharded name has."""
    for role in ("view", "view.2", "view-2", "2:view"):
        for index in range(2, 20):
            name = shard_name(binding_name("team", "ClusterRole", role), index)
            assert all(
                name != binding_name("team", "ClusterRole", other) for other in ("view", "view.2", "2:view")
            )


@pytest.mark.parametrize("role", ["r" * 180, "r" * 250, "a:" * 100])
def test_shard_names_of_long_bindings_stay_valid_distinct_and_recognised(role: str) -> None:
    base = binding_name("x" * 60, "ClusterRole", role)
    names = [shard_name(base, k) for k in range(1, 101)]
    assert len(set(names)) == 100
    for k, name in enumerate(names, start=1):
        assert is_valid_binding_name(name)
        assert len(name.encode()) <= MAX_NAME_LENGTH
        assert shard_index(name, base) == k


# --- ownership and the guard across shards ------------------------------------------------------


def observed(name: str, subjects: tuple[Subject, ...]) -> ObservedBinding:
    from entra_rbac.core.desired import Owner, RoleRef
    from entra_rbac.core.naming import owner_labels

    return ObservedBinding(
        kind="ClusterRoleBinding",
        namespace=None,
        name=name,
        role_ref=RoleRef("ClusterRole", "view"),
        subjects=subjects,
        labels=owner_labels(UID),
        annotations={},
        owner_references=(Owner("team", UID).reference(),),
        uid=name,
        resource_version="1",
    )


def test_a_targets_shards_are_its_own_and_shards_past_the_cap_are_strays() -> None:
    from entra_rbac.core.desired import TargetKeys

    targets = TargetKeys.of([BindingKey.of("ClusterRoleBinding", None, BASE)], 4)
    found = [observed(shard_name(BASE, k), users(1)) for k in (1, 2, 4, 5)]
    owned = split_owned(found, UID, targets)
    assert {b.name for b in owned.ours} == {BASE, shard_name(BASE, 2), shard_name(BASE, 4)}
    assert [b.name for b in owned.strays] == [shard_name(BASE, 5)]
    assert BindingKey.of("RoleBinding", "ns", shard_name(BASE, 2)) not in targets


# --- the reconciler ----------------------------------------------------------------------------


def spec() -> dict[str, Any]:
    return user_mode_spec(G1)


def held(world: World) -> dict[str, list[str]]:
    return {
        key.name: [s["name"] for s in body.get("subjects") or []]
        for key, body in sorted(world.kube.bindings.items())
    }


async def test_a_group_grown_across_the_limit_is_sharded_and_shrinks_back_to_one_binding() -> None:
    world = World(policy=Policy(sharding=Sharding(8_192, 16), revocation_guard_min=10_000))
    world.directory.add_group(G1, *member_names(10))
    world.apply(spec())
    assert (await world.reconcile()).reason == "Reconciled"
    assert list(held(world)) == [BASE]

    world.directory.add_group(G1, *member_names(300))
    world.directory.invalidate()
    world.clock.advance(300)
    writes = len(world.kube.writes)
    assert (await world.reconcile(fresh=True)).reason == "Reconciled"
    shards = held(world)
    assert len(shards) > 2
    assert BASE in shards
    assert sorted(n for names in shards.values() for n in names) == sorted(
        f"{m}@contoso.com" for m in member_names(300)
    )
    verbs = [verb for verb, _, _ in world.kube.writes[writes:]]
    assert verbs == sorted(verbs, key=["create", "patch", "delete"].index)  # make before break
    status = world.kube.resources["team"]["status"]
    assert (status["summary"]["bindings"], status["summary"]["subjects"]) == (len(shards), 300)

    world.directory.add_group(G1, *member_names(5))
    world.directory.invalidate()
    world.clock.advance(300)
    writes = len(world.kube.writes)
    assert (await world.reconcile(fresh=True)).reason == "Reconciled"
    assert held(world) == {BASE: [f"{m}@contoso.com" for m in member_names(5)]}
    verbs = [verb for verb, _, _ in world.kube.writes[writes:]]
    assert verbs[0] == "patch"
    assert set(verbs[1:]) == {"delete"}


async def test_a_group_hovering_at_a_shard_boundary_keeps_its_shards_and_patches_only() -> None:
    """At this byte limit a fresh split takes 3 shards up to 207 members and 4 from 208: a group
    going 210, 204, 212, 205 keeps its 4 shards (no shard created or deleted), each change a patch
    of the shards whose members changed."""
    fresh = World(policy=Policy(sharding=Sharding(8_192, 16)))
    fresh.directory.add_group(G1, *member_names(204))
    fresh.apply(spec())
    assert (await fresh.reconcile()).reason == "Reconciled"
    assert len(held(fresh)) == 3  # the fresh count below the boundary
    world = World(policy=Policy(sharding=Sharding(8_192, 16), revocation_guard_min=10_000))
    world.directory.add_group(G1, *member_names(210))
    world.apply(spec())
    assert (await world.reconcile()).reason == "Reconciled"
    shards = sorted(held(world))
    assert len(shards) == 4
    for count in (204, 212, 205, 209):
        world.directory.add_group(G1, *member_names(count))
        world.directory.invalidate()
        world.clock.advance(300)
        writes = len(world.kube.writes)
        assert (await world.reconcile(fresh=True)).reason == "Reconciled"
        assert sorted(held(world)) == shards
        assert {verb for verb, _, _ in world.kube.writes[writes:]} == {"patch"}
        assert sorted(n for names in held(world).values() for n in names) == sorted(
            f"{m}@contoso.com" for m in member_names(count)
        )


async def test_a_forged_shard_does_not_raise_the_count_in_use() -> None:
    """A binding someone else wrote at a shard name of the resource, with its labels and a
    controller reference to it (both forgeable), is deleted as a shard the split does not ask
    for; it never raises the count in use (docs/design.md, Ownership): at 204 members the
    resource keeps its 3 shards untouched. Counted, it would reshard every binding into 4."""
    import copy

    world = World(policy=Policy(sharding=Sharding(8_192, 16), revocation_guard_min=10_000))
    world.directory.add_group(G1, *member_names(204))
    world.apply(spec())
    assert (await world.reconcile()).reason == "Reconciled"
    before = held(world)
    assert sorted(before) == sorted(shard_name(BASE, k) for k in (1, 2, 3))
    for index in (4, 9):
        forged = copy.deepcopy(world.kube.bindings[BindingKey.of("ClusterRoleBinding", None, BASE)])
        forged["metadata"] = {
            "name": shard_name(BASE, index),
            "labels": forged["metadata"]["labels"],
            "annotations": forged["metadata"]["annotations"],
            "ownerReferences": forged["metadata"]["ownerReferences"],
        }
        forged["subjects"] = forged["subjects"][:1]
        key = world.kube.put_binding(forged)
        writes = len(world.kube.writes)
        assert (await world.reconcile()).reason == "Reconciled"
        assert world.kube.writes[writes:] == [("delete", key, True)]
        assert held(world) == before
    world.ctx = world.new_context()  # a restart: the count is read from the bindings standing
    writes = len(world.kube.writes)
    assert (await world.reconcile()).reason == "Reconciled"
    assert world.kube.writes[writes:] == []


def test_a_subject_moving_between_shards_is_not_a_removal() -> None:
    from entra_rbac.core.desired import DesiredState, Owner, build_binding
    from entra_rbac.core.plan import Plan, make_plan
    from entra_rbac.core.subjects import SubjectSet

    owner = Owner("team", UID)
    a, b = users(2)
    before = [observed(BASE, (a, b))]
    binding = build_binding(owner, "ClusterRole", "view", None, SubjectSet((a,), (G1,)))
    moved = build_binding(owner, "ClusterRole", "view", None, SubjectSet((b,), (G1,)))
    from dataclasses import replace

    desired = DesiredState(
        owner, (binding, replace(moved, name=shard_name(BASE, 2))), (), (a, b), (G1,), max_shards=2
    )
    plan = make_plan(desired, before)
    assert isinstance(plan, Plan)
    assert [x.verb.value for x in plan.actions] == ["create", "patch"]
    assert removed_subjects(before, plan, UID) == ()


# --- the insight tools -------------------------------------------------------------------------


def _shard_manifest(index: int) -> dict[str, Any]:
    from entra_rbac.core.desired import Owner

    owner = Owner("team", UID)
    from entra_rbac.core.desired import build_binding
    from entra_rbac.core.subjects import SubjectSet

    whole = build_binding(owner, "ClusterRole", "view", None, SubjectSet(users(1), (G1,)))
    manifest = whole.to_manifest()
    manifest["metadata"]["name"] = shard_name(BASE, index)
    return manifest


@pytest.mark.parametrize("index", [1, 2, 7])
def test_explain_report_and_import_take_a_shard_for_the_resources_own_binding(index: int) -> None:
    """`explain` and `report` name the resource behind a shard; `import` skips it as the
    operator's (never a foreign or duplicate binding to import)."""
    from entra_rbac.insight.explain import _managed_by
    from entra_rbac.insight.importer import _skip_reason
    from entra_rbac.insight.report import _claim
    from entra_rbac.reconciler.ownership import claimants

    manifest = _shard_manifest(index)
    resource = {"metadata": {"name": "team", "uid": UID}, "spec": spec(), "status": written(7)}
    by_label = claimants([resource], [], Policy())
    ownership = _managed_by(manifest, by_label, 16)
    assert (ownership.managed_by, ownership.shard, ownership.claims) == ("team", index, False)
    claim = _claim(manifest, by_label)
    assert claim is not None
    assert (claim.claimant.name, claim.own) == ("team", True)
    assert _skip_reason(manifest) == "managed by the operator"


def written(shards: int) -> dict[str, Any]:
    """A status recording the resource's bindings written as `shards` shards."""
    return {"summary": {"bindings": shards, "shards": shards}} if shards > 1 else {"summary": {"bindings": 1}}


@pytest.mark.parametrize("shards", [1, 6])
def test_explain_and_report_take_a_shard_past_those_written_for_none_of_the_resources(shards: int) -> None:
    """Shard 7 of a resource whose status says it was written as fewer (docs/design.md,
    Ownership): as the reconcile decides, a stray claiming it, never the resource's binding."""
    from entra_rbac.insight.explain import _managed_by
    from entra_rbac.insight.report import _claim
    from entra_rbac.reconciler.ownership import claimants

    manifest = _shard_manifest(7)
    resource = {"metadata": {"name": "team", "uid": UID}, "spec": spec(), "status": written(shards)}
    by_label = claimants([resource], [], Policy())
    ownership = _managed_by(manifest, by_label, 16)
    assert (ownership.managed_by, ownership.claims) == (None, True)
    assert ownership.not_managed_because == (
        f"it carries the marks of EntraGroupBinding team at shard 7, but the operator wrote that "
        f"resource's bindings as {shards} shard{'s' if shards > 1 else ''} (its status, summary.shards), "
        "so it is none of them; the operator deletes it as a stray (a leftover or a forgery)"
    )
    claim = _claim(manifest, by_label)
    assert claim is not None
    assert not claim.own


@pytest.mark.parametrize("index", [17, 99])
def test_explain_and_report_take_a_shard_number_past_the_cap_for_none_of_the_resources_bindings(
    index: int,
) -> None:
    """A name numbered past ENTRA_RBAC_MAX_SHARDS (16 by default) is no shard the operator
    writes: `explain` says what it is (the resource's marks at a shard number past the cap: a
    stray the operator deletes), `report` lists it as unmanaged; under a higher cap it is a shard."""
    from entra_rbac.insight.explain import _managed_by
    from entra_rbac.insight.report import _claim
    from entra_rbac.reconciler.ownership import claimants

    manifest = _shard_manifest(index)
    resource = {"metadata": {"name": "team", "uid": UID}, "spec": spec(), "status": written(100)}
    by_label = claimants([resource], [], Policy())
    ownership = _managed_by(manifest, by_label, 16)
    assert (ownership.managed_by, ownership.claims) == (None, True)
    assert ownership.not_managed_because == (
        f"it carries the marks of EntraGroupBinding team at shard {index}, but a binding is written "
        "as at most ENTRA_RBAC_MAX_SHARDS (16) shards, so it is none of that resource's bindings; "
        "the operator deletes it as a stray (a leftover or a forgery)"
    )
    claim = _claim(manifest, by_label)
    assert claim is not None
    assert not claim.own  # listed as a stray, claiming the resource
    higher = claimants([resource], [], Policy(sharding=Sharding(max_shards=100)))
    assert _managed_by(manifest, higher, 100).managed_by == "team"
    assert getattr(_claim(manifest, higher), "own", None) is True


def test_explain_says_shard_k_of_n_and_what_a_binding_past_the_cap_is() -> None:
    """`explain`'s text, markdown and JSON name a shard as "shard k of n" (n: the highest shard of
    that binding standing, within the cap); an unsharded binding says no shard; a binding at a
    shard number past the cap is explained as what it is, not as a shard."""
    import asyncio
    import json

    from entra_rbac.core.rbac import RoleBook
    from entra_rbac.insight.explain import ExplainState, Query, as_json, as_markdown, as_text, explain

    bindings, resource, _ = _sharded_world()
    past = _shard_manifest(17)
    view = {
        "metadata": {"name": "view"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }
    state = ExplainState([*bindings, past], RoleBook.from_manifests([view]), [resource])
    third = next(b for b in bindings if b["metadata"]["name"] == shard_name(BASE, 3))
    member = third["subjects"][0]["name"]
    answer = asyncio.run(explain(Query(user=member), state, None))
    text = as_text(answer)
    assert f"ClusterRoleBinding {shard_name(BASE, 3)}: ClusterRole/view, cluster\n" in text
    assert "    managed by EntraGroupBinding team (shard 3 of 6)\n" in text
    assert "managed by EntraGroupBinding team (shard 3 of 6)" in as_markdown(answer)
    [path] = json.loads(as_json(answer))["paths"]
    assert (path["shard"], path["notManagedBecause"]) == ({"index": 3, "of": 6}, None)

    everyone = asyncio.run(explain(Query(), state, None))
    shards = {v.path.key.name: v.shard for v in everyone.paths}
    assert {name: (s.index, s.of) for name, s in shards.items() if s is not None} == {
        shard_name(BASE, k): (k, 6) for k in range(1, 7)
    }
    assert shards[shard_name(BASE, 17)] is None
    text = as_text(everyone)
    assert (
        f"- ClusterRoleBinding {shard_name(BASE, 17)}: ClusterRole/view, cluster\n"
        "    unmanaged: it carries the marks of EntraGroupBinding team at shard 17, but a binding is "
        "written as at most ENTRA_RBAC_MAX_SHARDS (16) shards, so it is none of that resource's "
        "bindings; the operator deletes it as a stray (a leftover or a forgery)\n"
    ) in text

    alone = ExplainState([_shard_manifest(1)], RoleBook.from_manifests([view]), [resource])
    [single] = asyncio.run(explain(Query(), alone, None)).paths
    assert single.shard is None
    assert "(shard" not in as_text(asyncio.run(explain(Query(), alone, None)))


def test_explain_and_report_read_the_cap_as_the_operator_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """ENTRA_RBAC_MAX_SHARDS from the environment, checked as the operator checks it: a bad value
    is one error naming the variable."""
    from typing import cast

    from entra_rbac.adapters.kube.reader import ClusterReader
    from entra_rbac.errors import SettingsError
    from entra_rbac.insight.sources import reading_policy

    class NoGuardrails:
        def guardrails(self) -> None:
            return None

    def max_shards_in_force() -> int:
        return reading_policy(cast(ClusterReader, NoGuardrails()))[0].sharding.max_shards

    monkeypatch.delenv("ENTRA_RBAC_MAX_SHARDS", raising=False)
    assert max_shards_in_force() == 16
    monkeypatch.setenv("ENTRA_RBAC_MAX_SHARDS", "40")
    assert max_shards_in_force() == 40
    monkeypatch.setenv("ENTRA_RBAC_MAX_SHARDS", "0")
    with pytest.raises(SettingsError, match=r"^ENTRA_RBAC_MAX_SHARDS: 0 must be from 1 \(never shard\)"):
        max_shards_in_force()


def _sharded_world() -> tuple[list[dict[str, Any]], dict[str, Any], Any]:
    """A user-mode resource over a group of 600 users written as 6 shards (12,000 B each at most),
    the resource with its status, and the directory it was read from."""
    from entra_rbac.adapters.directory.file import FileDirectory
    from entra_rbac.core.desired import Owner, compute_desired
    from entra_rbac.core.models import EntraGroupBindingSpec
    from entra_rbac.core.subjects import SubjectSet

    ids = [f"a0000000-0000-4000-8000-{n:012d}" for n in range(600)]
    names = [s.name for s in users(600)]
    directory = FileDirectory.parse(
        {
            "users": [{"id": i, "userPrincipalName": u} for i, u in zip(ids, names, strict=True)],
            "groups": [{"id": G1, "displayName": "Big", "members": ids}],
        }
    )
    desired = compute_desired(
        Owner("team", UID),
        EntraGroupBindingSpec.model_validate(spec()),
        SubjectSet(users(600), (G1,)),
        [],
        sharding=Sharding(12_000, 16),
    )
    status = {
        "groups": [{"ref": f"id={G1}", "id": G1, "displayName": "Big", "state": "Resolved"}],
        **written(len({shard_number(b.name) for b in desired.bindings})),
    }
    resource = {"metadata": {"name": "team", "uid": UID}, "spec": spec(), "status": status}
    return [b.to_manifest() for b in desired.bindings], resource, directory


def test_explain_and_report_answer_for_a_member_of_shard_3_of_6_and_for_the_whole_binding() -> None:
    """Who has what, and why, over shards: `explain` finds a member of shard 3 through that shard
    alone, managed by the resource, from its Entra group; asked about anyone, every shard and every
    member once; `report` lists every member once, each at its shard, all of the one resource."""
    import asyncio
    import io
    import json
    from datetime import UTC, datetime
    from typing import cast

    from entra_rbac.adapters.kube.reader import ClusterReader
    from entra_rbac.core.rbac import RoleBook
    from entra_rbac.insight.explain import ExplainState, Query, as_json, explain
    from entra_rbac.insight.report import write_report

    bindings, resource, directory = _sharded_world()
    by_name = {b["metadata"]["name"]: b for b in bindings}
    assert sorted(by_name) == sorted(shard_name(BASE, k) for k in range(1, 7))
    third = by_name[shard_name(BASE, 3)]
    member = third["subjects"][0]["name"]
    view = {
        "metadata": {"name": "view"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }
    state = ExplainState(bindings, RoleBook.from_manifests([view]), [resource])

    query = Query(user=member, verb="list", resource="pods", namespace="payments")
    answer = json.loads(as_json(asyncio.run(explain(query, state, directory))))
    assert answer["allowed"] is True
    [path] = answer["paths"]
    assert (path["name"], path["managedBy"], path["claimsManaged"]) == (shard_name(BASE, 3), "team", False)
    assert path["entraGroups"] == [{"id": G1, "displayName": "Big", "via": []}]
    assert path["subjects"] == [third["subjects"][0]]

    everyone = asyncio.run(explain(Query(), state, None))
    assert sorted(v.path.key.name for v in everyone.paths) == sorted(by_name)
    assert {v.managed_by for v in everyone.paths} == {"team"}
    held = [s["name"] for v in everyone.paths for s in v.path.subjects]
    assert sorted(held) == [s.name for s in users(600)]

    class Reader:
        def resources(self) -> list[dict[str, Any]]:
            return [resource]

        def cluster_role_bindings(self) -> Any:
            yield bindings

        def role_bindings(self) -> Any:
            yield []

        def namespaces(self) -> list[dict[str, Any]]:
            return []

    out = io.StringIO()
    counts = write_report(cast(ClusterReader, Reader()), "json", out, datetime(2026, 12, 1, tzinfo=UTC))
    rows = json.loads(out.getvalue())["rows"]
    assert (counts["managedBindings"], counts["managedRows"], counts["unmanagedBindings"]) == (6, 600, 0)
    assert sorted(r["subject"] for r in rows) == [s.name for s in users(600)]
    assert {(r["resource"], r["role"], r["viaGroups"]) for r in rows} == {
        ("team", "ClusterRole/view", f"Big ({G1})")
    }
    shard_of = {
        s["name"]: f"ClusterRoleBinding {b['metadata']['name']}" for b in bindings for s in b["subjects"]
    }
    assert all(r["binding"] == shard_of[r["subject"]] for r in rows)
    assert shard_of[member] == f"ClusterRoleBinding {shard_name(BASE, 3)}"


async def test_a_real_shrink_after_a_restart_is_weighed_by_the_guard_in_full() -> None:
    """The operator wrote the group as several shards, restarted (its memory lost), and Entra now
    answers five members of 300: every shard it wrote is its own (status says how many it
    wrote), so the hold weighs all 300 subjects, not the few the one binding still needed holds."""
    world = World(policy=Policy(sharding=Sharding(8_192, 16)))
    world.directory.add_group(G1, *member_names(300))
    world.apply(spec())
    assert (await world.reconcile()).reason == "Reconciled"
    written = held(world)
    assert len(written) > 2
    assert world.kube.resources["team"]["status"]["summary"]["shards"] == len(written)
    world.ctx = world.new_context()
    world.directory.add_group(G1, *member_names(5))
    world.directory.invalidate()
    world.clock.advance(300)
    assert (await world.reconcile(fresh=True)).reason == "RevocationHeld"
    assert held(world) == written
    status = world.kube.resources["team"]["status"]
    assert (status["revocationHold"]["removed"], status["revocationHold"]["current"]) == (295, 300)
    assert (status["summary"]["bindings"], status["summary"]["subjects"]) == (len(written), 300)


async def test_a_shard_left_above_the_count_goes_only_once_its_members_are_granted_elsewhere() -> None:
    """A status from before `summary.shards` (an upgrade) and a restart: the operator's 4 shards of
    210 members count as written as one binding, so at 204 members the split asks for 3 and shard 4
    is a stray. Its members move into shards 1 to 3 by patches; while one of those fails, shard 4
    is not deleted (make-before-break, as for the plan's own deletes), and goes on the retry."""
    from entra_rbac.adapters.kube import errors

    world = World(policy=Policy(sharding=Sharding(8_192, 16), revocation_guard_min=10_000))
    world.directory.add_group(G1, *member_names(210))
    world.apply(spec())
    assert (await world.reconcile()).reason == "Reconciled"
    assert len(held(world)) == 4
    del world.kube.resources["team"]["status"]["summary"]["shards"]
    world.ctx = world.new_context()
    world.directory.add_group(G1, *member_names(204))
    world.directory.invalidate()
    world.clock.advance(300)
    fourth = BindingKey.of("ClusterRoleBinding", None, shard_name(BASE, 4))
    world.kube.fail_next(
        "patch",
        BindingKey.of("ClusterRoleBinding", None, BASE),
        errors.UnavailableError("503", status=503, reason="ServiceUnavailable"),
    )
    outcome = await world.reconcile(fresh=True)
    assert outcome.requeue_after is not None
    assert fourth in world.kube.bindings
    assert (await world.reconcile()).reason == "Reconciled"
    assert fourth not in world.kube.bindings
    assert sorted(n for names in held(world).values() for n in names) == sorted(
        f"{m}@contoso.com" for m in member_names(204)
    )
