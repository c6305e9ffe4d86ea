"""The Helm chart installed, upgraded and uninstalled by the real helm on the real control plane.

There is no kubelet, so no pod runs: the test checks the objects the API server stores and what
they do without the operator (the admission guard refuses a person without `bind`, through the
Guardrails object the chart rendered). It cleans up what it created (namespace, CRDs, waited for),
because the control plane is shared by the whole session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.harness import ControlPlane
from tests.unit.install_render import CHART, NAMESPACE, ROOT, helm

KUBECTL = Path(sys.executable).parent / "kubectl"
RELEASE = "entra-rbac"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CRDS = ("entragroupbindings.entra-rbac.io", "guardrails.entra-rbac.io", "clusterkopfpeerings.kopf.dev")
CLUSTER_OBJECTS = (
    "clusterrole/entra-rbac-operator",
    "clusterrole/entra-rbac-operator-bind",
    "clusterrolebinding/entra-rbac-operator-bind",
    "validatingadmissionpolicy/entra-rbac-guard",
    "validatingadmissionpolicybinding/entra-rbac-guard",
    "guardrails/entra-rbac-guardrails",
)
DEADLINE = 90.0


class Tools:
    def __init__(self, cp: ControlPlane, work: Path) -> None:
        self.cp, self.work = cp, work
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cp.admin_kubeconfig),
            "HELM_CACHE_HOME": str(work / "helm-cache"),
            "HELM_CONFIG_HOME": str(work / "helm-config"),
            "HELM_DATA_HOME": str(work / "helm-data"),
        }

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [helm(), *args], capture_output=True, text=True, env=self.env, timeout=180, check=False
        )

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        config = kubeconfig or self.cp.admin_kubeconfig
        argv = [str(KUBECTL), f"--kubeconfig={config}", f"--cache-dir={self.work / 'kube-cache'}", *args]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=False)

    def get(self, what: str, *, namespace: str | None = None) -> dict[str, Any] | None:
        scope = ("-n", namespace) if namespace else ()
        done = self.kubectl("get", what, *scope, "-o", "json")
        if done.returncode != 0:
            assert "NotFound" in done.stderr, done.stderr
            return None
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    def wait_gone(self, what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while self.get(what) is not None:
            assert time.monotonic() < deadline, f"{what} still there after {DEADLINE} s"
            time.sleep(0.5)


@pytest.fixture
def tools(control_plane: ControlPlane, tmp_path: Path) -> Iterator[Tools]:
    t = Tools(control_plane, tmp_path)
    existing = {crd for crd in CRDS if t.get(f"crd/{crd}") is not None}
    assert t.get(f"namespace/{NAMESPACE}") is None, "another suite left the operator namespace behind"
    try:
        yield t
    finally:
        t.helm("uninstall", RELEASE, "--namespace", NAMESPACE)
        t.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")
        for crd in CRDS:
            if crd not in existing:
                t.kubectl("delete", "crd", crd, "--ignore-not-found", "--wait=false")
        t.wait_gone(f"namespace/{NAMESPACE}")
        for crd in CRDS:
            if crd not in existing:
                t.wait_gone(f"crd/{crd}")


def _settings(t: Tools) -> dict[str, str]:
    found = t.get("configmap/entra-rbac-operator-settings", namespace=NAMESPACE)
    assert found is not None
    return dict(found["data"])


def test_helm_installs_upgrades_and_uninstalls_on_the_real_control_plane(tools: Tools) -> None:
    t = tools
    assert t.kubectl("apply", "-f", str(ROOT / "deploy" / "namespace.yaml")).returncode == 0
    installed = t.helm(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--set",
        f"workloadIdentity.clientId={CLIENT_ID}",
    )
    assert installed.returncode == 0, installed.stderr

    for crd in CRDS:
        assert t.get(f"crd/{crd}") is not None, f"helm did not install the CRD {crd} from crds/"
    for what in CLUSTER_OBJECTS:
        assert t.get(what) is not None, f"{what} missing after helm install"
    account = t.get("serviceaccount/entra-rbac-operator", namespace=NAMESPACE)
    assert account is not None
    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"] == CLIENT_ID
    deployment = t.get("deployment/entra-rbac-operator", namespace=NAMESPACE)
    assert deployment is not None
    before = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/settings"]

    # The guard the chart installed works without the operator: a person holding only the right
    # to write EntraGroupBindings may not grant `edit`.
    writer = t.cp.kubeconfig_for("helm-writer")
    rbac = [
        "create clusterrole helm-egb-writer --verb=create --resource=entragroupbindings.entra-rbac.io",
        "create clusterrolebinding helm-egb-writer --clusterrole=helm-egb-writer --user=helm-writer",
    ]
    for command in rbac:
        assert t.kubectl(*command.split()).returncode == 0
    try:
        resource = {
            "apiVersion": "entra-rbac.io/v1alpha1",
            "kind": "EntraGroupBinding",
            "metadata": {"name": "helm-edit"},
            "spec": {
                "groups": [{"id": "0f0e0d0c-0b0a-4909-8807-060504030201"}],
                "clusterRoleBindings": [{"clusterRole": "edit"}],
            },
        }
        refused = t.kubectl(
            "create", "--dry-run=server", "-f", "-", kubeconfig=writer, stdin=json.dumps(resource)
        )
        assert refused.returncode != 0
        assert "entra-rbac-guard" in refused.stderr, refused.stderr
        assert "bind" in refused.stderr, refused.stderr
        admitted = t.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(resource))
        assert admitted.returncode == 0, admitted.stderr
    finally:
        t.kubectl(
            "delete",
            "clusterrolebinding/helm-egb-writer",
            "clusterrole/helm-egb-writer",
            "--ignore-not-found",
        )

    upgraded = t.helm(
        "upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE, "--reuse-values",
        "--set", "settings.ENTRA_RBAC_REFRESH_INTERVAL=2m",
    )  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr
    assert _settings(t)["ENTRA_RBAC_REFRESH_INTERVAL"] == "2m"
    deployment = t.get("deployment/entra-rbac-operator", namespace=NAMESPACE)
    assert deployment is not None
    assert deployment["spec"]["template"]["metadata"]["annotations"]["checksum/settings"] != before
    account = t.get("serviceaccount/entra-rbac-operator", namespace=NAMESPACE)
    assert account is not None
    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"] == CLIENT_ID

    uninstalled = t.helm("uninstall", RELEASE, "--namespace", NAMESPACE)
    assert uninstalled.returncode == 0, uninstalled.stderr
    for what in CLUSTER_OBJECTS:
        t.wait_gone(what)
    assert t.get("deployment/entra-rbac-operator", namespace=NAMESPACE) is None
    # Helm never deletes what crds/ installed: the resources (and so everyone's access) survive an
    # uninstall until the CRDs are deleted by hand (docs/install.md, "Uninstall").
    for crd in CRDS:
        assert t.get(f"crd/{crd}") is not None
