"""A delta baseline confirms what the directory already read (issue 17 point 4), against the sandbox
Graph over real HTTPS with msgraph-sdk.

A new baseline used to report every group of its chunk as changed, so every resource of a create
burst was reconciled again and read its group alone. Now a group the baseline shows exactly as
every read of it since its first one showed it (by id, or in a name lookup's answer) is not
reported, nor one whose transitive members were read when the baseline's direct members are
exactly them, none a group (issue 17 point 7: every user-mode resource was otherwise reconciled
again); a group renamed or deleted meanwhile, one never read, one whose members changed or nest a
group, and one whose reads disagreed (so an earlier reader may show a stale answer) still are."""

from __future__ import annotations

import asyncio
import math

from entra_rbac.adapters.directory import EntraDirectory
from entra_rbac.core.entra import GroupLookup
from entra_rbac.core.models import GroupRef
from tests.integration.directory.conftest import GraphSandbox, Recorder, Tenant

LOOKUPS = r"^/v1\.0/(\$batch$|directoryObjects/getByIds$|groups/[^/]+/(transitiveMembers|members))"


def _lookups(graph: GraphSandbox) -> int:
    return sum(len(graph.request_queries(method, LOOKUPS)) for method in ("GET", "POST"))


async def _baseline(directory: EntraDirectory, watched: set[str]) -> set[str]:
    """The changes the baseline of `watched` reports (new ids wait one round for more)."""
    assert await directory.changed_groups(watched) == set()
    return await directory.changed_groups(watched)


async def test_a_baseline_reports_only_the_groups_that_changed_since_they_were_read(
    graph: GraphSandbox,
) -> None:
    tenant = Tenant()
    alice = tenant.user("alice@contoso.com")
    ops, dev = tenant.group("Ops"), tenant.group("Dev")
    renamed, gone = tenant.group("Renamed"), tenant.group("Gone")
    unread, with_members = tenant.group("Unread"), tenant.group("Members", members=[alice])
    graph.write(tenant)
    async with EntraDirectory(graph.config(), metrics=Recorder()) as directory:
        refs = [GroupRef(id=ops), GroupRef(displayName="Dev"), GroupRef(id=renamed), GroupRef(id=gone)]
        await directory.lookup_groups([GroupLookup(ref) for ref in refs])
        await directory.transitive_members(with_members)
        tenant.groups[5]["members"].append(tenant.user("bob@contoso.com"))  # since its member read
        tenant.groups[2]["displayName"] = "Renamed later"
        tenant.groups[3]["deleted"] = True
        graph.write(tenant)
        watched = {ops, dev, renamed, gone, unread, with_members}
        assert await _baseline(directory, watched) == {renamed, gone, unread, with_members}
        tenant.groups[0]["displayName"] = "Ops renamed"
        graph.write(tenant)
        assert await directory.changed_groups(watched) == {ops}  # later rounds as before


async def test_a_group_whose_reads_disagreed_is_reported_even_when_the_last_read_matches(
    graph: GraphSandbox,
) -> None:
    """One reader saw "Ops", a later one (after the cache expired) "Ops 2", and the baseline shows
    "Ops 2": the first reader's resource shows a stale name, so the baseline must report it. A name
    lookup whose answers differed (a rename) likewise makes the baseline report every group."""
    tenant = Tenant()
    ops, dev, quiet, calm = (tenant.group(name) for name in ("Ops", "Dev", "Quiet", "Calm"))
    graph.write(tenant)
    now = [0.0]
    async with EntraDirectory(
        graph.config(cache_ttl=60), metrics=Recorder(), clock=lambda: now[0]
    ) as directory:
        await directory.lookup_groups([GroupLookup(GroupRef(id=ops)), GroupLookup(GroupRef(id=quiet))])
        tenant.groups[0]["displayName"] = "Ops 2"
        graph.write(tenant)
        now[0] = 61.0  # the cached answer expired: the next lookup reads Entra again
        await directory.lookup_groups([GroupLookup(GroupRef(id=ops))])
        assert await _baseline(directory, {ops, quiet}) == {ops}

        await directory.lookup_groups(
            [GroupLookup(GroupRef(displayName="Dev")), GroupLookup(GroupRef(id=calm))]
        )
        tenant.groups[1]["displayName"] = "Dev 2"
        graph.write(tenant)
        now[0] = 200.0
        await directory.lookup_groups([GroupLookup(GroupRef(displayName="Dev"))])  # now NotFound
        # calm was read alike every time, but a name's answers differed: nothing is confirmed.
        assert await _baseline(directory, {dev, calm}) == {dev, calm}


async def test_a_burst_of_lookups_then_its_baseline_costs_the_floor(graph: GraphSandbox) -> None:
    """40 resources created at once, half by id and half by displayName: their lookups coalesce
    into ⌈20/1000⌉ getByIds + ⌈20/20⌉ $batch, and the delta follower's baseline of their groups
    reconciles none of them again, so nothing is read twice (counted at the sandbox directory)."""
    tenant = Tenant()
    ids = [tenant.group(f"Team {i}") for i in range(40)]
    graph.write(tenant)
    async with EntraDirectory(graph.config(), metrics=Recorder()) as directory:
        refs = [GroupRef(id=ids[i]) if i % 2 else GroupRef(displayName=f"Team {i}") for i in range(40)]
        resolved = await asyncio.gather(*(directory.lookup_groups([GroupLookup(ref)]) for ref in refs))
        assert [r[0].group.id for r in resolved] == ids  # type: ignore[union-attr]
        floor = math.ceil(20 / 1000) + math.ceil(20 / 20)
        assert _lookups(graph) <= floor
        assert await _baseline(directory, set(ids)) == set()
        assert _lookups(graph) <= floor


async def test_a_group_whose_baseline_members_equal_its_member_read_is_not_reported(
    graph: GraphSandbox,
) -> None:
    """User mode reads each group's transitive members; its baseline lists the direct ones. Equal,
    with no nested group, they vouch for the read: not reported (120 members, over three entries of
    the round). A member added or removed since the read, a nested group (whose own members the
    parent's delta never shows), and member reads that disagreed are reported."""
    tenant = Tenant()
    users = [tenant.user(f"user{i}@contoso.com") for i in range(130)]
    same = tenant.group("Same", members=users[:120])
    added = tenant.group("Added", members=users[:3])
    removed = tenant.group("Removed", members=users[:3])
    inner = tenant.group("Inner", members=users[3:5])
    nesting = tenant.group("Nesting", members=[users[0], inner])
    flapped = tenant.group("Flapped", members=users[:2])
    graph.write(tenant)
    now = [0.0]
    async with EntraDirectory(
        graph.config(cache_ttl=60), metrics=Recorder(), clock=lambda: now[0]
    ) as directory:
        groups = [same, added, removed, nesting, flapped]
        await directory.lookup_groups([GroupLookup(GroupRef(id=gid)) for gid in groups])
        for gid in groups:
            await directory.transitive_members(gid)
        assert len(await directory.transitive_members(same)) == 120
        tenant.groups[5]["members"] = users[:3]  # flapped: a later read sees a third member, as
        graph.write(tenant)  # the baseline will, but the first reader's resource holds two
        now[0] = 61.0
        assert len(await directory.transitive_members(flapped)) == 3
        tenant.groups[1]["members"].append(users[125])
        tenant.groups[2]["members"] = users[:2]
        graph.write(tenant)
        assert await _baseline(directory, set(groups)) == {added, removed, nesting, flapped}
