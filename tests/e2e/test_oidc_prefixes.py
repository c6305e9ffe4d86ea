"""examples/05-self-managed-oidc-prefixes.yaml for real: a cluster whose API server prefixes OIDC names.

The module's own control plane trusts the session's sandbox Entra directory with the prefixes
the example is written for, `--oidc-username-prefix=oidc:` and `--oidc-groups-prefix=oidc:` as
`claimMappings` of its AuthenticationConfiguration (tests/controlplane/oidc.py); the sandbox API
server reads the same document. Alice signs in with a real token, no impersonation: her user
name and groups carry the prefix, she is refused, the example's binding is applied unchanged
and she is allowed through its Group subject; in User mode, through her prefixed user name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from entra_rbac_sandbox.entra.server import EntraSandboxThread
from entra_rbac_sandbox.launcher import project_file
from tests.controlplane.fixtures import oidc_issuer, started_control_plane
from tests.controlplane.harness import ControlPlane
from tests.controlplane.oidc import authentication_config
from tests.e2e.conftest import SERVERS
from tests.e2e.harness import Cluster, guid
from tests.e2e.real import RealServer, prepare
from tests.e2e.test_sign_in import Tokens, kubectl_as, operator_signed_in

pytestmark = [pytest.mark.e2e]

PREFIX = "oidc:"
ALICE = {"id": guid(601), "userPrincipalName": "alice@contoso.com", "userType": "Member"}
BOB = {"id": guid(602), "userPrincipalName": "bob@contoso.com", "userType": "Member"}
AUDITORS, CONTRACTORS = guid(610), guid(611)


def directory(auditors: list[str]) -> dict[str, Any]:
    return {
        "users": [ALICE, BOB],
        "groups": [
            {"id": AUDITORS, "displayName": "Auditors", "mailNickname": "auditors", "members": auditors},
            {
                "id": CONTRACTORS,
                "displayName": "Payments Contractors",
                "mailNickname": "payments-contractors",
                "members": [BOB["id"]],
            },
        ],
        "signIn": {"testSecret": "sandbox-test-secret"},
    }


EXAMPLE: dict[str, Any] = yaml.safe_load(
    project_file("examples", "05-self-managed-oidc-prefixes.yaml").read_text(encoding="utf-8")
)
NAME = EXAMPLE["metadata"]["name"]
BINDING = f"egb:{NAME}:clusterrole:view"


@pytest.fixture(scope="module")
def prefixed(
    tmp_path_factory: pytest.TempPathFactory, entra_issuer: EntraSandboxThread
) -> Iterator[tuple[RealServer, ControlPlane]]:
    """A second real control plane, its API server prefixing OIDC user names and groups."""
    workdir = tmp_path_factory.mktemp("controlplane-prefixed")
    for cp in started_control_plane(workdir, oidc_issuer(entra_issuer, PREFIX, PREFIX)):
        yield prepare(cp, workdir, garbage_collection=False), cp


@pytest.fixture(params=[s for s in SERVERS if s in ("sandbox", "real")])
def signed_in(
    request: pytest.FixtureRequest, entra_issuer: EntraSandboxThread, tmp_path: Path
) -> Iterator[tuple[Cluster, Tokens]]:
    entra_issuer.write_directory(directory([ALICE["id"]]))
    real = request.getfixturevalue("prefixed") if request.param == "real" else None
    config = authentication_config(oidc_issuer(entra_issuer, PREFIX, PREFIX))
    # No clean-up: the module's control plane serves this one test (and its GC may not know the CRD).
    with operator_signed_in(request.param, entra_issuer, tmp_path, real, config, clean_up=False) as signed:
        yield signed


def allowed(tokens: Tokens, token: str) -> bool:
    done = kubectl_as(tokens, token, "get", "pods", "-n", "default")
    if done.returncode != 0 and "Forbidden" not in done.stderr:
        raise AssertionError(f"neither allowed nor forbidden: {done.stderr.strip()}")
    return done.returncode == 0


def test_the_prefixed_example_grants_what_a_prefixed_api_server_names(
    signed_in: tuple[Cluster, Tokens], entra_issuer: EntraSandboxThread
) -> None:
    cluster, tokens = signed_in
    token = entra_issuer.token_for("alice@contoso.com")
    whoami = kubectl_as(tokens, token, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    info = json.loads(whoami.stdout)["status"]["userInfo"]
    assert info["username"] == "oidc:alice@contoso.com"
    assert f"oidc:{AUDITORS}" in info["groups"]
    assert AUDITORS not in info["groups"]
    refused = kubectl_as(tokens, token, "get", "pods", "-n", "default")
    assert refused.returncode == 1
    assert 'User "oidc:alice@contoso.com" cannot list resource "pods"' in refused.stderr

    cluster.apply(EXAMPLE)  # as the file says: Group subjects, both prefixes
    cluster.wait_ready(NAME)
    groups = sorted([f"oidc:{AUDITORS}", f"oidc:{CONTRACTORS}"])
    assert sorted(cluster.subjects("ClusterRoleBinding", "", BINDING)) == groups
    cluster.wait_for("alice allowed through oidc:<Auditors>", lambda: allowed(tokens, token))

    # User mode: the subjects become the prefixed user names; the same token is let in by those.
    subjects = {**EXAMPLE["spec"]["subjects"], "kind": "User"}
    cluster.apply({**EXAMPLE, "spec": {**EXAMPLE["spec"], "subjects": subjects}})
    users = ["oidc:alice@contoso.com", "oidc:bob@contoso.com"]
    cluster.wait_for(
        "User subjects", lambda: sorted(cluster.subjects("ClusterRoleBinding", "", BINDING)) == users
    )
    assert allowed(tokens, token)
    entra_issuer.write_directory(directory([]))  # her token still names Auditors: only User mode revokes
    cluster.wait_for("alice refused once out of Auditors", lambda: not allowed(tokens, token), timeout=20)
