"""`EntraDirectory.changed_groups` against the sandbox Graph over real HTTPS with msgraph-sdk
(issue 13, point 1): delta rounds by chunks of 50 ids, every page, the deltaLink kept, removals,
an expired token starting over, and the changed groups' cached answers forgotten."""

from __future__ import annotations

import pytest

from entra_rbac.adapters.directory import EntraDirectory
from entra_rbac.core.entra import GroupLookup
from entra_rbac.core.models import GroupRef
from entra_rbac.errors import DirectoryUnavailableError
from tests.integration.directory.conftest import GraphSandbox, Recorder, Tenant


async def test_the_first_round_is_a_baseline_then_exactly_the_changed_groups_are_reported(
    graph: GraphSandbox,
) -> None:
    tenant = Tenant()
    alice, bob = tenant.user("alice@contoso.com"), tenant.user("bob@contoso.com")
    ops = tenant.group("Ops", members=[alice, bob])
    dev = tenant.group("Dev", members=[alice])
    quiet = tenant.group("Quiet", members=[bob])
    graph.write(tenant)
    async with EntraDirectory(graph.config(), metrics=Recorder()) as directory:
        watched = {ops, dev, quiet}
        assert await directory.changed_groups(watched) == watched  # a baseline: anything may have changed
        assert await directory.changed_groups(watched) == set()  # nothing changed
        tenant.groups[0]["members"] = [alice]  # bob removed from Ops
        tenant.groups[1]["displayName"] = "Dev renamed"
        graph.write(tenant)
        assert await directory.changed_groups(watched) == {ops, dev}
        assert await directory.changed_groups(watched) == set()  # the deltaLink moved on
        tenant.groups[2]["deleted"] = True
        graph.write(tenant)
        assert await directory.changed_groups(watched) == {quiet}
        tenant.groups[2]["deleted"] = False
        graph.write(tenant)
        assert await directory.changed_groups(watched) == {quiet}  # restored


async def test_more_than_50_groups_go_in_chunks_of_50_and_each_keeps_its_link(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ids = [tenant.group(f"G{i}") for i in range(120)]
    graph.write(tenant)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        await directory.changed_groups(ids)
        queries = graph.request_queries("GET", r"/groups/delta")
        first = [q for q in queries if "$filter" in q]
        assert sorted(q.count("id eq") for q in first) == [20, 50, 50]
        assert len(queries) == 3 + 2 + 2  # every page: 20 groups a sandbox page
        tenant.groups[117]["displayName"] = "renamed"
        graph.write(tenant)
        assert await directory.changed_groups(ids) == {ids[117]}
        assert len(graph.request_queries("GET", r"/groups/delta")) == 7 + 3  # one per chunk again


async def test_an_expired_token_starts_over_and_reports_every_id_of_its_chunk(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ids = {tenant.group("A"), tenant.group("B")}
    graph.write(tenant)
    async with EntraDirectory(graph.config(), metrics=Recorder()) as directory:
        assert await directory.changed_groups(ids) == ids
        graph.server.call(lambda server: server.expire_delta_tokens())
        assert await directory.changed_groups(ids) == ids  # changes may have been missed
        assert await directory.changed_groups(ids) == set()  # a new baseline was taken


async def test_a_failed_round_raises_and_reports_the_changes_next_time(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ops = tenant.group("Ops")
    graph.write(tenant)
    async with EntraDirectory(graph.config(max_retries=0), metrics=Recorder()) as directory:
        await directory.changed_groups({ops})
        tenant.groups[0]["displayName"] = "Ops 2"
        graph.write(tenant)
        graph.fault(r"/groups/delta", status=500, count=1)
        with pytest.raises(DirectoryUnavailableError):
            await directory.changed_groups({ops})
        assert await directory.changed_groups({ops}) == {ops}


async def test_a_change_forgets_the_cached_answer_so_the_next_lookup_reads_entra(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ops = tenant.group("Ops")
    graph.write(tenant)
    metrics = Recorder()
    async with EntraDirectory(graph.config(cache_ttl=600), metrics=metrics) as directory:
        lookup = [GroupLookup(GroupRef(id=ops))]
        await directory.changed_groups({ops})
        assert (await directory.lookup_groups(lookup))[0].group.display_name == "Ops"  # type: ignore[union-attr]
        tenant.groups[0]["displayName"] = "Ops renamed"
        graph.write(tenant)
        assert (await directory.lookup_groups(lookup))[0].group.display_name == "Ops"  # type: ignore[union-attr]
        assert await directory.changed_groups({ops}) == {ops}
        assert (await directory.lookup_groups(lookup))[0].group.display_name == "Ops renamed"  # type: ignore[union-attr]
