"""`make cluster` (`python -m tests.controlplane`) as a process: ready line, CRD, SIGTERM stops all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.controlplane.binaries import REPO
from tests.controlplane.harness import wait_for

KUBECTL = Path(sys.executable).parent / "kubectl"


def _children(pid: int) -> set[int]:
    """The direct children of `pid`, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.append(process.stdout.readline() if process.stdout else "")
    )
    reader.start()
    reader.join(timeout)
    assert lines, f"no line within {timeout}s"
    return lines[0]


def test_make_cluster_prints_ready_serves_the_crd_and_stops_on_sigterm() -> None:
    command = [sys.executable, "-m", "tests.controlplane"]
    with subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    ) as process:
        try:
            line = _read_line(process, 120)
            match = re.fullmatch(
                r"cluster ready: kubeconfig=(\S+) apiserver=(https://127\.0\.0\.1:\d+)\n", line
            )
            assert match, line
            kubeconfig = match.group(1)
            children = wait_for(lambda: _children(process.pid), 10, "the child processes")
            assert len(children) == 3
            got = subprocess.run(
                [str(KUBECTL), f"--kubeconfig={kubeconfig}", "get", "crd", "entragroupbindings.entra-rbac.io",
                 "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert got.returncode == 0, got.stderr
            assert got.stdout == "True"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
        assert not [pid for pid in children if _alive(pid)]
        assert not Path(kubeconfig).exists()  # its temporary folder was removed
