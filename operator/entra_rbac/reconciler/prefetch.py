"""Reading a whole refresh's directory in bulk before its reconciles (docs/design.md, Directory semantics).

Holds `prefetch_directory`: given the resources a refresh is about to reconcile (as listed), it
asks the directory for every group they reference at once (ids into `getByIds` calls of up to
1,000, names into `$batch`es of 20) and, for user-mode resources, every resolved group's members,
so the directory's shared cache holds them when the reconciles ask one by one. It decides
nothing: the reconciles still read through the same cache and decide only from complete,
successful reads. A failed read here is not cached, so each reconcile reads again on its own and
fails (fail-static) or succeeds exactly as without the prefetch.

Also `expected_lookups`: what one arriving resource's reconcile will look up, for the directory's
look-ahead (docs/design.md, Directory semantics), which takes those keys along with reads sent
anyway; it reads nothing itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from entra_rbac.core.entra import Directory, GroupLookup
from entra_rbac.core.models import GroupRef, GroupState, SubjectKind
from entra_rbac.errors import DirectoryError
from entra_rbac.logsetup import fields
from entra_rbac.reconciler.resolve import lookups_for

log = logging.getLogger(__name__)


def _wants(body: Mapping[str, Any]) -> tuple[list[GroupLookup], bool] | None:
    """The lookups a resource's reconcile will make and whether it is in user mode; None for a
    resource whose reconcile reads nothing from Entra (suspended) or whose spec does not parse
    (its reconcile reports that)."""
    spec = body.get("spec") or {}
    if spec.get("suspend") is True:
        return None
    try:
        groups = [GroupRef.model_validate(group) for group in spec.get("groups") or ()]
    except (ValidationError, TypeError):
        return None
    user_mode = (spec.get("subjects") or {}).get("kind") == SubjectKind.USER.value
    return lookups_for(groups, body.get("status") or {}), user_mode


def expected_lookups(body: Mapping[str, Any]) -> list[GroupLookup]:
    """The lookups the resource's next reconcile will make; none for one that reads nothing."""
    wanted = _wants(body)
    return wanted[0] if wanted is not None else []


async def prefetch_directory(directory: Directory, resources: Iterable[Mapping[str, Any]]) -> None:
    """Fill the directory's cache with what `resources` will read, in as few requests as Graph
    allows; never raises a `DirectoryError` (what failed is read again by each reconcile)."""
    lookups: list[GroupLookup] = []
    user_mode: list[bool] = []
    for body in resources:
        wanted = _wants(body)
        if wanted is None:
            continue
        lookups.extend(wanted[0])
        user_mode.extend([wanted[1]] * len(wanted[0]))
    if not lookups:
        return
    # The look-ahead (docs/design.md, Directory semantics): a batch whose reconciles outlast the
    # cache's answers (a refresh or delta round in a create burst, at 0.2-0.5 s a reconcile) has
    # the rest taken along with the first read that misses, not read one resource at a time.
    # Not arrivals: a batch's keys do not make a burst that reads wait for (Arrivals).
    expect = getattr(directory, "expect", None)  # EntraDirectory's; test doubles may lack it
    if callable(expect):
        expect(lookups, arriving=False)
    try:
        resolutions = await directory.lookup_groups(lookups)
    except DirectoryError as error:
        log.info("Prefetch of the refresh's groups failed", extra=fields(error=str(error)))
        return
    members_of = sorted(
        {
            r.group.id
            for r, user in zip(resolutions, user_mode, strict=True)
            if user and r.group is not None and r.state is GroupState.RESOLVED
        }
    )
    # Asked together, so the cache reads them in one flush; a group that fails (or is gone) is
    # the business of the reconciles that read it next.
    await asyncio.gather(*(directory.transitive_members(gid) for gid in members_of), return_exceptions=True)
