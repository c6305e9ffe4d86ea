"""GET /groups/delta over HTTPS, held to Microsoft's documentation (issue 13, point 2).

Graph docs, "group: delta" and "Get incremental changes for groups": a round is one or more
pages, each but the last with an `@odata.nextLink`, the last with an `@odata.deltaLink` to save
for the next round; query parameters are given once, in the first request, and carried by the
links; `$filter` takes `id eq` terms joined by `or` (at most 50 ids); `members@delta` lists
direct members added, and removed ones with `@removed`; a deleted group comes as its id with
`@removed`; a group may appear on several pages; an expired state token fails with
`syncStateNotFound` and the client starts over.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from entra_rbac_sandbox.entra.delta import MEMBERS_PER_ENTRY, PAGE_SIZE
from entra_rbac_sandbox.entra.server import EntraSandboxThread
from tests.sandbox_entra.tenant import group, guid, sample, user

SELECT = "displayName,members"


def _round(
    client: httpx.Client, first: str | None = None, **params: str
) -> tuple[list[dict[str, Any]], str, int]:
    """Every page of one round: (entries, deltaLink, pages)."""
    url = first or "/groups/delta"
    entries: list[dict[str, Any]] = []
    pages = 0
    while True:
        answer = client.get(url, params=params if url == "/groups/delta" else None)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages += 1
        entries.extend(body["value"])
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            continue
        return entries, body["@odata.deltaLink"], pages


def _filter(*names: str) -> str:
    return " or ".join(f"id eq '{guid(name)}'" for name in names)


@pytest.fixture
def tenant(entra_directory: EntraSandboxThread) -> dict[str, Any]:
    document = sample()
    entra_directory.write_directory(document)
    return document


def test_the_first_round_lists_the_filtered_groups_with_their_direct_members(
    graph_http: httpx.Client, tenant: dict[str, Any]
) -> None:
    entries, delta_link, _ = _round(
        graph_http, **{"$filter": _filter("Platform", "Retired"), "$select": SELECT}
    )
    assert [e["id"] for e in entries] == [guid("Platform")]  # Retired is deleted: not listed
    members = {m["id"] for m in entries[0]["members@delta"]}
    assert members == {guid("bob"), guid("guest"), guid("mi"), guid("Payments Developers")}
    assert all("@odata.type" in m for m in entries[0]["members@delta"])
    assert entries[0]["displayName"] == "Platform"
    assert "$deltatoken=" in delta_link


def test_a_later_round_lists_only_changes_removals_marked_and_direct_members_only(
    graph_http: httpx.Client, entra_directory: EntraSandboxThread, tenant: dict[str, Any]
) -> None:
    query = {"$filter": _filter("Platform", "Payments Developers", "Platform Admins"), "$select": SELECT}
    _, delta_link, _ = _round(graph_http, **query)
    entries, delta_link, _ = _round(graph_http, delta_link)
    assert entries == []  # nothing changed
    platform = tenant["groups"][1]
    platform["members"] = [m for m in platform["members"] if m != guid("bob")] + [guid("alice")]
    tenant["groups"][0]["displayName"] = "Payments Devs"
    tenant["groups"][2]["deleted"] = True
    tenant["users"].append(user("carol"))
    entra_directory.write_directory(tenant)
    entries, delta_link, _ = _round(graph_http, delta_link)
    by_id = {e["id"]: e for e in entries}
    assert set(by_id) == {guid("Platform"), guid("Payments Developers"), guid("Platform Admins")}
    assert by_id[guid("Platform Admins")]["@removed"] == {"reason": "changed"}
    changes = {(m["id"], "@removed" in m) for m in by_id[guid("Platform")]["members@delta"]}
    assert changes == {(guid("alice"), False), (guid("bob"), True)}
    assert by_id[guid("Payments Developers")]["displayName"] == "Payments Devs"
    # alice now reaches Payments Developers through Platform, but nested changes are not delta's:
    assert by_id[guid("Payments Developers")]["members@delta"] == []
    tenant["groups"][2]["deleted"] = False  # restored, same id
    entra_directory.write_directory(tenant)
    entries, _, _ = _round(graph_http, delta_link)
    assert [(e["id"], e.get("displayName")) for e in entries] == [
        (guid("Platform Admins"), "Platform Admins")
    ]
    assert entries[0]["members@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": guid("bob")}]


def test_a_big_group_spans_several_pages_and_the_round_ends_with_one_delta_link(
    graph_http: httpx.Client, entra_directory: EntraSandboxThread
) -> None:
    users = [user(f"u{i}") for i in range(MEMBERS_PER_ENTRY * PAGE_SIZE + 5)]
    document = {"users": users, "groups": [group("Big", [u["id"] for u in users])]}
    entra_directory.write_directory(document)
    entries, _, pages = _round(graph_http, **{"$filter": _filter("Big"), "$select": SELECT})
    assert pages >= 2
    assert {e["id"] for e in entries} == {guid("Big")}
    assert len(entries) > 1  # the same group on several entries
    assert sum(len(e["members@delta"]) for e in entries) == len(users)


def test_filter_takes_at_most_50_ids_and_only_id_eq(graph_http: httpx.Client, tenant: dict[str, Any]) -> None:
    fifty = " or ".join(f"id eq '{guid(str(i))}'" for i in range(50))
    assert graph_http.get("/groups/delta", params={"$filter": fifty}).status_code == 200
    answer = graph_http.get("/groups/delta", params={"$filter": fifty + f" or id eq '{guid('x')}'"})
    assert answer.status_code == 400
    assert "at most 50" in answer.json()["error"]["message"]
    answer = graph_http.get("/groups/delta", params={"$filter": "displayName eq 'Platform'"})
    assert answer.status_code == 400


def test_an_expired_token_answers_sync_state_not_found_and_a_new_round_starts_over(
    graph_http: httpx.Client, entra_directory: EntraSandboxThread, tenant: dict[str, Any]
) -> None:
    query = {"$filter": _filter("Platform"), "$select": SELECT}
    _, delta_link, _ = _round(graph_http, **query)
    entra_directory.call(lambda server: server.expire_delta_tokens())
    answer = graph_http.get(delta_link)
    assert answer.status_code == 410
    assert answer.json()["error"]["code"] == "syncStateNotFound"
    entries, _, _ = _round(graph_http, **query)
    assert [e["id"] for e in entries] == [guid("Platform")]


def test_a_state_token_cannot_be_edited(graph_http: httpx.Client, tenant: dict[str, Any]) -> None:
    _, delta_link, _ = _round(graph_http, **{"$filter": _filter("Platform")})
    answer = graph_http.get(delta_link.replace("$deltatoken=", "$deltatoken=x"))
    assert answer.status_code == 400
