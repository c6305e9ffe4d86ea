"""Fixtures for the Kubernetes adapter against the sandbox API server (real HTTPS, real client).

- `transport` / `adapter`: a `KubeTransport` / `KubeAdapter` built from the admin kubeconfig the
  way `entra-rbac run` builds them; `transport.slept` records the pauses between retries
  instead of sleeping (Retry-After is honoured without slowing the suite).
- `adapter_as(user, groups)`: the same for a least-privileged identity.
- `egb_crd`: installs a minimal EntraGroupBinding CRD (status subresource on) for status tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from entra_rbac.adapters.kube import KubeAdapter, KubeTransport, build_api_client
from entra_rbac.constants import GROUP, KIND, PLURAL, VERSION
from entra_rbac_sandbox.kube.server import ApiServerThread


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
