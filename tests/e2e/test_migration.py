"""End to end: hand-made bindings are migrated to EntraGroupBindings (docs/migration.md).

The operator runs as a real process; access is checked through the API server's
SubjectAccessReview (`kubectl auth can-i`), polled throughout the hand-over. The import walk runs
every command docs/migration.md gives, in its order: `kubectl entra import` (manifests, then the
`--annotate` and `--cleanup` scripts, run by `sh`), `kubectl entra plan`, `kubectl apply`,
`kubectl entra explain` and `report`.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from entra_rbac.cli import kubectl_entra
from entra_rbac_sandbox.launcher import kubectl_path
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
    assert not cluster.can_i_within(
        False, "create", "configmaps", user="carol@contoso.com", namespace="payments"
    )
    assert "Adopted RoleBinding" in cluster.log_tail(400)


# --- the import walk ------------------------------------------------------------------------------

TEAM = guid(110)
BOB = {"id": guid(111), "userPrincipalName": "bob@contoso.com", "userType": "Member"}
TEAM_GROUP = {"id": TEAM, "displayName": "Imported Team", "securityEnabled": True, "members": [BOB["id"]]}
RBAC = "rbac.authorization.k8s.io"
# Kept by an earlier `release-bindings` (the operator's own name): adopted in place by `imported`.
RELEASED = "egb:imported:clusterrole:admin"


def binding(
    kind: str, name: str, role: str, namespace: str | None = None, *extra: dict[str, str]
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": TEAM}, *extra],
    }


LEGACY = [
    binding("RoleBinding", "team-edit", "edit", "import-a"),
    binding("RoleBinding", "team-edit", "edit", "import-b"),
    binding("ClusterRoleBinding", "import-team-view", "view"),
    binding("RoleBinding", RELEASED, "admin", "import-c"),
    # Not importable whole: a ServiceAccount beside the group.
    binding(
        "RoleBinding",
        "team-and-ci",
        "view",
        "import-b",
        {"kind": "ServiceAccount", "name": "ci", "namespace": "import-b"},
    ),
    # User mode: bob by name, exactly the team's members.
    {
        **binding("RoleBinding", "bob-by-name", "view", "import-b"),
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "bob@contoso.com"}],
    },
]
# Bob's access through each hand-made binding (verb, resource, namespace, his groups), each
# granted by that one binding only (admin holds edit, edit holds view: hence three namespaces).
ACCESS = [
    ("create", "configmaps", "import-a", (TEAM,)),  # edit, team-edit
    ("create", "configmaps", "import-b", (TEAM,)),  # edit, team-edit
    ("list", "pods", "default", (TEAM,)),  # view, cluster-wide
    ("create", "rolebindings", "import-c", (TEAM,)),  # admin, the released binding
    ("list", "pods", "import-b", ()),  # view, bob-by-name (user mode)
]


def read_binding(cluster: Cluster, name: str, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = cluster.api.sanitize_for_serialization(
        cluster.rbac.read_namespaced_role_binding(name, namespace)
    )
    return found


def entra(cluster: Cluster, *args: str) -> tuple[int, str, str]:
    """`kubectl entra ...`, the plugin's real command code, signed in as the cluster admin."""
    env: dict[str, str | None] = {"KUBECONFIG": str(cluster.sandbox.kubeconfig), "ENTRA_RBAC_TENANT_ID": None}
    result = CliRunner().invoke(kubectl_entra, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_script(cluster: Cluster, script: str) -> None:
    """A script import printed, run by sh with kubectl on PATH and the admin's kubeconfig."""
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.sandbox.kubeconfig),
        "PATH": f"{Path(kubectl_path()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=360, check=False
    )
    assert done.returncode == 0, f"script failed: {done.stderr}\n{script}"


@contextmanager
def access_watch(cluster: Cluster) -> Iterator[Callable[[], list[tuple[str, str, str]]]]:
    """Ask the API server about every access of ACCESS in a loop; yields what was ever denied."""
    denied: list[tuple[str, str, str]] = []
    rounds = [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for verb, resource, namespace, groups in ACCESS:
                if not cluster.can_i(
                    verb, resource, user="bob@contoso.com", groups=groups, namespace=namespace
                ):
                    denied.append((verb, resource, namespace))
            rounds[0] += 1

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        cluster.wait_for("a first round of SubjectAccessReviews", lambda: rounds[0] > 0, 60)
        yield lambda: denied
        done = rounds[0]
        cluster.wait_for("a round of SubjectAccessReviews at the end", lambda: rounds[0] > done + 1, 60)
    finally:
        stop.set()
        poller.join(timeout=60)


def test_import_apply_adopt_and_clean_up_without_a_moment_of_lost_access(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.directory({"users": [BOB], "groups": [TEAM_GROUP]})
    cluster.namespace("import-a")
    cluster.namespace("import-b")
    cluster.namespace("import-c")
    cluster.apply(*LEGACY)
    directory = ("--directory", str(cluster.sandbox.directory))  # user mode reads the members
    released_uid = read_binding(cluster, RELEASED, "import-c")["metadata"]["uid"]
    try:
        with access_watch(cluster) as denied:
            # 1. import: one resource for the group's roles, one for the released binding's name.
            out = tmp_path / "imported"
            code, _stdout, stderr = entra(cluster, "import", *directory, "--group", TEAM, "-o", str(out))
            assert code == 2, stderr  # one binding is not importable whole
            assert "not imported: RoleBinding import-b/team-and-ci: it also grants subjects" in stderr
            assert sorted(p.name for p in out.iterdir()) == [
                f"group-{TEAM}.yaml",
                "imported.yaml",
                f"members-{TEAM}.yaml",
            ]
            users = yaml.safe_load((out / f"members-{TEAM}.yaml").read_text())
            assert users["spec"] == {
                "groups": [{"id": TEAM}],
                "subjects": {"kind": "User"},
                "roleBindings": [{"clusterRole": "view", "namespaces": ["import-b"]}],
            }
            team = yaml.safe_load((out / f"group-{TEAM}.yaml").read_text())
            assert team["spec"] == {
                "groups": [{"id": TEAM}],
                "clusterRoleBindings": [{"clusterRole": "view"}],
                "roleBindings": [{"clusterRole": "edit", "namespaces": ["import-a", "import-b"]}],
            }
            assert "# Hand over the bindings" in (out / "imported.yaml").read_text()
            _, annotate, _ = entra(cluster, "import", *directory, "--group", TEAM, "--annotate")
            _, cleanup, _ = entra(cluster, "import", *directory, "--group", TEAM, "--cleanup")
            assert "entra-rbac.io/adopt=imported" in annotate
            assert "delete rolebinding -n import-a team-edit" in cleanup
            assert "delete rolebinding -n import-b bob-by-name" in cleanup
            assert RELEASED not in cleanup  # adopted: never deleted

            # 2. the plan: creates for the group, a Conflict where the released binding stands.
            code, plan, stderr = entra(
                cluster, "plan", "-f", str(out), "--directory", str(cluster.sandbox.directory)
            )
            assert code == 2, stderr
            assert f"+ ClusterRoleBinding egb:group-{TEAM}:clusterrole:view" in plan
            assert "Conflict" in plan

            # 3. apply; the operator's bindings stand beside the hand-made ones.
            cluster.kubectl("apply", "-f", str(out))
            cluster.wait_ready(f"group-{TEAM}", timeout=60)
            cluster.wait_ready(f"members-{TEAM}", timeout=60)
            cluster.wait_reason("imported", "Conflict", timeout=60)

            # 4. hand over the binding at the operator's own name: adopted in place.
            run_script(cluster, annotate)
            cluster.wait_ready("imported", timeout=60)

            # 5. verify: explain names the managing resources; report lists the grants.
            code, explained, stderr = entra(
                cluster,
                "explain",
                "--user",
                "bob@contoso.com",
                "--group",
                TEAM,
                "--directory",
                str(cluster.sandbox.directory),
            )
            assert code == 0, stderr
            assert f"managed by EntraGroupBinding group-{TEAM}" in explained
            assert "managed by EntraGroupBinding imported" in explained
            code, report, stderr = entra(cluster, "report")
            assert code == 0, stderr
            assert f"RoleBinding import-c/{RELEASED},imported," in report
            assert "unmanaged,Group" in report

            # 6. remove the leftovers, once each resource is Ready (the script waits for it).
            _, cleanup_after_apply, _ = entra(cluster, "import", *directory, "--group", TEAM, "--cleanup")
            assert cleanup_after_apply == cleanup  # printed again after the apply, the same
            run_script(cluster, cleanup)
            cluster.wait_for(
                "the leftovers gone",
                lambda: (
                    not cluster.rbac.list_role_binding_for_all_namespaces(
                        field_selector="metadata.name=team-edit"
                    ).items
                ),
            )
        assert denied() == [], f"access was lost during the migration: {denied()}"
        adopted = read_binding(cluster, RELEASED, "import-c")
        assert adopted["metadata"]["uid"] == released_uid  # the same object, patched in place
        assert adopted["metadata"]["ownerReferences"][0]["name"] == "imported"
        assert cluster.requests.count("DELETE", r"/namespaces/import-c/rolebindings/egb(:|%3A)imported") == 0
        assert all(
            cluster.can_i(v, r, user="bob@contoso.com", groups=g, namespace=n) for v, r, n, g in ACCESS
        )
        # Nothing is left to import: the operator's own bindings are skipped, the mixed one refused.
        code, _rest, stderr = entra(cluster, "import", *directory, "--group", TEAM)
        assert code == 2
        assert re.search(r"Import: 0 EntraGroupBindings replacing 0 bindings", stderr), stderr
    finally:
        cluster.kubectl("delete", "clusterrolebinding", "import-team-view", "--ignore-not-found")
