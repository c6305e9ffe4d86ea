"""Benchmark (make bench): the sandbox API server lists and watches at 20,000 without quadratic work.

Issue 17 point 1: at 20,000 RoleBindings (20 namespaces, the operator's shape: a label, an
ownerReference) the cost per object of a list, of a paginated list (limit 500, as clients page),
of a label-selected list and of a watch replaying history stays within 1.5x of its cost at 1,000,
and the latency of one new event to an open watch does not grow with what is stored. Each size
runs on a fresh sandbox API server (plain HTTP, in its own thread, as in the tests); the objects
are created over HTTP, 16 in flight, untimed. Prints figures only.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import aiohttp
import pytest

from bench.table import Table, not_run
from entra_rbac_sandbox.kube.server import ApiServerThread

pytestmark = pytest.mark.bench
SIZES = (1_000, 20_000)
NAMESPACES = 20
PAGE = 500
TARGET = 1.5  # cost per object at 20,000 / at 1,000
RBAC = "/apis/rbac.authorization.k8s.io/v1"
FIGURES: dict[int, dict[str, float]] = {}


@pytest.fixture(scope="module", autouse=True)
def table(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    small, large = FIGURES.get(SIZES[0], {}), FIGURES.get(SIZES[1], {})
    table = Table("bench sandbox scale", f"RoleBindings in {NAMESPACES} namespaces; ms per 1,000 objects")
    for figure in dict.fromkeys([*small, *large]):
        a, b = small.get(figure), large.get(figure)
        ratio = b / a if a and b else None
        latency = figure.startswith("event latency")
        target = "flat (<= 1.5x)" if latency else f"<= {TARGET}x of 1,000"
        table.add(
            f"{figure} at 20,000",
            f"{b:.1f}" + (f" ({ratio:.2f}x)" if ratio else "")
            if b is not None
            else not_run(request, count=SIZES[1]),
            target=target,
            baseline=f"at 1,000: {a:.1f}"
            if a is not None
            else f"at 1,000: {not_run(request, count=SIZES[0])}",
            ok=None if ratio is None else ratio <= TARGET,
        )
    table.print()


async def _populate(http: aiohttp.ClientSession, count: int) -> None:
    owners: dict[str, str] = {}
    for i in range(NAMESPACES):
        namespace = f"ns-{i}"
        async with http.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}) as response:
            assert response.status == 201, await response.text()
        async with http.post(
            f"/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {"name": "owner"}}
        ) as response:
            owners[namespace] = (await response.json())["metadata"]["uid"]
    semaphore = asyncio.Semaphore(16)

    async def create(i: int) -> None:
        namespace = f"ns-{i % NAMESPACES}"
        owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owners[namespace]}
        labels = {"app.kubernetes.io/managed-by": "bench", "shard": str(i % 20)}
        body = {
            "metadata": {"name": f"rb-{i}", "labels": labels, "ownerReferences": [owner]},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": f"g-{i}"}],
        }
        async with semaphore, http.post(f"{RBAC}/namespaces/{namespace}/rolebindings", json=body) as response:
            assert response.status == 201, await response.text()

    await asyncio.gather(*(create(i) for i in range(count)))


async def _timed(run: Callable[[], Coroutine[Any, Any, int]], repeat: int = 3) -> tuple[float, int]:
    """The best of `repeat` runs (the machine is shared): seconds, and what the run counted."""
    best, counted = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        counted = await run()
        best = min(best, time.perf_counter() - started)
    return best, counted


async def _list(http: aiohttp.ClientSession, params: dict[str, str]) -> int:
    found, token = 0, ""
    while True:
        query = {**params, **({"continue": token} if token else {})}
        async with http.get(f"{RBAC}/rolebindings", params=query) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        found += len(page["items"])
        token = page["metadata"].get("continue", "")
        if not token:
            return found


async def _replay(http: aiohttp.ClientSession, since: str, expected: int) -> int:
    """A watch from `since` until it has delivered `expected` events."""
    params = {"watch": "1", "resourceVersion": since}
    seen = 0
    async with http.get(
        f"{RBAC}/rolebindings", params=params, timeout=aiohttp.ClientTimeout(total=None)
    ) as r:
        async for line in r.content:
            if json.loads(line)["type"] != "BOOKMARK":
                seen += 1
            if seen == expected:
                return seen
    return seen


async def _latency(http: aiohttp.ClientSession, writes: int = 20) -> float:
    """The median seconds from a create's answer to its event on an already open watch."""
    async with http.get(f"{RBAC}/rolebindings", params={"limit": "1"}) as response:
        now = (await response.json())["metadata"]["resourceVersion"]
    delays: list[float] = []
    params = {"watch": "1", "resourceVersion": now}
    async with http.get(
        f"{RBAC}/rolebindings", params=params, timeout=aiohttp.ClientTimeout(total=None)
    ) as r:
        for i in range(writes):
            body = {
                "metadata": {"name": f"late-{i}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            }
            started = time.perf_counter()
            async with http.post(f"{RBAC}/namespaces/ns-0/rolebindings", json=body) as response:
                assert response.status == 201, await response.text()
            line = await asyncio.wait_for(r.content.readline(), timeout=30)
            assert json.loads(line)["object"]["metadata"]["name"] == f"late-{i}"
            delays.append(time.perf_counter() - started)
    return statistics.median(delays)


@pytest.mark.parametrize("count", SIZES)
async def test_bench_sandbox_list_and_watch(count: int) -> None:
    with ApiServerThread(tls=False, history_size=50_000) as server:
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        async with aiohttp.ClientSession(
            server.url, headers=headers, connector=aiohttp.TCPConnector(limit=0), read_bufsize=1 << 22
        ) as http:
            first = str(server.call(lambda s: s.cluster.store.rv))
            await _populate(http, count)
            per_thousand = 1000 / count
            figures: dict[str, float] = {}
            seconds, listed = await _timed(lambda: _list(http, {}))
            assert listed == count
            figures["list, one page"] = seconds * 1000 * per_thousand
            seconds, listed = await _timed(lambda: _list(http, {"limit": str(PAGE)}))
            assert listed == count
            figures[f"list, pages of {PAGE}"] = seconds * 1000 * per_thousand
            seconds, listed = await _timed(lambda: _list(http, {"labelSelector": "shard=3"}))
            assert listed == count // 20
            figures["list, label selector (1 in 20)"] = seconds * 1000 * per_thousand
            # Everything since the start: the namespaces' owners are ConfigMaps, so only bindings.
            seconds, seen = await _timed(lambda: _replay(http, first, count), repeat=1)
            assert seen == count
            figures["watch replaying history"] = seconds * 1000 * per_thousand
            figures["event latency to a watch (ms, median)"] = 1000 * await _latency(http)
    FIGURES[count] = figures
    print(f"\nBENCH sandbox scale {count}: {figures}")
