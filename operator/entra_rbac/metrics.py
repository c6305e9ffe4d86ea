"""Prometheus metrics of the operator (prometheus-client) and the HTTP server that exposes them.

Holds `OperatorMetrics` (one registry per instance, so tests never share state) and
`start_metrics_server`. `OperatorMetrics` also fits the directory adapter's `DirectoryMetrics`
hook structurally (graph_request / throttled / cache_lookup), so Graph traffic lands here
without this module importing the adapter. It must not import kopf, clients or adapters: it
sits in layer 5 beside settings. Every metric is named `entra_rbac_*`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import Lock, Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Reconciles of one resource usually take well under a second; a slow Graph read with retries
# may take up to a minute (the directory's retry budget), so the buckets reach that far.
_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class OperatorMetrics:
    """The operator's counters and gauges; every method is cheap and never raises."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._wall_clock = wall_clock
        self._time_bound: dict[str, tuple[int, datetime | None]] = {}
        self._started = clock()
        self._last_verified: float | None = None
        self._bindings: dict[str, tuple[int, int]] = {}
        # Running sums of the two maps: one reconcile updates them in O(1), not by a pass over
        # every resource (1,000 reconciles per refresh made that the idle operator's hot spot).
        self._binding_totals = (0, 0)
        self._time_bound_active = 0
        self._lock = Lock()
        self.reconciles = Counter(
            "entra_rbac_reconciles",
            "Reconciles of EntraGroupBindings, by result (the Ready reason, or error).",
            ["result"],
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "entra_rbac_reconcile_duration_seconds",
            "Time one reconcile took, from parse to status.",
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.managed_bindings = Gauge(
            "entra_rbac_managed_bindings",
            "Bindings the operator manages now, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.graph_requests = Counter(
            "entra_rbac_graph_requests",
            "HTTP exchanges with Microsoft Graph or its token endpoint, by operation and outcome.",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.graph_throttles = Counter(
            "entra_rbac_graph_throttles",
            "Times Graph asked the operator to slow down (429, or 503 with Retry-After).",
            ["operation"],
            registry=self.registry,
        )
        self.directory_cache = Counter(
            "entra_rbac_directory_cache_lookups",
            "Directory lookups answered from the shared cache (hit=true) or by a read.",
            ["kind", "hit"],
            registry=self.registry,
        )
        since = Gauge(
            "entra_rbac_directory_seconds_since_verified_read",
            "Seconds since the directory was last read and verified (since start if never).",
            registry=self.registry,
        )
        # Computed at scrape time, so the value grows while Entra is unreachable with no writer.
        since.set_function(self.seconds_since_verified_read)
        for kind in ("ClusterRoleBinding", "RoleBinding"):
            self.managed_bindings.labels(kind=kind).set(0)
        self.time_bound_active = Gauge(
            "entra_rbac_time_bound_grants_active",
            "Time-bound grants (with a validFrom or validUntil) active now, over all resources.",
            registry=self.registry,
        )
        until = Gauge(
            "entra_rbac_time_bound_next_expiry_seconds",
            "Seconds until the next time-bound grant ends (+Inf when none is active or pending).",
            registry=self.registry,
        )
        until.set_function(self.seconds_until_next_expiry)

    # --- reconciler hooks ---
    def reconcile_finished(self, result: str, seconds: float) -> None:
        self.reconciles.labels(result=result).inc()
        self.reconcile_duration.observe(max(seconds, 0.0))

    def set_managed_bindings(self, owner_uid: str, *, cluster_role_bindings: int, role_bindings: int) -> None:
        """Record one resource's counts; the gauge is the sum over resources."""
        with self._lock:
            self._set_bindings(owner_uid, (cluster_role_bindings, role_bindings))

    def forget_resource(self, owner_uid: str) -> None:
        """The resource is gone: its bindings no longer count."""
        with self._lock:
            self._set_bindings(owner_uid, None)
            self._set_time_bound(owner_uid, None)

    def set_time_bound(self, owner_uid: str, *, active: int, next_expiry: str | None) -> None:
        """One resource's active time-bound grants and the end of its next one (RFC 3339)."""
        end = datetime.fromisoformat(next_expiry) if next_expiry else None
        with self._lock:
            self._set_time_bound(owner_uid, (active, end))

    def _set_bindings(self, owner_uid: str, counts: tuple[int, int] | None) -> None:
        old = self._bindings.pop(owner_uid, (0, 0))
        if counts is not None:
            self._bindings[owner_uid] = counts
        new = counts or (0, 0)
        if new != old:
            total_c, total_r = self._binding_totals
            self._binding_totals = (total_c + new[0] - old[0], total_r + new[1] - old[1])
            self._publish_bindings()

    def _set_time_bound(self, owner_uid: str, entry: tuple[int, datetime | None] | None) -> None:
        old = self._time_bound.pop(owner_uid, (0, None))
        if entry is not None:
            self._time_bound[owner_uid] = entry
        active = entry[0] if entry is not None else 0
        if active != old[0]:
            self._time_bound_active += active - old[0]
            self._publish_time_bound()

    def seconds_until_next_expiry(self) -> float:
        ends = [end for _, end in self._time_bound.values() if end is not None]
        if not ends:
            return math.inf
        return max((min(ends) - self._wall_clock()).total_seconds(), 0.0)

    def _publish_time_bound(self) -> None:
        self.time_bound_active.set(self._time_bound_active)

    def directory_verified(self) -> None:
        """A directory read completed and was verified (every group, every page)."""
        self._last_verified = self._clock()

    def seconds_since_verified_read(self) -> float:
        since = self._last_verified if self._last_verified is not None else self._started
        return max(self._clock() - since, 0.0)

    # --- the directory adapter's DirectoryMetrics hook (structural) ---
    def graph_request(self, operation: str, outcome: str) -> None:
        self.graph_requests.labels(operation=operation, outcome=str(outcome)).inc()

    def throttled(self, operation: str, retry_after: float | None) -> None:
        self.graph_throttles.labels(operation=operation).inc()

    def cache_lookup(self, kind: str, hit: bool) -> None:
        self.directory_cache.labels(kind=kind, hit="true" if hit else "false").inc()

    def _publish_bindings(self) -> None:
        self.managed_bindings.labels(kind="ClusterRoleBinding").set(self._binding_totals[0])
        self.managed_bindings.labels(kind="RoleBinding").set(self._binding_totals[1])


@dataclass
class MetricsServer:
    """A running /metrics endpoint; `port` is the one bound (useful with port 0 in tests)."""

    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(
    metrics: OperatorMetrics,
    port: int,
    *,
    # Prometheus scrapes the pod IP, so every interface; tests pass 127.0.0.1.
    address: str = "0.0.0.0",  # noqa: S104
    ephemeral: bool = False,
) -> MetricsServer | None:
    """Serve `metrics` on `address:port` in a daemon thread; port 0 means metrics are off.

    `ephemeral=True` turns port 0 into "any free port" (tests) instead of "off".
    """
    if port == 0 and not ephemeral:
        return None
    server, thread = start_http_server(port, addr=address, registry=metrics.registry)
    return MetricsServer(server=server, thread=thread)
