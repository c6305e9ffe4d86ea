"""`EntraDirectory.changed_groups` against the sandbox Graph over real HTTPS with msgraph-sdk
(issue 13, point 1): delta rounds by chunks of 50 ids, every page, the deltaLink kept, removals,
an expired token starting over, and the changed groups' cached answers forgotten. Issue 17 point
5: chunks are stable (a new group never re-baselines the followed ones), new ids wait while more
arrive, and each round polls at most `delta_queries_per_round` followed chunks, in turn."""

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
        assert await directory.changed_groups(watched) == set()  # new ids wait a round for more
        assert not graph.request_queries("GET", r"/groups/delta")
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
        in_order = sorted(ids)  # chunks are cut from the sorted ids
        assert await directory.changed_groups(ids) == set(in_order[:100])  # full chunks start at once
        assert len(graph.request_queries("GET", r"/groups/delta")) == 3 + 3  # 20 groups a sandbox page
        assert await directory.changed_groups(ids) == set(in_order[100:])  # the rest once no more arrive
        queries = graph.request_queries("GET", r"/groups/delta")
        first = [q for q in queries if "$filter" in q]
        assert sorted(q.count("id eq") for q in first) == [20, 50, 50]
        assert len(queries) == 6 + 1 + 2  # the new chunk's baseline, then a poll of each followed one
        tenant.groups[117]["displayName"] = "renamed"
        graph.write(tenant)
        assert await directory.changed_groups(ids) == {ids[117]}
        assert len(graph.request_queries("GET", r"/groups/delta")) == 9 + 3  # one per chunk again


async def test_a_new_group_gets_a_chunk_of_its_own_and_the_followed_ones_keep_their_links(
    graph: GraphSandbox,
) -> None:
    tenant = Tenant()
    ids = [tenant.group(f"G{i}") for i in range(51)]
    graph.write(tenant)
    async with EntraDirectory(graph.config(), metrics=Recorder()) as directory:
        await directory.changed_groups(ids[:50])
        assert await directory.changed_groups(ids) == set()  # the new one waits a round
        assert await directory.changed_groups(ids) == {ids[50]}  # its own baseline
        filters = [q.count("id eq") for q in graph.request_queries("GET", r"/groups/delta") if "$filter" in q]
        assert filters == [50, 1]  # the 50 were never baselined again


async def test_each_round_polls_at_most_its_share_of_the_chunks_in_turn(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ids = [tenant.group(f"G{i}") for i in range(250)]  # 5 chunks
    graph.write(tenant)
    async with EntraDirectory(graph.config(delta_queries_per_round=2), metrics=Recorder()) as directory:
        assert await directory.changed_groups(ids) == set(ids)  # five baselines, all at once
        for group in tenant.groups:
            group["displayName"] += " renamed"
        graph.write(tenant)
        before = len(graph.request_queries("GET", r"/groups/delta"))
        seen: set[str] = set()
        for _ in range(3):  # ⌈5 / 2⌉ rounds see every chunk once
            seen |= await directory.changed_groups(ids)
        assert seen == set(ids)
        pages = len(graph.request_queries("GET", r"/groups/delta")) - before
        # Each chunk polled once (3 pages of 20 groups); the sixth poll is the first chunk's
        # second turn, one page with nothing new. Never more than 2 chunks a round.
        assert pages == 5 * 3 + 1


async def test_an_expired_token_starts_over_and_reports_every_id_of_its_chunk(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ids = {tenant.group("A"), tenant.group("B")}
    graph.write(tenant)
    async with EntraDirectory(graph.config(), metrics=Recorder()) as directory:
        await directory.changed_groups(ids)
        assert await directory.changed_groups(ids) == ids
        graph.server.call(lambda server: server.expire_delta_tokens())
        assert await directory.changed_groups(ids) == ids  # changes may have been missed
        assert await directory.changed_groups(ids) == set()  # a new baseline was taken


async def test_a_failed_round_raises_and_reports_the_changes_next_time(graph: GraphSandbox) -> None:
    tenant = Tenant()
    ops = tenant.group("Ops")
    graph.write(tenant)
    async with EntraDirectory(graph.config(max_retries=0), metrics=Recorder()) as directory:
        for _ in range(2):  # new ids wait a round, then the baseline
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
        for _ in range(2):  # new ids wait a round, then the baseline
            await directory.changed_groups({ops})
        assert (await directory.lookup_groups(lookup))[0].group.display_name == "Ops"  # type: ignore[union-attr]
        tenant.groups[0]["displayName"] = "Ops renamed"
        graph.write(tenant)
        assert (await directory.lookup_groups(lookup))[0].group.display_name == "Ops"  # type: ignore[union-attr]
        assert await directory.changed_groups({ops}) == {ops}
        assert (await directory.lookup_groups(lookup))[0].group.display_name == "Ops renamed"  # type: ignore[union-attr]
