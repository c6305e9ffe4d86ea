"""End to end, issue 18 point 4 (reliability, tests/e2e/reliability.py): a namespace admin forges a
binding carrying a resource's marks (docs/design.md, Ownership): never counted, never holds a
revocation, deleted as cleanup, status untouched, and attributed to nobody by explain and report;
on the sandbox and on the real control plane.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from entra_rbac.cli import kubectl_entra
from tests.e2e.harness import Cluster
from tests.e2e.reliability import ALICE, BOB, TEAM, directory

pytestmark = pytest.mark.e2e


RB = ("RoleBinding", "payments", "egb:victim:clusterrole:edit")
FORGED_NAME = "egb:victim:clusterrole:view"


def victim() -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "victim"},
        "spec": {
            "groups": [{"id": TEAM}],
            "subjects": {"kind": "User"},
            "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
        },
    }


def forgery(uid: str, name: str = FORGED_NAME, role: str = "view") -> dict[str, Any]:
    """What mallory, admin of team-b only, can write there: the victim's marks (its uid is
    readable by anyone who may view it) and twenty subjects of her choice."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": name,
            "namespace": "team-b",
            "labels": {"app.kubernetes.io/managed-by": "entra-rbac-operator", "entra-rbac.io/owner-uid": uid},
            "ownerReferences": [
                {
                    "apiVersion": "entra-rbac.io/v1alpha1",
                    "kind": "EntraGroupBinding",
                    "name": "victim",
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"friend{n}@contoso.com"}
            for n in range(20)
        ],
    }


def mallory_admins_team_b(cluster: Cluster) -> None:
    """Alice and bob in the directory; namespaces payments and team-b; mallory admin of team-b only."""
    cluster.directory(directory(ALICE, BOB))
    cluster.namespace("payments")
    cluster.namespace("team-b")
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "mallory-admin", "namespace": "team-b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
        }
    )


def forge(cluster: Cluster, uid: str, body: dict[str, Any] | None = None) -> bool:
    """Mallory creates the forgery (as herself, by impersonation); False if it is still there."""
    done = cluster.kubectl(
        "--as", "mallory", "create", "-f", "-", stdin=yaml.safe_dump(body or forgery(uid)), check=False
    )
    if done.returncode != 0 and "AlreadyExists" not in done.stderr:
        raise AssertionError(f"mallory could not forge: {done.stderr}")
    return done.returncode == 0


def forged_exists(cluster: Cluster, name: str = FORGED_NAME) -> bool:
    listed = cluster.rbac.list_namespaced_role_binding("team-b").items
    return any(item.metadata.name == name for item in listed)


def test_a_forged_binding_never_holds_a_revocation_nor_touches_status(cluster: Cluster) -> None:
    """Issue 18 point 4: a namespace admin elsewhere forges the victim's marks, and re-forges
    every second while a user is removed in Entra; the user loses access at the next read."""
    mallory_admins_team_b(cluster)
    cluster.apply(victim())
    cluster.wait_ready("victim")
    uid = cluster.egb("victim")["metadata"]["uid"]
    status = cluster.egb("victim")["status"]
    requests = cluster.requests
    requests.reset()

    assert forge(cluster, uid)
    cluster.wait_for("the forgery deleted as cleanup", lambda: not forged_exists(cluster))
    assert requests.count("DELETE", r"/namespaces/team-b/rolebindings/") >= 1
    assert cluster.operator_writes(r"/status$") == 0  # the victim's status never moved
    assert cluster.egb("victim")["status"]["summary"] == status["summary"]
    assert any(
        e.get("reason") == "Revoked" and "deleted RoleBinding team-b/" in (e.get("message") or "")
        for e in cluster.events("victim")
    )

    cluster.directory(directory(ALICE))  # bob leaves the group
    reasons: set[str] = set()
    deadline = time.monotonic() + 60
    while cluster.subjects(*RB) != ["alice@contoso.com"]:
        assert time.monotonic() < deadline, f"bob still bound; reasons seen {reasons}\n{cluster.log_tail()}"
        forge(cluster, uid)
        reasons.add(cluster.condition("victim").get("reason", ""))
        time.sleep(0.5)  # mallory's pace, not a wait for the operator
    assert "RevocationHeld" not in reasons
    assert not cluster.can_i_within(
        False, "create", "configmaps", user="bob@contoso.com", namespace="payments"
    )
    assert cluster.egb("victim")["status"].get("revocationHold") is None
    cluster.wait_for("the last forgery deleted", lambda: not forged_exists(cluster))


TARGET_IN_TEAM_B = "egb:victim:clusterrole:edit"


def reforge_at_target(cluster: Cluster) -> None:
    """Mallory rewrites the victim's binding in team-b in place (its marks untouched, so it cannot be
    told from the operator's): its subjects as they stand and twenty friends of her own."""
    subjects = [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": n}
        for n in [*cluster.subjects(*RB), *(f"friend{n}@contoso.com" for n in range(20))]
    ]
    cluster.kubectl(
        "--as",
        "mallory",
        "-n",
        "team-b",
        "patch",
        "rolebinding",
        TARGET_IN_TEAM_B,
        "--type",
        "merge",
        "-p",
        json.dumps({"subjects": subjects}),
    )


def test_a_forgery_at_a_target_is_healed_and_never_holds_a_revocation(cluster: Cluster) -> None:
    """docs/design.md, Ownership: at a target, a forgery with exactly the operator's marks cannot
    be told from its binding, so it is patched back; the subjects it added were never derived from
    Entra, so their removal is no revocation the guard weighs, and mallory, admin of team-b only,
    cannot keep a user removed in Entra bound in payments by re-forging."""
    mallory_admins_team_b(cluster)
    body = victim()
    body["spec"]["roleBindings"][0]["namespaces"] = ["payments", "team-b"]
    cluster.apply(body)
    cluster.wait_ready("victim")
    both = ["alice@contoso.com", "bob@contoso.com"]
    assert cluster.subjects("RoleBinding", "team-b", TARGET_IN_TEAM_B) == both

    reforge_at_target(cluster)
    cluster.wait_for(
        "the forgery patched back to the resource's subjects",
        lambda: cluster.subjects("RoleBinding", "team-b", TARGET_IN_TEAM_B) == both,
    )
    assert cluster.condition("victim").get("reason") != "RevocationHeld"

    cluster.directory(directory(ALICE))  # bob leaves the group
    reasons: set[str] = set()
    deadline = time.monotonic() + 60
    while cluster.subjects(*RB) != ["alice@contoso.com"]:
        assert time.monotonic() < deadline, f"bob still bound; reasons seen {reasons}\n{cluster.log_tail()}"
        reforge_at_target(cluster)
        reasons.add(cluster.condition("victim").get("reason", ""))
        time.sleep(0.5)  # mallory's pace, not a wait for the operator
    assert "RevocationHeld" not in reasons
    assert not cluster.can_i_within(
        False, "create", "configmaps", user="bob@contoso.com", namespace="payments"
    )
    assert cluster.egb("victim")["status"].get("revocationHold") is None
    cluster.wait_for(
        "team-b's binding back to the resource's subjects",
        lambda: cluster.subjects("RoleBinding", "team-b", TARGET_IN_TEAM_B) == ["alice@contoso.com"],
    )


FORGED_SHARD = "egb:victim:clusterrole.7:edit"


def test_a_forged_shard_at_the_one_target_never_holds_a_revocation_nor_touches_status(
    cluster: Cluster,
) -> None:
    """docs/design.md, Ownership: the victim grants edit in team-b only, as one binding; mallory,
    admin there, forges shard 7 of it with twenty friends. Counted, its deletion would remove 20
    of 22 subjects granted at every place (there is one): a hold. It is a shard the operator never
    wrote: a stray, deleted as cleanup, status untouched, and bob, removed in Entra while she
    re-forges, loses access at the next read."""
    mallory_admins_team_b(cluster)
    body = victim()
    body["spec"]["roleBindings"][0]["namespaces"] = ["team-b"]
    cluster.apply(body)
    cluster.wait_ready("victim")
    uid = cluster.egb("victim")["metadata"]["uid"]
    summary = cluster.egb("victim")["status"]["summary"]
    shard = forgery(uid, FORGED_SHARD, "edit")
    requests = cluster.requests
    requests.reset()

    assert forge(cluster, uid, shard)
    cluster.wait_for("the forged shard deleted as cleanup", lambda: not forged_exists(cluster, FORGED_SHARD))
    assert cluster.operator_writes(r"/status$") == 0  # the victim's status never moved
    assert cluster.egb("victim")["status"]["summary"] == summary
    assert cluster.condition("victim").get("reason") == "Reconciled"

    cluster.directory(directory(ALICE))  # bob leaves the group
    reasons: set[str] = set()
    deadline = time.monotonic() + 60
    while cluster.subjects("RoleBinding", "team-b", TARGET_IN_TEAM_B) != ["alice@contoso.com"]:
        assert time.monotonic() < deadline, f"bob still bound; reasons seen {reasons}\n{cluster.log_tail()}"
        forge(cluster, uid, shard)
        reasons.add(cluster.condition("victim").get("reason", ""))
        time.sleep(0.5)  # mallory's pace, not a wait for the operator
    assert "RevocationHeld" not in reasons
    assert cluster.egb("victim")["status"].get("revocationHold") is None
    cluster.wait_for("the last forged shard deleted", lambda: not forged_exists(cluster, FORGED_SHARD))
    assert cluster.egb("victim")["status"]["summary"]["subjects"] == 1


def entra(cluster: Cluster, *args: str) -> str:
    """`kubectl entra ...` as a user runs it, against this cluster (no Entra settings)."""
    env: dict[str, str | None] = {
        "KUBECONFIG": str(cluster.sandbox.kubeconfig),
        "ENTRA_RBAC_TENANT_ID": None,
        "AZURE_TENANT_ID": None,
    }
    result = CliRunner().invoke(kubectl_entra, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_explain_and_report_attribute_a_forgery_to_nobody(cluster: Cluster) -> None:
    """docs/design.md, Ownership: explain and report decide whose a binding is as the reconcile does.
    The victim suspended (so the stray is not deleted at once), mallory's forgery in team-b stands;
    explain says it claims the victim without being one of its targets, report lists it as a stray,
    and no answer attributes her friends' access to the victim or its Entra group."""
    mallory_admins_team_b(cluster)
    body = victim()
    cluster.apply(body)
    cluster.wait_ready("victim")
    body["spec"]["suspend"] = True
    cluster.apply(body)
    cluster.wait_for("the victim suspended", lambda: cluster.condition("victim").get("reason") == "Suspended")
    summary = cluster.egb("victim")["status"]["summary"]
    uid = cluster.egb("victim")["metadata"]["uid"]
    assert forge(cluster, uid)

    report = json.loads(entra(cluster, "report", "--format", "json"))
    rows = report["rows"]
    assert {(r["section"], r["binding"], r["resource"], r["claimedBy"]) for r in rows if r["claimedBy"]} == {
        ("stray", f"RoleBinding team-b/{FORGED_NAME}", "", "victim")
    }
    assert report["counts"]["strayRows"] == 20
    managed = [r["subject"] for r in rows if r["section"] == "managed"]
    assert managed == ["alice@contoso.com", "bob@contoso.com"]

    every_path = json.loads(entra(cluster, "explain", "--user", "friend0@contoso.com", "-o", "json"))["paths"]
    # Besides the forgery, a real cluster's bootstrap bindings for every signed-in user
    # (system:basic-user, system:discovery, ...) grant her something; none is the victim's.
    assert all(p["managedBy"] is None and p["entraGroups"] == [] for p in every_path)
    paths = [p for p in every_path if p["name"] == FORGED_NAME]
    assert [(p["namespace"], p["name"]) for p in paths] == [("team-b", FORGED_NAME)]
    assert (
        "claims to be managed by EntraGroupBinding victim but is not one of its targets"
        in (paths[0]["notManagedBecause"])
    )
    text = entra(cluster, "explain", "--user", "alice@contoso.com", "-n", "payments")
    assert f"RoleBinding payments/{RB[2]}" in text
    assert "managed by EntraGroupBinding victim" in text
    assert cluster.egb("victim")["status"]["summary"] == summary  # the forgery counted nowhere

    body["spec"]["suspend"] = False
    cluster.apply(body)
    cluster.wait_for("the forgery deleted as cleanup", lambda: not forged_exists(cluster))
