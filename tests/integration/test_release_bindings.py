"""`entra-rbac release-bindings` on the real control plane: the access survives the resources.

The real garbage collector is the judge: after the release, deleting the EntraGroupBinding
removes the binding of a resource that was not released (the collector is working) and leaves the
released one in place. Cleans up what it created: the control plane is shared by the session.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.harness import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CRD = "entragroupbindings.entra-rbac.io"
NAMESPACE = "release-bindings"
DEADLINE = 90.0


class Cluster:
    def __init__(self, cp: ControlPlane, work: Path) -> None:
        self.cp, self.work = cp, work

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [
            str(BIN / "kubectl"),
            f"--kubeconfig={self.cp.admin_kubeconfig}",
            f"--cache-dir={self.work / 'kc'}",
            *args,
        ]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=False)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        done = self.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(obj))
        assert done.returncode == 0, done.stderr
        created: dict[str, Any] = json.loads(done.stdout)
        return created

    def get(self, what: str, namespace: str | None = None) -> dict[str, Any] | None:
        done = self.kubectl("get", what, *(("-n", namespace) if namespace else ()), "-o", "json")
        if done.returncode != 0:
            assert "NotFound" in done.stderr, done.stderr
            return None
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    def wait_gone(self, what: str, namespace: str | None = None) -> None:
        deadline = time.monotonic() + DEADLINE
        while self.get(what, namespace) is not None:
            assert time.monotonic() < deadline, f"{what} still there after {DEADLINE} s"
            time.sleep(0.5)

    def release(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [
            str(BIN / "entra-rbac"),
            "release-bindings",
            f"--kubeconfig={self.cp.admin_kubeconfig}",
            *args,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def cluster(control_plane: ControlPlane, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(control_plane, tmp_path)
    had_crd = c.get(f"crd/{CRD}") is not None
    if not had_crd:
        assert c.kubectl("apply", "-f", str(ROOT / "crds" / "entragroupbindings.yaml")).returncode == 0
        assert c.kubectl("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s").returncode == 0
    c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    try:
        yield c
    finally:
        c.kubectl("delete", "egb", "release-me", "keep-owned", "--ignore-not-found")
        c.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")
        c.wait_gone(f"namespace/{NAMESPACE}")
        if not had_crd:
            c.kubectl("delete", "crd", CRD, "--ignore-not-found")
            c.wait_gone(f"crd/{CRD}")


def _resource(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": {
            "groups": [{"id": "0f0e0d0c-0b0a-4909-8807-060504030201"}],
            "roleBindings": [{"clusterRole": "view", "namespaces": [NAMESPACE]}],
        },
    }


def _binding(name: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "labels": {"app.kubernetes.io/managed-by": "entra-rbac-operator"},
    }
    if owner is not None:
        meta["labels"]["entra-rbac.io/owner-uid"] = owner["metadata"]["uid"]
        meta["ownerReferences"] = [
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "kind": "EntraGroupBinding",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Group",
                "name": "0f0e0d0c-0b0a-4909-8807-060504030201",
            }
        ],
    }


def test_released_bindings_survive_their_resources_and_others_do_not(cluster: Cluster) -> None:
    c = cluster
    release_me, keep_owned = c.create(_resource("release-me")), c.create(_resource("keep-owned"))
    c.create(_binding("egb-release-me-view", release_me))
    c.create(_binding("egb-keep-owned-view", keep_owned))
    c.create(_binding("labelled-only", None))  # the label alone does not make it the operator's

    dry = c.release("--dry-run", "release-me")
    assert dry.returncode == 0, dry.stderr
    assert (
        f"Would release RoleBinding {NAMESPACE}/egb-release-me-view (from EntraGroupBinding release-me)"
        in dry.stdout
    )
    still = c.get("rolebinding/egb-release-me-view", NAMESPACE)
    assert still is not None
    assert still["metadata"].get("ownerReferences"), "a dry run changes nothing"

    done = c.release("release-me")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("Released 1 binding."), done.stdout
    released = c.get("rolebinding/egb-release-me-view", NAMESPACE)
    assert released is not None
    assert "ownerReferences" not in released["metadata"]
    assert "app.kubernetes.io/managed-by" not in released["metadata"].get("labels", {})
    assert released["metadata"]["annotations"]["entra-rbac.io/released-from"] == "release-me"

    assert c.kubectl("delete", "egb", "release-me", "keep-owned").returncode == 0
    # The collector removes the binding that was not released...
    c.wait_gone("rolebinding/egb-keep-owned-view", NAMESPACE)
    # ...and, with both owners gone and handled, the released one and the foreign one remain.
    assert c.get("rolebinding/egb-release-me-view", NAMESPACE) is not None
    assert c.get("rolebinding/labelled-only", NAMESPACE) is not None
