"""`entra-rbac run` as a real process against the sandbox API server and Entra directory.

Proves the runtime pieces, not the reconcile (tests/e2e does that): it logs in with the given
kubeconfig, becomes live, serves metrics, logs JSON without the secret, reconciles a resource
through the handlers, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac_sandbox.entra.server import EntraSandboxThread
from entra_rbac_sandbox.kube.server import ApiServerThread

from .conftest import egb_crd_manifest

T = TypeVar("T")
GROUP_ID = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
ENTRA_RBAC = Path(sys.executable).parent / "entra-rbac"
# kopf's record of what it handled: in status (written with the reconcile's status), never in
# annotations under kopf.zalando.org or the operator's own prefix.
LAST_HANDLED = "lastHandledConfiguration"
KOPF_PREFIXES = ("kopf.zalando.org", "operator.entra-rbac.io/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], *, timeout: float = 30.0, what: str) -> T:
    """Poll `check` until it returns a truthy value; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)  # polling a condition with a deadline
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def http_get(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None


@pytest.fixture
def operator_process(
    apiserver: ApiServerThread, entra_directory: EntraSandboxThread, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    entra_directory.write_directory(
        {
            "groups": [
                {"id": GROUP_ID, "displayName": "Payments Developers", "securityEnabled": True, "members": []}
            ]
        }
    )
    metrics_port, health_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_RBAC_", "AZURE_", "KUBERNETES_"))},
        **entra_directory.env("client-secret"),
        "ENTRA_RBAC_METRICS_PORT": str(metrics_port),
        "ENTRA_RBAC_HEALTH_PORT": str(health_port),
        "ENTRA_RBAC_LOG_FORMAT": "json",
        "ENTRA_RBAC_REFRESH_INTERVAL": "1m",
        # The runtime alone, against a bare API server without kopf's peering CRD (the peering
        # itself is proven in tests/e2e/test_reliability_peering.py): standalone, by explicit choice.
        "ENTRA_RBAC_STANDALONE": "true",
    }
    log_path = tmp_path / "operator.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(ENTRA_RBAC), "run", "--kubeconfig", str(apiserver.kubeconfig)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield {
                "process": process,
                "log": log_path,
                "metrics": f"http://127.0.0.1:{metrics_port}/metrics",
                "health": f"http://127.0.0.1:{health_port}/healthz",
                "secret": entra_directory.client_secret,
            }
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


async def test_run_goes_live_reconciles_and_stops_cleanly_on_sigterm(
    operator_process: dict[str, Any], adapter: KubeAdapter
) -> None:
    await adapter._call(
        "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", what="CRD", body=egb_crd_manifest()
    )
    _, health = wait_for(lambda: http_get(operator_process["health"]), what="the liveness endpoint")
    assert "seconds_since_verified_directory_read" in json.loads(health)
    resource = {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "payments"},
        "spec": {"groups": [{"id": GROUP_ID}], "clusterRoleBindings": [{"clusterRole": "view"}]},
    }
    created = await adapter._call(
        "POST", "/apis/entra-rbac.io/v1alpha1/entragroupbindings", what="EGB", body=resource
    )
    uid = created["metadata"]["uid"]

    deadline = time.monotonic() + 30
    while not await adapter.list_owned_bindings(uid):
        assert time.monotonic() < deadline, (
            "no binding within 30s; log:\n" + operator_process["log"].read_text()[-3000:]
        )
        await asyncio.sleep(0.1)  # polling a condition with a deadline

    status, body = wait_for(lambda: http_get(operator_process["metrics"]), what="metrics")
    assert status == 200
    assert "entra_rbac_reconciles_total" in body
    assert "entra_rbac_graph_requests_total" in body

    # kopf's record of the handling is in status once the handler has returned.
    current = await adapter.get_resource("payments")
    deadline = time.monotonic() + 30
    while LAST_HANDLED not in ((current or {}).get("status") or {}):
        assert time.monotonic() < deadline, f"kopf never recorded the handling: {current}"
        await asyncio.sleep(0.1)  # polling a condition with a deadline
        current = await adapter.get_resource("payments")
    assert current is not None
    # No finalizer: deleting a resource must never wait for the operator (GC removes bindings).
    assert not current["metadata"].get("finalizers")
    annotations = current["metadata"].get("annotations", {})
    assert not [key for key in annotations if key.startswith(KOPF_PREFIXES)], annotations

    process: subprocess.Popen[bytes] = operator_process["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    lines = operator_process["log"].read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(record.get("message") == "Starting operator" for record in records)
    assert operator_process["secret"] not in operator_process["log"].read_text()


@pytest.mark.sandbox_only(reason="apiserver.drop_watches")
async def test_watches_dropped_by_the_api_server_resume_and_namespaces_are_still_followed(
    operator_process: dict[str, Any], adapter: KubeAdapter, apiserver: ApiServerThread
) -> None:

    await adapter._call(
        "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", what="CRD", body=egb_crd_manifest()
    )
    wait_for(lambda: http_get(operator_process["health"]), what="the liveness endpoint")
    resource = {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "selected"},
        "spec": {
            "groups": [{"id": GROUP_ID}],
            "roleBindings": [
                {"clusterRole": "view", "namespaceSelector": {"matchLabels": {"team": "payments"}}}
            ],
        },
    }
    created = await adapter._call(
        "POST", "/apis/entra-rbac.io/v1alpha1/entragroupbindings", what="EGB", body=resource
    )
    uid = created["metadata"]["uid"]
    await adapter._call("POST", "/api/v1/namespaces", what="namespace", body={"metadata": {"name": "before"}})

    async def wait_bound(namespace: str) -> None:
        deadline = time.monotonic() + 30
        while namespace not in {
            b["metadata"].get("namespace") for b in await adapter.list_owned_bindings(uid)
        }:
            assert time.monotonic() < deadline, (
                f"no binding in {namespace}; log:\n" + operator_process["log"].read_text()[-3000:]
            )
            await asyncio.sleep(0.1)  # polling a condition with a deadline

    # Wait until the operator has seen the namespace (its first reconcile ran), then cut every watch.
    deadline = time.monotonic() + 30
    while not (await adapter.get_resource("selected") or {}).get("status"):
        assert time.monotonic() < deadline, "the resource was never reconciled"
        await asyncio.sleep(0.1)  # polling a condition with a deadline
    assert apiserver.drop_watches() > 0
    merge = "application/merge-patch+json"
    body = {"metadata": {"labels": {"team": "payments"}}}
    await adapter._call("PATCH", "/api/v1/namespaces/before", what="label", body=body, content_type=merge)
    await wait_bound("before")
