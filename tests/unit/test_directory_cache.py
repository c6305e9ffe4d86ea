"""SingleFlightCache: one read per key in flight, answers reused for their lifetime only."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from entra_rbac.adapters.directory.cache import SingleFlightCache
from entra_rbac.errors import DirectoryUnavailableError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts calls; each call waits for `release` so tests can overlap callers."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None
        self.changed = asyncio.Condition()

    async def __call__(self, keys: list[str]) -> Mapping[str, str]:
        async with self.changed:
            self.calls.append(keys)
            self.changed.notify_all()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return {key: key.upper() for key in keys}


async def wait_for_calls(loader: Loader, count: int) -> None:
    async with asyncio.timeout(5), loader.changed:
        await loader.changed.wait_for(lambda: len(loader.calls) >= count)


async def test_concurrent_callers_of_one_key_share_one_read() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(60)
    loader = Loader()
    first = asyncio.create_task(cache.get_many(["a", "b"], loader))
    await wait_for_calls(loader, 1)
    second = asyncio.create_task(cache.get_many(["b", "c"], loader))
    await wait_for_calls(loader, 2)
    loader.release.set()
    assert (await first)[0] == {"a": "A", "b": "B"}
    assert (await second) == ({"b": "B", "c": "C"}, 1)
    assert loader.calls == [["a", "b"], ["c"]]


async def test_answer_is_reused_within_lifetime_and_reread_after() -> None:
    clock = Clock()
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, clock)
    loader = Loader()
    loader.release.set()
    await cache.get_many(["a"], loader)
    clock.now = 59.9
    assert await cache.get_many(["a"], loader) == ({"a": "A"}, 1)
    assert len(loader.calls) == 1
    clock.now = 60.0
    await cache.get_many(["a"], loader)
    assert len(loader.calls) == 2


async def test_failed_read_reaches_every_waiter_and_is_not_cached() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(60)
    loader = Loader()
    loader.fail = DirectoryUnavailableError("boom")
    first = asyncio.create_task(cache.get_many(["a"], loader))
    await wait_for_calls(loader, 1)
    second = asyncio.create_task(cache.get_many(["a"], loader))
    loader.release.set()
    for task in (first, second):
        with pytest.raises(DirectoryUnavailableError, match="boom"):
            await task
    loader.fail = None
    assert await cache.get_many(["a"], loader) == ({"a": "A"}, 0)


async def test_cancelled_waiter_does_not_cancel_the_shared_read() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(60)
    loader = Loader()
    owner = asyncio.create_task(cache.get_many(["a"], loader))
    await wait_for_calls(loader, 1)
    waiter = asyncio.create_task(cache.get_many(["a"], loader))
    await asyncio.sleep(0)
    waiter.cancel()
    loader.release.set()
    assert (await owner)[0] == {"a": "A"}
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_cancelled_owner_fails_its_waiters_instead_of_hanging_them() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(60)
    loader = Loader()
    owner = asyncio.create_task(cache.get_many(["a"], loader))
    await wait_for_calls(loader, 1)
    waiter = asyncio.create_task(cache.get_many(["a"], loader))
    await asyncio.sleep(0)
    owner.cancel()
    with pytest.raises(DirectoryUnavailableError, match="cancelled"):
        await waiter


async def test_loader_answer_missing_a_key_is_a_failure() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(60)

    async def partial(keys: list[str]) -> Mapping[str, str]:
        return {}

    with pytest.raises(DirectoryUnavailableError, match="no answer"):
        await cache.get_many(["a"], partial)
