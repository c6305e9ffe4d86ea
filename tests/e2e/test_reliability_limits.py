"""End to end, issue 18 points 3 and 7 (reliability, tests/e2e/reliability.py): maxStaleness counts
from the last verified read across a restart; the largest legal spec fits the API server's limits
and is reconciled. On the sandbox and on the real control plane.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.harness import Cluster
from tests.e2e.reliability import ALICE, directory, pair

pytestmark = pytest.mark.e2e


# --- maxStaleness across a restart -----------------------------------------------------------

MAX_STALENESS = 8  # seconds; status keeps the last verified read within a quarter of it


def synced_at(cluster: Cluster, name: str) -> float:
    stamp = cluster.egb(name)["status"]["lastDirectorySync"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.operator_env(ENTRA_RBAC_MAX_STALENESS=f"{MAX_STALENESS}s")
def test_max_staleness_counts_from_the_last_verified_read_across_a_restart(cluster: Cluster) -> None:
    """Issue 18 point 3: idle longer than maxStaleness, then Entra fails and the operator restarts
    during the outage. It must not revoke before maxStaleness has passed since the last verified
    read (the old status time would have revoked at once), and it does revoke after it."""
    cluster.directory(directory(ALICE))
    cluster.apply(pair())
    cluster.wait_ready("pair")
    crb = ("ClusterRoleBinding", "", "egb:pair:clusterrole:view")
    first = synced_at(cluster, "pair")
    # Idle refreshes (every 2 s) persist the sync time once it is older than 2 s: wait until
    # status holds a time more than maxStaleness after the first read.
    cluster.wait_for(
        "an idle refresh to persist its sync time",
        lambda: synced_at(cluster, "pair") > first + MAX_STALENESS,
        timeout=60,
    )
    cluster.sandbox.entra.add_fault(r"^/v1\.0/", status=503, count=100_000)
    failing = cluster.sandbox.entra.count()
    last_read = synced_at(cluster, "pair")  # a lower bound of the last verified read
    cluster.sandbox.stop_operator()
    cluster.sandbox.start_operator()
    cluster.wait_reason("pair", "DirectoryUnavailable", timeout=60)
    revoked = cluster.wait_for(
        "fail-closed revocation past maxStaleness",
        lambda: crb not in cluster.managed_bindings() and time.time(),
        timeout=MAX_STALENESS * 3 + 30,
    )
    assert cluster.sandbox.entra.count() > failing  # the restarted operator met the outage
    # Status has second precision: allow one second of rounding.
    assert revoked >= last_read + MAX_STALENESS - 1, (revoked - last_read, cluster.log_tail())
    # The reconcile deletes first and writes status after: wait for the status that says why.
    cluster.wait_for(
        "the condition naming maxStaleness",
        lambda: "maxStaleness" in cluster.condition("pair")["message"],
        timeout=30,
    )
    print(
        f"revoked {revoked - last_read:.1f} s after the last persisted read (maxStaleness {MAX_STALENESS} s)"
    )


# --- the largest legal spec ------------------------------------------------------------------

ANNOTATIONS_LIMIT = 256 * 1024  # kube-apiserver: all annotations of an object together


def largest_spec() -> dict[str, Any]:
    """Every list at its CRD maximum where the API server's own limits allow (an object must fit
    in etcd's 1.5 MiB): 100 groups of 256-character names, 50 cluster roles and 50 namespaced
    grants of 253-character names, each of those with 256 namespaces of 63 characters and 32
    labels in its selector. Nothing of it exists, so nothing is bound: only status is written."""
    long = "r" * 253
    return {
        "groups": [{"displayName": f"{i:03d}".ljust(256, "g")} for i in range(100)],
        "subjects": {"kind": "Group", "groupPrefix": "p" * 63, "userPrefix": "u" * 63},
        "clusterRoleBindings": [{"clusterRole": f"{i:02d}{long[2:]}"} for i in range(50)],
        "roleBindings": [
            {
                "clusterRole": f"{i:02d}{long[2:]}",
                "namespaces": [f"n{i:02d}{j:03d}".ljust(63, "x") for j in range(256)],
                "namespaceSelector": {"matchLabels": {f"k{j:02d}": "v" * 63 for j in range(32)}},
            }
            for i in range(50)
        ],
    }


def test_the_largest_legal_spec_is_reconciled_and_its_annotations_fit(cluster: Cluster) -> None:
    """Issue 18 point 7: kopf keeps a digest of the spec, not a copy, so even the largest spec the
    CRD admits leaves a small record (in status) and the annotations far under the API server's
    256 KiB cap, and is reconciled."""
    spec = largest_spec()
    size = len(json.dumps(spec, separators=(",", ":")))
    body = {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "largest"},
        "spec": spec,
    }
    # Created, not `kubectl apply`-ed: client-side apply copies the object into its own
    # last-applied annotation, which no API server admits at this size (server-side apply does).
    cluster.custom.create_cluster_custom_object("entra-rbac.io", "v1alpha1", "entragroupbindings", body)

    def handled() -> dict[str, Any] | None:
        resource = cluster.egb("largest")
        status = resource.get("status") or {}
        done = (
            status.get("observedGeneration") == resource["metadata"]["generation"]
            and "lastHandledConfiguration" in status
        )
        return resource if done else None

    resource = cluster.wait_for("the largest spec handled", handled, timeout=120)
    annotations = resource["metadata"].get("annotations") or {}
    total = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    assert total < ANNOTATIONS_LIMIT, total
    last = resource["status"]["lastHandledConfiguration"]
    assert len(last) < 1024, len(last)
    assert json.loads(last)["spec"].keys() == {"sha256"}
    ready = cluster.condition("largest")
    assert (ready["status"], ready["reason"]) == ("False", "RoleNotAllowed"), ready
    assert not [k for k in cluster.managed_bindings() if "largest" in k[2]]
    print(f"largest spec: {size} bytes of JSON; annotations {total} bytes")
