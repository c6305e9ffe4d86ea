"""POST /$batch: at most 20, per-item status, answers in another order, dependsOn, inner faults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from entra_rbac_sandbox.entra.server import EntraSandboxThread
from tests.sandbox_entra.tenant import guid, sample


@pytest.fixture(autouse=True)
def tenant(entra_directory: EntraSandboxThread) -> None:
    entra_directory.write_directory(sample())


def batch(http: httpx.Client, requests: list[dict[str, Any]]) -> httpx.Response:
    return http.post("/$batch", json={"requests": requests})


def by_id(answer: httpx.Response) -> dict[str, dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    return {item["id"]: item for item in answer.json()["responses"]}


def test_each_request_has_its_own_status_and_answers_come_in_another_order(graph_http: httpx.Client) -> None:
    requests = [
        {"id": "1", "method": "GET", "url": "/groups?$filter=displayName eq 'Platform'"},
        {"id": "2", "method": "GET", "url": f"/groups/{guid('nobody')}"},
        {"id": "3", "method": "GET", "url": "groups?$filter=displayName eq 'broken"},
        {
            "id": "4",
            "method": "POST",
            "url": "/directoryObjects/getByIds",
            "headers": {"Content-Type": "application/json"},
            "body": {"ids": [guid("alice")]},
        },
    ]
    answer = batch(graph_http, requests)
    assert [item["id"] for item in answer.json()["responses"]] == ["4", "3", "2", "1"]
    items = by_id(answer)
    assert items["1"]["status"] == 200
    assert [g["id"] for g in items["1"]["body"]["value"]] == [guid("Platform")]
    assert items["2"]["status"] == 404
    assert items["2"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert items["3"]["status"] == 400
    assert items["3"]["body"]["error"]["code"] == "BadRequest"
    assert items["4"]["body"]["value"][0]["id"] == guid("alice")


def test_inner_requests_carry_their_own_consistency_level(graph_http: httpx.Client) -> None:
    url = "/groups?$filter=displayName ne 'Platform'&$count=true"
    items = by_id(
        batch(
            graph_http,
            [
                {"id": "plain", "method": "GET", "url": url},
                {"id": "eventual", "method": "GET", "url": url, "headers": {"ConsistencyLevel": "eventual"}},
            ],
        )
    )
    assert items["plain"]["status"] == 400
    assert items["eventual"]["status"] == 200
    assert items["eventual"]["body"]["@odata.count"] == 3


def test_a_failed_dependency_is_424(graph_http: httpx.Client) -> None:
    items = by_id(
        batch(
            graph_http,
            [
                {"id": "a", "method": "GET", "url": f"/groups/{guid('nobody')}"},
                {"id": "b", "method": "GET", "url": f"/groups/{guid('Platform')}", "dependsOn": ["a"]},
            ],
        )
    )
    assert items["b"]["status"] == 424


@pytest.mark.parametrize(
    "requests",
    [
        [{"id": str(i), "method": "GET", "url": "/groups"} for i in range(21)],
        [],
        [{"id": "1", "method": "GET", "url": "/groups"}, {"id": "1", "method": "GET", "url": "/groups"}],
        [{"id": "1", "method": "GET"}],
        [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/groups"}],
        [{"id": "1", "method": "GET", "url": "/groups", "dependsOn": ["2"]}],
        [{"id": "1", "method": "POST", "url": "/directoryObjects/getByIds", "body": {"ids": []}}],
    ],
    ids=[
        "21-requests",
        "empty",
        "duplicate-id",
        "no-url",
        "absolute-url",
        "unknown-dependency",
        "no-content-type",
    ],
)
def test_a_bad_envelope_fails_the_whole_batch(
    graph_http: httpx.Client, requests: list[dict[str, Any]]
) -> None:
    answer = batch(graph_http, requests)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"


def test_twenty_requests_are_allowed(graph_http: httpx.Client) -> None:
    requests = [{"id": str(i), "method": "GET", "url": f"/groups/{guid('Platform')}"} for i in range(20)]
    assert {item["status"] for item in by_id(batch(graph_http, requests)).values()} == {200}


def test_faults_reach_inner_requests_with_retry_after(
    entra_directory: EntraSandboxThread, graph_http: httpx.Client
) -> None:
    entra_directory.add_fault("^/groups$", method="GET", status=429, retry_after=3, count=1)
    requests = [
        {"id": str(i), "method": "GET", "url": "/groups?$filter=displayName eq 'Platform'"} for i in (1, 2)
    ]
    items = by_id(batch(graph_http, requests))
    assert items["1"]["status"] == 429
    assert items["1"]["headers"]["Retry-After"] == "3"
    assert items["1"]["body"]["error"]["code"] == "TooManyRequests"
    assert items["2"]["status"] == 200
    assert entra_directory.request_counts() == {"POST /v1.0/$batch": 1, "GET /groups": 2}
