"""The $filter tokenizer and parser on their own: quoting, precedence, limits, error codes."""

from __future__ import annotations

import pytest

from entra_rbac_sandbox.entra.graph import GROUP_FILTER_PROPERTIES
from entra_rbac_sandbox.entra.odata import ODataError, parse_filter, parse_select, parse_top, select, tokenize

GROUPS = [
    {"id": "1", "displayName": "A", "mailNickname": "x", "securityEnabled": True},
    {"id": "2", "displayName": "B", "mailNickname": "y", "securityEnabled": False},
    {"id": "3", "displayName": "It's ( tricky ) , 'quoted'", "mailNickname": None, "securityEnabled": True},
    {"id": "4", "displayName": "Ünïcødé ✓", "mailNickname": "u", "securityEnabled": True},
]


def matches(text: str, *, advanced: bool = False) -> list[str]:
    predicate = parse_filter(text, GROUP_FILTER_PROPERTIES, "group", advanced=advanced)
    return [g["id"] for g in GROUPS if predicate(g)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("displayName eq 'It''s ( tricky ) , ''quoted'''", ["3"]),
        ("displayName eq 'ünïcødé ✓'", ["4"]),
        ("displayName eq 'A' or displayName eq 'B' and mailNickname eq 'x'", ["1"]),  # and binds tighter
        ("(displayName eq 'A' or displayName eq 'B') and mailNickname eq 'y'", ["2"]),
        ("((displayName eq 'A'))", ["1"]),
        ("mailNickname eq null", ["3"]),
        ("securityEnabled eq false", ["2"]),
        ("displayName in ('a', 'b', 'nope')", ["1", "2"]),
        ("DisplayName eq 'A'", ["1"]),  # property names are case-insensitive in Graph
        ("displayName eq '' or '1' eq '1'", None),
    ],
)
def test_filter_evaluates_as_graph_does(text: str, expected: list[str] | None) -> None:
    if expected is None:
        with pytest.raises(ODataError):
            matches(text)
    else:
        assert matches(text) == expected


def test_doubled_quotes_are_one_quote_and_nothing_else_escapes() -> None:
    tokens = tokenize("displayName eq 'a''b\\'")
    assert [(t.kind, t.value) for t in tokens] == [
        ("word", "displayName"),
        ("word", "eq"),
        ("string", "a'b\\"),
        ("end", ""),
    ]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("displayName ne 'A'", "Request_UnsupportedQuery"),
        ("not (displayName eq 'A')", "Request_UnsupportedQuery"),
        ("endswith(displayName,'A')", "Request_UnsupportedQuery"),
        ("displayName eq '" + "a" * 121 + "'", "BadRequest"),
        ("id in (" + ",".join(f"'{i}'" for i in range(16)) + ")", "BadRequest"),
        ("displayName eq 'A' and", "BadRequest"),
    ],
)
def test_refusals_carry_graph_codes(text: str, code: str) -> None:
    with pytest.raises(ODataError) as refused:
        matches(text)
    assert refused.value.code == code


def test_advanced_operators_work_with_advanced_queries() -> None:
    assert matches("not (displayName eq 'A') and displayName ne 'B'", advanced=True) == ["3", "4"]
    assert matches("endswith(displayName,'✓')", advanced=True) == ["4"]


def test_limits_are_inclusive() -> None:
    assert matches("displayName eq '" + "a" * 120 + "'") == []
    assert matches("id in (" + ",".join(f"'{i}'" for i in range(15)) + ")") == ["1", "2", "3", "4"]
    assert parse_top("999") == 999
    assert parse_top(None) == 100


def test_select_keeps_only_known_names_in_their_canonical_case() -> None:
    assert select(GROUPS[0], parse_select("displayname,ID,nothing")) == {"displayName": "A", "id": "1"}
    assert select(GROUPS[0], None) == GROUPS[0]
    with pytest.raises(ODataError):
        parse_select("id,,displayName")
