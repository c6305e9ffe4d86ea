"""The sandbox's pure parts on their own: selector grammar, patch formats, printer JSONPath, RBAC rules."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac_sandbox.kube import errors
from entra_rbac_sandbox.kube.patch import merge_patch, strategic_merge
from entra_rbac_sandbox.kube.rbac import Attributes, rule_allows, uncovered
from entra_rbac_sandbox.kube.selectors import matches_labels, parse_label_selector, structured_selector
from entra_rbac_sandbox.kube.table import human_age, jsonpath

LABELS = {"team": "payments", "tier": "web", "example.com/owner": "a"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("team=payments", True),
        ("team = payments", True),
        ("team==search", False),
        ("team!=search", True),
        ("missing!=x", True),
        ("team in (search, payments)", True),
        ("team notin (payments)", False),
        ("tier,team", True),
        ("!tier", False),
        ("example.com/owner=a,team in (payments),!gone", True),
    ],
)
def test_label_selectors_match_as_kubernetes_does(selector: str, matches: bool) -> None:
    assert matches_labels(parse_label_selector(selector), LABELS) is matches


@pytest.mark.parametrize("selector", ["team in (a", "=x", "team=a b", "Bad Key=x", "team=" + "v" * 64])
def test_malformed_label_selectors_are_refused(selector: str) -> None:
    with pytest.raises(ValueError, match="unable to parse requirement"):
        parse_label_selector(selector)


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ({"matchLabels": {"team": "payments"}}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}, False),
        ({"matchExpressions": [{"key": "gone", "operator": "DoesNotExist"}]}, True),
        ({}, True),
    ],
)
def test_structured_selectors(selector: dict[str, Any], matches: bool) -> None:
    assert matches_labels(structured_selector(selector), LABELS) is matches


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": 1, "b": {"c": 2}}, {"b": {"c": None, "d": 3}}, {"a": 1, "b": {"d": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": 1}, {"a": None}, {}),
    ],
)
def test_json_merge_patch_follows_rfc_7386(
    target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert merge_patch(target, patch) == expected


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        (
            {
                "status": {
                    "conditions": [{"type": "Ready", "status": "False"}, {"type": "X", "status": "True"}]
                }
            },
            {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {
                "status": {
                    "conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "True"}]
                }
            },
        ),
        (
            {"metadata": {"ownerReferences": [{"uid": "1"}, {"uid": "2"}]}},
            {"metadata": {"ownerReferences": [{"uid": "1", "$patch": "delete"}]}},
            {"metadata": {"ownerReferences": [{"uid": "2"}]}},
        ),
        ({"subjects": [{"name": "a"}]}, {"subjects": [{"name": "b"}]}, {"subjects": [{"name": "b"}]}),
        ({"data": {"a": "1"}}, {"data": {"$patch": "replace", "b": "2"}}, {"data": {"b": "2"}}),
        ({"x": 1}, {"$setElementOrder/x": [1], "y": 2}, {"x": 1, "y": 2}),
    ],
)
def test_strategic_merge_patch(
    target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert strategic_merge(target, patch) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".spec.size", [3]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[*].type", ["Ready", "Synced"]),
        (".status.conditions[1].status", ["False"]),
        ("{.metadata.name}", ["w"]),
        (".nothing.here", []),
    ],
)
def test_printer_column_jsonpath(path: str, expected: list[Any]) -> None:
    obj = {
        "metadata": {"name": "w"},
        "spec": {"size": 3},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]
        },
    }
    assert jsonpath(obj, path) == expected


def test_ages_print_as_kubectl_prints_them() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 2, tzinfo=UTC)
    stamp = lambda delta: (now - delta).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    assert [human_age(stamp(timedelta(seconds=s)), now) for s in (5, 125, 3600, 4 * 3600, 3 * 86400)] == [
        "5s",
        "2m5s",
        "60m",
        "4h",
        "3d",
    ]


@pytest.mark.parametrize(
    ("rule", "attrs", "allowed"),
    [
        (
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
            Attributes("get", "", "configmaps"),
            True,
        ),
        (
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
            Attributes("list", "", "configmaps"),
            False,
        ),
        (
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            Attributes("delete", "x.io", "things"),
            True,
        ),
        (
            {"apiGroups": [""], "resources": ["namespaces/status"], "verbs": ["get"]},
            Attributes("get", "", "namespaces", "status"),
            True,
        ),
        (
            {"apiGroups": [""], "resources": ["*/status"], "verbs": ["get"]},
            Attributes("get", "", "namespaces", "status"),
            True,
        ),
        (
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
            Attributes("get", "", "namespaces", "status"),
            False,
        ),
        (
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]},
            Attributes("get", "", "configmaps", name="b"),
            False,
        ),
        (
            {"nonResourceURLs": ["/healthz/*"], "verbs": ["get"]},
            Attributes("get", path="/healthz/etcd"),
            True,
        ),
    ],
)
def test_rules_allow_what_kube_apiserver_allows(
    rule: dict[str, Any], attrs: Attributes, allowed: bool
) -> None:
    assert rule_allows(rule, attrs) is allowed


def test_coverage_needs_every_verb_resource_and_name() -> None:
    owner = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"], "resourceNames": ["a"]}
    ]
    assert not uncovered(
        owner, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["a"]}]
    )
    assert uncovered(owner, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])
    assert uncovered(
        owner, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["watch"], "resourceNames": ["a"]}]
    )


def test_invalid_lists_every_cause_with_its_field() -> None:
    problems = [
        errors.FieldError("spec.a", "FieldValueRequired", ""),
        errors.FieldError("spec.b", "FieldValueTooLong", "may not be more than 3 bytes", "abcd"),
    ]
    status = errors.invalid("Widget", "w", problems, "example.com").status()
    assert status["message"] == (
        'Widget.example.com "w" is invalid: '
        "[spec.a: Required value, spec.b: Too long: may not be more than 3 bytes]"
    )
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.a", "spec.b"]
