"""Fixtures of the end-to-end suite: a fresh sandbox and operator process per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from entra_rbac.sandbox.launcher import Sandbox
from tests.e2e.harness import Cluster

# Short cadence so that directory changes are followed within seconds.
OPERATOR_ENV = {
    "ENTRA_RBAC_REFRESH_INTERVAL": "2s",
    "ENTRA_RBAC_DIRECTORY_CACHE_TTL": "0.5s",
    "ENTRA_RBAC_LOG_LEVEL": "debug",
}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    directory = tmp_path / "directory.yaml"
    directory.write_text("{}\n", encoding="utf-8")
    log_path = tmp_path / "operator.log"
    with (
        log_path.open("w", encoding="utf-8") as log,
        Sandbox(
            directory,
            state_dir=tmp_path / "sandbox",
            operator=True,
            operator_env=OPERATOR_ENV,
            operator_output=log,
        ) as sandbox,
    ):
        cluster = Cluster(sandbox, log_path)
        yield cluster
        cluster.api.close()
