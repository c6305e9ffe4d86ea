"""Problems: the one precedence (and docs/troubleshooting.md stating it), spec order, deduplication,
InvalidSpec field paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.problems import (
    PRECEDENCE,
    SEVERITY,
    STALLING,
    TRANSIENT,
    Problem,
    Reason,
    invalid_spec_problems,
    sort_problems,
)
from entra_rbac.core.status import build_conditions, summary


def test_problems_sort_most_severe_first_then_in_spec_order() -> None:
    problems = [
        Problem(Reason.NAMESPACE_NOT_FOUND, "n", "spec.roleBindings[0].namespaces[0]"),
        Problem(Reason.GROUP_NOT_FOUND, "g10", "spec.groups[10]"),
        Problem(Reason.GROUP_NOT_FOUND, "g2", "spec.groups[2]"),
        Problem(Reason.DIRECTORY_UNAVAILABLE, "503"),
        Problem(Reason.INVALID_SPEC, "bad", "spec.groups"),
        Problem(Reason.GROUP_NOT_FOUND, "g2", "spec.groups[2]"),
    ]
    assert [p.message for p in sort_problems(problems)] == ["bad", "503", "g2", "g10", "n"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"groups": [{"id": "NOT-A-GUID"}], "clusterRoleBindings": [{"clusterRole": "view"}]},
            "spec.groups[0].id",
        ),
        ({"groups": [{"id": "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"}]}, "spec"),
        (
            {
                "groups": [{"id": "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"}],
                "roleBindings": [{"clusterRole": "edit", "namespaces": ["Bad_Name"]}],
            },
            "spec.roleBindings[0].namespaces[0]",
        ),
    ],
)
def test_invalid_spec_problems_name_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EntraGroupBindingSpec.model_validate(spec)
    problems = invalid_spec_problems(caught.value)
    assert [p.reason for p in problems] == [Reason.INVALID_SPEC]
    assert problems[0].field == field
    assert problems[0].message
    assert not problems[0].message.startswith("Value error")


# --- the one precedence -------------------------------------------------------------------

TROUBLESHOOTING = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"


def _documented_order() -> list[str]:
    """The reasons of docs/troubleshooting.md's reason table, top to bottom."""
    lines = TROUBLESHOOTING.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Reason | Condition"))
    reasons = []
    for line in lines[start + 2 :]:
        found = re.match(r"\| `(\w+)` \|", line)
        if found is None:
            break
        reasons.append(found.group(1))
    return reasons


def test_the_troubleshooting_table_lists_every_reason_in_precedence_order() -> None:
    assert _documented_order() == [r.value for r in PRECEDENCE]
    assert set(PRECEDENCE) == set(Reason)


def test_every_problem_reason_either_stalls_or_is_retried() -> None:
    assert set(STALLING).isdisjoint(TRANSIENT)
    assert set(SEVERITY) == set(STALLING) | set(TRANSIENT)
    not_problems = {Reason.SUSPENDED, Reason.PROGRESSING, Reason.EXPIRED, Reason.RECONCILED}
    assert set(PRECEDENCE) - set(SEVERITY) == not_problems


def _ready(problems: list[Problem], **kwargs: bool) -> str:
    conditions = build_conditions(problems, generation=1, counts=summary([], []), group_count=1, **kwargs)
    return str(next(c for c in conditions if c["type"] == "Ready")["reason"])


# Every pair of reasons, in both orders of arrival: Ready shows the one PRECEDENCE ranks first.
PAIRS = [(a, b) for i, a in enumerate(SEVERITY) for b in SEVERITY[i + 1 :]]


@pytest.mark.parametrize(("higher", "lower"), PAIRS, ids=[f"{a.value}>{b.value}" for a, b in PAIRS])
def test_ready_shows_the_reason_of_highest_precedence(higher: Reason, lower: Reason) -> None:
    for problems in (
        [Problem(higher, "h"), Problem(lower, "l")],
        [Problem(lower, "l"), Problem(higher, "h")],
    ):
        assert _ready(problems) == higher.value
        assert _ready(problems, reconciling=True) == higher.value
        assert _ready(problems, suspended=True) == Reason.SUSPENDED.value


@pytest.mark.parametrize(
    ("problems", "reconciling", "ready", "stalled", "reconciling_reason"),
    [
        ([], False, "Reconciled", None, None),
        ([], True, "Progressing", None, "Progressing"),
        (
            [Problem(Reason.ROLE_NOT_FOUND, "r"), Problem(Reason.REVOCATION_HELD, "held")],
            False,
            "RevocationHeld",
            "RoleNotFound",
            "RevocationHeld",
        ),
        ([Problem(Reason.APPLY_FAILED, "a")], True, "ApplyFailed", None, "ApplyFailed"),
        ([Problem(Reason.GROUP_NOT_FOUND, "g")], False, "GroupNotFound", "GroupNotFound", None),
    ],
)
def test_the_three_conditions_follow_the_precedence(
    problems: list[Problem],
    reconciling: bool,
    ready: str,
    stalled: str | None,
    reconciling_reason: str | None,
) -> None:
    conditions = {
        c["type"]: c["reason"]
        for c in build_conditions(
            problems, generation=1, counts=summary([], []), group_count=1, reconciling=reconciling
        )
    }
    assert conditions == {
        k: v
        for k, v in {"Ready": ready, "Stalled": stalled, "Reconciling": reconciling_reason}.items()
        if v is not None
    }
