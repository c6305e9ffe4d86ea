"""kstatus and Argo CD judge status documents the running operator wrote on the real kube-apiserver,
and `kubectl get egb -o wide` (the API server's Table) never contradicts itself.

tests/gitops/test_health_pure.py covers every reason from the pure builders; here the documents
are the real ones: Ready, two Stalled reasons, suspended, a generation not yet observed (the
operator stopped) and Terminating (a finalizer holds the deletion).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import Cluster
from tests.e2e.test_lifecycle import binding, directory
from tests.gitops.tools import argocd_health, kstatus

pytestmark = pytest.mark.e2e
HOLD = "example.com/e2e-hold"


def health(cluster: Cluster, name: str) -> tuple[str, str]:
    resource = cluster.egb(name)
    return kstatus(resource)["status"], argocd_health(resource)["status"]


def wide(cluster: Cluster, name: str) -> dict[str, str]:
    """One row of `kubectl get egb -o wide`, by column, as the API server's Table gives it."""
    lines = cluster.kubectl("get", "egb", name, "-o", "wide").stdout.splitlines()
    header, row = lines[0], lines[1]
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    cells = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return dict(zip(header.split(), cells, strict=True))


@pytest.mark.parametrize("cluster", ["real"], indirect=True)
def test_health_of_real_status_documents(cluster: Cluster) -> None:
    cluster.directory(directory())
    cluster.namespace("payments")
    cluster.apply(
        binding("ok", clusterRoleBindings=[{"clusterRole": "view"}]),
        binding("calm", clusterRoleBindings=[{"clusterRole": "view"}]),
        binding("no-group", groups=[{"id": "00000000-0000-0000-0000-000000000999"}]),
        binding("no-namespace", roleBindings=[{"clusterRole": "view", "namespaces": ["nowhere"]}]),
    )
    cluster.wait_ready("ok")
    cluster.wait_ready("calm")
    cluster.wait_reason("no-group", "GroupNotFound")
    cluster.wait_reason("no-namespace", "NamespaceNotFound")
    assert health(cluster, "ok") == ("Current", "Healthy"), cluster.dump("ok")
    assert health(cluster, "no-group") == ("Failed", "Degraded"), cluster.dump("no-group")
    assert health(cluster, "no-namespace") == ("Failed", "Degraded"), cluster.dump("no-namespace")
    row = wide(cluster, "ok")
    assert (row["READY"], row["GROUPS"], row["BINDINGS"], row["SUBJECTS"]) == ("True", "1/1", "2", "1"), row
    assert row["MESSAGE"].startswith("2 bindings (1 cluster-wide, 1 in namespaces) grant their roles"), row
    assert row["MESSAGE"].endswith("to 1 subject from 1 Entra group"), row

    cluster.kubectl("patch", "egb", "calm", "--type=merge", "-p", json.dumps({"spec": {"suspend": True}}))
    cluster.wait_reason("calm", "Suspended")
    assert health(cluster, "calm") == ("InProgress", "Suspended"), cluster.dump("calm")
    row = wide(cluster, "calm")
    # Suspended keeps its bindings: the groups column says what was last verified, not 0/1.
    assert (row["READY"], row["GROUPS"], row["BINDINGS"], row["SUSPENDED"]) == ("False", "1/1", "2", "true")

    cluster.sandbox.stop_operator()
    cluster.kubectl(
        "patch", "egb", "ok", "--type=merge", "-p", json.dumps({"spec": {"clusterRoleBindings": []}})
    )
    resource = cluster.egb("ok")
    assert resource["metadata"]["generation"] > resource["status"]["observedGeneration"]
    assert health(cluster, "ok") == ("InProgress", "Progressing")

    cluster.kubectl(
        "patch", "egb", "no-group", "--type=merge", "-p", json.dumps({"metadata": {"finalizers": [HOLD]}})
    )
    cluster.kubectl("delete", "egb", "no-group", "--wait=false")
    try:
        assert cluster.egb("no-group")["metadata"].get("deletionTimestamp")
        assert health(cluster, "no-group") == ("Terminating", "Progressing")
    finally:
        cluster.kubectl("patch", "egb", "no-group", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
