"""User mode: transitive members over every page, named as AKS names them; all or nothing."""

from __future__ import annotations

import pytest

from entra_rbac.adapters.directory import EntraDirectory
from entra_rbac.core.entra import MemberType, aks_user_name
from entra_rbac.errors import DirectoryUnavailableError, GroupNotFoundError
from tests.integration.directory.conftest import GraphSandbox, Recorder, Tenant, guid

pytestmark = pytest.mark.timeout(60)


async def test_nested_members_are_flattened_and_named_as_aks_names_them(graph: GraphSandbox) -> None:
    tenant = Tenant()
    alice = tenant.user("alice@contoso.com")
    guest = tenant.user("bob_fabrikam.com#EXT#@contoso.onmicrosoft.com", user_type="Guest")
    carol = tenant.user("carol@contoso.com")
    deployer = tenant.service_principal("ci-deployer")
    identity = tenant.service_principal("aks-agentpool", kind="ManagedIdentity")
    laptop = tenant.device("laptop-17")
    vendor = tenant.contact("vendor@fabrikam.com")
    inner = tenant.group("Inner", members=[carol, identity, laptop])
    outer = tenant.group("Outer", members=[alice, guest, deployer, inner, vendor])
    graph.write(tenant)
    async with EntraDirectory(graph.config()) as directory:
        members = await directory.transitive_members(outer)
    names = sorted(name for member in members if (name := aks_user_name(member)) is not None)
    assert names == sorted(["alice@contoso.com", "carol@contoso.com", guest, deployer, identity])
    types = {m.id: m.type for m in members}
    assert types[inner] is MemberType.GROUP
    assert types[laptop] is MemberType.DEVICE
    assert types[vendor] is MemberType.ORG_CONTACT
    assert types[identity] is MemberType.SERVICE_PRINCIPAL


async def test_five_thousand_members_are_read_across_pages(graph: GraphSandbox) -> None:
    tenant = Tenant()
    users = [tenant.user(f"user{n:04d}@contoso.com") for n in range(5000)]
    big = tenant.group("Everyone", members=users)
    graph.write(tenant)
    metrics = Recorder()
    # A generous per-request timeout: the first read after the write parses the whole directory
    # file, which on a loaded machine can outlast the fixture's 3 s (a hang guard, not a target).
    async with EntraDirectory(graph.config(request_timeout=60.0), metrics=metrics) as directory:
        members = await directory.transitive_members(big)
    assert sorted(m.id for m in members) == sorted(users)
    assert {aks_user_name(m) for m in members} == {f"user{n:04d}@contoso.com" for n in range(5000)}
    assert metrics.total_requests("transitiveMembers") == 6  # ceil(5000 / 999) pages of $top=999


async def test_failure_on_a_later_page_fails_the_whole_read(graph: GraphSandbox) -> None:
    tenant = Tenant()
    users = [tenant.user(f"user{n:04d}@contoso.com") for n in range(1500)]
    big = tenant.group("Everyone", members=users)
    graph.write(tenant)

    def fail_later_pages(operation: str, outcome: str) -> None:
        if (operation, outcome) == ("transitiveMembers", "success"):
            graph.fault(r"/transitiveMembers", status=503, count=100)

    metrics = Recorder(hook=fail_later_pages)
    async with EntraDirectory(graph.config(max_retries=1, max_retry_wait=1), metrics=metrics) as directory:
        with pytest.raises(DirectoryUnavailableError, match="HTTP 503"):
            await directory.transitive_members(big)
    assert metrics.requests[("transitiveMembers", "success")] == 1
    assert metrics.requests[("transitiveMembers", "server_error")] == 2


async def test_deleted_group_members_raise_group_not_found(graph: GraphSandbox) -> None:
    tenant = Tenant()
    gone = tenant.group("Gone", deleted=True)
    graph.write(tenant)
    async with EntraDirectory(graph.config()) as directory:
        with pytest.raises(GroupNotFoundError) as caught:
            await directory.transitive_members(gone)
    assert caught.value.group_id == gone


async def test_members_are_cached_for_their_lifetime(graph: GraphSandbox) -> None:
    tenant = Tenant()
    team = tenant.group("Team", members=[tenant.user("dave@contoso.com")])
    graph.write(tenant)
    metrics = Recorder()
    async with EntraDirectory(graph.config(), metrics=metrics) as directory:
        first = await directory.transitive_members(team)
        second = await directory.transitive_members(team.upper())
    assert first == second
    assert metrics.total_requests("transitiveMembers") == 1
    assert guid("dave@contoso.com") == first[0].id
