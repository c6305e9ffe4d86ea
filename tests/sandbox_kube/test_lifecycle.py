"""Starting the server (async, thread, process), its kubeconfig, discovery and /version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml
from kubernetes import client

from entra_rbac_sandbox.kube.server import ApiServer, ApiServerThread

from .helpers import raw


async def test_the_async_server_serves_on_a_free_loopback_port() -> None:
    async with ApiServer(tls=False) as server:
        assert server.url.startswith("http://127.0.0.1:")
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.get(server.url + "/version") as response,
        ):
            assert response.status == 200
            assert (await response.json())["major"] == "1"


def test_two_servers_do_not_share_state(kube_api: client.ApiClient) -> None:
    client.CoreV1Api(kube_api).create_namespace({"metadata": {"name": "only-here"}})
    with ApiServerThread(tls=False) as other:
        names = other.call(
            lambda s: [o["metadata"]["name"] for o in s.cluster.store.list(("", "namespaces"))]
        )
    assert "only-here" not in names


@pytest.mark.sandbox_only(
    reason="the sandbox's bearer-token kubeconfig (the real admin signs in with a client certificate)"
)
def test_the_kubeconfig_names_the_admin_as_current_context(apiserver: ApiServerThread) -> None:
    assert apiserver.kubeconfig is not None
    config = yaml.safe_load(apiserver.kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    user = next(u for u in config["users"] if u["name"] == context["user"])
    assert user["user"]["token"] == apiserver.admin_token
    cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])["cluster"]
    assert cluster["server"] == apiserver.url
    assert (cluster.get("certificate-authority") is not None) == (apiserver.ca_file is not None)


def test_the_process_form_prints_one_ready_line_and_writes_a_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc" / "kubeconfig"
    command = [sys.executable, "-m", "entra_rbac_sandbox.kube", "--kubeconfig", str(kubeconfig)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"apiserver ready: kubeconfig={kubeconfig} url=https://127.0.0.1:"), line
        configuration = client.Configuration()
        from kubernetes import config

        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        with client.ApiClient(configuration) as api:
            assert len(client.CoreV1Api(api).list_namespace().items) == 4
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/api", "APIVersions"),
        ("/apis", "APIGroupList"),
        ("/api/v1", "APIResourceList"),
        ("/apis/rbac.authorization.k8s.io", "APIGroup"),
        ("/apis/rbac.authorization.k8s.io/v1", "APIResourceList"),
        ("/apis/events.k8s.io/v1", "APIResourceList"),
        ("/apis/apiextensions.k8s.io/v1", "APIResourceList"),
        ("/apis/authorization.k8s.io/v1", "APIResourceList"),
    ],
)
def test_discovery_documents(kube_api: client.ApiClient, path: str, kind: str) -> None:
    status, body = raw(kube_api, "GET", path)
    assert (status, body["kind"]) == (200, kind)


def test_discovery_lists_the_kinds_the_product_touches(kube_api: client.ApiClient) -> None:
    _, core = raw(kube_api, "GET", "/api/v1")
    assert {"namespaces", "namespaces/status", "configmaps", "serviceaccounts", "events"} <= {
        r["name"] for r in core["resources"]
    }
    _, rbac = raw(kube_api, "GET", "/apis/rbac.authorization.k8s.io/v1")
    assert {r["name"] for r in rbac["resources"]} == {
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    }


@pytest.mark.parametrize("path", ["/apis/nope.example.com/v1/things", "/nope", "/apis/nope.example.com"])
def test_paths_no_group_serves_are_a_plain_text_404(kube_api: client.ApiClient, path: str) -> None:
    assert raw(kube_api, "GET", path) == (404, "404 page not found\n")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nopes", "/apis/rbac.authorization.k8s.io/v1/nopes", "/apis/rbac.authorization.k8s.io/v9/roles"],
)
def test_unknown_resources_of_a_served_group_are_a_404_status(kube_api: client.ApiClient, path: str) -> None:
    assert raw(kube_api, "GET", path) == (
        404,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound",
            "details": {},
            "code": 404,
        },
    )


def test_a_shared_certificate_authority_is_used_when_given(tmp_path: Path) -> None:
    from entra_rbac_sandbox.common import tls

    ca = tls.generate(tmp_path / "shared")
    with ApiServerThread(ca=ca) as server:
        assert server.ca_file == ca.ca_file
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        configuration = client.Configuration()
        from kubernetes import config

        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        with client.ApiClient(configuration) as api:
            assert client.VersionApi(api).get_code().major == "1"
