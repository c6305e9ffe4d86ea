"""Efficiency, by request counts: bulk ids, batched names, single-flight, one cache."""

from __future__ import annotations

import asyncio

import pytest

from entra_rbac.adapters.directory import EntraDirectory
from entra_rbac.core.entra import GroupLookup
from entra_rbac.core.models import GroupRef, GroupState
from tests.integration.directory.conftest import GraphSandbox, Recorder, Tenant

pytestmark = pytest.mark.timeout(60)


async def test_pinned_ids_are_verified_one_call_per_thousand(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ids = [tenant.group(f"Group {n:04d}") for n in range(2500)]
    graph.write(tenant)
    lookups = [GroupLookup(GroupRef(display_name=f"Group {n:04d}"), pinned_id=i) for n, i in enumerate(ids)]
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        resolutions = await directory.lookup_groups(lookups)
    assert [r.group.id if r.group else None for r in resolutions] == ids
    assert metrics.total_requests() == 3
    assert metrics.total_requests("getByIds") == 3


async def test_name_references_go_in_batches_of_twenty(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ids = [tenant.group(f"Team {n:02d}") for n in range(45)]
    graph.write(tenant)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        resolutions = await directory.lookup_groups(
            [GroupLookup(GroupRef(display_name=f"Team {n:02d}")) for n in range(45)]
        )
    assert [r.group.id if r.group else None for r in resolutions] == ids
    assert metrics.total_requests() == 3  # 20 + 20 + 5
    assert metrics.total_requests("batch") == 3


async def test_concurrent_lookups_of_one_group_make_one_request(graph: GraphSandbox) -> None:
    tenant = Tenant()
    group_id = tenant.group("Shared")
    graph.write(tenant)
    # Hold the first answer back so every caller overlaps with the read in flight.
    graph.fault(r"/directoryObjects/getByIds", method="POST", status=0, delay_ms=300, count=1)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        lookup = [GroupLookup(GroupRef(id=group_id))]
        results = await asyncio.gather(*(directory.lookup_groups(lookup) for _ in range(10)))
        members = await asyncio.gather(*(directory.transitive_members(group_id) for _ in range(10)))
    assert all(r[0].state is GroupState.RESOLVED for r in results)
    assert all(m == () for m in members)
    assert all(m is members[0] for m in members)  # one frozen tuple shared, never a copy each
    assert metrics.total_requests("getByIds") == 1
    assert metrics.total_requests("transitiveMembers") == 1
    assert metrics.cache[("id", False)] == 1
    assert metrics.cache[("id", True)] == 9


async def test_concurrent_reconciles_share_one_bulk_read(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ids = [tenant.group(f"Team {n}") for n in range(30)]
    graph.write(tenant)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        # 30 resources, each verifying its own pinned id and looking up one name, at once.
        by_id = [directory.lookup_groups([GroupLookup(GroupRef(id=group_id))]) for group_id in ids]
        by_name = [
            directory.lookup_groups([GroupLookup(GroupRef(display_name=f"Team {n}"))]) for n in range(30)
        ]
        results = await asyncio.gather(*by_id, *by_name)
    assert all(r[0].state is GroupState.RESOLVED for r in results)
    assert metrics.total_requests("getByIds") == 1
    assert metrics.total_requests("batch") == 2  # 30 names: 20 + 10


async def test_second_resolution_within_lifetime_makes_no_call(graph: GraphSandbox) -> None:
    tenant = Tenant()
    tenant.group("Cached")
    graph.write(tenant)
    metrics = Recorder()
    async with EntraDirectory(graph.config(cache_ttl=60), metrics=metrics) as directory:
        lookup = [GroupLookup(GroupRef(display_name="Cached"))]
        first = await directory.lookup_groups(lookup)
        calls = metrics.total_requests()
        second = await directory.lookup_groups(lookup)
    assert first == second
    assert calls == 1
    assert metrics.total_requests() == 1


async def test_answers_expire_after_the_lifetime(graph: GraphSandbox) -> None:
    tenant = Tenant()
    tenant.group("Cached")
    graph.write(tenant)
    now = [0.0]
    metrics = Recorder()
    async with EntraDirectory(graph.config(cache_ttl=60), metrics=metrics, clock=lambda: now[0]) as directory:
        lookup = [GroupLookup(GroupRef(display_name="Cached"))]
        await directory.lookup_groups(lookup)
        now[0] = 61.0
        await directory.lookup_groups(lookup)
    assert metrics.total_requests("batch") == 2
