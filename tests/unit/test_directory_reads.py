"""Guards in the Graph reads that need no server."""

from __future__ import annotations

import pytest

from entra_rbac.adapters.directory.reads import _require_user_names
from entra_rbac.core.entra import DirectoryMember, MemberType
from entra_rbac.errors import DirectoryForbiddenError

OID = "0a0a0a0a-0000-0000-0000-000000000001"


def test_users_without_upn_mean_missing_permission_not_object_ids() -> None:
    # Without User.ReadBasic.All Graph returns members with only id and type; naming those
    # users by object id would silently grant nobody (or the wrong subject).
    members = [DirectoryMember(OID, MemberType.USER), DirectoryMember(OID, MemberType.SERVICE_PRINCIPAL)]
    with pytest.raises(DirectoryForbiddenError, match=r"1 members .* User\.ReadBasic\.All"):
        _require_user_names("g1", members)


def test_named_users_and_other_members_pass() -> None:
    members = [
        DirectoryMember(OID, MemberType.USER, "alice@contoso.com", "Member"),
        DirectoryMember(OID, MemberType.SERVICE_PRINCIPAL),
        DirectoryMember(OID, MemberType.DEVICE),
    ]
    _require_user_names("g1", members)
