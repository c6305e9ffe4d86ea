"""Credential building: bad certificate files are settings errors; kiota cannot close ours."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from entra_rbac.adapters.directory import DirectoryConfig, EntraDirectory
from entra_rbac.adapters.directory.credentials import KeepOpenCredential
from entra_rbac.core.entra import Directory
from entra_rbac.errors import DirectoryUnavailableError, SettingsError

CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


def config(**changes: Any) -> DirectoryConfig:
    values: dict[str, Any] = {
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": CLIENT,
        "cloud": "public",
        "credential": "workload-identity",
        "cache_ttl": 60.0,
        **changes,
    }
    return DirectoryConfig(**values)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        (b"not a certificate", "Failed to deserialize"),
    ],
)
async def test_unusable_certificate_is_a_settings_error_naming_the_field(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = tmp_path / "cert.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SettingsError, match=f"directory setting certificate_path: .*{problem}"):
        EntraDirectory(config(credential="certificate", certificate_path=str(path)))


async def test_client_secret_is_warned_once_per_directory(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with EntraDirectory(config(credential="client-secret", client_secret="hunter2-secret")):
        pass
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "Using a client secret for Entra: discouraged; prefer workload identity or a certificate"
    ]
    assert "hunter2-secret" not in caplog.text


async def test_workload_identity_needs_no_secret() -> None:
    async with EntraDirectory(
        config(federated_token_file="/var/run/secrets/azure/tokens/token")
    ) as directory:
        assert directory.config.client_secret is None


class Inner:
    def __init__(self) -> None:
        self.closed = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("t", 0)

    async def close(self) -> None:
        self.closed += 1


async def test_kiota_closing_the_wrapper_leaves_the_credential_open() -> None:
    inner = Inner()
    wrapper = KeepOpenCredential(inner)  # type: ignore[arg-type]
    await wrapper.close()
    async with wrapper:
        assert (await wrapper.get_token("scope")).token == "t"
    assert inner.closed == 0


async def test_entra_directory_satisfies_the_core_directory_protocol() -> None:
    async with EntraDirectory(config(federated_token_file="/var/run/token")) as directory:
        reader: Directory = directory
        assert reader is directory


async def test_missing_federated_token_file_is_a_token_failure(tmp_path: Path) -> None:
    # Loopback endpoints: the credential fails on the file before any connection is tried.
    local = {"cloud": "custom", "authority_host": "https://127.0.0.1:9", "graph_url": "https://127.0.0.1:9"}
    async with EntraDirectory(config(federated_token_file=str(tmp_path / "absent"), **local)) as directory:
        with pytest.raises(DirectoryUnavailableError, match="getting a token for Graph failed"):
            await directory.transitive_members("6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f")
    assert directory.metrics.requests[("transitiveMembers", "token_error")] == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("cloud", "authority", "graph_host"),
    [
        ("public", "https://login.microsoftonline.com", "graph.microsoft.com"),
        ("usgov", "https://login.microsoftonline.us", "graph.microsoft.us"),
        ("usgov-dod", "https://login.microsoftonline.us", "dod-graph.microsoft.us"),
        ("china", "https://login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn"),
    ],
)
async def test_built_clients_use_one_cloud_for_token_scope_and_graph(
    cloud: str, authority: str, graph_host: str
) -> None:
    # Internals read on purpose: nothing here may be sent anywhere, and a mismatch between the
    # token's authority, its scope, the allowed host and Graph's base URL means no token at all.
    async with EntraDirectory(config(cloud=cloud, federated_token_file="/var/run/token")) as directory:
        adapter: Any = directory._client.request_adapter
        provider = adapter._authentication_provider.access_token_provider
        assert adapter.base_url == f"https://{graph_host}/v1.0"
        assert provider._scopes == [f"https://{graph_host}/.default"]
        assert provider.get_allowed_hosts_validator().get_allowed_hosts() == [graph_host]
        assert directory._credential._client._authority == authority  # type: ignore[attr-defined]
