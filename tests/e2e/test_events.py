"""End to end: the Events an auditor and an on-call engineer read (docs/design.md, Events).

One operator, two resources, on each API server: the audit trail is one Event per change (and so
about one request per binding written), every problem is a Warning Event that a repeat counts up
instead of adding objects, a 253-character resource name gets its Events, revocations say
"Revoked", no log line claims a deletion that did not happen, and `kubectl describe` / `kubectl
get -o wide` read as a person expects (Table output from the real API server on `[real]`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.harness import WRITES, Cluster, guid

pytestmark = pytest.mark.e2e

GROUP = guid(140)
LONG = "a" * 241 + "-audit-trail"  # 253 characters: the longest legal name
NAMESPACES = [f"ev-{i:02d}" for i in range(20)]


def directory() -> dict[str, Any]:
    group = {"id": GROUP, "displayName": "Auditors", "mailNickname": "auditors", "members": []}
    return {"groups": [group]}


def resource(name: str, namespaces: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": {
            "groups": [{"id": GROUP}],
            "roleBindings": [{"clusterRole": "view", "namespaces": namespaces}],
            **spec,
        },
    }


def events(cluster: Cluster, name: str, type_: str | None = None) -> list[dict[str, Any]]:
    """Through kubectl and its field selectors, as a person would look."""
    selector = f"involvedObject.name={name}" + (f",type={type_}" if type_ else "")
    done = cluster.kubectl("get", "events", "-A", f"--field-selector={selector}", "-o", "json")
    return list(json.loads(done.stdout)["items"])


def _settled(count: Callable[[], int], quiet: float = 3.0, timeout: float = 30.0) -> int:
    """`count()` once it has not moved for `quiet` seconds (a deadline of `timeout`)."""
    began = since = time.monotonic()
    last = count()
    while time.monotonic() - since < quiet:
        assert time.monotonic() - began < timeout, f"still moving after {timeout} s: {last}"
        time.sleep(0.2)  # sampling a counter until it holds still, with a deadline
        if (value := count()) != last:
            last, since = value, time.monotonic()
    return last


def test_events_audit_each_change_once_and_warn_once_per_problem(cluster: Cluster) -> None:
    assert len(LONG) == 253
    cluster.directory(directory())
    # One kubectl apply for the 20 namespaces (the harness's namespace() is one call each).
    cluster.created_namespaces.extend(NAMESPACES)
    cluster.apply(*({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES))
    cluster.requests.reset()
    cluster.apply(resource(LONG, NAMESPACES))
    cluster.wait_ready(LONG, timeout=90)

    # One audit Event for 20 bindings, and about one request per binding written.
    audit = cluster.wait_for("the audit Event", lambda: events(cluster, LONG, "Normal"))
    assert [e["reason"] for e in audit] == ["Granted"], audit
    assert audit[0]["message"].startswith("Granted access: created 20 bindings (+1 subject)."), audit
    assert f"Entra groups: {GROUP}." in audit[0]["message"]
    written = cluster.requests.count("POST", r"^/apis/rbac")
    assert written == 20
    # kopf's peering heartbeats (a PATCH per peering lifetime) are time, not bindings: not counted.
    heartbeats = sum(cluster.requests.count(method, r"^/apis/kopf\.dev/") for method in WRITES)
    writes = sum(cluster.requests.count(method) for method in WRITES) - heartbeats
    total = cluster.requests.count()
    print(
        f"\n20 bindings written: {writes} writes ({writes / written:.2f} per binding), {total} requests,"
        f" {heartbeats} peering heartbeats"
    )
    assert writes / written <= 1.2, cluster.requests.counts()
    assert cluster.requests.count("POST", r"/events$") == 1, cluster.requests.counts()
    # The resource itself is written once for its first handling: its status, carrying kopf's
    # record of the handling; kopf sends no patch of its own (triggers.diffbase). kopf would send
    # it right after the handler returned: the count must hold still for a while.
    ours = rf"^/apis/entra-rbac\.io/v1alpha1/entragroupbindings/{LONG}(/status)?$"
    to_resource = _settled(lambda: sum(cluster.requests.count(m, ours) for m in WRITES))
    assert to_resource == 1, cluster.requests.counts()
    assert cluster.requests.count("PATCH", rf"/entragroupbindings/{LONG}/status$") == 1

    # A problem that stays is one Warning, counted up, never a flood of objects.
    cluster.apply(resource("stalled", ["ev-00", "ev-absent"]))
    cluster.wait_reason("stalled", "NamespaceNotFound", timeout=60)

    def counted() -> list[dict[str, Any]] | None:
        found = events(cluster, "stalled", "Warning")
        return found if found and (found[0].get("count") or 0) >= 3 else None

    warnings = cluster.wait_for("the Warning counted up three times", counted, timeout=60)
    assert [e["reason"] for e in warnings] == ["NamespaceNotFound"], warnings
    assert "ev-absent" in warnings[0]["message"]
    listed = cluster.kubectl("get", "events", "-n", "default", "--field-selector=type=Warning")
    assert "NamespaceNotFound" in listed.stdout
    assert "entragroupbinding/stalled" in listed.stdout
    described = cluster.kubectl("describe", "egb", "stalled").stdout
    sections = [line.strip() for line in described.splitlines() if line.strip().endswith(":")]
    # kubectl's generic describer prints fields in alphabetical order, then the Events.
    for section in ("Status:", "Bindings:", "Conditions:", "Groups:", "Events:"):
        assert section in sections, described
    assert re.search(
        r"Warning\s+NamespaceNotFound\s+\S+ \(x\d+ over \S+\)\s+entra-rbac-operator", described
    ), described

    # A directory outage is one Warning per resource, however many retries it takes.
    cluster.sandbox.entra.add_fault("/v1.0/", status=503, count=10_000)
    cluster.request_sync(LONG)
    cluster.wait_reason(LONG, "DirectoryUnavailable", timeout=60)
    cluster.wait_for("the outage's Warning", lambda: events(cluster, LONG, "Warning"))
    cluster.sandbox.entra.faults.clear()
    cluster.request_sync(LONG)
    cluster.wait_ready(LONG, timeout=60)
    assert [e["reason"] for e in events(cluster, LONG, "Warning")] == ["DirectoryUnavailable"]

    # Revocations say so, in one Event.
    cluster.apply(resource(LONG, NAMESPACES[:10]))
    revoked = cluster.wait_for(
        "the Revoked Event", lambda: [e for e in events(cluster, LONG, "Normal") if e["reason"] == "Revoked"]
    )
    assert len(revoked) == 1, revoked
    assert revoked[0]["message"].startswith("Revoked access: deleted 10 bindings (-1 subject)."), revoked

    # Suspended: GROUPS never contradicts the bindings kept beside it.
    cluster.apply(resource(LONG, NAMESPACES[:10], suspend=True))
    cluster.wait_reason(LONG, "Suspended")
    row = cluster.kubectl("get", "egb", LONG, "-o", "wide", "--no-headers").stdout.split()
    assert row[1:5] == ["False", "1/1", "10", "1"], row

    # Nothing was deleted so far, and no log line said otherwise.
    log = cluster.log_path.read_text(encoding="utf-8")
    assert "Handler 'deleted'" not in log
    assert "Handler 'resource_gone'" not in log
    cluster.kubectl("delete", "egb", "stalled", "--wait=true", "--timeout=30s")
    cluster.wait_for(
        "the deletion handled",
        lambda: "Handler 'resource_gone' succeeded" in cluster.log_path.read_text(encoding="utf-8"),
    )
