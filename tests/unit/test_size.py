"""Bindings too large to write (docs/design.md, Subjects the operator emits): the pure size check,
and the reconciler setting the whole plan aside, keeping what exists, with `BindingTooLarge`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from entra_rbac.adapters.kube import errors
from entra_rbac.constants import MAX_BINDING_BYTES
from entra_rbac.core.desired import RoleRef
from entra_rbac.core.naming import BindingKey
from entra_rbac.core.plan import Action, Plan, Verb
from entra_rbac.core.problems import PRECEDENCE, STALLING, Reason
from entra_rbac.core.shards import Sharding
from entra_rbac.core.size import oversized
from entra_rbac.reconciler.context import Policy
from tests.unit.reconcile_fakes import World, guid, member_names, user_mode_spec

G1 = guid(1)
VIEW = BindingKey.of("ClusterRoleBinding", None, "egb:team:clusterrole:view")
ROLE = RoleRef("ClusterRole", "view")


def subjects(count: int) -> list[dict[str, str]]:
    return [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"user{n:06d}@contoso.example"}
        for n in range(count)
    ]


def manifest(namespace: str, listed: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "egb:team:clusterrole:view", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": listed,
    }


def create(namespace: str, listed: list[dict[str, str]]) -> Action:
    body = manifest(namespace, listed)
    return Action(Verb.CREATE, "RoleBinding", namespace, "egb:team:clusterrole:view", ROLE, manifest=body)


def compact(body: Any) -> int:
    return len(json.dumps(body, separators=(",", ":")).encode())


def test_the_size_counted_is_the_compact_json_of_the_whole_manifest() -> None:
    action = create("payments", subjects(3))
    size = compact(action.manifest)
    assert oversized(Plan((action,)), size) is None
    problem = oversized(Plan((action,)), size - 1)
    assert problem is not None
    assert f"{size:,} bytes" in problem.message


def test_a_binding_over_the_limit_is_named_with_its_subjects_size_and_what_to_do() -> None:
    listed = subjects(12_000)
    plan = Plan(tuple(create(ns, listed) for ns in ("billing", "payments", "audit")))
    problem = oversized(plan, MAX_BINDING_BYTES)
    assert problem is not None
    assert (problem.reason, problem.field, problem.stalls) == (
        Reason.BINDING_TOO_LARGE,
        "spec.subjects",
        True,
    )
    # The largest is named: the three share one subject list, the longest namespace makes the difference.
    assert problem.message.startswith(
        "RoleBinding payments/egb:team:clusterrole:view would hold 12,000 subjects"
    )
    assert f"{compact(plan.actions[1].manifest):,} bytes of JSON" in problem.message
    assert "(and 2 more bindings of this resource)" in problem.message
    assert "Nothing was written" in problem.message
    assert "spec.subjects.kind: Group" in problem.message


def test_at_the_limit_about_ten_thousand_user_subjects_fit() -> None:
    assert oversized(Plan((create("payments", subjects(10_000)),)), MAX_BINDING_BYTES) is None


@pytest.mark.parametrize(
    ("patch", "too_large"),
    [({"subjects": subjects(12_000)}, True), ({"metadata": {"labels": {"a": "b" * 2_000_000}}}, False)],
    ids=["subjects-patched", "no-subjects-in-the-patch"],
)
def test_a_patch_counts_only_when_it_writes_the_subjects(patch: dict[str, Any], too_large: bool) -> None:
    action = Action(Verb.PATCH, "ClusterRoleBinding", None, VIEW.name, ROLE, patch=patch, uid="u")
    assert (oversized(Plan((action,)), MAX_BINDING_BYTES) is not None) is too_large


def test_a_delete_is_never_too_large() -> None:
    action = Action(Verb.DELETE, "ClusterRoleBinding", None, VIEW.name, ROLE, uid="u", resource_version="1")
    assert oversized(Plan((action,)), 1) is None


def test_binding_too_large_stalls_and_ranks_with_what_changed_nothing() -> None:
    assert Reason.BINDING_TOO_LARGE in STALLING
    rank = PRECEDENCE.index
    assert (
        rank(Reason.DELETION_UNCONFIRMED) < rank(Reason.BINDING_TOO_LARGE) < rank(Reason.DIRECTORY_FORBIDDEN)
    )


# --- the reconciler ----------------------------------------------------------------------------


def user_spec() -> dict[str, Any]:
    return user_mode_spec(G1)


def bound(count: int) -> list[str]:
    return [f"{name}@contoso.com" for name in member_names(count)]


def unsharded() -> World:
    """A world whose operator never shards (ENTRA_RBAC_MAX_SHARDS=1): what is over the limit stays over."""
    return World(policy=Policy(sharding=Sharding(MAX_BINDING_BYTES, 1)))


async def test_a_too_large_user_mode_binding_is_not_written_and_the_resource_stalls() -> None:
    world = unsharded()
    world.directory.add_group(G1, *member_names(15_000))
    world.apply(user_spec())
    outcome = await world.reconcile()
    assert outcome.reason == "BindingTooLarge"
    assert world.kube.writes == []
    ready, stalled = world.condition(), world.condition("Stalled")
    assert (ready["status"], ready["reason"]) == ("False", "BindingTooLarge")
    assert (stalled["status"], stalled["reason"]) == ("True", "BindingTooLarge")
    assert "ClusterRoleBinding egb:team:clusterrole:view would hold 15,000 subjects" in ready["message"]
    warnings = [e for e in world.kube.events if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["BindingTooLarge"]


async def test_a_group_that_grows_too_large_keeps_the_existing_binding_exactly() -> None:
    world = unsharded()
    world.directory.add_group(G1, *member_names(3))
    world.apply(user_spec())
    assert (await world.reconcile()).reason == "Reconciled"
    before, writes = world.kube.snapshot(), list(world.kube.writes)
    world.directory.add_group(G1, *member_names(15_000))
    world.directory.invalidate()
    world.clock.advance(300)
    outcome = await world.reconcile(fresh=True)
    assert outcome.reason == "BindingTooLarge"
    assert (world.kube.snapshot(), world.kube.writes) == (before, writes)
    assert world.subjects(VIEW) == bound(3)
    world.directory.add_group(G1, *member_names(4))  # back under the limit: written at once
    outcome = await world.reconcile(fresh=True)
    assert outcome.reason == "Reconciled"
    assert world.subjects(VIEW) == bound(4)


async def test_the_servers_own_refusal_as_too_large_is_binding_too_large_without_a_retry() -> None:
    world = World()
    world.kube.fail_next(
        Verb.CREATE,
        VIEW,
        errors.error_from_response(
            413,
            b'{"kind":"Status","message":"Request entity too large: limit is 3145728",'
            b'"reason":"RequestEntityTooLarge","code":413}',
            "create ClusterRoleBinding egb:team:clusterrole:view",
        ),
    )
    world.directory.add_group(G1, *member_names(3))
    world.apply(user_spec())
    outcome = await world.reconcile()
    assert outcome.reason == "BindingTooLarge"
    assert outcome.requeue_after is None
    assert "limit is 3145728" in world.condition()["message"]
