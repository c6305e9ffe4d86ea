"""A binding too large to store, on both servers (docs/design.md, Subjects the operator emits):
the API server's 413 over 3 MiB of body, and etcd's 500 over 1.5 MiB of stored object, each
reaching the adapter as a `TooLargeError` that is not retried. Nothing is created."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.adapters.kube import KubeAdapter, errors

from .conftest import RecordingTransport
from .test_kube_bindings import binding

NAME = "egb:big:clusterrole:view"


def big(count: int) -> dict[str, Any]:
    manifest = binding("ClusterRoleBinding", NAME)
    manifest["subjects"] = [
        {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "User",
            "name": f"user{n:06d}@contoso.onmicrosoft.com",
        }
        for n in range(count)
    ]
    return manifest


async def test_a_body_over_the_api_servers_limit_is_refused_with_413(
    adapter: KubeAdapter, transport: RecordingTransport
) -> None:
    with pytest.raises(errors.TooLargeError) as caught:
        await adapter.create_binding(big(40_000))  # 3,960,221 bytes of compact JSON
    assert (caught.value.status, caught.value.reason) == (413, errors.TOO_LARGE)
    assert "Request entity too large: limit is 3145728" in str(caught.value)
    assert transport.slept == []  # not retried: the same body is refused again
    assert await adapter.get_binding("ClusterRoleBinding", None, NAME) is None


@pytest.mark.sandbox_diverges(reason="the sandbox stores no protobuf and does not model etcd's 1.5 MiB limit")
async def test_an_object_over_etcds_limit_is_refused_as_too_large(
    adapter: KubeAdapter, transport: RecordingTransport
) -> None:
    with pytest.raises(errors.TooLargeError) as caught:
        await adapter.create_binding(big(25_000))  # 2,475,221 bytes: under 3 MiB, over etcd's limit
    assert caught.value.status == 500
    assert "etcdserver: request is too large" in str(caught.value)
    assert transport.slept == []
    assert await adapter.get_binding("ClusterRoleBinding", None, NAME) is None
