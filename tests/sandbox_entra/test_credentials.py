"""The token endpoint with the real azure-identity credentials, and token checks on Graph calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import CertificateCredential, ClientSecretCredential, WorkloadIdentityCredential

from entra_rbac_sandbox.entra.server import EntraSandbox, EntraSandboxThread
from tests.fixtures.entra import graph_client
from tests.sandbox_entra.tenant import group, guid

pytestmark = pytest.mark.timeout(60)
Factory = Callable[[EntraSandboxThread, Path], Any]


def _options(server: EntraSandboxThread) -> dict[str, Any]:
    return {"authority": server.authority_host, "connection_verify": str(server.ca_file)}


def secret(server: EntraSandboxThread, _: Path) -> Any:
    return ClientSecretCredential(
        server.tenant_id, server.client_id, server.client_secret, **_options(server)
    )


def certificate(server: EntraSandboxThread, _: Path) -> Any:
    path = str(server.client_certificate_path)
    return CertificateCredential(server.tenant_id, server.client_id, path, **_options(server))


def workload(server: EntraSandboxThread, tmp_path: Path) -> Any:
    token_file = server.write_federated_token(tmp_path / "azure-identity-token")
    return WorkloadIdentityCredential(
        tenant_id=server.tenant_id,
        client_id=server.client_id,
        token_file_path=str(token_file),
        **_options(server),
    )


@pytest.mark.parametrize("make", [secret, certificate, workload], ids=["secret", "certificate", "workload"])
@pytest.mark.parametrize("scope", ["https://127.0.0.1/.default", "https://graph.microsoft.com/.default"])
async def test_async_credentials_obtain_tokens_that_graph_accepts(
    entra_directory: EntraSandboxThread, tmp_path: Path, make: Factory, scope: str
) -> None:
    entra_directory.write_directory({"groups": [group("Readers")]})
    async with make(entra_directory, tmp_path) as credential:
        token = await credential.get_token(scope)
    assert token.expires_on > 0
    with graph_client(entra_directory, token.token) as http:
        answer = http.get(f"/groups/{guid('Readers')}")
    assert answer.status_code == 200, answer.text
    assert entra_directory.count("POST", r"/oauth2/v2\.0/token$") == 1


def test_sync_msal_credential_discovers_the_tenant_on_loopback(entra_directory: EntraSandboxThread) -> None:
    credential = SyncClientSecretCredential(
        entra_directory.tenant_id,
        entra_directory.client_id,
        entra_directory.client_secret,
        disable_instance_discovery=True,
        **_options(entra_directory),
    )
    with credential:
        token = credential.get_token("https://127.0.0.1/.default")
    assert token.token
    tenant = entra_directory.tenant_id
    assert entra_directory.count("GET", f"^/{tenant}/v2.0/.well-known/openid-configuration$") == 1
    assert entra_directory.count("POST", f"^/{tenant}/oauth2/v2.0/token$") == 1


def _unregistered_certificate(server: EntraSandboxThread, _: Path) -> Any:
    other = server.ca.issue_client_cert("someone-else", name="other")
    return CertificateCredential(server.tenant_id, server.client_id, str(other.pem_file), **_options(server))


def _federated(**token: Any) -> Factory:
    def make(server: EntraSandboxThread, tmp_path: Path) -> Any:
        token_file = server.write_federated_token(tmp_path / "token", **token)
        return WorkloadIdentityCredential(
            tenant_id=server.tenant_id,
            client_id=server.client_id,
            token_file_path=str(token_file),
            **_options(server),
        )

    return make


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (
            lambda s, _: ClientSecretCredential(s.tenant_id, s.client_id, "wrong", **_options(s)),
            "AADSTS7000215",
        ),
        (
            lambda s, _: ClientSecretCredential(s.tenant_id, guid("x"), s.client_secret, **_options(s)),
            "AADSTS700016",
        ),
        (
            lambda s, _: ClientSecretCredential(guid("t"), s.client_id, s.client_secret, **_options(s)),
            "AADSTS90002",
        ),
        (_unregistered_certificate, "AADSTS700027"),
        (_federated(subject="system:serviceaccount:default:intruder"), "AADSTS700213"),
        (_federated(audience="api://SomethingElse"), "AADSTS700213"),
        (_federated(lifetime=-120), "AADSTS700213"),
    ],
    ids=["secret", "client-id", "tenant", "certificate", "subject", "audience", "expired"],
)
async def test_token_endpoint_refuses_wrong_credentials(
    entra_directory: EntraSandboxThread, tmp_path: Path, make: Factory, code: str
) -> None:
    async with make(entra_directory, tmp_path) as credential:
        with pytest.raises(ClientAuthenticationError, match=code):
            await credential.get_token("https://127.0.0.1/.default")


async def test_token_endpoint_refuses_other_resources(
    entra_directory: EntraSandboxThread, tmp_path: Path
) -> None:
    async with secret(entra_directory, tmp_path) as credential:
        with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
            await credential.get_token("https://management.azure.com/.default")


def _graph_refusal(server: EntraSandboxThread, headers: dict[str, str]) -> httpx.Response:
    with graph_client(server) as http:
        return http.get("/groups", headers=headers)


def test_graph_without_a_valid_token_is_401_invalid_authentication_token(
    entra_directory: EntraSandboxThread, tmp_path: Path
) -> None:
    with EntraSandboxThread(state_dir=tmp_path / "other") as other:
        foreign = other.issue_token()
    tokens = entra_directory.tokens
    cases = {
        "Access token is empty.": {"Authorization": ""},
        "Access token validation failure.": {"Authorization": "Bearer not-a-jwt"},
        "token is expired": {"Authorization": f"Bearer {entra_directory.issue_token(lifetime=-60)}"},
        "Invalid audience": {
            "Authorization": f"Bearer {tokens.issue(entra_directory.application, 'https://management.azure.com')}"
        },
    }
    cases["Access token validation failure"] = {"Authorization": f"Bearer {foreign}"}
    for message, headers in cases.items():
        answer = _graph_refusal(entra_directory, headers)
        assert answer.status_code == 401, message
        error = answer.json()["error"]
        assert error["code"] == "InvalidAuthenticationToken"
        assert message in error["message"]
        assert "WWW-Authenticate" in answer.headers


def test_graph_without_group_read_permission_is_403(entra_directory: EntraSandboxThread) -> None:
    token = entra_directory.issue_token(roles=("User.ReadBasic.All",))
    with graph_client(entra_directory, token) as http:
        answer = http.get("/groups")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "Authorization_RequestDenied"


@pytest.mark.parametrize("credential", ["client-secret", "certificate", "workload-identity"])
def test_env_names_every_setting_the_operator_reads(
    entra_directory: EntraSandboxThread, credential: str
) -> None:
    env = entra_directory.env(credential)
    assert env["ENTRA_RBAC_CREDENTIAL"] == credential
    assert env["ENTRA_RBAC_GRAPH_URL"] == entra_directory.graph_url
    assert env["ENTRA_RBAC_AUTHORITY_HOST"] == entra_directory.authority_host
    assert Path(env["ENTRA_RBAC_CA_FILE"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert ("ENTRA_RBAC_CLIENT_SECRET" in env) == (credential == "client-secret")
    if credential == "workload-identity":
        assert Path(env["AZURE_FEDERATED_TOKEN_FILE"]).read_text().count(".") == 2
    with pytest.raises(ValueError, match="credential: must be one of"):
        entra_directory.env("password")


async def test_async_form_serves_on_the_callers_loop(tmp_path: Path) -> None:
    directory = tmp_path / "directory.yaml"
    directory.write_text(f"groups: [{{id: {guid('Ops')}, displayName: Ops}}]\n", encoding="utf-8")
    async with EntraSandbox(directory, state_dir=tmp_path / "state") as entra:
        options = {"authority": entra.authority_host, "connection_verify": str(entra.ca_file)}
        async with ClientSecretCredential(
            entra.tenant_id, entra.client_id, entra.client_secret, **options
        ) as cred:
            token = (await cred.get_token("https://127.0.0.1/.default")).token
        async with httpx.AsyncClient(verify=entra.ca.client_ssl_context()) as http:
            answer = await http.get(
                f"{entra.graph_url}/groups/{guid('Ops')}", headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.json()["displayName"] == "Ops"
    async with httpx.AsyncClient(verify=entra.ca.client_ssl_context()) as http:
        with pytest.raises(httpx.ConnectError):  # stopped with the context
            await http.get(entra.url)
