"""Settings: defaults, duration and list parsing, and one clear error naming the variable."""

from __future__ import annotations

import pytest

from entra_rbac.errors import SettingsError
from entra_rbac.reconciler import Policy
from entra_rbac.settings import Settings, load_settings, parse_duration

CLIENT = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A workload-identity pod's environment, nothing else (no leak from the developer's shell)."""
    import os

    for name in list(os.environ):
        if name.startswith(("ENTRA_RBAC_", "AZURE_")) or name == "KUBECONFIG":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token")
    monkeypatch.setattr(
        "entra_rbac.settings.SERVICE_ACCOUNT_NAMESPACE_FILE", __import__("pathlib").Path("/nonexistent")
    )


def test_settings_defaults_match_the_documented_contract() -> None:
    settings = load_settings()
    assert settings.refresh_interval == 300
    assert settings.max_staleness is None
    assert settings.log_format == "text"
    assert settings.log_level == "info"
    assert settings.metrics_port == 8080
    assert settings.health_port == 8081
    assert settings.cloud == "public"
    assert settings.credential == "workload-identity"
    assert settings.allowed_cluster_roles == ("view", "edit", "admin")
    assert settings.allowed_roles == ()
    assert settings.reserved_namespace_set == {"kube-system", "kube-public", "kube-node-lease"}
    assert settings.revocation_guard_share == 0.5
    assert settings.revocation_guard_min == 5
    assert settings.freshness.cache_lifetime == 60
    # Peering on by default (docs/deployment.md, Never two writers); standalone only when asked.
    assert (settings.peering_name, settings.standalone, settings.peering_lifetime) == (
        "entra-rbac-operator",
        False,
        60,
    )
    assert (settings.tenant_id, settings.client_id) == (TENANT, CLIENT)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("45", 45), ("1.5m", 90), (" 2M ", 120), (10, 10)],
)
def test_durations_accept_units_and_plain_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "m", "-3s", "0", "5 minutes", ""])
def test_durations_reject_what_is_not_a_positive_duration(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|longer than zero"):
        parse_duration(text)


@pytest.mark.parametrize(("text", "expected"), [("off", None), ("OFF", None), ("2h", 7200.0)])
def test_max_staleness_is_off_or_a_duration(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: object
) -> None:
    monkeypatch.setenv("ENTRA_RBAC_MAX_STALENESS", text)
    assert load_settings().max_staleness == expected


def test_environment_sets_every_kind_of_field(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "ENTRA_RBAC_REFRESH_INTERVAL": "30s",
        "ENTRA_RBAC_LOG_FORMAT": "JSON",
        "ENTRA_RBAC_LOG_LEVEL": "debug",
        "ENTRA_RBAC_METRICS_PORT": "0",
        "ENTRA_RBAC_ALLOWED_CLUSTER_ROLES": "view, edit",
        "ENTRA_RBAC_ALLOWED_ROLES": "deployer,reader",
        "ENTRA_RBAC_RESERVED_NAMESPACES": "kube-system,platform",
        "ENTRA_RBAC_OPERATOR_NAMESPACE": "entra-rbac-system",
        "ENTRA_RBAC_TENANT_ID": "contoso.onmicrosoft.com",
        "ENTRA_RBAC_CREDENTIAL": "client-secret",
        "ENTRA_RBAC_CLIENT_SECRET": "s3cret",
        "ENTRA_RBAC_PEERING_NAME": "entra-rbac",
        "ENTRA_RBAC_PEERING_PRIORITY": "100",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.refresh_interval == 30
    assert settings.log_format == "json"
    assert settings.metrics_port == 0
    assert settings.allowed_cluster_roles == ("view", "edit")
    allowed = Policy.from_settings(settings).allowed_roles  # what the reconcile applies
    assert allowed.allows("Role", "reader")
    assert not allowed.allows("Role", "admin")
    assert settings.reserved_namespace_set == {"kube-system", "platform", "entra-rbac-system"}
    assert settings.tenant_id == "contoso.onmicrosoft.com"  # ENTRA_RBAC_ wins over AZURE_
    assert (settings.peering_name, settings.peering_priority) == ("entra-rbac", 100)


def test_operator_namespace_defaults_to_the_pods_service_account_namespace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: __import__("pathlib").Path
) -> None:
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("entra-rbac-system\n")
    monkeypatch.setattr("entra_rbac.settings.SERVICE_ACCOUNT_NAMESPACE_FILE", namespace_file)
    settings = load_settings()
    assert settings.operator_namespace == "entra-rbac-system"
    assert "entra-rbac-system" in settings.reserved_namespace_set


def test_wildcard_allows_any_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRA_RBAC_ALLOWED_CLUSTER_ROLES", "*")
    assert Policy.from_settings(load_settings()).allowed_roles.allows("ClusterRole", "anything")


def test_secret_is_not_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRA_RBAC_CREDENTIAL", "client-secret")
    monkeypatch.setenv("ENTRA_RBAC_CLIENT_SECRET", "very-secret-value")
    settings = load_settings()
    assert "very-secret-value" not in repr(settings)
    assert "very-secret-value" not in str(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENTRA_RBAC_REFRESH_INTERVAL": "5x"}, "ENTRA_RBAC_REFRESH_INTERVAL: '5x' is not a duration"),
        ({"ENTRA_RBAC_MAX_STALENESS": "never"}, "ENTRA_RBAC_MAX_STALENESS: 'never' is not a duration"),
        (
            {"ENTRA_RBAC_REFRESH_INTERVAL": "10m", "ENTRA_RBAC_MAX_STALENESS": "5m"},
            "ENTRA_RBAC_MAX_STALENESS: must be at least ENTRA_RBAC_REFRESH_INTERVAL",
        ),
        ({"ENTRA_RBAC_LOG_FORMAT": "xml"}, "ENTRA_RBAC_LOG_FORMAT: 'xml' is invalid"),
        ({"ENTRA_RBAC_LOG_LEVEL": "loud"}, "ENTRA_RBAC_LOG_LEVEL: 'loud' is invalid"),
        ({"ENTRA_RBAC_METRICS_PORT": "http"}, "ENTRA_RBAC_METRICS_PORT: 'http' is invalid"),
        ({"ENTRA_RBAC_METRICS_PORT": "70000"}, "ENTRA_RBAC_METRICS_PORT: 70000 is not a port"),
        (
            {"ENTRA_RBAC_HEALTH_PORT": "8080"},
            "ENTRA_RBAC_METRICS_PORT: must differ from ENTRA_RBAC_HEALTH_PORT",
        ),
        ({"ENTRA_RBAC_CLOUD": "mars"}, "ENTRA_RBAC_CLOUD: 'mars' is invalid"),
        (
            {"ENTRA_RBAC_CLOUD": "custom"},
            "ENTRA_RBAC_AUTHORITY_HOST: is required when ENTRA_RBAC_CLOUD=custom",
        ),
        (
            {"ENTRA_RBAC_GRAPH_URL": "http://graph.local"},
            "ENTRA_RBAC_GRAPH_URL: 'http://graph.local' must be an https URL",
        ),
        ({"ENTRA_RBAC_CREDENTIAL": "password"}, "ENTRA_RBAC_CREDENTIAL: 'password' is invalid"),
        ({"ENTRA_RBAC_CREDENTIAL": "client-secret"}, "ENTRA_RBAC_CLIENT_SECRET: is required"),
        ({"ENTRA_RBAC_CREDENTIAL": "certificate"}, "ENTRA_RBAC_CERTIFICATE_PATH: is required"),
        (
            {"ENTRA_RBAC_CREDENTIAL": "certificate", "ENTRA_RBAC_CERTIFICATE_PATH": "/nonexistent/cert.pem"},
            "ENTRA_RBAC_CERTIFICATE_PATH: '/nonexistent/cert.pem' is not a readable file",
        ),
        (
            {"ENTRA_RBAC_CA_FILE": "/nonexistent/ca.pem"},
            "ENTRA_RBAC_CA_FILE: '/nonexistent/ca.pem' is not a readable",
        ),
        (
            {"AZURE_FEDERATED_TOKEN_FILE": ""},
            "ENTRA_RBAC_FEDERATED_TOKEN_FILE: is required for workload-identity",
        ),
        ({"AZURE_CLIENT_ID": ""}, "ENTRA_RBAC_CLIENT_ID: is required"),
        ({"AZURE_CLIENT_ID": "my-app"}, "ENTRA_RBAC_CLIENT_ID: 'my-app' is not a GUID"),
        ({"AZURE_TENANT_ID": "contoso com"}, "ENTRA_RBAC_TENANT_ID: 'contoso com' is neither"),
        (
            {"ENTRA_RBAC_ALLOWED_ROLES": "deployer,Bad_Name"},
            "ENTRA_RBAC_ALLOWED_ROLES: 'Bad_Name' is not a valid",
        ),
        (
            {"ENTRA_RBAC_ALLOWED_CLUSTER_ROLES": "system:masters"},
            "ENTRA_RBAC_ALLOWED_CLUSTER_ROLES: 'system:masters'",
        ),
        (
            {"ENTRA_RBAC_RESERVED_NAMESPACES": "kube-system,a..b"},
            "ENTRA_RBAC_RESERVED_NAMESPACES: 'a..b' is not",
        ),
        (
            {"ENTRA_RBAC_REVOCATION_GUARD_SHARE": "1.5"},
            "ENTRA_RBAC_REVOCATION_GUARD_SHARE: 1.5 must be above 0",
        ),
        (
            {"ENTRA_RBAC_REVOCATION_GUARD_MIN": "-1"},
            "ENTRA_RBAC_REVOCATION_GUARD_MIN: -1 must not be negative",
        ),
        (
            {"ENTRA_RBAC_REFRESH_INTERVAL": "soon"},
            "ENTRA_RBAC_REFRESH_INTERVAL: 'soon' is not a duration",
        ),
    ],
)
def test_invalid_setting_raises_one_message_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_keyword_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRA_RBAC_KUBECONFIG", "/from/env")
    settings = load_settings(kubeconfig="/from/flag", kube_context="admin")
    assert (settings.kubeconfig, settings.kube_context) == ("/from/flag", "admin")


def test_every_field_is_documented_where_declared_and_in_configuration_md() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"ENTRA_RBAC_{name.upper()}" in doc, name


def test_every_field_has_a_description() -> None:
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_unknown_variables_are_reported_for_typos() -> None:
    from entra_rbac.settings import unknown_variables

    environ = {
        "ENTRA_RBAC_REFRESH_INTERVALL": "1m",
        "ENTRA_RBAC_LOG_FORMAT": "json",
        "AZURE_CLIENT_ID": "x",
        "HOME": "/",
    }
    assert unknown_variables(environ) == ["ENTRA_RBAC_REFRESH_INTERVALL"]


def test_the_guardrails_settings_become_the_policys_guardrails(monkeypatch: pytest.MonkeyPatch) -> None:
    group = "11111111-1111-1111-1111-111111111111"
    monkeypatch.setenv("ENTRA_RBAC_PRIVILEGED_ROLES", "edit, cluster-admin")
    monkeypatch.setenv("ENTRA_RBAC_FORBIDDEN_NAMESPACES", "vault,entra-rbac-system")
    monkeypatch.setenv("ENTRA_RBAC_GROUP_ROLES", f"{group}=view,edit *=view")
    rails = Policy.from_settings(load_settings()).guardrails
    assert rails.privileged_roles == {"edit", "cluster-admin"}
    assert rails.forbidden_namespaces == {"vault", "entra-rbac-system"}
    assert rails.group_roles == {group: {"view", "edit"}, "*": {"view"}}
    # Unset: the defaults of deploy/guardrails.env (the built-in edit and admin impersonate).
    monkeypatch.delenv("ENTRA_RBAC_PRIVILEGED_ROLES")
    assert Policy.from_settings(load_settings()).guardrails.privileged_roles == {"edit", "admin"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "ENTRA_RBAC_GROUP_ROLES",
            "not-an-entry",
            "ENTRA_RBAC_GROUP_ROLES: entry 'not-an-entry' is malformed",
        ),
        (
            "ENTRA_RBAC_FORBIDDEN_NAMESPACES",
            "Vault",
            "ENTRA_RBAC_FORBIDDEN_NAMESPACES: 'Vault' is not a valid",
        ),
        (
            "ENTRA_RBAC_PRIVILEGED_ROLES",
            "Edit",
            "ENTRA_RBAC_PRIVILEGED_ROLES: 'Edit' is not a valid role name",
        ),
    ],
)
def test_bad_guardrails_settings_stop_the_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        Policy.from_settings(load_settings())
    assert str(caught.value).startswith(message), str(caught.value)
