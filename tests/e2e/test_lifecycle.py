"""End to end: a platform team applies an EntraGroupBinding and access follows Entra.

The operator runs as a real process with deploy/'s least-privileged RBAC; every check goes
through the API server (kubectl, SubjectAccessReview via `kubectl auth can-i`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.harness import Cluster, guid

pytestmark = pytest.mark.e2e

PAYMENTS = guid(100)
ALICE = {"id": guid(1), "userPrincipalName": "alice@contoso.com", "userType": "Member"}
BOB = {"id": guid(2), "userPrincipalName": "bob@contoso.com", "userType": "Member"}


def directory(
    *, name: str = "Payments Developers", members: tuple[str, ...] = (guid(1),), deleted: bool = False
) -> dict[str, Any]:
    group = {
        "id": PAYMENTS,
        "displayName": name,
        "mailNickname": "payments-devs",
        "securityEnabled": True,
        "members": list(members),
    }
    if deleted:
        group["deleted"] = True
    return {"users": [ALICE, BOB], "groups": [group]}


def binding(name: str = "payments", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "groups": [{"id": PAYMENTS}],
        "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
    }
    body.update(spec)
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": body,
    }


RB = ("RoleBinding", "payments", "egb:payments:clusterrole:edit")


def test_create_grants_access_through_the_group(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding(clusterRoleBindings=[{"clusterRole": "view"}]))
    cluster.wait_ready("payments")

    assert cluster.subjects(*RB) == [PAYMENTS]
    assert cluster.can_i_within(
        True, "create", "configmaps", user="alice@contoso.com", groups=(PAYMENTS,), namespace="payments"
    )
    assert cluster.can_i_within(
        True, "list", "pods", user="alice@contoso.com", groups=(PAYMENTS,), namespace="default"
    )
    assert not cluster.can_i_within(
        False, "create", "configmaps", user="bob@contoso.com", namespace="payments"
    )
    status = cluster.egb("payments")["status"]
    assert status["groups"][0]["displayName"] == "Payments Developers"
    reasons = {e["reason"] for e in cluster.events("payments")}
    assert "Granted" in reasons, reasons


def test_display_name_is_resolved_then_pinned(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding(groups=[{"displayName": "Payments Developers"}]))
    cluster.wait_ready("payments")
    assert cluster.egb("payments")["status"]["groups"][0]["id"] == PAYMENTS

    # Renamed in Entra: the pinned id keeps the grant, status shows the new name, nothing is written.
    before = cluster.managed_bindings()[RB]["metadata"]["resourceVersion"]
    cluster.requests.reset()
    cluster.directory(directory(name="Payments Engineers"))
    cluster.wait_for(
        "the new display name in status",
        lambda: cluster.egb("payments")["status"]["groups"][0].get("displayName") == "Payments Engineers",
    )
    assert cluster.managed_bindings()[RB]["metadata"]["resourceVersion"] == before
    assert cluster.operator_writes(r"^/apis/rbac") == 0


def test_selected_namespaces_follow_their_labels(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.apply(
        binding(
            roleBindings=[{"clusterRole": "view", "namespaceSelector": {"matchLabels": {"team": "payments"}}}]
        )
    )
    cluster.wait_ready("payments")
    key = ("RoleBinding", "shop", "egb:payments:clusterrole:view")

    cluster.namespace("shop", {"team": "payments"})
    cluster.wait_for("a binding in the new labelled namespace", lambda: key in cluster.managed_bindings())
    cluster.kubectl("label", "namespace", "shop", "team-")
    cluster.wait_for("the binding to go with the label", lambda: key not in cluster.managed_bindings())
    # Reserved namespaces are never selected, even when labelled.
    cluster.kubectl("label", "namespace", "kube-system", "team=payments")
    cluster.namespace("shop2", {"team": "payments"})
    cluster.wait_for(
        "the second namespace", lambda: ("RoleBinding", "shop2", key[2]) in cluster.managed_bindings()
    )
    assert ("RoleBinding", "kube-system", key[2]) not in cluster.managed_bindings()


def test_bindings_changed_or_deleted_by_hand_are_healed(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding())
    cluster.wait_ready("payments")

    cluster.kubectl("delete", "rolebinding", "-n", "payments", RB[2])
    cluster.wait_for("the deleted binding back", lambda: cluster.subjects(*RB) == [PAYMENTS])

    mallory = {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory"}
    patch = json.dumps([{"op": "add", "path": "/subjects/-", "value": mallory}])
    cluster.kubectl("patch", "rolebinding", "-n", "payments", RB[2], "--type=json", "-p", patch)
    cluster.wait_for("the extra subject removed", lambda: cluster.subjects(*RB) == [PAYMENTS])
    assert not cluster.can_i_within(False, "create", "configmaps", user="mallory", namespace="payments")


def test_role_change_creates_the_new_binding_before_deleting_the_old(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding())
    cluster.wait_ready("payments")
    cluster.requests.reset()

    cluster.apply(binding(roleBindings=[{"clusterRole": "view", "namespaces": ["payments"]}]))
    new = ("RoleBinding", "payments", "egb:payments:clusterrole:view")
    cluster.wait_for("only the new binding", lambda: set(cluster.managed_bindings()) == {new})
    log = [(m, p) for m, p in cluster.requests.log() if m in ("POST", "DELETE")]
    created = log.index(("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings"))
    deleted = log.index(
        ("DELETE", f"/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings/{RB[2]}")
    )
    assert created < deleted, log


def test_deleted_group_is_revoked_and_restored_group_comes_back(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding())
    cluster.wait_ready("payments")

    cluster.directory(directory(deleted=True))
    cluster.wait_reason("payments", "GroupNotFound")
    cluster.wait_for("the binding revoked", lambda: RB not in cluster.managed_bindings())
    assert not cluster.can_i_within(
        False, "create", "configmaps", user="alice@contoso.com", groups=(PAYMENTS,), namespace="payments"
    )

    cluster.directory(directory())
    cluster.wait_ready("payments")
    assert cluster.subjects(*RB) == [PAYMENTS]


def test_directory_outage_revokes_nothing_and_says_so(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding())
    cluster.wait_ready("payments")
    before = cluster.managed_bindings()

    cluster.sandbox.entra.add_fault("/v1.0/", status=503, count=10_000)
    cluster.directory(directory(deleted=True))  # unseen: Graph is down
    cluster.request_sync("payments")
    condition = cluster.wait_reason("payments", "DirectoryUnavailable")
    assert condition["status"] == "False"
    assert "kept unchanged" in condition["message"]
    assert cluster.egb("payments")["status"]["groups"][0]["state"] == "Unverified"
    assert cluster.managed_bindings() == before


def test_deleting_the_resource_removes_every_binding(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding(clusterRoleBindings=[{"clusterRole": "view"}]))
    cluster.wait_ready("payments")
    assert len(cluster.managed_bindings()) == 2

    cluster.kubectl("delete", "egb", "payments", "--wait=true", "--timeout=30s")
    cluster.wait_for("no managed bindings", lambda: not cluster.managed_bindings() or None)


def test_foreign_binding_at_a_target_name_is_never_touched(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    foreign = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": RB[2], "namespace": "payments"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "someone"}],
    }
    cluster.apply(foreign)
    before = cluster.rbac.read_namespaced_role_binding(RB[2], "payments").metadata.resource_version
    cluster.apply(binding())
    condition = cluster.wait_reason("payments", "Conflict")
    assert RB[2] in condition["message"]
    after = cluster.rbac.read_namespaced_role_binding(RB[2], "payments")
    assert after.metadata.resource_version == before
    assert [s.name for s in after.subjects] == ["someone"]

    # Later syncs read the taken name instead of trying to create it again.
    if cluster.server != "cluster":  # an external cluster has no request counts
        cluster.requests.reset()
        reads = cluster.sandbox.entra.count()
        cluster.wait_for("two more syncs", lambda: cluster.sandbox.entra.count() >= reads + 2 or None)
        assert cluster.requests.count("POST", r"/rolebindings$") == 0, cluster.requests.counts()
        assert cluster.condition("payments")["reason"] == "Conflict"
    # Once the foreign object is gone, the operator creates its own.
    cluster.kubectl("delete", "rolebinding", "-n", "payments", RB[2])
    cluster.wait_for("our binding in its place", lambda: cluster.subjects(*RB) == [PAYMENTS])
    cluster.wait_ready("payments")


def test_invalid_resource_is_refused_with_the_field_named(cluster: Cluster) -> None:
    bad = binding(groups=[{"id": PAYMENTS, "displayName": "Payments Developers"}])
    done = cluster.apply(bad, check=False)
    assert done.returncode != 0
    assert "spec.groups[0]" in done.stderr, done.stderr


def test_idle_resync_writes_nothing(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding())
    cluster.wait_ready("payments")
    # Let the first timer ticks settle, then count: several refresh intervals (2 s) must write nothing.
    synced = cluster.egb("payments")["status"]["lastDirectorySync"]
    cluster.requests.reset()
    graph_before = cluster.sandbox.entra.count()
    cluster.wait_for(
        "three more directory reads", lambda: cluster.sandbox.entra.count() >= graph_before + 3, timeout=20
    )
    # Everything but kopf's peering heartbeat (docs/deployment.md, Never two writers).
    assert cluster.operator_writes(r"^/(?!apis/kopf\.dev/)") == 0, cluster.requests.counts()
    assert cluster.egb("payments")["status"]["lastDirectorySync"] == synced


def test_killed_operator_converges_after_restart(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.namespace("shop")
    cluster.apply(binding())
    cluster.wait_ready("payments")

    cluster.sandbox.stop_operator(kill=True)
    cluster.apply(binding(roleBindings=[{"clusterRole": "view", "namespaces": ["payments", "shop"]}]))
    cluster.kubectl("delete", "rolebinding", "-n", "payments", RB[2])
    cluster.sandbox.start_operator()
    wanted = {
        ("RoleBinding", "payments", "egb:payments:clusterrole:view"),
        ("RoleBinding", "shop", "egb:payments:clusterrole:view"),
    }
    cluster.wait_for("exactly the desired set", lambda: set(cluster.managed_bindings()) == wanted)
    cluster.wait_ready("payments")


def test_suspended_resource_leaves_bindings_exactly_as_they_are(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding())
    cluster.wait_ready("payments")
    before = cluster.managed_bindings()

    cluster.apply(binding(suspend=True))
    cluster.wait_reason("payments", "Suspended")
    cluster.directory(directory(deleted=True))
    cluster.request_sync("payments")
    cluster.wait_for("the sync request handled", lambda: cluster.sandbox.entra.count() > 0)
    assert cluster.managed_bindings() == before

    cluster.apply(binding(suspend=False))
    cluster.wait_reason("payments", "GroupNotFound")
    cluster.wait_for("the revocation after resuming", lambda: RB not in cluster.managed_bindings())


@pytest.mark.operator_env(ENTRA_RBAC_MAX_STALENESS="3s")
def test_fail_closed_after_max_staleness_when_configured(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding())
    cluster.wait_ready("payments")

    cluster.sandbox.entra.add_fault("/v1.0/", status=503, count=-1)
    cluster.wait_for(
        "every binding revoked after maxStaleness", lambda: not cluster.managed_bindings() or None, timeout=30
    )
    # The status is written after the deletes: wait for it rather than race it.
    condition = cluster.wait_for(
        "the status to say why",
        lambda: (c := cluster.condition("payments")) and "maxStaleness" in c["message"] and c,
    )
    assert condition["reason"] == "DirectoryUnavailable"
    assert condition["status"] == "False"


def test_resource_deletes_while_the_operator_is_down_and_bindings_are_collected(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding())
    cluster.wait_ready("payments")
    assert not cluster.egb("payments")["metadata"].get("finalizers")

    cluster.sandbox.stop_operator()
    cluster.kubectl("delete", "egb", "payments", "--timeout=20s")
    cluster.wait_for(
        "the garbage collector to remove the bindings", lambda: not cluster.managed_bindings() or None
    )
