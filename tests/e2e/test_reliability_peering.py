"""End to end, issue 18 point 1 (reliability, tests/e2e/reliability.py): two, then three,
`entra-rbac run` processes at once (docs/deployment.md, Never two writers): a paused instance
sends no write and no Entra request; a standby takes over when the active one is killed; equal
priorities all pause. On the sandbox and on the real control plane.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cluster
from tests.e2e.reliability import ALICE, directory, pair

pytestmark = pytest.mark.e2e


PEERING = ("kopf.dev", "v1", "clusterkopfpeerings", "entra-rbac-operator")
LIFETIME = 5  # seconds: the peering lifetime of every instance here (default 60)
QUIET = 8.0  # seconds each window of silence is watched
NOT_PEERING = r"^/(?!apis/kopf\.dev/)"  # every write but kopf's heartbeats


def instance(cluster: Cluster, log: Path, **env: str) -> subprocess.Popen[str]:
    """One more `entra-rbac run`, as the fixture's operator runs, with `env` on top."""
    environment = {**cluster.sandbox.operator_environment(), **env}
    with log.open("w", encoding="utf-8") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "entra_rbac", "run"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


def heartbeats(cluster: Cluster) -> dict[str, Any]:
    peering = cluster.custom.get_cluster_custom_object(*PEERING)
    return dict(peering.get("status") or {})


def paused_lines(log: Path) -> int:
    return log.read_text(encoding="utf-8").count("Paused the refresher")


def quiet_window(cluster: Cluster, what: str) -> dict[str, int]:
    """Watch QUIET seconds: no operator write (heartbeats aside) and no Entra request at all."""
    cluster.requests.reset()
    entra_before = cluster.sandbox.entra.count()
    deadline = time.monotonic() + QUIET
    while time.monotonic() < deadline:
        writes = cluster.operator_writes(NOT_PEERING)
        entra = cluster.sandbox.entra.count() - entra_before
        assert (writes, entra) == (0, 0), f"{what}: {cluster.requests.counts()}, {entra} Entra requests"
        time.sleep(0.5)  # sampling the window, not waiting for the operator
    return {"heartbeats": cluster.requests.count("PATCH", r"^/apis/kopf\.dev/")}


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# The active instance, from its start: quiet while idle, so that every Entra request in the
# windows is the others'.
@pytest.mark.operator_env(
    ENTRA_RBAC_PEERING_LIFETIME=str(LIFETIME),
    ENTRA_RBAC_PEERING_PRIORITY="100",
    ENTRA_RBAC_REFRESH_INTERVAL="1h",
    ENTRA_RBAC_DELTA_INTERVAL="off",
)
def test_a_paused_instance_neither_writes_nor_reads_entra_and_a_standby_takes_over(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Issue 18 point 1. The active instance (priority 100) is idle (refresh 1h, no delta
    queries); the standby (priority 50) refreshes every second, asks Graph's delta and lacks
    `view` in its allowlist, so were it acting it would read Entra and delete the binding at once.
    Then the active one is killed; then a third instance with the standby's priority joins, and
    both pause."""
    peering = {"ENTRA_RBAC_PEERING_LIFETIME": str(LIFETIME)}
    cluster.directory(directory(ALICE))
    cluster.apply(pair())
    cluster.wait_ready("pair")
    crb = ("ClusterRoleBinding", "", "egb:pair:clusterrole:view")
    assert crb in cluster.managed_bindings()

    standby_env = {
        **peering,
        "ENTRA_RBAC_PEERING_PRIORITY": "50",
        "ENTRA_RBAC_REFRESH_INTERVAL": "1s",
        "ENTRA_RBAC_ALLOWED_CLUSTER_ROLES": "edit",
    }
    standby_log, third_log = tmp_path / "standby.log", tmp_path / "third.log"
    standby = instance(cluster, standby_log, **standby_env)
    third: subprocess.Popen[str] | None = None
    try:
        cluster.wait_for("the standby's heartbeat", lambda: len(heartbeats(cluster)) >= 2, timeout=60)
        cluster.wait_for("the standby's refresher paused", lambda: paused_lines(standby_log) >= 1, timeout=60)
        figures = quiet_window(cluster, "the paused standby")
        assert figures["heartbeats"] >= 1  # both were alive and beating meanwhile

        cluster.sandbox.stop_operator(kill=True)  # no goodbye: its heartbeat must expire
        killed = time.monotonic()
        cluster.wait_for(
            "the standby in charge (its allowlist refuses view)",
            lambda: cluster.condition("pair").get("reason") == "RoleNotAllowed",
            timeout=LIFETIME + 45,
        )
        takeover = time.monotonic() - killed
        assert crb not in cluster.managed_bindings()
        print(f"takeover after the active instance was killed: {takeover:.1f} s (lifetime {LIFETIME} s)")

        # Equal priorities: the third would recreate the view binding, the standby would re-read
        # Entra every second; both pause instead (kopf's rule, and the refresher's).
        third = instance(
            cluster,
            third_log,
            **{**peering, "ENTRA_RBAC_PEERING_PRIORITY": "50", "ENTRA_RBAC_REFRESH_INTERVAL": "1s"},
        )
        cluster.wait_for(
            "both instances paused",
            lambda: paused_lines(third_log) >= 1 and paused_lines(standby_log) >= 2,
            timeout=60,
        )
        quiet_window(cluster, "two instances of equal priority")
        assert crb not in cluster.managed_bindings()
    finally:
        for process in (third, standby):
            if process is not None:
                stop(process)
