"""AKS user naming (core.entra.aks_user_name): UPN for members, object ID otherwise."""

from __future__ import annotations

import pytest

from entra_rbac.core.entra import DirectoryMember, MemberType, aks_user_name

OID = "0a0a0a0a-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("member", "name"),
    [
        (DirectoryMember(OID, MemberType.USER, "alice@contoso.com", "Member"), "alice@contoso.com"),
        # userType not read (no User.ReadBasic.All detail): a plain UPN is still a member's.
        (DirectoryMember(OID, MemberType.USER, "alice@contoso.com", None), "alice@contoso.com"),
        (
            DirectoryMember(OID, MemberType.USER, "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com", "Guest"),
            OID,
        ),
        (
            DirectoryMember(OID, MemberType.USER, "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com", "Member"),
            OID,
        ),
        (DirectoryMember(OID, MemberType.USER, "carol@contoso.com", "Guest"), OID),
        (DirectoryMember(OID, MemberType.USER, None, "Member"), OID),
        (DirectoryMember(OID, MemberType.SERVICE_PRINCIPAL), OID),
        (DirectoryMember(OID, MemberType.GROUP), None),
        (DirectoryMember(OID, MemberType.DEVICE), None),
        (DirectoryMember(OID, MemberType.ORG_CONTACT), None),
        (DirectoryMember(OID, MemberType.OTHER), None),
    ],
)
def test_aks_user_name(member: DirectoryMember, name: str | None) -> None:
    assert aks_user_name(member) == name
