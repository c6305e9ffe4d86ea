"""A keyed cache with a lifetime whose misses are filled in bulk and single-flight.

Holds `SingleFlightCache`. Concurrent callers asking for the same key while a read is running
wait for that read instead of starting their own; a failed read is shared by its waiters and
never cached. It knows nothing of Graph; the loader it is given does the reading.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

from entra_rbac.errors import DirectoryUnavailableError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Loader = Callable[[list[K]], Awaitable[Mapping[K, V]]]


class SingleFlightCache(Generic[K, V]):
    """Values by key for `lifetime` seconds; `get_many` reads only what is neither fresh nor in flight."""

    def __init__(self, lifetime: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._lifetime = lifetime
        self._clock = clock
        self._values: dict[K, tuple[float, V]] = {}
        self._in_flight: dict[K, asyncio.Future[V]] = {}

    def clear(self) -> None:
        """Forget every value (reads in flight still complete for their waiters)."""
        self._values.clear()

    def fresh(self, key: K) -> tuple[bool, V | None]:
        entry = self._values.get(key)
        if entry is None or self._clock() >= entry[0]:
            return False, None
        return True, entry[1]

    async def get_many(self, keys: Sequence[K], loader: Loader[K, V]) -> tuple[dict[K, V], int]:
        """The value of every key, and how many keys were answered without a new read.

        `loader` receives the keys this call must read and returns a value for each; if it
        raises, every waiter on those keys gets the same error.
        """
        found: dict[K, V] = {}
        waiting: dict[K, asyncio.Future[V]] = {}
        mine: dict[K, asyncio.Future[V]] = {}
        for key in dict.fromkeys(keys):
            hit, value = self.fresh(key)
            if hit:
                found[key] = value  # type: ignore[assignment]
            elif key in self._in_flight:
                waiting[key] = self._in_flight[key]
            else:
                mine[key] = self._in_flight[key] = asyncio.get_running_loop().create_future()
        served = len(found) + len(waiting)
        if mine:
            found.update(await self._load(mine, loader))
        for key, future in waiting.items():
            # shield: a waiter being cancelled must not cancel the read others share.
            found[key] = await asyncio.shield(future)
        return found, served

    async def _load(self, mine: dict[K, asyncio.Future[V]], loader: Loader[K, V]) -> dict[K, V]:
        try:
            loaded = await loader(list(mine))
            missing = [key for key in mine if key not in loaded]
            if missing:
                raise DirectoryUnavailableError(f"directory read returned no answer for {missing!r}")
        except BaseException as exc:
            shared = (
                exc if isinstance(exc, Exception) else DirectoryUnavailableError("directory read cancelled")
            )
            for key, future in mine.items():
                self._in_flight.pop(key, None)
                if not future.done():
                    future.set_exception(shared)
                    future.exception()  # mark retrieved: waiters may be gone, that is fine
            raise
        expires = self._clock() + self._lifetime
        result: dict[K, V] = {}
        for key, future in mine.items():
            value = loaded[key]
            if self._lifetime > 0:
                self._values[key] = (expires, value)
            self._in_flight.pop(key, None)
            if not future.done():
                future.set_result(value)
            result[key] = value
        return result
