"""`kubectl --context alice ...`: the exec credential plugin `entra-rbac token` signs alice in.

The sandbox writes a context per directory user whose user runs `entra-rbac token` (password
grant against the sandbox directory); the same contexts added to a copy of the real control
plane's kubeconfig sign in to the real kube-apiserver. Real kubectl, no impersonation.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from entra_rbac_sandbox.entra.server import EntraSandboxThread
from entra_rbac_sandbox.launcher import Sandbox, add_user_contexts, kubectl_path
from tests.controlplane.harness import ControlPlane
from tests.e2e.conftest import SERVERS
from tests.e2e.harness import guid

pytestmark = [pytest.mark.e2e]
ALICE = {"id": guid(501), "userPrincipalName": "alice@contoso.com", "userType": "Member"}
TEAM = guid(500)
DIRECTORY = {
    "users": [ALICE],
    "groups": [{"id": TEAM, "displayName": "Team", "mailNickname": "team", "members": [ALICE["id"]]}],
    "signIn": {"testSecret": "sandbox-test-secret"},
}


@pytest.fixture(params=[s for s in SERVERS if s in ("sandbox", "real")])
def kubeconfig(
    request: pytest.FixtureRequest, entra_issuer: EntraSandboxThread, tmp_path: Path
) -> Iterator[Path]:
    entra_issuer.write_directory(DIRECTORY)
    with Sandbox(
        entra_issuer.directory_file, state_dir=tmp_path / "sandbox", operator=False, entra=entra_issuer
    ) as sandbox:
        if request.param == "sandbox":
            yield sandbox.kubeconfig
        else:
            control_plane: ControlPlane = request.getfixturevalue("control_plane")
            copy = tmp_path / "real.kubeconfig"
            shutil.copyfile(control_plane.admin_kubeconfig, copy)
            add_user_contexts(copy, entra_issuer, tmp_path / "tokens")
            yield copy


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [kubectl_path(), "--kubeconfig", str(kubeconfig), "--context", "alice", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def test_alice_signs_in_through_her_context(kubeconfig: Path, entra_issuer: EntraSandboxThread) -> None:
    whoami = kubectl(kubeconfig, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    info = json.loads(whoami.stdout)["status"]["userInfo"]
    assert info["username"] == "alice@contoso.com"
    assert TEAM in info["groups"]
    refused = kubectl(kubeconfig, "get", "pods", "-n", "payments")
    assert 'User "alice@contoso.com" cannot list resource "pods"' in refused.stderr
    token_requests = entra_issuer.count("POST", f"/{entra_issuer.tenant_id}/oauth2/v2.0/token")
    assert token_requests >= 1  # the first call signed in
    assert kubectl(kubeconfig, "auth", "whoami").returncode == 0
    # The second call used the cached token: no new sign-in.
    assert entra_issuer.count("POST", f"/{entra_issuer.tenant_id}/oauth2/v2.0/token") == token_requests


def test_the_plugin_prints_an_exec_credential_and_caches_it_0600(
    entra_issuer: EntraSandboxThread, tmp_path: Path
) -> None:
    import sys

    entra_issuer.write_directory(DIRECTORY)
    command = [sys.executable, "-m", "entra_rbac", "token", "--authority", entra_issuer.url,
               "--tenant", entra_issuer.tenant_id, "--client-id", "80faf920-1908-4b52-b5ef-a8e7bedfc67a",
               "--server-app-id", entra_issuer.cluster_app_id, "--username", "alice@contoso.com",
               "--ca-file", str(entra_issuer.ca_file), "--cache-dir", str(tmp_path / "cache"),
               "--password-stdin"]  # fmt: skip
    done = subprocess.run(command, input="sandbox-test-secret\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    credential = json.loads(done.stdout)
    assert credential["apiVersion"] == "client.authentication.k8s.io/v1"
    assert credential["kind"] == "ExecCredential"
    assert credential["status"]["token"].count(".") == 2
    assert credential["status"]["expirationTimestamp"].endswith("Z")
    [cached] = (tmp_path / "cache").iterdir()
    assert cached.stat().st_mode & 0o777 == 0o600
    wrong = subprocess.run(command, input="wrong\n", capture_output=True, text=True, timeout=60,
                           env={"XDG_CACHE_HOME": str(tmp_path / "x"), "PATH": "/usr/bin"})  # fmt: skip
    assert wrong.returncode == 0  # still cached: the password is not asked for again
    command[command.index("--cache-dir") + 1] = str(tmp_path / "empty")
    refused = subprocess.run(command, input="wrong\n", capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "AADSTS50126" in refused.stderr
    assert refused.stdout == ""
