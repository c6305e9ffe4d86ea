"""Pytest plugin: the session-scoped `control_plane` fixture (a real `harness.ControlPlane`).

- `control_plane`: started once per session, stopped at its end (and by atexit if pytest is
  interrupted). Its start-up time is printed in the terminal summary. When the binaries are not
  found the fixture fails (it never skips): run `make controlplane` or set KUBEBUILDER_ASSETS.
- `control_plane_kubectl`: a function running `.venv/bin/kubectl --kubeconfig <kubeconfig> *args`
  (admin unless `kubeconfig=` is given), returning the CompletedProcess (check=False).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.controlplane.binaries import BinariesNotFoundError, find_binaries
from tests.controlplane.harness import ControlPlane

KUBECTL = Path(sys.executable).parent / "kubectl"
_started: list[tuple[float, Path]] = []


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        binaries = find_binaries()
    except BinariesNotFoundError as error:
        missing = str(error)
    else:
        missing = ""
    if missing:  # outside the except block, so the failure reads as one message
        pytest.fail(missing, pytrace=False)
    cp = ControlPlane(binaries=binaries, workdir=tmp_path_factory.mktemp("controlplane"))
    with cp:
        assert cp.startup_seconds is not None
        _started.append((cp.startup_seconds, binaries))
        yield cp


@pytest.fixture
def control_plane_kubectl(
    control_plane: ControlPlane, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    def kubectl(
        *args: str, kubeconfig: Path | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        config = kubeconfig or control_plane.admin_kubeconfig
        argv = [str(KUBECTL), f"--kubeconfig={config}", f"--cache-dir={tmp_path / 'kube-cache'}", *args]
        return subprocess.run(argv, capture_output=True, text=True, input=input, check=False, timeout=60)

    return kubectl


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for seconds, binaries in _started:
        terminalreporter.write_line(f"real control plane: started in {seconds:.1f} s (binaries: {binaries})")
