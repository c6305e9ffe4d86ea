"""`kubectl entra plan|explain|report` as real processes against the sandbox API server and the
sandbox Entra directory (through the real msgraph-sdk, or offline from the directory file), and
the GitOps recipe of docs/gitops.md run as written.

One sandbox for the module, no operator: the state the operator would leave is written with the
core's own `build_binding`, so what `plan` compares against is exactly the operator's output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from entra_rbac.cli import kubectl_entra
from entra_rbac.core.desired import Owner, build_binding
from entra_rbac.core.subjects import Subject, SubjectSet
from entra_rbac_sandbox.launcher import Sandbox, kubectl_path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DIRECTORY = EXAMPLES / "directory.yaml"
BIN = Path(sys.executable).parent
PAYMENTS_DEVELOPERS = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
CONTRACTORS = "c0a70000-0000-4000-8000-000000000010"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(DIRECTORY, state_dir=tmp_path_factory.mktemp("insight"), operator=False) as started:
        yield started


def _env(sandbox: Sandbox, *, directory: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_RBAC_", "AZURE_", "KUBECONFIG"))}
    env["KUBECONFIG"] = str(sandbox.kubeconfig)
    if directory:
        env.update(sandbox.settings)
    return env


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def entra(sandbox: Sandbox, *args: str, directory: bool = True, **extra: str) -> Done:
    """`kubectl entra ...` in this process (click's runner, the real command and code paths; a new
    process per call would cost seconds each). The GitOps recipe test runs it as kubectl's plugin."""
    wanted = {**_env(sandbox, directory=directory), **extra}
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("ENTRA_RBAC_", "AZURE_"))}
    env.update({k: v for k, v in wanted.items() if k.startswith(("ENTRA_RBAC_", "AZURE_", "KUBECONFIG"))})
    result = CliRunner().invoke(kubectl_entra, list(args), env=env, catch_exceptions=False)
    return Done(result.exit_code, result.stdout, result.stderr)


def kubectl(sandbox: Sandbox, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [kubectl_path(), "--kubeconfig", str(sandbox.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def apply(sandbox: Sandbox, *documents: Mapping[str, Any]) -> None:
    kubectl(sandbox, "apply", "-f", "-", stdin=yaml.safe_dump_all(list(documents)))


def egb(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": spec,
    }


def as_the_operator_would(
    sandbox: Sandbox, name: str, role: str, namespace: str, group_ids: list[str]
) -> None:
    """The binding the operator writes for (resource, role, namespace), owned by the resource."""
    resource = json.loads(kubectl(sandbox, "get", "egb", name, "-o", "json"))
    owner = Owner(name=name, uid=resource["metadata"]["uid"])
    subjects = SubjectSet(tuple(Subject("Group", g) for g in sorted(group_ids)), tuple(sorted(group_ids)))
    apply(sandbox, build_binding(owner, "ClusterRole", role, namespace, subjects).to_manifest())


@pytest.fixture(scope="module")
def payments(sandbox: Sandbox) -> str:
    """payments-developers applied, with the binding the operator would have written in payments."""
    apply(sandbox, *yaml.safe_load_all((EXAMPLES / "00-namespaces.yaml").read_text()))
    apply(
        sandbox,
        egb(
            "team",
            {
                "groups": [{"id": PAYMENTS_DEVELOPERS}],
                "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
            },
        ),
    )
    as_the_operator_would(sandbox, "team", "edit", "payments", [PAYMENTS_DEVELOPERS])
    return "team"


def write(folder: Path, name: str, *documents: Mapping[str, Any]) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump_all(list(documents)), encoding="utf-8")
    return path


def test_plan_of_what_the_cluster_already_has_changes_nothing_exit_0(
    sandbox: Sandbox, payments: str, tmp_path: Path
) -> None:
    same = write(
        tmp_path,
        "team.yaml",
        egb(
            payments,
            {
                "groups": [{"id": PAYMENTS_DEVELOPERS}],
                "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
            },
        ),
    )
    done = entra(sandbox, "plan", "-f", str(same))
    assert done.returncode == 0, done.stderr
    assert "No changes" in done.stdout


def test_plan_through_graph_names_the_access_gained_and_lost(
    sandbox: Sandbox, payments: str, tmp_path: Path
) -> None:
    """edit in payments becomes view in payments and payments-staging: a make-before-break role
    change (create the new name, delete the old) and the access that moves with it."""
    changed = write(
        tmp_path,
        "team.yaml",
        egb(
            payments,
            {
                "groups": [{"displayName": "Payments Developers"}],
                "roleBindings": [{"clusterRole": "view", "namespaces": ["payments", "payments-staging"]}],
            },
        ),
    )
    done = entra(sandbox, "plan", "-f", str(changed), "-o", "json")
    assert done.returncode == 2, done.stderr
    plan = json.loads(done.stdout)
    (resource,) = plan["resources"]
    assert resource["change"] == "update"
    assert [(b["action"], b["namespace"], b["name"]) for b in resource["bindings"]] == [
        ("create", "payments", "egb:team:clusterrole:view"),
        ("create", "payments-staging", "egb:team:clusterrole:view"),
        ("delete", "payments", "egb:team:clusterrole:edit"),
    ]
    group = {"kind": "Group", "name": PAYMENTS_DEVELOPERS, "displayName": "Payments Developers"}
    assert resource["gained"] == [
        {"subject": group, "role": "ClusterRole/view", "namespace": "payments"},
        {"subject": group, "role": "ClusterRole/view", "namespace": "payments-staging"},
    ]
    assert resource["lost"] == [{"subject": group, "role": "ClusterRole/edit", "namespace": "payments"}]


def test_plan_shows_the_problems_the_operator_would_report(
    sandbox: Sandbox, payments: str, tmp_path: Path
) -> None:
    apply(
        sandbox,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "egb:taken:clusterrole:view", "namespace": "payments"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
        },
    )
    proposed = write(
        tmp_path,
        "problems.yaml",
        egb(
            "taken",
            {
                "groups": [{"id": PAYMENTS_DEVELOPERS}],
                "roleBindings": [{"clusterRole": "view", "namespaces": ["payments"]}],
            },
        ),
        egb(
            "ambiguous",
            {"groups": [{"displayName": "Developers"}], "clusterRoleBindings": [{"clusterRole": "view"}]},
        ),
        egb(
            "no-role",
            {
                "groups": [{"id": PAYMENTS_DEVELOPERS}],
                "roleBindings": [{"role": "deployer", "namespaces": ["payments-staging"]}],
            },
        ),
        egb(
            "not-allowed",
            {
                "groups": [{"id": PAYMENTS_DEVELOPERS}],
                "clusterRoleBindings": [{"clusterRole": "cluster-admin"}],
            },
        ),
    )
    done = entra(
        sandbox,
        "plan",
        "-f",
        str(proposed),
        "--directory",
        str(DIRECTORY),
        "-o",
        "json",
        directory=False,
        ENTRA_RBAC_ALLOWED_ROLES="deployer",
    )
    assert done.returncode == 2, done.stderr
    reasons = {r["name"]: [p["reason"] for p in r["problems"]] for r in json.loads(done.stdout)["resources"]}
    assert reasons == {
        "ambiguous": ["AmbiguousGroupName"],
        "no-role": ["RoleNotFound"],
        "not-allowed": ["RoleNotAllowed"],
        "taken": ["Conflict"],
    }
    text = entra(sandbox, "plan", "-f", str(proposed), "--directory", str(DIRECTORY), directory=False).stdout
    assert (
        "! Conflict: RoleBinding 'egb:taken:clusterrole:view' in namespace 'payments' exists and is not"
        in text
    )


def test_plan_prune_shows_every_access_a_deletion_removes(
    sandbox: Sandbox, payments: str, tmp_path: Path
) -> None:
    other = write(
        tmp_path,
        "other.yaml",
        egb("other", {"groups": [{"id": CONTRACTORS}], "clusterRoleBindings": [{"clusterRole": "view"}]}),
    )
    done = entra(
        sandbox,
        "plan",
        "-f",
        str(other),
        "--prune",
        "--directory",
        str(DIRECTORY),
        "-o",
        "json",
        directory=False,
    )
    assert done.returncode == 2, done.stderr
    deleted = {r["name"]: r for r in json.loads(done.stdout)["resources"]}[payments]
    assert deleted["change"] == "delete"
    assert [(b["action"], b["name"]) for b in deleted["bindings"]] == [
        ("delete", "egb:team:clusterrole:edit")
    ]
    assert deleted["lost"] == [
        {
            "subject": {"kind": "Group", "name": PAYMENTS_DEVELOPERS},
            "role": "ClusterRole/edit",
            "namespace": "payments",
        }
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", str(DIRECTORY)], r"directory\.yaml: not a Kubernetes object \(no kind\)"),
        (
            ["-f", str(EXAMPLES / "00-namespaces.yaml")],
            r"holds no EntraGroupBinding \(found Namespace payments",
        ),
        (["-f", "missing.yaml"], r"missing\.yaml: no such file or directory"),
    ],
)
def test_wrong_input_is_one_clear_error_and_exit_1(sandbox: Sandbox, args: list[str], message: str) -> None:
    done = entra(sandbox, "plan", *args)
    assert done.returncode == 1
    assert re.search(message, done.stderr), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_an_invalid_spec_names_the_field(sandbox: Sandbox, tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad.yaml",
        egb("bad", {"groups": [{"id": PAYMENTS_DEVELOPERS}], "roleBindings": [{"clusterRole": "edit"}]}),
    )
    done = entra(sandbox, "plan", "-f", str(bad))
    assert done.returncode == 1
    assert "bad.yaml: EntraGroupBinding 'bad': spec.roleBindings[0]" in done.stderr


def test_a_missing_directory_setting_and_no_cluster_are_one_error_each(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    file = str(EXAMPLES / "01-auditors-view-by-id.yaml")
    done = entra(sandbox, "plan", "-f", file, directory=False)
    assert done.returncode == 1
    assert "ENTRA_RBAC_CLIENT_ID: is required" in done.stderr
    assert "--directory FILE" in done.stderr
    nowhere = tmp_path / "kubeconfig"
    config = yaml.safe_load(sandbox.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    nowhere.write_text(yaml.safe_dump(config))
    done = entra(
        sandbox, "plan", "-f", file, "--directory", str(DIRECTORY), directory=False, KUBECONFIG=str(nowhere)
    )
    assert done.returncode == 1
    assert "list EntraGroupBindings" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_explain_names_the_managed_path_and_the_nested_group(sandbox: Sandbox, payments: str) -> None:
    """bob is in Payments Contractors, nested in Payments Developers: he may edit in payments."""
    done = entra(
        sandbox,
        "explain",
        "--user",
        "bob@contoso.com",
        "-n",
        "payments",
        "--verb",
        "create",
        "--resource",
        "deployments.apps",
        "--directory",
        str(DIRECTORY),
        "-o",
        "json",
        directory=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["allowed"] is True
    (path,) = [p for p in answer["paths"] if p["managedBy"]]
    assert (path["name"], path["roleRef"], path["managedBy"]) == (
        "egb:team:clusterrole:edit",
        "ClusterRole/edit",
        payments,
    )
    assert path["entraGroups"] == [
        {"id": PAYMENTS_DEVELOPERS, "displayName": "Payments Developers", "via": ["Payments Contractors"]}
    ]
    denied = entra(
        sandbox,
        "explain",
        "--user",
        "carol@contoso.com",
        "-n",
        "payments",
        "--verb",
        "create",
        "--resource",
        "deployments.apps",
        "--directory",
        str(DIRECTORY),
        directory=False,
    )
    assert "Denied: no binding allows create deployments.apps in namespace payments" in denied.stdout


def test_report_lists_managed_grants_by_name_and_unmanaged_bindings_of_the_same_roles(
    sandbox: Sandbox, payments: str
) -> None:
    kubectl(
        sandbox,
        "patch",
        "egb",
        payments,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(
            {
                "status": {
                    "groups": [
                        {
                            "ref": f"id={PAYMENTS_DEVELOPERS}",
                            "id": PAYMENTS_DEVELOPERS,
                            "displayName": "Payments Developers",
                            "state": "Resolved",
                        }
                    ]
                }
            }
        ),
    )
    apply(
        sandbox,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "by-hand", "namespace": "payments-staging"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eve"}],
        },
    )
    done = entra(sandbox, "report", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    managed = [r for r in rows if r["section"] == "managed"]
    assert [
        (r["subject"], r["displayName"], r["role"], r["scope"], r["resource"], r["expires"]) for r in managed
    ] == [
        (PAYMENTS_DEVELOPERS, "Payments Developers", "ClusterRole/edit", "namespace payments", payments, "")
    ]
    assert managed[0]["created"]
    unmanaged = [(r["subject"], r["binding"]) for r in rows if r["section"] == "unmanaged"]
    assert ("eve", "RoleBinding payments-staging/by-hand") in unmanaged
    csv_lines = entra(sandbox, "report").stdout.splitlines()
    assert csv_lines[0].startswith("section,subjectKind,subject,displayName")


def _recipe_script() -> str:
    text = (ROOT / "docs" / "gitops.md").read_text(encoding="utf-8")
    section = text.split("## A pull request says who gains or loses access", 1)[1]
    workflow = yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])
    (step,) = [s for s in workflow["jobs"]["plan"]["steps"] if s.get("name") == "Plan"]
    return str(step["run"])


def test_the_gitops_recipe_posts_the_markdown_plan(sandbox: Sandbox, payments: str, tmp_path: Path) -> None:
    """docs/gitops.md's Plan step, run by bash as the CI runner would, with `gh` (GitHub) stood in for."""
    access = tmp_path / "repo" / "access"
    access.mkdir(parents=True)
    shutil.copy(EXAMPLES / "02-payments-edit-by-display-name.yaml", access)
    (access / "kustomization.yaml").write_text("resources: [02-payments-edit-by-display-name.yaml]\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    posted = tmp_path / "posted.md"
    (fake / "gh").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/gh-args\ncat "$5" > {posted}\n')
    (fake / "gh").chmod(0o755)
    env = {**_env(sandbox), "PATH": f"{fake}:{BIN}:{os.environ['PATH']}", "PR": "42"}
    done = subprocess.run(
        ["bash", "-e", "-c", _recipe_script()],
        cwd=access.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "gh-args").read_text().split() == ["pr", "comment", "42", "--body-file", "plan.md"]
    body = posted.read_text()
    assert body.startswith("### entra-rbac plan")
    assert "#### `payments-developers`: create" in body
    row = f"| gained | Group Payments Developers ({PAYMENTS_DEVELOPERS}) | ClusterRole/edit |"
    assert f"{row} namespace payments-staging |" in body
