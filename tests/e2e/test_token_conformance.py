"""Differential: the sandbox API server and the real kube-apiserver answer the same tokens alike.

Both servers are configured from one AuthenticationConfiguration document (the session's sandbox
Entra directory as OIDC issuer, tests/controlplane/oidc.py), and each case presents one token to
both: the HTTP status and body of a raw request, and what real kubectl prints (`auth whoami` for
the identity, its stderr and exit code for a refusal). No token is ever printed: a failure
names the case, never the token.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from entra_rbac_sandbox.entra.server import EntraSandboxThread
from entra_rbac_sandbox.kube.server import ApiServerThread
from entra_rbac_sandbox.launcher import kubectl_path
from tests.controlplane.fixtures import oidc_issuer
from tests.controlplane.harness import ControlPlane
from tests.controlplane.oidc import authentication_config
from tests.e2e.conftest import SERVERS
from tests.e2e.harness import guid

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif("real" not in SERVERS, reason="a differential test needs the real server"),
]

TEAM = guid(400)
ALICE = {"id": guid(401), "userPrincipalName": "alice@contoso.com", "userType": "Member"}
LONER = {"id": guid(402), "userPrincipalName": "loner@contoso.com", "userType": "Member"}
OTHER_CLUSTER = "11111111-2222-3333-4444-555555555555"
DIRECTORY = {
    "users": [ALICE, LONER],
    "groups": [{"id": TEAM, "displayName": "Team", "mailNickname": "team", "members": [ALICE["id"]]}],
    "signIn": {"testSecret": "sandbox-test-secret", "applications": [OTHER_CLUSTER]},
}
UNAUTHORIZED = "error: You must be logged in to the server (Unauthorized)"
CREDENTIALS = (
    "error: You must be logged in to the server (the server has asked for the client to provide credentials)"
)
KLOG_HEADER = re.compile(r"^E\d{4} [\d:.]+\s+\d+ ", re.MULTILINE)


class Server:
    def __init__(self, name: str, url: str, ca_file: Path, folder: Path) -> None:
        self.name, self.url, self.ca_file, self._folder = name, url, ca_file, folder
        self._made = 0

    def kubeconfig(self, token: str) -> Path:
        self._made += 1
        path = self._folder / f"{self.name}-{self._made}.kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "c", "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)}}
            ],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def kubectl(self, token: str, *args: str) -> tuple[int, str, str]:
        cache = self._folder / f"cache-{self._made}"  # fresh: discovery is asked for each time
        command = [kubectl_path(), "--kubeconfig", str(self.kubeconfig(token)), f"--cache-dir={cache}", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        # klog's header (date, time, pid) differs per run: compared without it.
        return done.returncode, done.stdout, KLOG_HEADER.sub("E ", done.stderr.strip())

    def raw(self, token: str, path: str = "/api/v1/namespaces/default/pods") -> tuple[int, Any]:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {token}"})
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                return response.status, None  # a 200's body is the listing, compared elsewhere
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def servers(
    entra_issuer: EntraSandboxThread, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    entra_issuer.write_directory(DIRECTORY)
    folder = tmp_path_factory.mktemp("token-conformance")
    document = authentication_config(oidc_issuer(entra_issuer))  # the one value both servers read
    with ApiServerThread(tls=True, cert_dir=folder / "pki", authentication_config=document) as sandbox:
        assert sandbox.ca_file is not None
        yield (
            Server("sandbox", sandbox.url, sandbox.ca_file, folder),
            Server("real", control_plane.url, control_plane.ca_file, folder),
        )


def _claims(issuer: EntraSandboxThread, **changes: Any) -> dict[str, Any]:
    """Alice's claims as the directory issues them, with `changes` (None removes a claim)."""
    claims = dict(jwt.decode(issuer.token_for("alice@contoso.com"), options={"verify_signature": False}))
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(issuer: EntraSandboxThread, claims: dict[str, Any]) -> str:
    return str(issuer.sign_in.keys.sign(claims))


def _forged(claims: dict[str, Any], kid: str | None) -> str:
    """Signed by a key the issuer never published (`kid=None`: the header names no kid)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers = {"typ": "JWT"} if kid is None else {"kid": kid, "typ": "JWT"}
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def _without_kid(issuer: EntraSandboxThread, claims: dict[str, Any], kid: str | None = None) -> str:
    """Signed by a published key (the newest, or `kid`'s), its header naming no kid."""
    return str(issuer.sign_in.keys.sign(claims, kid=kid, name_kid=False))


def _signed_as_other_key(issuer: EntraSandboxThread) -> str:
    """Signed by the oldest published key, its header naming the newest one's kid."""
    keys = issuer.sign_in.keys
    if len(keys.jwks()) < 2:
        keys.rotate()
    published = keys.jwks()
    return str(keys.sign(_claims(issuer), kid=str(published[0]["kid"]), name_kid=str(published[-1]["kid"])))


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


Case = Callable[[EntraSandboxThread], str]
now = lambda: int(time.time())  # noqa: E731
REFUSED: dict[str, Case] = {
    "expired": lambda i: i.token_for("alice@contoso.com", lifetime=-120),
    "expired-just-now (exp has no leeway)": lambda i: i.token_for("alice@contoso.com", lifetime=-3),
    "not-yet-valid (nbf beyond the 1 min leeway)": lambda i: _signed(i, _claims(i, nbf=now() + 120)),
    "not-yet-valid (nbf 10 min ahead)": lambda i: _signed(i, _claims(i, nbf=now() + 600)),
    "wrong-signature": lambda i: _forged(_claims(i), _kid(i.token_for("alice@contoso.com"))),
    "unknown-kid": lambda i: _forged(_claims(i), "no-such-kid"),
    "no-kid, signed by an unpublished key": lambda i: _forged(_claims(i), None),
    "a published kid, signed by another published key": lambda i: _signed_as_other_key(i),
    "wrong-audience": lambda i: i.token_for("alice@contoso.com", audience=OTHER_CLUSTER),
    "wrong-issuer": lambda i: _signed(i, _claims(i, iss="https://login.microsoftonline.com/x/v2.0")),
    "no-exp": lambda i: _signed(i, _claims(i, exp=None)),
    "no-upn-and-no-oid": lambda i: _signed(i, _claims(i, upn=None, oid=None)),
    "not-a-jwt": lambda i: "not-a-token",
}
ACCEPTED: dict[str, tuple[Case, str]] = {
    "valid": (
        lambda i: i.token_for("alice@contoso.com"),
        f'alice@contoso.com ["{TEAM}","system:authenticated"]',
    ),
    "nbf-within-the-leeway": (
        lambda i: _signed(i, _claims(i, nbf=now() + 30)),
        f'alice@contoso.com ["{TEAM}","system:authenticated"]',
    ),
    "missing-groups-claim": (
        lambda i: i.token_for("loner@contoso.com"),
        'loner@contoso.com ["system:authenticated"]',
    ),
    "no-kid (kube-apiserver tries every key)": (
        lambda i: _without_kid(i, _claims(i)),
        f'alice@contoso.com ["{TEAM}","system:authenticated"]',
    ),
    "user-not-in-the-directory": (
        lambda i: _signed(i, _claims(i, oid="99999999-0000-4000-8000-000000000999", upn=None, groups=None)),
        '99999999-0000-4000-8000-000000000999 ["system:authenticated"]',
    ),
}
WHOAMI = ("auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}")


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_alike(servers: tuple[Server, Server], entra_issuer: EntraSandboxThread, case: str) -> None:
    token = REFUSED[case](entra_issuer)
    answers = {
        s.name: (s.raw(token), s.kubectl(token, "get", "pods"), s.kubectl(token, *WHOAMI)) for s in servers
    }
    assert answers["real"][0] == (401, _status_401()), f"{case}: the real server's answer changed"
    assert answers["sandbox"] == answers["real"], case
    _, (code, out, err), (whoami_code, _, whoami_err) = answers["real"]
    assert (code, out, err.splitlines()[-1]) == (1, "", CREDENTIALS), case  # after discovery failed
    assert (whoami_code, whoami_err) == (1, UNAUTHORIZED), case  # no discovery first


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_accepted_alike(servers: tuple[Server, Server], entra_issuer: EntraSandboxThread, case: str) -> None:
    make, expected = ACCEPTED[case]
    token = make(entra_issuer)
    for server in servers:
        code, out, err = server.kubectl(token, *WHOAMI)
        assert (code, out) == (0, expected), f"{case} on {server.name}: {err}"
    # Authenticated but bound to nothing: both refuse the listing with the same 403.
    statuses = [s.raw(token) for s in servers]
    assert statuses[0] == statuses[1], case
    assert statuses[0][0] == 403, case


def _status_401() -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_a_rotated_key_is_fetched_on_first_sight(
    servers: tuple[Server, Server], entra_issuer: EntraSandboxThread
) -> None:
    """A token signed by a key added after the servers cached the JWKS: both fetch it again."""
    for server in servers:  # both have the current keys cached
        assert server.kubectl(entra_issuer.token_for("alice@contoso.com"), *WHOAMI)[0] == 0
    kid = entra_issuer.sign_in.keys.rotate()
    token = entra_issuer.token_for("alice@contoso.com")
    assert _kid(token) == kid
    for server in servers:
        code, _, err = server.kubectl(token, *WHOAMI)
        assert code == 0, f"{server.name}: {err}"


def test_a_token_without_kid_is_tried_against_every_key(
    servers: tuple[Server, Server], entra_issuer: EntraSandboxThread
) -> None:
    """go-oidc tries every key of the JWKS when the header names none: a token by the oldest of
    several published keys is accepted by both, one by no published key refused by both."""
    keys = entra_issuer.sign_in.keys
    if len(keys.jwks()) < 2:
        keys.rotate()
    oldest = str(keys.jwks()[0]["kid"])
    token = _without_kid(entra_issuer, _claims(entra_issuer), kid=oldest)
    for server in servers:
        code, out, err = server.kubectl(token, *WHOAMI)
        assert (code, out) == (0, f'alice@contoso.com ["{TEAM}","system:authenticated"]'), (
            f"{server.name}: {err}"
        )
    forged = _forged(_claims(entra_issuer), None)
    assert {s.name: s.raw(forged) for s in servers} == {s.name: (401, _status_401()) for s in servers}
