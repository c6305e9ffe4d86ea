"""DirectoryConfig: clouds pair authority and Graph; bad settings name the field."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.adapters.directory.config import Cloud, CredentialKind, DirectoryConfig
from entra_rbac.errors import SettingsError

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
WI = {"federated_token_file": "/var/run/secrets/azure/tokens/azure-identity-token"}


@pytest.mark.parametrize(
    ("cloud", "authority", "graph"),
    [
        ("public", "https://login.microsoftonline.com", "https://graph.microsoft.com"),
        ("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
        ("usgov-dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
        ("china", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
    ],
)
def test_sovereign_cloud_sets_authority_and_graph_together(cloud: str, authority: str, graph: str) -> None:
    config = DirectoryConfig(tenant_id=TENANT, client_id=CLIENT, cloud=Cloud(cloud), **WI)
    assert config.endpoints.authority_host == authority
    assert config.endpoints.graph_url == graph
    assert config.graph_scope == f"{graph}/.default"


def test_custom_cloud_scope_and_allowed_host_drop_the_port() -> None:
    config = DirectoryConfig(
        tenant_id=TENANT,
        client_id=CLIENT,
        cloud=Cloud.CUSTOM,
        authority_host="https://127.0.0.1:8443/",
        graph_url="https://127.0.0.1:9443/v1.0",
        **WI,
    )
    assert config.endpoints.authority_host == "https://127.0.0.1:8443"
    assert config.endpoints.graph_url == "https://127.0.0.1:9443"
    assert config.graph_host == "127.0.0.1"
    assert config.graph_scope == "https://127.0.0.1/.default"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_id": "not-a-guid"}, "client_id"),
        ({"tenant_id": "bad tenant!"}, "tenant_id"),
        ({"cloud": "mars"}, "cloud"),
        ({"credential": "password"}, "credential"),
        ({"federated_token_file": None}, "federated_token_file"),
        ({"credential": "client-secret"}, "client_secret"),
        ({"credential": "certificate"}, "certificate_path"),
        ({"cloud": "custom"}, "authority_host"),
        ({"cloud": "custom", "authority_host": "https://login.example"}, "graph_url"),
        ({"graph_url": "http://graph.example"}, "graph_url"),
        ({"graph_url": "https://graph.example/beta"}, "graph_url"),
        ({"request_timeout": 0}, "request_timeout"),
        ({"max_retries": 11}, "max_retries"),
    ],
)
def test_invalid_setting_names_the_field(changes: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {"tenant_id": TENANT, "client_id": CLIENT, **WI, **changes}
    with pytest.raises(SettingsError, match=f"directory setting {field}: "):
        DirectoryConfig(**values)


def test_from_env_defaults_to_workload_identity_injected_variables() -> None:
    env = {
        "AZURE_CLIENT_ID": CLIENT,
        "AZURE_TENANT_ID": TENANT,
        "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
    }
    config = DirectoryConfig.from_env(env)
    assert config.credential is CredentialKind.WORKLOAD_IDENTITY
    assert (config.client_id, config.tenant_id) == (CLIENT, TENANT)
    assert config.endpoints.authority_host == "https://login.microsoftonline.com"


def test_from_env_prefers_entra_rbac_variables() -> None:
    other = "11111111-2222-3333-4444-555555555555"
    env = {
        "AZURE_CLIENT_ID": other,
        "AZURE_TENANT_ID": other,
        "ENTRA_RBAC_CLIENT_ID": CLIENT,
        "ENTRA_RBAC_TENANT_ID": TENANT,
        "ENTRA_RBAC_CREDENTIAL": "client-secret",
        "ENTRA_RBAC_CLIENT_SECRET": "hunter2-secret",
        "ENTRA_RBAC_CLOUD": "usgov",
    }
    config = DirectoryConfig.from_env(env, request_timeout=5.0)
    assert (config.client_id, config.tenant_id, config.cloud) == (CLIENT, TENANT, Cloud.USGOV)
    assert config.request_timeout == 5.0
    assert "hunter2-secret" not in repr(config)
