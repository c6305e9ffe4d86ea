"""One throttle for the tenant (issue 18, point 6): a Retry-After pauses every Graph request of
the operator, and a 404 on an endpoint itself is a directory failure, not a missing group."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from entra_rbac.adapters.directory import EntraDirectory, Outcome
from entra_rbac.core.entra import GroupLookup
from entra_rbac.core.models import GroupRef
from entra_rbac.errors import DirectoryUnavailableError
from tests.integration.directory.conftest import GraphSandbox, Recorder, Tenant, guid

pytestmark = pytest.mark.timeout(60)

RETRY_AFTER = 2


@pytest.fixture
def tenant(graph: GraphSandbox) -> Tenant:
    tenant = Tenant()
    alice = tenant.user("alice@contoso.com")
    for index in range(8):
        tenant.group(f"Team {index}", members=[alice])
    graph.write(tenant)
    return tenant


async def test_retry_after_on_one_call_pauses_every_other_request(
    graph: GraphSandbox, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="entra_rbac.adapters.directory.graph")
    throttled = asyncio.Event()
    received: list[float] = []  # wall clock, as the sandbox's log: when the 429 reached us

    def hook(operation: str, outcome: str) -> None:
        if outcome == Outcome.THROTTLED.value:
            received.append(time.time())
            throttled.set()

    first = guid("Team 0")
    graph.fault(rf"/groups/{first}/transitiveMembers", status=429, retry_after=RETRY_AFTER, count=1)
    async with EntraDirectory(graph.config(), metrics=Recorder(hook)) as directory:
        slow = asyncio.create_task(directory.transitive_members(first))
        await asyncio.wait_for(throttled.wait(), 10)
        # Reads of every kind, started after the 429 reached the operator: members (paging),
        # ids in bulk (getByIds) and names ($batch). None may reach Graph inside the window.
        others = await asyncio.gather(
            *(directory.transitive_members(guid(f"Team {index}")) for index in range(1, 6)),
            directory.lookup_groups([GroupLookup(GroupRef(id=guid("Team 6")))]),
            directory.lookup_groups([GroupLookup(GroupRef(display_name="Team 7"))]),
        )
        await slow
    assert all(others)
    log = graph.request_times("*", r"/v1\.0/")  # every Graph request, inner $batch ones included
    throttled_at = min(graph.request_times("GET", rf"/groups/{first}/transitiveMembers"))
    # From the moment the 429 reached the operator, nothing until Retry-After has passed since
    # the throttled request (50 ms slack for clock granularity).
    inside = [t - throttled_at for t in log if received[0] < t < throttled_at + RETRY_AFTER - 0.05]
    assert inside == [], f"requests inside the {RETRY_AFTER}s Retry-After window: {inside}"
    after = [t for t in log if t >= throttled_at + RETRY_AFTER - 0.05]
    assert len(after) >= 8  # the retried call and the seven others, all after the window
    # The pause is logged once, dated when the 429 was received (the e2e test reads it).
    paused = [r for r in caplog.records if r.getMessage().startswith("Paused every Graph request")]
    assert len(paused) == 1
    logged = paused[0].__dict__["entra_rbac_fields"]
    assert (logged["status"], logged["retry_after"]) == (429, RETRY_AFTER)
    assert throttled_at <= float(logged["received"]) <= received[0] + 1.0  # no await between the two


async def test_a_wait_beyond_the_budget_fails_at_once_without_sending(
    graph: GraphSandbox, tenant: Tenant
) -> None:
    first = guid("Team 0")
    graph.fault(rf"/groups/{first}/transitiveMembers", status=429, retry_after=60, count=1)
    async with EntraDirectory(graph.config(max_retry_wait=5)) as directory:
        with pytest.raises(DirectoryUnavailableError):
            await directory.transitive_members(first)
        before = len(graph.request_times("*", r"/v1\.0/"))
        with pytest.raises(DirectoryUnavailableError, match="pause") as caught:
            await directory.transitive_members(guid("Team 1"))
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 50
    assert len(graph.request_times("*", r"/v1\.0/")) == before


@pytest.mark.parametrize("endpoint", [("POST", r"/directoryObjects/getByIds$"), ("POST", r"/\$batch$")])
async def test_a_404_on_the_endpoint_itself_is_unavailable_not_absent(
    graph: GraphSandbox, tenant: Tenant, endpoint: tuple[str, str]
) -> None:
    method, path = endpoint
    graph.fault(path, method=method, status=404, count=1)
    lookup = GroupRef(id=guid("Team 0")) if "getByIds" in path else GroupRef(display_name="Team 0")
    async with EntraDirectory(graph.config()) as directory:
        with pytest.raises(DirectoryUnavailableError, match="HTTP 404"):
            await directory.lookup_groups([GroupLookup(lookup)])
