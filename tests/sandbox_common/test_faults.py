"""The shared fault injector over real HTTP: faults by count, delay, drop, Retry-After, counts, log."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from entra_rbac_sandbox.common import tls
from entra_rbac_sandbox.common.faults import Fault, FaultInjector, FaultSpecError


def _body(status: int, retry_after: int | None) -> Mapping[str, Any]:
    return {"kind": "TestError", "status": status, "retryAfter": retry_after}


async def _hello(_: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, FaultInjector, aiohttp.ClientSession]]:
    ca = tls.generate(tmp_path / "pki")
    injector = FaultInjector(error_body=_body)
    app = web.Application(middlewares=[injector.middleware])
    app.router.add_route("*", "/{tail:.*}", _hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ca.server_context())
    await site.start()
    port = runner.addresses[0][1]
    connector = aiohttp.TCPConnector(ssl=ca.client_ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield f"https://127.0.0.1:{port}", injector, session
    await runner.cleanup()


async def test_fault_fails_count_matching_requests_then_is_gone(served: Any) -> None:
    url, injector, session = served
    async with session.post(
        f"{url}/_sandbox/faults", json={"method": "GET", "path": "^/a$", "status": 503, "count": 2}
    ) as created:
        assert created.status == 201
    statuses = []
    for path in ("/a", "/b", "/a", "/a"):
        async with session.get(url + path) as response:
            statuses.append(response.status)
            body = await response.json()
    assert statuses == [503, 200, 503, 200]
    assert body == {"hello": "world"}
    assert injector.active() == []


async def test_injected_error_uses_the_servers_body_and_retry_after(served: Any) -> None:
    url, _, session = served
    await session.post(f"{url}/_sandbox/faults", json={"path": "/x", "status": 429, "retryAfter": 1.5})
    async with session.post(f"{url}/x") as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1.5"
        assert await response.json() == {"kind": "TestError", "status": 429, "retryAfter": 2}


async def test_delay_only_fault_serves_after_the_delay(served: Any) -> None:
    url, _, session = served
    await session.post(f"{url}/_sandbox/faults", json={"path": "/slow", "delayMs": 300})
    started = time.monotonic()
    async with session.get(f"{url}/slow") as response:
        assert response.status == 200
    assert time.monotonic() - started >= 0.29


async def test_drop_closes_the_connection_without_an_answer(served: Any) -> None:
    url, _, session = served
    # count -1: aiohttp's client itself retries a GET once on a reused connection that was closed.
    await session.post(f"{url}/_sandbox/faults", json={"path": "/gone", "drop": True, "count": -1})
    with pytest.raises(aiohttp.ClientError):
        async with session.get(f"{url}/gone") as response:
            await response.read()
    await session.delete(f"{url}/_sandbox/faults")
    async with session.get(f"{url}/gone") as response:
        assert response.status == 200


async def test_delete_clears_faults(served: Any) -> None:
    url, injector, session = served
    injector.add_fault("/y", status=500, count=-1)
    async with session.delete(f"{url}/_sandbox/faults") as response:
        assert (await response.json()) == {"faults": []}
    async with session.get(f"{url}/y") as response:
        assert response.status == 200


async def test_requests_are_counted_and_logged_with_arrival_times(served: Any) -> None:
    url, injector, session = served
    before = time.time()
    for path in ("/a", "/a", "/b?q=1"):
        async with session.get(url + path):
            pass
    async with session.get(f"{url}/_sandbox/requests", params={"log": "true"}) as response:
        answer = await response.json()
    assert answer["counts"] == {"GET /a": 2, "GET /b": 1}
    assert answer["total"] == 3
    assert [entry["query"] for entry in answer["log"]] == ["", "", "q=1"]
    assert all(before <= entry["time"] <= time.time() for entry in answer["log"])
    assert injector.count("GET", "^/a$") == 2
    async with session.delete(f"{url}/_sandbox/requests"):
        pass
    assert injector.counts() == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "path"),
        ({"path": "("}, "path"),
        ({"path": "/a", "status": "503"}, "status"),
        ({"path": "/a", "status": 700}, "status"),
        ({"path": "/a", "count": 0}, "count"),
        ({"path": "/a", "retryAfter": -1}, "retryAfter"),
        ({"path": "/a", "delayMs": 1.5}, "delayMs"),
        ({"path": "/a", "method": "G E T"}, "method"),
        ({"path": "/a", "drop": "yes"}, "drop"),
        ({"path": "/a", "stauts": 500}, "stauts"),
        ([], "body"),
    ],
)
def test_bad_fault_is_refused_naming_the_field(body: Any, field: str) -> None:
    with pytest.raises(FaultSpecError, match=f"^{field}: "):
        Fault.from_json(body)


async def test_bad_fault_over_http_is_a_400_naming_the_field(served: Any) -> None:
    url, _, session = served
    async with session.post(f"{url}/_sandbox/faults", json={"path": "/a", "count": "x"}) as response:
        assert response.status == 400
        assert (await response.json())["error"].startswith("count: ")


async def test_other_sandbox_routes_reach_the_server_and_are_not_counted(served: Any) -> None:
    url, injector, session = served
    injector.add_fault("/_sandbox/", status=500, count=-1)  # never applies to /_sandbox/ itself
    async with session.get(f"{url}/_sandbox/watches") as response:
        assert response.status == 200
        assert await response.json() == {"hello": "world"}
    assert injector.counts() == {}


def test_take_consumes_counts_and_minus_one_lasts_until_cleared() -> None:
    injector = FaultInjector(error_body=_body)
    injector.add_fault("^/once$", method="get", status=503)
    injector.add_fault("^/always$", status=500, count=-1)
    assert injector.take("POST", "/once") is None  # method must match
    taken = injector.take("GET", "/once")
    assert taken is not None
    assert taken.status == 503
    assert injector.take("GET", "/once") is None
    assert all(injector.take("PUT", "/always") is not None for _ in range(5))
    assert [f.path.pattern for f in injector.active()] == ["^/always$"]
    injector.clear()
    assert injector.take("PUT", "/always") is None
