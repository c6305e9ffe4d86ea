"""The launcher's install (`entra_rbac_sandbox.launcher.apply`, what every end-to-end test's
Sandbox sends first) on the sandbox API server: one request per object, on a new server and on
one that has the install already, and a re-install puts back what was changed by hand.
"""

from __future__ import annotations

from kubernetes import client

from entra_rbac_sandbox.kube.server import ApiServerThread
from entra_rbac_sandbox.launcher import (
    CRD_MANIFEST,
    PEERING_MANIFESTS,
    RBAC_MANIFESTS,
    apply,
    load_manifests,
    project_file,
)

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
ROLE = "entra-rbac-operator"  # deploy/clusterrole.yaml


def install() -> list[dict[str, object]]:
    files = [
        project_file("crds", CRD_MANIFEST),
        *(project_file("deploy", name) for name in (*PEERING_MANIFESTS, *RBAC_MANIFESTS)),
    ]
    return load_manifests(files)


def object_requests(apiserver: ApiServerThread) -> list[tuple[str, str]]:
    """(method, path) of every request but discovery (/api/v1, /apis/GROUP/VERSION) and the
    reads of a CRD waited for until Established."""
    return [
        (r.method, r.path)
        for r in apiserver.faults.request_log()
        if r.path != "/api/v1"
        and not (r.path.startswith("/apis/") and r.path.count("/") == 3)
        and not (r.method == "GET" and r.path.startswith(CRDS))
    ]


def test_the_install_sends_one_request_per_object_and_a_reinstall_restores_a_hand_edit(
    apiserver: ApiServerThread, kube_api: client.ApiClient
) -> None:
    documents = install()
    apiserver.faults.reset_requests()
    apply(kube_api, documents)
    created = object_requests(apiserver)
    assert [method for method, _ in created] == ["POST"] * len(documents), created

    rbac = client.RbacAuthorizationV1Api(kube_api)
    wanted = rbac.read_cluster_role(ROLE).rules
    rbac.patch_cluster_role(ROLE, {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
    assert rbac.read_cluster_role(ROLE).rules != wanted

    apiserver.faults.reset_requests()
    apply(kube_api, documents, existing=True)
    applied = object_requests(apiserver)
    assert [method for method, _ in applied] == ["PATCH"] * len(documents), applied
    assert rbac.read_cluster_role(ROLE).rules == wanted

    # Not told that it exists: a create answered 409, then the same one apply.
    apiserver.faults.reset_requests()
    apply(kube_api, documents)
    again = object_requests(apiserver)
    assert [method for method, _ in again] == ["POST", "PATCH"] * len(documents), again
