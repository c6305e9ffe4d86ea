"""Fault injection and request accounting for the sandbox servers (docs/design.md, The sandbox contract).

Holds `FaultInjector`: an aiohttp middleware plus the `/_sandbox/faults` and `/_sandbox/requests`
endpoints, and the same operations as methods for tests in the same process. It knows no server's
API: each server passes `error_body(status, retry_after_seconds) -> dict`, which renders the JSON body
of an injected error in that server's own format (Kubernetes `Status`, Graph error JSON).

HTTP API (served by the middleware itself, ahead of any catch-all route of the server):
- `POST /_sandbox/faults` with JSON
  `{"method": "GET", "path": "<regex>", "status": 503, "retryAfter": 2, "count": 3,
  "delayMs": 0, "drop": false}`.
  `path` (required) is a regular expression searched (`re.search`) in the request path (no query
  string). `method` (default: any; `"*"` too) is matched case-insensitively. The first `count`
  (default 1; -1 = until cleared) matching requests fail, then the fault is gone. `delayMs`
  delays the answer; `status` 0 or absent makes a delay-only fault (the request is then served
  normally after the delay). `retryAfter` (seconds) sets the `Retry-After` header and is passed
  (rounded up to whole seconds) to `error_body`. `drop: true` closes the connection without
  an answer (after any delay): a client sees a reset, like a crash. (aiohttp's and httpx's
  clients retry an idempotent request once on a reused connection that closed: use count 2+.)
  Answers `201 {"fault": {...}}`; bad input answers 400 `{"error": "<field>: <what is wrong>"}`.
  `GET /_sandbox/faults` lists the faults still active; `DELETE /_sandbox/faults` clears them.
- `GET /_sandbox/requests` answers `{"total": N, "counts": {"GET /v1.0/groups": 3, ...}}`
  (method and path, no query string); with `?log=true` also `"log": [{"time", "method",
  "path", "query", "fault"}, ...]` in arrival order (`time` = wall-clock seconds since the epoch,
  taken when the request arrived, before any injected delay; `fault` = the injected status, or
  null). `DELETE /_sandbox/requests` resets counts and log. Requests to `/_sandbox/*` are
  never counted nor faulted.

In-process API (thread-safe: a server may run on another thread's loop):
`add_fault(path, *, method=None, status=0, retry_after=None, count=1, delay_ms=0, drop=False)`,
`add(Fault)`, `clear()`, `active()`, `take(method, path) -> Fault | None` (consumes one count;
for requests a server dispatches itself, e.g. the inner requests of a Graph `$batch`),
`record(method, path, query="", fault=None)`, `counts()`, `count(method=None, path=None)`,
`request_log()` (list of `RequestRecord`), `reset_requests()`, `error_response(fault)`,
and `middleware` to put in `web.Application(middlewares=[...])`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

# (status, retry_after rounded up to whole seconds, or None) -> the JSON error body.
ErrorBody = Callable[[int, "int | None"], Mapping[str, Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The log is bounded so a long benchmark cannot grow memory without end.
DEFAULT_MAX_LOG = 200_000


class FaultSpecError(ValueError):
    """A fault description is invalid; the message names the field."""


@dataclass
class Fault:
    """One injected fault; `count` is what remains (-1: until cleared)."""

    path: re.Pattern[str]
    method: str | None = None
    status: int = 0
    retry_after: float | None = None
    count: int = 1
    delay_ms: int = 0
    drop: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.count == 0:
            return False
        if self.method is not None and self.method != method.upper():
            return False
        return self.path.search(path) is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method or "*",
            "path": self.path.pattern,
            "status": self.status,
            "retryAfter": self.retry_after,
            "count": self.count,
            "delayMs": self.delay_ms,
            "drop": self.drop,
        }

    @classmethod
    def from_json(cls, body: object) -> Fault:
        """Parse the JSON of `POST /_sandbox/faults`; raises FaultSpecError naming the field."""
        if not isinstance(body, dict):
            raise FaultSpecError("body: must be a JSON object")
        unknown = set(body) - {"method", "path", "status", "retryAfter", "count", "delayMs", "drop"}
        if unknown:
            raise FaultSpecError(f"{sorted(unknown)[0]}: unknown field")
        pattern = body.get("path")
        if not isinstance(pattern, str) or not pattern:
            raise FaultSpecError("path: required, a non-empty regular expression string")
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise FaultSpecError(f"path: not a valid regular expression: {error}") from None
        method = body.get("method")
        if method is not None and (not isinstance(method, str) or (not method.isalpha() and method != "*")):
            raise FaultSpecError("method: must be an HTTP method name such as GET, or '*'")
        return cls(
            path=compiled,
            method=None if method in (None, "*") else str(method).upper(),
            status=_int_field(body, "status", 0, minimum=0, maximum=599),
            retry_after=_retry_after(body.get("retryAfter")),
            count=_count(body.get("count", 1)),
            delay_ms=_int_field(body, "delayMs", 0, minimum=0, maximum=600_000),
            drop=_bool_field(body, "drop"),
        )


@dataclass(frozen=True)
class RequestRecord:
    """One request as it arrived (before any injected delay)."""

    time: float  # wall clock, seconds since the epoch
    monotonic: float
    method: str
    path: str
    query: str = ""
    fault: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "fault": self.fault,
        }


@dataclass(eq=False)
class FaultInjector:
    """Faults and request accounting for one server; see the module docstring for the API."""

    error_body: ErrorBody
    prefix: str = "/_sandbox"
    max_log: int = DEFAULT_MAX_LOG
    _faults: list[Fault] = field(default_factory=list)
    _log: list[RequestRecord] = field(default_factory=list)
    _counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Faults ---------------------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def add_fault(
        self,
        path: str,
        *,
        method: str | None = None,
        status: int = 0,
        retry_after: float | None = None,
        count: int = 1,
        delay_ms: int = 0,
        drop: bool = False,
    ) -> Fault:
        body: dict[str, Any] = {"path": path, "status": status, "count": count, "delayMs": delay_ms}
        body.update({"drop": drop, "method": method, "retryAfter": retry_after})
        return self.add(Fault.from_json(body))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            self._faults = [f for f in self._faults if f.count != 0]
            return list(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The first active fault matching this request, with one count consumed."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.count > 0:
                        fault.count -= 1
                    return fault
        return None

    # Requests -------------------------------------------------------------------------------

    def record(self, method: str, path: str, query: str = "", fault: int | None = None) -> RequestRecord:
        entry = RequestRecord(time.time(), time.monotonic(), method.upper(), path, query, fault)
        with self._lock:
            self._counts[f"{entry.method} {path}"] += 1
            self._log.append(entry)
            if len(self._log) > self.max_log:
                del self._log[: len(self._log) - self.max_log]
        return entry

    def counts(self) -> dict[str, int]:
        """Requests so far by "METHOD /path"."""
        with self._lock:
            return dict(self._counts)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests had this method (any if None) and a path matching the regex `path`."""
        compiled = re.compile(path) if path is not None else None
        with self._lock:
            items = list(self._counts.items())
        total = 0
        for key, n in items:
            key_method, _, key_path = key.partition(" ")
            if method is not None and key_method != method.upper():
                continue
            if compiled is not None and not compiled.search(key_path):
                continue
            total += n
        return total

    def request_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def reset_requests(self) -> None:
        with self._lock:
            self._log.clear()
            self._counts.clear()

    # Answers --------------------------------------------------------------------------------

    def error_response(self, fault: Fault) -> web.Response:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = _seconds_header(fault.retry_after)
        seconds = None if fault.retry_after is None else math.ceil(fault.retry_after)
        body = dict(self.error_body(fault.status, seconds))
        return web.json_response(body, status=fault.status, headers=headers)

    async def apply(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        """Delay, drop or answer as `fault` says; None means: serve the request normally."""
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.drop:
            if request.transport is not None:
                request.transport.abort()
            # Nothing reaches the client; aiohttp ignores the write to the closed connection.
            return web.Response(status=500)
        if fault.status:
            return self.error_response(fault)
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(self.prefix + "/"):
            own = await self._sandbox_endpoint(request)
            return own if own is not None else await handler(request)
        fault = self.take(request.method, request.path)
        injected = fault.status if fault is not None and fault.status and not fault.drop else None
        self.record(request.method, request.path, request.query_string, injected)
        if fault is not None:
            log.info("Injected fault %s into %s %s", fault.to_json(), request.method, request.path)
            response = await self.apply(request, fault)
            if response is not None:
                return response
        return await handler(request)

    async def _sandbox_endpoint(self, request: web.Request) -> web.StreamResponse | None:
        route = (request.method, request.path[len(self.prefix) :])
        if route == ("POST", "/faults"):
            try:
                fault = self.add(Fault.from_json(await request.json()))
            except ValueError as error:  # FaultSpecError, or JSON that does not parse
                message = str(error) if isinstance(error, FaultSpecError) else f"body: not JSON: {error}"
                return web.json_response({"error": message}, status=400)
            return web.json_response({"fault": fault.to_json()}, status=201)
        if route == ("GET", "/faults"):
            return web.json_response({"faults": [f.to_json() for f in self.active()]})
        if route == ("DELETE", "/faults"):
            self.clear()
            return web.json_response({"faults": []})
        if route == ("GET", "/requests"):
            counts = self.counts()
            answer: dict[str, Any] = {"total": sum(counts.values()), "counts": counts}
            if request.query.get("log", "").lower() in ("1", "true", "yes"):
                answer["log"] = [entry.to_json() for entry in self.request_log()]
            return web.json_response(answer)
        if route == ("DELETE", "/requests"):
            self.reset_requests()
            return web.json_response({"total": 0, "counts": {}})
        return None  # some other /_sandbox/ route of the server itself


def _seconds_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _int_field(body: Mapping[str, Any], name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise FaultSpecError(f"{name}: must be an integer from {minimum} to {maximum}, got {value!r}")
    return value


def _bool_field(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FaultSpecError(f"{name}: must be true or false, got {value!r}")
    return value


def _retry_after(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultSpecError(f"retryAfter: must be a number of seconds >= 0, got {value!r}")
    return float(value) if isinstance(value, float) else int(value)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and value != -1):
        raise FaultSpecError(f"count: must be a positive integer (or -1: until cleared), got {value!r}")
    return value
