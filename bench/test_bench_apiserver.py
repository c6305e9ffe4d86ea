"""Benchmarks of the sandbox API server (run by `make bench`, never by `make test`).

Prints: creates per second, the time to list 10,000 objects with a label selector, and the
latency of one write's event to 50 concurrent watches (p50/p99). The server runs in its own
thread (as in the tests); the load comes from aiohttp on the main thread.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bench.table import Table
from entra_rbac_sandbox.kube.server import ApiServerThread

pytestmark = pytest.mark.bench
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def session() -> AsyncIterator[tuple[ApiServerThread, aiohttp.ClientSession]]:
    with ApiServerThread(tls=False, history_size=50_000) as server:
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        connector = aiohttp.TCPConnector(limit=0)  # 50 watches hold 50 connections
        async with aiohttp.ClientSession(server.url, headers=headers, connector=connector) as http:
            yield server, http


async def _create_many(http: aiohttp.ClientSession, count: int, labels: dict[str, str] | None = None) -> None:
    semaphore = asyncio.Semaphore(16)

    async def create(i: int) -> None:
        body = {"metadata": {"name": f"cm-{i}", "labels": labels or {"i": str(i % 2)}}, "data": {"k": "v"}}
        async with semaphore, http.post(CONFIGMAPS, json=body) as response:
            assert response.status == 201, await response.text()

    await asyncio.gather(*(create(i) for i in range(count)))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def test_bench_creates_per_second(session: tuple[ApiServerThread, aiohttp.ClientSession]) -> None:
    _, http = session
    count = 3000
    started = time.perf_counter()
    await _create_many(http, count)
    elapsed = time.perf_counter() - started
    table = Table("bench apiserver", "sandbox API server, ConfigMap creates, 16 in flight")
    table.add(f"{count} creates", f"{count / elapsed:.0f}/s ({elapsed:.2f} s)")
    table.print()


async def test_bench_list_10000_with_label_selector(
    session: tuple[ApiServerThread, aiohttp.ClientSession],
) -> None:
    _, http = session
    await _create_many(http, 10_000)
    started = time.perf_counter()
    async with http.get(CONFIGMAPS, params={"labelSelector": "i in (1)"}) as response:
        items = (await response.json())["items"]
    elapsed = time.perf_counter() - started
    assert len(items) == 5000
    table = Table("bench apiserver", "sandbox API server, one list")
    table.add("list of 10,000 with a label selector", f"{elapsed:.3f} s ({len(items)} matched)")
    table.print()


async def test_bench_event_latency_to_50_watches(
    session: tuple[ApiServerThread, aiohttp.ClientSession],
) -> None:
    server, http = session
    watchers, writes = 50, 100
    latencies: list[float] = []
    sent: dict[str, float] = {}

    async def watch() -> None:
        params = {"watch": "true", "resourceVersion": "1", "timeoutSeconds": "120"}
        seen = 0
        async with http.get(CONFIGMAPS, params=params, timeout=aiohttp.ClientTimeout(total=None)) as response:
            async for line in response.content:
                event = json.loads(line)
                latencies.append(time.perf_counter() - sent[event["object"]["metadata"]["name"]])
                seen += 1
                if seen == writes:
                    return

    tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
    deadline = time.monotonic() + 30
    while server.call(lambda s: s.cluster.store.open_watch_count()) < watchers:
        assert time.monotonic() < deadline, "watches did not open"
        await asyncio.sleep(0.01)
    for i in range(writes):
        name = f"lat-{i}"
        sent[name] = time.perf_counter()
        async with http.post(CONFIGMAPS, json={"metadata": {"name": name}}) as response:
            assert response.status == 201
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    ms = [x * 1000 for x in latencies]
    table = Table(
        "bench apiserver", f"event latency to {watchers} watches, {writes} writes, {len(ms)} deliveries"
    )
    table.add("p50", f"{statistics.median(ms):.1f} ms")
    table.add("p99", f"{_percentile(ms, 0.99):.1f} ms")
    table.print()
