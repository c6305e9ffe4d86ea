"""Helpers for the sandbox API server conformance tests: polling with a deadline, API shortcuts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

T = TypeVar("T")


def eventually(check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll `check` until it returns a truthy value (returned) or the deadline passes (fails)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)  # polling a condition with a deadline, not hoping
    pytest.fail(f"condition not met within {timeout}s; last value: {last!r}")


def api_error(call: Callable[[], Any]) -> ApiException:
    """The ApiException `call` raises (fails the test when it succeeds)."""
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value


def gone(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def configmap(name: str, labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}, **extra}, "data": {"k": "v"}}


def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def rbac(api: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api)


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def raw(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """A request through the client's own HTTP stack and credentials; (status, decoded body)."""
    import json
    from urllib.parse import urlencode

    configuration = api.configuration
    url = configuration.host + path + ("?" + urlencode(query) if query else "")
    sent = {"Accept": "application/json", "Content-Type": "application/json", **(headers or {})}
    sent.setdefault(
        "Authorization", configuration.get_api_key_with_prefix("BearerToken", alias="authorization") or ""
    )
    response = api.call_api(method, url, header_params=sent, body=body)
    response.read()
    text = response.data.decode() if isinstance(response.data, bytes) else str(response.data)
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


def served(api: client.ApiClient, crd: dict[str, Any], timeout: float = 30.0) -> None:
    """Wait until a just-created CRD's objects are served (the real server establishes a CRD
    asynchronously; a client that lists at once may get 404, the sandbox serves at once)."""
    spec = crd["spec"]
    version = spec["versions"][0]["name"]
    path = f"/apis/{spec['group']}/{version}/{spec['names']['plural']}"

    def listable() -> bool:
        try:
            status, _ = raw(api, "GET", path, query=[("limit", "1")])
        except client.ApiException as error:
            status = error.status
        return bool(status == 200)

    eventually(listable, timeout=timeout, interval=0.05)
