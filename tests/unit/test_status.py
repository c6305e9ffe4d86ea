"""Status builders: kstatus conditions, groups, bindings, summary (docs/design.md: The API; Conditions)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from entra_rbac.core.desired import DesiredState, NamespaceInfo
from entra_rbac.core.models import EntraGroupBindingSpec, EntraGroupBindingStatus, GroupRef
from entra_rbac.core.problems import Problem, Reason, invalid_spec_problems
from entra_rbac.core.status import build_status, status_changed
from entra_rbac.core.subjects import Subject
from tests.unit.core_builders import G1, G2, desired_for, not_found, resolved, spec

NOW = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
BODY = spec(
    groups=[{"id": G1}, {"displayName": "Ops"}],
    clusterRoleBindings=[{"clusterRole": "view"}],
    roleBindings=[{"clusterRole": "edit", "namespaces": ["a", "b"]}],
)
NAME_REF = GroupRef(display_name="Ops")
RESOLUTIONS = [resolved(G1, "Payments"), resolved(G2, "Ops", ref=NAME_REF)]


def desired() -> DesiredState:
    return desired_for(BODY, group_ids=(G1, G2), namespaces=[NamespaceInfo("a"), NamespaceInfo("b")])


def status(previous: dict[str, Any] | None = None, now: datetime = NOW, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "generation": 4,
        "spec": BODY,
        "resolutions": RESOLUTIONS,
        "bindings": desired().bindings,
        "problems": (),
    }
    args.update(kwargs)
    return build_status(previous, now=now, **args)


def conditions(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in result["conditions"]}


def test_status_of_a_reconciled_resource() -> None:
    result = status(directory_synced_at=NOW)
    assert result["observedGeneration"] == 4
    assert result["conditions"] == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Reconciled",
            "message": "3 bindings (1 cluster-wide, 2 in namespaces) grant their roles to 2 subjects "
            "from 2 Entra groups",
            "observedGeneration": 4,
            "lastTransitionTime": "2026-11-28T10:00:00Z",
        }
    ]
    assert result["groups"] == [
        {"ref": f"id={G1}", "id": G1, "displayName": "Payments", "state": "Resolved"},
        {"ref": "displayName=Ops", "id": G2, "displayName": "Ops", "state": "Resolved"},
    ]
    assert result["bindings"] == [
        {
            "kind": "ClusterRoleBinding",
            "name": "egb:payments:clusterrole:view",
            "roleRef": "ClusterRole/view",
            "subjects": 2,
        },
        {
            "kind": "RoleBinding",
            "name": "egb:payments:clusterrole:edit",
            "namespace": "a",
            "roleRef": "ClusterRole/edit",
            "subjects": 2,
        },
        {
            "kind": "RoleBinding",
            "name": "egb:payments:clusterrole:edit",
            "namespace": "b",
            "roleRef": "ClusterRole/edit",
            "subjects": 2,
        },
    ]
    assert result["summary"] == {
        "groups": "2/2",
        "bindings": 3,
        "clusterRoleBindings": 1,
        "roleBindings": 2,
        "subjects": 2,
    }
    assert result["lastDirectorySync"] == "2026-11-28T10:00:00Z"
    EntraGroupBindingStatus.model_validate(result)


def test_building_twice_from_the_same_inputs_gives_an_equal_status_and_no_write() -> None:
    first = status()
    second = status(first, now=LATER)
    assert second == first
    assert not status_changed(first, second)


def test_last_transition_time_moves_only_when_a_condition_status_changes() -> None:
    first = status()
    failing = status(first, now=LATER, problems=[Problem(Reason.CONFLICT, "taken")])
    assert failing["conditions"][0]["lastTransitionTime"] == "2026-11-28T10:05:00Z"
    again = status(failing, now=LATER + timedelta(minutes=5), problems=[Problem(Reason.CONFLICT, "other")])
    assert again["conditions"][0]["lastTransitionTime"] == "2026-11-28T10:05:00Z"
    assert status_changed(failing, again)  # the message changed


CASES: list[tuple[str, dict[str, Any], dict[str, tuple[str, str]]]] = [
    (
        "stalling_problem",
        {"problems": [Problem(Reason.ROLE_NOT_ALLOWED, "no", "spec.clusterRoleBindings[0].clusterRole")]},
        {"Ready": ("False", "RoleNotAllowed"), "Stalled": ("True", "RoleNotAllowed")},
    ),
    (
        "directory_unavailable_is_transient",
        {"problems": [Problem(Reason.DIRECTORY_UNAVAILABLE, "503")], "resolutions": None},
        {"Ready": ("False", "DirectoryUnavailable"), "Reconciling": ("True", "DirectoryUnavailable")},
    ),
    (
        "directory_forbidden_needs_a_person",
        {"problems": [Problem(Reason.DIRECTORY_FORBIDDEN, "403")], "resolutions": None},
        {"Ready": ("False", "DirectoryForbidden"), "Stalled": ("True", "DirectoryForbidden")},
    ),
    (
        "revocation_held_waits_for_the_next_read",
        {"problems": [Problem(Reason.REVOCATION_HELD, "held")]},
        {"Ready": ("False", "RevocationHeld"), "Reconciling": ("True", "RevocationHeld")},
    ),
    (
        "writes_pending",
        {"reconciling": True},
        {"Ready": ("False", "Progressing"), "Reconciling": ("True", "Progressing")},
    ),
    ("suspended", {"suspended": True, "resolutions": None}, {"Ready": ("False", "Suspended")}),
    (
        "most_severe_problem_names_ready",
        {"problems": [Problem(Reason.NAMESPACE_NOT_FOUND, "x"), Problem(Reason.INVALID_SPEC, "y")]},
        {"Ready": ("False", "InvalidSpec"), "Stalled": ("True", "InvalidSpec")},
    ),
    (
        "stalled_and_transient_together",
        {"problems": [Problem(Reason.CONFLICT, "x"), Problem(Reason.APPLY_FAILED, "y")]},
        {
            "Ready": ("False", "Conflict"),
            "Reconciling": ("True", "ApplyFailed"),
            "Stalled": ("True", "Conflict"),
        },
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_conditions_follow_kstatus(kwargs: dict[str, Any], expected: dict[str, tuple[str, str]]) -> None:
    result = status(**kwargs)
    assert conditions(result) == expected
    EntraGroupBindingStatus.model_validate(result)


def test_messages_name_the_field_and_count_the_other_problems() -> None:
    problems = [
        Problem(
            Reason.NAMESPACE_NOT_FOUND, "namespace 'gone' does not exist", "spec.roleBindings[0].namespaces"
        ),
        Problem(Reason.GROUP_NOT_FOUND, "no group has displayName 'Ops'", "spec.groups[1]"),
    ]
    ready, stalled = status(problems=problems)["conditions"]
    assert ready["message"] == "spec.groups[1]: no group has displayName 'Ops' (and 1 more problem)"
    assert stalled["message"] == (
        "spec.groups[1]: no group has displayName 'Ops'; "
        "spec.roleBindings[0].namespaces: namespace 'gone' does not exist"
    )


def test_a_pinned_group_that_disappears_keeps_its_id_so_it_can_come_back() -> None:
    first = status()
    gone = not_found(
        NAME_REF, pinned_id=G2, message=f"group {G2} (pinned for displayName=Ops) no longer exists"
    )
    result = status(first, resolutions=[RESOLUTIONS[0], gone])
    assert result["groups"][1] == {
        "ref": "displayName=Ops",
        "id": G2,
        "displayName": "Ops",
        "state": "NotFound",
    }


def test_an_unread_directory_marks_groups_unverified_and_keeps_what_was_known() -> None:
    first = status(directory_synced_at=NOW)
    result = status(
        first, now=LATER, resolutions=None, problems=[Problem(Reason.DIRECTORY_UNAVAILABLE, "503")]
    )
    assert [(g["state"], g.get("id"), g.get("displayName")) for g in result["groups"]] == [
        ("Unverified", G1, "Payments"),
        ("Unverified", G2, "Ops"),
    ]
    assert result["lastDirectorySync"] == "2026-11-28T10:00:00Z"


def test_user_mode_counts_members_per_group() -> None:
    body = spec(groups=[{"id": G1}, {"displayName": "Ops"}], subjects={"kind": "User"})
    result = status(spec=body, member_counts={G1: 12, G2: 0})
    assert [g["members"] for g in result["groups"]] == [12, 0]


def test_bindings_list_is_bounded_but_the_summary_counts_all() -> None:
    body = spec(roleBindings=[{"clusterRole": "edit", "namespaces": [f"ns-{i:03}" for i in range(120)]}])
    many = desired_for(body, namespaces=[NamespaceInfo(f"ns-{i:03}") for i in range(120)])
    result = status(spec=body, resolutions=[resolved(G1)], bindings=many.bindings)
    assert len(result["bindings"]) == 50
    assert [b["namespace"] for b in result["bindings"][:2]] == ["ns-000", "ns-001"]
    assert result["summary"] == {
        "groups": "1/1",
        "bindings": 120,
        "clusterRoleBindings": 0,
        "roleBindings": 120,
        "subjects": 1,
    }


def test_invalid_spec_keeps_the_previous_groups_and_names_the_field() -> None:
    first = status()
    with pytest.raises(ValidationError) as caught:
        EntraGroupBindingSpec.model_validate({"groups": [{"id": "NOT-A-GUID"}], "clusterRoleBindings": []})
    problems = invalid_spec_problems(caught.value)
    result = status(first, spec=None, resolutions=None, problems=problems, generation=5)
    assert result["groups"] == first["groups"]
    assert result["observedGeneration"] == 5
    ready = result["conditions"][0]
    assert (ready["reason"], ready["observedGeneration"]) == ("InvalidSpec", 5)
    assert "spec.groups[0].id" in ready["message"]


def test_status_changed_ignores_keys_it_does_not_write() -> None:
    first = status()
    assert not status_changed({**first, "kopf": {"progress": {}}}, first)
    assert status_changed(None, first)


def test_a_role_name_at_the_length_limit_still_fits_the_status_schema() -> None:
    body = spec(clusterRoleBindings=[{"clusterRole": "r" * 253}])
    bindings = desired_for(body).bindings
    result = status(spec=body, resolutions=[resolved(G1)], bindings=bindings)
    EntraGroupBindingStatus.model_validate(result)


def test_resolutions_must_match_the_spec_groups_one_to_one() -> None:
    with pytest.raises(ValueError, match=r"1 resolutions for 2 spec\.groups entries"):
        status(resolutions=RESOLUTIONS[:1])


@pytest.mark.parametrize(
    ("count", "suffix"), [(1, ""), (2, " (and 1 more problem)"), (3, " (and 2 more problems)")]
)
def test_ready_message_counts_the_problems_it_does_not_show(count: int, suffix: str) -> None:
    problems = [Problem(Reason.NAMESPACE_NOT_FOUND, f"namespace 'n{i}' does not exist") for i in range(count)]
    assert status(problems=problems)["conditions"][0]["message"] == "namespace 'n0' does not exist" + suffix


def test_a_newer_directory_sync_alone_can_be_ignored_so_idle_resyncs_write_nothing() -> None:
    first = status(directory_synced_at=NOW)
    idle = status(first, now=LATER, directory_synced_at=LATER)
    assert status_changed(first, idle)
    assert not status_changed(first, idle, ignoring=("lastDirectorySync",))
    changed = status(first, now=LATER, directory_synced_at=LATER, problems=[Problem(Reason.CONFLICT, "x")])
    assert status_changed(first, changed, ignoring=("lastDirectorySync",))


def test_ready_message_uses_correct_plurals() -> None:
    from entra_rbac.core.status import build_conditions

    one = {"bindings": 1, "clusterRoleBindings": 1, "roleBindings": 0, "subjects": 1}
    [ready] = build_conditions((), generation=1, counts=one, group_count=1)
    assert ready["message"] == (
        "1 binding (1 cluster-wide, 0 in namespaces) grants its role to 1 subject from 1 Entra group"
    )
    two = {"bindings": 2, "clusterRoleBindings": 1, "roleBindings": 1, "subjects": 3}
    [ready] = build_conditions((), generation=1, counts=two, group_count=2)
    assert ready["message"].startswith("2 bindings (1 cluster-wide, 1 in namespaces) grant their roles")
    assert ready["message"].endswith("to 3 subjects from 2 Entra groups")


def test_unverified_groups_keep_the_last_verified_count_beside_the_bindings_kept() -> None:
    """kubectl get egb never shows a suspended resource as 0/2 groups beside its bindings."""
    before = status()
    assert before["summary"]["groups"] == "2/2"
    suspended = status(before, LATER, resolutions=None, suspended=True)
    assert suspended["summary"]["groups"] == "2/2"
    assert suspended["summary"]["bindings"] == before["summary"]["bindings"]
    assert {g["state"] for g in suspended["groups"]} == {"Unverified"}
    assert status(None, resolutions=None, suspended=True, bindings=())["summary"]["groups"] == "0/2"


def test_a_group_added_while_suspended_is_not_counted_and_the_others_still_are() -> None:
    """Suspended with a third group added: `2/3` beside the bindings kept, not `0/3`."""
    before = status()
    grown = spec(
        groups=[{"id": G1}, {"displayName": "Ops"}, {"id": "00000000-0000-0000-0000-000000000009"}],
        clusterRoleBindings=[{"clusterRole": "view"}],
        roleBindings=[{"clusterRole": "edit", "namespaces": ["a", "b"]}],
    )
    suspended = status(before, LATER, spec=grown, resolutions=None, suspended=True)
    assert suspended["summary"]["groups"] == "2/3"
    assert suspended["summary"]["bindings"] == before["summary"]["bindings"]


class _CountedSubjects(tuple[Subject, ...]):
    """A subjects tuple that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Iterator[Subject]:
        type(self).walks += 1
        return super().__iter__()


def test_bindings_sharing_one_subjects_tuple_are_counted_from_it_once() -> None:
    """User mode's CPU (issue 17 point 7): a resource's 20 bindings share one tuple of 1,000
    subjects; the summary and the listed bindings' counts walk it once, not once per binding, and
    a binding holding an equal tuple of its own still counts each subject once."""
    body = spec(roleBindings=[{"clusterRole": "edit", "namespaces": [f"ns-{i:02}" for i in range(20)]}])
    names = [NamespaceInfo(f"ns-{i:02}") for i in range(20)]
    shared = _CountedSubjects(Subject("User", f"user{n:04}@contoso.com") for n in range(1000))
    twin = tuple(shared)
    bindings = [replace(b, subjects=shared) for b in desired_for(body, namespaces=names).bindings]
    bindings[-1] = replace(bindings[-1], subjects=twin)
    _CountedSubjects.walks = 0
    result = status(spec=body, resolutions=[resolved(G1)], bindings=bindings)
    assert result["summary"]["subjects"] == 1000
    assert {b["subjects"] for b in result["bindings"]} == {1000}
    assert _CountedSubjects.walks == 2  # once for the summary, once for the listed counts
