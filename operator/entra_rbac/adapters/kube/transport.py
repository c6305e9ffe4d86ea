"""One HTTP call to the Kubernetes API through the official client, with bounded retries.

Holds `KubeTransport`: it sends JSON to a path with the official client's connection pool,
TLS and authentication (kubeconfig, exec plugins, in-cluster token), straight to the server's
connection pool where that sends the same request (`_Pools`), returns the decoded
body (encoded and decoded by orjson, in C: see `encode_body`), retries 429 / 5xx / no-answer
within the adapters' one retry policy (`adapters.retry`), honouring `Retry-After` (the
official client does not retry), and raises `KubeError` otherwise. Synchronous on purpose:
`KubeAdapter` runs it in a thread. It must not know bindings, namespaces or events.

Why raw paths instead of the typed `RbacAuthorizationV1Api` methods: the adapter works in
plain manifests (what the pure core plans with), needs exact content types (merge patch) and
label selectors on any list, and gains nothing from converting to models and back.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util import parse_url

from entra_rbac.adapters.kube.errors import (
    UnavailableError,
    error_from_api_exception,
    error_from_response,
    unavailable,
)
from entra_rbac.adapters.retry import RetryPolicy
from entra_rbac.errors import KubeError
from entra_rbac.logsetup import fields

logger = logging.getLogger(__name__)

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


# The first pause when the server named none; it doubles after every pause.
FIRST_BACKOFF = 0.2


class KubeTransport:
    """Sends requests; `retries` extra attempts, never more than `max_wait` seconds of pauses
    (a reconcile would rather fail and be retried whole than hold a worker thread for long)."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        retries: int = 3,
        max_wait: float = 10.0,
        timeout: tuple[float, float] = (5.0, 30.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_client = api_client
        self.retries = retries
        self.max_wait = max_wait
        self.timeout = timeout
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._sleep = sleep
        self._pools = _Pools(api_client)

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = JSON,
        decode: Callable[[bytes], Any] | None = None,
    ) -> dict[str, Any]:
        """The decoded answer (`decode`, when given, reads its bytes instead of `orjson.loads`)."""
        budget = RetryPolicy(self.retries, self.max_wait, FIRST_BACKOFF).budget()
        while True:
            try:
                return self._once(
                    method, path, what=what, query=query, body=body, content_type=content_type, decode=decode
                )
            except _Retryable as retryable:
                error, retry_after = retryable.error, retryable.retry_after
            delay = budget.next_pause(retry_after)
            if delay is None:
                raise error
            logger.info(
                "Retrying Kubernetes API call", extra=fields(call=what, error=str(error), delay=delay)
            )
            self._sleep(delay)

    def _once(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: Mapping[str, str] | None,
        body: Any,
        content_type: str,
        decode: Callable[[bytes], Any] | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        # The official client builds the URL and the auth headers; the body is ours to encode.
        _, url, headers, _, _ = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        encoded = None if body is None else encode_body(body, self.api_client.sanitize_for_serialization)
        try:
            response = self._pools.send(method, url, encoded, headers, self._timeout)
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as exception:
            raise _retry_or_raise(
                unavailable(type(exception).__name__ + ": " + str(exception), what), None
            ) from None
        if response.status >= 400:
            error = error_from_response(response.status, data, what)
            raise _retry_or_raise(error, _retry_after(response.headers.get("Retry-After")))
        if not data:
            return {}
        decoded: dict[str, Any] = (decode or orjson.loads)(data)
        return decoded

    def server_date(self) -> datetime | None:
        """The `Date` header of GET /version: the API server's clock (None when it sends none)."""
        _, url, headers, _, _ = self.api_client.param_serialize(
            method="GET",
            resource_path="/version",
            header_params={"Accept": JSON},
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api_client.call_api(
                "GET", url, header_params=headers, _request_timeout=self.timeout
            )
            response.read()  # type: ignore[no-untyped-call]
        except ApiException as exception:
            raise error_from_api_exception(exception, "read the API server's clock") from None
        except (urllib3.exceptions.HTTPError, OSError) as exception:
            raise unavailable(type(exception).__name__ + ": " + str(exception), "read the clock") from None
        value = response.headers.get("Date")
        try:
            return parsedate_to_datetime(value) if value else None
        except ValueError:
            return None


class _Pools:
    """The client's own pool (TLS, proxy, connections) without its REST layer, which runs
    `json.dumps` on every JSON body (so a body could not arrive encoded already).

    A request to the configured server goes straight to that server's connection pool, looked
    up once: the pool manager parsed every URL again and looked its pool up by a key built per
    request, about 1/6 of the transport's CPU converging 4,000 bindings (py-spy, issue 17 point
    2). Only where that is the same request: no proxy, a server URL without a path, and a path
    and query that parsing would leave as they are (plain characters, upper-case escapes, no
    dot segments); anything else, and a redirect (which the pool manager follows), goes through
    the pool manager as before."""

    def __init__(self, api_client: ApiClient) -> None:
        self._manager: urllib3.PoolManager = api_client.rest_client.pool_manager
        self._host: str = api_client.configuration.host
        self._server = _server(self._host) if type(self._manager) is urllib3.PoolManager else None
        self._pool: HTTPConnectionPool | None = None

    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: urllib3.Timeout
    ) -> urllib3.BaseHTTPResponse:
        pool = self._direct(url)
        if pool is not None:
            response = pool.urlopen(
                method,
                url[len(self._host) :],
                body=body,
                headers=headers,
                timeout=timeout,
                assert_same_host=False,
                redirect=False,
            )
            if not response.get_redirect_location():
                return response
        return self._manager.request(method, url, body=body, headers=headers, timeout=timeout)

    def _direct(self, url: str) -> HTTPConnectionPool | None:
        """The server's pool when `url` may skip the pool manager, else None."""
        if self._server is None or not url.startswith(self._host):
            return None
        if not unchanged_by_parsing(url[len(self._host) :]):
            return None
        pool = self._pool
        if pool is None or pool.pool is None:  # not looked up yet, or closed by `ApiClient.close`
            host, port, scheme = self._server
            pool = self._pool = self._manager.connection_from_host(host, port=port, scheme=scheme)
        return pool


def _server(url: str) -> tuple[str, int | None, str] | None:
    """Host, port and scheme of a server URL; None when it has a path (a prefix to every request)."""
    server = parse_url(url)
    if server.path or server.query or server.fragment or not server.host:
        return None
    return server.host, server.port, server.scheme or "http"


# A path and query that urllib3's `parse_url` leaves as they are: characters it never escapes and
# escapes already in upper case (a `.` or `..` segment, which it would remove, is checked apart).
_AS_PARSED = re.compile(
    r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-F]{2})*)?"
)


def unchanged_by_parsing(path_and_query: str) -> bool:
    """Whether urllib3's `parse_url` keeps this request target exactly as it is."""
    return bool(_AS_PARSED.fullmatch(path_and_query)) and "/." not in path_and_query.partition("?")[0]


class _Retryable(Exception):
    def __init__(self, error: KubeError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def encode_body(body: Any, sanitize: Callable[[Any], Any]) -> bytes:
    """`body` as the JSON bytes sent: plain JSON (dicts, lists, strings, numbers, datetimes: every
    body the adapters build) encoded once by orjson, in C; anything else (a client model)
    sanitised by the official client and encoded as it would. orjson instead of `json.dumps`
    plus the client's per-value `sanitize_for_serialization` walk: 4.5 ms for a user-mode
    binding of 1,000 subjects through the client, and the old check of whether a body was plain
    encoded it twice (issue 17 points 2 and 7; docs/performance.md)."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(sanitize(body)).encode()


def _retry_or_raise(error: KubeError, retry_after: float | None) -> Exception:
    return _Retryable(error, retry_after) if isinstance(error, UnavailableError) else error


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None  # an HTTP date: rare from the API server; fall back to our own backoff
