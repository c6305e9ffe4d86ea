"""Deletion confirmation (docs/design.md, Directory semantics): a group that reads as deleted is
acted on only when a read from Entra, at least the confirmation interval later, agrees.

Entra is eventually consistent: a group (or its member list) can answer 404, or an empty list,
for a moment while a replica catches up. Acting on one such read revoked access in issue 18.
A group "reads as deleted" when its last verified state had it present (status says `Resolved`,
or `Unverified` while a confirmation is pending) and now a pinned id answers 404, or, in user
mode, its member list is empty where status counted members. No I/O: the reconciler reads,
remembers (`ResourceRecord.pending_deletions`) and bypasses the cache for the confirming read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from entra_rbac.core.models import EntraGroupBindingSpec, GroupState, SubjectKind
from entra_rbac.reconciler.resolve import DirectoryOutcome

_PRESENT = (GroupState.RESOLVED.value, GroupState.UNVERIFIED.value)


def deleted_looking(
    spec: EntraGroupBindingSpec, read: DirectoryOutcome, status: Mapping[str, Any]
) -> dict[str, str]:
    """The groups (lower-case id -> what Entra said) this read shows deleted while the last
    verified read had them present."""
    known = {e.get("ref"): e for e in status.get("groups") or [] if isinstance(e, Mapping)}
    found: dict[str, str] = {}
    for index, ref in enumerate(spec.groups):
        before = known.get(ref.key)
        resolution = (read.resolutions or [])[index]
        if not isinstance(before, Mapping) or before.get("state") not in _PRESENT:
            continue
        pinned = ref.id or resolution.lookup.pinned_id
        if resolution.state is GroupState.NOT_FOUND and pinned:
            found[pinned.lower()] = f"group {pinned.lower()} answered 404"
        elif (
            spec.subjects.kind is SubjectKind.USER
            and resolution.state is GroupState.RESOLVED
            and resolution.group is not None
            and not read.members.get(resolution.group.id)
            and int(before.get("members") or 0) > 0
        ):
            gid = resolution.group.id.lower()
            found[gid] = f"group {gid} has no members (it had {before.get('members')})"
    return found


@dataclass(frozen=True)
class Confirmation:
    """What to do with the deletions a read shows: act on `confirmed`; keep everything while
    `unconfirmed` is not empty, and read again after `wait` seconds."""

    confirmed: frozenset[str]
    unconfirmed: Mapping[str, str]
    wait: float


def confirm_deletions(
    seen: Mapping[str, str],
    pending: dict[str, datetime],
    *,
    now: datetime,
    interval: float,
    fresh: bool,
) -> Confirmation:
    """Update `pending` (first sighting per group) and decide: a deletion is confirmed when it
    was first seen at least `interval` ago and this read came from Entra (`fresh`)."""
    for gid in list(pending):
        if gid not in seen:
            del pending[gid]  # read as present again (restored, replicated): nothing pending
    confirmed = set()
    unconfirmed = {}
    waits = []
    for gid, what in seen.items():
        since = pending.setdefault(gid, now)
        waited = (now - since).total_seconds()
        if fresh and waited >= interval:
            confirmed.add(gid)
        else:
            unconfirmed[gid] = what
            waits.append(max(interval - waited, 0.0))
    if not unconfirmed:
        # Acted on now (the whole resource waits while any is unconfirmed, so only then).
        for gid in confirmed:
            del pending[gid]
    return Confirmation(frozenset(confirmed), unconfirmed, min(waits) if waits else 0.0)


def confirmation_due(pending: Mapping[str, datetime], *, now: datetime, interval: float) -> bool:
    """Whether some pending deletion may be confirmed by this read (which must then be fresh)."""
    return any((now - since).total_seconds() >= interval for since in pending.values())
