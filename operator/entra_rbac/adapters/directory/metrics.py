"""The directory's metrics hook: what it reports about its Graph traffic, and a counting default.

Holds the `DirectoryMetrics` protocol and `CountingMetrics`. It must not import
prometheus_client: the metrics module (another layer's) adapts this protocol to Prometheus.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    """How one HTTP exchange with Graph (or its token endpoint) ended."""

    SUCCESS = "success"
    NOT_FOUND = "not_found"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    FORBIDDEN = "forbidden"
    TOKEN_ERROR = "token_error"
    CONNECTION_ERROR = "connection_error"
    CLIENT_ERROR = "client_error"


class DirectoryMetrics(Protocol):
    """Callbacks the directory makes; implementations must be cheap and never raise."""

    def graph_request(self, operation: str, outcome: Outcome) -> None:
        """One HTTP attempt finished (`operation`: getByIds, batch, transitiveMembers, ...)."""

    def throttled(self, operation: str, retry_after: float | None) -> None:
        """Graph asked us to slow down (429, or 503 with Retry-After)."""

    def cache_lookup(self, kind: str, hit: bool) -> None:
        """A lookup was answered from the cache (hit) or needed a read (miss)."""


class CountingMetrics:
    """Keeps counts in memory: the default, and what tests and a Prometheus bridge can read."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.throttles: Counter[str] = Counter()
        self.cache: Counter[tuple[str, bool]] = Counter()

    def graph_request(self, operation: str, outcome: Outcome) -> None:
        self.requests[(operation, outcome.value)] += 1

    def throttled(self, operation: str, retry_after: float | None) -> None:
        self.throttles[operation] += 1

    def cache_lookup(self, kind: str, hit: bool) -> None:
        self.cache[(kind, hit)] += 1

    def total_requests(self, operation: str | None = None) -> int:
        return sum(n for (op, _), n in self.requests.items() if operation in (None, op))
