"""One Graph exchange done right: timeout, bounded retries honouring Retry-After, error mapping.

Holds `GraphCaller` (sends a kiota `RequestInformation`, returns the parsed JSON body),
`RetryBudget` (shared by a call's attempts and by the retried items of a `$batch`),
`TenantThrottle` (the one "not before" time of every Graph request of the operator) and
`redact`. It decides nothing about groups; `directory.py` does.

Bodies are read as bytes and parsed with `json`, not into msgraph-sdk models: the SDK's model
parsing took about 4 s per 999-member page here (20.7 s for 5,000 users), which a reconcile
cannot afford; the request builders are still used to build the requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx
from azure.core.exceptions import AzureError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.request_adapter import RequestAdapter
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.serialization import ParsableFactory
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from entra_rbac.adapters import retry
from entra_rbac.adapters.directory.metrics import DirectoryMetrics, Outcome
from entra_rbac.adapters.directory.odata import retry_after_seconds
from entra_rbac.errors import DirectoryError, DirectoryForbiddenError, DirectoryUnavailableError
from entra_rbac.logsetup import fields

# Worth another try after a pause; 500 and 502 included because Graph's front ends return them
# for transient faults too. Everything else is final for this call.
RETRYABLE = frozenset({429, 500, 502, 503, 504})
_ERROR_MAP: dict[str, type[ParsableFactory]] = {"XXX": ODataError}
# A JWT (what an access token or a federated assertion looks like) anywhere in a text.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")

Sleep = Callable[[float], Awaitable[None]]
logger = logging.getLogger(__name__)


class NotFoundResponse(Exception):
    """Graph answered 404 for the object itself; the caller decides what that means."""


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` without tokens or any of `secrets`: error messages may end up in status and logs."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return _BEARER.sub("Bearer <redacted>", _JWT.sub("<redacted>", text))


class RetryBudget(retry.RetryBudget):
    """The adapters' one retry budget (`adapters.retry`), pausing on the event loop."""

    def __init__(self, max_retries: int, max_wait: float, sleep: Sleep) -> None:
        super().__init__(retry.RetryPolicy(max_retries, max_wait, first_backoff=0.5, max_backoff=8.0))
        self._sleep = sleep

    async def pause(self, retry_after: float | None) -> bool:
        """Wait as Graph asked (or back off exponentially); False when the budget is spent."""
        delay = self.next_pause(retry_after)
        if delay is None:
            return False
        await self._sleep(delay)
        return True

    async def wait_for(self, throttle: TenantThrottle, operation: str) -> None:
        """Wait until `throttle` lets requests through, spending this budget's wait; a wait longer
        than what is left fails now, without sending anything."""
        while (delay := throttle.remaining()) > 0:
            if not self.spend(delay):
                raise DirectoryUnavailableError(
                    f"Graph {operation} not sent: Graph asked to pause for another {delay:.1f}s",
                    retry_after=delay,
                )
            await self._sleep(delay)


class TenantThrottle:
    """Graph throttles per tenant and app, not per call: a `Retry-After` (429, or 503 with it)
    on any request pauses every request of the operator until it has passed (docs/design.md,
    Directory semantics). One per `GraphCaller`, i.e. one per operator."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._not_before = 0.0

    def hold(self, seconds: float) -> None:
        self._not_before = max(self._not_before, self._clock() + seconds)

    def remaining(self) -> float:
        return max(0.0, self._not_before - self._clock())


class GraphCaller:
    """Sends requests through the SDK's request adapter and turns every failure into our errors."""

    def __init__(
        self,
        adapter: RequestAdapter,
        metrics: DirectoryMetrics,
        *,
        timeout: float,
        max_retries: int,
        max_retry_wait: float,
        secrets: Iterable[str | None] = (),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        # Any: kiota types send_primitive_async's result loosely; we ask for bytes.
        self._adapter: Any = adapter
        self._metrics = metrics
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._secrets = tuple(secrets)
        self.sleep = sleep
        self.throttle = TenantThrottle()

    def budget(self) -> RetryBudget:
        return RetryBudget(self._max_retries, self._max_retry_wait, self.sleep)

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    async def send(
        self,
        operation: str,
        build: Callable[[], RequestInformation],
        budget: RetryBudget | None = None,
        *,
        not_found_ok: bool = False,
    ) -> Any:
        """The JSON body of a successful answer; `build` makes a fresh request for each attempt.

        Every attempt waits for the tenant's throttle first. A 404 raises `NotFoundResponse` only
        with `not_found_ok` (the object read is the group); otherwise the endpoint itself is
        missing (a proxy, a wrong Graph URL), which is a directory failure, never an absence.
        """
        budget = budget or self.budget()
        while True:
            await budget.wait_for(self.throttle, operation)
            try:
                return await self._attempt(operation, build())
            except NotFoundResponse as exc:
                if not_found_ok:
                    raise
                raise DirectoryUnavailableError(f"Graph {operation} failed: {exc}") from None
            except RetryableStatus as exc:
                self.record_throttle(operation, exc.status, exc.retry_after)
                if not await budget.pause(exc.retry_after):
                    raise DirectoryUnavailableError(
                        f"Graph {operation} failed: {exc.detail} (retries exhausted)",
                        retry_after=exc.retry_after,
                    ) from None
                logger.info(
                    "Retried Graph request",
                    extra=fields(operation=operation, status=exc.status, retry_after=exc.retry_after),
                )

    def record_throttle(self, operation: str, status: int, retry_after: float | None) -> None:
        if status == 429 or (status == 503 and retry_after is not None):
            self._metrics.throttled(operation, retry_after)
            if retry_after is not None:
                self.throttle.hold(retry_after)
                # `received` (wall clock, seconds since the epoch) dates the pause exactly, so a
                # request log elsewhere can be checked against it (docs/design.md, Directory semantics).
                logger.info(
                    "Paused every Graph request: Graph asked to wait",
                    extra=fields(
                        operation=operation,
                        status=status,
                        retry_after=retry_after,
                        received=f"{time.time():.3f}",
                    ),
                )

    async def _attempt(self, operation: str, request: RequestInformation) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._adapter.send_primitive_async(request, "bytes", _ERROR_MAP)
        except APIError as exc:
            raise self._api_error(operation, exc) from None
        except (TimeoutError, httpx.TimeoutException):
            self._metrics.graph_request(operation, Outcome.TIMEOUT)
            raise DirectoryUnavailableError(f"Graph {operation} timed out after {self._timeout:g}s") from None
        except AzureError as exc:
            # azure-identity: refused credentials, token endpoint down or unreachable.
            self._metrics.graph_request(operation, Outcome.TOKEN_ERROR)
            message = self.redact(str(exc.message or type(exc).__name__))
            raise DirectoryUnavailableError(f"getting a token for Graph failed: {message}") from None
        except OSError as exc:
            # WorkloadIdentityCredential reads the projected token file on each token request;
            # a missing or unreadable file surfaces as a bare OSError.
            self._metrics.graph_request(operation, Outcome.TOKEN_ERROR)
            reason = exc.strerror or type(exc).__name__
            raise DirectoryUnavailableError(
                f"getting a token for Graph failed: cannot read {exc.filename!r} ({reason})"
            ) from None
        except httpx.HTTPError as exc:
            self._metrics.graph_request(operation, Outcome.CONNECTION_ERROR)
            message = self.redact(f"{type(exc).__name__}: {exc}")
            raise DirectoryUnavailableError(f"Graph {operation} could not be reached: {message}") from None
        self._metrics.graph_request(operation, Outcome.SUCCESS)
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise DirectoryUnavailableError(
                f"Graph {operation} answered with a body that is not JSON"
            ) from None

    def _api_error(self, operation: str, exc: APIError) -> Exception:
        status = exc.response_status_code or 0
        code, message = _odata_error(exc)
        detail = self.redact(
            f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
        )
        if status == 410 or code.lower() in SYNC_STATE_LOST:
            self._metrics.graph_request(operation, Outcome.CLIENT_ERROR)
            return DeltaTokenExpired(f"Graph {operation}: {detail}")
        headers = exc.response_headers or {}
        return self.status_error(operation, status, detail, retry_after_seconds(headers.get("Retry-After")))

    def status_error(self, operation: str, status: int, detail: str, retry_after: float | None) -> Exception:
        """The exception for a failed status (also used for the items inside a `$batch`)."""
        if status in RETRYABLE:
            self._metrics.graph_request(
                operation, Outcome.THROTTLED if status == 429 else Outcome.SERVER_ERROR
            )
            return RetryableStatus(status, detail, retry_after)
        if status in (401, 403):
            self._metrics.graph_request(operation, Outcome.FORBIDDEN)
            return DirectoryForbiddenError(f"Graph refused {operation}: {detail}")
        if status == 404:
            self._metrics.graph_request(operation, Outcome.NOT_FOUND)
            return NotFoundResponse(detail)
        self._metrics.graph_request(operation, Outcome.CLIENT_ERROR)
        return DirectoryUnavailableError(f"Graph rejected {operation}: {detail}")


# A delta token Graph no longer knows (Graph docs, "Use delta query": start over without one).
SYNC_STATE_LOST = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})


class DeltaTokenExpired(DirectoryError):
    """Graph no longer knows a delta token (410, or `syncStateNotFound`): start the round over."""


class RetryableStatus(DirectoryError):
    def __init__(self, status: int, detail: str, retry_after: float | None) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.status = status
        self.detail = detail


def _odata_error(exc: APIError) -> tuple[str, str]:
    error = getattr(exc, "error", None)
    if error is None:
        return "", ""
    return str(getattr(error, "code", "") or ""), str(getattr(error, "message", "") or "")
