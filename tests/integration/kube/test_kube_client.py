"""Client configuration: kubeconfig and context, in-cluster, kopf's credentials from the same source."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from entra_rbac.adapters.kube import KubeAdapter, KubeTransport, build_api_client, load_configuration
from entra_rbac.adapters.kube import client as kube_client
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


def test_plain_bodies_skip_the_clients_walk_and_others_are_still_sanitised(
    apiserver: ApiServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain JSON body (every body the adapters build, datetimes included) is encoded once by
    orjson without the official client's per-value `sanitize_for_serialization` walk (issue 17
    points 2 and 7); a client model is still sanitised; all arrive as written."""
    with build_api_client(str(apiserver.kubeconfig)) as api:
        transport = KubeTransport(api)
        walked: list[object] = []
        sanitize = api.sanitize_for_serialization
        monkeypatch.setattr(
            api, "sanitize_for_serialization", lambda obj: walked.append(obj) or sanitize(obj)
        )
        path = "/api/v1/namespaces/default/configmaps"
        plain = {"metadata": {"name": "plain"}, "data": {"k": "v"}}
        assert transport.request("POST", path, what="create", body=plain)["data"] == {"k": "v"}
        moment = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        dated = {"metadata": {"name": "dated"}, "data": {"when": moment}}
        created = transport.request("POST", path, what="create", body=dated)
        assert created["data"] == {"when": moment.isoformat()}
        assert not any(obj is body for obj in walked for body in (plain, dated))
        model = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="model"), data={"k": "model"})
        assert transport.request("POST", path, what="create", body=model)["data"] == {"k": "model"}
        assert any(obj is model for obj in walked)
        for name in ("plain", "dated", "model"):
            transport.request("DELETE", f"{path}/{name}", what="delete")


EXEC_PLUGIN = """
import json, sys
with open(sys.argv[1], "a") as runs:
    runs.write("run\\n")
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1beta1",
    "kind": "ExecCredential",
    "status": {"token": sys.argv[2], "expirationTimestamp": "2020-01-01T00:00:00Z"},
}))
"""


@pytest.mark.sandbox_only(reason="the exec plugin hands out the sandbox's token (apiserver.admin_token)")
def test_an_expired_exec_token_is_renewed_at_most_once_a_second(
    apiserver: ApiServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader's refresh hook ran the exec plugin again before every request (its token is
    expired); now at most once per TOKEN_REFRESH_EVERY, the clock frozen here (issue 17 point 2)."""
    now = [1000.0]
    monkeypatch.setattr(kube_client, "_clock", lambda: now[0])
    runs, plugin = tmp_path / "runs", tmp_path / "plugin.py"
    plugin.write_text(EXEC_PLUGIN, encoding="utf-8")
    document = yaml.safe_load(Path(str(apiserver.kubeconfig)).read_text(encoding="utf-8"))
    exec_config = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": sys.executable,
        "args": [str(plugin), str(runs), apiserver.admin_token],
        "interactiveMode": "Never",
    }
    document["users"] = [{"name": u["name"], "user": {"exec": exec_config}} for u in document["users"]]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(document), encoding="utf-8")

    def count() -> int:
        return len(runs.read_text(encoding="utf-8").splitlines())

    configuration = load_configuration(str(kubeconfig))
    loaded = count()
    with client.ApiClient(configuration) as api:
        transport = KubeTransport(api)
        for _ in range(5):
            transport.request("GET", "/api/v1/namespaces/default", what="get a namespace")
        assert count() == loaded + 1  # the first request renewed the expired token; four reused it
        now[0] += kube_client.TOKEN_REFRESH_EVERY
        transport.request("GET", "/api/v1/namespaces/default", what="get a namespace")
        assert count() == loaded + 2


def test_requests_go_straight_to_the_servers_pool_and_survive_its_close(
    apiserver: ApiServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests to the configured server skip the pool manager's per-request URL parse and pool
    lookup (issue 17 point 2); a target parsing would change still goes through it; after
    `ApiClient.close` closes the pools, the next request opens a new one."""
    with build_api_client(str(apiserver.kubeconfig)) as api:
        transport = KubeTransport(api)
        manager = api.rest_client.pool_manager
        through_manager: list[str] = []
        urlopen = manager.urlopen
        monkeypatch.setattr(
            manager,
            "urlopen",
            lambda method, url, **kw: through_manager.append(url) or urlopen(method, url, **kw),
        )
        path = "/api/v1/namespaces/default/configmaps"
        created = transport.request("POST", path, what="create", body={"metadata": {"name": "direct"}})
        assert created["metadata"]["name"] == "direct"
        listed = transport.request(
            "GET", path, what="list", query={"labelSelector": "a.b/c!=d", "limit": "5"}
        )
        assert "direct" in {item["metadata"]["name"] for item in listed["items"]}
        assert through_manager == []
        api.rest_client.pool_manager.clear()  # what ApiClient.close does
        assert transport.request("GET", f"{path}/direct", what="get")["metadata"]["name"] == "direct"
        assert through_manager == []
        # A dot segment: the pool manager's parse removes it, as it always did.
        assert transport.request("GET", f"{path}/./direct", what="get")["metadata"]["name"] == "direct"
        assert len(through_manager) == 1
        transport.request("DELETE", f"{path}/direct", what="delete")
        assert len(through_manager) == 1
