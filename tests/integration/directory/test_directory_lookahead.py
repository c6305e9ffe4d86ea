"""The look-ahead: a burst of new resources converging costs Graph lookups at the floor (issue 17
point 4), against the sandbox Graph over real HTTPS through msgraph-sdk.

Resources arrive at the watch (`EntraDirectory.expect`, as `triggers.watching` calls it) faster
than they are reconciled; their reconciles then read one after another, each on its own, as kopf
hands them over. Each read sent anyway takes the expected keys along (all the ids a getByIds
takes, 19 more names in a `$batch`), so the later reconciles find theirs fresh. Counted at the
directory (outer requests), not timed. A failed read taken along decides nothing for the
reconciles that did not ask for it: they read again on their own; a failed item is its own.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from entra_rbac.adapters.directory import EntraDirectory
from entra_rbac.core.models import GroupRef, GroupState, SubjectKind
from entra_rbac.reconciler import expected_lookups, prefetch_directory
from entra_rbac.reconciler.resolve import DirectoryOutcome, read_directory
from tests.integration.directory.conftest import GraphSandbox, Recorder, Tenant
from tests.sandbox_kube.helpers import eventually

pytestmark = pytest.mark.timeout(60)


def _resource(group: dict[str, str]) -> dict[str, Any]:
    spec = {"groups": [group], "clusterRoleBindings": [{"clusterRole": "view"}]}
    return {"metadata": {"name": "r", "uid": "u"}, "spec": spec, "status": {}}


async def _reconcile(directory: EntraDirectory, body: dict[str, Any]) -> DirectoryOutcome:
    """The resource's directory phase, as its reconcile runs it; then, as `triggers.running` does
    once kopf's reconcile ran, its lookups are no longer expected."""
    groups = [GroupRef.model_validate(g) for g in body["spec"]["groups"]]
    outcome = await read_directory(directory, groups, body["status"], SubjectKind.GROUP)
    directory.unexpect(expected_lookups(body))
    return outcome


class _Writes:
    """Reconciles still writing their bindings after their directory phase: each stays in
    progress until all `count` have read the directory (a condition, not a time)."""

    def __init__(self, count: int) -> None:
        self._left = count
        self._all_read = asyncio.Event()

    async def reconcile(self, directory: EntraDirectory, body: dict[str, Any]) -> DirectoryOutcome:
        groups = [GroupRef.model_validate(g) for g in body["spec"]["groups"]]
        outcome = await read_directory(directory, groups, body["status"], SubjectKind.GROUP)
        self._left -= 1
        if self._left == 0:
            self._all_read.set()
        await asyncio.wait_for(self._all_read.wait(), timeout=30)
        directory.unexpect(expected_lookups(body))
        return outcome


def _lookups(metrics: Recorder) -> tuple[int, int]:
    return metrics.total_requests("getByIds"), metrics.total_requests("batch")


def _groups_and_resources(graph: GraphSandbox, count: int) -> tuple[list[str], list[dict[str, Any]]]:
    """`count` groups in the directory, and a resource for each: even ones by id, odd ones by
    displayName."""
    tenant = Tenant()
    ids = [tenant.group(f"Team {n:03d}") for n in range(count)]
    graph.write(tenant)
    bodies = [
        _resource({"id": ids[n]} if n % 2 == 0 else {"displayName": f"Team {n:03d}"}) for n in range(count)
    ]
    return ids, bodies


async def test_a_burst_converging_one_by_one_costs_the_floor(graph: GraphSandbox) -> None:
    """120 resources (60 by id, 60 by displayName, alternating) arrive before any is reconciled;
    then each is reconciled alone, in order: ceil(60/1000) getByIds + ceil(60/20) $batch. Without
    the look-ahead the same reconciles cost one lookup each (120)."""
    ids, bodies = _groups_and_resources(graph, 120)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        for body in bodies:  # at the watch: nothing is sent for them yet
            directory.expect(expected_lookups(body))
        assert _lookups(metrics) == (0, 0)
        reads = [await _reconcile(directory, body) for body in bodies]
    resolved = [r.resolutions[0] for r in reads if r.resolutions]
    assert [r.state for r in resolved] == [GroupState.RESOLVED] * 120
    assert [r.group.id for r in resolved if r.group] == ids
    floor = (math.ceil(60 / 1000), math.ceil(60 / 20))
    assert _lookups(metrics) == floor  # no slack needed when they are reconciled in arrival order


async def test_resources_reconciled_as_they_arrive_wait_for_company(graph: GraphSandbox) -> None:
    """The operator keeping pace with a create burst (its start, or a burst it keeps up with):
    each resource is reconciled as it arrives, 50 ms after the one before, and is still writing its
    bindings after its directory read until every one has read (`_Writes`), so several are in
    progress at once (a resource alone, one
    created after the last was done, is not kept waiting: tests/unit/test_directory_cache.py).
    Each read but the first waits for the
    next arrivals (ARRIVAL_WINDOW past the latest, at most ARRIVAL_MAX_WINDOW), so 6 ids and 6 names
    cost about one getByIds and one `$batch` (at most 3 each, should the machine stall); without
    the wait each resource read its group alone: 6 and 6."""
    ids, bodies = _groups_and_resources(graph, 12)
    metrics = Recorder()
    writes = _Writes(len(bodies))
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        reconciles = []
        for body in bodies:
            directory.expect(expected_lookups(body))  # at the watch
            reconciles.append(asyncio.create_task(writes.reconcile(directory, body)))  # handed over
            await asyncio.sleep(0.05)
        reads = await asyncio.gather(*reconciles)
    resolved = [r.resolutions[0] for r in reads if r.resolutions]
    assert [r.group.id for r in resolved if r.group] == ids
    by_ids, batches = _lookups(metrics)
    assert by_ids <= 3, by_ids
    assert batches <= 3, batches


async def test_reconciles_out_of_arrival_order_cost_at_most_one_partial_batch_more(
    graph: GraphSandbox,
) -> None:
    """kopf hands resources over roughly, not exactly, in arrival order: here every pair is
    swapped and a late arrival (not expected: kopf's watch was first) comes in the middle."""
    tenant = Tenant()
    ids = [tenant.group(f"Team {n:03d}") for n in range(61)]
    graph.write(tenant)
    names = [_resource({"displayName": f"Team {n:03d}"}) for n in range(60)]
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        for body in names:
            directory.expect(expected_lookups(body))
        order = [names[n ^ 1] for n in range(60)]
        order.insert(30, _resource({"displayName": "Team 060"}))
        reads = [await _reconcile(directory, body) for body in order]
    assert all(r.resolutions and r.resolutions[0].group for r in reads)
    assert {r.resolutions[0].group.id for r in reads if r.resolutions and r.resolutions[0].group} == set(ids)
    # The floor for 61 names is 4; the late one's own $batch takes the next 19 along, so at most
    # the partial batch at the end is extra.
    assert metrics.total_requests("batch") <= math.ceil(61 / 20) + 1


async def test_a_failed_read_taken_along_lets_no_reconcile_decide_from_it(graph: GraphSandbox) -> None:
    """A's getByIds takes B's and C's ids along and fails (400, not retried): A is Unverified from
    its own read; B, which joined that read while it was out, and C read again on their own and are
    Resolved: nothing of the failed read was cached or decided on."""
    tenant = Tenant()
    a, b, c = (tenant.group(name) for name in ("A", "B", "C"))
    graph.write(tenant)
    graph.fault(r"/directoryObjects/getByIds", method="POST", status=400, count=1, delay_ms=300)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        directory.expect(expected_lookups(_resource({"id": b})))
        directory.expect(expected_lookups(_resource({"id": c})))
        first = await _gather_while_out(directory, graph, _resource({"id": a}), _resource({"id": b}))
        late = await _reconcile(directory, _resource({"id": c}))
    asker, joined = first
    assert asker.error is not None
    assert asker.error.reason == "DirectoryUnavailable"
    for outcome, group_id in ((joined, b), (late, c)):
        assert outcome.error is None
        assert outcome.resolutions
        assert outcome.resolutions[0].state is GroupState.RESOLVED
        assert outcome.resolutions[0].group
        assert outcome.resolutions[0].group.id == group_id
    bodies = graph.request_queries("POST", r"/directoryObjects/getByIds$")
    assert len(bodies) == metrics.total_requests("getByIds") == 2  # the failed one, then B's own (C along)


async def _gather_while_out(
    directory: EntraDirectory, graph: GraphSandbox, asker: dict[str, Any], joiner: dict[str, Any]
) -> tuple[DirectoryOutcome, DirectoryOutcome]:
    """The asker's reconcile sends its read; the joiner's starts once that read is at the sandbox."""
    first = asyncio.create_task(_reconcile(directory, asker))
    await asyncio.to_thread(
        eventually, lambda: graph.request_times("POST", r"/directoryObjects/getByIds$"), timeout=20
    )
    second = await _reconcile(directory, joiner)
    return await first, second


async def test_a_failed_item_of_a_batch_taken_along_is_that_items_alone(graph: GraphSandbox) -> None:
    """The first item of a `$batch` fails (400): the asker's own lookup fails; the 19 names taken
    along answered and are served from the cache, no request more."""
    tenant = Tenant()
    for n in range(20):
        tenant.group(f"Team {n:03d}")
    graph.write(tenant)
    bodies = [_resource({"displayName": f"Team {n:03d}"}) for n in range(20)]
    graph.fault(r"/groups$", method="GET", status=400, count=1)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        for body in bodies:
            directory.expect(expected_lookups(body))
        reads = [await _reconcile(directory, body) for body in bodies]
    assert reads[0].error is not None
    assert all(r.error is None and r.resolutions for r in reads[1:])
    assert metrics.total_requests("batch") == 1


async def test_a_batch_outlasting_the_cache_is_read_again_in_bulk_not_one_by_one(graph: GraphSandbox) -> None:
    """A refresh (or delta round) prefetches its batch, but under load its reconciles outlast the
    cache's answers: the first of them to miss takes the rest of the batch along (one getByIds),
    instead of each reading its group alone (one getByIds per resource, as measured in a
    200-resource create burst at load 9)."""
    tenant = Tenant()
    ids = [tenant.group(f"Team {n:03d}") for n in range(30)]
    graph.write(tenant)
    now = [0.0]
    metrics = Recorder()
    bodies = [_resource({"id": gid}) for gid in ids]
    async with EntraDirectory(graph.config(cache_ttl=6), metrics=metrics, clock=lambda: now[0]) as directory:
        await prefetch_directory(directory, bodies)
        now[0] = 7.0  # every answer expired before the batch's reconciles ran
        reads = [await read_directory(directory, [GroupRef(id=gid)], {}, SubjectKind.GROUP) for gid in ids]
    assert all(r.resolutions and r.resolutions[0].state is GroupState.RESOLVED for r in reads)
    assert metrics.total_requests("getByIds") == 2
