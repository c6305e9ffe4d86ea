"""The directory phase of a reconcile: resolve a resource's groups (and members) through Entra.

Holds the calls to the `Directory` protocol and the pinning rule; no Kubernetes I/O. A failed
read never yields a partial answer: the whole phase reports the error instead (fail-static).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from entra_rbac.core.entra import Directory, DirectoryMember, GroupLookup, GroupResolution
from entra_rbac.core.models import GroupRef, GroupState, SubjectKind
from entra_rbac.errors import DirectoryError, GroupNotFoundError


@dataclass(frozen=True)
class DirectoryOutcome:
    """What Entra said about a resource's groups, or why it could not say it.

    `resolutions` is None exactly when `error` is set: nothing may be decided then.
    `members` holds the transitive members of each Resolved group (user mode only).
    """

    resolutions: list[GroupResolution] | None
    members: dict[str, Sequence[DirectoryMember]] = field(default_factory=dict)
    error: DirectoryError | None = None


def pinned_ids(status: Mapping[str, Any]) -> dict[str, str]:
    """The ids pinned by earlier resolutions, keyed by the reference text (`displayName=...`).

    Keyed by reference, not position, so reordering spec.groups keeps every pin.
    """
    pins: dict[str, str] = {}
    for entry in status.get("groups") or []:
        ref, group_id = entry.get("ref"), entry.get("id")
        if isinstance(ref, str) and isinstance(group_id, str):
            pins[ref] = group_id
    return pins


def lookups_for(groups: Sequence[GroupRef], status: Mapping[str, Any]) -> list[GroupLookup]:
    """One lookup per spec group; name references carry the id pinned for them, if any."""
    pins = pinned_ids(status)
    return [GroupLookup(ref=ref, pinned_id=None if ref.id else pins.get(ref.key)) for ref in groups]


async def read_directory(
    directory: Directory,
    groups: Sequence[GroupRef],
    status: Mapping[str, Any],
    mode: SubjectKind,
) -> DirectoryOutcome:
    """Resolve every group, and in user mode read the members of each resolved one."""
    try:
        resolutions = await directory.lookup_groups(lookups_for(groups, status))
        members: dict[str, Sequence[DirectoryMember]] = {}
        if mode is SubjectKind.USER:
            resolutions, members = await _read_members(directory, resolutions)
    except DirectoryError as error:
        return DirectoryOutcome(resolutions=None, error=error)
    return DirectoryOutcome(resolutions=resolutions, members=members)


async def _read_members(
    directory: Directory, resolutions: list[GroupResolution]
) -> tuple[list[GroupResolution], dict[str, Sequence[DirectoryMember]]]:
    ids = sorted({r.group.id for r in resolutions if r.group and r.state is GroupState.RESOLVED})
    # A TaskGroup cancels the other reads as soon as one fails: the phase fails as a whole.
    try:
        async with asyncio.TaskGroup() as reads:
            tasks = {gid: reads.create_task(_members_or_gone(directory, gid)) for gid in ids}
    except ExceptionGroup as group:
        failures = [e for e in group.exceptions if isinstance(e, DirectoryError)]
        if failures:
            raise failures[0] from None
        raise
    members = {gid: found for gid, task in tasks.items() if (found := task.result()) is not None}
    # A group deleted between the two reads is NotFound, as if the first read had said so.
    gone = set(ids) - set(members)
    updated = [
        GroupResolution(
            lookup=r.lookup, state=GroupState.NOT_FOUND, message=f"group {r.group.id} was deleted"
        )
        if r.group and r.group.id in gone
        else r
        for r in resolutions
    ]
    return updated, members


async def _members_or_gone(directory: Directory, group_id: str) -> Sequence[DirectoryMember] | None:
    try:
        return await directory.transitive_members(group_id)
    except GroupNotFoundError:
        return None
