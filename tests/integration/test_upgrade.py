"""Upgrading from the previous release revokes nothing and rewrites no binding (issue 16 point 4).

The previous release is taken from git (tests/integration/upgrade.py says which commit and why):
its CRDs and `deploy/` are installed with kubectl as docs/deployment.md says, its operator code
runs and converges three resources (group mode by id, by display name through a namespace
selector, user mode). Then the upgrade of docs/install.md: the old operator stops (the
Deployment's `Recreate`), the current CRDs and `deploy/` are applied, the current operator
starts and works through every resource and several refreshes. Throughout, a thread asks the API
server (SubjectAccessReview) whether every subject may still do what its role allows, and reads
every resource's Ready condition. Then:

- no SubjectAccessReview was ever denied, and every resource was always Ready;
- the operator sent no POST, PUT, PATCH or DELETE for a RoleBinding or ClusterRoleBinding from
  the moment the old operator was stopped (the real kube-apiserver's audit log, the operator's
  identity only; the sandbox's own request counter);
- every binding has the resourceVersion it had before.

On the sandbox API server and the real control plane (the session's; what the test installs is
removed and waited for, since the suites after it share it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.controlplane.audit import AuditLog
from tests.controlplane.harness import ControlPlane
from tests.e2e.harness import OPERATOR_ENV, WRITES, Cluster, guid
from tests.integration.upgrade import ROOT, Release, extract, previous_release

pytestmark = pytest.mark.e2e

PAYMENTS, PLATFORM, AUDITORS = guid(100), guid(101), guid(102)
ALICE = {"id": guid(1), "userPrincipalName": "alice@contoso.com", "userType": "Member"}
BOB = {"id": guid(2), "userPrincipalName": "bob@contoso.com", "userType": "Member"}
DIRECTORY = {
    "users": [ALICE, BOB],
    "groups": [
        {"id": PAYMENTS, "displayName": "Payments", "securityEnabled": True, "members": [guid(1)]},
        {"id": PLATFORM, "displayName": "Platform Team", "securityEnabled": True, "members": [guid(2)]},
        {"id": AUDITORS, "displayName": "Auditors", "securityEnabled": True, "members": [guid(1), guid(2)]},
    ],
}
NAMESPACES = {"upg-payments": {"team": "payments"}, "upg-shop": {"tier": "web"}, "upg-web": {"tier": "web"}}


def resource(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": spec,
    }


RESOURCES = [
    resource(
        "upg-payments",
        groups=[{"id": PAYMENTS}],
        roleBindings=[{"clusterRole": "edit", "namespaces": ["upg-payments"]}],
        clusterRoleBindings=[{"clusterRole": "view"}],
    ),
    resource(
        "upg-platform",
        groups=[{"displayName": "Platform Team"}],
        roleBindings=[{"clusterRole": "admin", "namespaceSelector": {"matchLabels": {"tier": "web"}}}],
    ),
    resource(
        "upg-auditors",
        groups=[{"id": AUDITORS}],
        subjects={"kind": "User"},
        roleBindings=[{"clusterRole": "view", "namespaces": ["upg-payments", "upg-shop"]}],
    ),
]
# What each role lets a subject do, asked of the API server.
PROBES = {
    "view": ("list", "", "pods"),
    "edit": ("create", "apps", "deployments"),
    "admin": ("create", "rbac.authorization.k8s.io", "rolebindings"),
}
# Like the e2e suite (tests/e2e/conftest.py): `make test` sets it to `real`.
SERVERS = [
    s.strip() for s in os.environ.get("ENTRA_RBAC_E2E_SERVERS", "sandbox,real").split(",") if s.strip()
]
BINDINGS = r"^/apis/rbac\.authorization\.k8s\.io/v1/(namespaces/[^/]+/)?(rolebindings|clusterrolebindings)"


@dataclass
class Watch:
    """Asks the API server, round after round, whether each subject keeps its access and whether
    each resource is Ready, until stopped; keeps every failure seen."""

    cluster: Cluster
    reviews: list[client.V1SubjectAccessReview]
    denied: list[str] = field(default_factory=list)
    not_ready: list[str] = field(default_factory=list)
    rounds: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with self.cluster.sandbox.admin_client() as api:
            authorization = client.AuthorizationV1Api(api)
            custom = client.CustomObjectsApi(api)
            while not self.stop.is_set():
                for review in self.reviews:
                    answer = authorization.create_subject_access_review(review)
                    if not answer.status.allowed:
                        self.denied.append(f"round {self.rounds}: {review.spec.to_dict()}")
                for item in custom.list_cluster_custom_object(
                    "entra-rbac.io", "v1alpha1", "entragroupbindings"
                )["items"]:
                    ready = [c for c in item["status"]["conditions"] if c["type"] == "Ready"]
                    if not ready or ready[0]["status"] != "True":
                        self.not_ready.append(f"round {self.rounds}: {item['metadata']['name']}: {ready}")
                self.rounds += 1
                self.stop.wait(0.1)  # pacing, so the servers under test are not flooded


def reviews(bindings: dict[tuple[str, str, str], dict[str, Any]]) -> list[client.V1SubjectAccessReview]:
    """One SubjectAccessReview per subject of every binding, for what its role allows."""
    found = []
    for (_, namespace, _), binding in sorted(bindings.items()):
        verb, group, what = PROBES[binding["roleRef"]["name"]]
        attributes = client.V1ResourceAttributes(
            verb=verb, group=group, resource=what, namespace=namespace or None
        )
        for subject in binding["subjects"]:
            user = subject["name"] if subject["kind"] == "User" else "someone@contoso.com"
            groups = [subject["name"]] if subject["kind"] == "Group" else []
            spec = client.V1SubjectAccessReviewSpec(user=user, groups=groups, resource_attributes=attributes)
            found.append(client.V1SubjectAccessReview(spec=spec))
    return found


def resumed(cluster: Cluster, items: list[dict[str, Any]]) -> bool:
    """Whether the operator started last has handled every item (kopf logs each handler's success)."""
    log = cluster.log_path.read_text(encoding="utf-8", errors="replace")
    since = log.rsplit("Starting operator", 1)[-1]
    return all(f"Handler 'reconcile' succeeded. resource={i['metadata']['name']}" in since for i in items)


def running_code(sandbox: Release) -> str:
    """Where the operator's package is imported from, in the environment the operator runs with."""
    done = subprocess.run(
        [sys.executable, "-c", "import entra_rbac; print(entra_rbac.__file__)"],
        env=sandbox.operator_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture(params=SERVERS)
def release(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Release, Cluster]]:
    old = extract(previous_release(), tmp_path / "previous")
    cp: ControlPlane | None = request.getfixturevalue("control_plane") if request.param == "real" else None
    directory = tmp_path / "directory.yaml"
    directory.write_text("{}\n", encoding="utf-8")
    log_path = tmp_path / "operator.log"
    with log_path.open("w", encoding="utf-8") as log:
        sandbox = Release(
            directory,
            tree=old,
            state_dir=tmp_path / "sandbox",
            control_plane=cp,
            operator_env=OPERATOR_ENV,
            operator_output=log,
        )
        sandbox.start()
        cluster = Cluster(
            sandbox, log_path, server=request.param, audit=AuditLog(cp.audit_log) if cp else None
        )
        try:
            yield sandbox, cluster
        finally:
            sandbox.stop_operator()
            try:
                if cp is not None:
                    sandbox.uninstall(NAMESPACES)
            finally:
                cluster.api.close()
                sandbox.stop()


def test_upgrade_from_the_previous_release_revokes_nothing_and_rewrites_no_binding(
    release: tuple[Release, Cluster],
) -> None:
    sandbox, cluster = release
    assert sandbox.tree is not None
    assert running_code(sandbox) == str(sandbox.tree / "operator" / "entra_rbac" / "__init__.py")
    cluster.directory(DIRECTORY)
    for name, labels in NAMESPACES.items():
        cluster.namespace(name, labels)
    cluster.apply(*RESOURCES)
    for item in RESOURCES:
        cluster.wait_ready(item["metadata"]["name"], timeout=60)
    wanted = {
        ("ClusterRoleBinding", "", "egb:upg-payments:clusterrole:view"),
        ("RoleBinding", "upg-payments", "egb:upg-payments:clusterrole:edit"),
        ("RoleBinding", "upg-shop", "egb:upg-platform:clusterrole:admin"),
        ("RoleBinding", "upg-web", "egb:upg-platform:clusterrole:admin"),
        ("RoleBinding", "upg-payments", "egb:upg-auditors:clusterrole:view"),
        ("RoleBinding", "upg-shop", "egb:upg-auditors:clusterrole:view"),
    }
    cluster.wait_for("the old operator's bindings", lambda: set(cluster.managed_bindings()) == wanted)
    before = cluster.managed_bindings()
    watch = Watch(cluster, reviews(before))
    assert len(watch.reviews) == 8  # Payments twice, Platform Team in 2 namespaces, 2 users x 2 namespaces
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    try:
        cluster.wait_for("a first round of access reviews", lambda: watch.rounds >= 1)
        # The Deployment's Recreate: the old operator stops, the new manifests, the new operator.
        # The real server's audit log counts the operator's own requests from here on; the
        # sandbox counts everyone's (the apply too), so from the moment the new operator starts.
        cluster.requests.reset()
        sandbox.stop_operator()
        sandbox.install(None)
        if cluster.server == "sandbox":
            cluster.requests.reset()
        assert running_code(sandbox) == str(ROOT / "operator" / "entra_rbac" / "__init__.py")
        sandbox.start_operator()
        started = sandbox.entra.count()
        # The new operator resumed every resource (kopf's log line for each handled resume), then
        # read Entra again on its refreshes (2 s).
        cluster.wait_for("the new operator to resume every resource", lambda: resumed(cluster, RESOURCES))
        cluster.wait_for(
            "three directory reads by the new operator", lambda: sandbox.entra.count() >= started + 3
        )
        for item in RESOURCES:
            cluster.wait_ready(item["metadata"]["name"])
        rounds = watch.rounds
        cluster.wait_for("two more rounds of access reviews", lambda: watch.rounds >= rounds + 2)
    finally:
        watch.stop.set()
        thread.join(timeout=30)

    assert watch.denied == [], watch.denied
    assert watch.not_ready == [], watch.not_ready
    writes = {m: cluster.requests.count(m, BINDINGS) for m in WRITES}
    assert writes == dict.fromkeys(WRITES, 0), cluster.requests.counts()
    after = cluster.managed_bindings()
    assert set(after) == wanted
    versions = {key: b["metadata"]["resourceVersion"] for key, b in before.items()}
    assert {key: b["metadata"]["resourceVersion"] for key, b in after.items()} == versions
    print(f"upgrade: {watch.rounds} rounds of {len(watch.reviews)} access reviews, none denied")
