"""Benchmarks of the directory adapter against the sandbox Entra directory (`make bench` only).

Prints: the time to read a 50,000-member group (51 pages of 999), to verify 10,000 pinned ids
(10 getByIds calls) and to resolve 200 names (10 `$batch` calls), each through msgraph-sdk
over HTTPS, with the request counts that prove the batching. The sandbox runs in its own thread.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.entra import directory_config, directory_serving
from bench.table import Table
from entra_rbac.adapters.directory import CountingMetrics, EntraDirectory
from entra_rbac.core.entra import GroupLookup
from entra_rbac.core.models import GroupRef, GroupState
from entra_rbac_sandbox.entra.server import EntraSandboxThread

pytestmark = pytest.mark.bench


def _id(n: int, kind: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{kind}-{n}"))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[EntraSandboxThread]:
    users = [{"id": _id(n, "user"), "userPrincipalName": f"user{n}@contoso.com"} for n in range(50_000)]
    groups = [
        {
            "id": _id(0, "big"),
            "displayName": "Everyone",
            "mailNickname": "everyone",
            "members": [u["id"] for u in users],
        }
    ]
    groups += [
        {"id": _id(n, "group"), "displayName": f"Group {n:05d}", "mailNickname": f"g{n}"}
        for n in range(10_000)
    ]
    with directory_serving(tmp_path, {"users": users, "groups": groups}) as server:
        yield server


async def test_bench_directory_reads(sandbox: EntraSandboxThread) -> None:
    metrics = CountingMetrics()
    async with EntraDirectory(directory_config(sandbox), metrics=metrics) as directory:
        # Warm the token and the sandbox's parse of the directory file, so figures are the reads.
        await directory.lookup_groups([GroupLookup(GroupRef(id=_id(0, "group")))])
        directory.invalidate()

        started = time.perf_counter()
        members = await directory.transitive_members(_id(0, "big"))
        members_s = time.perf_counter() - started
        assert len(members) == 50_000

        lookups = [
            GroupLookup(GroupRef(display_name=f"Group {n:05d}"), pinned_id=_id(n, "group"))
            for n in range(10_000)
        ]
        started = time.perf_counter()
        resolved = await directory.lookup_groups(lookups)
        ids_s = time.perf_counter() - started
        assert all(r.state is GroupState.RESOLVED for r in resolved)

        names = [GroupLookup(GroupRef(display_name=f"Group {n:05d}")) for n in range(200)]
        started = time.perf_counter()
        by_name = await directory.lookup_groups(names)
        names_s = time.perf_counter() - started
        assert all(r.state is GroupState.RESOLVED for r in by_name)

    requests = dict(metrics.requests)
    table = Table("bench directory", "reads through msgraph-sdk against the sandbox directory")
    pages = requests.get(("transitiveMembers", "success"), 0)
    table.add(
        "50,000 members", f"{members_s:.2f} s ({pages} pages)", target="51 pages ($top=999)", ok=pages <= 51
    )
    calls = requests.get(("getByIds", "success"), 0) - 1
    table.add("10,000 pinned ids", f"{ids_s:.2f} s ({calls} getByIds)", target="10 calls", ok=calls <= 10)
    batches = requests.get(("batch", "success"), 0)
    table.add("200 names", f"{names_s:.2f} s ({batches} $batch)", target="10 calls", ok=batches <= 10)
    table.print()
