"""Fault injection, request counts and dropped watches (docs/design.md, The sandbox contract), over HTTP
and in-process."""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp
import pytest
from kubernetes import client

from entra_rbac_sandbox.kube.server import ApiServerThread

from .helpers import api_error, core, raw

pytestmark = pytest.mark.sandbox_only(
    reason="fault injection and request counts (/_sandbox/...) exist on the sandbox only"
)

NAMESPACES = "/api/v1/namespaces"


def _get(apiserver: ApiServerThread, path: str) -> tuple[int, dict[str, str], dict[str, object]]:
    """One GET without any client-side retry (aiohttp), trusting the sandbox CA."""

    async def get() -> tuple[int, dict[str, str], dict[str, object]]:
        context = ssl.create_default_context(cafile=str(apiserver.ca_file))
        headers = {"Authorization": f"Bearer {apiserver.admin_token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.get(apiserver.url + path, ssl=context) as response,
        ):
            return response.status, dict(response.headers), await response.json()

    return asyncio.run(get())


def test_an_injected_429_is_a_status_with_retry_after(
    apiserver: ApiServerThread, kube_api: client.ApiClient
) -> None:
    fault = {"method": "GET", "path": "^/api/v1/namespaces$", "status": 429, "retryAfter": 2, "count": 1}
    assert raw(kube_api, "POST", "/_sandbox/faults", body=fault)[0] == 201
    status, headers, body = _get(apiserver, NAMESPACES)
    assert (status, body["kind"], body["reason"], body["code"]) == (429, "Status", "TooManyRequests", 429)
    assert body["details"] == {"retryAfterSeconds": 2}
    assert headers["Retry-After"] == "2"
    assert _get(apiserver, NAMESPACES)[0] == 200  # the fault was used up


def test_the_official_client_itself_retries_a_429_with_retry_after(
    apiserver: ApiServerThread, kube_api: client.ApiClient
) -> None:
    # urllib3 under the official client honours Retry-After on 429/503 (up to 3 retries): code
    # using the client sees success here, while the server saw the failed attempt too.
    apiserver.faults.add_fault("^/api/v1/namespaces$", method="GET", status=429, retry_after=0)
    assert len(core(kube_api).list_namespace().items) == 4
    assert apiserver.faults.count("GET", "^/api/v1/namespaces$") == 2


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "InternalError"), (503, "ServiceUnavailable"), (409, "Conflict")]
)
def test_injected_errors_carry_the_kubernetes_reason(
    apiserver: ApiServerThread, kube_api: client.ApiClient, status: int, reason: str
) -> None:
    apiserver.faults.add_fault("/configmaps", method="POST", status=status)
    error = api_error(
        lambda: core(kube_api).create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    )
    assert (error.status, json.loads(error.body)["reason"]) == (status, reason)


def test_clearing_faults_stops_them(kube_api: client.ApiClient) -> None:
    raw(kube_api, "POST", "/_sandbox/faults", body={"path": "namespaces", "status": 503, "count": -1})
    assert api_error(lambda: core(kube_api).list_namespace()).status == 503
    raw(kube_api, "DELETE", "/_sandbox/faults")
    assert core(kube_api).list_namespace().items


def test_request_counts_by_method_and_path(apiserver: ApiServerThread, kube_api: client.ApiClient) -> None:
    raw(kube_api, "DELETE", "/_sandbox/requests")
    core(kube_api).list_namespace()
    core(kube_api).list_namespace()
    core(kube_api).read_namespace("default")
    _, counts = raw(kube_api, "GET", "/_sandbox/requests")
    assert counts["counts"] == {"GET /api/v1/namespaces": 2, "GET /api/v1/namespaces/default": 1}
    assert apiserver.faults.count("GET", "^/api/v1/namespaces") == 3


def test_dropping_watches_over_http(apiserver: ApiServerThread, kube_api: client.ApiClient) -> None:
    status, body = raw(kube_api, "DELETE", "/_sandbox/watches")
    assert (status, body) == (200, {"dropped": 0})
