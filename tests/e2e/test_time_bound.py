"""End to end: time-bound grants (issue 11) start and end on time on a real API server, and an
operator that was down at a `validUntil` revokes as its first act on start-up.

Windows are a few seconds long. The checks are never "within N seconds" (precision is measured
by `make bench`, bench/test_bench_time_bound.py): they wait for the binding with a generous
deadline and assert it never appears before `validFrom` nor outlives the window by waiting. A
window is set once the operator is seen handling a resource, and counts only if the operator saw it
before its `validFrom` (else a later one is set), so a start-up slowed by load cannot swallow it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.harness import Cluster, guid

pytestmark = pytest.mark.e2e

ONCALL = guid(300)
ALICE = {"id": guid(1), "userPrincipalName": "alice@contoso.com", "userType": "Member"}
DIRECTORY = {
    "users": [ALICE],
    "groups": [{"id": ONCALL, "displayName": "On-call", "mailNickname": "oncall", "members": [guid(1)]}],
}
RB = ("RoleBinding", "payments", "egb:oncall:clusterrole:admin")
VIEW = ("ClusterRoleBinding", "", "egb:oncall:clusterrole:view")


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def oncall(admin_window: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "oncall"},
        "spec": {
            "groups": [{"id": ONCALL}],
            "clusterRoleBindings": [{"clusterRole": "view"}],
            "roleBindings": [{"clusterRole": "admin", "namespaces": ["payments"], **admin_window}],
        },
    }


def grant_state(cluster: Cluster) -> str | None:
    grants = cluster.egb("oncall").get("status", {}).get("grants") or []
    return grants[0]["state"] if grants else None


def occurrences(cluster: Cluster, reason: str) -> int:
    """How often an Event with this reason was recorded about oncall (a series counts each time)."""
    found = 0
    for event in cluster.events("oncall"):
        if event.get("reason") == reason:
            found += max(event.get("count") or 1, (event.get("series") or {}).get("count") or 1)
    return found


def test_a_grant_exists_from_valid_from_and_is_gone_at_valid_until(cluster: Cluster) -> None:
    cluster.directory(DIRECTORY)
    cluster.namespace("payments")
    # The window is set once the operator is known to be running and to handle a new resource at
    # once (under load its start-up alone can outlast a few-second window), and it counts only if
    # the operator saw it before validFrom: otherwise a later one is set (a longer lead each time).
    warm_up = {**oncall({}), "metadata": {"name": "warm-up"}}
    warm_up["spec"] = {"groups": [{"id": ONCALL}], "clusterRoleBindings": [{"clusterRole": "view"}]}
    cluster.apply(warm_up)
    cluster.wait_for(
        "the operator to handle a resource",
        lambda: ("ClusterRoleBinding", "", "egb:warm-up:clusterrole:view") in cluster.managed_bindings(),
        timeout=120,
    )
    before = {"GrantStarted": 0, "GrantExpired": 0}
    for lead in (6, 12, 24):
        start = int(time.time()) + lead
        end = start + 6
        cluster.apply(oncall({"validFrom": rfc3339(start), "validUntil": rfc3339(end)}))

        def observed(start: int = start, end: int = end) -> bool:
            status = cluster.egb("oncall").get("status", {})
            grants = status.get("grants") or [{}]
            return status.get("nextExpiry") == rfc3339(end) and grants[0].get("validFrom") == rfc3339(start)

        # The status is written after the bindings: wait for it rather than read it at once.
        cluster.wait_for("status.nextExpiry at validUntil", observed, timeout=60)
        if time.time() < start:
            break
        before = {reason: occurrences(cluster, reason) for reason in before}
    else:
        pytest.fail("the operator never saw a window before its validFrom (lead up to 24 s)")
    assert VIEW in cluster.managed_bindings(), "the permanent grant"
    assert RB not in cluster.managed_bindings() or time.time() >= start, "bound before validFrom"

    binding = cluster.wait_for("the grant to start", lambda: cluster.managed_bindings().get(RB), timeout=60)
    created = datetime.fromisoformat(binding["metadata"]["creationTimestamp"]).timestamp()
    assert created >= start, f"created at {created}, before validFrom {start}"
    assert cluster.can_i_within(
        True, "delete", "pods", user="alice@contoso.com", groups=(ONCALL,), namespace="payments"
    )

    cluster.wait_for("the grant to end", lambda: RB not in cluster.managed_bindings(), timeout=60)
    assert time.time() >= end, "deleted before validUntil"
    assert not cluster.can_i_within(
        False, "delete", "pods", user="alice@contoso.com", groups=(ONCALL,), namespace="payments"
    )
    cluster.wait_for("status to say Expired", lambda: grant_state(cluster) == "Expired")
    recorded = {reason: occurrences(cluster, reason) for reason in before}
    assert all(recorded[reason] > before[reason] for reason in before), (before, recorded)


def test_an_operator_down_at_valid_until_revokes_first_thing_on_start_up(cluster: Cluster) -> None:
    cluster.directory(DIRECTORY)
    cluster.namespace("payments")
    cluster.apply(oncall({}))
    cluster.wait_for("the grant", lambda: RB in cluster.managed_bindings(), timeout=60)
    cluster.sandbox.stop_operator()
    # While it is down, the grant gets an end that then passes.
    end = int(time.time()) + 2
    cluster.apply(oncall({"validUntil": rfc3339(end)}))
    cluster.wait_for("validUntil to pass", lambda: time.time() > end + 1 or None, timeout=60)
    assert RB in cluster.managed_bindings(), "nothing but the operator removes an expired grant"

    logged = len(cluster.log_path.read_text(encoding="utf-8").splitlines())
    cluster.sandbox.start_operator()
    cluster.wait_for("the expired grant to go", lambda: RB not in cluster.managed_bindings(), timeout=60)

    def restarted_log() -> list[str] | None:
        lines = cluster.log_path.read_text(encoding="utf-8").splitlines()[logged:]
        return lines if any("Revoked expired grants at start-up" in line for line in lines) else None

    restarted = cluster.wait_for("the start-up sweep's log line", restarted_log)
    sweep = next(i for i, line in enumerate(restarted) if "Revoked expired grants at start-up" in line)
    assert "bindings_deleted=1" in restarted[sweep], restarted[sweep]
    deleted = next(i for i, line in enumerate(restarted) if "Deleted RoleBinding" in line)
    resumed = [i for i, line in enumerate(restarted) if "Handler 'reconcile'" in line]
    assert deleted < sweep, "\n".join(restarted[: sweep + 5])
    assert all(deleted < i for i in resumed), "revoked after a reconcile had begun"
