"""End to end: a hand-made RoleBinding is handed over to an EntraGroupBinding (docs/migration.md).

The operator runs as a real process; access is checked through the API server's
SubjectAccessReview (`kubectl auth can-i`), polled throughout the hand-over.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.e2e.harness import Cluster, guid

pytestmark = pytest.mark.e2e

PAYMENTS = guid(100)
ALICE = {"id": guid(1), "userPrincipalName": "alice@contoso.com", "userType": "Member"}
NAME = "egb:payments:clusterrole:edit"
GROUP = {"id": PAYMENTS, "displayName": "Payments", "securityEnabled": True, "members": [guid(1)]}


def hand_made(adopt: str | None = None) -> dict[str, Any]:
    """The binding someone made by hand, at the name the resource targets, plus one extra user."""
    meta: dict[str, Any] = {"name": NAME, "namespace": "payments"}
    if adopt is not None:
        meta["annotations"] = {"entra-rbac.io/adopt": adopt}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": PAYMENTS},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol@contoso.com"},
        ],
    }


EGB = {
    "apiVersion": "entra-rbac.io/v1alpha1",
    "kind": "EntraGroupBinding",
    "metadata": {"name": "payments"},
    "spec": {
        "groups": [{"id": PAYMENTS}],
        "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
    },
}


def test_annotated_binding_is_adopted_without_a_moment_of_lost_access(cluster: Cluster) -> None:
    cluster.directory({"users": [ALICE], "groups": [GROUP]})
    cluster.namespace("payments")
    cluster.apply(hand_made())
    cluster.apply(EGB)
    cluster.wait_for("Conflict", lambda: "not adopted" in str(cluster.egb("payments").get("status")))

    # An annotation naming another resource is no hand-over.
    cluster.apply(hand_made(adopt="someone-else"))
    cluster.request_sync("payments")
    cluster.wait_for(
        "the refusal in status", lambda: "names 'someone-else'" in str(cluster.egb("payments").get("status"))
    )
    binding = cluster.kubectl("get", "rolebinding", "-n", "payments", NAME, "-o", "json").stdout
    assert "ownerReferences" not in binding

    answers: list[bool] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            answers.append(
                cluster.can_i(
                    "create", "configmaps", user="alice@contoso.com", groups=(PAYMENTS,), namespace="payments"
                )
            )

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        cluster.wait_for("a first SubjectAccessReview", lambda: answers)
        cluster.kubectl(
            "annotate", "rolebinding", "-n", "payments", NAME, "--overwrite", "entra-rbac.io/adopt=payments"
        )
        cluster.request_sync("payments")
        cluster.wait_ready("payments", timeout=60)
        adopted = cluster.wait_for(
            "the adopted binding", lambda: cluster.managed_bindings().get(("RoleBinding", "payments", NAME))
        )
        count = len(answers)
        cluster.wait_for("a SubjectAccessReview after adoption", lambda: len(answers) > count)
    finally:
        stop.set()
        poller.join(timeout=30)
    assert all(answers), f"access was lost during the hand-over: {answers}"
    assert adopted["metadata"]["ownerReferences"][0]["kind"] == "EntraGroupBinding"
    assert "entra-rbac.io/adopt" not in (adopted["metadata"].get("annotations") or {})
    assert [s["name"] for s in adopted["subjects"]] == [PAYMENTS]  # carol was not the resource's
    assert not cluster.can_i("create", "configmaps", user="carol@contoso.com", namespace="payments")
    assert "Adopted RoleBinding" in cluster.log_tail(400)
