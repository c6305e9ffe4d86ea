"""End to end, issue 13: Entra changes and cleared conflicts reach the cluster in seconds, not at
the next refresh. The operator runs with a ten-minute refresh interval here, so only Graph's delta
(every 1 s) and the conflict watcher can explain what the deadlines see."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import Cluster, guid
from tests.e2e.test_lifecycle import ALICE, BOB, PAYMENTS, RB, binding

pytestmark = pytest.mark.e2e
NESTED = guid(101)
SOON = 30.0  # seconds: far below the refresh interval, generous for a loaded machine


def directory(
    *, name: str = "Payments Developers", nested_members: tuple[str, ...] = (guid(2),)
) -> dict[str, Any]:
    return {
        "users": [ALICE, BOB],
        "groups": [
            {
                "id": PAYMENTS,
                "displayName": name,
                "mailNickname": "payments-devs",
                "members": [guid(1), NESTED],
            },
            {
                "id": NESTED,
                "displayName": "Payments Oncall",
                "mailNickname": "oncall",
                "members": list(nested_members),
            },
        ],
    }


# The refresh far away and delta queries every second: what shows within seconds came by delta.
SLOW_REFRESH = pytest.mark.operator_env(ENTRA_RBAC_REFRESH_INTERVAL="10m", ENTRA_RBAC_DELTA_INTERVAL="1s")


@SLOW_REFRESH
def test_a_rename_and_a_nested_member_removed_show_within_seconds(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(binding(subjects={"kind": "User"}))
    cluster.wait_ready("payments")
    assert cluster.subjects(*RB) == ["alice@contoso.com", "bob@contoso.com"]

    cluster.directory(directory(name="Payments Devs"))
    cluster.wait_for(
        "the new display name in status",
        lambda: cluster.egb("payments")["status"]["groups"][0].get("displayName") == "Payments Devs" or None,
        timeout=SOON,
    )
    # bob leaves the nested group: a change delta reports on the nested group, which the
    # resource watches because its transitive read went through it.
    cluster.directory(directory(name="Payments Devs", nested_members=()))
    cluster.wait_for(
        "bob's access removed", lambda: cluster.subjects(*RB) == ["alice@contoso.com"] or None, timeout=SOON
    )


@SLOW_REFRESH
def test_a_conflict_heals_once_the_foreign_binding_is_deleted(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    foreign = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": RB[2], "namespace": "payments"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "someone", "apiGroup": "rbac.authorization.k8s.io"}],
    }
    cluster.apply(foreign)
    cluster.apply(binding())
    cluster.wait_reason("payments", "Conflict")
    cluster.kubectl("delete", "rolebinding", "-n", "payments", RB[2])
    cluster.wait_for(
        "our binding in its place", lambda: cluster.subjects(*RB) == [PAYMENTS] or None, timeout=SOON
    )
    cluster.wait_ready("payments", timeout=SOON)
