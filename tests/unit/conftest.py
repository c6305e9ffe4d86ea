"""Fixtures the unit tests of the operator's periodic tasks share (triggers/periodic.py and its
users, triggers/conflicts.py and triggers/delta.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from entra_rbac.reconciler import Outcome, Policy
from entra_rbac.reconciler.memory import ResourceMemory


@dataclass
class TaskContext:
    """What a periodic task reads of the reconcile context: the resources' memory and the policy."""

    memory: ResourceMemory
    policy: Policy


@dataclass
class FakeGate:
    """A `PeeringGate` with a fixed answer."""

    answer: bool

    async def paused(self) -> bool:
        return self.answer


@pytest.fixture
def reconciled_names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the resources reconciled, in order; the reconcile itself is not run."""
    calls: list[str] = []

    async def fake(
        name: str, uid: str, ctx: Any, *, deletion: bool = False, fresh: bool = False, **_: Any
    ) -> Outcome:
        calls.append(name)
        return Outcome("Reconciled")

    monkeypatch.setattr("entra_rbac.reconciler.reconcile", fake)
    return calls


@pytest.fixture
def task_context() -> TaskContext:
    """A fresh context whose memory the test fills in."""
    return TaskContext(ResourceMemory(), Policy())
