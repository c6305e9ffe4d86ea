"""What a new cluster holds before anyone writes: the system namespaces and the bootstrap RBAC.

Holds bootstrap(cluster): the `default`, `kube-system`, `kube-public` and `kube-node-lease`
namespaces, and the ClusterRoles and ClusterRoleBindings of bootstrap_roles.yaml (the real rules
of kube-apiserver's bootstrap policy), aggregation applied. Holds no server and no HTTP.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from . import rbac
from .cluster import Cluster

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
ADMIN_USER = rbac.UserInfo("sandbox-admin", ("system:masters", "system:authenticated"))


def _policy() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("bootstrap_roles.yaml").read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def bootstrap(cluster: Cluster) -> None:
    """Fill an empty cluster as kube-apiserver's first start does."""
    namespaces = cluster.registry.get("", "v1", "namespaces")
    roles = cluster.registry.get(rbac.RBAC, "v1", "clusterroles")
    bindings = cluster.registry.get(rbac.RBAC, "v1", "clusterrolebindings")
    # Built in, so always registered.
    assert namespaces is not None
    assert roles is not None
    assert bindings is not None
    for name in SYSTEM_NAMESPACES:
        cluster.create(namespaces, "", {"metadata": {"name": name}}, ADMIN_USER)
    policy = _policy()
    autoupdate = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    # Bindings first: the escalation check of the roles then sees cluster-admin bound to the admin.
    for binding in policy["clusterRoleBindings"]:
        binding["metadata"]["labels"] = {"kubernetes.io/bootstrapping": "rbac-defaults"}
        binding["metadata"]["annotations"] = dict(autoupdate)
        cluster.store.put(rbac.CLUSTER_ROLE_BINDINGS, _complete(cluster, bindings.kind, binding))
    for role in policy["clusterRoles"]:
        role["metadata"]["annotations"] = dict(autoupdate)
        cluster.store.put(rbac.CLUSTER_ROLES, _complete(cluster, roles.kind, role))
    cluster.refresh_aggregation()


def _complete(cluster: Cluster, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    rtype = cluster.registry.by_kind(rbac.RBAC + "/v1", kind)
    assert rtype is not None
    return cluster.prepare_new(rtype, "", obj)
