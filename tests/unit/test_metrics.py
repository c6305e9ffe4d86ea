"""Operator metrics: names, values, the directory hook, and the /metrics endpoint over real HTTP."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from entra_rbac.metrics import OperatorMetrics, start_metrics_server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sample(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_reconciles_are_counted_by_result_with_their_duration() -> None:
    metrics = OperatorMetrics()
    metrics.reconcile_finished("Reconciled", 0.2)
    metrics.reconcile_finished("Reconciled", 0.3)
    metrics.reconcile_finished("DirectoryUnavailable", 5.0)
    assert sample(metrics, "entra_rbac_reconciles_total", result="Reconciled") == 2
    assert sample(metrics, "entra_rbac_reconciles_total", result="DirectoryUnavailable") == 1
    assert sample(metrics, "entra_rbac_reconcile_duration_seconds_count") == 3
    assert sample(metrics, "entra_rbac_reconcile_duration_seconds_sum") == pytest.approx(5.5)
    assert sample(metrics, "entra_rbac_reconcile_duration_seconds_bucket", le="0.25") == 1


def test_managed_bindings_gauge_sums_resources_and_forgets_deleted_ones() -> None:
    metrics = OperatorMetrics()
    assert sample(metrics, "entra_rbac_managed_bindings", kind="RoleBinding") == 0
    metrics.set_managed_bindings("uid-a", cluster_role_bindings=1, role_bindings=3)
    metrics.set_managed_bindings("uid-b", cluster_role_bindings=0, role_bindings=2)
    metrics.set_managed_bindings("uid-a", cluster_role_bindings=1, role_bindings=4)  # replaces, not adds
    assert sample(metrics, "entra_rbac_managed_bindings", kind="RoleBinding") == 6
    assert sample(metrics, "entra_rbac_managed_bindings", kind="ClusterRoleBinding") == 1
    metrics.forget_resource("uid-a")
    assert sample(metrics, "entra_rbac_managed_bindings", kind="RoleBinding") == 2
    assert sample(metrics, "entra_rbac_managed_bindings", kind="ClusterRoleBinding") == 0


def test_graph_requests_throttles_and_cache_come_through_the_directory_hook() -> None:
    from entra_rbac.adapters.directory import DirectoryMetrics, Outcome

    metrics = OperatorMetrics()
    hook: DirectoryMetrics = metrics  # structural fit, checked by mypy
    hook.graph_request("getByIds", Outcome.SUCCESS)
    hook.graph_request("getByIds", Outcome.THROTTLED)
    hook.throttled("getByIds", 2.0)
    hook.cache_lookup("group", True)
    assert sample(metrics, "entra_rbac_graph_requests_total", operation="getByIds", outcome="success") == 1
    assert sample(metrics, "entra_rbac_graph_requests_total", operation="getByIds", outcome="throttled") == 1
    assert sample(metrics, "entra_rbac_graph_throttles_total", operation="getByIds") == 1
    assert sample(metrics, "entra_rbac_directory_cache_lookups_total", kind="group", hit="true") == 1


def test_seconds_since_verified_read_counts_from_start_then_from_the_last_verification() -> None:
    clock = FakeClock()
    metrics = OperatorMetrics(clock=clock)
    name = "entra_rbac_directory_seconds_since_verified_read"
    clock.now += 40
    assert sample(metrics, name) == 40
    metrics.directory_verified()
    clock.now += 7
    assert sample(metrics, name) == 7


def test_metrics_port_zero_means_off() -> None:
    assert start_metrics_server(OperatorMetrics(), 0) is None


def test_metrics_endpoint_serves_every_entra_rbac_metric_over_http() -> None:
    metrics = OperatorMetrics()
    metrics.reconcile_finished("Reconciled", 0.1)
    server = start_metrics_server(metrics, 0, address="127.0.0.1", ephemeral=True)
    assert server is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.close()
    names = {family.name for family in text_string_to_metric_families(body)}
    assert {
        "entra_rbac_reconciles",
        "entra_rbac_reconcile_duration_seconds",
        "entra_rbac_managed_bindings",
        "entra_rbac_graph_requests",
        "entra_rbac_graph_throttles",
        "entra_rbac_directory_seconds_since_verified_read",
    } <= names
    assert all(name.startswith("entra_rbac_") for name in names)
