"""GET /groups and /groups/{id} over HTTPS: $filter, $select, $top, $count, paging, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from entra_rbac_sandbox.entra.server import EntraSandboxThread
from tests.sandbox_entra.tenant import group, guid, sample


@pytest.fixture
def tenant(entra_directory: EntraSandboxThread) -> dict[str, Any]:
    document = sample()
    entra_directory.write_directory(document)
    return document


def names(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return sorted(g["displayName"] for g in answer.json()["value"])


@pytest.mark.usefixtures("tenant")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("displayName eq 'Platform'", ["Platform"]),
        ("displayName eq 'platform'", ["Platform"]),  # the directory compares case-insensitively
        ("displayName eq 'Plat'", []),
        ("displayName eq 'O''Brien''s Team'", ["O'Brien's Team"]),
        ("mailNickname eq 'payments-devs'", ["Payments Developers"]),
        (f"id eq '{guid('Platform')}'", ["Platform"]),
        (f"id in ('{guid('Platform')}', '{guid('Platform Admins')}')", ["Platform", "Platform Admins"]),
        ("startswith(displayName,'plat')", ["Platform", "Platform Admins"]),
        ("startsWith(displayName, 'Platform A')", ["Platform Admins"]),
        ("displayName eq 'Platform' or mailNickname eq 'payments-devs'", ["Payments Developers", "Platform"]),
        ("startswith(displayName,'Plat') and displayName eq 'Platform'", ["Platform"]),
        (
            "(displayName eq 'Platform' or displayName eq 'Platform Admins') and mailNickname eq 'platform'",
            ["Platform"],
        ),
        ("securityEnabled eq true and displayName eq 'Platform'", ["Platform"]),
        ("displayName eq 'Retired'", []),  # deleted groups are gone
        ("displayName eq '' or '1' eq '1'", None),  # injection shape: a literal is not a property
        ("displayName eq ''' or ''1'' eq ''1'", []),
    ],
)
def test_filter_selects_exactly_the_matching_groups(
    graph_http: httpx.Client, query: str, expected: list[str] | None
) -> None:
    answer = graph_http.get("/groups", params={"$filter": query})
    if expected is None:
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "BadRequest"
    else:
        assert names(answer) == expected


@pytest.mark.usefixtures("tenant")
@pytest.mark.parametrize(
    "query",
    [
        "displayName eq 'unterminated",
        "displayName eq",
        "displayName 'Platform'",
        "displayName eq 'a' and",
        "(displayName eq 'a'",
        "displayName eq 'a')",
        "displayName gt 'a'",
        "displayName eq Platform",
        "startswith(displayName)",
        "nosuch eq 'a'",
        "securityEnabled eq 'yes'",
        "displayName eq true",
        "",
        "displayName eq 'a' ; drop",
        "displayName in ()",
        "displayName eq '" + "x" * 121 + "'",
        "displayName in (" + ",".join(f"'{i}'" for i in range(16)) + ")",
    ],
)
def test_malformed_filter_is_400_bad_request_with_graph_error_shape(
    graph_http: httpx.Client, query: str
) -> None:
    answer = graph_http.get("/groups", params={"$filter": query})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["message"]
    assert set(error["innerError"]) >= {"request-id", "date"}


@pytest.mark.usefixtures("tenant")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("displayName ne 'Platform'", ["O'Brien's Team", "Payments Developers", "Platform Admins"]),
        ("not startswith(displayName,'Plat')", ["O'Brien's Team", "Payments Developers"]),
        ("endswith(displayName,'admins')", ["Platform Admins"]),
    ],
)
def test_advanced_operators_need_consistency_level_and_count(
    graph_http: httpx.Client, query: str, expected: list[str]
) -> None:
    refused = graph_http.get("/groups", params={"$filter": query})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    headers = {"ConsistencyLevel": "eventual"}
    answer = graph_http.get("/groups", params={"$filter": query, "$count": "true"}, headers=headers)
    assert names(answer) == expected
    assert answer.json()["@odata.count"] == len(expected)


@pytest.mark.usefixtures("tenant")
def test_count_is_ignored_without_consistency_level(graph_http: httpx.Client) -> None:
    answer = graph_http.get("/groups", params={"$count": "true"})
    assert answer.status_code == 200
    assert "@odata.count" not in answer.json()
    counted = graph_http.get("/groups", params={"$count": "true"}, headers={"ConsistencyLevel": "eventual"})
    assert counted.json()["@odata.count"] == 4


@pytest.mark.usefixtures("tenant")
def test_select_returns_only_the_named_properties(graph_http: httpx.Client) -> None:
    answer = graph_http.get(
        "/groups", params={"$filter": "displayName eq 'Platform'", "$select": "id,displayName"}
    )
    assert answer.json()["value"] == [{"id": guid("Platform"), "displayName": "Platform"}]


@pytest.mark.usefixtures("tenant")
@pytest.mark.parametrize("top", ["0", "1000", "-1", "ten"])
def test_top_outside_1_to_999_is_refused(graph_http: httpx.Client, top: str) -> None:
    answer = graph_http.get("/groups", params={"$top": top})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "Request_BadRequest"


def test_paging_follows_opaque_next_links_with_default_page_of_100(
    entra_directory: EntraSandboxThread, graph_http: httpx.Client
) -> None:
    entra_directory.write_directory({"groups": [group(f"team-{i:03}") for i in range(250)]})
    pages: list[int] = []
    seen: list[str] = []
    url: str | None = "/groups"
    while url:
        body = graph_http.get(url).json()
        pages.append(len(body["value"]))
        seen += [g["displayName"] for g in body["value"]]
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith(entra_directory.graph_url + "/groups?")
            assert "$skiptoken=" in url
    assert pages == [100, 100, 50]
    assert seen == [f"team-{i:03}" for i in range(250)]


def test_next_link_keeps_filter_and_top(
    entra_directory: EntraSandboxThread, graph_http: httpx.Client
) -> None:
    entra_directory.write_directory({"groups": [group(f"team-{i:03}") for i in range(30)] + [group("other")]})
    first = graph_http.get(
        "/groups", params={"$filter": "startswith(displayName,'team-')", "$top": "20"}
    ).json()
    second = graph_http.get(first["@odata.nextLink"]).json()
    assert len(first["value"]) == 20
    assert [g["displayName"] for g in second["value"]] == [f"team-{i:03}" for i in range(20, 30)]
    assert "@odata.nextLink" not in second


def test_skiptoken_from_another_query_is_refused(
    entra_directory: EntraSandboxThread, graph_http: httpx.Client
) -> None:
    entra_directory.write_directory({"groups": [group(f"team-{i:03}") for i in range(30)]})
    link = graph_http.get("/groups", params={"$top": "10"}).json()["@odata.nextLink"]
    token = httpx.URL(link).params["$skiptoken"]
    answer = graph_http.get("/groups", params={"$top": "5", "$skiptoken": token})
    assert answer.status_code == 400
    assert graph_http.get("/groups", params={"$skiptoken": "garbage"}).status_code == 400


@pytest.mark.usefixtures("tenant")
def test_get_group_by_id(graph_http: httpx.Client) -> None:
    answer = graph_http.get(f"/groups/{guid('Platform')}", params={"$select": "displayName"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["displayName"] == "Platform"
    assert body["@odata.context"].endswith("$metadata#groups/$entity")
    assert answer.headers["request-id"]


@pytest.mark.usefixtures("tenant")
@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (f"/groups/{guid('nobody')}", 404, "Request_ResourceNotFound"),
        (f"/groups/{guid('Retired')}", 404, "Request_ResourceNotFound"),
        (f"/groups/{guid('alice')}", 404, "Request_ResourceNotFound"),  # a user is not a group
        ("/groups/not-a-guid", 400, "Request_BadRequest"),
        ("/nothing", 400, "BadRequest"),
        ("/groups?$orderby=displayName", 400, "BadRequest"),
        ("/groups?$top=5&$top=6", 400, "BadRequest"),
    ],
)
def test_errors_have_graph_codes(graph_http: httpx.Client, path: str, status: int, code: str) -> None:
    answer = graph_http.get(path)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


def test_deleted_group_comes_back_with_the_same_id(
    entra_directory: EntraSandboxThread, graph_http: httpx.Client
) -> None:
    document = {"groups": [group("Ops")]}
    entra_directory.write_directory(document)
    assert graph_http.get(f"/groups/{guid('Ops')}").status_code == 200
    document["groups"][0]["deleted"] = True
    entra_directory.write_directory(document)
    assert graph_http.get(f"/groups/{guid('Ops')}").status_code == 404
    del document["groups"][0]["deleted"]
    entra_directory.write_directory(document)
    assert graph_http.get(f"/groups/{guid('Ops')}").json()["id"] == guid("Ops")
