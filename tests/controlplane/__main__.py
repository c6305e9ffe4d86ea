"""`python -m tests.controlplane` (`make cluster`): the real control plane by hand, in the foreground.

Starts etcd, kube-apiserver and kube-controller-manager (as the tests do), installs the CRDs from
`crds/` and waits until they are Established, prints one line
`cluster ready: kubeconfig=PATH apiserver=URL` (a cluster-admin kubeconfig), and runs until
SIGTERM or Ctrl-C, which stop all of it. Exits non-zero if a binary dies meanwhile.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from tests.controlplane.binaries import REPO, BinariesNotFoundError
from tests.controlplane.harness import ControlPlane, StartupError

KUBECTL = Path(sys.executable).parent / "kubectl"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _kubectl(cp: ControlPlane, *args: str) -> str:
    done = subprocess.run(
        [str(KUBECTL), f"--kubeconfig={cp.admin_kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def install_crds(cp: ControlPlane, crds: Path) -> None:
    """kubectl apply the CRDs in `crds` (a kustomization when it has one), then wait until Established."""
    source = "-k" if (crds / "kustomization.yaml").exists() else "-f"
    names = _kubectl(cp, "apply", source, str(crds), "-o", "name").split()
    _kubectl(cp, "wait", "--for=condition=Established", "--timeout=60s", *names)


def _watch(cp: ControlPlane) -> int:
    """Block until interrupted (0) or until a binary exits on its own (1)."""
    while True:
        for name, log in cp.logs.items():
            if name not in cp.running_names():
                print(f"{name} exited; its log: {log}", file=sys.stderr)
                return 1
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    """Run the control plane until interrupted; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, help="also copy the admin kubeconfig to this path")
    parser.add_argument(
        "--crds", type=Path, default=REPO / "crds", help="folder of CRDs to install (default: crds/)"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        with ControlPlane() as cp:
            install_crds(cp, args.crds)
            kubeconfig = cp.admin_kubeconfig
            if args.kubeconfig is not None:
                shutil.copyfile(kubeconfig, args.kubeconfig)
                kubeconfig = args.kubeconfig.resolve()
            print(f"cluster ready: kubeconfig={kubeconfig} apiserver={cp.url}", flush=True)
            return _watch(cp)
    except KeyboardInterrupt:
        return 0
    except (BinariesNotFoundError, StartupError, RuntimeError) as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
