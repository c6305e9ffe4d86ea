"""End to end with real sign-ins: people and workloads present Entra tokens to the real kube-apiserver.

No impersonation and no client certificates: each kubectl call carries a bearer token issued by the
session's sandbox Entra directory (`entra_issuer`, the OIDC issuer the session's control plane
trusts through its AuthenticationConfiguration: user name `upn` else `oid`, groups from `groups`,
audience the cluster's application id). The operator reads the same directory, so what the tokens
say and what the bindings say come from one tenant. Each test runs on [real] and on [sandbox]: the
sandbox API server reads the same AuthenticationConfiguration document (kube/oidc.py) and
checks the same tokens (tests/e2e/test_token_conformance.py compares the two answer by answer).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from entra_rbac_sandbox.entra.server import EntraSandboxThread
from entra_rbac_sandbox.kube.server import write_kubeconfig
from entra_rbac_sandbox.launcher import Sandbox, kubectl_path
from tests.controlplane.harness import ControlPlane
from tests.e2e.conftest import SERVERS
from tests.e2e.harness import OPERATOR_ENV, Cluster, guid
from tests.e2e.real import RealServer

pytestmark = [pytest.mark.e2e]

TEAM = guid(300)
ALICE = {"id": guid(301), "userPrincipalName": "alice@contoso.com", "userType": "Member"}
GUEST = {"id": guid(302), "userPrincipalName": "carol_fabrikam.com#EXT#@contoso.com", "userType": "Guest"}
SP = {"id": guid(303), "appId": guid(313), "displayName": "ci-deployer", "clientSecret": "ci-secret"}
MI = {
    "id": guid(304),
    "appId": guid(314),
    "displayName": "mi-runner",
    "servicePrincipalType": "ManagedIdentity",
    "clientSecret": "mi-secret",
}
OTHER_CLUSTER = "11111111-2222-3333-4444-555555555555"


def directory(members: list[str]) -> dict[str, Any]:
    return {
        "users": [ALICE, GUEST],
        "servicePrincipals": [SP, MI],
        "groups": [{"id": TEAM, "displayName": "Team", "mailNickname": "team", "members": members}],
        "signIn": {"testSecret": "sandbox-test-secret", "applications": [OTHER_CLUSTER]},
    }


def binding(subjects: str = "Group") -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "team"},
        "spec": {
            "groups": [{"mailNickname": "team"}],
            "subjects": {"kind": subjects},
            "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
        },
    }


class SandboxTokens:
    """The sandbox API server's `token_kubeconfig`, as ControlPlane has it."""

    def __init__(self, sandbox: Sandbox, folder: Path) -> None:
        assert sandbox.kube is not None
        self.kube, self.folder, self.made = sandbox.kube, folder, 0

    def token_kubeconfig(self, user: str, token: str) -> Path:
        self.made += 1
        return write_kubeconfig(
            self.folder / f"{self.made:03d}-token.kubeconfig",
            self.kube.url,
            token,
            ca_file=self.kube.ca_file,
            user=user,
        )


Tokens = ControlPlane | SandboxTokens


@contextmanager
def operator_signed_in(
    server: str,
    issuer: EntraSandboxThread,
    tmp_path: Path,
    real: tuple[RealServer, ControlPlane] | None = None,
    authentication_config: str | None = None,
    clean_up: bool = True,
) -> Iterator[tuple[Cluster, Tokens]]:
    """The operator as a process on `server` ("sandbox", or "real": `real`'s prepared control
    plane), reading `issuer`'s directory; the sandbox API server trusts people's tokens by
    `authentication_config` (default: the issuer, no prefixes). `clean_up=False`: leave what the
    test made on a real control plane no other test uses."""
    log_path = tmp_path / "operator.log"
    kube: dict[str, Any] = {}
    if real:
        kube = {
            "cluster": real[0].admin_kubeconfig,
            "cluster_operator_kubeconfig": real[0].operator_kubeconfig,
        }
    with (
        log_path.open("w", encoding="utf-8") as log,
        Sandbox(
            issuer.directory_file,
            state_dir=tmp_path / "sandbox",
            operator_env=OPERATOR_ENV,
            operator_output=log,
            entra=issuer,
            authentication_config=authentication_config,
            **kube,
        ) as sandbox,
    ):
        cluster = Cluster(sandbox, log_path, server=server, audit=real[0].audit if real else None)
        tokens: Tokens = real[1] if real else SandboxTokens(sandbox, tmp_path / "tokens")
        try:
            yield cluster, tokens
        finally:
            sandbox.stop_operator()
            if real and clean_up:
                cluster.clean_up()
            cluster.api.close()


@pytest.fixture(params=[s for s in SERVERS if s in ("sandbox", "real")])
def signed_in(
    request: pytest.FixtureRequest, entra_issuer: EntraSandboxThread, tmp_path: Path
) -> Iterator[tuple[Cluster, EntraSandboxThread, Tokens]]:
    entra_issuer.write_directory(directory([]))
    real = None
    if request.param == "real":
        real = (request.getfixturevalue("real_server"), request.getfixturevalue("control_plane"))
    with operator_signed_in(request.param, entra_issuer, tmp_path, real) as (cluster, tokens):
        yield cluster, entra_issuer, tokens


def kubectl_as(cp: Tokens, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Real kubectl with nothing but the bearer token (a kubeconfig user with `token:`)."""
    config = cp.token_kubeconfig("signed-in", token)
    command = [kubectl_path(), "--kubeconfig", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def allowed(cp: Tokens, token: str) -> bool:
    done = kubectl_as(cp, token, "get", "pods", "-n", "payments")
    if done.returncode != 0 and "Forbidden" not in done.stderr:
        raise AssertionError(f"neither allowed nor forbidden: {done.stderr.strip()}")
    return done.returncode == 0


def workload_token(issuer: EntraSandboxThread, principal: dict[str, Any]) -> str:
    return issuer.token_for(principal["appId"])


def test_alice_is_refused_then_allowed_with_the_same_token(
    signed_in: tuple[Cluster, EntraSandboxThread, Tokens],
) -> None:
    cluster, issuer, cp = signed_in
    issuer.write_directory(directory([ALICE["id"]]))
    cluster.namespace("payments")
    token = issuer.token_for("alice@contoso.com")
    refused = kubectl_as(cp, token, "get", "pods", "-n", "payments")
    assert refused.returncode == 1
    assert 'User "alice@contoso.com" cannot list resource "pods"' in refused.stderr

    cluster.apply(binding())
    cluster.wait_ready("team")
    cluster.wait_for("alice allowed", lambda: allowed(cp, token))


def test_user_mode_revokes_a_still_valid_token_within_the_sync_interval(
    signed_in: tuple[Cluster, EntraSandboxThread, Tokens],
) -> None:
    cluster, issuer, cp = signed_in
    issuer.write_directory(directory([ALICE["id"]]))
    cluster.namespace("payments")
    cluster.apply(binding("User"))
    cluster.wait_ready("team")
    token = issuer.token_for("alice@contoso.com")  # still lists Team in `groups` after the removal
    cluster.wait_for("alice allowed", lambda: allowed(cp, token))

    issuer.write_directory(directory([]))
    cluster.wait_for("alice refused", lambda: not allowed(cp, token), timeout=20)


def test_group_mode_follows_membership_with_a_new_token(
    signed_in: tuple[Cluster, EntraSandboxThread, Tokens],
) -> None:
    cluster, issuer, cp = signed_in
    cluster.namespace("payments")
    cluster.apply(binding("Group"))
    cluster.wait_ready("team")
    before = issuer.token_for("alice@contoso.com")
    assert not allowed(cp, before)

    issuer.write_directory(directory([ALICE["id"]]))
    assert not allowed(cp, before)  # the old token does not name the group: nothing changes for it
    assert allowed(cp, issuer.token_for("alice@contoso.com"))
    # And the reverse: removal takes effect only when the token that names the group is replaced.
    still_valid = issuer.token_for("alice@contoso.com")
    issuer.write_directory(directory([]))
    assert allowed(cp, still_valid)
    assert not allowed(cp, issuer.token_for("alice@contoso.com"))


def test_a_token_for_another_cluster_is_unauthorized(
    signed_in: tuple[Cluster, EntraSandboxThread, Tokens],
) -> None:
    _, issuer, cp = signed_in
    issuer.write_directory(directory([ALICE["id"]]))
    # `auth whoami` asks for no discovery first, so kubectl's message does not depend on its cache
    # (a `get` with a cold cache says "the server has asked for the client to provide credentials").
    done = kubectl_as(cp, issuer.token_for("alice@contoso.com", audience=OTHER_CLUSTER), "auth", "whoami")
    assert done.returncode == 1
    assert "error: You must be logged in to the server (Unauthorized)" in done.stderr
    expired = kubectl_as(cp, issuer.token_for("alice@contoso.com", lifetime=-120), "auth", "whoami")
    assert "(Unauthorized)" in expired.stderr


def test_guests_service_principals_and_managed_identities_match_the_emitted_subjects(
    signed_in: tuple[Cluster, EntraSandboxThread, Tokens],
) -> None:
    cluster, issuer, cp = signed_in
    issuer.write_directory(directory([GUEST["id"], SP["id"], MI["id"]]))
    cluster.namespace("payments")
    cluster.apply(binding("User"))
    cluster.wait_ready("team")
    subjects = cluster.subjects("RoleBinding", "payments", "egb:team:clusterrole:edit")
    assert sorted(subjects) == sorted([GUEST["id"], SP["id"], MI["id"]])
    tokens = {
        GUEST["id"]: issuer.token_for(GUEST["userPrincipalName"]),
        SP["id"]: workload_token(issuer, SP),
        MI["id"]: workload_token(issuer, MI),
    }
    for object_id, token in tokens.items():
        whoami = kubectl_as(cp, token, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
        assert whoami.stdout == object_id, whoami.stderr
        cluster.wait_for(f"{object_id} allowed", lambda token=token: allowed(cp, token))  # type: ignore[misc]
