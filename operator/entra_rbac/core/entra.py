"""What the directory tells the core: resolved groups and their members.

The directory adapter returns these values; the core derives subjects from them. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from entra_rbac.core.models import GroupRef, GroupState


@dataclass(frozen=True)
class DirectoryGroup:
    """A group as Entra reports it."""

    id: str
    display_name: str
    mail_nickname: str | None = None


@dataclass(frozen=True)
class GroupLookup:
    """One spec group reference, with the id pinned for it by an earlier resolution (if any)."""

    ref: GroupRef
    pinned_id: str | None = None


@dataclass(frozen=True)
class GroupResolution:
    """The outcome of looking up one reference; decided only from complete, successful reads.

    `group` is set when the state is Resolved. For NotFound / Ambiguous the `message` says
    why, e.g. "no group has displayName 'X'" or "3 groups have displayName 'X'".
    A failed read is never a GroupResolution: the adapter raises a DirectoryError instead.
    """

    lookup: GroupLookup
    state: GroupState
    group: DirectoryGroup | None = None
    message: str = ""


class MemberType(StrEnum):
    USER = "user"
    SERVICE_PRINCIPAL = "servicePrincipal"
    GROUP = "group"
    DEVICE = "device"
    ORG_CONTACT = "orgContact"
    OTHER = "other"


@dataclass(frozen=True)
class DirectoryMember:
    """One transitive member of a group, with what AKS needs to name it."""

    id: str
    type: MemberType
    user_principal_name: str | None = None
    user_type: str | None = None  # "Member" or "Guest" for users


def aks_user_name(member: DirectoryMember) -> str | None:
    """The Kubernetes user name AKS gives this member, or None when it never signs in as one.

    UPN for member users; object ID for guests (`#EXT#` UPNs), service principals and managed
    identities; devices, contacts and groups are skipped (nested groups are already flattened).
    """
    if member.type is MemberType.USER:
        upn = member.user_principal_name
        if upn and "#EXT#" not in upn and (member.user_type or "Member") != "Guest":
            return upn
        return member.id
    if member.type is MemberType.SERVICE_PRINCIPAL:
        return member.id
    return None


class Directory(Protocol):
    """What the reconciler asks of Entra; `adapters.directory.EntraDirectory` implements it.

    Both reads raise `errors.DirectoryError` (Unavailable / Forbidden) when anything failed;
    `transitive_members` raises `errors.GroupNotFoundError` when the group is gone (404); its
    answer may be shared with every other caller (one frozen tuple per group): never mutate it.
    """

    async def lookup_groups(self, lookups: Sequence[GroupLookup]) -> list[GroupResolution]: ...

    async def transitive_members(self, group_id: str) -> Sequence[DirectoryMember]: ...

    def invalidate(self, lookups: Sequence[GroupLookup] | None = None) -> None:
        """Forget cached answers: every one (an on-demand sync reads Entra afresh), or those
        `lookups` would read (their ids, their names, the members of their ids)."""
