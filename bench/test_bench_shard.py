"""Benchmark (make bench): one user-mode resource over a group of 50,000 transitive members on the
real control plane (issue 17 point 7).

50,000 User subjects are about 5 MB of JSON, more than etcd stores in one object (1.5 MiB; docs/
design.md, Subjects the operator emits: bindings too large to write), so the operator writes the
binding as shards. The run starts a control plane of its own, an operator over it signed in
with its ServiceAccount, creates one resource binding the group (BENCH_SHARD_MEMBERS, two nested
groups of half each) in one namespace, and waits until it is Ready; then checks that the shards
hold every member exactly once, and restarts the operator over the unchanged resource until it
settles, writing nothing. Printed through bench/table.py: Ready time, CPU-seconds and resident
memory at Ready, the shards, and the restart's CPU-seconds and memory (target <= 300 MiB).
Asserts correctness only (every member in exactly one shard, no shard over the limit, no write
after the restart).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.e2e.harness import RequestCounts, guid

from bench.kubeobjects import EGB, egb, namespace, raw_items
from bench.proc import cpu_seconds, peak_rss_mib, rss_mib
from bench.settle import cpu_settle
from bench.table import Table
from bench.teams import bench_sandbox
from entra_rbac.constants import MAX_BINDING_BYTES

MEMBERS = int(os.environ.get("BENCH_SHARD_MEMBERS", "50000"))
READY_DEADLINE, TARGET_RSS = 600.0, 300.0
MANAGED = "app.kubernetes.io/managed-by=entra-rbac-operator"
pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]


def _directory() -> dict[str, Any]:
    users = [
        {"id": guid(100_000 + n), "userPrincipalName": f"user{n}@contoso.com", "userType": "Member"}
        for n in range(MEMBERS)
    ]
    half = MEMBERS // 2
    groups = [
        {"id": guid(10_001), "displayName": "Big A", "members": [u["id"] for u in users[:half]]},
        {"id": guid(10_002), "displayName": "Big B", "members": [u["id"] for u in users[half:]]},
        {"id": guid(10_000), "displayName": "Big", "members": [guid(10_001), guid(10_002)]},
    ]
    return {"users": users, "groups": groups}


RESOURCE = {
    "apiVersion": "entra-rbac.io/v1alpha1",
    "kind": "EntraGroupBinding",
    "metadata": {"name": "big"},
    "spec": {
        "groups": [{"id": guid(10_000)}],
        "subjects": {"kind": "User"},
        "roleBindings": [{"clusterRole": "edit", "namespaces": ["bench-shard"]}],
    },
}


def _ready(custom: client.CustomObjectsApi) -> dict[str, Any] | None:
    item = egb(custom, "big")
    status = item.get("status") or {}
    if status.get("observedGeneration") != item["metadata"].get("generation"):
        return None
    ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
    assert ready is None or ready.get("reason") != "BindingTooLarge", ready["message"] if ready else ""
    return item if ready is not None and ready["status"] == "True" else None


def _shards(api: client.ApiClient) -> list[dict[str, Any]]:
    answer = client.RbacAuthorizationV1Api(api).list_namespaced_role_binding(
        "bench-shard", label_selector=MANAGED, _preload_content=False
    )
    return raw_items(answer)


def _writes(requests: RequestCounts) -> int:
    """The operator's writes of bindings, from the real server's audit log."""
    return sum(requests.count(m, r"^/apis/rbac") for m in ("POST", "PUT", "PATCH", "DELETE"))


def test_bench_one_resource_over_50000_members_on_the_real_control_plane(tmp_path: Path) -> None:
    directory = tmp_path / "directory.yaml"
    directory.write_text(json.dumps(_directory()), encoding="utf-8")
    env = {"ENTRA_RBAC_REFRESH_INTERVAL": "300s", "ENTRA_RBAC_LOG_LEVEL": "warning"}
    with (
        bench_sandbox(tmp_path, directory, env, real=True) as (sandbox, requests),
        sandbox.admin_client() as api,
    ):
        client.CoreV1Api(api).create_namespace(namespace("bench-shard"))
        custom = client.CustomObjectsApi(api)
        process = sandbox.start_operator()
        cpu_settle(process.pid, time.monotonic())
        cpu0, started = cpu_seconds(process.pid), time.monotonic()
        custom.create_cluster_custom_object(*EGB, RESOURCE)
        while (item := _ready(custom)) is None:
            assert time.monotonic() < started + READY_DEADLINE, f"not Ready within {READY_DEADLINE:.0f}s"
            assert process.poll() is None, "the operator exited"
            time.sleep(0.5)  # polling a condition, bounded by the deadline
        ready_s, ready_cpu, rss_ready = (
            time.monotonic() - started,
            cpu_seconds(process.pid) - cpu0,
            rss_mib(process.pid),
        )
        peak = peak_rss_mib(process.pid)
        shards = _shards(api)
        held = [s["name"] for b in shards for s in b["subjects"]]
        assert sorted(held) == sorted(f"user{n}@contoso.com" for n in range(MEMBERS)), "each member once"
        sizes = [len(json.dumps(b["subjects"], separators=(",", ":"))) for b in shards]
        assert max(sizes) <= MAX_BINDING_BYTES
        assert item["status"]["summary"]["subjects"] == MEMBERS
        del shards, held

        sandbox.stop_operator()
        writes = _writes(requests)
        restarted = time.monotonic()
        process = sandbox.start_operator()
        restart_s, restart_cpu = cpu_settle(process.pid, restarted)
        restart_writes = _writes(requests) - writes
        restart_rss, restart_peak = rss_mib(process.pid), peak_rss_mib(process.pid)
    table = Table("bench shard", f"1 resource over 1 group of {MEMBERS:,} members, real control plane")
    table.add(
        "shards (largest, bytes)",
        f"{len(sizes)} ({max(sizes):,})",
        target=f"<= {MAX_BINDING_BYTES:,} each",
        ok=True,
    )
    table.add("Ready", f"{ready_s:.1f} s")
    table.add("CPU until Ready", f"{ready_cpu:.1f} s")
    table.add("resident at Ready (peak)", f"{rss_ready:.0f} MiB ({peak:.0f})",
              target=f"<= {TARGET_RSS:.0f} MiB",
              ok=max(rss_ready, peak) <= TARGET_RSS)  # fmt: skip
    table.add("restart: seconds, CPU-seconds to settle", f"{restart_s:.1f} s, {restart_cpu:.1f} s")
    table.add("restart: resident (peak)", f"{restart_rss:.0f} MiB ({restart_peak:.0f})",
              target=f"<= {TARGET_RSS:.0f} MiB", ok=max(restart_rss, restart_peak) <= TARGET_RSS)  # fmt: skip
    table.add("restart: writes", str(restart_writes), target="0", ok=restart_writes == 0)
    table.print()
    assert restart_writes == 0, f"{restart_writes} writes after a restart over an unchanged resource"
