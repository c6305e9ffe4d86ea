"""End to end, `kubectl entra plan|explain|report` against what the running operator wrote, on each
API server (make test: the real kube-apiserver, the referee).

- explain's RBAC evaluation answers as SubjectAccessReview does (`kubectl auth can-i --as`), for
  managed and hand-made bindings, aggregated ClusterRoles, subresources, resourceNames and
  non-resource URLs;
- plan sends nothing but get and list: the real server's audit log, for the planner's own user,
  least-privileged with docs/cli.md's ClusterRole (real server only: the sandbox logs no users);
- report names the managed grant and the hand-made binding of the same role;
- plan applies the cluster's live Guardrails object, and the settings' guardrails without one.
The commands run in this process through click (the real command code); the integration tests
run them as kubectl's plugin.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from entra_rbac.cli import kubectl_entra
from entra_rbac_sandbox.launcher import project_file
from tests.e2e.harness import Cluster, guid

pytestmark = pytest.mark.e2e

TEAM = guid(300)
ALICE, BOB = guid(301), guid(302)
PLANNER = "entra-planner"
DIRECTORY = {
    "users": [
        {"id": ALICE, "userPrincipalName": "alice@contoso.com"},
        {"id": BOB, "userPrincipalName": "bob@contoso.com"},
    ],
    "groups": [{"id": TEAM, "displayName": "Team", "members": [ALICE]}],
}
RBAC = "rbac.authorization.k8s.io"
HAND_MADE = [
    {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "insight-picky"},
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            {"nonResourceURLs": ["/insight/*"], "verbs": ["get"]},
        ],
    },
    {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "insight-picky"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "insight-picky"},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "bob@contoso.com"}],
    },
    {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "insight-by-hand", "namespace": "insight"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "eve"}],
    },
]


def spec(role: str) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "insight-team"},
        "spec": {
            "groups": [{"id": TEAM}],
            "roleBindings": [{"clusterRole": role, "namespaces": ["insight"]}],
        },
    }


def entra(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    env: dict[str, str | None] = {
        "KUBECONFIG": str(kubeconfig),
        "ENTRA_RBAC_TENANT_ID": None,
        "AZURE_TENANT_ID": None,
    }
    result = CliRunner().invoke(kubectl_entra, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def granted(cluster: Cluster) -> Iterator[Cluster]:
    """The operator's binding for insight-team, and the hand-made ones beside it (removed after)."""
    cluster.directory(DIRECTORY)
    cluster.namespace("insight")
    cluster.apply(spec("edit"))
    cluster.wait_ready("insight-team")
    cluster.apply(*HAND_MADE)
    try:
        yield cluster
    finally:
        cluster.kubectl(
            "delete", "clusterrole,clusterrolebinding", "insight-picky", f"{PLANNER}", "--ignore-not-found"
        )


# (verb, resource, namespace, name): the SAR and explain must agree on each, for each identity.
REQUESTS = [
    ("create", "deployments.apps", "insight", ""),
    ("delete", "secrets", "insight", ""),
    ("get", "pods/log", "insight", ""),
    ("get", "pods", "insight", ""),
    ("get", "configmaps", "insight", "a"),
    ("get", "configmaps", "insight", "b"),
    ("create", "pods", "default", ""),
    ("list", "nodes", "", ""),
    ("get", "/insight/x", "", ""),
    ("get", "/healthz", "", ""),
]
IDENTITIES = [("alice@contoso.com", (TEAM,)), ("bob@contoso.com", ()), ("eve", ())]


def test_explain_answers_as_subject_access_review_does(granted: Cluster) -> None:
    cluster = granted
    disagreements = []
    for user, groups in IDENTITIES:
        for verb, resource, namespace, name in REQUESTS:
            # kubectl spells a subresource --subresource, and resource/name names an object.
            plural, _, sub = resource.partition("/") if not resource.startswith("/") else (resource, "", "")
            target = f"{plural}/{name}" if name else plural
            can = ["auth", "can-i", verb, target, "--as", user, *([f"--subresource={sub}"] if sub else [])]
            can += [f"--as-group={g}" for g in groups] + (["-n", namespace] if namespace else [])
            sar = cluster.kubectl(*can, check=False).stdout.strip() == "yes"
            args = ["explain", "--user", user, "--verb", verb, "--resource", resource, "-o", "json"]
            args += [f"--group={g}" for g in groups] + (["-n", namespace] if namespace else [])
            args += ["--name", name] if name else []
            code, out, err = entra(cluster.sandbox.kubeconfig, *args)
            assert code == 0, err
            if json.loads(out)["allowed"] is not sar:
                disagreements.append((user, verb, resource, namespace, name, sar))
    assert disagreements == []


def test_explain_names_the_managed_path(granted: Cluster) -> None:
    args = [
        "--user",
        "alice@contoso.com",
        "-n",
        "insight",
        "--verb",
        "create",
        "--resource",
        "deployments.apps",
    ]
    code, out, _ = entra(
        granted.sandbox.kubeconfig, "explain", *args, "--directory", str(granted.sandbox.directory)
    )
    assert code == 0
    assert "managed by EntraGroupBinding insight-team, Entra group Team" in out
    assert out.rstrip().endswith("Allowed: create deployments.apps in namespace insight (by 1 binding).")


def _planner(request: pytest.FixtureRequest, cluster: Cluster) -> Path:
    """A user holding only docs/cli.md's ClusterRole (real server: a minted client certificate)."""
    cli_doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    role = yaml.safe_load(re.search(r"```yaml\n(.*?)```", cli_doc, re.S).group(1))  # type: ignore[union-attr]
    role["metadata"]["name"] = PLANNER
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": PLANNER},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": PLANNER},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": PLANNER}],
    }
    cluster.apply(role, binding)
    return request.getfixturevalue("control_plane").kubeconfig_for(PLANNER)  # type: ignore[no-any-return]


def test_plan_and_report_read_only_on_what_the_operator_wrote(
    granted: Cluster, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    cluster = granted
    kubeconfig = cluster.sandbox.kubeconfig
    if cluster.server == "real":
        kubeconfig = _planner(request, cluster)
    since = time.time()
    same, changed = tmp_path / "same.yaml", tmp_path / "changed.yaml"
    same.write_text(yaml.safe_dump(spec("edit")))
    changed.write_text(yaml.safe_dump(spec("view")))
    directory = ["--directory", str(cluster.sandbox.directory)]

    code, out, err = entra(kubeconfig, "plan", "-f", str(same), *directory)
    assert (code, err) == (0, ""), out
    code, out, err = entra(kubeconfig, "plan", "-f", str(changed), *directory, "-o", "json")
    assert code == 2, err
    (resource,) = json.loads(out)["resources"]
    assert [(b["action"], b["roleRef"]) for b in resource["bindings"]] == [
        ("create", "ClusterRole/view"),
        ("delete", "ClusterRole/edit"),
    ]
    code, out, err = entra(kubeconfig, "report", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [(r["subject"], r["role"], r["resource"]) for r in rows if r["section"] == "managed"] == [
        (TEAM, "ClusterRole/edit", "insight-team")
    ]
    assert ("eve", "RoleBinding insight/insight-by-hand") in [(r["subject"], r["binding"]) for r in rows]
    _plan_applies_the_live_guardrails_object_else_the_settings(cluster, kubeconfig, tmp_path)

    if cluster.server == "real":
        audit = request.getfixturevalue("real_server").audit
        deadline = time.monotonic() + 30
        while not (events := audit.events(user=PLANNER, since=since - 1)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert events, "the audit log shows no request of the planner"
        assert {e.verb for e in events} <= {"get", "list"}, [(e.verb, e.path) for e in events]


GUARDRAILS_CRD = "guardrails.entra-rbac.io"


def _plan_applies_the_live_guardrails_object_else_the_settings(
    cluster: Cluster, kubeconfig: Path, tmp_path: Path
) -> None:
    """Part of the read-only test below (its planner, its audit check), to share its operator."""
    cluster.namespace("insight-next")
    proposed = spec("edit")
    proposed["spec"]["roleBindings"][0]["namespaces"] = ["insight", "insight-next"]
    file = tmp_path / "next.yaml"
    file.write_text(yaml.safe_dump(proposed))
    plan = ["plan", "-f", str(file), "--directory", str(cluster.sandbox.directory), "-o", "json"]

    def planned() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The problems (field, message) and the binding actions (verb, namespace) planned."""
        code, out, err = entra(kubeconfig, *plan)
        assert (code in (0, 2), err) == (True, ""), out
        (resource,) = json.loads(out)["resources"]
        actions = [(b["action"], b["namespace"]) for b in resource["bindings"]]
        return [(p["field"], p["message"]) for p in resource["problems"]], actions

    granting: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [("create", "insight-next")])
    assert planned() == granting  # no Guardrails kind at all: the settings' guardrails
    cluster.kubectl("apply", "-f", str(project_file("deploy", "admission/guardrails-crd.yaml")))
    try:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{GUARDRAILS_CRD}", "--timeout=60s")
        assert planned() == granting  # the kind, no object: still the settings'
        cluster.apply(
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "kind": "Guardrails",
                "metadata": {"name": "entra-rbac-guardrails"},
                "data": {
                    "ENTRA_RBAC_ALLOWED_CLUSTER_ROLES": "view,edit,admin",
                    "ENTRA_RBAC_PRIVILEGED_ROLES": "edit,admin",  # as the settings' default
                    "ENTRA_RBAC_FORBIDDEN_NAMESPACES": "insight-next",
                },
            }
        )
        problems, actions = planned()
        assert problems == [
            (
                "spec.roleBindings[0].namespaces[1]",
                "namespace 'insight-next' may never be targeted "
                "(ENTRA_RBAC_FORBIDDEN_NAMESPACES in Guardrails entra-rbac-guardrails)",
            )
        ]
        assert ("create", "insight-next") not in actions
    finally:
        cluster.kubectl(
            "delete", "crd", GUARDRAILS_CRD, "--ignore-not-found", "--wait=true", "--timeout=120s"
        )
