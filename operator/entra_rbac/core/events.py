"""The Events a reconcile posts about its resource: the audit trail and the problems (docs/design.md, Events).

Holds the pure parts: `change_event` (one Normal Event summarising every write of a reconcile:
counts, then the first bindings), `problem_events` (one Warning per problem reason),
`EventSeries` and `next_step` (deduplication: a repeat while nothing changed counts up the Event
already posted instead of posting another), and the manifests (`event_manifest`,
`series_patch`). No I/O and no clock: "now" is an argument; the reconciler posts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from entra_rbac.constants import API_VERSION, KIND, OPERATOR_NAME
from entra_rbac.core.plan import Action, Verb
from entra_rbac.core.problems import Problem, Reason, sort_problems
from entra_rbac.core.status import timestamp
from entra_rbac.core.subjects import distinct_subjects
from entra_rbac.core.text import bounded as text_bounded
from entra_rbac.core.text import plural

# Events about a cluster-scoped object live in `default` (the API server accepts no other
# namespace but kube-system for them); `kubectl describe` finds them in every namespace.
EVENT_NAMESPACE = "default"
# events.k8s.io refuses a `note` over 1024 bytes (NoteLengthLimit), as it does the message of a
# core/v1 Event carrying eventTime: cut there, an Event reads the same through either API.
MAX_NOTE_BYTES = 1024
# kube-apiserver keeps at most 58 characters of a generateName and appends 5 random ones
# (apiserver's names.SimpleNameGenerator: maxGeneratedNameLength = 63 - 5).
_MAX_NAME_HEAD = 58
# What a summary lists by name before "and N more".
MAX_LISTED_GROUPS = 5
MAX_LISTED_NAMESPACES = 5
MAX_LISTED_ROLES = 5
# Problems whose message holds what varies between attempts (an error's text, a wait): a repeat
# of the reason is the same problem. Other reasons carry spec paths and names only, so a
# different message is a different problem, and a new Event.
_KEYED_BY_REASON = frozenset({Reason.DIRECTORY_UNAVAILABLE, Reason.APPLY_FAILED})

EventType = Literal["Normal", "Warning"]


def bounded(text: str, limit: int = MAX_NOTE_BYTES) -> str:
    """`text` cut to the note's 1 KiB of UTF-8 (or `limit` bytes)."""
    return text_bounded(text, limit)


@dataclass(frozen=True)
class EventDraft:
    """An Event to post: `series` says which earlier Event a repeat of it continues."""

    type: EventType
    reason: str
    action: str
    note: str
    series: str

    @property
    def warning(self) -> bool:
        return self.type == "Warning"


# --- the audit trail: one Event per change ------------------------------------------------


def _where(action: Action) -> str:
    return (
        f"{action.kind} {action.namespace}/{action.name}"
        if action.namespace
        else f"{action.kind} {action.name}"
    )


def _listed(items: Sequence[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def _line(action: Action) -> str:
    """One binding of the summary, e.g.
    `deleted RoleBinding a/egb:x:clusterrole:edit (ClusterRole/edit, -1 subject)`."""
    verb = {Verb.CREATE: "created", Verb.PATCH: "updated", Verb.REPLACE: "replaced", Verb.DELETE: "deleted"}
    details = [str(action.role_ref)]
    if action.added:
        details.append(f"+{plural(len(action.added), 'subject')}")
    if action.removed:
        details.append(f"-{plural(len(action.removed), 'subject')}")
    if action.changes:
        details.append(f"{', '.join(action.changes)} changed")
    return f"{verb[action.verb]} {_where(action)} ({', '.join(details)})"


def change_reason(actions: Sequence[Action]) -> str:
    """`Granted` (access only added), `Revoked` (only removed), `GrantedAndRevoked`, or `Updated`
    (neither: labels or annotations healed)."""
    granted = any(a.verb is Verb.CREATE or a.added for a in actions)
    revoked = any(a.verb is Verb.DELETE or a.removed for a in actions)
    if granted and revoked:
        return "GrantedAndRevoked"
    return "Granted" if granted else "Revoked" if revoked else "Updated"


def change_event(actions: Sequence[Action], groups: Sequence[str]) -> EventDraft | None:
    """One Normal Event for every write of one reconcile, or None when nothing was written.

    The note names the counts, the roles, where (cluster-wide and/or the namespaces), the Entra
    groups the subjects come from, then as many bindings as fit in 1 KiB, e.g. `Revoked access:
    deleted 1 binding (-1 subject). Roles: ClusterRole/edit. Scope: namespaces payments. Entra
    groups: <id>. Bindings: deleted RoleBinding payments/egb:... (ClusterRole/edit, -1 subject)`.
    The operator's log has one line per binding written, for whoever needs every one.
    """
    if not actions:
        return None
    reason = change_reason(actions)
    counts = [
        f"{verb} {plural(n, 'binding')}"
        for verb, n in (
            ("created", sum(a.verb is Verb.CREATE for a in actions)),
            ("updated", sum(a.verb in (Verb.PATCH, Verb.REPLACE) for a in actions)),
            ("deleted", sum(a.verb is Verb.DELETE for a in actions)),
        )
        if n
    ]
    added = len(distinct_subjects(a.added for a in actions))
    removed = len(distinct_subjects(a.removed for a in actions))
    subjects = [
        text
        for n, text in ((added, f"+{plural(added, 'subject')}"), (removed, f"-{plural(removed, 'subject')}"))
        if n
    ]
    head = {
        "Granted": "Granted access",
        "Revoked": "Revoked access",
        "GrantedAndRevoked": "Granted and revoked access",
        "Updated": "Updated bindings",
    }[reason]
    parts = [f"{head}: {', '.join(counts)}" + (f" ({', '.join(subjects)})" if subjects else "") + "."]
    roles = sorted({str(a.role_ref) for a in actions})
    parts.append(f"Roles: {_listed(roles, MAX_LISTED_ROLES)}.")
    namespaces = sorted({a.namespace for a in actions if a.namespace})
    scopes = (["cluster-wide"] if any(a.namespace is None for a in actions) else []) + (
        [f"namespaces {_listed(namespaces, MAX_LISTED_NAMESPACES)}"] if namespaces else []
    )
    parts.append(f"Scope: {'; '.join(scopes)}.")
    parts.append(f"Entra groups: {_listed(sorted(groups), MAX_LISTED_GROUPS) if groups else 'none'}.")
    note = _fit(" ".join(parts), [_line(a) for a in actions])
    return EventDraft("Normal", reason, "WriteBindings", note, series="")


def _fit(head: str, lines: Sequence[str]) -> str:
    """`head`, then ` Bindings: ` and as many `lines` as fit in the note, then `and N more`."""
    note = head
    for index, line in enumerate(lines):
        candidate = f"{note}{' Bindings: ' if index == 0 else '; '}{line}"
        rest = len(lines) - index - 1
        # Room is kept for the "and N more" of what comes after this line.
        tail = f"; and {plural(rest, 'more binding')}" if rest else ""
        if len((candidate + tail).encode("utf-8")) > MAX_NOTE_BYTES:
            left = len(lines) - index
            return bounded(f"{note}{' Bindings:' if index == 0 else ';'} and {plural(left, 'more binding')}")
        note = candidate
    return bounded(note)


# --- problems: one Warning per reason -----------------------------------------------------


def problem_events(problems: Iterable[Problem]) -> list[EventDraft]:
    """One Warning Event per problem reason, most severe first, its note listing that reason's
    problems (`spec.groups[0]: ...; spec.groups[2]: ...`) within 1 KiB."""
    by_reason: dict[Reason, list[Problem]] = {}
    for problem in sort_problems(problems):
        by_reason.setdefault(problem.reason, []).append(problem)
    drafts = []
    for reason, found in by_reason.items():
        note = bounded("; ".join(p.text() for p in found))
        series = reason.value if reason in _KEYED_BY_REASON else f"{reason.value}\n{note}"
        drafts.append(EventDraft("Warning", reason.value, "Reconcile", note, series=series))
    return drafts


# --- deduplication: series ----------------------------------------------------------------


@dataclass(frozen=True)
class EventSeries:
    """A Warning already posted, and how often it was seen since (core/v1 `count`)."""

    name: str  # the Event object's name (the API server generated it)
    series: str  # EventDraft.series of what it reports
    count: int
    first: datetime
    last: datetime  # when it was last seen
    written: datetime  # when the object was last written (created or patched)

    def seen(self, now: datetime) -> EventSeries:
        return replace(self, count=self.count + 1, last=now)


class Step(Enum):
    """What to do with a Warning seen again."""

    CREATE = "create"  # new, or different from what was posted: a new Event
    PATCH = "patch"  # the same, and the posted one was last written an interval ago: count it up there
    COUNT = "count"  # the same, written recently: count it up in memory only (the next patch carries it)


def next_step(series: EventSeries | None, draft: EventDraft, now: datetime, interval: float) -> Step:
    """Deduplication, as client-go's event recorders do it: an Event seen again while unchanged
    updates the one posted (its count and last time, like events.k8s.io's `series`) instead of
    adding an object, and at most once per `interval` seconds, so a resource that stays broken
    costs one write per interval however often it is reconciled."""
    if series is None or series.series != draft.series:
        return Step.CREATE
    if (now - series.written).total_seconds() >= interval:
        return Step.PATCH
    return Step.COUNT


# --- manifests ----------------------------------------------------------------------------


def name_head(owner_name: str) -> str:
    """The `generateName` of an Event about `owner_name`: its name and a dot, or, when that is
    longer than the 58 characters the API server keeps, its head and a hash of the whole (so
    the Events of two long names sharing a head still tell them apart). The API server adds
    5 characters. Valid for every legal name."""
    head = f"{owner_name}."
    if len(head) <= _MAX_NAME_HEAD:
        return head
    digest = hashlib.sha256(owner_name.encode("utf-8")).hexdigest()[:10]
    return f"{owner_name[: _MAX_NAME_HEAD - len(digest) - 2].rstrip('.-')}.{digest}."


def event_manifest(
    draft: EventDraft, *, owner_name: str, owner_uid: str, instance: str, now: datetime
) -> dict[str, Any]:
    """A core/v1 Event about the EntraGroupBinding: `count`, `firstTimestamp` and `lastTimestamp`
    are what `kubectl describe` (`x3 over 10m`) and `kubectl get events` (COUNT, LAST SEEN) read."""
    stamp = timestamp(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": name_head(owner_name), "namespace": EVENT_NAMESPACE},
        "involvedObject": {"apiVersion": API_VERSION, "kind": KIND, "name": owner_name, "uid": owner_uid},
        "reason": draft.reason,
        "message": bounded(draft.note),
        "type": draft.type,
        "action": draft.action,
        "source": {"component": OPERATOR_NAME},
        "reportingComponent": OPERATOR_NAME,
        "reportingInstance": instance[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def series_patch(series: EventSeries) -> dict[str, Any]:
    """The merge patch that counts a repeat on the Event posted (core/v1 `count`, `lastTimestamp`)."""
    return {"count": series.count, "lastTimestamp": timestamp(series.last)}
