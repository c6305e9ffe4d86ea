"""Conflicts heal by themselves (issue 13, point 5): the names foreign objects hold are read every
second, and the resource is reconciled as soon as the object there goes or changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from entra_rbac.core.naming import BindingKey
from entra_rbac.reconciler import Outcome, Policy
from entra_rbac.reconciler.memory import ResourceMemory
from entra_rbac.triggers.conflicts import ConflictWatcher

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
def reconciled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    async def fake(name: str, uid: str, ctx: Any, *, deletion: bool = False, fresh: bool = False) -> Outcome:
        calls.append(name)
        return Outcome("Reconciled")

    monkeypatch.setattr("entra_rbac.reconciler.reconcile", fake)
    return calls


def _watcher(kube: FakeKube) -> tuple[ConflictWatcher, ResourceMemory]:
    memory = ResourceMemory()
    memory.of("u-pay").foreign_names = frozenset({TAKEN})
    memory.of("u-o")  # no conflict
    ctx = type("Ctx", (), {"memory": memory, "policy": Policy()})()
    return ConflictWatcher(kube, ctx), memory  # type: ignore[arg-type]


async def test_an_unchanged_foreign_object_costs_one_get_and_no_reconcile(reconciled: list[str]) -> None:
    kube = FakeKube()
    kube.put("foreign", "1")
    watcher, _ = _watcher(kube)
    for _ in range(3):
        assert await watcher.check() == []
    assert (kube.reads, reconciled) == (3, [])


@pytest.mark.parametrize("change", ["deleted", "relabelled", "replaced"])
async def test_the_resource_is_reconciled_once_the_object_at_its_name_goes_or_changes(
    reconciled: list[str], change: str
) -> None:
    kube = FakeKube()
    kube.put("foreign", "1")
    watcher, _ = _watcher(kube)
    assert await watcher.check() == []
    if change == "deleted":
        del kube.objects[TAKEN]
    else:
        kube.put("foreign" if change == "relabelled" else "new-object", "2")
    assert await watcher.check() == ["payments"]
    assert reconciled == ["payments"]
    assert await watcher.check() == []  # once per change, not every second


async def test_a_name_already_free_at_the_first_look_is_reconciled(reconciled: list[str]) -> None:
    watcher, _ = _watcher(FakeKube())
    assert await watcher.check() == ["payments"]
    assert await watcher.check() == []


async def test_without_conflicts_nothing_is_read(reconciled: list[str]) -> None:
    kube = FakeKube()
    watcher, memory = _watcher(kube)
    memory.of("u-pay").foreign_names = frozenset()
    assert await watcher.check() == []
    assert kube.reads == 0
