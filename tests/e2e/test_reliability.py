"""End to end, issue 18 (reliability): scenarios probed from outside, each with request counts as
evidence, on the sandbox and on the real control plane.

- A namespace admin forges a binding carrying a resource's marks (docs/design.md, Ownership):
  never counted, never holds a revocation, deleted as cleanup, status untouched.
- Two, then three, `entra-rbac run` processes at once (docs/deployment.md, Never two writers): a
  paused instance sends no write and no Entra request; a standby takes over when the active one
  is killed; equal priorities all pause.
- maxStaleness counts from the last verified read across a restart; the largest legal spec fits.
- A blip never revokes (docs/design.md, Directory semantics): a pinned group that reads as deleted
  for a moment, a members-404 and an empty member list, at once, keep every binding, not written
  to; a lasting 404 (pinned id, member list) revokes only once a read from Entra, the confirmation
  interval later, agrees (timestamps from the sandbox directory's request log).
- Status tells the truth first: while everyone's removal waits for confirmation, then is held,
  Ready says DeletionUnconfirmed, then RevocationHeld, never RoleNotFound, Reconciled or Stalled;
  the emptied user-mode group ends Ready.
- One throttle for the tenant: a Retry-After on one Graph request leaves the directory's log
  empty of Graph requests until it has passed; a 404 on getByIds itself is DirectoryUnavailable.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import Cluster, guid

pytestmark = pytest.mark.e2e

TEAM = guid(300)
ALICE = {"id": guid(1), "userPrincipalName": "alice@contoso.com", "userType": "Member"}
BOB = {"id": guid(2), "userPrincipalName": "bob@contoso.com", "userType": "Member"}
RB = ("RoleBinding", "payments", "egb:victim:clusterrole:edit")
FORGED_NAME = "egb:victim:clusterrole:view"


def directory(*members: dict[str, str]) -> dict[str, Any]:
    return {
        "users": [ALICE, BOB],
        "groups": [
            {
                "id": TEAM,
                "displayName": "Team",
                "mailNickname": "team",
                "securityEnabled": True,
                "members": [m["id"] for m in members],
            }
        ],
    }


def victim() -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "victim"},
        "spec": {
            "groups": [{"id": TEAM}],
            "subjects": {"kind": "User"},
            "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
        },
    }


def forgery(uid: str) -> dict[str, Any]:
    """What mallory, admin of team-b only, can write there: the victim's marks (its uid is
    readable by anyone who may view it) and twenty subjects of her choice."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": FORGED_NAME,
            "namespace": "team-b",
            "labels": {"app.kubernetes.io/managed-by": "entra-rbac-operator", "entra-rbac.io/owner-uid": uid},
            "ownerReferences": [
                {
                    "apiVersion": "entra-rbac.io/v1alpha1",
                    "kind": "EntraGroupBinding",
                    "name": "victim",
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"friend{n}@contoso.com"}
            for n in range(20)
        ],
    }


def forge(cluster: Cluster, uid: str) -> bool:
    """Mallory creates the forgery (as herself, by impersonation); False if it is still there."""
    done = cluster.kubectl(
        "--as", "mallory", "create", "-f", "-", stdin=yaml.safe_dump(forgery(uid)), check=False
    )
    if done.returncode != 0 and "AlreadyExists" not in done.stderr:
        raise AssertionError(f"mallory could not forge: {done.stderr}")
    return done.returncode == 0


def forged_exists(cluster: Cluster) -> bool:
    return any(
        item.metadata.name == FORGED_NAME
        for item in cluster.rbac.list_namespaced_role_binding("team-b").items
    )


def test_a_forged_binding_never_holds_a_revocation_nor_touches_status(cluster: Cluster) -> None:
    """Issue 18 point 4: a namespace admin elsewhere forges the victim's marks, and re-forges
    every second while a user is removed in Entra; the user loses access at the next read."""
    cluster.directory(directory(ALICE, BOB))
    cluster.namespace("payments")
    cluster.namespace("team-b")
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "mallory-admin", "namespace": "team-b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
        }
    )
    cluster.apply(victim())
    cluster.wait_ready("victim")
    uid = cluster.egb("victim")["metadata"]["uid"]
    status = cluster.egb("victim")["status"]
    requests = cluster.requests
    requests.reset()

    assert forge(cluster, uid)
    cluster.wait_for("the forgery deleted as cleanup", lambda: not forged_exists(cluster))
    assert requests.count("DELETE", r"/namespaces/team-b/rolebindings/") >= 1
    assert cluster.operator_writes(r"/status$") == 0  # the victim's status never moved
    assert cluster.egb("victim")["status"]["summary"] == status["summary"]
    assert any(
        e.get("reason") == "Revoked" and "deleted RoleBinding team-b/" in (e.get("message") or "")
        for e in cluster.events("victim")
    )

    cluster.directory(directory(ALICE))  # bob leaves the group
    reasons: set[str] = set()
    deadline = time.monotonic() + 60
    while cluster.subjects(*RB) != ["alice@contoso.com"]:
        assert time.monotonic() < deadline, f"bob still bound; reasons seen {reasons}\n{cluster.log_tail()}"
        forge(cluster, uid)
        reasons.add(cluster.condition("victim").get("reason", ""))
        time.sleep(0.5)  # mallory's pace, not a wait for the operator
    assert "RevocationHeld" not in reasons
    assert not cluster.can_i("create", "configmaps", user="bob@contoso.com", namespace="payments")
    assert cluster.egb("victim")["status"].get("revocationHold") is None
    cluster.wait_for("the last forgery deleted", lambda: not forged_exists(cluster))


# --- never two writers ---------------------------------------------------------------------

PEERING = ("kopf.dev", "v1", "clusterkopfpeerings", "entra-rbac-operator")
LIFETIME = 5  # seconds: the peering lifetime of every instance here (default 60)
QUIET = 8.0  # seconds each window of silence is watched
NOT_PEERING = r"^/(?!apis/kopf\.dev/)"  # every write but kopf's heartbeats


def pair() -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "pair"},
        "spec": {"groups": [{"id": TEAM}], "clusterRoleBindings": [{"clusterRole": "view"}]},
    }


def instance(cluster: Cluster, log: Path, **env: str) -> subprocess.Popen[str]:
    """One more `entra-rbac run`, as the fixture's operator runs, with `env` on top."""
    environment = {**cluster.sandbox.operator_environment(), **env}
    with log.open("w", encoding="utf-8") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "entra_rbac", "run"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


def heartbeats(cluster: Cluster) -> dict[str, Any]:
    peering = cluster.custom.get_cluster_custom_object(*PEERING)
    return dict(peering.get("status") or {})


def paused_lines(log: Path) -> int:
    return log.read_text(encoding="utf-8").count("Paused the refresher")


def quiet_window(cluster: Cluster, what: str) -> dict[str, int]:
    """Watch QUIET seconds: no operator write (heartbeats aside) and no Entra request at all."""
    cluster.requests.reset()
    entra_before = cluster.sandbox.entra.count()
    deadline = time.monotonic() + QUIET
    while time.monotonic() < deadline:
        writes = cluster.operator_writes(NOT_PEERING)
        entra = cluster.sandbox.entra.count() - entra_before
        assert (writes, entra) == (0, 0), f"{what}: {cluster.requests.counts()}, {entra} Entra requests"
        time.sleep(0.5)  # sampling the window, not waiting for the operator
    return {"heartbeats": cluster.requests.count("PATCH", r"^/apis/kopf\.dev/")}


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_a_paused_instance_neither_writes_nor_reads_entra_and_a_standby_takes_over(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Issue 18 point 1. The active instance (priority 100) is idle (refresh 1h, no delta
    queries); the standby (priority 50) refreshes every second, asks Graph's delta and lacks
    `view` in its allowlist, so were it acting it would read Entra and delete the binding at once.
    Then the active one is killed; then a third instance with the standby's priority joins, and
    both pause."""
    peering = {"ENTRA_RBAC_PEERING_LIFETIME": str(LIFETIME)}
    cluster.sandbox.stop_operator()
    cluster.sandbox.operator_env.update(
        {
            **peering,
            "ENTRA_RBAC_PEERING_PRIORITY": "100",
            # Quiet while idle, so that every Entra request in the windows is the others'.
            "ENTRA_RBAC_REFRESH_INTERVAL": "1h",
            "ENTRA_RBAC_DELTA_INTERVAL": "off",
        }
    )
    cluster.sandbox.start_operator()
    cluster.directory(directory(ALICE))
    cluster.apply(pair())
    cluster.wait_ready("pair")
    crb = ("ClusterRoleBinding", "", "egb:pair:clusterrole:view")
    assert crb in cluster.managed_bindings()

    standby_env = {
        **peering,
        "ENTRA_RBAC_PEERING_PRIORITY": "50",
        "ENTRA_RBAC_REFRESH_INTERVAL": "1s",
        "ENTRA_RBAC_ALLOWED_CLUSTER_ROLES": "edit",
    }
    standby_log, third_log = tmp_path / "standby.log", tmp_path / "third.log"
    standby = instance(cluster, standby_log, **standby_env)
    third: subprocess.Popen[str] | None = None
    try:
        cluster.wait_for("the standby's heartbeat", lambda: len(heartbeats(cluster)) >= 2, timeout=60)
        cluster.wait_for("the standby's refresher paused", lambda: paused_lines(standby_log) >= 1, timeout=60)
        figures = quiet_window(cluster, "the paused standby")
        assert figures["heartbeats"] >= 1  # both were alive and beating meanwhile

        cluster.sandbox.stop_operator(kill=True)  # no goodbye: its heartbeat must expire
        killed = time.monotonic()
        cluster.wait_for(
            "the standby in charge (its allowlist refuses view)",
            lambda: cluster.condition("pair").get("reason") == "RoleNotAllowed",
            timeout=LIFETIME + 45,
        )
        takeover = time.monotonic() - killed
        assert crb not in cluster.managed_bindings()
        print(f"takeover after the active instance was killed: {takeover:.1f} s (lifetime {LIFETIME} s)")

        # Equal priorities: the third would recreate the view binding, the standby would re-read
        # Entra every second; both pause instead (kopf's rule, and the refresher's).
        third = instance(
            cluster,
            third_log,
            **{**peering, "ENTRA_RBAC_PEERING_PRIORITY": "50", "ENTRA_RBAC_REFRESH_INTERVAL": "1s"},
        )
        cluster.wait_for(
            "both instances paused",
            lambda: paused_lines(third_log) >= 1 and paused_lines(standby_log) >= 2,
            timeout=60,
        )
        quiet_window(cluster, "two instances of equal priority")
        assert crb not in cluster.managed_bindings()
    finally:
        for process in (third, standby):
            if process is not None:
                stop(process)


# --- maxStaleness across a restart -----------------------------------------------------------

MAX_STALENESS = 8  # seconds; status keeps the last verified read within a quarter of it


def synced_at(cluster: Cluster, name: str) -> float:
    stamp = cluster.egb(name)["status"]["lastDirectorySync"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_max_staleness_counts_from_the_last_verified_read_across_a_restart(cluster: Cluster) -> None:
    """Issue 18 point 3: idle longer than maxStaleness, then Entra fails and the operator restarts
    during the outage. It must not revoke before maxStaleness has passed since the last verified
    read (the old status time would have revoked at once), and it does revoke after it."""
    cluster.sandbox.stop_operator()
    cluster.sandbox.operator_env["ENTRA_RBAC_MAX_STALENESS"] = f"{MAX_STALENESS}s"
    cluster.sandbox.start_operator()
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
    CRD admits stays under the API server's 256 KiB cap on annotations, and is reconciled."""
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
        annotations = resource["metadata"].get("annotations") or {}
        status = resource.get("status") or {}
        done = status.get("observedGeneration") == resource["metadata"]["generation"] and any(
            k.endswith("/last-handled-configuration") for k in annotations
        )
        return resource if done else None

    resource = cluster.wait_for("the largest spec handled", handled, timeout=120)
    annotations = resource["metadata"]["annotations"]
    total = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    assert total < ANNOTATIONS_LIMIT, total
    last = next(v for k, v in annotations.items() if k.endswith("/last-handled-configuration"))
    assert json.loads(last)["spec"].keys() == {"sha256"}
    ready = cluster.condition("largest")
    assert (ready["status"], ready["reason"]) == ("False", "RoleNotAllowed"), ready
    assert not [k for k in cluster.managed_bindings() if "largest" in k[2]]
    print(f"largest spec: {size} bytes of JSON; annotations {total} bytes")


# --- a blip never revokes ------------------------------------------------------------------

# ENTRA_RBAC_DELETION_CONFIRMATION here: longer than the fixture's 3 s, so the end of a blip is
# surely seen before its confirming read, however loaded the machine.
CONFIRMATION = 6.0
BINDINGS_API = r"^/apis/rbac\.authorization\.k8s\.io/"
USERS = [
    {"id": guid(10 + n), "userPrincipalName": f"user{n}@contoso.com", "userType": "Member"} for n in range(6)
]
# One resource per blip, each its own group and a ClusterRoleBinding of view: a group pinned by
# id (group mode), a member list answering 404, a member list emptied (user mode).
PINNED, MEMBERS_404, EMPTIED = guid(500), guid(501), guid(502)
BLIPS = {"pinned": (PINNED, "Group"), "members": (MEMBERS_404, "User"), "emptied": (EMPTIED, "User")}
PINNED_READ = rf"^/groups/{PINNED}$"  # its own GET (in a $batch) after getByIds left it out
MEMBERS_READ = rf"^/v1\.0/groups/{MEMBERS_404}/transitiveMembers$"


def group(gid: str, *members: dict[str, str]) -> dict[str, Any]:
    return {
        "id": gid,
        "displayName": gid[-3:],
        "securityEnabled": True,
        "members": [m["id"] for m in members],
    }


def team(*members: dict[str, str]) -> dict[str, Any]:
    return {"users": [ALICE, BOB, *USERS], "groups": [group(TEAM, *members)]}


def blips_directory(*, pinned: bool = True, emptied: bool = False) -> dict[str, Any]:
    """PINNED absent (as on a replica that lags: getByIds leaves it out, its own GET answers 404)
    unless `pinned`; EMPTIED without members when `emptied`."""
    groups = [group(PINNED, ALICE)] if pinned else []
    groups += [group(MEMBERS_404, ALICE, BOB), group(EMPTIED, *(() if emptied else (ALICE, BOB)))]
    return {"users": [ALICE, BOB], "groups": groups}


def steady(name: str) -> dict[str, Any]:
    gid, kind = BLIPS[name]
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": {
            "groups": [{"id": gid}],
            "subjects": {"kind": kind},
            "clusterRoleBindings": [{"clusterRole": "view"}],
        },
    }


def view_of(name: str) -> tuple[str, str, str]:
    return ("ClusterRoleBinding", "", f"egb:{name}:clusterrole:view")


def entra_log(cluster: Cluster, path: str, since: float = 0.0) -> list[Any]:
    """The sandbox directory's requests (timestamped) on paths matching `path`, after `since`."""
    compiled = re.compile(path)
    return [r for r in cluster.sandbox.entra.request_log() if r.time > since and compiled.search(r.path)]


def wait_all_unconfirmed(cluster: Cluster, names: list[str]) -> None:
    """Each resource's status while its deletion waits for the confirming read (seen once each; a
    blip may end at the next refresh), checked against docs/troubleshooting.md: DeletionUnconfirmed,
    Ready=False, Reconciling=True, not Stalled, its group Unverified."""
    seen: dict[str, dict[str, Any]] = {}

    def probe() -> bool:
        for name in names:
            status = cluster.egb(name).get("status") or {}
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            if name not in seen and conditions.get("Ready", {}).get("reason") == "DeletionUnconfirmed":
                seen[name] = {"conditions": conditions, "groups": status.get("groups")}
        return len(seen) == len(names)

    cluster.wait_for(f"{names} to show an unconfirmed deletion", probe, 30)
    for name, status in seen.items():
        flags = {
            kind: status["conditions"].get(kind, {}).get("status")
            for kind in ("Ready", "Reconciling", "Stalled")
        }
        assert flags["Ready"] == "False", (name, status)
        assert flags["Reconciling"] == "True", (name, status)
        assert flags["Stalled"] != "True", (name, status)
        assert [g["state"] for g in status["groups"]] == ["Unverified"], (name, status)


def resolved(cluster: Cluster, name: str) -> bool:
    groups = cluster.egb(name).get("status", {}).get("groups") or [{}]
    return cluster.condition(name).get("reason") == "Reconciled" and groups[0].get("state") == "Resolved"


@pytest.mark.operator_env(ENTRA_RBAC_DELETION_CONFIRMATION=f"{CONFIRMATION:g}s")
def test_a_blip_never_revokes_and_a_lasting_deletion_revokes_only_once_confirmed(cluster: Cluster) -> None:
    """Issue 18 points 2 and 8, three blips at once: a group pinned by id vanishes for a moment
    (getByIds leaves it out, its own GET answers 404), a user-mode member list answers one 404,
    another is empty for a moment. Every binding is kept, not even written to. Then the pinned
    group and the member list answer 404 for good: each revoked only once a read from Entra, at
    least CONFIRMATION after the first, agrees (times from the sandbox directory's request log)."""
    cluster.directory(blips_directory())
    cluster.apply(*(steady(name) for name in BLIPS))
    for name in BLIPS:
        cluster.wait_ready(name)
    pair = ["alice@contoso.com", "bob@contoso.com"]
    cluster.wait_for(
        "the users bound",
        lambda: cluster.subjects(*view_of("members")) == pair == cluster.subjects(*view_of("emptied")),
    )
    versions = {
        name: cluster.managed_bindings()[view_of(name)]["metadata"]["resourceVersion"] for name in BLIPS
    }
    requests = cluster.requests
    requests.reset()
    entra = cluster.sandbox.entra

    blip = time.time()
    entra.add_fault(MEMBERS_READ, method="GET", status=404, count=1)
    cluster.directory(blips_directory(pinned=False, emptied=True))
    wait_all_unconfirmed(cluster, list(BLIPS))
    cluster.directory(blips_directory())
    for name in BLIPS:
        cluster.wait_for(f"{name} Resolved again", lambda name=name: resolved(cluster, name))
    assert entra_log(cluster, PINNED_READ, blip)  # its own read answered 404
    assert [r.fault for r in entra_log(cluster, MEMBERS_READ, blip)].count(404) == 1
    assert cluster.operator_writes(BINDINGS_API) == 0, requests.counts()
    bindings = cluster.managed_bindings()
    assert {name: bindings[view_of(name)]["metadata"]["resourceVersion"] for name in BLIPS} == versions

    lasting = time.time()
    entra.add_fault(MEMBERS_READ, method="GET", status=404, count=-1)
    cluster.directory(blips_directory(pinned=False))
    paths = {"pinned": PINNED_READ, "members": MEMBERS_READ}
    cluster.wait_for("the lasting 404s", lambda: all(entra_log(cluster, p, lasting) for p in paths.values()))
    first = {name: entra_log(cluster, path, lasting)[0].time for name, path in paths.items()}
    gone: dict[str, float] = {}

    def revoked() -> bool:
        bindings = cluster.managed_bindings()
        gone.update(
            {name: time.time() for name in paths if name not in gone and view_of(name) not in bindings}
        )
        return len(gone) == len(paths)

    cluster.wait_for("both revocations, confirmed", revoked, 60)
    for name, path in paths.items():
        waited = gone[name] - first[name]
        assert waited >= CONFIRMATION, (name, waited, cluster.log_tail())
        reads = [r.time for r in entra_log(cluster, path, lasting) if r.time < gone[name]]
        assert reads[-1] - first[name] >= CONFIRMATION, (name, reads)  # the confirming read
        print(
            f"{name}: a lasting 404 revoked {waited:.1f} s after the first (confirmation {CONFIRMATION:g} s)"
        )
    assert requests.count("DELETE", BINDINGS_API) == 2
    assert view_of("emptied") in cluster.managed_bindings()
    for name in paths:
        cluster.wait_reason(name, "GroupNotFound")
    entra.faults.clear()


# --- status tells the truth first ------------------------------------------------------------

HELD_NAMESPACE = "reliability-held"
EDIT = ("RoleBinding", HELD_NAMESPACE, "egb:held:clusterrole:edit")
HELD_VIEW = ("ClusterRoleBinding", "", "egb:held:clusterrole:view")


def held() -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "held"},
        "spec": {
            "groups": [{"id": TEAM}],
            "subjects": {"kind": "User"},
            "clusterRoleBindings": [{"clusterRole": "view"}],
            "roleBindings": [{"clusterRole": "edit", "namespaces": [HELD_NAMESPACE]}],
        },
    }


def conditions_of(cluster: Cluster, name: str) -> dict[str, tuple[str, str]]:
    status = cluster.egb(name).get("status") or {}
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status.get("conditions") or []}


def test_a_held_revocation_says_revocation_held_and_an_emptied_group_is_not_stalled(cluster: Cluster) -> None:
    """Issue 18 points 5 and 8: all six users leave the group at once. While Entra's empty list
    waits for its confirmation, then while the mass revocation is held, Ready says so
    (DeletionUnconfirmed, then RevocationHeld: Ready=False, Reconciling=True, never Stalled, as
    docs/troubleshooting.md says), never RoleNotFound nor Reconciled: the roles (existing `view`
    and `edit`) are checked for every grant though no subject is left. Nothing is written until the
    hold is released; then both bindings go and the empty group is Ready, not Stalled."""
    cluster.namespace(HELD_NAMESPACE)
    cluster.directory(team(*USERS))
    cluster.apply(held())
    names = sorted(u["userPrincipalName"] for u in USERS)
    cluster.wait_for(
        "six users bound", lambda: cluster.subjects(*EDIT) == names == cluster.subjects(*HELD_VIEW)
    )
    cluster.wait_ready("held")
    requests = cluster.requests
    requests.reset()

    cluster.directory(team())  # everyone leaves at once
    seen: list[dict[str, tuple[str, str]]] = []
    at_hold: dict[str, Any] | None = None
    deadline = time.monotonic() + 60
    while {EDIT, HELD_VIEW} & set(cluster.managed_bindings()):
        assert time.monotonic() < deadline, f"never revoked; seen {seen}\n{cluster.log_tail()}"
        conditions = conditions_of(cluster, "held")
        if conditions["Ready"][1] == "RevocationHeld" and at_hold is None:
            at_hold = {
                "status": cluster.egb("held")["status"],
                "deletes": requests.count("DELETE", BINDINGS_API),
                "subjects": (cluster.subjects(*EDIT), cluster.subjects(*HELD_VIEW)),
            }
        if not seen or seen[-1] != conditions:
            seen.append(conditions)
        time.sleep(0.1)  # sampling status, not waiting for the operator
    readies = [c["Ready"] for c in seen]
    assert at_hold is not None, f"RevocationHeld never shown: {readies}"
    assert (at_hold["deletes"], at_hold["subjects"]) == (0, (names, names)), at_hold
    assert at_hold["status"]["revocationHold"]["removed"] >= 6, at_hold["status"]
    reasons = [reason for _, reason in readies]
    assert {"RoleNotFound", "Reconciled"}.isdisjoint(reasons[1:]), readies
    for conditions in seen[1:]:
        if conditions["Ready"][1] in ("DeletionUnconfirmed", "RevocationHeld"):
            assert (conditions["Ready"][0], conditions["Reconciling"][0]) == ("False", "True"), conditions
        assert conditions.get("Stalled", ("False", ""))[0] != "True", seen
    assert requests.count("DELETE", BINDINGS_API) == 2

    def settled() -> dict[str, tuple[str, str]] | None:
        conditions = conditions_of(cluster, "held")
        summary = cluster.egb("held")["status"].get("summary") or {}
        return conditions if summary.get("subjects") == 0 and conditions["Ready"][0] == "True" else None

    final = cluster.wait_for("the emptied group Ready", settled)
    assert (final["Ready"][1], final.get("Stalled", ("False", ""))[0]) == ("Reconciled", "False"), final
    assert cluster.egb("held")["status"]["groups"][0]["state"] == "Resolved"
    print(f"held revocation: Ready reasons in order {[r for _, r in readies]}")


# --- one throttle for the tenant -------------------------------------------------------------

RETRY_AFTER = 4  # seconds, in the 429 Graph answers here
IN_FLIGHT = 1.0  # seconds after the 429 reached the operator: requests sent before may arrive
TEAMS = [guid(400 + n) for n in range(4)]
GRAPH = r"^/v1\.0/"  # every Graph request (an inner $batch request comes inside its outer one)
PAUSED = re.compile(r"Paused every Graph request: .* received=([0-9.]+)")


def teams_directory() -> dict[str, Any]:
    groups = [
        {"id": gid, "displayName": f"Team {n}", "securityEnabled": True, "members": [ALICE["id"]]}
        for n, gid in enumerate(TEAMS)
    ]
    return {"users": [ALICE], "groups": groups}


def busy(n: int) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": f"busy-{n}"},
        "spec": {
            "groups": [{"id": TEAMS[n]}],
            "subjects": {"kind": "User"},
            "clusterRoleBindings": [{"clusterRole": "view"}],
        },
    }


def paused_at(cluster: Cluster) -> float | None:
    """When the operator received a Retry-After, by its own log (wall clock)."""
    found = PAUSED.search(cluster.log_path.read_text(encoding="utf-8", errors="replace"))
    return float(found.group(1)) if found else None


def test_a_retry_after_pauses_every_graph_request_and_a_404_on_get_by_ids_is_a_clear_status(
    cluster: Cluster,
) -> None:
    """Issue 18 points 6 and 8. Four user-mode resources keep Graph busy (each refresh reads ids
    in bulk and four member lists, every 2 s, and delta queries). One member read answers 429 with
    Retry-After: from the moment the operator got it until Retry-After has passed since that
    request, the sandbox directory's timestamped log holds no Graph request sent meanwhile; then traffic
    resumes and every resource stays Ready. Then getByIds itself answers 404: DirectoryUnavailable
    naming it, bindings kept, no traceback in the log."""
    cluster.directory(teams_directory())
    cluster.apply(*(busy(n) for n in range(len(TEAMS))))
    for n in range(len(TEAMS)):
        cluster.wait_ready(f"busy-{n}")
    entra = cluster.sandbox.entra
    members = rf"^/v1\.0/groups/{TEAMS[0]}/transitiveMembers$"
    entra.add_fault(members, method="GET", status=429, retry_after=RETRY_AFTER, count=1)
    received = cluster.wait_for("the operator to get the 429", lambda: paused_at(cluster), 30)
    throttled = next(r.time for r in entra_log(cluster, members) if r.fault == 429)
    cluster.wait_for(
        "Graph traffic to resume after the window",
        lambda: len(entra_log(cluster, GRAPH, throttled + RETRY_AFTER)) >= 3,
        timeout=RETRY_AFTER + 30,
    )
    log = entra_log(cluster, GRAPH, throttled - 2 * RETRY_AFTER)
    before = [r for r in log if r.time < throttled]
    # Reads the operator had already sent (past the throttle) when the 429 reached it may still
    # arrive just after: the prefetch reads four member lists at once. Anything later inside the
    # window was sent during the pause. Were the pause per call, the next refresh (every 2 s) and
    # the delta query (every 5 s) would land there.
    late = [
        f"{r.method} {r.path} +{r.time - throttled:.2f}s"
        for r in log
        if received + IN_FLIGHT < r.time < throttled + RETRY_AFTER - 0.05
    ]
    assert late == [], f"Graph requests inside the {RETRY_AFTER}s Retry-After window: {late}"
    in_flight = [r for r in log if received < r.time <= received + IN_FLIGHT]
    assert len(before) >= 3  # busy before: were it per call, the window would not be empty
    for n in range(len(TEAMS)):
        assert conditions_of(cluster, f"busy-{n}")["Ready"] == ("True", "Reconciled")
    print(
        f"throttle: {len(before)} Graph requests in the {2 * RETRY_AFTER} s before the 429,"
        f" none sent in its {RETRY_AFTER} s ({len(in_flight)} already in flight)"
    )

    mark = len(cluster.log_path.read_text(encoding="utf-8", errors="replace"))
    bindings = {k: v["metadata"]["resourceVersion"] for k, v in cluster.managed_bindings().items()}
    entra.add_fault(r"^/v1\.0/directoryObjects/getByIds$", method="POST", status=404, count=-1)
    ready = cluster.wait_reason("busy-0", "DirectoryUnavailable", timeout=30)
    assert "getByIds" in ready["message"], ready
    assert "404" in ready["message"], ready
    assert conditions_of(cluster, "busy-0").get("Stalled", ("False", ""))[0] != "True"
    assert [g["state"] for g in cluster.egb("busy-0")["status"]["groups"]] == ["Unverified"]
    entra.faults.clear()
    for n in range(len(TEAMS)):
        cluster.wait_ready(f"busy-{n}")
    assert {k: v["metadata"]["resourceVersion"] for k, v in cluster.managed_bindings().items()} == bindings
    text = cluster.log_path.read_text(encoding="utf-8", errors="replace")[mark:]
    assert "Traceback" not in text, text[max(0, text.index("Traceback") - 2000) :][:6000]
