"""Guards in the directory's reads that need no server."""

from __future__ import annotations

import pytest

from entra_rbac.adapters.directory.directory import _id_key
from entra_rbac.adapters.directory.reads import _require_user_names
from entra_rbac.core.entra import DirectoryMember, GroupLookup, MemberType
from entra_rbac.core.models import GroupRef
from entra_rbac.errors import DirectoryForbiddenError

OID = "0a0a0a0a-0000-0000-0000-000000000001"
G1 = "11111111-1111-1111-1111-111111111111"
G2 = "22222222-2222-2222-2222-222222222222"


def test_users_without_upn_mean_missing_permission_not_object_ids() -> None:
    # Without User.ReadBasic.All Graph returns members with only id and type; naming those
    # users by object id would silently grant nobody (or the wrong subject).
    members = [DirectoryMember(OID, MemberType.USER), DirectoryMember(OID, MemberType.SERVICE_PRINCIPAL)]
    with pytest.raises(DirectoryForbiddenError, match=r"1 member of .* User\.ReadBasic\.All"):
        _require_user_names("g1", members)


def test_named_users_and_other_members_pass() -> None:
    members = [
        DirectoryMember(OID, MemberType.USER, "alice@contoso.com", "Member"),
        DirectoryMember(OID, MemberType.SERVICE_PRINCIPAL),
        DirectoryMember(OID, MemberType.DEVICE),
    ]
    _require_user_names("g1", members)


@pytest.mark.parametrize(
    ("lookup", "key"),
    [
        (GroupLookup(GroupRef(id=G1)), G1),
        (GroupLookup(GroupRef(id=G1), pinned_id=G2), G1),  # the spec changed its id: spec wins
        (GroupLookup(GroupRef(display_name="Payments"), pinned_id=G2.upper()), G2),
        (GroupLookup(GroupRef(display_name="Payments")), None),
    ],
)
def test_lookup_verifies_the_spec_id_else_the_pin(lookup: GroupLookup, key: str | None) -> None:
    assert _id_key(lookup) == key
