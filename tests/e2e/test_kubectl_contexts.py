"""`kubectl --context alice ...`: the exec credential plugin `entra-rbac token` signs alice in.

The sandbox writes a context per directory user whose user runs `entra-rbac token` (password
grant against the sandbox directory); the same contexts added to a copy of the real control
plane's kubeconfig sign in to the real kube-apiserver. Real kubectl, no impersonation.

Without a password the plugin signs in with the device code flow (azure-identity and MSAL for
real, over HTTPS): its prompt on stderr names the code, which the test approves at the sandbox's
`/_sandbox/devicecode/approve` instead of a browser; kubectl runs the same plugin and passes the
prompt through.
"""

from __future__ import annotations

import calendar
import json
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import jwt
import pytest
import yaml

from entra_rbac.adapters.signin import REFRESH_MARGIN
from entra_rbac_sandbox.entra.server import EntraSandboxThread
from entra_rbac_sandbox.launcher import PUBLIC_CLIENT, Sandbox, add_user_contexts, kubectl_path
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


# -- the device code flow ---------------------------------------------------------------------------

PROMPT = re.compile(r"open the page (?P<uri>\S+) and enter the code (?P<code>[A-Z0-9]+) to authenticate")


@pytest.fixture(scope="module")
def device_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraSandboxThread]:
    """A directory of its own polling every second (Entra asks for 5 s), so a sign-in takes ~1 s."""
    folder = tmp_path_factory.mktemp("device-issuer")
    (folder / "directory.yaml").write_text(yaml.safe_dump(DIRECTORY), encoding="utf-8")
    with EntraSandboxThread(
        folder / "directory.yaml", state_dir=folder / "state", device_code_interval=1
    ) as issuer:
        yield issuer


def _plugin(issuer: EntraSandboxThread, cache: Path) -> list[str]:
    return [sys.executable, "-m", "entra_rbac", "token", "--authority", issuer.url,
            "--tenant", issuer.tenant_id, "--client-id", PUBLIC_CLIENT,
            "--server-app-id", issuer.cluster_app_id, "--username", "alice@contoso.com",
            "--ca-file", str(issuer.ca_file), "--cache-dir", str(cache)]  # fmt: skip


def _answer_prompt(issuer: EntraSandboxThread, stderr: IO[str], verb: str = "approve") -> str:
    """Read the prompt from the plugin's stderr (a deadline: the read ends when the process does)
    and answer it as alice would in a browser; the prompt line."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = stderr.readline()
        if not line:
            raise AssertionError("the plugin ended without a device code prompt")
        found = PROMPT.search(line)
        if found:
            assert found["uri"] == f"{issuer.url}/_sandbox/devicecode"
            body = {"user_code": found["code"], "user": "alice@contoso.com"}
            request = urllib.request.Request(
                f"{issuer.url}/_sandbox/devicecode/{verb}",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            context = ssl.create_default_context(cafile=str(issuer.ca_file))
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                assert response.status == 200
            return line
    raise AssertionError("no device code prompt within 60 s")


def _sign_in(issuer: EntraSandboxThread, command: list[str], verb: str = "approve") -> tuple[int, str, str]:
    """Run `command`, answer its device code prompt; (exit code, stdout, the rest of stderr)."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        prompt = _answer_prompt(issuer, process.stderr, verb)
        out, err = process.communicate(timeout=90)
    return process.returncode, out, prompt + err


def _device_codes(issuer: EntraSandboxThread) -> int:
    return issuer.count("POST", f"/{issuer.tenant_id}/oauth2/v2.0/devicecode")


def test_the_plugin_signs_in_with_a_device_code_and_caches_until_shortly_before_expiry(
    device_issuer: EntraSandboxThread, tmp_path: Path
) -> None:
    command = _plugin(device_issuer, tmp_path / "cache")
    code, out, err = _sign_in(device_issuer, command)
    assert code == 0, err
    credential = json.loads(out)
    assert (credential["apiVersion"], credential["kind"]) == (
        "client.authentication.k8s.io/v1",
        "ExecCredential",
    )
    token = credential["status"]["token"]
    assert token not in err  # the prompt and any log hold no token
    jwks = jwt.PyJWKClient(  # verified as the API server would: the issuer's published keys
        f"{device_issuer.url}/{device_issuer.tenant_id}/discovery/v2.0/keys",
        ssl_context=ssl.create_default_context(cafile=str(device_issuer.ca_file)),
    )
    claims = jwt.decode(token, jwks.get_signing_key_from_jwt(token).key, algorithms=["RS256"],
                        audience=device_issuer.cluster_app_id, issuer=device_issuer.issuer)  # fmt: skip
    assert (claims["upn"], claims["groups"]) == ("alice@contoso.com", [TEAM])
    # kubectl may use it until then: never after the token's own expiry (the plugin counts the
    # lifetime from before its request, so a little earlier).
    expiry = calendar.timegm(time.strptime(credential["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
    assert claims["iat"] < expiry <= claims["exp"]
    # Cached: the next call prints the same token without a new device code or prompt.
    started = _device_codes(device_issuer)
    again = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (again.returncode, json.loads(again.stdout)["status"]["token"], again.stderr) == (0, token, "")
    assert _device_codes(device_issuer) == started
    # A token expiring within REFRESH_MARGIN is not reused: the person signs in again.
    lifetime = device_issuer.sign_in.token_lifetime
    device_issuer.sign_in.token_lifetime = REFRESH_MARGIN - 10
    try:
        fresh = tmp_path / "short"
        first = _sign_in(device_issuer, _plugin(device_issuer, fresh))
        assert first[0] == 0, first[2]
        second = _sign_in(device_issuer, _plugin(device_issuer, fresh))
        assert second[0] == 0, second[2]
    finally:
        device_issuer.sign_in.token_lifetime = lifetime
    assert _device_codes(device_issuer) == started + 2
    assert json.loads(first[1])["status"]["token"] != json.loads(second[1])["status"]["token"]


def test_a_declined_device_code_fails_with_entras_reason_and_prints_nothing(
    device_issuer: EntraSandboxThread, tmp_path: Path
) -> None:
    code, out, err = _sign_in(device_issuer, _plugin(device_issuer, tmp_path / "cache"), verb="decline")
    assert (code, out) == (1, "")
    assert "entra-rbac token: sign-in failed:" in err
    assert "AADSTS65004" in err
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_kubectl_runs_the_device_code_plugin_and_alice_is_herself(
    device_issuer: EntraSandboxThread, tmp_path: Path
) -> None:
    with Sandbox(
        device_issuer.directory_file, state_dir=tmp_path / "sandbox", operator=False, entra=device_issuer
    ) as sandbox:
        document = yaml.safe_load(sandbox.kubeconfig.read_text(encoding="utf-8"))
        plugin = _plugin(device_issuer, tmp_path / "cache")
        exec_config = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": plugin[0],
            "args": plugin[1:],
            "interactiveMode": "Never",  # the device code flow needs no stdin
            "provideClusterInfo": False,
        }
        document["users"].append({"name": "alice-device", "user": {"exec": exec_config}})
        cluster = document["clusters"][0]["name"]
        document["contexts"].append(
            {"name": "alice-device", "context": {"cluster": cluster, "user": "alice-device"}}
        )
        sandbox.kubeconfig.write_text(yaml.safe_dump(document), encoding="utf-8")
        command = [kubectl_path(), "--kubeconfig", str(sandbox.kubeconfig), "--context", "alice-device",
                   "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]  # fmt: skip
        code, out, err = _sign_in(device_issuer, command)
    assert (code, out) == (0, "alice@contoso.com"), err
