"""A refresh's directory reads at the floor: one bulk prefetch, then every reconcile from the cache.

`reconciler.prefetch_directory` is given the resources a refresh is about to reconcile (as
listed, status pins included); the reconciles' own reads (`read_directory`, as the reconcile
makes them, spread out in time) must then cost no request. Counted at the sandbox directory over
real HTTPS through msgraph-sdk. A failed prefetch decides nothing: the reconciles read again and
fail-static (or succeed) on their own; an absent id is still confirmed by its own read.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from entra_rbac.adapters.directory import EntraDirectory
from entra_rbac.core.models import GroupRef, GroupState, SubjectKind
from entra_rbac.reconciler import prefetch_directory
from entra_rbac.reconciler.resolve import DirectoryOutcome, read_directory
from tests.integration.directory.conftest import GraphSandbox, Recorder, Tenant, guid

pytestmark = pytest.mark.timeout(60)


def _resource(
    groups: list[dict[str, str]], *, user_mode: bool = False, pins: dict[str, str] | None = None
) -> Any:
    spec: dict[str, Any] = {"groups": groups, "clusterRoleBindings": [{"clusterRole": "view"}]}
    if user_mode:
        spec["subjects"] = {"kind": "User"}
    status = {"groups": [{"ref": ref, "id": gid} for ref, gid in (pins or {}).items()]}
    return {"metadata": {"name": "r", "uid": "u"}, "spec": spec, "status": status}


async def _reconcile_reads(directory: EntraDirectory, bodies: list[Any]) -> list[DirectoryOutcome]:
    """Each resource's directory phase, as its reconcile runs it, a few at a time and spread out."""

    async def one(index: int, body: Any) -> DirectoryOutcome:
        await asyncio.sleep(0.002 * (index % 25))  # later than any coalescing window
        spec = body["spec"]
        groups = [GroupRef.model_validate(g) for g in spec["groups"]]
        mode = SubjectKind.USER if spec.get("subjects") else SubjectKind.GROUP
        return await read_directory(directory, groups, body["status"], mode)

    return list(await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies))))


async def test_a_refresh_reads_each_distinct_group_once_in_bulk(graph: GraphSandbox) -> None:
    tenant = Tenant()
    users = [tenant.user(f"user{n}@contoso.com") for n in range(30)]
    ids = [tenant.group(f"Team {n:03d}", members=users[n % 3 :: 3]) for n in range(120)]
    graph.write(tenant)
    # 240 resources: each names one group by id and one by name; every 10th pinned its name
    # already; every 20th is in user mode. Groups are shared between resources.
    bodies = []
    for n in range(240):
        by_name = f"Team {(n + 7) % 120:03d}"
        pins = {f"displayName={by_name}": ids[(n + 7) % 120]} if n % 10 == 0 else None
        groups = [{"id": ids[n % 120]}, {"displayName": by_name}]
        bodies.append(_resource(groups, user_mode=n % 20 == 0, pins=pins))
    names = {f"Team {(n + 7) % 120:03d}" for n in range(240) if n % 10 != 0}
    member_groups = {gid for n in range(0, 240, 20) for gid in (ids[n % 120], ids[(n + 7) % 120])}
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        await prefetch_directory(directory, bodies)
        prefetched = metrics.total_requests()
        reads = await _reconcile_reads(directory, bodies)
    assert all(r.error is None for r in reads)
    assert all(s.state is GroupState.RESOLVED for r in reads for s in r.resolutions or [])
    assert all(len(r.members) == 2 for r, b in zip(reads, bodies, strict=True) if b["spec"].get("subjects"))
    # The floor: ceil(ids/1000) getByIds + ceil(names/20) $batch + one page per member list.
    floor = 1 + math.ceil(len(names) / 20) + len(member_groups)
    assert (metrics.total_requests("getByIds"), metrics.total_requests("batch")) == (
        1,
        math.ceil(len(names) / 20),
    )
    assert prefetched == metrics.total_requests() == floor  # the reconciles sent nothing


async def test_a_failed_prefetch_decides_nothing_and_the_reconciles_fail_static(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ids = [tenant.group(f"Team {n}") for n in range(5)]
    graph.write(tenant)
    bodies = [_resource([{"id": gid}]) for gid in ids]
    # Every getByIds fails with 503 until cleared: the prefetch's read and its retries.
    graph.fault(r"/directoryObjects/getByIds", method="POST", status=503, count=1000)
    metrics = Recorder()
    async with EntraDirectory(graph.config(max_retries=1, max_retry_wait=1.0), metrics=metrics) as directory:
        await prefetch_directory(directory, bodies)  # never raises: it only warms the cache
        failing = await _reconcile_reads(directory, bodies)
    assert all(r.error is not None and r.resolutions is None for r in failing)
    assert {r.error.reason for r in failing if r.error} == {"DirectoryUnavailable"}


async def test_an_id_the_bulk_read_leaves_out_is_confirmed_by_its_own_read(graph: GraphSandbox) -> None:
    tenant = Tenant()
    present = tenant.group("Present")
    graph.write(tenant)
    gone = guid("never-existed")
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        await prefetch_directory(directory, [_resource([{"id": present}]), _resource([{"id": gone}])])
        reads = await _reconcile_reads(directory, [_resource([{"id": gone}, {"id": present}])])
    states = [s.state for s in reads[0].resolutions or []]
    assert states == [GroupState.NOT_FOUND, GroupState.RESOLVED]
    # One getByIds for both, then the absent id's own GET (inside a $batch) answered 404.
    assert (metrics.total_requests("getByIds"), metrics.total_requests("batch")) == (1, 1)
    assert len(graph.request_times("GET", rf"/groups/{gone}$")) == 1
