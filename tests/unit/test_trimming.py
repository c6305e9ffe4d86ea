"""Free memory is returned to the system once no reconcile is in flight (issue 17 point 6)."""

from __future__ import annotations

import asyncio

from entra_rbac.triggers.trimming import MemoryReturn, malloc_trim


async def turns(n: int = 3) -> None:
    """Let the loop run its ready callbacks (a `call_later(0, ...)` runs on the next turn)."""
    for _ in range(n):
        await asyncio.sleep(0)


class Recorder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


async def test_memory_is_returned_once_the_last_reconcile_ends() -> None:
    release = Recorder()
    memory = MemoryReturn(release, quiet=0)
    with memory.working():
        with memory.working():
            pass
        await turns()
        assert release.calls == 0  # one reconcile still in flight: the burst is not over
    await turns()
    assert release.calls == 1


async def test_a_reconcile_starting_within_the_quiet_time_postpones_the_return() -> None:
    release = Recorder()
    memory = MemoryReturn(release, quiet=0)
    with memory.working():
        pass
    with memory.working():  # before the loop's next turn: the armed return is cancelled
        await turns()
        assert release.calls == 0
    await turns()
    assert release.calls == 1


async def test_a_failing_reconcile_still_counts_as_ended() -> None:
    release = Recorder()
    memory = MemoryReturn(release, quiet=0)
    try:
        with memory.working():
            raise RuntimeError("the reconcile failed")
    except RuntimeError:
        pass
    await turns()
    assert release.calls == 1


async def test_without_malloc_trim_a_reconcile_still_runs() -> None:
    memory = MemoryReturn(None, quiet=0)  # musl or macOS: nothing to call
    with memory.working():
        pass
    await turns()


def test_glibc_malloc_trim_is_found_and_callable() -> None:
    release = malloc_trim()  # this machine and the image are glibc (Debian)
    assert release is not None
    release()


async def test_a_burst_of_reconciles_keeps_one_timer_moved_on_from_the_last_end() -> None:
    """Issue 17 point 5: 1,000 reconciles of a refresh end one by one; one timer serves them all,
    and when it fires before the quiet time since the last end has passed it waits again."""
    release = Recorder()
    memory = MemoryReturn(release, quiet=60)
    with memory.working():
        pass
    first = memory._timer
    assert first is not None
    for _ in range(100):
        with memory.working():
            pass
    assert memory._timer is first  # not scheduled and cancelled once per reconcile
    first.cancel()
    memory._return()  # as if it fired now: the last end was under `quiet` ago
    assert release.calls == 0
    assert memory._timer is not None
    assert memory._timer is not first
    memory._timer.cancel()
