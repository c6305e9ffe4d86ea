"""core.events: what the Events say, what they are named, and when a repeat is a new one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from entra_rbac.core.desired import RoleRef
from entra_rbac.core.events import (
    MAX_NOTE_BYTES,
    EventDraft,
    EventSeries,
    Step,
    bounded,
    change_event,
    event_manifest,
    name_head,
    next_step,
    problem_events,
    series_patch,
)
from entra_rbac.core.plan import Action, Verb
from entra_rbac.core.problems import Problem, Reason
from entra_rbac.core.subjects import Subject
from entra_rbac.core.text import plural

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EDIT, VIEW = RoleRef("ClusterRole", "edit"), RoleRef("ClusterRole", "view")
ALICE, BOB = Subject("User", "alice@contoso.com"), Subject("User", "bob@contoso.com")
G1 = "00000000-0000-0000-0000-000000000001"
# What the API server accepts as metadata.name (a DNS-1123 subdomain of at most 253 characters).
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def action(verb: Verb, namespace: str | None = "payments", role: RoleRef = EDIT, **more: object) -> Action:
    name = f"egb:team:clusterrole:{role.name}"
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    return Action(verb=verb, kind=kind, namespace=namespace, name=name, role_ref=role, **more)  # type: ignore[arg-type]


# --- the audit summary ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "reason", "starts"),
    [
        ([action(Verb.CREATE, added=(ALICE,))], "Granted", "Granted access: created 1 binding (+1 subject)."),
        (
            [action(Verb.DELETE, removed=(ALICE, BOB))],
            "Revoked",
            "Revoked access: deleted 1 binding (-2 subjects).",
        ),
        (
            [action(Verb.PATCH, added=(BOB,), removed=(ALICE,))],
            "GrantedAndRevoked",
            "Granted and revoked access: updated 1 binding (+1 subject, -1 subject).",
        ),
        ([action(Verb.PATCH, changes=("labels",))], "Updated", "Updated bindings: updated 1 binding."),
        (
            [action(Verb.CREATE, None, VIEW, added=(ALICE,)), action(Verb.DELETE, removed=(ALICE,))],
            "GrantedAndRevoked",
            "Granted and revoked access: created 1 binding, deleted 1 binding (+1 subject, -1 subject).",
        ),
    ],
    ids=["create", "delete", "subjects-swapped", "labels-healed", "role-changed"],
)
def test_one_event_summarises_a_reconcile_and_revocations_say_revoked(
    actions: list[Action], reason: str, starts: str
) -> None:
    draft = change_event(actions, [G1])
    assert draft is not None
    assert (draft.type, draft.reason) == ("Normal", reason)
    assert draft.note.startswith(starts), draft.note
    assert f"Entra groups: {G1}." in draft.note


def test_no_write_no_audit_event() -> None:
    assert change_event([], [G1]) is None


def test_the_summary_names_roles_scopes_and_the_first_bindings_within_one_kib() -> None:
    namespaces = [f"team-{i:03d}" for i in range(200)]
    actions = [action(Verb.CREATE, ns, added=(ALICE,)) for ns in namespaces]
    actions.append(action(Verb.CREATE, None, VIEW, added=(ALICE,)))
    draft = change_event(actions, [G1, "00000000-0000-0000-0000-000000000002"])
    assert draft is not None
    note = draft.note
    assert len(note.encode("utf-8")) <= MAX_NOTE_BYTES
    assert note.startswith("Granted access: created 201 bindings (+1 subject).")
    assert "Roles: ClusterRole/edit, ClusterRole/view." in note
    assert (
        "Scope: cluster-wide; namespaces team-000, team-001, team-002, team-003, team-004 and 195 more."
        in note
    )
    assert (
        "Bindings: created RoleBinding team-000/egb:team:clusterrole:edit (ClusterRole/edit, +1 subject)"
        in note
    )
    listed = note.count("created RoleBinding")
    assert 0 < listed < 201
    assert note.endswith(f"; and {201 - listed} more bindings"), note[-80:]


def test_bounded_cuts_bytes_never_a_character() -> None:
    text = "é" * 600  # 1200 bytes
    cut = bounded(text)
    assert len(cut.encode("utf-8")) <= MAX_NOTE_BYTES
    assert cut.endswith("...")
    assert bounded("short") == "short"


@pytest.mark.parametrize(("n", "text"), [(0, "0 bindings"), (1, "1 binding"), (2, "2 bindings")])
def test_plurals(n: int, text: str) -> None:
    assert plural(n, "binding") == text


# --- problems ------------------------------------------------------------------------------


def test_one_warning_per_problem_reason_most_severe_first() -> None:
    problems = [
        Problem(Reason.ROLE_NOT_FOUND, "ClusterRole missing does not exist", "spec.roleBindings[1]"),
        Problem(Reason.CONFLICT, "RoleBinding a/b already exists"),
        Problem(Reason.ROLE_NOT_FOUND, "ClusterRole other does not exist", "spec.roleBindings[0]"),
    ]
    drafts = problem_events(problems)
    assert [(d.type, d.reason) for d in drafts] == [("Warning", "Conflict"), ("Warning", "RoleNotFound")]
    assert drafts[1].note == (
        "spec.roleBindings[0]: ClusterRole other does not exist; "
        "spec.roleBindings[1]: ClusterRole missing does not exist"
    )


def test_a_directory_failure_is_one_series_whatever_its_error_text() -> None:
    first = problem_events([Problem(Reason.DIRECTORY_UNAVAILABLE, "Graph answered 503")])[0]
    later = problem_events([Problem(Reason.DIRECTORY_UNAVAILABLE, "timed out after 10s")])[0]
    assert first.series == later.series
    one = problem_events([Problem(Reason.CONFLICT, "RoleBinding a/x already exists")])[0]
    other = problem_events([Problem(Reason.CONFLICT, "RoleBinding b/x already exists")])[0]
    assert one.series != other.series


# --- deduplication -------------------------------------------------------------------------

DRAFT = EventDraft("Warning", "Conflict", "Reconcile", "RoleBinding a/x already exists", "Conflict\nx")


def posted(at: datetime = NOW, series: str = DRAFT.series) -> EventSeries:
    return EventSeries("team.abcde", series, 1, at, at, at)


@pytest.mark.parametrize(
    ("series", "later", "step"),
    [
        (None, 0, Step.CREATE),
        (posted(series="Conflict\nanother"), 5, Step.CREATE),
        (posted(), 5, Step.COUNT),
        (posted(), 60, Step.PATCH),
        (posted(), 61, Step.PATCH),
    ],
    ids=["first", "changed", "repeat-within-interval", "repeat-at-interval", "repeat-after"],
)
def test_a_repeat_while_unchanged_counts_up_at_most_once_per_interval(
    series: EventSeries | None, later: float, step: Step
) -> None:
    assert next_step(series, DRAFT, NOW + timedelta(seconds=later), interval=60) is step


def test_the_count_patch_carries_every_repeat_seen() -> None:
    series = posted().seen(NOW + timedelta(seconds=5)).seen(NOW + timedelta(seconds=70))
    assert series_patch(series) == {"count": 3, "lastTimestamp": "2026-12-01T12:01:10Z"}


# --- names and manifests -------------------------------------------------------------------


@pytest.mark.parametrize(
    "owner",
    [
        "team",
        "a" * 56,
        "a" * 57,
        "a" * 253,
        "a" * 44 + "-b.c.d" * 30,
        "a." * 126 + "a",
        "x" * 45 + "-" + "y" * 5,
    ],
    ids=["short", "56", "57", "253", "dash-at-cut", "dots", "dash-before-suffix"],
)
def test_event_names_are_valid_for_every_legal_resource_name(owner: str) -> None:
    head = name_head(owner)
    # The API server appends five lower-case alphanumerics to generateName.
    assert DNS_SUBDOMAIN.match(head + "x1z2q"), head
    # kube-apiserver keeps 58 characters of a generateName: all of ours, never a cut hash.
    assert len(head) <= 58
    if len(owner) < 58:
        assert head == f"{owner}."


def test_long_names_differ_by_their_hash() -> None:
    assert name_head("a" * 252 + "b") != name_head("a" * 252 + "c")


def test_the_manifest_is_what_kubectl_reads() -> None:
    manifest = event_manifest(DRAFT, owner_name="team", owner_uid="uid-1", instance="pod-1", now=NOW)
    assert manifest["metadata"] == {"generateName": "team.", "namespace": "default"}
    assert manifest["involvedObject"] == {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "name": "team",
        "uid": "uid-1",
    }
    assert (manifest["type"], manifest["reason"], manifest["count"]) == ("Warning", "Conflict", 1)
    assert manifest["firstTimestamp"] == manifest["lastTimestamp"] == "2026-12-01T12:00:00Z"
    assert (manifest["reportingComponent"], manifest["reportingInstance"]) == ("entra-rbac-operator", "pod-1")


def test_the_summary_counts_subjects_shared_by_many_writes_once() -> None:
    """User mode's CPU (issue 17 point 7): 20 creates of one resource add the same tuple of
    1,000 subjects; an equal tuple of its own still counts each subject once."""
    shared = tuple(Subject("User", f"user{n:04}@contoso.com") for n in range(1000))
    creates = [action(Verb.CREATE, namespace=f"ns-{i:02}", added=shared) for i in range(19)]
    creates.append(action(Verb.CREATE, namespace="ns-19", added=shared[:500] + shared[500:]))
    draft = change_event(creates, [G1])
    assert draft is not None
    assert draft.note.startswith("Granted access: created 20 bindings (+1000 subjects).")
