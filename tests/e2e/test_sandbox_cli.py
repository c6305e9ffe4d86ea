"""The sandbox contract of docs/design.md, The sandbox contract, as a user meets it: `entra-rbac sandbox`
as a process,
its ready line, its kubeconfig, and `sandbox.env` with which anyone can start `entra-rbac run`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from entra_rbac_sandbox.launcher import kubectl_path

pytestmark = pytest.mark.e2e

# The contract's three fields first, in this order; later fields may follow (docs/design.md).
READY = re.compile(
    r"^sandbox ready: kubeconfig=(\S+) apiserver=(https://127\.0\.0\.1:\d+) graph=(https://127\.0\.0\.1:\d+/v1\.0)"
    r"((?: [a-z]+=\S+)*)$"
)
GROUP = "00000000-0000-0000-0000-000000000300"


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], re.Match[str]]]:
    directory = tmp_path / "directory.yaml"
    directory.write_text(
        yaml.safe_dump(
            {"groups": [{"id": GROUP, "displayName": "Ops", "mailNickname": "ops", "members": []}]}
        )
    )
    command = [
        sys.executable,
        "-m",
        "entra_rbac",
        "sandbox",
        "--directory",
        str(directory),
        "--no-operator",
        "--kubeconfig",
        str(tmp_path / "sb" / "kubeconfig"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()  # the first line is the ready line, or the failure
        match = READY.match(line)
        assert match, f"unexpected first line: {line!r}"
        yield process, match
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)


def test_sandbox_prints_ready_line_and_serves_kubectl(
    sandbox_process: tuple[subprocess.Popen[str], re.Match[str]],
) -> None:
    _, ready = sandbox_process
    kubeconfig = Path(ready.group(1))
    done = subprocess.run(
        [kubectl_path(), "--kubeconfig", str(kubeconfig), "get", "crd", "entragroupbindings.entra-rbac.io"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    env_file = kubeconfig.parent / "sandbox.env"
    settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line)
    assert settings["ENTRA_RBAC_GRAPH_URL"] == ready.group(3)
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"


def test_operator_started_by_hand_with_sandbox_env_reconciles(
    sandbox_process: tuple[subprocess.Popen[str], re.Match[str]], tmp_path: Path
) -> None:
    _, ready = sandbox_process
    kubeconfig = Path(ready.group(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_RBAC_", "AZURE_"))}
    for line in (kubeconfig.parent / "sandbox.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    env.update({"KUBECONFIG": str(kubeconfig), "ENTRA_RBAC_METRICS_PORT": "0", "ENTRA_RBAC_HEALTH_PORT": "0"})
    kubectl = [kubectl_path(), "--kubeconfig", str(kubeconfig)]
    manifest = {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "ops"},
        "spec": {"groups": [{"mailNickname": "ops"}], "clusterRoleBindings": [{"clusterRole": "view"}]},
    }
    subprocess.run(
        [*kubectl, "apply", "-f", "-"],
        input=yaml.safe_dump(manifest),
        check=True,
        capture_output=True,
        text=True,
    )
    log = (tmp_path / "operator.log").open("w")
    operator = subprocess.Popen(
        [sys.executable, "-m", "entra_rbac", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        done = subprocess.run(
            [*kubectl, "wait", "--for=condition=Ready", "egb/ops", "--timeout=40s"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr + (tmp_path / "operator.log").read_text()[-3000:]
        can = subprocess.run(
            [*kubectl, "auth", "can-i", "list", "pods", "--as", "someone", f"--as-group={GROUP}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert can.stdout.strip() == "yes"
    finally:
        operator.terminate()
        operator.wait(timeout=20)
        log.close()


def _fields(ready: re.Match[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in ready.group(4).split())


def test_sandbox_serves_a_copy_of_the_directory_and_names_it(
    sandbox_process: tuple[subprocess.Popen[str], re.Match[str]], tmp_path: Path
) -> None:
    _, ready = sandbox_process
    served = Path(_fields(ready)["directory"])
    assert served == Path(ready.group(1)).parent / "directory.yaml"
    assert served.read_text() == (tmp_path / "directory.yaml").read_text()


def test_sandbox_passes_settings_through_follows_edits_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """Issue 13, point 6: flags and ENTRA_RBAC_* variables reach the operator, the ready line
    names the refresh interval and the file to edit, an edit of that copy shows in status within
    seconds, and a terminal's Ctrl-C (SIGINT to the whole process group) stops everything cleanly."""
    source = tmp_path / "directory.yaml"
    document = {"groups": [{"id": GROUP, "displayName": "Ops", "mailNickname": "ops", "members": []}]}
    source.write_text(yaml.safe_dump(document))
    original = source.read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_RBAC_", "AZURE_"))}
    env["ENTRA_RBAC_REFRESH_INTERVALL"] = "1m"  # a typo in the caller's shell: the operator names it
    command = [sys.executable, "-m", "entra_rbac", "sandbox", "--directory", str(source),
               "--kubeconfig", str(tmp_path / "sb" / "kubeconfig"), "--refresh-interval", "3s",
               "-e", "ENTRA_RBAC_LOG_FORMAT=json"]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        ready = READY.match(_wait_for(lines, lambda line: line.startswith("sandbox ready:"), process))
        assert ready, lines
        fields = _fields(ready)
        assert fields["refresh"] == "3s"
        served = Path(fields["directory"])
        started = json.loads(_wait_for(lines, lambda line: "Starting operator" in line, process))
        assert started["refresh_interval"] == 3.0
        typo = json.loads(_wait_for(lines, lambda line: "Ignored unknown setting" in line, process))
        assert typo["variable"] == "ENTRA_RBAC_REFRESH_INTERVALL"  # the shell's variable reached it
        kubectl = [kubectl_path(), "--kubeconfig", ready.group(1)]
        manifest = {
            "apiVersion": "entra-rbac.io/v1alpha1",
            "kind": "EntraGroupBinding",
            "metadata": {"name": "ops"},
            "spec": {"groups": [{"id": GROUP}], "clusterRoleBindings": [{"clusterRole": "view"}]},
        }
        subprocess.run([*kubectl, "apply", "-f", "-"], input=yaml.safe_dump(manifest), check=True,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
        document["groups"][0]["displayName"] = "Ops renamed"
        served.write_text(yaml.safe_dump(document))
        jsonpath = "jsonpath={.status.groups[0].displayName}"
        deadline = time.monotonic() + 60
        shown = ""
        while time.monotonic() < deadline and shown != "Ops renamed":
            got = subprocess.run([*kubectl, "get", "egb", "ops", "-o", jsonpath], capture_output=True,
                                 text=True, timeout=30, check=False)  # fmt: skip
            shown = got.stdout.strip()
            time.sleep(0.5)
        assert shown == "Ops renamed", "".join(lines[-40:])
        assert source.read_text() == original  # the file given was never edited
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        code = process.wait(timeout=60)
        reader.join(timeout=10)
    output = "".join(lines)
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "KeyboardInterrupt" not in output, output[-3000:]
    assert output.rstrip().endswith("sandbox stopped"), output[-2000:]


def _wait_for(
    lines: list[str], wanted: Callable[[str], bool], process: subprocess.Popen[str], timeout: float = 90
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            if wanted(line):
                return line.strip()
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError("not seen in the sandbox's output:\n" + "".join(lines[-40:]))
