"""Where the control-plane binaries are, by the same rule as `hack/controlplane/build.sh`.

In order: `KUBEBUILDER_ASSETS` (the envtest convention), then `ENTRA_RBAC_CONTROLPLANE` (set by
`make test` to the folder build.sh printed), then the version-keyed cache folder
`${ENTRA_RBAC_CACHE:-${XDG_CACHE_HOME:-~/.cache}/entra-rbac}/controlplane/k8s-<v>-etcd-<v>/`,
the versions read from the wrapper modules' go.mod files. `ENTRA_RBAC_KUBERNETES=<major>.<minor>`
(e.g. `1.30`, `make conformance-matrix`) picks the wrapper `hack/controlplane/kube-<minor>/`
instead of the pinned release's `hack/controlplane/kube/`, as build.sh does.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack" / "controlplane"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")


class BinariesNotFoundError(RuntimeError):
    """The control-plane binaries are not where they are looked for."""


def _pinned(go_mod: Path, module: str) -> str:
    match = re.search(rf"^require {re.escape(module)} (v[0-9.]+)$", go_mod.read_text(), re.MULTILINE)
    if match is None:
        raise BinariesNotFoundError(f"cannot read the version of {module} from {go_mod}")
    return match.group(1)


def kube_module() -> Path:
    """The wrapper module the Kubernetes binaries are built from (ENTRA_RBAC_KUBERNETES picks one)."""
    minor = os.environ.get("ENTRA_RBAC_KUBERNETES")
    module = HACK / f"kube-{minor}" if minor else HACK / "kube"
    if not (module / "go.mod").is_file():
        served = sorted(p.name.removeprefix("kube-") for p in HACK.glob("kube-*") if (p / "go.mod").is_file())
        raise BinariesNotFoundError(
            f"ENTRA_RBAC_KUBERNETES={minor}: no wrapper module {module}/go.mod "
            f"(the minors with one: {', '.join(served) or 'none'}; unset it for the pinned release)"
        )
    return module


def kubernetes_version() -> str:
    """The Kubernetes version pinned in the wrapper module's go.mod, e.g. `v1.36.3`."""
    return _pinned(kube_module() / "go.mod", "k8s.io/kubernetes")


def served_minor(binaries: Path) -> int:
    """The minor version of the kube-apiserver in `binaries` (asked: KUBEBUILDER_ASSETS may hold any)."""
    done = subprocess.run(
        [str(binaries / "kube-apiserver"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    match = re.search(r"v1\.(\d+)\.", done.stdout)
    if match is None:
        raise BinariesNotFoundError(
            f"cannot read the version of {binaries / 'kube-apiserver'}: {done.stdout!r}"
        )
    return int(match.group(1))


def etcd_version() -> str:
    """The etcd version pinned in hack/controlplane/etcd/go.mod, e.g. `v3.6.16`."""
    return _pinned(HACK / "etcd" / "go.mod", "go.etcd.io/etcd/server/v3")


def cache_folder() -> Path:
    """The folder build.sh builds into (whether or not it exists yet)."""
    root = os.environ.get("ENTRA_RBAC_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "entra-rbac")
    return Path(root) / "controlplane" / f"k8s-{kubernetes_version()}-etcd-{etcd_version()}"


def _missing(folder: Path) -> list[str]:
    return [b for b in BINARIES if not os.access(folder / b, os.X_OK)]


def find_binaries() -> Path:
    """The folder holding etcd, kube-apiserver and kube-controller-manager, or a clear error."""
    for variable in ("KUBEBUILDER_ASSETS", "ENTRA_RBAC_CONTROLPLANE"):
        value = os.environ.get(variable)
        if value:
            missing = _missing(Path(value))
            if missing:
                raise BinariesNotFoundError(
                    f"{variable}={value} does not hold {', '.join(missing)}; "
                    "point it at a folder with all of etcd, kube-apiserver and kube-controller-manager"
                )
            return Path(value)
    folder = cache_folder()
    missing = _missing(folder)
    if missing:
        raise BinariesNotFoundError(
            f"the real control plane is not built ({', '.join(missing)} missing in {folder}): "
            "run `make controlplane` (needs Go), or set KUBEBUILDER_ASSETS to a folder of "
            "setup-envtest binaries"
        )
    return folder
