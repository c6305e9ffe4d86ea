"""The sandbox contract of docs/design.md, The sandbox contract, as a user meets it: `entra-rbac sandbox`
as a process,
its ready line, its kubeconfig, and `sandbox.env` with which anyone can start `entra-rbac run`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from entra_rbac_sandbox.launcher import kubectl_path

pytestmark = pytest.mark.e2e

READY = re.compile(
    r"^sandbox ready: kubeconfig=(\S+) apiserver=(https://127\.0\.0\.1:\d+) graph=(https://127\.0\.0\.1:\d+/v1\.0)$"
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
