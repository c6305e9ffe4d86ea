"""Client configuration: kubeconfig and context, in-cluster, kopf's credentials from the same source."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_rbac.adapters.kube import KubeAdapter, KubeTransport, build_api_client, load_configuration
from entra_rbac.errors import SettingsError
from entra_rbac.triggers import connection_info
from entra_rbac_sandbox.kube.server import ApiServerThread


@pytest.mark.sandbox_only(reason="compares with apiserver.admin_token (the sandbox's bearer token)")
def test_kopf_gets_the_same_server_token_and_ca_as_the_client(apiserver: ApiServerThread) -> None:
    configuration = load_configuration(str(apiserver.kubeconfig))
    info = connection_info(configuration)
    assert info.server == apiserver.url
    assert info.token == apiserver.admin_token
    assert info.scheme == "Bearer"
    assert info.insecure is False
    assert info.ca_path is not None
    assert Path(info.ca_path).read_bytes() == Path(str(apiserver.ca_file)).read_bytes()


def test_unknown_context_is_a_settings_error_naming_it(apiserver: ApiServerThread) -> None:
    with pytest.raises(SettingsError, match="no-such-context"):
        load_configuration(str(apiserver.kubeconfig), "no-such-context")


def test_in_cluster_configuration_is_used_in_a_pod_without_a_kubeconfig(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    # No service account files here: the in-cluster loader's own error, as one SettingsError.
    with pytest.raises(SettingsError, match="cannot load the Kubernetes configuration"):
        load_configuration()


async def test_a_client_from_the_kubeconfig_talks_to_the_api_server(apiserver: ApiServerThread) -> None:
    with build_api_client(str(apiserver.kubeconfig)) as api:
        assert api.configuration.retries.total == 0  # KubeTransport owns the retry policy
        names = {ns.name for ns in await KubeAdapter(KubeTransport(api)).list_namespaces()}
    assert {"default", "kube-system"} <= names


async def test_close_stops_further_calls(apiserver: ApiServerThread) -> None:
    adapter = KubeAdapter(KubeTransport(build_api_client(str(apiserver.kubeconfig))))
    assert await adapter.list_namespaces()
    adapter.close()
    with pytest.raises(RuntimeError, match="shutdown"):
        await adapter.list_namespaces()
