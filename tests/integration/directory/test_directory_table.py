"""Every row of the table in docs/design.md (Directory semantics), through msgraph-sdk against the sandbox
over HTTPS."""

from __future__ import annotations

import itertools
import time

import pytest

from entra_rbac.adapters.directory import EntraDirectory
from entra_rbac.core.entra import GroupLookup
from entra_rbac.core.models import GroupRef, GroupState
from entra_rbac.errors import DirectoryForbiddenError, DirectoryUnavailableError
from tests.integration.directory.conftest import GraphSandbox, Recorder, Tenant, guid

pytestmark = pytest.mark.timeout(60)


def by_id(group_id: str) -> GroupLookup:
    return GroupLookup(GroupRef(id=group_id))


def by_name(name: str, pinned: str | None = None) -> GroupLookup:
    return GroupLookup(GroupRef(display_name=name), pinned_id=pinned)


@pytest.fixture
def tenant(graph: GraphSandbox) -> Tenant:
    tenant = Tenant()
    alice = tenant.user("alice@contoso.com")
    tenant.group("Payments Developers", mail_nickname="payments-devs", members=[alice])
    tenant.group("Platform", key="platform-a")
    tenant.group("Platform", key="platform-b")
    graph.write(tenant)
    return tenant


async def test_found_group_is_resolved_with_its_current_name(graph: GraphSandbox, tenant: Tenant) -> None:
    async with EntraDirectory(graph.config()) as directory:
        [resolution] = await directory.lookup_groups([by_id(guid("Payments Developers"))])
    assert resolution.state is GroupState.RESOLVED
    assert resolution.group is not None
    assert resolution.group.display_name == "Payments Developers"
    assert resolution.group.mail_nickname == "payments-devs"


async def test_renamed_group_keeps_its_pin_and_reports_the_new_name(
    graph: GraphSandbox, tenant: Tenant
) -> None:
    pinned = guid("Payments Developers")
    async with EntraDirectory(graph.config()) as directory:
        [before] = await directory.lookup_groups([by_name("Payments Developers", pinned)])
        tenant.groups[0]["displayName"] = "Payments Engineers"
        graph.write(tenant)
        directory.invalidate()
        [after] = await directory.lookup_groups([by_name("Payments Developers", pinned)])
    assert before.group is not None
    assert before.group.display_name == "Payments Developers"
    assert after.state is GroupState.RESOLVED
    assert after.group is not None
    assert (after.group.id, after.group.display_name) == (pinned, "Payments Engineers")


async def test_invalidating_lookups_forgets_only_their_groups(graph: GraphSandbox, tenant: Tenant) -> None:
    """A deletion to confirm or a held revocation bypasses the cache for its resource's groups
    only (issue 17 point 2): the other resources' answers stay cached."""
    payments, platform = guid("Payments Developers"), guid("platform-a")
    async with EntraDirectory(graph.config(cache_ttl=600)) as directory:
        await directory.lookup_groups([by_id(payments), by_id(platform), by_name("Platform")])
        for group in tenant.groups:
            group["displayName"] += " renamed"
        graph.write(tenant)
        directory.invalidate([by_id(payments)])
        found = await directory.lookup_groups([by_id(payments), by_id(platform), by_name("Platform")])
    names = [r.group.display_name if r.group else None for r in found]
    assert names[:2] == ["Payments Developers renamed", "Platform"]  # only the first read again
    assert found[2].state is GroupState.AMBIGUOUS  # the name's answer still the cached one


async def test_deleted_group_is_not_found_and_restored_group_resolves_again(
    graph: GraphSandbox, tenant: Tenant
) -> None:
    pinned = guid("Payments Developers")
    async with EntraDirectory(graph.config()) as directory:
        tenant.groups[0]["deleted"] = True
        graph.write(tenant)
        [deleted] = await directory.lookup_groups([by_name("Payments Developers", pinned)])
        del tenant.groups[0]["deleted"]
        graph.write(tenant)
        directory.invalidate()
        [restored] = await directory.lookup_groups([by_name("Payments Developers", pinned)])
    assert deleted.state is GroupState.NOT_FOUND
    assert pinned in deleted.message
    assert restored.state is GroupState.RESOLVED


async def test_absence_is_confirmed_by_the_groups_own_read(graph: GraphSandbox, tenant: Tenant) -> None:
    pinned = guid("Payments Developers")
    tenant.groups[0]["deleted"] = True
    graph.write(tenant)

    def restore_after_bulk_read(operation: str, outcome: str) -> None:
        # The group comes back between getByIds and the confirming read (replication lag).
        if (operation, outcome) == ("getByIds", "success"):
            del tenant.groups[0]["deleted"]
            graph.write(tenant)

    metrics = Recorder(hook=restore_after_bulk_read)
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        [resolution] = await directory.lookup_groups([by_name("Payments Developers", pinned)])
    assert resolution.state is GroupState.RESOLVED
    assert len(graph.request_times("GET", rf"/groups/{pinned}$")) == 1  # the confirming read
    assert metrics.total_requests("batch") == 1  # ... made inside one $batch


async def test_failed_confirming_read_is_unavailable_not_absent(graph: GraphSandbox, tenant: Tenant) -> None:
    graph.fault(r"/groups/[0-9a-f-]+$", method="GET", status=503, count=100)
    async with EntraDirectory(graph.config(max_retries=1, max_retry_wait=1)) as directory:
        with pytest.raises(DirectoryUnavailableError, match="still failing"):
            await directory.lookup_groups([by_id(guid("never written"))])


@pytest.mark.parametrize(
    ("lookup", "state", "message"),
    [
        (by_name("Nobody Has This"), GroupState.NOT_FOUND, "no group has displayName 'Nobody Has This'"),
        (by_name("Payments Developers"), GroupState.RESOLVED, ""),
        (GroupLookup(GroupRef(mail_nickname="payments-devs")), GroupState.RESOLVED, ""),
        (by_name("Platform"), GroupState.AMBIGUOUS, "2 groups have displayName 'Platform': "),
        (by_id(guid("never written")), GroupState.NOT_FOUND, "no group has id "),
    ],
)
async def test_name_and_id_outcomes(
    graph: GraphSandbox, tenant: Tenant, lookup: GroupLookup, state: GroupState, message: str
) -> None:
    async with EntraDirectory(graph.config()) as directory:
        [resolution] = await directory.lookup_groups([lookup])
    assert resolution.state is state
    assert resolution.message.startswith(message)


async def test_ambiguous_message_names_every_id(graph: GraphSandbox, tenant: Tenant) -> None:
    async with EntraDirectory(graph.config()) as directory:
        [resolution] = await directory.lookup_groups([by_name("Platform")])
    assert guid("platform-a") in resolution.message
    assert guid("platform-b") in resolution.message


@pytest.mark.parametrize(
    ("method", "path", "lookup"),
    [
        ("POST", r"/directoryObjects/getByIds", by_id(guid("Payments Developers"))),
        ("POST", r"/\$batch", by_name("Payments Developers")),
    ],
)
@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_that_persist_are_unavailable(
    graph: GraphSandbox, tenant: Tenant, method: str, path: str, lookup: GroupLookup, status: int
) -> None:
    graph.fault(path, method=method, status=status, count=100)
    async with EntraDirectory(graph.config(max_retries=2, max_retry_wait=1)) as directory:
        with pytest.raises(DirectoryUnavailableError, match=f"HTTP {status}"):
            await directory.lookup_groups([lookup])


async def test_one_server_error_is_retried_and_the_read_succeeds(graph: GraphSandbox, tenant: Tenant) -> None:
    graph.fault(r"/directoryObjects/getByIds", method="POST", status=503, count=1)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        [resolution] = await directory.lookup_groups([by_id(guid("Payments Developers"))])
    assert resolution.state is GroupState.RESOLVED
    assert [outcome for _, _, outcome in metrics.attempts] == ["server_error", "success"]


async def test_timeout_is_unavailable_within_the_request_timeout(graph: GraphSandbox, tenant: Tenant) -> None:
    graph.fault(r"/directoryObjects/getByIds", method="POST", status=0, delay_ms=2000, count=1)
    started = time.monotonic()
    async with EntraDirectory(graph.config(request_timeout=0.5)) as directory:
        with pytest.raises(DirectoryUnavailableError, match=r"timed out after 0\.5s"):
            await directory.lookup_groups([by_id(guid("Payments Developers"))])
    assert time.monotonic() - started < 4


async def test_dropped_connection_is_unavailable(graph: GraphSandbox, tenant: Tenant) -> None:
    graph.fault(r"/directoryObjects/getByIds", method="POST", drop=True, count=100)
    async with EntraDirectory(graph.config(max_retries=0)) as directory:
        with pytest.raises(DirectoryUnavailableError, match="could not be reached"):
            await directory.lookup_groups([by_id(guid("Payments Developers"))])


@pytest.mark.parametrize("status", [429, 503])
async def test_throttling_honours_retry_after_then_succeeds(
    graph: GraphSandbox, tenant: Tenant, status: int
) -> None:
    graph.fault(r"/directoryObjects/getByIds", method="POST", status=status, retry_after=1, count=2)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        [resolution] = await directory.lookup_groups([by_id(guid("Payments Developers"))])
    assert resolution.state is GroupState.RESOLVED
    arrivals = graph.request_times("POST", r"/directoryObjects/getByIds")
    assert len(arrivals) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert metrics.throttles["getByIds"] == 2


async def test_throttling_beyond_the_wait_budget_is_unavailable_with_retry_after(
    graph: GraphSandbox, tenant: Tenant
) -> None:
    graph.fault(r"/directoryObjects/getByIds", method="POST", status=429, retry_after=120, count=5)
    started = time.monotonic()
    async with EntraDirectory(graph.config(max_retry_wait=5)) as directory:
        with pytest.raises(DirectoryUnavailableError) as caught:
            await directory.lookup_groups([by_id(guid("Payments Developers"))])
    assert caught.value.retry_after == 120
    assert time.monotonic() - started < 3  # gave up at once instead of sleeping 120 s


@pytest.mark.parametrize("status", [401, 403])
async def test_graph_refusal_is_forbidden(graph: GraphSandbox, tenant: Tenant, status: int) -> None:
    graph.fault(r"/directoryObjects/getByIds", method="POST", status=status, count=1)
    async with EntraDirectory(graph.config()) as directory:
        with pytest.raises(DirectoryForbiddenError, match=f"HTTP {status}"):
            await directory.lookup_groups([by_id(guid("Payments Developers"))])


async def test_wrong_secret_is_a_token_failure_and_unavailable(graph: GraphSandbox, tenant: Tenant) -> None:
    async with EntraDirectory(graph.config(client_secret="not-the-secret")) as directory:
        with pytest.raises(DirectoryUnavailableError, match="getting a token for Graph failed"):
            await directory.lookup_groups([by_id(guid("Payments Developers"))])


async def test_token_endpoint_outage_is_unavailable(graph: GraphSandbox, tenant: Tenant) -> None:
    graph.fault(r"/oauth2/v2.0/token", method="POST", status=503, count=100)
    async with EntraDirectory(graph.config(request_timeout=10)) as directory:
        with pytest.raises(DirectoryUnavailableError, match="token"):
            await directory.lookup_groups([by_name("Payments Developers")])


async def test_throttled_batch_item_is_retried_alone(graph: GraphSandbox, tenant: Tenant) -> None:
    # The sandbox applies faults to the requests inside a $batch too (per-item status).
    graph.fault(r"/groups$", method="GET", status=429, retry_after=1, count=1)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        resolutions = await directory.lookup_groups([by_name("Payments Developers"), by_name("Platform")])
    assert [r.state for r in resolutions] == [GroupState.RESOLVED, GroupState.AMBIGUOUS]
    assert metrics.total_requests("batch") == 2
    assert metrics.throttles["batch-item"] == 1


async def test_failing_batch_item_fails_the_whole_lookup(graph: GraphSandbox, tenant: Tenant) -> None:
    graph.fault(r"/groups$", method="GET", status=500, count=100)
    async with EntraDirectory(graph.config(max_retries=1, max_retry_wait=1)) as directory:
        with pytest.raises(DirectoryUnavailableError):
            await directory.lookup_groups([by_name("Payments Developers")])
