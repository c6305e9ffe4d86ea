"""SingleFlightCache: misses read together and once; answers reused for their lifetime only."""

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

    def __init__(self, released: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        if released:
            self.release.set()
        self.fail: Exception | None = None
        self.per_key: dict[str, BaseException] = {}
        self.changed = asyncio.Condition()

    async def __call__(self, keys: list[str]) -> Mapping[str, str | BaseException]:
        async with self.changed:
            self.calls.append(keys)
            self.changed.notify_all()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return {key: self.per_key.get(key, key.upper()) for key in keys}


async def wait_for_calls(loader: Loader, count: int) -> None:
    async with asyncio.timeout(5), loader.changed:
        await loader.changed.wait_for(lambda: len(loader.calls) >= count)


async def test_concurrent_misses_within_the_window_are_read_in_one_call() -> None:
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, window=0.05)
    results = await asyncio.gather(
        cache.get_many(["a", "b"]), cache.get_many(["b", "c"]), cache.get_many(["d"])
    )
    assert [r[0] for r in results] == [{"a": "A", "b": "B"}, {"b": "B", "c": "C"}, {"d": "D"}]
    assert loader.calls == [["a", "b", "c", "d"]]
    assert [served for _, served in results] == [0, 1, 0]


async def test_key_being_read_is_not_read_again() -> None:
    loader = Loader()
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader)
    first = asyncio.create_task(cache.get_many(["a", "b"]))
    await wait_for_calls(loader, 1)
    second = asyncio.create_task(cache.get_many(["b", "c"]))
    await wait_for_calls(loader, 2)
    loader.release.set()
    assert (await first)[0] == {"a": "A", "b": "B"}
    assert (await second) == ({"b": "B", "c": "C"}, 1)
    assert loader.calls == [["a", "b"], ["c"]]


async def test_answer_is_reused_within_lifetime_and_reread_after() -> None:
    clock = Clock()
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, clock=clock)
    await cache.get_many(["a"])
    clock.now = 59.9
    assert await cache.get_many(["a"]) == ({"a": "A"}, 1)
    assert len(loader.calls) == 1
    clock.now = 60.0
    await cache.get_many(["a"])
    assert len(loader.calls) == 2


async def test_failed_read_reaches_every_waiter_and_is_not_cached() -> None:
    loader = Loader()
    loader.fail = DirectoryUnavailableError("boom")
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader)
    first = asyncio.create_task(cache.get_many(["a"]))
    await wait_for_calls(loader, 1)
    second = asyncio.create_task(cache.get_many(["a"]))
    loader.release.set()
    for task in (first, second):
        with pytest.raises(DirectoryUnavailableError, match="boom"):
            await task
    loader.fail = None
    assert await cache.get_many(["a"]) == ({"a": "A"}, 0)


async def test_one_keys_failure_is_its_own() -> None:
    loader = Loader(released=True)
    loader.per_key["b"] = DirectoryUnavailableError("b failed")
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, window=0.05)
    good, bad = await asyncio.gather(cache.get_many(["a"]), cache.get_many(["b"]), return_exceptions=True)
    assert good == ({"a": "A"}, 0)
    assert isinstance(bad, DirectoryUnavailableError)
    del loader.per_key["b"]
    assert await cache.get_many(["a", "b"]) == ({"a": "A", "b": "B"}, 1)


async def test_cancelled_caller_does_not_cancel_the_shared_read() -> None:
    loader = Loader()
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader)
    owner = asyncio.create_task(cache.get_many(["a"]))
    await wait_for_calls(loader, 1)
    waiter = asyncio.create_task(cache.get_many(["a"]))
    await asyncio.sleep(0)
    owner.cancel()
    loader.release.set()
    assert (await waiter)[0] == {"a": "A"}
    with pytest.raises(asyncio.CancelledError):
        await owner


async def test_closing_fails_waiters_instead_of_hanging_them() -> None:
    loader = Loader()
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader)
    waiter = asyncio.create_task(cache.get_many(["a"]))
    await wait_for_calls(loader, 1)
    await cache.aclose()
    with pytest.raises(DirectoryUnavailableError, match="cancelled"):
        await waiter


async def test_loader_answer_missing_a_key_is_a_failure() -> None:
    async def partial(keys: list[str]) -> Mapping[str, str | BaseException]:
        return {}

    cache: SingleFlightCache[str, str] = SingleFlightCache(60, partial)
    with pytest.raises(DirectoryUnavailableError, match="no answer"):
        await cache.get_many(["a"])


# --- adaptive batching (batch_limit): what a create burst of reconciles needs ---


async def test_misses_while_a_read_is_out_wait_for_it_and_go_together() -> None:
    loader = Loader()
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, batch_limit=1000)
    first = asyncio.create_task(cache.get_many(["a"]))
    await wait_for_calls(loader, 1)
    later = [asyncio.create_task(cache.get_many([key])) for key in "bcd"]
    for _ in range(50):  # plenty of turns for a flush of their own, had there been one
        await asyncio.sleep(0)
    assert loader.calls == [["a"]]
    loader.release.set()
    assert (await first)[0] == {"a": "A"}
    assert [(await task)[0] for task in later] == [{"b": "B"}, {"c": "C"}, {"d": "D"}]
    assert loader.calls == [["a"], ["b", "c", "d"]]


async def test_a_full_batch_goes_beside_a_read_out_and_the_rest_waits() -> None:
    loader = Loader()
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, batch_limit=2)
    first = asyncio.create_task(cache.get_many(["a"]))
    await wait_for_calls(loader, 1)
    full = asyncio.create_task(cache.get_many(["b", "c", "d"]))
    await wait_for_calls(loader, 2)
    assert loader.calls == [["a"], ["b", "c"]]  # "d" waits for company
    loader.release.set()
    assert (await full)[0] == {"b": "B", "c": "C", "d": "D"}
    await first
    assert loader.calls == [["a"], ["b", "c"], ["d"]]


async def test_at_most_max_loads_reads_are_out_at_once() -> None:
    loader = Loader()
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, batch_limit=1, max_loads=2)
    task = asyncio.create_task(cache.get_many(["a", "b", "c"]))
    await wait_for_calls(loader, 2)
    for _ in range(50):
        await asyncio.sleep(0)
    assert loader.calls == [["a"], ["b"]]
    loader.release.set()
    assert (await task)[0] == {"a": "A", "b": "B", "c": "C"}
    assert loader.calls == [["a"], ["b"], ["c"]]


async def test_the_window_stays_open_while_misses_keep_arriving() -> None:
    # A miss every 0.9 s against a 1.5 s window: the fixed window would have read "a" and "b"
    # at 1.5 s and "c" (at 1.8 s) on its own; each miss keeps it open instead.
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(
        60, loader, window=1.5, max_window=30, batch_limit=1000
    )
    tasks = [asyncio.create_task(cache.get_many(["a"]))]
    for key in "bc":
        await asyncio.sleep(0.9)
        tasks.append(asyncio.create_task(cache.get_many([key])))
    await asyncio.gather(*tasks)
    assert loader.calls == [["a", "b", "c"]]


async def test_a_lone_miss_is_read_after_the_window() -> None:
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(
        60, loader, window=0.01, max_window=30, batch_limit=1000
    )
    assert await asyncio.wait_for(cache.get_many(["a"]), timeout=10) == ({"a": "A"}, 0)
    assert loader.calls == [["a"]]


async def test_closing_fails_misses_waiting_for_a_read_out() -> None:
    loader = Loader()
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, batch_limit=1000)
    first = asyncio.create_task(cache.get_many(["a"]))
    await wait_for_calls(loader, 1)
    queued = asyncio.create_task(cache.get_many(["b"]))
    await asyncio.sleep(0)
    await cache.aclose()
    for task in (first, queued):
        with pytest.raises(DirectoryUnavailableError, match="cancelled"):
            await task
    assert loader.calls == [["a"]]


async def test_a_value_is_steady_while_every_read_agrees_and_a_failed_read_changes_nothing() -> None:
    """`steady`: what a delta baseline is compared with (issue 17 point 4); expired values count,
    a value that changed between reads does not until the key is forgotten."""
    clock = Clock()
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, clock=clock)
    assert (cache.steady("a"), cache.known("a")) == ((False, None), False)
    await cache.get_many(["a", "b"])
    clock.now = 61.0  # expired: still what every read so far found
    assert (cache.steady("a"), cache.known("a"), cache.steady_values()) == ((True, "A"), True, ["A", "B"])
    loader.fail = DirectoryUnavailableError("boom")
    with pytest.raises(DirectoryUnavailableError):
        await cache.get_many(["a"])
    assert cache.steady("a") == (True, "A")
    loader.fail, loader.per_key["a"] = None, "A2"  # changed in the directory
    clock.now = 200.0
    await cache.get_many(["a"])
    assert (cache.steady("a"), cache.steady_values()) == ((False, None), None)
    cache.discard(["a"])
    assert (cache.steady("a"), cache.steady_values()) == ((False, None), ["B"])


# --- the look-ahead (expect): keys of arriving resources ride along with reads sent anyway ---


async def test_expected_keys_ride_along_with_a_read_that_has_room_and_are_then_served() -> None:
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, batch_limit=3)
    cache.expect(["b", "c", "d", "e"])
    assert loader.calls == []  # nothing is sent for the look-ahead alone
    assert await cache.get_many(["a"]) == ({"a": "A"}, 0)
    assert loader.calls == [["a", "b", "c"]]  # the oldest expected keys, up to the batch limit
    assert await cache.get_many(["c", "b"]) == ({"c": "C", "b": "B"}, 2)
    assert await cache.get_many(["e"]) == ({"e": "E"}, 0)
    assert loader.calls == [["a", "b", "c"], ["e", "d"]]


async def test_expected_keys_fresh_being_read_or_unexpected_are_not_taken_along() -> None:
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, batch_limit=1000)
    await cache.get_many(["fresh"])
    cache.expect(["fresh", "gone", "asked", "left"])
    cache.unexpect(["gone"])  # its resource was reconciled, or deleted
    await cache.get_many(["asked"])  # its own read, with "left" along
    await cache.get_many(["x"])
    assert loader.calls == [["fresh"], ["asked", "left"], ["x"]]


async def test_a_key_asked_stays_expected_until_unexpected() -> None:
    """A refresh's prefetch asks for resources kopf has still to hand over: their reconciles come
    later, after the answers expired, and still find their keys taken along."""
    clock = Clock()
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(1, loader, batch_limit=1000, clock=clock)
    cache.expect(["a", "b"])
    await cache.get_many(["a", "b"])  # the prefetch
    clock.now = 2.0
    await cache.get_many(["a"])  # a's reconcile: b along again
    cache.unexpect(["a"])
    clock.now = 4.0
    await cache.get_many(["c"])
    assert loader.calls == [["a", "b"], ["a", "b"], ["c", "b"]]


async def test_a_key_taken_along_too_often_is_no_longer_expected() -> None:
    clock = Clock()
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(
        1, loader, batch_limit=10, lookahead_reads=2, clock=clock
    )
    cache.expect(["never"])
    for round_ in range(3):
        clock.now = 2.0 * round_  # every answer expired since the last read
        await cache.get_many([f"k{round_}"])
    assert loader.calls == [["k0", "never"], ["k1", "never"], ["k2"]]


async def test_a_failed_read_taken_along_is_read_again_by_whoever_joined_it() -> None:
    """Key b rides along with the read of a, which fails: "a" decides from its own read (it fails),
    while the caller that joined "b"'s read meanwhile reads "b" again itself and gets its answer;
    the failed read cached nothing."""
    calls: list[list[str]] = []
    release, sent = asyncio.Event(), asyncio.Event()

    async def loader(keys: list[str]) -> Mapping[str, str]:
        calls.append(keys)
        sent.set()
        if len(calls) == 1:
            await release.wait()
            raise DirectoryUnavailableError("503")
        return {key: key.upper() for key in keys}

    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, batch_limit=1000)
    cache.expect(["b"])
    asker = asyncio.create_task(cache.get_many(["a"]))
    await asyncio.wait_for(sent.wait(), timeout=5)
    assert calls == [["a", "b"]]
    joined = asyncio.create_task(cache.get_many(["b"]))
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(DirectoryUnavailableError):
        await asker
    assert await joined == ({"b": "B"}, 0)
    assert calls == [["a", "b"], ["b"]]
    assert cache.fresh("a") == (False, None)


async def test_one_key_failing_in_a_read_taken_along_is_its_own() -> None:
    loader = Loader(released=True)
    loader.per_key["b"] = DirectoryUnavailableError("item 2 failed")
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, batch_limit=1000)
    cache.expect(["b", "c"])
    assert await cache.get_many(["a"]) == ({"a": "A"}, 0)
    assert (cache.fresh("b"), cache.fresh("c")) == ((False, None), (True, "C"))


async def test_expect_without_batching_does_nothing() -> None:
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(60, loader, window=0.01)
    cache.expect(["b"])
    await cache.get_many(["a"])
    assert loader.calls == [["a"]]


# --- arrivals: while resources keep arriving, a miss waits for the next ones (issue 17 point 4) ---


def _arriving_cache(
    loader: Loader, *, arrival_window: float, company: int = 20
) -> SingleFlightCache[str, str]:
    return SingleFlightCache(
        60,
        loader,
        window=0.01,
        max_window=0.2,
        batch_limit=1000,
        arrival_window=arrival_window,
        arrival_max_window=30,
        arrival_company=company,
    )


async def test_a_miss_while_resources_keep_arriving_waits_for_the_next_arrivals() -> None:
    """The operator keeping pace with a create burst: each resource is reconciled as it arrives.
    Without waiting, "b" is read after the 10 ms window (with "a" along) and "c" alone."""
    loader = Loader(released=True)
    cache = _arriving_cache(loader, arrival_window=2.0)
    cache.expect(["a"], arriving=True)
    cache.expect(["b"], arriving=True)
    first = asyncio.create_task(cache.get_many(["b"]))  # b's reconcile, a still to come
    await asyncio.sleep(0.05)  # well inside the arrival window, far past the 10 ms one
    cache.expect(["c"], arriving=True)
    second = asyncio.create_task(cache.get_many(["c"]))
    await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
    assert loader.calls == [["b", "c", "a"]]


async def test_a_lone_arrival_is_read_after_the_short_window() -> None:
    """One resource created after the last one was reconciled (nothing else arriving) is not kept
    waiting: with a 30 s arrival window, waiting would time the test out."""
    loader = Loader(released=True)
    cache = _arriving_cache(loader, arrival_window=30)
    cache.expect(["a"], arriving=True)
    await asyncio.wait_for(cache.get_many(["a"]), timeout=10)
    cache.unexpect(["a"])  # its reconcile ran
    cache.expect(["b"], arriving=True)  # the next one, arriving straight after
    await asyncio.wait_for(cache.get_many(["b"]), timeout=10)
    assert loader.calls == [["a"], ["b"]]


async def test_a_prefetchs_keys_are_not_arrivals() -> None:
    loader = Loader(released=True)
    cache = _arriving_cache(loader, arrival_window=30)
    cache.expect(["a", "b", "c"])  # a refresh's batch
    cache.expect(["d"], arriving=True)
    await asyncio.wait_for(cache.get_many(["d"]), timeout=10)
    assert loader.calls == [["d", "a", "b", "c"]]


async def test_a_read_with_company_enough_does_not_wait_for_arrivals() -> None:
    loader = Loader(released=True)
    cache = _arriving_cache(loader, arrival_window=30, company=3)
    cache.expect(["a", "b"], arriving=True)
    cache.expect(["c"], arriving=True)
    await asyncio.wait_for(cache.get_many(["a"]), timeout=10)  # a + b and c along: 3 keys
    assert loader.calls == [["a", "b", "c"]]


async def test_arrivals_keep_a_window_open_at_most_the_arrival_max_window() -> None:
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(
        60, loader, window=0.01, batch_limit=1000, arrival_window=0.3, arrival_max_window=1.0,
        arrival_company=1000,
    )  # fmt: skip
    cache.expect(["a"], arriving=True)
    cache.expect(["b"], arriving=True)
    asked = asyncio.create_task(cache.get_many(["a"]))
    arrivals = 0
    while not asked.done():  # arrivals never stop, yet the read goes
        arrivals += 1
        cache.expect([f"k{arrivals}"], arriving=True)
        await asyncio.sleep(0.02)
        assert arrivals < 500, "the read waited for arrivals beyond arrival_max_window"
    assert (await asyncio.wait_for(asked, timeout=10))[0] == {"a": "A"}
    assert len(loader.calls) == 1
    assert loader.calls[0][:2] == ["a", "b"]


async def test_expected_answers_expiring_soon_are_renewed_with_a_read_that_has_room() -> None:
    """Two cohorts (a create burst's reconciles, a refresh batch's) read the same kind of keys at
    different moments and would cost a read each per lifetime: a read with room renews the
    expected keys whose answers expire within half a lifetime, so they expire together."""
    clock = Clock()
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(10, loader, batch_limit=1000, clock=clock)
    cache.expect(["a", "b"])
    await cache.get_many(["a"])  # b along: both live until 10
    clock.now = 6.0
    assert await cache.get_many(["c"]) == ({"c": "C"}, 0)  # a and b renewed: live until 16
    clock.now = 12.0
    assert await cache.get_many(["a", "b", "c"]) == ({"a": "A", "b": "B", "c": "C"}, 3)
    assert loader.calls == [["a", "b"], ["c", "a", "b"]]


async def test_a_fresh_answer_is_served_while_it_is_renewed_and_kept_if_the_renewal_fails() -> None:
    clock = Clock()
    loader = Loader()
    cache: SingleFlightCache[str, str] = SingleFlightCache(10, loader, batch_limit=1000, clock=clock)
    cache.expect(["a"])
    loader.release.set()
    await cache.get_many(["a"])
    loader.release.clear()
    clock.now = 6.0
    renewing = asyncio.create_task(cache.get_many(["c"]))  # a renewed along, held at the loader
    await wait_for_calls(loader, 2)
    assert await cache.get_many(["a"]) == ({"a": "A"}, 1)  # the fresh answer, not the read out
    loader.fail = DirectoryUnavailableError("503")
    loader.release.set()
    with pytest.raises(DirectoryUnavailableError):
        await renewing
    assert await cache.get_many(["a"]) == ({"a": "A"}, 1)  # still the answer read at 0
    assert len(loader.calls) == 2


# --- held answers: an equal re-read keeps the object already held (issue 17 point 7) ---


class Tuples:
    """Answers a new tuple per read (equal content unless `content` changes), as Graph's pages are."""

    def __init__(self) -> None:
        self.content: dict[str, tuple[str, ...]] = {"g": ("u1", "u2")}
        self.calls = 0

    async def __call__(self, keys: list[str]) -> Mapping[str, tuple[str, ...] | BaseException]:
        self.calls += 1
        return {key: tuple(name for name in self.content[key]) for key in keys}  # a new object


async def test_an_equal_reread_after_expiry_or_forgetting_answers_the_held_object() -> None:
    """User mode keys the subjects it builds by the member tuple's identity
    (reconciler.subject_lists): a re-read of unchanged members must not look like new members."""
    clock = Clock()
    loader = Tuples()
    cache: SingleFlightCache[str, tuple[str, ...]] = SingleFlightCache(60, loader, clock=clock)
    held = (await cache.get_many(["g"]))[0]["g"]
    clock.now = 61.0  # expired: read again, equal
    assert (await cache.get_many(["g"]))[0]["g"] is held
    cache.discard(["g"])  # a reported change: read again, equal
    assert (await cache.get_many(["g"]))[0]["g"] is held
    cache.clear()  # an on-demand sync
    assert (await cache.get_many(["g"]))[0]["g"] is held
    assert loader.calls == 4  # every read still made
    assert cache.steady("g") == (True, held)


async def test_a_changed_reread_answers_the_new_value_and_a_forgotten_one_is_never_served() -> None:
    clock = Clock()
    loader = Tuples()
    cache: SingleFlightCache[str, tuple[str, ...]] = SingleFlightCache(60, loader, clock=clock)
    held = (await cache.get_many(["g"]))[0]["g"]
    cache.discard(["g"])
    assert cache.fresh("g") == (False, None)
    assert not cache.known("g")
    loader.content["g"] = ("u1",)
    assert (await cache.get_many(["g"]))[0]["g"] == ("u1",)
    clock.now = 61.0
    loader.content["g"] = ("u1", "u2")  # back to the first content: not the forgotten object
    answer = (await cache.get_many(["g"]))[0]["g"]
    assert answer == held
    assert answer is not held
    assert cache.steady("g") == (False, None)  # the reads since it was forgotten differed


# --- arrivals' bookkeeping: the read's company kept as it changes, not counted on each arrival ---


class CountingClock(Clock):
    """A clock that counts how often it is read (each freshness check reads it once)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


async def test_an_arrival_during_a_burst_does_not_check_every_expected_key() -> None:
    """1,000 expected keys, fresh (a prefetch's batch read along), and 200 resources arriving one
    after another while a read's window is open: deciding whether the read still wants company
    checked every expected key on every arrival (~200,000 freshness checks); now it costs a few
    clock reads an arrival, whatever the number of expected keys."""
    clock = CountingClock()
    loader = Loader(released=True)
    cache: SingleFlightCache[str, str] = SingleFlightCache(
        60, loader, window=0.01, batch_limit=1000, arrival_window=30, arrival_max_window=30,
        arrival_company=1000, clock=clock,
    )  # fmt: skip
    cache.expect([f"p{i}" for i in range(999)])
    await cache.get_many(["p999"])  # the rest along: all 1,000 fresh and still expected
    cache.expect(["a0"], arriving=True)
    cache.expect(["a1"], arriving=True)
    asked = asyncio.create_task(cache.get_many(["a0"]))  # its window open, waiting for company
    for _ in range(1_000):  # until the read is queued (a bounded number of loop turns)
        if "a0" in cache._queued:
            break
        await asyncio.sleep(0)
    assert "a0" in cache._queued
    assert not asked.done()
    clock.reads = 0
    for i in range(2, 202):
        cache.expect([f"a{i}"], arriving=True)
    assert clock.reads < 2_000, clock.reads
    asked.cancel()
    await asyncio.gather(asked, return_exceptions=True)
    await cache.aclose()


def _reference_wants_company(cache: SingleFlightCache[str, str]) -> bool:
    """The rule as the scan wrote it: queued keys plus the expected ones neither being read nor
    fresh, against `arrival_company`."""
    wanting = [k for k in cache._expected if k not in cache._in_flight and not cache.fresh(k)[0]]
    return len(cache._queued) + len(wanting) < cache._arrival_company


def _reference_answered(cache: SingleFlightCache[str, str]) -> int:
    """Arrived keys answered (fresh, not being read again) whose resources are not reconciled."""
    return sum(1 for k in cache._arriving if k not in cache._in_flight and cache.fresh(k)[0])


@pytest.mark.parametrize("seed", range(8))
async def test_the_company_kept_as_it_changes_agrees_with_counting_it(seed: int) -> None:
    """Random expects, arrivals, unexpects, asks, failures, forgets and the clock moving on: after
    each step the kept count decides as the scan of every expected key does."""
    import random

    rng = random.Random(seed)
    clock = Clock()
    keys = [f"k{i}" for i in range(40)]

    async def loader(batch: list[str]) -> Mapping[str, str | BaseException]:
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)
        if rng.random() < 0.1:
            raise DirectoryUnavailableError("503")
        return {k: (DirectoryUnavailableError("item") if rng.random() < 0.1 else k.upper()) for k in batch}

    cache: SingleFlightCache[str, str] = SingleFlightCache(
        5, loader, window=0.001, max_window=0.002, batch_limit=8, max_loads=2, lookahead_reads=3,
        lookahead_keys=30, arrival_window=0.003, arrival_max_window=0.005, arrival_company=6,
        arrival_busy_window=0.01, arrival_busy=2, clock=clock,
    )  # fmt: skip
    asking: set[asyncio.Task[object]] = set()
    for _ in range(600):
        step = rng.random()
        if step < 0.25:
            cache.expect(rng.sample(keys, rng.randrange(1, 4)), arriving=rng.random() < 0.7)
        elif step < 0.35:
            cache.unexpect(rng.sample(keys, rng.randrange(1, 3)))
        elif step < 0.6:
            task = asyncio.create_task(cache.get_many(rng.sample(keys, rng.randrange(1, 4))))
            asking.add(task)
            task.add_done_callback(asking.discard)
        elif step < 0.65:
            cache.discard(rng.sample(keys, 2))
        elif step < 0.67:
            cache.clear()
        elif step < 0.8:
            clock.now += rng.choice((0.5, 1.0, 2.5))
        else:
            await asyncio.sleep(rng.choice((0, 0, 0.001, 0.004)))
        assert cache._wants_company() == _reference_wants_company(cache)
        assert not cache._busy() or _reference_answered(cache) >= cache._arrival_busy
    await asyncio.gather(*asking, return_exceptions=True)
    assert cache._wants_company() == _reference_wants_company(cache)
    await cache.aclose()
