"""A watch from a compacted resourceVersion answers 410 Expired, on both servers (issue 8 item 6),
and the official client and kopf recover from it.

The real param is a control plane of this module's own, started with `--watch-cache=false`:
with its watch cache on (the session's server), kube-apiserver serves a recent resourceVersion
from the cache whatever etcd holds, and the cache keeps events for minutes. Without it a watch
reads etcd, and `ControlPlane.compact()` (etcd's compaction at its current revision, what
kube-apiserver does every 5 minutes) makes every older resourceVersion too old. The sandbox's
`compact()` forgets its event history likewise. The answers are compared with literals captured
from the real kube-apiserver v1.36.3.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from entra_rbac_sandbox.entra.server import EntraSandboxThread
from entra_rbac_sandbox.kube.server import ApiServerThread
from tests.controlplane.fixtures import oidc_issuer, started_control_plane
from tests.controlplane.harness import ControlPlane
from tests.fixtures.servers import SandboxServer, real_server

from .helpers import configmap, core, raw

# The real server words a too-old watch as etcd does without a watch cache, and as its watch
# cache does (`too old resource version: <asked> (<oldest kept>)`, which the sandbox emulates).
_ETCD_WORDING = "The resourceVersion for the provided watch is too old."
_CACHE_WORDING = re.compile(r"too old resource version: \d+ \(\d+\)")


@pytest.fixture(scope="module")
def uncached_control_plane(
    tmp_path_factory: pytest.TempPathFactory, entra_issuer: EntraSandboxThread
) -> Iterator[ControlPlane]:
    folder = tmp_path_factory.mktemp("controlplane-uncached")
    yield from started_control_plane(folder, oidc_issuer(entra_issuer), ("--watch-cache=false",))


@pytest.fixture(params=["sandbox", "real"])
def differential_apiserver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """This module's `apiserver`: a fresh sandbox, or the module's uncached real control plane."""
    if request.param == "sandbox":
        thread = ApiServerThread(tls=True, cert_dir=tmp_path / "pki", bookmark_interval=0.5)
        with thread:
            thread.write_kubeconfig(tmp_path / "kubeconfig")
            yield SandboxServer(thread, tmp_path)
        return
    with real_server(request.getfixturevalue("uncached_control_plane")) as server:
        yield server


def test_watch_from_a_compacted_version_is_410_expired(kube_api: client.ApiClient, apiserver: Any) -> None:
    api = core(kube_api)
    api.create_namespaced_config_map("default", configmap("exp-a"))
    version = api.list_namespaced_config_map("default").metadata.resource_version
    # Two writes: etcd keeps the revision it compacts at, and a watch from `version` starts at
    # the next one, so compaction must be at least two revisions later.
    for name in ("exp-b", "exp-b2"):
        api.create_namespaced_config_map("default", configmap(name))
    apiserver.compact()
    status, text = raw(
        kube_api,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        query=[("watch", "true"), ("resourceVersion", version), ("timeoutSeconds", "5")],
    )
    # One event decodes as a JSON document; several as lines.
    events = [text] if isinstance(text, dict) else [json.loads(line) for line in text.splitlines() if line]
    observed: dict[str, Any] = {"status": status, "events": events}
    for event in events:  # etcd's wording (the uncached real server) or the watch cache's (sandbox)
        message = event["object"].get("message", "")
        assert message == _ETCD_WORDING or _CACHE_WORDING.fullmatch(message), event
        event["object"]["message"] = "<too old>"
    # The official client raises the ERROR event as a 410 ApiException; a re-list and a watch from
    # the list's resourceVersion then see what comes next.
    with pytest.raises(client.ApiException) as raised:
        for _ in watch.Watch().stream(
            api.list_namespaced_config_map, "default", resource_version=version, timeout_seconds=5
        ):
            pass
    observed["client"] = raised.value.status
    fresh = api.list_namespaced_config_map("default").metadata.resource_version
    api.create_namespaced_config_map("default", configmap("exp-c"))
    resumed = []
    for event in watch.Watch().stream(
        api.list_namespaced_config_map, "default", resource_version=fresh, timeout_seconds=5
    ):
        resumed.append([event["type"], event["object"].metadata.name])
        break
    observed["resumed"] = resumed
    assert observed == EXPIRED


def test_a_continue_token_from_before_compaction_is_410(kube_api: client.ApiClient, apiserver: Any) -> None:
    api = core(kube_api)
    for name in ("exp-a", "exp-b", "exp-c"):
        api.create_namespaced_config_map("default", configmap(name))
    token = api.list_namespaced_config_map("default", limit=1).metadata._continue
    api.create_namespaced_config_map("default", configmap("exp-d"))
    apiserver.compact()
    status, body = raw(kube_api, "GET", "/api/v1/namespaces/default/configmaps", query=[("continue", token)])
    observed = {"status": status, "reason": body.get("reason"), "code": body.get("code")}
    assert observed == {"status": 410, "reason": "Expired", "code": 410}


# -- what the real kube-apiserver v1.36.3 answered (captured; the sandbox must match) ----------

EXPIRED: Any = {
    "status": 200,
    "events": [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "<too old>",
                "reason": "Expired",
                "code": 410,
            },
        }
    ],
    "client": 410,
    "resumed": [["ADDED", "exp-c"]],
}
