"""The demo's escalation-guard step: a team lead without `bind` is refused, then given it, accepted.

Installs the guard from deploy/ as a cluster admin would (the Guardrails kind and the writer
roles first, then the Guardrails object as kustomize renders it from deploy/guardrails.env, the
ValidatingAdmissionPolicy and its binding), lets Dana write EntraGroupBindings, and shows her apply
one granting `edit` in payments: refused with the guard's message, then, once she holds `bind`
on `edit` there, created and Ready. Everything goes through kubectl, as typed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from entra_rbac_sandbox.launcher import kubectl_path, project_file

if TYPE_CHECKING:
    from entra_rbac_sandbox.demo import Demo

TIMEOUT = 30.0  # as every demo step: the operator follows within a refresh interval or two

DANA = "dana@contoso.com"
AS_DANA = ("--as", DANA)
LEADS = {
    "apiVersion": "entra-rbac.io/v1alpha1",
    "kind": "EntraGroupBinding",
    "metadata": {"name": "payments-leads"},
    "spec": {
        "groups": [{"id": "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"}],
        "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
    },
}


def _guardrails(path: Path) -> None:
    """The Guardrails object of deploy/ (admission/guardrails.yaml with deploy/guardrails.env's
    keys, as kustomize renders it), written to `path`."""
    data = {}
    for line in project_file("deploy", "guardrails.env").read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            data[key.strip()] = value.strip()
    document = yaml.safe_load(project_file("deploy", "admission/guardrails.yaml").read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**document, "data": data}), encoding="utf-8")


def _run(demo: Demo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - kubectl with our arguments
        [kubectl_path(), "--kubeconfig", str(demo.sandbox.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _shown(done: subprocess.CompletedProcess[str], *args: str) -> None:
    print(f"$ kubectl {' '.join(args)}", flush=True)
    print("    " + (done.stdout + done.stderr).strip().replace("\n", "\n    "))


def escalation_guard(demo: Demo, state_dir: Path) -> None:
    """Step 5: the escalation guard, for real in the sandbox's API server."""
    guardrails, leads = state_dir / "guardrails.yaml", state_dir / "payments-leads.yaml"
    _guardrails(guardrails)
    leads.write_text(yaml.safe_dump(LEADS), encoding="utf-8")
    print("A cluster admin installs the guard from deploy/ (the Guardrails kind first):")
    demo.kubectl("apply", "-f", "deploy/admission/guardrails-crd.yaml", "-f", "deploy/user-roles.yaml")
    demo.kubectl("wait", "--for=condition=Established", "crd/guardrails.entra-rbac.io", "--timeout=30s")
    demo.kubectl(
        "apply",
        "-f",
        str(guardrails),
        "-f",
        "deploy/admission/policy.yaml",
        "-f",
        "deploy/admission/binding.yaml",
    )
    print("Dana, a team lead, may write EntraGroupBindings (the writer role) but holds no bind on edit:")
    demo.kubectl(
        "create", "clusterrolebinding", "dana-writes-egb", "--clusterrole=entra-rbac-operator-editor",
        f"--user={DANA}",
    )  # fmt: skip
    apply = ("apply", "-f", str(leads), *AS_DANA)
    # The sandbox's API server reads policies at each request: in force as soon as created.
    refused = _run(demo, *apply)
    _shown(refused, *apply)
    if refused.returncode == 0 or "may not bind ClusterRole edit" not in refused.stderr:
        from entra_rbac_sandbox.demo import DemoFailed  # the demo imports this module

        raise DemoFailed("the escalation guard did not refuse Dana's resource as expected")
    print("A cluster admin lets her bind edit in payments, and only there:")
    demo.kubectl(
        "create", "clusterrole", "bind-edit", "--verb=bind", "--resource=clusterroles", "--resource-name=edit"
    )
    demo.kubectl(
        "create",
        "rolebinding",
        "dana-bind-edit",
        "-n",
        "payments",
        "--clusterrole=bind-edit",
        f"--user={DANA}",
    )

    def admitted() -> subprocess.CompletedProcess[str] | None:
        done = _run(demo, *apply)
        return done if done.returncode == 0 else None

    # RBAC is read at each request; the loop only absorbs a loaded machine.
    done = demo.wait_for("Dana's resource to be admitted", admitted)
    _shown(done, *apply)
    demo.kubectl("wait", "--for=condition=Ready", "egb/payments-leads", f"--timeout={TIMEOUT:.0f}s")
    demo.kubectl("get", "rolebinding", "-n", "payments", "egb:payments-leads:clusterrole:edit")
