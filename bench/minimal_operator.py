"""The minimal kopf operator: the baseline the convergence benchmark compares the operator with.

What a team would write in an afternoon for the same job without Entra: for each
EntraGroupBinding, one RoleBinding per (grant, namespace) with one Group subject per spec group,
owned by the resource, then a trivial status (Ready=True). No directory: a group named by
displayName gets a made-up id (uuid5 of the name) so the binding has the same shape. kopf's
defaults throughout (sync handler in kopf's executor, the official client, kopf's Events), so the
figure is what kopf plus the API server cost, the floor this project's operator is held to
(issue 17 point 2: within 1.3x of it). Only `roleBindings[].namespaces` and `clusterRole` grants
are honoured: the benchmark uses nothing else.

Run as `kopf run --standalone --all-namespaces bench/minimal_operator.py` with KUBECONFIG set; it
is a benchmark fixture, never part of the product.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import kopf
from kubernetes import client, config

GROUP, VERSION, PLURAL = "entra-rbac.io", "v1alpha1", "entragroupbindings"
RBAC = "rbac.authorization.k8s.io"
LABELS = {"app.kubernetes.io/managed-by": "minimal-operator"}
_api: list[client.RbacAuthorizationV1Api] = []


@kopf.on.startup()
def sign_in(**_: Any) -> None:
    config.load_kube_config()  # type: ignore[no-untyped-call]
    _api.append(client.RbacAuthorizationV1Api())


def _group_id(entry: dict[str, str]) -> str:
    return entry.get("id") or str(uuid.uuid5(uuid.NAMESPACE_URL, entry.get("displayName", "")))


def _binding(name: str, uid: str, role: str, group_ids: list[str]) -> dict[str, Any]:
    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "EntraGroupBinding", "name": name, "uid": uid}
    return {
        "metadata": {
            "name": f"egb:{name}:clusterrole:{role}",
            "labels": LABELS,
            "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}],
        },
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": g} for g in sorted(group_ids)],
    }


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile(spec: kopf.Spec, name: str, uid: str, meta: kopf.Meta, patch: kopf.Patch, **_: Any) -> None:
    rbac = _api[0]
    group_ids = [_group_id(dict(g)) for g in spec.get("groups", [])]
    written = 0
    for grant in spec.get("roleBindings", []):
        body = _binding(name, uid, grant["clusterRole"], group_ids)
        for namespace in grant.get("namespaces", []):
            try:
                # The client sends a JSON dict as it is (its signature names only the model):
                # building V1RoleBinding models would add CPU the plain operator does not spend.
                rbac.create_namespaced_role_binding(namespace, body)  # type: ignore[arg-type]
            except client.exceptions.ApiException as error:
                if error.status != 409:  # already there (a resume): leave it
                    raise
            written += 1
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch.status["observedGeneration"] = meta.get("generation")
    patch.status["conditions"] = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Reconciled",
            "message": f"{written} RoleBindings",
            "lastTransitionTime": now,
        }
    ]
