"""One knob for freshness (issue 13, point 4; docs/design.md, Directory semantics).

The directory cache's lifetime and the refresher's schedule are both derived from
ENTRA_RBAC_REFRESH_INTERVAL, so no combination of settings can show a directory older than the
interval promises. Checked twice: the arithmetic of `Freshness`, and a simulation that runs the
real `Refresher` schedule against the real `SingleFlightCache` on a fake clock, with other
reconciles (namespace events, spec changes) reading the cache at random moments in between.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entra_rbac import triggers
from entra_rbac.adapters.directory.cache import SingleFlightCache
from entra_rbac.reconciler import Outcome
from entra_rbac.settings import RETIRED_VARIABLES, Freshness, Settings, unknown_variables

INTERVALS = st.floats(min_value=1.0, max_value=86_400.0, allow_nan=False)
BASE = {
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f",
    "credential": "client-secret",
    "client_secret": "s",
}


@given(INTERVALS)
def test_cache_lifetime_plus_a_late_tick_plus_the_period_never_exceed_the_interval(interval: float) -> None:
    fresh = Freshness.of(interval)
    assert min(fresh.cache_lifetime, fresh.tick) > 0
    assert fresh.period > interval / 2
    assert fresh.cache_lifetime + fresh.tick + fresh.period <= interval * (1 + 1e-9)


@pytest.mark.parametrize(("variable", "interval", "cache"), [("5m", 300.0, 60.0), ("10s", 10.0, 2.0)])
def test_the_directory_cache_lifetime_comes_from_the_refresh_interval(
    variable: str, interval: float, cache: float
) -> None:
    from entra_rbac.adapters.directory import directory_config

    config = directory_config(Settings(**BASE, refresh_interval=variable))
    assert config.cache_ttl == pytest.approx(cache)
    assert Settings(**BASE, refresh_interval=variable).freshness.interval == interval


def test_the_old_cache_ttl_variable_is_retired_not_a_second_knob() -> None:
    assert "directory_cache_ttl" not in Settings.model_fields
    assert unknown_variables({"ENTRA_RBAC_DIRECTORY_CACHE_TTL": "1h"}) == []  # named as retired instead
    assert "ENTRA_RBAC_REFRESH_INTERVAL" in RETIRED_VARIABLES["ENTRA_RBAC_DIRECTORY_CACHE_TTL"]


@settings(max_examples=30, deadline=None)
@given(interval=st.floats(min_value=1.0, max_value=600.0, allow_nan=False), seed=st.integers(0, 2**32 - 1))
def test_no_resource_ever_shows_a_directory_older_than_the_interval(interval: float, seed: int) -> None:
    asyncio.run(_simulate(interval, random.Random(seed)))


async def _simulate(interval: float, rng: random.Random) -> None:
    fresh = Freshness.of(interval)
    now = [0.0]

    async def read_at(keys: list[str]) -> dict[str, float]:
        return dict.fromkeys(keys, now[0])  # the "directory" answers with the moment it was read

    cache: SingleFlightCache[str, float] = SingleFlightCache(
        fresh.cache_lifetime, read_at, clock=lambda: now[0]
    )
    shown: dict[str, float] = {}  # resource uid -> read time of the directory it last showed
    worst = [0.0]

    async def reconcile(entry: triggers.ResourceEntry, _ctx: Any) -> Outcome:
        values, _ = await cache.get_many(["group"])
        shown[entry.uid] = values["group"]
        return Outcome("Reconciled")

    import entra_rbac.triggers.refresher as refresher_module

    original = refresher_module.reconcile_entry
    refresher_module.reconcile_entry = reconcile  # type: ignore[assignment]
    try:
        refresher = triggers.Refresher(kube=None, ctx=None, freshness=fresh)  # type: ignore[arg-type]
        bodies = [{"metadata": {"name": f"r{i}", "uid": f"uid-{rng.random()}"}} for i in range(5)]
        entries = [triggers.resource_entry(b) for b in bodies]
        for entry in entries:  # created: each reconciled once at once
            await reconcile(entry, None)
        phase = rng.random() * fresh.tick
        steps = int(3 * interval / fresh.tick)
        for step in range(steps):
            now[0] = phase + step * fresh.tick
            if rng.random() < 0.3:  # a namespace event or a spec change reads the cache too
                await reconcile(rng.choice(entries), None)
            refresher._schedule(bodies, now[0])
            await asyncio.gather(*refresher._running.values())
            # Just before the next tick: the oldest directory any resource shows.
            before_next = now[0] + fresh.tick * (1 - 1e-9)
            worst[0] = max(worst[0], *(before_next - read for read in shown.values()))
    finally:
        refresher_module.reconcile_entry = original
    assert worst[0] <= interval * (1 + 1e-9), (worst[0], fresh)
