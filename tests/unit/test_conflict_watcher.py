"""Conflicts heal by themselves (issue 13, point 5): the names foreign objects hold are read every
second, and the resource is reconciled as soon as the object there goes or changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from entra_rbac.core.naming import BindingKey
from entra_rbac.triggers.conflicts import ConflictWatcher
from tests.unit.conftest import TaskContext

TAKEN = BindingKey.of("RoleBinding", "payments", "egb:payments:clusterrole:edit")


@dataclass
class FakeKube:
    objects: dict[BindingKey, dict[str, Any]] = field(default_factory=dict)
    reads: int = 0

    async def get_binding(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.reads += 1
        return self.objects.get(BindingKey.of(kind, namespace, name))  # type: ignore[arg-type]

    async def list_resources(self) -> list[dict[str, Any]]:
        return [
            {"metadata": {"name": "payments", "uid": "u-pay"}},
            {"metadata": {"name": "other", "uid": "u-o"}},
        ]

    def put(self, uid: str, version: str) -> None:
        self.objects[TAKEN] = {"metadata": {"uid": uid, "resourceVersion": version, "name": TAKEN.name}}


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def watcher(kube: FakeKube, task_context: TaskContext) -> ConflictWatcher:
    task_context.memory.of("u-pay").foreign_names = frozenset({TAKEN})
    task_context.memory.of("u-o")  # no conflict
    return ConflictWatcher(kube, task_context)  # type: ignore[arg-type]


async def test_an_unchanged_foreign_object_costs_one_get_and_no_reconcile(
    reconciled_names: list[str], kube: FakeKube, watcher: ConflictWatcher
) -> None:
    kube.put("foreign", "1")
    for _ in range(3):
        assert await watcher.check() == []
    assert (kube.reads, reconciled_names) == (3, [])


@pytest.mark.parametrize("change", ["deleted", "relabelled", "replaced"])
async def test_the_resource_is_reconciled_once_the_object_at_its_name_goes_or_changes(
    reconciled_names: list[str], kube: FakeKube, watcher: ConflictWatcher, change: str
) -> None:
    kube.put("foreign", "1")
    assert await watcher.check() == []
    if change == "deleted":
        del kube.objects[TAKEN]
    else:
        kube.put("foreign" if change == "relabelled" else "new-object", "2")
    assert await watcher.check() == ["payments"]
    assert reconciled_names == ["payments"]
    assert await watcher.check() == []  # once per change, not every second


async def test_a_name_already_free_at_the_first_look_is_reconciled(
    reconciled_names: list[str], kube: FakeKube, watcher: ConflictWatcher
) -> None:
    assert await watcher.check() == ["payments"]
    assert await watcher.check() == []


async def test_without_conflicts_nothing_is_read(
    reconciled_names: list[str], kube: FakeKube, watcher: ConflictWatcher, task_context: TaskContext
) -> None:
    task_context.memory.of("u-pay").foreign_names = frozenset()
    assert await watcher.check() == []
    assert kube.reads == 0
