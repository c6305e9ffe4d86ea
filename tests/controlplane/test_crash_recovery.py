"""A control plane that loses a binary mid-session costs one test (tests/controlplane/fixtures.py).

A pytest session of its own (a subprocess, with its own control plane) runs `INNER`: tests that
SIGKILL kube-apiserver, then etcd, each followed by a test that uses the control plane again. The
outer test reads the inner session's JUnit XML: each killing test failed with which binary died,
how, and its log's tail, and each next test passed on the restarted control plane, where an
object written before the crash is still there (same etcd data, same certificates).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.controlplane.harness import wait_for
from tests.controlplane.processes import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]

INNER = """
import os
import signal

from tests.controlplane.harness import ControlPlane, wait_for


def _kill(cp: ControlPlane, name: str) -> None:
    process = cp.process(name)
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    wait_for(lambda: not process.running(), 10, f"{name} to exit")


def _works(cp: ControlPlane, kubectl, name: str) -> None:
    assert cp.running_names() == {"etcd", "kube-apiserver", "kube-controller-manager"}
    got = kubectl("get", "configmap", "before-the-crash", "-n", "default", "-o", "name")
    assert got.stdout.strip() == "configmap/before-the-crash", got.stderr
    created = kubectl("create", "configmap", name, "-n", "default")
    assert created.returncode == 0, created.stderr


def test_kill_kube_apiserver(control_plane, control_plane_kubectl):
    created = control_plane_kubectl("create", "configmap", "before-the-crash", "-n", "default")
    assert created.returncode == 0, created.stderr
    _kill(control_plane, "kube-apiserver")


def test_after_kube_apiserver(control_plane, control_plane_kubectl):
    _works(control_plane, control_plane_kubectl, "after-kube-apiserver")


def test_kill_etcd(control_plane):
    _kill(control_plane, "etcd")


def test_after_etcd(control_plane, control_plane_kubectl):
    _works(control_plane, control_plane_kubectl, "after-etcd")
"""


def _inner_session(tmp_path: Path) -> dict[str, str | None]:
    """Run INNER in its own pytest process; each test's name -> its failure text (None: passed)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_inner.py").write_text(INNER, encoding="utf-8")
    junit = tmp_path / "inner.xml"
    argv = [
        sys.executable, "-m", "pytest", "-c", str(tmp_path / "pytest.ini"),
        "-p", "tests.controlplane.fixtures",
        "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'base'}", f"--junitxml={junit}", "-q",
        str(tmp_path / "test_inner.py"),
    ]  # fmt: skip
    done = subprocess.run(
        argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=280, check=False,
    )  # fmt: skip
    assert junit.exists(), f"the inner session wrote no report:\n{done.stdout}\n{done.stderr}"
    outcomes: dict[str, str | None] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        failure = case.find("failure")
        outcomes[case.attrib["name"]] = None if failure is None else (failure.text or "")
    return outcomes


def test_a_dead_binary_fails_the_running_test_only_and_the_next_gets_a_restarted_control_plane(
    tmp_path: Path,
) -> None:
    outcomes = _inner_session(tmp_path)
    assert set(outcomes) == {"test_kill_kube_apiserver", "test_after_kube_apiserver", "test_kill_etcd",
                             "test_after_etcd"}, outcomes  # fmt: skip
    for killed, after in (("kube-apiserver", "test_after_kube_apiserver"), ("etcd", "test_after_etcd")):
        failure = outcomes[f"test_kill_{killed.replace('-', '_')}"]
        assert failure is not None, f"killing {killed} did not fail the test that did it"
        assert "lost a binary during call" in failure
        assert re.search(rf"^{re.escape(killed)} \(pid \d+\) killed by SIGKILL$", failure, re.MULTILINE), (
            failure
        )
        assert f"last lines of {tmp_path / 'base'}" in failure
        assert f"logs/{killed}.log:" in failure
        assert "restarted in" in failure
        assert outcomes[after] is None, f"{after} failed after the restart:\n{outcomes[after]}"


def test_the_report_of_a_panicked_binary_shows_its_panic_line_and_its_tail(tmp_path: Path) -> None:
    # A Go panic prints its `panic:` line, then a goroutine dump far longer than any tail.
    dump = "; ".join(f"echo goroutine {i}" for i in range(60))
    script = f"echo starting; echo 'panic: runtime error: invalid memory address'; {dump}; exit 2"
    process = ManagedProcess("kube-apiserver", ["sh", "-c", script], tmp_path / "logs" / "kube-apiserver.log")
    process.start()
    wait_for(lambda: not process.running(), 10, "the script to exit")
    report = process.death_report()
    assert report.startswith(f"kube-apiserver (pid {process.pid}) exited with status 2\n")
    panic = report.index(f"the last panic in {process.log}:\npanic: runtime error: invalid memory address\n")
    assert report.index(f"last lines of {process.log}:") > panic
    assert report.endswith("goroutine 59")
    logged = report.split("\n", 2)[2]  # after the exit and the command line
    assert "starting" not in logged
    assert "goroutine 20\n" not in logged  # neither the panic's first lines nor the tail
