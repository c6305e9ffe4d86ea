"""A keyed cache with a time to live (TTL) whose misses are read together, once, by a background flush.

Holds `SingleFlightCache`. Keys missed by concurrent callers within a short window go to the
loader in one call (so 50 reconciles starting together cost one `getByIds`, not 50), and a key
already being read is never read twice: later callers wait for the same answer. A failed read
reaches every waiter and is never cached. It knows nothing of Graph; the loader does the reading.

With a `batch_limit` the batching adapts to a burst (docs/design.md, Directory semantics): the
window stays open while misses keep arriving (each one extends it by `window`, never past
`max_window` after the first), and while a read is out the next misses wait for it to come back
rather than going in reads of one or two keys: only a full batch (`batch_limit` keys, Graph's
limit per request) is sent beside one in flight, up to `max_loads` at once. A lone miss is read
after `window`, as before.

Look-ahead (adaptive batching only; docs/design.md, Directory semantics): `expect` names keys
about to be asked (the groups of resources the operator has seen arrive but not yet reconciled).
Nothing is sent for them alone; a read that is sent anyway, with room left (fewer keys than
`batch_limit`), takes the oldest expected keys along that are neither fresh nor being read, so
the reconciles asking for them later find them fresh or already being read. A key stops being
expected when `unexpect` says so (its resource's reconcile ran, or the resource is gone; not
when just anyone asks: a refresh's prefetch asks for resources kopf has still to hand over), or
once it has been taken along `lookahead_reads` times. A caller that joined a key's read taken along for the
look-ahead, and that read failed, reads the key again on its own: it never decides from a read
it did not ask for.

Arrivals (with `arrival_window`): `expect(keys, arriving=True)` says a resource arrived (not a
prefetch); its keys count as arriving until `unexpect`. While resources keep arriving (the latest
within `arrival_window` of the one before and of now) and more than one is arriving at once, a
burst is on that the operator may be keeping pace with, reconciling each as it comes, so each
miss would be read alone. A miss then waits for company: its window stays open `arrival_window`
past the latest arrival, never past `arrival_max_window` after it opened, and only while the read
would carry fewer than `arrival_company` keys (those queued and the expected ones it would take
along). A lone resource (nothing else arriving: one created after another became Ready, say) is
read after `window`, as before. Only when a read is sent changes; what it reads, and how long its
answers live, does not.

Busy (with `arrival_busy_window`): a window may stay open past `arrival_max_window`, up to
`arrival_busy_window` after it opened, while at least `arrival_busy` arrived keys are answered
and their resources not reconciled yet (`unexpect` not called): the operator then has that work
to do without this read, so the keys waiting in it hold back no reconcile the operator could run
meanwhile, and a burst's reads carry the keys of seconds of arrivals instead of one. The count is a
lower bound (arriving keys less those wanting and those being read), kept without a scan. The
operator also counts as busy while the condition given to `busy_while` holds (the directory's id
and name reads: every writer's turn taken), so the first read of a burst, before any of its own answers
exist, waits too when the writers have work without it. Once neither holds the window closes
`arrival_window` past the latest arrival that found the operator busy, or at
`arrival_max_window` if that is later.

Held answers (docs/design.md, Directory semantics: user mode holds each member list once): a read
whose answer equals the key's previous one (expired, or forgotten by `discard` or `clear`) keeps
the previous object instead of the new, equal one, so whatever is keyed by the answer's identity
downstream (the User subjects built once per member tuple, the plan's and the unchanged check's
comparisons that meet the same tuple) stays shared across the re-read (issue 17 point 7). Only
the object kept changes: every read is still made, compared and counted as before, and a
forgotten value is never served, only compared with the next answer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from entra_rbac.errors import DirectoryUnavailableError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# The loader returns a value, or an exception for that key alone, for every key it was given.
Loader = Callable[[list[K]], Awaitable[Mapping[K, V | BaseException]]]

# Forgotten values kept for comparison with their key's next read (module docstring, Held
# answers), oldest dropped first beyond this many keys. A value is held there instead of in the
# cache, not besides it: a forgotten key is almost always read again at once (its reconcile).
PREVIOUS_KEPT = 4096


class SingleFlightCache(Generic[K, V]):
    """Values by key for `ttl` seconds, read by `loader` in flushes `window` seconds apart (or,
    with `batch_limit`, in batches that adapt to a burst; see the module's docstring)."""

    def __init__(
        self,
        ttl: float,
        loader: Loader[K, V],
        *,
        window: float = 0.0,
        max_window: float | None = None,
        batch_limit: int | None = None,
        max_loads: int = 4,
        lookahead_reads: int = 3,
        lookahead_keys: int = 10_000,
        arrival_window: float = 0.0,
        arrival_max_window: float = 0.0,
        arrival_company: int = 0,
        arrival_busy_window: float = 0.0,
        arrival_busy: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._loader = loader
        self._window = window
        self._max_window = window if max_window is None else max(max_window, window)
        self._batch_limit = batch_limit
        self._max_loads = max_loads
        self._clock = clock
        self._values: dict[K, tuple[float, V]] = {}
        # Values forgotten (`discard`, `clear`), compared with their key's next read only.
        self._previous: OrderedDict[K, V] = OrderedDict()
        # Keys whose reads have not all agreed since the key was first read (or last forgotten).
        self._unsteady: set[K] = set()
        self._in_flight: dict[K, asyncio.Future[V]] = {}
        self._queued: dict[K, asyncio.Future[V]] = {}
        self._flush: asyncio.Task[None] | None = None
        # When the open window closes, and the latest it may (loop time).
        self._closes = self._latest = 0.0
        self._loads = 0  # loader calls out (adaptive batching only)
        self._closed = False
        self._running: set[asyncio.Task[None]] = set()
        # Look-ahead: expected keys, oldest first, with how often each was taken along;
        # and the keys whose read out was taken along (no caller asked for it).
        self._expected: OrderedDict[K, int] = OrderedDict()
        self._lookahead_reads = lookahead_reads
        self._lookahead_keys = lookahead_keys
        self._along: set[K] = set()
        # Arrivals (`expect` with a key new to it): how long a window waits for the next, at most
        # how long after it opened, and for how many keys; the latest arrival and the gap before it.
        self._arrival_window = arrival_window
        self._arrival_max_window = max(arrival_max_window, arrival_window)
        self._arrival_company = arrival_company
        # Busy: how long after it opened a window may wait while `arrival_busy` answered arrivals
        # are not reconciled yet (module docstring, Busy).
        self._arrival_busy_window = arrival_busy_window
        self._arrival_busy = max(arrival_busy, 1)
        self._busy_elsewhere: Callable[[], bool] = _never  # `busy_while`
        self._arrived = self._arrival_gap = -math.inf
        self._arriving: set[K] = set()  # keys of arrived resources not reconciled yet
        self._opened = 0.0
        # The expected keys neither fresh nor being read (what a read would take along first),
        # kept as their state changes rather than counted by a scan on each arrival (a burst of n
        # resources cost ~n²/2 freshness checks); and when the fresh ones among the expected
        # expire: (expires, sequence, keys), a heap, checked lazily (a key renewed, read again
        # or no longer expected meanwhile is left as it is). Assumes the clock does not go back.
        self._wanting: set[K] = set()
        self._expiries: list[tuple[float, int, tuple[K, ...]]] = []
        self._sequence = itertools.count()

    def clear(self) -> None:
        """Forget every value (reads in flight still complete for their waiters)."""
        self.discard(list(self._values))

    def discard(self, keys: Sequence[K]) -> None:
        """Forget these keys' values (a change was reported for them)."""
        previous = self._previous
        for key in keys:
            entry = self._values.pop(key, None)
            self._unsteady.discard(key)
            if key in self._expected and key not in self._in_flight:
                self._wanting.add(key)
            if entry is not None:
                previous[key] = entry[1]
                previous.move_to_end(key)
        while len(previous) > PREVIOUS_KEPT:
            previous.popitem(last=False)

    def expect(self, keys: Sequence[K], *, arriving: bool = False) -> None:
        """These keys will be asked soon: take them along with the next reads that have room
        (adaptive batching only). The oldest are forgotten beyond `lookahead_keys`. `arriving`:
        they are a resource's that has just arrived (see Arrivals in the module's docstring)."""
        if self._batch_limit is None:
            return
        expected = self._expected
        for key in keys:
            if key in expected:
                continue
            expected[key] = 0
            entry = self._values.get(key)
            if entry is not None and self._clock() < entry[0]:
                self._expiring(entry[0], (key,))
            elif key not in self._in_flight:
                self._wanting.add(key)
        while len(expected) > self._lookahead_keys:
            dropped = expected.popitem(last=False)[0]
            self._arriving.discard(dropped)
            self._wanting.discard(dropped)
        if arriving and keys and self._arrival_window > 0:
            self._arriving.update(keys)
            self._arrival()

    def _arrival(self) -> None:
        """A resource arrived: note when, and keep an open window open for it and the next."""
        now = asyncio.get_running_loop().time()
        self._arrival_gap, self._arrived = now - self._arrived, now
        if self._flush is not None and self._wants_company():
            # Never below what is already set: a busy window that stops being busy closes
            # `arrival_window` past the latest arrival that kept it open, not at once.
            self._latest = max(self._closes, self._opened + self._arrival_cap())
            self._closes = min(max(self._closes, now + self._arrival_window), self._latest)

    def _arrival_cap(self) -> float:
        """How long after it opened an arrivals' window may stay open now (module docstring,
        Arrivals and Busy); called only while the read wants company (`_expire` is current)."""
        cap = max(self._arrival_max_window, self._max_window)
        if self._arrival_busy_window > cap and self._busy():
            cap = self._arrival_busy_window
        return cap

    def _busy(self) -> bool:
        """At least `arrival_busy` arrived keys are answered and their resources not reconciled
        yet: arriving keys neither wanted (not fresh) nor being read. A lower bound, without a
        scan: the wanted and the ones being read need not all be arriving keys."""
        self._expire()
        answered = len(self._arriving) - len(self._wanting) - len(self._in_flight)
        return answered >= self._arrival_busy or self._busy_elsewhere()

    def busy_while(self, busy: Callable[[], bool]) -> None:
        """Count the operator busy also while `busy()` holds (module docstring, Busy): e.g. while
        every writer's turn is taken, when an answer now would only wait for a turn."""
        self._busy_elsewhere = busy

    def _in_burst(self, now: float) -> bool:
        """Resources are arriving one after another (the latest within `arrival_window` of the
        one before it and of now), and more than one key of them is still to be reconciled."""
        window = self._arrival_window
        return (
            window > 0
            and now - self._arrived <= window
            and self._arrival_gap <= window
            and len(self._arriving) > 1
        )

    def _wants_company(self) -> bool:
        """The read being formed would carry fewer than `arrival_company` keys (those queued,
        and the expected ones neither fresh nor being read that it would take along)."""
        if len(self._queued) >= self._arrival_company:
            return False
        self._expire()
        return len(self._queued) + len(self._wanting) < self._arrival_company

    def _expiring(self, expires: float, keys: tuple[K, ...]) -> None:
        """These expected keys' answers expire at `expires`: then they are wanted again."""
        heapq.heappush(self._expiries, (expires, next(self._sequence), keys))

    def _expire(self) -> None:
        """The expected keys whose answers have expired (not read again meanwhile) are wanted."""
        expiries = self._expiries
        if not expiries:
            return
        now = self._clock()
        while expiries and expiries[0][0] <= now:
            for key in heapq.heappop(expiries)[2]:
                if key in self._expected and key not in self._in_flight and not self.fresh(key)[0]:
                    self._wanting.add(key)

    def unexpect(self, keys: Sequence[K]) -> None:
        """These keys are no longer expected (their resource was reconciled, or is gone)."""
        for key in keys:
            self._expected.pop(key, None)
            self._arriving.discard(key)
            self._wanting.discard(key)

    async def aclose(self) -> None:
        """Stop reads in flight; their waiters get DirectoryUnavailableError."""
        self._closed = True
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        batch, self._queued = self._queued, {}  # waiting for a read out that was stopped
        for key, future in batch.items():
            self._settle(key, future, DirectoryUnavailableError("directory read cancelled"))

    def fresh(self, key: K) -> tuple[bool, V | None]:
        entry = self._values.get(key)
        if entry is None or self._clock() >= entry[0]:
            return False, None
        return True, entry[1]

    def steady(self, key: K) -> tuple[bool, V | None]:
        """The value every successful read of `key` has agreed on since it was first read (or last
        forgotten), fresh or expired; (False, None) when it was never read or the reads differed."""
        entry = self._values.get(key)
        if entry is None or key in self._unsteady:
            return False, None
        return True, entry[1]

    def known(self, key: K) -> bool:
        """Whether `key` has been read (fresh or expired) since it was last forgotten, or is being read."""
        return key in self._values or key in self._in_flight

    def reading(self, key: K) -> bool:
        """Whether `key` is being read now (its answer may yet differ from the one held)."""
        return key in self._in_flight

    def steady_values(self) -> list[V] | None:
        """The value of every key read since it was last forgotten, fresh or expired; None when the
        reads of some key have differed (see `steady`)."""
        if self._unsteady:
            return None
        return [value for _, value in self._values.values()]

    async def get_many(self, keys: Sequence[K]) -> tuple[dict[K, V], int]:
        """The value of every key, and how many were answered without a read of their own
        (fresh in the cache, or already being read for someone else). A key whose read was
        taken along for the look-ahead and failed is read again, on its own account."""
        found: dict[K, V] = {}
        asking = list(dict.fromkeys(keys))
        served = 0
        for attempt in range(_RETRIES_AFTER_LOOKAHEAD + 1):
            waiting, along, hits = self._claim(asking, found)
            served += hits
            asking = []
            for key, future in waiting.items():
                try:
                    # shield: a caller being cancelled must not cancel the read others share.
                    found[key] = await asyncio.shield(future)
                except Exception:
                    if key not in along or attempt == _RETRIES_AFTER_LOOKAHEAD:
                        raise
                    asking.append(key)  # not our read: read it ourselves
            served -= len(asking)
            if not asking:
                break
        return found, served

    def _claim(self, keys: Sequence[K], found: dict[K, V]) -> tuple[dict[K, asyncio.Future[V]], set[K], int]:
        """Fresh values into `found`; for the rest, the read to wait for (being read, or queued
        now), which of those were taken along for the look-ahead, and how many were served."""
        waiting: dict[K, asyncio.Future[V]] = {}
        along: set[K] = set()
        served, queued = 0, False
        for key in keys:
            hit, value = self.fresh(key)
            if hit:
                found[key] = value  # type: ignore[assignment]
                served += 1
            elif key in self._in_flight:
                waiting[key] = self._in_flight[key]
                served += 1
                if key in self._along:
                    along.add(key)
            else:
                future = asyncio.get_running_loop().create_future()
                waiting[key] = self._in_flight[key] = self._queued[key] = future
                self._wanting.discard(key)
                queued = True
        if queued:
            self._queue_changed()
        return waiting, along, served

    def _queue_changed(self) -> None:
        """New misses are queued: open the window, or keep it open a little longer."""
        now = asyncio.get_running_loop().time()
        if self._flush is not None:
            self._closes = min(max(self._closes, now + self._window), self._latest)
        elif self._batch_limit is None or not self._loads:
            # With a read out (adaptive), its return sends what has queued meanwhile instead.
            self._open_window(now)
        if self._batch_limit is not None and len(self._queued) >= self._batch_limit:
            self._send()

    def _open_window(self, now: float) -> None:
        """Open the window for what is queued: `window`, or in a burst of arrivals while the read
        lacks company, `arrival_window` past the latest arrival (module docstring, Arrivals)."""
        self._opened, self._closes, self._latest = now, now + self._window, now + self._max_window
        if self._in_burst(now) and self._wants_company():
            self._latest = now + self._arrival_cap()
            self._closes = min(max(self._closes, self._arrived + self._arrival_window), self._latest)
        self._flush = self._start(self._flush_after_window())

    async def _flush_after_window(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            left = self._closes - loop.time()
            while left > 0:  # each miss meanwhile moved the closing time on
                await asyncio.sleep(left)
                left = self._closes - loop.time()
        except BaseException:
            self._flush = None
            batch, self._queued = self._queued, {}
            for key, future in batch.items():
                self._settle(key, future, DirectoryUnavailableError("directory read cancelled"))
            raise
        # From here on, new misses start the next flush (or wait for a read out to return).
        self._flush = None
        if self._batch_limit is None:
            batch, self._queued = self._queued, {}
            await self._load(batch)
        else:
            self._send()

    def _send(self) -> None:
        """Adaptive batching: start reads of what is queued, a full batch beside a read out, a
        partial one only when none is out, at most `max_loads` at once."""
        limit = self._batch_limit
        assert limit is not None
        while not self._closed and self._queued and self._loads < self._max_loads:
            if self._loads and len(self._queued) < limit:
                return  # the read out brings company for these when it returns
            keys = list(self._queued)[:limit]
            batch = {key: self._queued.pop(key) for key in keys}
            if len(batch) < limit and self._expected:
                self._take_along(batch, limit)
            self._loads += 1
            self._start(self._load_counted(batch))

    def _take_along(self, batch: dict[K, asyncio.Future[V]], limit: int) -> None:
        """Fill a read's room with the oldest expected keys neither fresh nor being read; then,
        room left, with those whose answer expires within half a lifetime: read in one cohort,
        keys then expire together and cost one read per lifetime, not one per cohort (a create
        burst's reconciles and a refresh batch's read the same ids at different moments)."""
        now = self._clock()
        spent: list[K] = []
        self._take_expiring(batch, limit, now, spent)
        if len(batch) < limit and self._ttl > 0:
            self._take_expiring(batch, limit, now + self._ttl / 2, spent)
        for key in spent:
            del self._expected[key]
            self._arriving.discard(key)
            self._wanting.discard(key)

    def _take_expiring(
        self, batch: dict[K, asyncio.Future[V]], limit: int, by: float, spent: list[K]
    ) -> None:
        """Take along the oldest expected keys not being read whose answer (if any) expires by `by`."""
        loop = asyncio.get_running_loop()
        values = self._values
        for key, reads in self._expected.items():
            if len(batch) >= limit:
                break
            if key in self._in_flight or ((entry := values.get(key)) is not None and entry[0] > by):
                continue
            self._expected[key] = reads + 1
            if reads + 1 >= self._lookahead_reads:
                spent.append(key)
            batch[key] = self._in_flight[key] = loop.create_future()
            self._along.add(key)
            self._wanting.discard(key)

    async def _load_counted(self, batch: dict[K, asyncio.Future[V]]) -> None:
        try:
            await self._load(batch)
        finally:
            self._loads -= 1
            if self._queued and self._flush is None:
                now = asyncio.get_running_loop().time()
                if not self._loads and not self._closed and self._in_burst(now) and self._wants_company():
                    self._open_window(now)  # what queued meanwhile waits for the next arrivals too
                else:
                    self._send()

    def _start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

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
        kept: list[K] = []  # expected keys answered: wanted again when the answers expire
        for key, future in batch.items():
            outcome: V | BaseException = loaded.get(key, _MISSING)
            if outcome is _MISSING:
                outcome = DirectoryUnavailableError(f"directory read returned no answer for {key!r}")
            elif not isinstance(outcome, BaseException) and self._ttl > 0:
                earlier = self._values.get(key)
                held = self._previous.pop(key, _MISSING) if earlier is None else earlier[1]
                if held == outcome:
                    outcome = held  # the equal object already held
                elif earlier is not None:
                    self._unsteady.add(key)
                self._values[key] = (expires, outcome)
                if key in self._expected:
                    kept.append(key)
            self._settle(key, future, outcome)
        if kept:
            self._expiring(expires, tuple(kept))
            self._expire()  # the heap holds no more than the answers still fresh, and some stale

    def _settle(self, key: K, future: asyncio.Future[V], outcome: V | BaseException) -> None:
        self._in_flight.pop(key, None)
        self._along.discard(key)
        if key in self._expected and not self.fresh(key)[0]:
            self._wanting.add(key)
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
# How often a caller whose key was read along for the look-ahead, and failed, reads it again itself
# (more than once only if the key was taken along again meanwhile, for another resource).
_RETRIES_AFTER_LOOKAHEAD = 3


def _never() -> bool:
    return False
