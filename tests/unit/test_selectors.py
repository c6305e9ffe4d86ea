"""Label selector matching with Kubernetes' semantics (k8s.io/apimachinery/pkg/labels)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entra_rbac.core.models import LabelSelector
from entra_rbac.core.selectors import selector_matches
from entra_rbac_sandbox.kube.selectors import matches_labels, structured_selector


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


# --- the same verdicts as an independent implementation (the sandbox API server's) -----------

_keys = st.sampled_from(["team", "env", "example.com/tier"])
_values = st.sampled_from(["", "a", "b", "prod"])
_expressions = st.one_of(
    st.builds(expr, _keys, st.sampled_from(["In", "NotIn"]), _values, _values),
    st.builds(expr, _keys, st.sampled_from(["Exists", "DoesNotExist"])),
)
_selectors = st.fixed_dictionaries(
    {},
    optional={
        "matchLabels": st.dictionaries(_keys, _values, max_size=2),
        "matchExpressions": st.lists(_expressions, max_size=3),
    },
).filter(lambda s: bool(s.get("matchLabels") or s.get("matchExpressions")))


@settings(max_examples=300, deadline=None)
@given(_selectors, st.dictionaries(_keys, _values, max_size=3))
def test_selector_agrees_with_the_sandbox_api_servers_matcher(
    selector: dict[str, Any], labels: dict[str, str]
) -> None:
    expected = matches_labels(structured_selector(selector), labels)
    assert selector_matches(LabelSelector.model_validate(selector), labels) is expected
