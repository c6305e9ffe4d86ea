"""OData wire helpers: literals cannot change a filter's structure; URLs are fully encoded."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from entra_rbac.adapters.directory import odata
from entra_rbac.core.entra import MemberType

INJECTIONS = [
    "Payments Developers",
    "O'Brien",
    "' or '1' eq '1",
    "x') or (displayName eq 'y",
    "a''b",
    "Équipe Zürich 開発 👩‍💻",
    "50% & #hash ?q=1 +plus /slash",
    "",
    "'",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_odata_literal_round_trips_and_keeps_one_literal(value: str) -> None:
    literal = odata.odata_literal(value)
    assert literal.startswith("'")
    assert literal.endswith("'")
    inner = literal[1:-1]
    # Every quote inside is doubled, so the literal never ends early.
    assert inner.replace("''", "").count("'") == 0
    assert inner.replace("''", "'") == value


@pytest.mark.parametrize("value", INJECTIONS)
def test_group_lookup_url_carries_the_name_in_one_encoded_filter(value: str) -> None:
    url = odata.group_lookup_url("displayName", value)
    query = urlsplit(url).query
    assert "'" not in query
    assert " " not in query
    assert "#" not in url
    params = parse_qs(query, keep_blank_values=True)
    assert set(params) == {"$filter", "$select", "$top"}
    assert params["$filter"] == [f"displayName eq {odata.odata_literal(value)}"]


def test_long_name_is_looked_up_by_prefix_that_fits_graph_limit() -> None:
    value = "x" * 256
    assert odata.name_filter("displayName", value) == f"startswith(displayName, '{'x' * 120}')"


def test_long_name_prefix_never_splits_an_escaped_quote() -> None:
    value = "'" * 100
    filt = odata.name_filter("displayName", value)
    literal = filt.removeprefix("startswith(displayName, ").removesuffix(")")
    inner = literal[1:-1]
    assert len(inner) <= odata.MAX_EQ_LITERAL
    assert len(inner) % 2 == 0
    assert inner.replace("''", "") == ""


def test_name_of_exactly_120_characters_uses_eq() -> None:
    assert odata.name_filter("mailNickname", "n" * 120).startswith("mailNickname eq ")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Sat, 28 Nov 2026 10:00:30 GMT", 30.0),
        ("not a date", None),
    ],
)
def test_retry_after_reads_seconds_or_http_date(header: str | None, expected: float | None) -> None:
    now = 1795860000.0  # Sat, 28 Nov 2026 10:00:00 GMT
    assert odata.retry_after_seconds(header, now=now) == expected


@pytest.mark.parametrize(
    ("odata_type", "member_type"),
    [
        ("#microsoft.graph.user", MemberType.USER),
        ("#microsoft.graph.servicePrincipal", MemberType.SERVICE_PRINCIPAL),
        ("#microsoft.graph.group", MemberType.GROUP),
        ("#microsoft.graph.device", MemberType.DEVICE),
        ("#microsoft.graph.orgContact", MemberType.ORG_CONTACT),
        ("#microsoft.graph.somethingNew", MemberType.OTHER),
    ],
)
def test_member_from_json_maps_odata_type(odata_type: str, member_type: MemberType) -> None:
    member = odata.member_from_json({"@odata.type": odata_type, "id": "ABC"})
    assert member.type is member_type
    assert member.id == "abc"


def test_graph_error_reads_code_and_message() -> None:
    body = {"error": {"code": "Request_ResourceNotFound", "message": "gone", "innerError": {}}}
    assert odata.graph_error(body) == ("Request_ResourceNotFound", "gone")
    assert odata.graph_error("<html>") == ("", "")
