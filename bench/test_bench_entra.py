"""Benchmarks of the sandbox Entra directory (run by `make bench`, never by `make test`).

Prints: the time to load a 20,000-user tenant, reading one 20,000-member group through
`transitiveMembers` with `$top=999`, getByIds calls of 1,000 ids per second, and `$batch`
calls of 20 name lookups per second. The server runs in its own thread; the load comes from
aiohttp on the main thread.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.table import Table
from entra_rbac_sandbox.entra.server import EntraSandboxThread

pytestmark = pytest.mark.bench
USERS = 20_000
GROUPS = 2_000


def _guid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def _tenant() -> dict[str, Any]:
    users = [{"id": _guid(f"u{i}"), "userPrincipalName": f"u{i}@contoso.com"} for i in range(USERS)]
    groups = [{"id": _guid(f"g{i}"), "displayName": f"team {i}", "members": []} for i in range(GROUPS)]
    groups[0]["members"] = [u["id"] for u in users]
    return {"users": users, "groups": groups}


@pytest.fixture
async def entra(tmp_path: Path) -> AsyncIterator[tuple[EntraSandboxThread, aiohttp.ClientSession]]:
    directory = tmp_path / "directory.yaml"
    directory.write_text("{}\n", encoding="utf-8")
    with EntraSandboxThread(directory, state_dir=tmp_path / "entra") as server:
        server.write_directory(_tenant())
        headers = {"Authorization": f"Bearer {server.issue_token()}"}
        connector = aiohttp.TCPConnector(ssl=server.ca.client_ssl_context())
        async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
            started = time.perf_counter()
            async with http.get(f"{server.graph_url}/groups/{_guid('g0')}") as response:
                assert response.status == 200
            table = Table("bench entra", "sandbox directory")
            table.add(f"load {USERS} users, {GROUPS} groups", f"{time.perf_counter() - started:.2f} s")
            table.print()
            yield server, http


async def test_bench_transitive_members_of_a_large_group(
    entra: tuple[EntraSandboxThread, aiohttp.ClientSession],
) -> None:
    server, http = entra
    url: str | None = f"{server.graph_url}/groups/{_guid('g0')}/transitiveMembers?$top=999"
    count = pages = 0
    started = time.perf_counter()
    while url:
        async with http.get(url) as response:
            body = await response.json()
        count += len(body["value"])
        pages += 1
        url = body.get("@odata.nextLink")
    elapsed = time.perf_counter() - started
    assert count == USERS
    table = Table("bench entra", "sandbox directory")
    table.add(f"transitiveMembers, {count} members", f"{elapsed:.2f} s ({pages} pages)")
    table.print()


async def test_bench_get_by_ids_and_batches_per_second(
    entra: tuple[EntraSandboxThread, aiohttp.ClientSession],
) -> None:
    server, http = entra
    ids = [_guid(f"g{i}") for i in range(1000)]
    calls = 50
    started = time.perf_counter()
    for _ in range(calls):
        async with http.post(f"{server.graph_url}/directoryObjects/getByIds", json={"ids": ids}) as response:
            assert len((await response.json())["value"]) == 1000
    get_by_ids = calls / (time.perf_counter() - started)
    requests = [
        {"id": str(i), "method": "GET", "url": f"/groups?$filter=displayName eq 'team {i}'"}
        for i in range(20)
    ]
    started = time.perf_counter()

    async def one() -> None:
        async with http.post(f"{server.graph_url}/$batch", json={"requests": requests}) as response:
            assert {item["status"] for item in (await response.json())["responses"]} == {200}

    await asyncio.gather(*(one() for _ in range(calls)))
    batches = calls / (time.perf_counter() - started)
    table = Table("bench entra", "sandbox directory")
    table.add("getByIds (1,000 ids)", f"{get_by_ids:.1f} calls/s")
    table.add(f"$batch (20 name lookups over {GROUPS} groups)", f"{batches:.1f} calls/s")
    table.print()
