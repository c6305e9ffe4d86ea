"""DirectoryConfig: clouds pair authority and Graph; it is derived from Settings, which names the
variable of any bad value (the config itself checks nothing again)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from entra_rbac.adapters.directory.config import DirectoryConfig, directory_config
from entra_rbac.errors import SettingsError
from entra_rbac.settings import load_settings

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token"
WI = {"credential": "workload-identity", "federated_token_file": TOKEN_FILE, "cache_ttl": 60.0}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting leaks in from the developer's shell or from workload identity."""
    for name in list(os.environ):
        if name.startswith(("ENTRA_RBAC_", "AZURE_")) or name == "KUBECONFIG":
            monkeypatch.delenv(name)
    monkeypatch.setattr("entra_rbac.settings.SERVICE_ACCOUNT_NAMESPACE_FILE", Path("/nonexistent"))


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
    config = DirectoryConfig(tenant_id=TENANT, client_id=CLIENT, cloud=cloud, **WI)  # type: ignore[arg-type]
    assert config.endpoints.authority_host == authority
    assert config.endpoints.graph_url == graph
    assert config.graph_scope == f"{graph}/.default"


def test_custom_cloud_scope_and_allowed_host_drop_the_port() -> None:
    config = DirectoryConfig(
        tenant_id=TENANT,
        client_id=CLIENT,
        cloud="custom",
        authority_host="https://127.0.0.1:8443/",
        graph_url="https://127.0.0.1:9443/v1.0",
        **WI,  # type: ignore[arg-type]
    )
    assert config.endpoints.authority_host == "https://127.0.0.1:8443"
    assert config.endpoints.graph_url == "https://127.0.0.1:9443"
    assert config.graph_host == "127.0.0.1"
    assert config.graph_scope == "https://127.0.0.1/.default"


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"ENTRA_RBAC_CLIENT_ID": "not-a-guid"}, "ENTRA_RBAC_CLIENT_ID"),
        ({"ENTRA_RBAC_TENANT_ID": "bad tenant!"}, "ENTRA_RBAC_TENANT_ID"),
        ({"ENTRA_RBAC_CLOUD": "mars"}, "ENTRA_RBAC_CLOUD"),
        ({"ENTRA_RBAC_CREDENTIAL": "password"}, "ENTRA_RBAC_CREDENTIAL"),
        ({"AZURE_FEDERATED_TOKEN_FILE": ""}, "ENTRA_RBAC_FEDERATED_TOKEN_FILE"),
        ({"ENTRA_RBAC_CREDENTIAL": "client-secret"}, "ENTRA_RBAC_CLIENT_SECRET"),
        ({"ENTRA_RBAC_CREDENTIAL": "certificate"}, "ENTRA_RBAC_CERTIFICATE_PATH"),
        ({"ENTRA_RBAC_CLOUD": "custom"}, "ENTRA_RBAC_AUTHORITY_HOST"),
        (
            {"ENTRA_RBAC_CLOUD": "custom", "ENTRA_RBAC_AUTHORITY_HOST": "https://login.example"},
            "ENTRA_RBAC_GRAPH_URL",
        ),
        ({"ENTRA_RBAC_GRAPH_URL": "http://graph.example"}, "ENTRA_RBAC_GRAPH_URL"),
        ({"ENTRA_RBAC_GRAPH_URL": "https://graph.example/beta"}, "ENTRA_RBAC_GRAPH_URL"),
        ({"ENTRA_RBAC_AUTHORITY_HOST": "https:///no-host"}, "ENTRA_RBAC_AUTHORITY_HOST"),
        ({"ENTRA_RBAC_AUTHORITY_HOST": "https://login.example/tenant"}, "ENTRA_RBAC_AUTHORITY_HOST"),
    ],
)
def test_invalid_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, str], variable: str
) -> None:
    for name, value in {
        "AZURE_TENANT_ID": TENANT,
        "AZURE_CLIENT_ID": CLIENT,
        "AZURE_FEDERATED_TOKEN_FILE": TOKEN_FILE,
        **changes,
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        load_settings()


def test_graph_url_may_name_the_version_it_is_served_under(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AZURE_TENANT_ID": TENANT,
        "AZURE_CLIENT_ID": CLIENT,
        "AZURE_FEDERATED_TOKEN_FILE": TOKEN_FILE,
        "ENTRA_RBAC_GRAPH_URL": "https://graph.example/v1.0/",
    }.items():
        monkeypatch.setenv(name, value)
    assert directory_config(load_settings()).endpoints.graph_url == "https://graph.example"


def test_defaults_to_workload_identity_injected_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AZURE_CLIENT_ID": CLIENT,
        "AZURE_TENANT_ID": TENANT,
        "AZURE_FEDERATED_TOKEN_FILE": TOKEN_FILE,
        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
    }.items():
        monkeypatch.setenv(name, value)
    config = directory_config(load_settings())
    assert config.credential == "workload-identity"
    assert (config.client_id, config.tenant_id) == (CLIENT, TENANT)
    assert config.endpoints.authority_host == "https://login.microsoftonline.com"
    assert config.federated_token_file == TOKEN_FILE


def test_prefers_entra_rbac_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    other = "11111111-2222-3333-4444-555555555555"
    for name, value in {
        "AZURE_CLIENT_ID": other,
        "AZURE_TENANT_ID": other,
        "ENTRA_RBAC_CLIENT_ID": CLIENT,
        "ENTRA_RBAC_TENANT_ID": TENANT,
        "ENTRA_RBAC_CREDENTIAL": "client-secret",
        "ENTRA_RBAC_CLIENT_SECRET": "hunter2-secret",
        "ENTRA_RBAC_CLOUD": "usgov",
        "ENTRA_RBAC_REFRESH_INTERVAL": "4m",
    }.items():
        monkeypatch.setenv(name, value)
    config = directory_config(load_settings())
    assert (config.client_id, config.tenant_id, config.cloud) == (CLIENT, TENANT, "usgov")
    assert config.cache_ttl == 48.0  # a fifth of the refresh interval (settings.Freshness)
    assert "hunter2-secret" not in repr(config)
