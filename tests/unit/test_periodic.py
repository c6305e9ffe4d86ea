"""The periodic-task machinery (triggers/periodic.py) the conflict watcher and the delta follower
share: a failed round is logged and the next one still runs; stop ends the loop; the gate pauses."""

from __future__ import annotations

import asyncio
import logging

import pytest

from entra_rbac.triggers.periodic import PeriodicTask
from tests.unit.conftest import FakeGate, TaskContext


class Flaky(PeriodicTask):
    failure = "The flaky round failed"

    def __init__(self, ctx: TaskContext, gate: FakeGate | None = None) -> None:
        super().__init__(None, ctx, 0.01, gate)  # type: ignore[arg-type]
        self.rounds = 0
        self.third = asyncio.Event()

    async def run_once(self) -> list[str]:
        self.rounds += 1
        if self.rounds == 3:
            self.third.set()
        if self.rounds == 1:
            raise RuntimeError("boom")
        return []


async def test_a_failed_round_is_logged_and_the_next_one_runs(
    task_context: TaskContext, caplog: pytest.LogCaptureFixture
) -> None:
    task = Flaky(task_context)
    with caplog.at_level(logging.ERROR, logger="entra_rbac.triggers"):
        task.start()
        await asyncio.wait_for(task.third.wait(), timeout=30)
        await task.stop()
    assert [r.getMessage() for r in caplog.records] == ["The flaky round failed"]
    assert task._task is not None
    assert task._task.cancelled()  # the loop is over, not just waiting


async def test_stop_before_start_is_harmless(task_context: TaskContext) -> None:
    await Flaky(task_context).stop()


@pytest.mark.parametrize(
    ("gate", "paused"), [(None, False), (FakeGate(False), False), (FakeGate(True), True)]
)
async def test_paused_follows_the_gate_and_never_pauses_without_one(
    task_context: TaskContext, gate: FakeGate | None, paused: bool
) -> None:
    assert await Flaky(task_context, gate).paused() is paused


async def test_reconcile_uids_reconciles_only_the_listed_resources_still_there(
    task_context: TaskContext, reconciled_names: list[str]
) -> None:
    class Kube:
        async def list_resources(self) -> list[dict[str, object]]:
            return [{"metadata": {"name": n, "uid": f"u-{n}"}} for n in ("b", "a", "c")]

    task = Flaky(task_context)
    task.kube = Kube()  # type: ignore[assignment]
    names = await task.reconcile_uids({"u-a", "u-b", "u-gone"}, "Reconciled some", why="test")
    assert names == ["a", "b"]
    assert sorted(reconciled_names) == ["a", "b"]
