"""Fixtures of the end-to-end suite: a fresh sandbox and operator process per test.

`make e2e-kind` (hack/e2e-kind.sh) points the suite at a real cluster through
`ENTRA_RBAC_E2E_KUBECONFIG` (cluster admin) and `ENTRA_RBAC_E2E_OPERATOR_KUBECONFIG` (the
operator's ServiceAccount): the operator then runs on this machine as a process against that
cluster's API server, with the sandbox Entra directory on loopback, and each test removes what it
created. Tests that need the sandbox API server's request counts skip there. Unset: the sandbox.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from entra_rbac_sandbox.launcher import Sandbox
from tests.e2e.harness import Cluster

# Short cadence so that directory changes are followed within seconds.
OPERATOR_ENV = {
    "ENTRA_RBAC_REFRESH_INTERVAL": "2s",
    "ENTRA_RBAC_DIRECTORY_CACHE_TTL": "0.5s",
    "ENTRA_RBAC_LOG_LEVEL": "debug",
}
REAL_CLUSTER = os.environ.get("ENTRA_RBAC_E2E_KUBECONFIG")
REAL_OPERATOR = os.environ.get("ENTRA_RBAC_E2E_OPERATOR_KUBECONFIG")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    directory = tmp_path / "directory.yaml"
    directory.write_text("{}\n", encoding="utf-8")
    log_path = tmp_path / "operator.log"
    real: dict[str, Path] = {}
    if REAL_CLUSTER:
        real = {
            "cluster": Path(REAL_CLUSTER),
            "cluster_operator_kubeconfig": Path(REAL_OPERATOR or REAL_CLUSTER),
        }
    with (
        log_path.open("w", encoding="utf-8") as log,
        Sandbox(
            directory,
            state_dir=tmp_path / "sandbox",
            operator=True,
            operator_env=OPERATOR_ENV,
            operator_output=log,
            **real,  # type: ignore[arg-type]
        ) as sandbox,
    ):
        cluster = Cluster(sandbox, log_path)
        try:
            yield cluster
        finally:
            if REAL_CLUSTER:
                cluster.clean_up()
            cluster.api.close()
