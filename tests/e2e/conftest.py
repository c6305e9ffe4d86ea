"""Fixtures of the end-to-end suite: a fresh operator process per test, on each API server.

`cluster` is parametrised over the servers (test ids `[sandbox]` and `[real]`):

- `sandbox`: a fresh sandbox API server and Entra directory per test;
- `real`: the session's real control plane (tests.controlplane: kube-apiserver,
  kube-controller-manager, etcd), prepared once by `tests.e2e.real.prepare` (CRD, deploy/'s
  ServiceAccount and RBAC, the operator signed in with that ServiceAccount's token, the garbage
  collector proven to know the CRD), and a fresh sandbox Entra directory per test. Request counts
  come from the audit log. After each test the operator is killed first, then what the test
  created is removed and waited for, so the next test starts from a clean cluster.

The operator runs with `tests.e2e.harness.OPERATOR_ENV`; a test marked
`@pytest.mark.operator_env(ENTRA_RBAC_...="...")` gets those settings on top from its start, with no
restart.

`ENTRA_RBAC_E2E_SERVERS=sandbox` (or `real`) runs one of them only; `-k real` selects too.
`make e2e-kind` (hack/e2e-kind.sh) points the suite at an external cluster instead, through
`ENTRA_RBAC_E2E_KUBECONFIG` (cluster admin) and `ENTRA_RBAC_E2E_OPERATOR_KUBECONFIG` (the
operator's ServiceAccount): one server, id `[cluster]`; the operator runs on this machine against
it, and the checks that need request counts skip there (its audit log is out of reach).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from entra_rbac_sandbox.launcher import Sandbox
from tests.controlplane.harness import ControlPlane
from tests.e2e.harness import OPERATOR_ENV, Cluster
from tests.e2e.real import RealServer, prepare, uninstall

EXTERNAL_CLUSTER = os.environ.get("ENTRA_RBAC_E2E_KUBECONFIG")
EXTERNAL_OPERATOR = os.environ.get("ENTRA_RBAC_E2E_OPERATOR_KUBECONFIG")
SERVERS = (
    ["cluster"]
    if EXTERNAL_CLUSTER
    else [s.strip() for s in os.environ.get("ENTRA_RBAC_E2E_SERVERS", "sandbox,real").split(",") if s.strip()]
)
_real_servers: list[RealServer] = []


@pytest.fixture(scope="package")
def real_server(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealServer]:
    """The session's real control plane, prepared for the operator (fails, never skips) while the
    e2e suite runs, and given back as it found it afterwards: the suites after it share it."""
    server = prepare(control_plane, tmp_path_factory.mktemp("e2e-real"))
    _real_servers.append(server)
    yield server
    uninstall(control_plane)


@pytest.fixture(params=SERVERS)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    server: str = request.param
    directory = tmp_path / "directory.yaml"
    directory.write_text("{}\n", encoding="utf-8")
    log_path = tmp_path / "operator.log"
    kube: dict[str, Path] = {}
    real: RealServer | None = None
    marker = request.node.get_closest_marker("operator_env")
    operator_env = {**OPERATOR_ENV, **(marker.kwargs if marker else {})}
    if server == "real":
        real = request.getfixturevalue("real_server")
        kube = {"cluster": real.admin_kubeconfig, "cluster_operator_kubeconfig": real.operator_kubeconfig}
    elif server == "cluster":
        assert EXTERNAL_CLUSTER
        kube = {
            "cluster": Path(EXTERNAL_CLUSTER),
            "cluster_operator_kubeconfig": Path(EXTERNAL_OPERATOR or EXTERNAL_CLUSTER),
        }
    with (
        log_path.open("w", encoding="utf-8") as log,
        Sandbox(
            directory,
            state_dir=tmp_path / "sandbox",
            operator=True,
            operator_env=operator_env,
            operator_output=log,
            **kube,  # type: ignore[arg-type]
        ) as sandbox,
    ):
        cluster = Cluster(sandbox, log_path, server=server, audit=real.audit if real else None)
        try:
            yield cluster
        finally:
            # SIGKILL: nothing of this test may write while it is cleaned up, and kopf's orderly
            # stop took 0.8 to 1 s of every test; the peering entry it leaves is cleared by
            # clean_up (a sandbox API server is discarded with it).
            sandbox.stop_operator(kill=True)
            if server != "sandbox":
                cluster.clean_up()
            cluster.api.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for server in _real_servers:
        terminalreporter.write_line(
            f"e2e on the real control plane: its garbage collector knew EntraGroupBinding after "
            f"{server.gc_ready_seconds:.1f} s"
        )
