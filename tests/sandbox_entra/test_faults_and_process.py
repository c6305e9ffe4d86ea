"""Fault injection on the Entra server (Graph-shaped errors, timing), and the process form."""

from __future__ import annotations

import os
import shlex
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from entra_rbac_sandbox.entra.server import EntraSandboxThread
from tests.sandbox_entra.tenant import group, guid


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "TooManyRequests"),
        (500, "InternalServerError"),
        (503, "ServiceNotAvailable"),
        (403, "Authorization_RequestDenied"),
    ],
)
def test_injected_faults_answer_in_graph_error_shape(
    entra_directory: EntraSandboxThread, graph_http: httpx.Client, status: int, code: str
) -> None:
    fault = {"method": "GET", "path": "^/v1.0/groups$", "status": status, "retryAfter": 2, "count": 1}
    created = httpx.post(
        f"{entra_directory.url}/_sandbox/faults", json=fault, verify=entra_directory.ca.client_ssl_context()
    )
    assert created.status_code == 201
    answer = graph_http.get("/groups")
    assert answer.status_code == status
    assert answer.headers["Retry-After"] == "2"
    error = answer.json()["error"]
    assert error["code"] == code
    assert set(error["innerError"]) >= {"request-id", "date"}
    assert graph_http.get("/groups").status_code == 200


def test_request_log_shows_when_each_request_arrived(
    entra_directory: EntraSandboxThread, graph_http: httpx.Client
) -> None:
    entra_directory.add_fault("^/v1.0/groups$", method="GET", status=0, delay_ms=200, count=1)
    started = time.time()
    graph_http.get("/groups")
    graph_http.get("/groups")
    first, second = [entry.time for entry in entra_directory.request_log()]
    assert started <= first
    assert second - first >= 0.19  # the delayed answer came before the second request was sent
    assert entra_directory.count("GET", "^/v1.0/groups$") == 2


def test_token_endpoint_can_fail_too(entra_directory: EntraSandboxThread, graph_http: httpx.Client) -> None:
    entra_directory.add_fault(r"/oauth2/v2\.0/token$", method="POST", status=503, count=1)
    url = f"{entra_directory.url}/{entra_directory.tenant_id}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": entra_directory.client_id,
        "client_secret": entra_directory.client_secret,
        "scope": "https://127.0.0.1/.default",
    }
    with httpx.Client(verify=entra_directory.ca.client_ssl_context()) as http:
        assert http.post(url, data=form).status_code == 503
        answer = http.post(url, data=form)
    assert answer.status_code == 200
    assert set(answer.json()) >= {"access_token", "token_type", "expires_in"}


def _wait_for_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            return line
        if process.poll() is not None:
            break
    raise AssertionError(f"no ready line; exit code {process.poll()}")


def test_process_form_prints_one_ready_line_and_serves(tmp_path: Path) -> None:
    directory = tmp_path / "directory.yaml"
    directory.write_text(yaml.safe_dump({"groups": [group("Ops")]}), encoding="utf-8")
    command = [sys.executable, "-m", "entra_rbac_sandbox.entra", "--directory", str(directory)]
    command += ["--state-dir", str(tmp_path / "state")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            line = _wait_for_line(process, time.monotonic() + 30)
            assert line.startswith("entra ready: url=https://127.0.0.1:")
            fields = dict(part.split("=", 1) for part in line.split()[2:])
            env = dict(
                shlex.split(raw)[0].split("=", 1) for raw in Path(fields["env"]).read_text().splitlines()
            )
            assert oct(Path(fields["env"]).stat().st_mode & 0o777) == "0o600"
            token_url = f"{env['ENTRA_RBAC_AUTHORITY_HOST']}/{env['ENTRA_RBAC_TENANT_ID']}/oauth2/v2.0/token"
            with httpx.Client(verify=ssl.create_default_context(cafile=env["ENTRA_RBAC_CA_FILE"])) as http:
                token = http.post(
                    token_url,
                    data={
                        "grant_type": "client_credentials",
                        "client_id": env["ENTRA_RBAC_CLIENT_ID"],
                        "client_secret": env["ENTRA_RBAC_CLIENT_SECRET"],
                        "scope": "https://graph.microsoft.com/.default",
                    },
                ).json()["access_token"]
                answer = http.get(
                    f"{env['ENTRA_RBAC_GRAPH_URL']}/groups/{guid('Ops')}",
                    headers={"Authorization": f"Bearer {token}"},
                )
            assert answer.json()["displayName"] == "Ops"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert process.returncode == 0


def test_process_form_refuses_a_bad_directory_naming_the_field(tmp_path: Path) -> None:
    directory = tmp_path / "directory.yaml"
    directory.write_text(yaml.safe_dump({"groups": [{"id": guid("x")}]}), encoding="utf-8")
    command = [sys.executable, "-m", "entra_rbac_sandbox.entra", "--directory", str(directory)]
    done = subprocess.run(
        [*command, "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )
    assert done.returncode != 0
    assert "groups[0].displayName: Field required" in done.stderr


def test_thread_form_that_cannot_listen_raises_and_leaves_no_thread(
    entra_directory: EntraSandboxThread, tmp_path: Path
) -> None:
    before = threading.active_count()
    second = EntraSandboxThread(port=entra_directory.port, state_dir=tmp_path / "second")
    with pytest.raises(OSError, match="address already in use"):
        second.start()
    assert threading.active_count() == before
