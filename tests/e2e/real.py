"""The real control plane prepared for the operator: CRD, deploy/'s identity and RBAC, a working GC.

`prepare(cp, workdir)` is done once per session on the session's `ControlPlane`:

- installs the CRD and, from deploy/, the operator's namespace, ServiceAccount and ClusterRoles
  (and their bindings) as `kubectl apply` would;
- signs the operator in as that ServiceAccount for real: a token from the TokenRequest API
  (`kubectl create token`), so the server's own service-account authenticator names it
  `system:serviceaccount:entra-rbac-system:entra-rbac-operator` with the groups it gives every
  ServiceAccount, exactly as in a pod (a client certificate would only imitate that);
- restarts kube-controller-manager, then waits until the garbage collector collects dependents of
  an EntraGroupBinding (a new collector knows the kinds discovery lists at its start; a running
  one learns new kinds only every 30 s), so the first test that relies on it does not race it;
- hands back the audit log reader that counts the operator's requests.
"""

from __future__ import annotations

import base64
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from entra_rbac_sandbox.launcher import (
    CRD_MANIFEST,
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    PEERING_MANIFESTS,
    RBAC_MANIFESTS,
    apply,
    kubectl_path,
    load_manifests,
    project_file,
)
from tests.controlplane.audit import AuditLog
from tests.controlplane.harness import ControlPlane

GC_DEADLINE = 120.0  # seconds: four discovery periods of the garbage collector
PROBE_LABEL = "entra-rbac.io/e2e-gc-probe"


@dataclass(frozen=True)
class RealServer:
    admin_kubeconfig: Path
    operator_kubeconfig: Path
    audit: AuditLog
    gc_ready_seconds: float


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    """kubectl's stdout; a RuntimeError naming the command and kubectl's error when it fails."""
    done = subprocess.run(
        [kubectl_path(), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _install_files() -> list[Path]:
    return [
        project_file("crds", CRD_MANIFEST),
        *(project_file("deploy", name) for name in PEERING_MANIFESTS),
        *(project_file("deploy", name) for name in (*RBAC_MANIFESTS, "serviceaccount.yaml")),
    ]


def _install(cp: ControlPlane) -> None:
    import kubernetes

    with kubernetes.config.new_client_from_config(str(cp.admin_kubeconfig)) as api:
        apply(api, load_manifests(_install_files()))


def uninstall(cp: ControlPlane, timeout: float = 120.0) -> None:
    """Remove what `prepare` installed (the CRD with every EntraGroupBinding, the operator's
    namespace and RBAC) and wait until it is gone, so the suites after this one share a control
    plane that looks as it did before it."""
    args = [arg for path in reversed(_install_files()) for arg in ("-f", str(path))]
    kubectl(
        cp.admin_kubeconfig, "delete", "--ignore-not-found", "--wait=true", f"--timeout={timeout:.0f}s", *args
    )


def operator_kubeconfig(cp: ControlPlane, path: Path) -> Path:
    """A kubeconfig holding a TokenRequest token of the operator's ServiceAccount (4 hours)."""
    token = kubectl(
        cp.admin_kubeconfig, "-n", OPERATOR_NAMESPACE, "create", "token", OPERATOR_ACCOUNT, "--duration=4h"
    ).strip()
    ca = base64.b64encode(cp.ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "real", "cluster": {"server": cp.url, "certificate-authority-data": ca}}],
        "users": [{"name": OPERATOR_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "real", "context": {"cluster": "real", "user": OPERATOR_ACCOUNT}}],
        "current-context": "real",
    }
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _probe_pair(kubeconfig: Path, n: int) -> str:
    """An EntraGroupBinding owning a ConfigMap; the owner is deleted at once. The ConfigMap's name."""
    name = f"e2e-gc-probe-{n}"
    owner = {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name, "labels": {PROBE_LABEL: "true"}},
        "spec": {
            "groups": [{"id": "00000000-0000-0000-0000-00000000c0de"}],
            "clusterRoleBindings": [{"clusterRole": "view"}],
            "suspend": True,
        },
    }
    uid = kubectl(
        kubeconfig, "create", "-f", "-", "-o", "jsonpath={.metadata.uid}", stdin=yaml.safe_dump(owner)
    )
    reference = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": name, "uid": uid}
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {PROBE_LABEL: "true"},
            "ownerReferences": [reference],
        },
    }
    kubectl(kubeconfig, "create", "-f", "-", stdin=yaml.safe_dump(dependent))
    kubectl(kubeconfig, "delete", "egb", name, "--wait=false")
    return name


def wait_for_garbage_collection(kubeconfig: Path, deadline: float = GC_DEADLINE) -> float:
    """Seconds until the GC collected the dependent of a deleted EntraGroupBinding; raises after `deadline`.

    Each attempt is a fresh owner and dependent: a dependent whose owner's kind the collector did
    not know yet is retried with a growing back-off, so an old pair can lag long after the
    collector learned the kind; a fresh one shows at once whether it has.
    """
    began = time.monotonic()
    attempt = 0
    while time.monotonic() - began < deadline:
        attempt += 1
        name = _probe_pair(kubeconfig, attempt)
        settle = time.monotonic() + 3.0
        while time.monotonic() < settle:
            if not kubectl(
                kubeconfig, "get", "configmap", "-n", "default", name, "--ignore-not-found", "-o", "name"
            ):
                seconds = time.monotonic() - began
                kubectl(kubeconfig, "delete", "configmap", "-n", "default", "-l", PROBE_LABEL, "--wait=false")
                return seconds
            time.sleep(0.2)
    raise TimeoutError(
        f"the garbage collector did not collect an EntraGroupBinding's dependent within {deadline:.0f}s "
        f"({attempt} probes); see kube-controller-manager's log"
    )


def prepare(cp: ControlPlane, workdir: Path, *, garbage_collection: bool = True) -> RealServer:
    """`garbage_collection=False` skips the wait for the collector (for runs that never rely on it)."""
    _install(cp)
    gc_seconds = 0.0
    if garbage_collection:
        began = time.monotonic()
        # A new garbage collector knows the CRD from its start; the running one would learn it
        # at its next discovery read (every 30 s: about 25 s of waiting, measured here).
        cp.restart_controller_manager()
        wait_for_garbage_collection(cp.admin_kubeconfig)
        gc_seconds = time.monotonic() - began  # the restart included
    return RealServer(
        admin_kubeconfig=cp.admin_kubeconfig,
        operator_kubeconfig=operator_kubeconfig(cp, workdir / "operator.kubeconfig"),
        audit=AuditLog(cp.audit_log),
        gc_ready_seconds=gc_seconds,
    )
