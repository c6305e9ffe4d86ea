"""Turning what Graph returned into a `GroupResolution`: the decision rows of docs/design.md (Directory
semantics).

Holds pure functions (no I/O): by id (present or absent) and by name (0, 1 or many exact
matches). Graph's `eq` ignores case and a long name is fetched by prefix, so the exact,
case-sensitive comparison happens here; near misses are named in the message to help a person.
"""

from __future__ import annotations

from collections.abc import Sequence

from entra_rbac.core.entra import DirectoryGroup, GroupLookup, GroupResolution
from entra_rbac.core.models import GroupState

NameKey = tuple[str, str]  # ("displayName" | "mailNickname", value)
_LISTED = 5  # ids named in an Ambiguous message; the count is always complete


def resolve_by_id(lookup: GroupLookup, group_id: str, group: DirectoryGroup | None) -> GroupResolution:
    if group is not None:
        return GroupResolution(lookup=lookup, state=GroupState.RESOLVED, group=group)
    if lookup.pinned_id is not None and lookup.ref.id is None:
        message = f"group {group_id} (pinned for {lookup.ref.key}) no longer exists"
    else:
        message = f"no group has id {group_id}"
    return GroupResolution(lookup=lookup, state=GroupState.NOT_FOUND, message=message)


def resolve_by_name(lookup: GroupLookup, candidates: Sequence[DirectoryGroup]) -> GroupResolution:
    field, value = name_of(lookup)
    exact = sorted((g for g in candidates if _field(g, field) == value), key=lambda g: g.id)
    if len(exact) == 1:
        return GroupResolution(lookup=lookup, state=GroupState.RESOLVED, group=exact[0])
    if not exact:
        message = f"no group has {field} {value!r}"
        near = sorted(
            {_field(g, field) or "" for g in candidates if (_field(g, field) or "").lower() == value.lower()}
        )
        if near:
            message += f" (differing only in case: {', '.join(repr(n) for n in near[:_LISTED])})"
        return GroupResolution(lookup=lookup, state=GroupState.NOT_FOUND, message=message)
    ids = ", ".join(g.id for g in exact[:_LISTED]) + (", ..." if len(exact) > _LISTED else "")
    message = f"{len(exact)} groups have {field} {value!r}: {ids}; name the group by id"
    return GroupResolution(lookup=lookup, state=GroupState.AMBIGUOUS, message=message)


def name_of(lookup: GroupLookup) -> NameKey:
    ref = lookup.ref
    if ref.display_name is not None:
        return ("displayName", ref.display_name)
    return ("mailNickname", ref.mail_nickname or "")


def _field(group: DirectoryGroup, field: str) -> str | None:
    return group.display_name if field == "displayName" else group.mail_nickname
