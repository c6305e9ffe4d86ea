"""`entra-rbac demo` as a person runs it: a process that exits 0 and shows each step's result."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.e2e

# What each step must show, in order: (step, a line fragment proving its result).
EXPECTED = (
    ("sandbox started", "sandbox ready: kubeconfig="),
    ("examples applied", "entragroupbinding.entra-rbac.io/payments-oncall created"),
    ("Ready waited for", "entragroupbinding.entra-rbac.io/platform-admins condition met"),
    ("ambiguous example explained", "developers: Ready=False AmbiguousGroupName:"),
    ("suspended example explained", "payments-release-freeze: Ready=False Suspended:"),
    ("resources listed", "READY   GROUPS   BINDINGS"),
    ("managed bindings listed", "rolebinding.rbac.authorization.k8s.io/egb:payments-oncall:clusterrole:view"),
    ("access table", "Alice Martin"),
    ("rename followed", "'Payments Developers' -> 'Payments Engineers'"),
    ("rename wrote nothing", "managed bindings keep their resourceVersion: nothing was written"),
    ("rename changed no access", "No access changed"),
    ("member's User subject removed", "egb:payments-oncall:clusterrole:view: removed alice@contoso.com;"),
    ("member's row flipped", "alice@contoso.com: get pods (payments) yes -> no"),
    ("deleted group revoked", "auditors: Ready=False GroupNotFound:"),
    ("deleted group's binding removed", "removed: ClusterRoleBinding egb:auditors:clusterrole:view"),
    ("deleted group's row flipped", "carol@contoso.com: list pods (cluster-wide) yes -> no"),
    ("clean stop", "every step completed, everything stopped"),
)


def test_demo_exits_zero_within_a_minute_showing_each_step() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "entra_rbac", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"demo exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    position = 0
    for step, fragment in EXPECTED:
        found = done.stdout.find(fragment, position)
        assert found >= 0, (
            f"step '{step}': {fragment!r} not in the output after position {position}\n{done.stdout}"
        )
        position = found
    assert "Traceback" not in done.stdout + done.stderr
    assert elapsed < 60, f"the demo took {elapsed:.1f}s"
