"""Problems: severity order, spec order, deduplication, InvalidSpec field paths."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.problems import Problem, Reason, invalid_spec_problems, sort_problems


def test_problems_sort_most_severe_first_then_in_spec_order() -> None:
    problems = [
        Problem(Reason.NAMESPACE_NOT_FOUND, "n", "spec.roleBindings[0].namespaces[0]"),
        Problem(Reason.GROUP_NOT_FOUND, "g10", "spec.groups[10]"),
        Problem(Reason.GROUP_NOT_FOUND, "g2", "spec.groups[2]"),
        Problem(Reason.DIRECTORY_UNAVAILABLE, "503"),
        Problem(Reason.INVALID_SPEC, "bad", "spec.groups"),
        Problem(Reason.GROUP_NOT_FOUND, "g2", "spec.groups[2]"),
    ]
    assert [p.message for p in sort_problems(problems)] == ["bad", "g2", "g10", "n", "503"]


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
