"""Status builders: what `status` says after a reconcile (docs/design.md: The API; Conditions).

Holds `build_status` (the whole status as a camelCase dict, ready to patch), its parts (group
entries, bindings list, summary, kstatus conditions) and `status_changed`, which says whether a
write is needed at all (an idle resync writes nothing). Pure and deterministic: "now" is an
argument, and building twice from the same inputs gives an equal result, because a condition
keeps its `lastTransitionTime` while its status does not change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from entra_rbac.core import windows
from entra_rbac.core.desired import RoleRef
from entra_rbac.core.entra import GroupResolution
from entra_rbac.core.models import EntraGroupBindingSpec, GrantState, GroupState, SubjectKind
from entra_rbac.core.naming import BindingKey, BindingKind, shard_number
from entra_rbac.core.problems import TRANSIENT, Problem, Reason, sort_problems
from entra_rbac.core.subjects import Subject, distinct_subjects
from entra_rbac.core.text import plural

MAX_LISTED_BINDINGS = 50
MAX_MESSAGE_LENGTH = 1024
MAX_ROLE_REF_LENGTH = 264
READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"


class BindingView(Protocol):
    """What status needs of a binding: `desired.Binding` and `plan.ObservedBinding` both fit."""

    @property
    def kind(self) -> BindingKind: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def role_ref(self) -> RoleRef: ...
    @property
    def subjects(self) -> tuple[Subject, ...]: ...


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC at second precision, as Kubernetes writes times (naive means UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- groups -------------------------------------------------------------------------------


def group_entries(
    spec: EntraGroupBindingSpec,
    resolutions: Sequence[GroupResolution] | None,
    previous: Mapping[str, Any] | None,
    member_counts: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One entry per spec group, in spec order.

    With `resolutions` (one per spec group, same order) the entries say what Entra answered; an
    id pinned for a name reference stays even when the group is gone, so a restored group comes
    back. Without them (the directory was not read or failed) every group is `Unverified` and
    keeps what the previous status knew of it.
    """
    if resolutions is not None and len(resolutions) != len(spec.groups):
        raise ValueError(f"{len(resolutions)} resolutions for {len(spec.groups)} spec.groups entries")
    known = {e.get("ref"): e for e in (previous or {}).get("groups") or [] if isinstance(e, Mapping)}
    counting = spec.subjects.kind is SubjectKind.USER
    entries = []
    for index, ref in enumerate(spec.groups):
        before = known.get(ref.key, {})
        entry: dict[str, Any] = {"ref": ref.key}
        if resolutions is None:
            entry["id"] = ref.id or before.get("id")
            entry["displayName"] = before.get("displayName")
            entry["state"] = GroupState.UNVERIFIED.value
            entry["members"] = before.get("members") if counting else None
        else:
            resolution = resolutions[index]
            group = resolution.group if resolution.state is GroupState.RESOLVED else None
            entry["id"] = group.id.lower() if group else (ref.id or resolution.lookup.pinned_id)
            entry["displayName"] = group.display_name if group else before.get("displayName")
            entry["state"] = resolution.state.value
            entry["members"] = (member_counts or {}).get(group.id.lower()) if counting and group else None
        entries.append({k: v for k, v in entry.items() if v is not None})
    return entries


# --- bindings and summary -----------------------------------------------------------------


def _binding_key(binding: BindingView) -> BindingKey:
    return BindingKey.of(binding.kind, binding.namespace, binding.name)


def binding_entries(bindings: Sequence[BindingView]) -> list[dict[str, Any]]:
    """The first 50 bindings by (kind, namespace, name); the summary holds the full counts."""
    entries = []
    counted: dict[int, int] = {}  # distinct subjects per subjects tuple (a resource shares one)
    for binding in sorted(bindings, key=_binding_key)[:MAX_LISTED_BINDINGS]:
        entry: dict[str, Any] = {"kind": binding.kind, "name": binding.name}
        if binding.namespace:
            entry["namespace"] = binding.namespace
        # The CRD bounds roleRef at 264 characters; "ClusterRole/" plus a 253-character name is
        # one more, and a status the API server refuses would hide everything else.
        entry["roleRef"] = str(binding.role_ref)[:MAX_ROLE_REF_LENGTH]
        subjects = binding.subjects
        if id(subjects) not in counted:
            counted[id(subjects)] = len(set(subjects))
        entry["subjects"] = counted[id(subjects)]
        entries.append(entry)
    return entries


def resolved_count(groups: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for g in groups if g.get("state") == GroupState.RESOLVED.value)


def summary(bindings: Sequence[BindingView], groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts, including what the printer columns show: GROUPS (`resolved/total`) and BINDINGS.

    `shards`, only when a binding is written as several: the highest shard among `bindings` (the
    resource's own, counted). It is the operator's record of the shards it wrote, kept where
    nobody who may only write RoleBindings can change it: after a restart a shard above it (and
    above what the split asks for) is none of the resource's (docs/design.md, Ownership)."""
    resolved = resolved_count(groups)
    cluster_wide = sum(1 for b in bindings if b.kind == "ClusterRoleBinding")
    counts: dict[str, Any] = {
        "groups": f"{resolved}/{len(groups)}",
        "bindings": len(bindings),
        "clusterRoleBindings": cluster_wide,
        "roleBindings": len(bindings) - cluster_wide,
        "subjects": len(distinct_subjects(b.subjects for b in bindings)),
    }
    shards = max((shard_number(b.name) for b in bindings), default=1)
    if shards > 1:
        counts["shards"] = shards
    return counts


def shards_written(status: Mapping[str, Any]) -> int:
    """The shards status says the resource's bindings were written as (`summary.shards`; 1 when
    absent or unreadable)."""
    counts = status.get("summary")
    shards = counts.get("shards") if isinstance(counts, Mapping) else None
    return shards if type(shards) is int and shards > 1 else 1


# --- conditions ---------------------------------------------------------------------------


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[: MAX_MESSAGE_LENGTH - 3] + "..."


def _listing(problems: Sequence[Problem]) -> str:
    return _bounded("; ".join(p.text() for p in problems))


def _ready_message(problems: Sequence[Problem], counts: Mapping[str, Any], group_count: int) -> str:
    if problems:
        others = len(problems) - 1
        more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
        return _bounded(problems[0].text() + more)
    return (
        f"{plural(counts['bindings'], 'binding')} ({counts['clusterRoleBindings']} cluster-wide, "
        f"{counts['roleBindings']} in namespaces) "
        f"{'grants its role' if counts['bindings'] == 1 else 'grant their roles'} to "
        f"{plural(counts['subjects'], 'subject')} from {plural(group_count, 'Entra group')}"
    )


def _condition(kind: str, status: bool, reason: str, message: str, generation: int | None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return condition


def build_conditions(
    problems: Sequence[Problem],
    *,
    generation: int | None,
    counts: Mapping[str, Any],
    group_count: int,
    reconciling: bool = False,
    suspended: bool = False,
    expired: str | None = None,
) -> list[dict[str, Any]]:
    """kstatus conditions, without times: `Ready` always; `Reconciling` / `Stalled` only when True
    (kstatus reads an absent abnormal-true condition as False). `expired`: every time-bound
    grant has ended (its text is when the last one did): Ready=True with reason Expired."""
    ordered = sort_problems(problems)
    stalling = [p for p in ordered if p.stalls]
    transient = [p for p in ordered if p.reason in TRANSIENT]
    if suspended:
        message = "spec.suspend is true: bindings are left exactly as they are; set it to false to resume"
        return [_condition(READY, False, Reason.SUSPENDED.value, message, generation)]
    if ordered:
        ready_reason = ordered[0].reason.value
    elif reconciling:
        ready_reason = Reason.PROGRESSING.value
    elif expired is not None:
        ready_reason = Reason.EXPIRED.value
    else:
        ready_reason = Reason.RECONCILED.value
    ready_message = _ready_message(ordered, counts, group_count)
    if reconciling and not ordered:
        ready_message = "applying changes to the bindings"
    elif expired is not None and not ordered:
        ready_message = f"every grant has ended (the last at {expired}); nothing is granted any more"
    ready = not ordered and not reconciling
    conditions = [_condition(READY, ready, ready_reason, ready_message, generation)]
    if reconciling or transient:
        reason = transient[0].reason.value if transient else Reason.PROGRESSING.value
        message = _listing(transient) if transient else ready_message
        conditions.append(_condition(RECONCILING, True, reason, message, generation))
    if stalling:
        conditions.append(_condition(STALLED, True, stalling[0].reason.value, _listing(stalling), generation))
    return conditions


def with_transition_times(
    conditions: Sequence[Mapping[str, Any]], previous: Mapping[str, Any] | None, now: datetime
) -> list[dict[str, Any]]:
    """Each condition with `lastTransitionTime`: kept from the previous status while the
    condition's status is unchanged, else `now`."""
    before = {c.get("type"): c for c in (previous or {}).get("conditions") or [] if isinstance(c, Mapping)}
    stamped = []
    for condition in conditions:
        old = before.get(condition["type"])
        kept = old is not None and old.get("status") == condition["status"] and old.get("lastTransitionTime")
        stamped.append({**condition, "lastTransitionTime": kept or timestamp(now)})
    return stamped


# --- the whole status ---------------------------------------------------------------------


def build_status(
    previous: Mapping[str, Any] | None,
    *,
    now: datetime,
    generation: int | None,
    spec: EntraGroupBindingSpec | None,
    resolutions: Sequence[GroupResolution] | None,
    bindings: Sequence[BindingView],
    problems: Sequence[Problem] = (),
    member_counts: Mapping[str, int] | None = None,
    reconciling: bool = False,
    suspended: bool = False,
    directory_synced_at: datetime | None = None,
    starts_applied: bool = True,
) -> dict[str, Any]:
    """The complete status (camelCase, ready for a merge patch of `/status`).

    - `previous`: the status as read (times and pinned ids carry over); None for a new resource.
    - `spec`: the parsed spec, or None when it is invalid (the previous groups, bindings and
      summary are kept: the operator's last record, never bindings read now; see `_kept_bindings`).
    - `resolutions`: the directory's answer in spec order, or None when it was not read or failed.
    - `bindings`: the bindings as they now stand (the desired ones once applied; the observed
      owned ones when nothing was applied, e.g. fail-static or suspended).
    - `problems`: every problem (desired.problems, plan conflicts, directory or apply errors).
    - `reconciling`: writes are still pending (e.g. some failed and will be retried).
    - `directory_synced_at`: when every group was verified in Entra this time; None keeps the
      previous `lastDirectorySync`.
    - time-bound grants (docs/design.md, Time-bound grants) are listed in `grants` with their
      state at `now`, the next end in `nextExpiry`; with the spec's every grant ended (and no
      problem) Ready is True with reason `Expired`. An invalid spec keeps the previous ones.
      `starts_applied` False (Entra not read, or nothing applied): a grant whose window opened
      has no binding yet, so it stays as the previous status had it (Pending).
    """
    previous = previous or {}
    if spec is not None:
        groups = group_entries(spec, resolutions, previous, member_counts)
    else:
        groups = [dict(e) for e in previous.get("groups") or [] if isinstance(e, Mapping)]
    counts = summary(bindings, groups)
    listed = binding_entries(bindings)
    if spec is None:
        # Without a spec the targets are unknown, so no binding read now is known to be the
        # resource's (anyone may write one carrying its marks): the last record the operator
        # made of its own stands, as nothing is written until the spec is fixed.
        listed, counts = _kept_bindings(previous, counts)
    # Unverified groups (suspended, directory down) are not "not found": GROUPS keeps the last
    # verified count beside the bindings kept, never a `0/1` contradicting them in `kubectl get`.
    # With as many groups as then, that count; with groups added or removed meanwhile (while
    # suspended), the groups resolved now and the unverified ones that were resolved before.
    known = (previous.get("summary") or {}).get("groups")
    unverified = any(g.get("state") == GroupState.UNVERIFIED.value for g in groups)
    if unverified and isinstance(known, str) and known.endswith(f"/{len(groups)}"):
        counts["groups"] = known
    elif unverified:
        before = {
            e.get("ref"): e.get("state") for e in previous.get("groups") or [] if isinstance(e, Mapping)
        }
        kept = sum(
            1
            for g in groups
            if g.get("state") == GroupState.UNVERIFIED.value
            and before.get(g.get("ref")) == GroupState.RESOLVED.value
        )
        counts["groups"] = f"{resolved_count(groups) + kept}/{len(groups)}"
    grants, expiry, ended = _time_bound(spec, previous, now, starts_applied=starts_applied)
    conditions = build_conditions(
        problems,
        generation=generation,
        counts=counts,
        group_count=resolved_count(groups),
        reconciling=reconciling,
        suspended=suspended,
        expired=ended,
    )
    synced = timestamp(directory_synced_at) if directory_synced_at else previous.get("lastDirectorySync")
    return {
        "grants": grants,
        "nextExpiry": expiry,
        "observedGeneration": generation,
        "conditions": with_transition_times(conditions, previous, now),
        "groups": groups,
        "bindings": listed,
        "summary": counts,
        "lastDirectorySync": synced,
    }


def _kept_bindings(
    previous: Mapping[str, Any], empty: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The previous status's `bindings` and `summary` (`empty`, the counts of no binding, where
    it has none that reads as one)."""
    entries = previous.get("bindings")
    counts = previous.get("summary")
    listed = [dict(e) for e in entries if isinstance(e, Mapping)] if isinstance(entries, list) else []
    return listed, dict(counts) if isinstance(counts, Mapping) else dict(empty)


def _time_bound(
    spec: EntraGroupBindingSpec | None, previous: Mapping[str, Any], now: datetime, *, starts_applied: bool
) -> tuple[list[dict[str, Any]] | None, str | None, str | None]:
    """(status.grants, status.nextExpiry, when the last grant ended if all have): None when the
    resource has no time-bound grant (a merge patch of null leaves nothing behind)."""
    if spec is None:
        kept = previous.get("grants")
        return (list(kept) if isinstance(kept, list) else None), previous.get("nextExpiry"), None
    entries = windows.grant_entries(spec, now)
    if not starts_applied:
        entries = _starts_withheld(entries, previous.get("grants"))
    expiry = windows.next_expiry(spec, now)
    ended = None
    if windows.all_expired(spec, now):
        ends = [g.window.end for g in windows.grants_of(spec) if g.window.end is not None]
        ended = timestamp(max(ends))
    return entries or None, timestamp(expiry) if expiry is not None else None, ended


def _starts_withheld(entries: list[dict[str, Any]], previous: Any) -> list[dict[str, Any]]:
    was = {
        (e.get("grant"), e.get("roleRef")): e.get("state") for e in previous or [] if isinstance(e, Mapping)
    }
    active = GrantState.ACTIVE.value
    return [
        {**e, "state": GrantState.PENDING.value}
        if e["state"] == active and was.get((e["grant"], e["roleRef"])) != active
        else e
        for e in entries
    ]


def status_changed(
    previous: Mapping[str, Any] | None, new: Mapping[str, Any], *, ignoring: Collection[str] = ()
) -> bool:
    """Whether writing `new` would change anything. Only the keys we write count: others that
    live in status (e.g. kopf's own) are neither compared nor touched by a merge patch.

    `ignoring` names keys whose change alone is no reason to write, e.g. `("lastDirectorySync",)`
    so that an idle resync, which verifies the directory but changes nothing else, writes nothing.
    """
    before = previous or {}
    return any(before.get(key) != value for key, value in new.items() if key not in ignoring)
