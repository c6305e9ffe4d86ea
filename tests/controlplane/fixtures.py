"""Pytest plugin: the session-scoped `control_plane` fixture (a real `harness.ControlPlane`).

- `entra_issuer`: the session's sandbox Entra directory (`EntraSandboxThread`), started before
  the control plane because kube-apiserver trusts it as its OIDC issuer (tests/controlplane/oidc.py):
  people sign in with `entra_issuer.token_for(upn)` tokens. Tests write its directory file.
- `control_plane`: started once per session, stopped at its end (and by atexit if pytest is
  interrupted). Its start-up time is printed in the terminal summary. When the binaries are not
  found the fixture fails (it never skips): run `make controlplane` or set KUBEBUILDER_ASSETS.
- `started_control_plane(workdir, oidc)`: the same for another configuration (a fixture's body:
  `yield from` it), e.g. a module's second control plane with OIDC prefixes.
- A control plane of these fixtures that loses a binary mid-session (kube-apiserver v1.36.3 was
  seen to panic; docs/testing.md) costs one test, not the rest: after each phase of every test
  (setup, call, teardown) the running fixtures' processes are checked; if one has exited, that
  phase fails with which binary died, how (exit status or signal), the start of its last panic
  and its log's tail, and the control plane is restarted at once (`ControlPlane.restart`: same
  ports, certificates and etcd data), so the next test, and the fixtures built on it, carry on.
- `control_plane_kubectl`: a function running `.venv/bin/kubectl --kubeconfig <kubeconfig> *args`
  (admin unless `kubeconfig=` is given), returning the CompletedProcess (check=False).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from entra_rbac_sandbox.entra.server import EntraSandboxThread
from tests.controlplane.binaries import BinariesNotFoundError, find_binaries
from tests.controlplane.harness import ControlPlane, StartupError
from tests.controlplane.oidc import OidcIssuer

KUBECTL = Path(sys.executable).parent / "kubectl"
_started: list[tuple[float, Path]] = []
_running: list[ControlPlane] = []  # started by `started_control_plane`, not yet stopped
_restarts: list[str] = []


@pytest.fixture(scope="session")
def entra_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraSandboxThread]:
    folder = tmp_path_factory.mktemp("entra-issuer")
    directory = folder / "directory.yaml"
    directory.write_text("{}\n", encoding="utf-8")
    with EntraSandboxThread(directory, state_dir=folder / "state") as issuer:
        yield issuer


def oidc_issuer(issuer: EntraSandboxThread, username_prefix: str = "", groups_prefix: str = "") -> OidcIssuer:
    """What the control plane trusts of the sandbox issuer: its issuer URL, cluster app id and CA."""
    return OidcIssuer(issuer.issuer, issuer.cluster_app_id, issuer.ca_file, username_prefix, groups_prefix)


def started_control_plane(
    workdir: Path, oidc: OidcIssuer, apiserver_args: tuple[str, ...] = ()
) -> Iterator[ControlPlane]:
    """A control plane trusting `oidc` (kube-apiserver also given `apiserver_args`), stopped when
    the generator closes (fails if no binaries)."""
    try:
        binaries = find_binaries()
    except BinariesNotFoundError as error:
        missing = str(error)
    else:
        missing = ""
    if missing:  # outside the except block, so the failure reads as one message
        pytest.fail(missing, pytrace=False)
    cp = ControlPlane(binaries=binaries, workdir=workdir, oidc=oidc, apiserver_args=apiserver_args)
    with cp:
        assert cp.startup_seconds is not None
        _started.append((cp.startup_seconds, binaries))
        _running.append(cp)
        try:
            yield cp
        finally:
            _running.remove(cp)


@pytest.fixture(scope="session")
def control_plane(
    tmp_path_factory: pytest.TempPathFactory, entra_issuer: EntraSandboxThread
) -> Iterator[ControlPlane]:
    yield from started_control_plane(tmp_path_factory.mktemp("controlplane"), oidc_issuer(entra_issuer))


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


def _recover(cp: ControlPlane, when: str, test: str) -> str:
    """The failure message for a control plane that lost a binary; restarts it."""
    reports = "\n\n".join(process.death_report() for process in cp.dead())
    try:
        seconds = cp.restart()
    except StartupError as error:
        after = f"restarting it failed too, the next test that uses it will try again:\n{error}"
    else:
        after = f"restarted in {seconds:.1f} s (same ports, certificates and etcd data) for the next test"
        _restarts.append(f"real control plane: restarted in {seconds:.1f} s after {test} ({when})")
    where = f"the real control plane ({cp.url}, {cp.workdir})"
    return f"{where} lost a binary during {when}:\n{reports}\n\n{after}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    messages = [_recover(cp, call.when, item.nodeid) for cp in list(_running) if cp.dead()]
    if messages:
        # The test's own failure (connection errors, most likely) stays below, for the record.
        report.outcome = "failed"
        report.longrepr = "\n\n".join([*messages, *([str(report.longrepr)] if report.longrepr else [])])
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for seconds, binaries in _started:
        terminalreporter.write_line(f"real control plane: started in {seconds:.1f} s (binaries: {binaries})")
    for line in _restarts:
        terminalreporter.write_line(line)
