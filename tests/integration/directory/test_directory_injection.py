"""OData injection: hostile names match only a group with exactly that name (issue 4, point 7)."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from entra_rbac.adapters.directory import EntraDirectory, odata
from entra_rbac.core.entra import GroupLookup
from entra_rbac.core.models import GroupRef, GroupState
from tests.integration.directory.conftest import GraphSandbox, Tenant

pytestmark = pytest.mark.timeout(60)

HOSTILE = [
    "O'Brien's Team",
    "' or '1' eq '1",
    "x') or (displayName eq 'Admins",
    "Admins' or startswith(displayName,'",
    "(Admins)",
    "Équipe Zürich 開発 👩‍💻",
    "50% & #hash ?a=b +plus /slash \\back",
    "A" * 200 + "'" + "B" * 55,  # 256 characters, a quote past Graph's 120-character eq limit
]


@pytest.fixture
def tenant(graph: GraphSandbox) -> Tenant:
    tenant = Tenant()
    tenant.group("Admins")
    tenant.group("Everyone Else")
    for name in HOSTILE:
        tenant.group(name)
    # A decoy sharing the long name's first 120 characters must not be matched.
    tenant.group("A" * 200 + "'" + "C" * 55)
    graph.write(tenant)
    return tenant


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_display_name_matches_only_itself(
    graph: GraphSandbox, tenant: Tenant, name: str
) -> None:
    async with EntraDirectory(graph.config()) as directory:
        [resolution] = await directory.lookup_groups([GroupLookup(GroupRef(display_name=name))])
    assert resolution.state is GroupState.RESOLVED, resolution.message
    assert resolution.group is not None
    assert resolution.group.display_name == name
    # The server received exactly the one comparison we meant, literal intact.
    [query] = graph.request_queries("GET", r"/groups$")
    assert parse_qs(query)["$filter"] == [odata.name_filter("displayName", name)]


@pytest.mark.parametrize("name", ["' or '1' eq '1", "x') or (displayName eq 'Admins", "Admins' or true or '"])
async def test_injection_without_such_a_group_finds_nothing(graph: GraphSandbox, name: str) -> None:
    tenant = Tenant()
    tenant.group("Admins")
    tenant.group("Everyone Else")
    graph.write(tenant)
    async with EntraDirectory(graph.config()) as directory:
        [resolution] = await directory.lookup_groups([GroupLookup(GroupRef(display_name=name))])
    assert resolution.state is GroupState.NOT_FOUND
