"""Label selector matching with Kubernetes' semantics (k8s.io/apimachinery/pkg/labels)."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.core.models import LabelSelector
from entra_rbac.core.selectors import selector_matches


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


CASES: list[tuple[str, dict[str, Any], dict[str, str], bool]] = [
    ("match_labels_equal", {"matchLabels": {"team": "pay"}}, {"team": "pay", "x": "y"}, True),
    ("match_labels_other_value", {"matchLabels": {"team": "pay"}}, {"team": "ops"}, False),
    ("match_labels_key_absent", {"matchLabels": {"team": "pay"}}, {}, False),
    ("match_labels_all_must_hold", {"matchLabels": {"a": "1", "b": "2"}}, {"a": "1"}, False),
    ("in_listed", {"matchExpressions": [expr("env", "In", "dev", "qa")]}, {"env": "qa"}, True),
    ("in_not_listed", {"matchExpressions": [expr("env", "In", "dev")]}, {"env": "prod"}, False),
    ("in_key_absent", {"matchExpressions": [expr("env", "In", "dev")]}, {}, False),
    ("not_in_listed", {"matchExpressions": [expr("env", "NotIn", "prod")]}, {"env": "prod"}, False),
    ("not_in_other_value", {"matchExpressions": [expr("env", "NotIn", "prod")]}, {"env": "dev"}, True),
    ("not_in_key_absent_matches", {"matchExpressions": [expr("env", "NotIn", "prod")]}, {}, True),
    ("exists_present", {"matchExpressions": [expr("env", "Exists")]}, {"env": ""}, True),
    ("exists_absent", {"matchExpressions": [expr("env", "Exists")]}, {"x": "env"}, False),
    ("does_not_exist_absent", {"matchExpressions": [expr("env", "DoesNotExist")]}, {}, True),
    ("does_not_exist_present", {"matchExpressions": [expr("env", "DoesNotExist")]}, {"env": "a"}, False),
    (
        "labels_and_expressions_both_hold",
        {"matchLabels": {"team": "pay"}, "matchExpressions": [expr("env", "NotIn", "prod")]},
        {"team": "pay", "env": "prod"},
        False,
    ),
    ("values_are_case_sensitive", {"matchLabels": {"team": "Pay"}}, {"team": "pay"}, False),
]


@pytest.mark.parametrize(
    ("selector", "labels", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_selector_matches_like_kubernetes(
    selector: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert selector_matches(LabelSelector.model_validate(selector), labels) is expected


def test_empty_selector_matches_everything_as_in_kubernetes() -> None:
    # The spec model refuses an empty selector; the semantics still follow Kubernetes.
    empty = LabelSelector.model_construct(match_labels={}, match_expressions=[])
    assert selector_matches(empty, {}) is True
    assert selector_matches(empty, {"any": "thing"}) is True
