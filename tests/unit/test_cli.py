"""`entra-rbac run`: invalid settings stop it with one message and exit code 2, before kopf starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from entra_rbac.cli import main

CLIENT = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A valid environment (client secret credential) with a kubeconfig that loads."""
    for name in list(os.environ):
        if name.startswith(("ENTRA_RBAC_", "AZURE_")) or name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
            monkeypatch.delenv(name)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    values = {
        "ENTRA_RBAC_TENANT_ID": "contoso.onmicrosoft.com",
        "ENTRA_RBAC_CLIENT_ID": CLIENT,
        "ENTRA_RBAC_CREDENTIAL": "client-secret",
        "ENTRA_RBAC_CLIENT_SECRET": "a-long-secret-value",
        "ENTRA_RBAC_KUBECONFIG": str(kubeconfig),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def kopf_never_runs(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    started: list[object] = []
    monkeypatch.setattr("entra_rbac.runner.run_operator", started.append)
    return started


def test_help_lists_the_run_command_and_its_flags() -> None:
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0
    assert "--kubeconfig" in result.output
    assert "--context" in result.output


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ENTRA_RBAC_REFRESH_INTERVAL", "often", "ENTRA_RBAC_REFRESH_INTERVAL: 'often' is not a duration"),
        ("ENTRA_RBAC_LOG_FORMAT", "xml", "ENTRA_RBAC_LOG_FORMAT: 'xml' is invalid"),
        ("ENTRA_RBAC_CLIENT_SECRET", "", "ENTRA_RBAC_CLIENT_SECRET: is required"),
        (
            "ENTRA_RBAC_CA_FILE",
            "/nonexistent/ca.pem",
            "ENTRA_RBAC_CA_FILE: '/nonexistent/ca.pem' is not a readable file",
        ),
        ("ENTRA_RBAC_KUBECONFIG", "/nonexistent/kubeconfig", "cannot load the Kubernetes configuration"),
    ],
)
def test_invalid_settings_exit_2_with_one_message(
    env: dict[str, str],
    kopf_never_runs: list[object],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("entra-rbac: invalid settings: ")
    assert message in result.output
    assert result.output.count("\n") == 1
    assert kopf_never_runs == []
    assert "a-long-secret-value" not in result.output


def test_flags_override_the_environment(
    env: dict[str, str], kopf_never_runs: list[object], tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main, ["run", "--kubeconfig", env["ENTRA_RBAC_KUBECONFIG"], "--context", "missing"]
    )
    assert result.exit_code == 2
    assert "missing" in result.output


def test_valid_settings_start_the_operator_once(env: dict[str, str], kopf_never_runs: list[object]) -> None:
    result = CliRunner().invoke(main, ["run", "--context", "c"])
    assert result.exit_code == 0, result.output
    assert len(kopf_never_runs) == 1
    prepared = kopf_never_runs[0]
    assert prepared.settings.kube_context == "c"  # type: ignore[attr-defined]
