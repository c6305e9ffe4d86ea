"""SingleFlightCache, Busy: a read in a burst of arrivals keeps waiting for company past
`arrival_max_window` while answered arrivals are still being reconciled (issue 17 point 4), and
the directory's id reads are set up that way, its name reads not.

Each test drives arrivals 20 ms apart (well inside the 0.3 s arrival window) and decides by
conditions (calls made, loop iterations bounded), never by a timed assertion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from entra_rbac.adapters.directory import EntraDirectory, directory
from entra_rbac.adapters.directory.cache import SingleFlightCache
from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.errors import DirectoryUnavailableError
from entra_rbac.metrics import OperatorMetrics
from entra_rbac.reconciler.context import Clients, build_context
from entra_rbac.settings import Settings
from tests.unit.test_directory_cache import Loader
from tests.unit.test_freshness import BASE

GAP = 0.02  # seconds between two arrivals of the burst


def _cache(loader: Loader, **batching: Any) -> SingleFlightCache[str, str]:
    settings: dict[str, Any] = {
        "window": 0.01, "max_window": 0.2, "batch_limit": 1000, "arrival_window": 0.3,
        "arrival_max_window": 0.2, "arrival_company": 1000, "arrival_busy": 3,
    }  # fmt: skip
    settings.update(batching)
    return SingleFlightCache(60, loader, **settings)


async def _reconciles_running(cache: SingleFlightCache[str, str], loader: Loader, count: int) -> list[str]:
    """`count` resources arrived and read their groups (alone: nothing else was arriving);
    their reconciles are still writing (`unexpect` not called yet)."""
    keys = [f"a{i}" for i in range(count)]
    cache.expect(keys, arriving=True)
    await asyncio.wait_for(cache.get_many(keys), timeout=10)
    assert loader.calls == [keys]
    return keys


async def _arrive(cache: SingleFlightCache[str, str], start: int, count: int, gap: float = GAP) -> None:
    for i in range(start, start + count):
        cache.expect([f"k{i}"], arriving=True)
        await asyncio.sleep(gap)


async def _arrive_until_read(
    cache: SingleFlightCache[str, str], loader: Loader, start: int, calls: int
) -> int:
    """Arrivals go on until the loader has been called `calls` times; how many arrived."""
    arrived = 0
    while len(loader.calls) < calls:
        cache.expect([f"k{start + arrived}"], arriving=True)
        arrived += 1
        await asyncio.sleep(GAP)
        assert arrived < 1_000, "the read waited for arrivals without bound"
    return arrived


async def test_a_read_waits_past_the_arrival_max_window_while_answered_arrivals_are_reconciled() -> None:
    """Three reconciles still writing: the next read, opened in a burst, waits for arrivals well
    past arrival_max_window (0.2 s); once those reconciles are done it goes within the arrival
    window, carrying every id that arrived meanwhile (one read, not one per 0.2 s)."""
    loader = Loader(released=True)
    cache = _cache(loader, arrival_busy_window=30)
    running = await _reconciles_running(cache, loader, 3)
    cache.expect(["k0"], arriving=True)
    asked = asyncio.create_task(cache.get_many(["k0"]))
    await _arrive(cache, 1, 50)  # about 1 s: five arrival_max_windows
    assert len(loader.calls) == 1
    assert not asked.done()
    cache.unexpect(running)  # their reconciles ran: nothing else to do meanwhile
    await _arrive_until_read(cache, loader, 51, 2)
    assert (await asyncio.wait_for(asked, timeout=10))[0] == {"k0": "K0"}
    assert loader.calls[1][0] == "k0"
    assert {f"k{i}" for i in range(51)} <= set(loader.calls[1])


async def test_the_busy_wait_is_bounded_by_the_arrival_busy_window() -> None:
    loader = Loader(released=True)
    cache = _cache(loader, arrival_busy_window=0.5)
    await _reconciles_running(cache, loader, 3)  # and never done
    cache.expect(["k0"], arriving=True)
    asked = asyncio.create_task(cache.get_many(["k0"]))
    arrived = await _arrive_until_read(cache, loader, 1, 2)
    assert (await asyncio.wait_for(asked, timeout=10))[0] == {"k0": "K0"}
    assert arrived < 200  # 4 s at most: the read went near 0.5 s, not at the burst's end


async def test_fewer_answered_than_arrival_busy_or_failed_reads_are_not_busy() -> None:
    """Two reconciles running (arrival_busy is 3), or three whose read failed (nothing decided
    from it, nothing for the writers): the read goes at arrival_max_window, as without Busy."""
    for count, fail in ((2, False), (3, True)):
        loader = Loader(released=True)
        cache = _cache(loader, arrival_busy_window=30)
        keys = [f"a{i}" for i in range(count)]
        cache.expect(keys, arriving=True)
        loader.fail = DirectoryUnavailableError("503") if fail else None
        read = asyncio.wait_for(cache.get_many(keys), timeout=10)
        outcome = await asyncio.gather(read, return_exceptions=True)
        assert isinstance(outcome[0], DirectoryUnavailableError) == fail
        loader.fail = None
        cache.expect(["k0"], arriving=True)
        asked = asyncio.create_task(cache.get_many(["k0"]))
        assert await _arrive_until_read(cache, loader, 1, 2) < 200
        await asyncio.wait_for(asked, timeout=10)


async def test_a_lone_arrival_is_read_after_the_short_window_while_the_operator_is_busy() -> None:
    """Reconciles still writing, and one resource created on its own (no burst): it is not kept
    waiting; with a 30 s busy window, waiting would time the test out."""
    loader = Loader(released=True)
    cache = _cache(loader, arrival_busy_window=30, arrival_window=0.05)
    await _reconciles_running(cache, loader, 3)
    await asyncio.sleep(0.1)  # past the arrival window: the next arrival is on its own
    cache.expect(["b"], arriving=True)
    await asyncio.wait_for(cache.get_many(["b"]), timeout=5)
    assert loader.calls[1] == ["b"]


@pytest.mark.parametrize("batching", ["id_batching", "name_batching"])
async def test_the_directorys_reads_wait_while_busy_for_more_company(batching: str) -> None:
    """The directory's settings, for ids and names alike: ARRIVAL_BUSY reconciles still writing
    keep a burst's read waiting past ARRIVAL_MAX_WINDOW (1 s) until they are done, while it has
    less than a full request's worth (fewer than a $batch's 20 names arrive in 1.5 s here), and
    it then carries everything that arrived meanwhile. Names once went at the 1 s cap, with 5-17
    names per $batch under load."""
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, **getattr(directory, batching)())
    running = await _reconciles_running(cache, loader, directory.ARRIVAL_BUSY)
    cache.expect(["k0"], arriving=True)
    asked = asyncio.create_task(cache.get_many(["k0"]))
    slow = directory.ARRIVAL_WINDOW / 3  # still a burst, but 20 names take 2 s to come
    await _arrive(cache, 1, int(1.5 * directory.ARRIVAL_MAX_WINDOW / slow), gap=slow)
    assert len(loader.calls) == 1
    assert not asked.done()
    cache.unexpect(running)
    await _arrive_until_read(cache, loader, 100, 2)
    await asyncio.wait_for(asked, timeout=10)
    assert {f"k{i}" for i in range(int(1.5 * directory.ARRIVAL_MAX_WINDOW / slow))} <= set(loader.calls[1])


async def test_the_first_read_of_a_burst_waits_while_the_operator_says_it_is_busy() -> None:
    """No answered arrivals yet (the burst's first id read), but every writer's turn is taken
    (`busy_while`): the read waits past arrival_max_window while that holds and goes within the
    arrival window once it stops, carrying the ids that arrived meanwhile; without the signal it
    goes at arrival_max_window."""
    writers = asyncio.Semaphore(1)
    loader = Loader(released=True)
    cache = _cache(loader, arrival_busy_window=30)
    cache.busy_while(writers.locked)
    await writers.acquire()
    cache.expect(["k0"], arriving=True)
    asked = asyncio.create_task(cache.get_many(["k0"]))
    await _arrive(cache, 1, 50)  # about 1 s: five arrival_max_windows
    assert loader.calls == []
    writers.release()
    await _arrive_until_read(cache, loader, 51, 1)
    assert (await asyncio.wait_for(asked, timeout=10))[0] == {"k0": "K0"}
    assert {f"k{i}" for i in range(51)} <= set(loader.calls[0])

    loader = Loader(released=True)
    cache = _cache(loader, arrival_busy_window=30)
    cache.busy_while(lambda: False)
    cache.expect(["k0"], arriving=True)
    asked = asyncio.create_task(cache.get_many(["k0"]))
    assert await _arrive_until_read(cache, loader, 1, 1) < 30  # 0.6 s: about the 0.2 s cap
    await asyncio.wait_for(asked, timeout=10)


def test_the_reconcile_context_holds_reads_while_every_writer_is_busy() -> None:
    """build_context wires the directory's id and name reads to its writers' turns."""
    held: list[Callable[[], bool]] = []

    class Directory:
        def hold_reads_while(self, busy: Callable[[], bool]) -> None:
            held.append(busy)

    clients = Clients(kube=cast(KubeAdapter, None), directory=cast(EntraDirectory, Directory()))
    made = build_context(Settings(**BASE), clients, OperatorMetrics())
    assert held == [made.writers.locked]
