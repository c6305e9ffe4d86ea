"""Fixtures for the Kubernetes adapter against the sandbox API server (real HTTPS, real client).

- `transport` / `adapter`: a `KubeTransport` / `KubeAdapter` built from the admin kubeconfig the
  way `entra-rbac run` builds them; `transport.slept` records the pauses between retries
  instead of sleeping (Retry-After is honoured without slowing the suite).
- `adapter_as(user, groups)`: the same for a least-privileged identity.
- `apiserver`: differential, as in tests/sandbox_kube: each test runs on the sandbox and on the
  real kube-apiserver (param ids `sandbox` and `real`).
- `egb_crd`: installs a minimal EntraGroupBinding CRD (status subresource on) for status tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from entra_rbac.adapters.kube import KubeAdapter, KubeTransport, build_api_client
from entra_rbac.constants import GROUP, KIND, PLURAL, VERSION
from entra_rbac.errors import KubeError
from entra_rbac_sandbox.kube.server import ApiServerThread


@pytest.fixture
def apiserver(differential_apiserver: Any) -> Any:
    return differential_apiserver


class RecordingTransport(KubeTransport):
    def __init__(self, api_client: client.ApiClient) -> None:
        self.slept: list[float] = []
        super().__init__(api_client, sleep=self.slept.append)


@pytest.fixture
def transport(apiserver: ApiServerThread) -> Iterator[RecordingTransport]:
    with build_api_client(str(apiserver.kubeconfig)) as api:
        yield RecordingTransport(api)


@pytest.fixture
def adapter(transport: RecordingTransport) -> KubeAdapter:
    return KubeAdapter(transport)


@pytest.fixture
def adapter_as(apiserver: ApiServerThread, tmp_path: Path) -> Iterator[Callable[..., KubeAdapter]]:
    made: list[client.ApiClient] = []

    def make(user: str, groups: tuple[str, ...] = ()) -> KubeAdapter:
        apiserver.add_identity(user, list(groups))
        # ":" would split the path as a KUBECONFIG list.
        path = apiserver.write_kubeconfig(tmp_path / f"kubeconfig-{len(made)}", user=user)
        made.append(build_api_client(str(path)))
        return KubeAdapter(RecordingTransport(made[-1]))

    yield make
    for api in made:
        api.close()


def egb_crd_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {"plural": PLURAL, "singular": KIND.lower(), "kind": KIND, "shortNames": ["egb"]},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture
def egb_crd(transport: RecordingTransport) -> None:
    transport.request(
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        what="create CRD",
        body=egb_crd_manifest(),
    )
    # The real server establishes a CRD asynchronously: wait until its objects are served.
    deadline = time.monotonic() + 30
    while True:
        try:
            transport.request("GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}", what="list")
            return
        except KubeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling with a deadline
