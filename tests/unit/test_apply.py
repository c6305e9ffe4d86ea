"""The apply phase's turns (reconciler.apply): a few reconciles write at once, each its whole plan.

Against the in-memory `FakeCluster`, slowed so every write yields to the event loop as a real
API call does: without turns, concurrent reconciles' writes interleave and every resource's last
write comes at the end of the burst; with them, each plan's writes go out back to back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from entra_rbac.core.desired import Owner, RoleRef
from entra_rbac.core.naming import BindingKey
from entra_rbac.core.plan import Action, Plan, Verb
from entra_rbac.reconciler.apply import apply_plan
from tests.unit.reconcile_fakes import FakeCluster

EDIT = RoleRef("ClusterRole", "edit")
NAMESPACES = [f"ns-{i}" for i in range(5)]


class YieldingCluster(FakeCluster):
    """A write takes a turn of the event loop, as an HTTP call does."""

    async def create_binding(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return await super().create_binding(manifest)


def creates(owner: str) -> Plan:
    name = f"egb:{owner}:clusterrole:edit"
    return Plan(
        tuple(
            Action(
                Verb.CREATE,
                "RoleBinding",
                namespace,
                name,
                EDIT,
                manifest={
                    "kind": "RoleBinding",
                    "metadata": {"name": name, "namespace": namespace},
                    "roleRef": EDIT.to_manifest(),
                },
            )
            for namespace in NAMESPACES
        )
    )


async def apply_together(turns: asyncio.Semaphore | None) -> list[str]:
    """Three resources' plans applied at once; the owners of the writes, in the order made."""
    kube = YieldingCluster()
    owners = ["a", "b", "c"]
    await asyncio.gather(
        *(apply_plan(kube, Owner(name=o, uid=f"uid-{o}"), creates(o), (), turns=turns) for o in owners)
    )
    assert len(kube.writes) == len(owners) * len(NAMESPACES)
    return [key.name.split(":")[1] for _, key, _ in kube.writes]


async def test_with_one_turn_each_plan_is_written_whole_before_the_next() -> None:
    order = await apply_together(asyncio.Semaphore(1))
    assert order == ["a"] * 5 + ["b"] * 5 + ["c"] * 5


async def test_without_turns_the_plans_interleave() -> None:
    # What the turns prevent: every resource's last write lands at the end of the burst.
    order = await apply_together(None)
    assert order[:3] == ["a", "b", "c"]
    assert {order[-1], order[-2], order[-3]} == {"a", "b", "c"}


async def test_an_empty_plan_never_waits_for_a_turn() -> None:
    turns = asyncio.Semaphore(1)
    kube = YieldingCluster()
    async with turns:  # every turn is taken by someone else's writes
        result = await asyncio.wait_for(
            apply_plan(kube, Owner(name="idle", uid="uid-idle"), Plan(()), (), turns=turns), timeout=5
        )
    assert result.done == []
    assert kube.writes == []


async def test_a_plan_waits_while_the_turns_are_taken_and_then_writes() -> None:
    turns = asyncio.Semaphore(1)
    kube = YieldingCluster()
    await turns.acquire()
    task = asyncio.create_task(apply_plan(kube, Owner(name="a", uid="uid-a"), creates("a"), (), turns=turns))
    for _ in range(20):
        await asyncio.sleep(0)
    assert kube.writes == []  # still waiting for its turn
    turns.release()
    result = await asyncio.wait_for(task, timeout=5)
    assert [a.key for a in result.done] == [
        BindingKey.of("RoleBinding", ns, "egb:a:clusterrole:edit") for ns in NAMESPACES
    ]
