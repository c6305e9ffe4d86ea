"""An unchanged resource is cheap (reconciler/unchanged.py, issue 17 point 5), and still level-based.

A reconcile whose every input (the resource, its bindings, the namespaces and roles, the policy)
and Entra's answer equal the last clean conclusion's concludes the same without planning: no
cluster view read, no plan, no write. Any difference in any of them runs the whole reconcile,
which heals drift and follows Entra exactly as without the memo. The reconcile's planning is
observed through `read_cluster`, the first thing the whole reconcile does after parsing.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.entra import DirectoryGroup
from entra_rbac.core.guardrails import Guardrails
from entra_rbac.reconciler import Policy
from tests.unit.reconcile_fakes import World, guid

G1 = guid(1)
# The module, not the function `entra_rbac.reconciler.reconcile` the package exports under its name.
reconcile_module = importlib.import_module("entra_rbac.reconciler.reconcile")


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "groups": [{"id": G1}],
        "clusterRoleBindings": [{"clusterRole": "view"}],
        "roleBindings": [{"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"team": "a"}}}],
        **extra,
    }


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the resources whose reconcile planned (read the cluster view)."""
    seen: list[str] = []
    real = reconcile_module.read_cluster

    async def counting(owner: Any, spec: Any, ctx: Any) -> Any:
        seen.append(owner.name)
        return await real(owner, spec, ctx)

    monkeypatch.setattr(reconcile_module, "read_cluster", counting)
    return seen


async def settled(policy: Policy | None = None) -> World:
    """Reconciled twice: once writing, once confirming nothing is left to write."""
    world = World(policy=policy or Policy())
    world.kube.namespaces = [NamespaceInfo("payments", {"team": "a"})]
    world.directory.add_group(G1)
    world.apply(spec())
    for _ in range(2):
        assert (await world.reconcile()).reason == "Reconciled"
    return world


async def test_an_unchanged_resource_is_verified_in_entra_but_not_planned(planned: list[str]) -> None:
    world = await settled()
    planned.clear()
    writes, lookups, statuses = len(world.kube.writes), world.directory.lookups, world.kube.status_writes
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("Reconciled", None)
    assert planned == []
    assert world.directory.lookups == lookups + 1  # Entra is still read every time
    assert (len(world.kube.writes), world.kube.status_writes) == (writes, statuses)


def _drift(world: World) -> None:
    key = next(k for k in world.kube.bindings if k.kind == "ClusterRoleBinding")
    world.kube.bindings[key] = {**world.kube.bindings[key], "subjects": []}


def _namespace(world: World) -> None:
    world.kube.namespaces = [*world.kube.namespaces, NamespaceInfo("billing", {"team": "a"})]


def _relabel(world: World) -> None:
    world.kube.namespaces = [NamespaceInfo("payments", {"team": "b"})]  # no longer selected


def _rename(world: World) -> None:
    world.directory.groups[G1] = DirectoryGroup(G1, "Renamed")


def _spec(world: World) -> None:
    world.apply(spec(clusterRoleBindings=[{"clusterRole": "admin"}]))


def _annotation(world: World) -> None:
    world.annotate("entra-rbac.io/sync-requested", "now")


def _deleted_group(world: World) -> None:
    del world.directory.groups[G1]


def _guardrails(world: World) -> None:
    world.ctx.policy = dataclasses.replace(world.ctx.policy, guardrails=Guardrails(source="changed"))


CHANGES: list[tuple[Callable[[World], None], str]] = [
    (_drift, "a binding edited by someone else"),
    (_namespace, "a namespace the selector matches"),
    (_relabel, "a selected namespace relabelled"),
    (_rename, "the group renamed in Entra"),
    (_deleted_group, "the group gone from Entra"),
    (_spec, "the spec changed"),
    (_annotation, "an annotation"),
    (_guardrails, "the guardrails in force"),
]


@pytest.mark.parametrize(("change", "what"), CHANGES, ids=[w for _, w in CHANGES])
async def test_any_changed_input_runs_the_whole_reconcile(
    planned: list[str], change: Callable[[World], None], what: str
) -> None:
    world = await settled()
    planned.clear()
    change(world)
    await world.reconcile()
    assert planned == ["team"], what


async def test_drift_is_healed_and_a_new_namespace_bound_after_a_replay() -> None:
    world = await settled()
    await world.reconcile()  # replayed
    _drift(world)
    _namespace(world)
    assert (await world.reconcile()).reason == "Reconciled"
    crb = next(b for k, b in world.kube.bindings.items() if k.kind == "ClusterRoleBinding")
    assert [s["name"] for s in crb["subjects"]] == [G1]
    assert sorted(k.namespace for k in world.kube.bindings if k.kind == "RoleBinding") == [
        "billing",
        "payments",
    ]


async def test_a_group_deleted_in_entra_is_seen_after_a_replay() -> None:
    world = await settled()
    await world.reconcile()  # replayed
    _deleted_group(world)
    outcome = await world.reconcile()
    assert outcome.reason == "DeletionUnconfirmed"  # the whole reconcile, with its confirmation


async def test_a_fresh_reconcile_and_max_staleness_never_replay(planned: list[str]) -> None:
    world = await settled()
    planned.clear()
    await world.reconcile(fresh=True)
    assert planned == ["team"]
    world = await settled(Policy(max_staleness=3600))
    planned.clear()
    await world.reconcile()
    assert planned == ["team"]  # the clock is an input then


async def test_a_resource_with_a_problem_is_never_replayed(planned: list[str]) -> None:
    world = World()
    world.directory.add_group(G1)
    world.apply({"groups": [{"id": G1}], "clusterRoleBindings": [{"clusterRole": "missing"}]})
    for _ in range(3):
        assert (await world.reconcile()).reason == "RoleNotFound"
    assert planned == ["team", "team", "team"]  # its Warning series counts on the clock


async def test_a_relabelled_namespace_loses_its_binding_after_a_replay() -> None:
    world = await settled()
    await world.reconcile()  # replayed
    _relabel(world)
    assert (await world.reconcile()).reason == "Reconciled"
    assert [k.namespace for k in world.kube.bindings if k.kind == "RoleBinding"] == []


async def test_a_time_bound_grant_is_never_replayed_and_ends_on_time(planned: list[str]) -> None:
    """A conclusion with a grant end still to come depends on the clock: it is not remembered,
    so the reconcile at the end plans, and the binding goes."""
    world = World()
    world.kube.namespaces = [NamespaceInfo("payments", {"team": "a"})]
    world.directory.add_group(G1)
    until = (world.clock.now + timedelta(hours=1)).isoformat()
    world.apply(spec(validUntil=until))
    for _ in range(2):
        assert (await world.reconcile()).next_change is not None
    planned.clear()
    world.clock.advance(3601)
    assert (await world.reconcile()).reason == "Expired"
    assert planned == ["team"]
    assert world.kube.bindings == {}
