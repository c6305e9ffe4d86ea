"""KubeAdapter under failure: bounded retries with Retry-After, errors as values, least privilege."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from entra_rbac.adapters.kube import KubeAdapter, errors
from entra_rbac.errors import KubeError
from entra_rbac_sandbox.kube.server import ApiServerThread

from .conftest import RecordingTransport
from .test_kube_bindings import OWNER, binding, create_namespace

pytestmark = pytest.mark.sandbox_only(
    reason="fault injection and request counts (/_sandbox/...) exist on the sandbox only"
)


async def test_throttled_list_is_retried_after_the_servers_retry_after(
    apiserver: ApiServerThread, adapter: KubeAdapter, transport: RecordingTransport
) -> None:
    apiserver.faults.add_fault("^/api/v1/namespaces$", method="GET", status=429, retry_after=2, count=2)
    namespaces = await adapter.list_namespaces()
    assert "default" in {ns.name for ns in namespaces}
    assert transport.slept == [2.0, 2.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retried_with_backoff_then_succeed(
    apiserver: ApiServerThread, adapter: KubeAdapter, transport: RecordingTransport, status: int
) -> None:
    apiserver.faults.add_fault("/clusterrolebindings$", method="POST", status=status, count=1)
    await adapter.create_binding(binding("ClusterRoleBinding", "egb:team:clusterrole:view"))
    assert len(transport.slept) == 1
    assert await adapter.get_binding("ClusterRoleBinding", None, "egb:team:clusterrole:view") is not None


async def test_retries_are_bounded_and_the_last_error_is_raised(
    apiserver: ApiServerThread, adapter: KubeAdapter, transport: RecordingTransport
) -> None:
    apiserver.faults.add_fault("/rolebindings$", method="GET", status=503, count=-1)
    with pytest.raises(KubeError) as caught:
        await adapter.list_owned_bindings(OWNER)
    assert caught.value.status == 503
    assert len(transport.slept) == transport.retries
    assert apiserver.faults.count("GET", "/rolebindings$") == transport.retries + 1


async def test_a_long_retry_after_is_not_waited_for(
    apiserver: ApiServerThread, adapter: KubeAdapter, transport: RecordingTransport
) -> None:
    apiserver.faults.add_fault("^/api/v1/namespaces$", method="GET", status=429, retry_after=60, count=1)
    with pytest.raises(KubeError) as caught:
        await adapter.list_namespaces()
    assert (caught.value.status, caught.value.reason) == (429, errors.TOO_MANY_REQUESTS)
    assert transport.slept == []  # 60 s is beyond the budget: fail now, the reconciler retries later


async def test_a_dropped_connection_is_unavailable_and_retried(
    apiserver: ApiServerThread, adapter: KubeAdapter, transport: RecordingTransport
) -> None:
    apiserver.faults.add_fault("^/api/v1/namespaces$", method="GET", drop=True, count=1)
    assert await adapter.list_namespaces()
    assert len(transport.slept) == 1


async def test_an_unreachable_api_server_is_unavailable() -> None:
    from kubernetes import client

    configuration = client.Configuration(host="https://127.0.0.1:9")  # nothing listens on port 9
    with client.ApiClient(configuration) as api:
        transport = RecordingTransport(api)
        transport.retries = 1
        with pytest.raises(KubeError) as caught:
            await KubeAdapter(transport).list_namespaces()
    assert (caught.value.status, caught.value.reason) == (None, errors.UNAVAILABLE)
    assert len(transport.slept) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_client_errors_are_not_retried(
    apiserver: ApiServerThread, adapter: KubeAdapter, transport: RecordingTransport, status: int
) -> None:
    apiserver.faults.add_fault("^/api/v1/namespaces$", method="GET", status=status, count=1)
    with pytest.raises(KubeError) as caught:
        await adapter.list_namespaces()
    assert caught.value.status == status
    assert transport.slept == []


async def test_a_least_privileged_identity_is_refused_as_on_a_real_cluster(
    adapter: KubeAdapter, adapter_as: Callable[..., KubeAdapter]
) -> None:
    await create_namespace(adapter, "payments")
    nobody = adapter_as("system:serviceaccount:team:nobody")
    with pytest.raises(KubeError) as listing:
        await nobody.list_namespaces()
    assert (listing.value.status, listing.value.reason) == (403, errors.FORBIDDEN)
    with pytest.raises(KubeError) as creating:
        await nobody.create_binding(binding("RoleBinding", "egb:team:clusterrole:edit", namespace="payments"))
    assert (creating.value.status, creating.value.reason) == (403, errors.FORBIDDEN)
    assert "forbidden" in str(creating.value).lower()


async def test_binding_a_role_needs_bind_or_its_permissions(
    adapter: KubeAdapter, adapter_as: Callable[..., KubeAdapter]
) -> None:
    """An identity that may write RoleBindings, but not hold or bind `admin`, cannot grant it."""
    await create_namespace(adapter, "payments")
    writer_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "binding-writer"},
        "rules": [
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["rolebindings"],
                "verbs": ["create", "get", "list"],
            },
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["clusterroles"],
                "verbs": ["bind"],
                "resourceNames": ["view"],
            },
        ],
    }
    await adapter._call(
        "POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", what="create ClusterRole", body=writer_role
    )
    grant = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "binding-writer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "binding-writer"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "writer"}],
    }
    await adapter.create_binding(grant)
    writer = adapter_as("writer")
    await writer.create_binding(
        binding("RoleBinding", "egb:team:clusterrole:view", namespace="payments", role="view")
    )
    with pytest.raises(KubeError) as caught:
        await writer.create_binding(
            binding("RoleBinding", "egb:team:clusterrole:admin", namespace="payments", role="admin")
        )
    assert (caught.value.status, caught.value.reason) == (403, errors.FORBIDDEN)
