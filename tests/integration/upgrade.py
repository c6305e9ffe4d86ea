"""The previous release, from git, installed the way people install it, and upgraded in place.

Used by tests/integration/test_upgrade.py (docs/testing.md, "The upgrade test").

Which release is "previous" (`previous_release`): `ENTRA_RBAC_UPGRADE_FROM` (any git revision) if
set; otherwise the parent of the newest commit that changed the install (`crds/`, `deploy/` or
`charts/`), so the manifests upgraded from always differ from the current ones. The operator's
code (`operator/entra_rbac`) is taken from the same commit, so the old operator makes the
bindings the new one must leave alone. The repository has no release tags yet; once it has, the
rule to adopt is "the newest `v*` tag before HEAD" (a tag is what people run).

`Release(Sandbox)` is the launcher's Sandbox installing from a source tree instead of this
checkout: the CRDs first, waited for until Established, then `kubectl apply -k deploy/` (the
first-install procedure of docs/deployment.md; an upgrade is the same two steps, docs/install.md).
The operator runs as a process from that tree's code with the settings the Deployment would
get (the settings and guardrails ConfigMaps the install created), wired to the sandbox Entra
directory. The upgrade is the Deployment's `Recreate`: `stop_operator()`, `install(tree)` (the new
manifests, the new operator's code and settings), `start_operator()`.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from entra_rbac_sandbox.launcher import OPERATOR_GROUPS, OPERATOR_USER, Sandbox
from tests.controlplane.harness import ControlPlane
from tests.e2e import real
from tests.e2e.real import operator_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
INSTALL_PATHS = ("crds", "deploy", "charts")
TREE_PATHS = (*INSTALL_PATHS, "operator/entra_rbac")
UPGRADE_FROM = "ENTRA_RBAC_UPGRADE_FROM"
# What the pod's settings say that makes no sense for a process beside the test: its ports (the
# test runs several operators on one machine), its cloud (the sandbox directory is wired instead)
# and its log format (text reads better in a failure's log tail).
MANAGED_BY, OPERATOR = "app.kubernetes.io/managed-by", "entra-rbac-operator"
NOT_FOR_A_LOCAL_PROCESS = (
    "ENTRA_RBAC_METRICS_PORT",
    "ENTRA_RBAC_HEALTH_PORT",
    "ENTRA_RBAC_CLOUD",
    "ENTRA_RBAC_LOG_FORMAT",
)


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"git {' '.join(args)} failed")
    return done.stdout.strip()


def previous_release() -> str:
    """The commit to upgrade from (see the module docstring), or a failure saying what is missing."""
    try:
        wanted = os.environ.get(UPGRADE_FROM)
        if wanted:
            return _git("rev-parse", "--verify", f"{wanted}^{{commit}}")
        newest = _git("rev-list", "-1", "HEAD", "--", *INSTALL_PATHS)
        return _git("rev-parse", "--verify", f"{newest}^")
    except (RuntimeError, FileNotFoundError) as error:
        shallow = ""
        with contextlib.suppress(RuntimeError, FileNotFoundError):
            shallow = _git("rev-parse", "--is-shallow-repository")
        hint = (
            "this clone is shallow: run `git fetch --unshallow` (CI: check out with fetch-depth 0)"
            if shallow == "true"
            else "the test needs the repository's git history"
        )
        pytest.fail(
            f"the upgrade test cannot find the previous release's manifests in git ({error}): "
            f"{hint}, or set {UPGRADE_FROM} to the revision to upgrade from",
            pytrace=False,
        )


def extract(commit: str, into: Path) -> Path:
    """`crds/`, `deploy/`, `charts/` and the operator's package at `commit`, in `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, *TREE_PATHS],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")  # the chart's links into crds/ and deploy/ stay inside
    return into


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    return real.kubectl(kubeconfig, *args, stdin=stdin, timeout=120)  # an apply -k of deploy/ is slow


class Release(Sandbox):
    """A Sandbox whose install and operator come from `tree` (None: this checkout)."""

    def __init__(
        self,
        directory: Path,
        *,
        tree: Path | None,
        state_dir: Path,
        control_plane: ControlPlane | None,
        operator_env: Mapping[str, str],
        operator_output: Any,
    ) -> None:
        cluster = control_plane.admin_kubeconfig if control_plane else None
        super().__init__(
            directory,
            state_dir=state_dir,
            operator_env=operator_env,
            operator_output=operator_output,
            cluster=cluster,
            cluster_operator_kubeconfig=state_dir / "operator.kubeconfig" if cluster else None,
        )
        self.tree = tree
        self.control_plane = control_plane
        self.rendered: list[dict[str, Any]] = []
        self.installed: dict[tuple[str, str, str], dict[str, Any]] = {}  # every release's objects

    def _install(self) -> tuple[list[str], list[str]]:
        root = self.tree or ROOT
        self.rendered = [
            doc
            for doc in yaml.safe_load_all(kubectl(self.kubeconfig, "kustomize", str(root / "deploy")))
            if doc
        ]
        crds = [doc for doc in self.rendered if doc["kind"] == "CustomResourceDefinition"]
        kubectl(self.kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(crds))
        names = [f"crd/{doc['metadata']['name']}" for doc in crds]
        kubectl(self.kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", *names)
        kubectl(self.kubeconfig, "apply", "-k", str(root / "deploy"))
        for doc in self.rendered:
            meta = doc["metadata"]
            self.installed[(doc["kind"], meta.get("namespace", ""), meta["name"])] = doc
        if self.kube is not None:
            self.kube.add_identity(OPERATOR_USER, OPERATOR_GROUPS)
            self.kube.write_kubeconfig(self.operator_kubeconfig, user=OPERATOR_USER)
        elif self.control_plane is not None and not self.operator_kubeconfig.exists():
            operator_kubeconfig(self.control_plane, self.operator_kubeconfig)
        pod = self.pod_settings()
        self.user_settings = {k: v for k, v in pod.items() if k not in NOT_FOR_A_LOCAL_PROCESS}
        if self.tree is None:
            self.operator_env.pop("PYTHONPATH", None)
        else:
            self.operator_env["PYTHONPATH"] = str(self.tree / "operator")
        split = lambda key: [name for name in pod.get(key, "").split(",") if name]  # noqa: E731
        return split("ENTRA_RBAC_ALLOWED_CLUSTER_ROLES"), split("ENTRA_RBAC_ALLOWED_ROLES")

    def pod_settings(self) -> dict[str, str]:
        """The operator's environment from the ConfigMaps its Deployment reads (envFrom and env)."""
        deployment = next(d for d in self.rendered if d["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        maps = {d["metadata"]["name"]: d.get("data") or {} for d in self.rendered if d["kind"] == "ConfigMap"}
        settings: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            settings.update(maps[source["configMapRef"]["name"]])
        for variable in container.get("env") or []:
            reference = (variable.get("valueFrom") or {}).get("configMapKeyRef")
            if reference:
                settings[variable["name"]] = maps[reference["name"]][reference["key"]]
            elif "value" in variable:
                settings[variable["name"]] = variable["value"]
        return settings

    def install(self, tree: Path | None) -> None:
        """Apply `tree`'s manifests (None: this checkout's), and run its operator from now on."""
        self.tree = tree
        self._write_env_file(self._install())

    def uninstall(self, namespaces: Iterable[str], timeout: float = 120.0) -> None:
        """Delete every object any release installed (so every EntraGroupBinding, with the CRD),
        the managed ClusterRoleBindings (the garbage collector may not know the new CRD's kind yet)
        and `namespaces` (with their RoleBindings); return once all are gone."""
        kubectl(self.kubeconfig, "delete", "clusterrolebinding", "-l", f"{MANAGED_BY}={OPERATOR}")
        extra = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces]
        stream = yaml.safe_dump_all([*extra, *self.installed.values()])
        wait = ("--ignore-not-found", "--wait=true", f"--timeout={timeout:.0f}s")
        kubectl(self.kubeconfig, "delete", "-f", "-", *wait, stdin=stream)
