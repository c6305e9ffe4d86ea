"""A keyed cache with a time to live (TTL) whose misses are read together, once, by a background flush.

Holds `SingleFlightCache`. Keys missed by concurrent callers within a short window go to the
loader in one call (so 50 reconciles starting together cost one `getByIds`, not 50), and a key
already being read is never read twice: later callers wait for the same answer. A failed read
reaches every waiter and is never cached. It knows nothing of Graph; the loader does the reading.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

from entra_rbac.errors import DirectoryUnavailableError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# The loader returns a value, or an exception for that key alone, for every key it was given.
Loader = Callable[[list[K]], Awaitable[Mapping[K, V | BaseException]]]


class SingleFlightCache(Generic[K, V]):
    """Values by key for `ttl` seconds, read by `loader` in flushes `window` seconds apart."""

    def __init__(
        self,
        ttl: float,
        loader: Loader[K, V],
        *,
        window: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._loader = loader
        self._window = window
        self._clock = clock
        self._values: dict[K, tuple[float, V]] = {}
        self._in_flight: dict[K, asyncio.Future[V]] = {}
        self._queued: dict[K, asyncio.Future[V]] = {}
        self._flush: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def clear(self) -> None:
        """Forget every value (reads in flight still complete for their waiters)."""
        self._values.clear()

    def discard(self, keys: Sequence[K]) -> None:
        """Forget these keys' values (a change was reported for them)."""
        for key in keys:
            self._values.pop(key, None)

    async def aclose(self) -> None:
        """Stop reads in flight; their waiters get DirectoryUnavailableError."""
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def fresh(self, key: K) -> tuple[bool, V | None]:
        entry = self._values.get(key)
        if entry is None or self._clock() >= entry[0]:
            return False, None
        return True, entry[1]

    async def get_many(self, keys: Sequence[K]) -> tuple[dict[K, V], int]:
        """The value of every key, and how many were answered without a read of their own
        (fresh in the cache, or already being read for someone else)."""
        found: dict[K, V] = {}
        waiting: dict[K, asyncio.Future[V]] = {}
        served = 0
        for key in dict.fromkeys(keys):
            hit, value = self.fresh(key)
            if hit:
                found[key] = value  # type: ignore[assignment]
                served += 1
            elif key in self._in_flight:
                waiting[key] = self._in_flight[key]
                served += 1
            else:
                future = asyncio.get_running_loop().create_future()
                waiting[key] = self._in_flight[key] = self._queued[key] = future
        if self._queued and self._flush is None:
            self._flush = asyncio.create_task(self._flush_after_window())
            self._running.add(self._flush)
            self._flush.add_done_callback(self._running.discard)
        for key, future in waiting.items():
            # shield: a caller being cancelled must not cancel the read others share.
            found[key] = await asyncio.shield(future)
        return found, served

    async def _flush_after_window(self) -> None:
        try:
            await asyncio.sleep(self._window)
        finally:
            # From here on, new misses start the next flush; these keys are read now.
            self._flush = None
            batch, self._queued = self._queued, {}
        await self._load(batch)

    async def _load(self, batch: dict[K, asyncio.Future[V]]) -> None:
        try:
            loaded = await self._loader(list(batch))
        except BaseException as exc:
            shared = (
                exc if isinstance(exc, Exception) else DirectoryUnavailableError("directory read cancelled")
            )
            for key, future in batch.items():
                self._settle(key, future, shared)
            if not isinstance(exc, Exception):
                raise
            return
        expires = self._clock() + self._ttl
        for key, future in batch.items():
            outcome: V | BaseException = loaded.get(key, _MISSING)
            if outcome is _MISSING:
                outcome = DirectoryUnavailableError(f"directory read returned no answer for {key!r}")
            elif not isinstance(outcome, BaseException) and self._ttl > 0:
                self._values[key] = (expires, outcome)
            self._settle(key, future, outcome)

    def _settle(self, key: K, future: asyncio.Future[V], outcome: V | BaseException) -> None:
        self._in_flight.pop(key, None)
        if future.done():
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
            future.exception()  # mark retrieved: its waiters may all be gone, that is fine
        else:
            future.set_result(outcome)


class _Missing(Exception):
    """Sentinel for a key the loader left out (never raised)."""


_MISSING = _Missing()
