"""Benchmark (make bench): the operator at scale against the sandbox.

200 EntraGroupBindings x 10 namespaces (2,000 RoleBindings): time to converge, API requests per
binding written, Graph requests, writes during an idle resync (must be 0), and the operator's
resident memory. Prints the figures; asserts only correctness (all Ready, idle writes 0).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.e2e.harness import Cluster, guid

from entra_rbac_sandbox.launcher import Sandbox

RESOURCES = 200
NAMESPACES = 10
REFRESH = 15.0


@pytest.fixture
def big_cluster(tmp_path: Path) -> Iterator[Cluster]:
    users = [
        {"id": guid(1 + i), "userPrincipalName": f"u{i}@contoso.com", "userType": "Member"} for i in range(50)
    ]
    groups = [
        {
            "id": guid(10_000 + i),
            "displayName": f"Team {i}",
            "mailNickname": f"team{i}",
            "members": [users[i % 50]["id"]],
        }
        for i in range(RESOURCES)
    ]
    directory = tmp_path / "directory.yaml"
    directory.write_text(yaml.safe_dump({"users": users, "groups": groups}), encoding="utf-8")
    env = {"ENTRA_RBAC_REFRESH_INTERVAL": f"{REFRESH}s", "ENTRA_RBAC_LOG_LEVEL": "warning"}
    log_path = tmp_path / "operator.log"
    with (
        log_path.open("w") as log,
        Sandbox(directory, state_dir=tmp_path / "sb", operator_env=env, operator_output=log) as sandbox,
    ):
        yield Cluster(sandbox, log_path)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _statuses(cluster: Cluster) -> dict[str, object]:
    items = cluster.custom.list_cluster_custom_object("entra-rbac.io", "v1alpha1", "entragroupbindings")[
        "items"
    ]
    return {item["metadata"]["name"]: item.get("status") for item in items}


def _ready_count(cluster: Cluster) -> int:
    items = cluster.custom.list_cluster_custom_object("entra-rbac.io", "v1alpha1", "entragroupbindings")[
        "items"
    ]
    return sum(
        1
        for item in items
        for c in item.get("status", {}).get("conditions") or []
        if c["type"] == "Ready" and c["status"] == "True"
    )


@pytest.mark.bench
def test_bench_operator_200_resources_by_10_namespaces(big_cluster: Cluster) -> None:
    cluster = big_cluster
    names = [f"ns{i}" for i in range(NAMESPACES)]
    cluster.apply(*({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names))
    kube, entra = cluster.sandbox.kube.faults, cluster.sandbox.entra
    kube.reset_requests()
    entra.reset_requests()
    resources = [
        {
            "apiVersion": "entra-rbac.io/v1alpha1",
            "kind": "EntraGroupBinding",
            "metadata": {"name": f"team{i}"},
            "spec": {
                "groups": [{"mailNickname": f"team{i}"}],
                "roleBindings": [{"clusterRole": "edit", "namespaces": names}],
            },
        }
        for i in range(RESOURCES)
    ]
    started = time.monotonic()
    cluster.apply(*resources)
    cluster.wait_for("every resource Ready", lambda: _ready_count(cluster) == RESOURCES or None, timeout=600)
    converged = time.monotonic() - started
    bindings = len(cluster.managed_bindings())
    assert bindings == RESOURCES * NAMESPACES
    api_requests = sum(kube.counts().values())
    graph_requests = entra.count()

    # Idle: one full refresh interval with every timer ticking must write nothing.
    before = _statuses(cluster)
    kube.reset_requests()
    graph_before = entra.count()
    cluster.wait_for(
        "a full round of directory refreshes",
        lambda: entra.count() >= graph_before + 2 or None,
        timeout=REFRESH * 3,
    )
    idle_deadline = time.monotonic() + REFRESH
    cluster.wait_for(
        "one refresh interval", lambda: time.monotonic() >= idle_deadline or None, timeout=REFRESH * 2
    )
    idle_writes = sum(kube.count(m, ".*") for m in ("POST", "PUT", "PATCH", "DELETE"))
    idle_reads = kube.count("GET", ".*")
    assert cluster.sandbox.process is not None
    rss = _rss_mib(cluster.sandbox.process.pid)

    print(f"\n[bench operator] {RESOURCES} resources x {NAMESPACES} namespaces = {bindings} RoleBindings")
    print(f"[bench operator] converged in {converged:.1f} s ({bindings / converged:.0f} bindings/s)")
    per_binding = api_requests / bindings
    print(f"[bench operator] API requests while converging: {api_requests} ({per_binding:.2f} per binding)")
    print(f"[bench operator] Graph requests while converging: {graph_requests}")
    print(f"[bench operator] idle resync over {REFRESH:.0f} s: {idle_writes} writes, {idle_reads} reads")
    print(f"[bench operator] operator resident memory: {rss:.0f} MiB")
    writes = {k: v for k, v in kube.counts().items() if not k.startswith("GET")}
    after = _statuses(cluster)
    changed = [
        f"{name}.{key}: {before[name].get(key)!r} -> {value!r}"  # type: ignore[union-attr]
        for name, status in after.items()
        for key, value in (status or {}).items()  # type: ignore[union-attr]
        if before.get(name) and before[name].get(key) != value  # type: ignore[union-attr]
    ]
    assert idle_writes == 0, f"{len(writes)} writes; changes: {changed[:3]}"
