"""insight.report over an in-memory reader: the expires column of time-bound grants, and which
bindings it attributes to a resource (only those at its targets, as the reconcile counts them)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

from entra_rbac.adapters.kube.reader import ClusterReader
from entra_rbac.constants import MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_UID_LABEL
from entra_rbac.insight.report import write_report

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GROUP = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"


def resource(name: str, uid: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": uid}, "spec": {"groups": [{"id": GROUP}], **spec}}


def binding(owner: str, uid: str, role: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": f"egb:{owner}:clusterrole:{role}",
        "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, OWNER_UID_LABEL: uid},
        "ownerReferences": [{"uid": uid, "controller": True, "kind": "EntraGroupBinding", "name": owner}],
        "creationTimestamp": "2026-11-30T00:00:00Z",
    }
    if namespace:
        meta["namespace"] = namespace
    return {
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GROUP}],
    }


class Reader:
    def __init__(
        self,
        resources: list[dict[str, Any]],
        bindings: list[dict[str, Any]],
        namespaces: tuple[str, ...] = ("payments", "team-b"),
    ) -> None:
        self._resources, self._bindings, self._namespaces = resources, bindings, namespaces

    def resources(self) -> list[dict[str, Any]]:
        return self._resources

    def namespaces(self) -> list[dict[str, Any]]:
        return [{"metadata": {"name": n}} for n in self._namespaces]

    def cluster_role_bindings(self) -> Iterator[list[dict[str, Any]]]:
        yield [b for b in self._bindings if not b["metadata"].get("namespace")]

    def role_bindings(self) -> Iterator[list[dict[str, Any]]]:
        yield [b for b in self._bindings if b["metadata"].get("namespace")]


def rows(resources: list[dict[str, Any]], bindings: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = io.StringIO()
    write_report(cast(ClusterReader, Reader(resources, bindings)), "json", out, NOW)
    found: list[dict[str, str]] = json.loads(out.getvalue())["rows"]
    return found


def expires(resources: list[dict[str, Any]], bindings: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {(r["resource"], r["role"]): r["expires"] for r in rows(resources, bindings) if r["resource"]}


def test_the_report_names_when_each_time_bound_grant_ends_and_nothing_for_the_others() -> None:
    oncall = resource(
        "oncall",
        "u1",
        validUntil="2026-12-02T00:00:00Z",
        clusterRoleBindings=[{"clusterRole": "view"}],
        roleBindings=[
            {"clusterRole": "edit", "namespaces": ["payments"], "validUntil": "2026-12-01T18:00:00Z"}
        ],
    )
    steady = resource("steady", "u2", clusterRoleBindings=[{"clusterRole": "view"}])
    found = expires(
        [oncall, steady],
        [
            binding("oncall", "u1", "view"),
            binding("oncall", "u1", "edit", "payments"),
            binding("steady", "u2", "view"),
        ],
    )
    assert found == {
        ("oncall", "ClusterRole/view"): "2026-12-02T00:00:00Z",  # the spec's window
        ("oncall", "ClusterRole/edit"): "2026-12-01T18:00:00Z",  # its entry narrows it
        ("steady", "ClusterRole/view"): "",
    }


def test_a_spec_that_does_not_parse_claims_its_bindings_without_owning_them() -> None:
    """Its targets are unknown (the reconcile writes nothing for it): its bindings are listed as
    claiming it, attributed to no resource and with no expiry, rather than failing the report."""
    broken = resource("broken", "u3", validUntil="tomorrow", clusterRoleBindings=[{"clusterRole": "view"}])
    [row] = rows([broken], [binding("broken", "u3", "view")])
    assert (row["section"], row["resource"], row["claimedBy"], row["expires"]) == ("stray", "", "broken", "")


def forged(owner: str, uid: str, role: str, namespace: str, name: str | None = None) -> dict[str, Any]:
    """A binding someone else wrote with the resource's marks (its uid is readable by all who may
    view it) and subjects of their own choosing."""
    made = binding(owner, uid, role, namespace)
    if name is not None:
        made["metadata"]["name"] = name
    made["subjects"] = [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"friend{n}@contoso.com"}
        for n in range(3)
    ]
    return made


def test_a_binding_with_a_resources_marks_outside_its_targets_is_attributed_to_nobody() -> None:
    """docs/design.md, Ownership: a binding counts as the resource's only at a name and namespace
    its spec grants; the report lists the others as strays claiming it, whatever role they grant,
    and no who-has-what row names the resource for them."""
    victim = resource("victim", "u1", roleBindings=[{"clusterRole": "edit", "namespaces": ["payments"]}])
    listed = rows(
        [victim],
        [
            binding("victim", "u1", "edit", "payments"),
            forged("victim", "u1", "edit", "team-b"),  # its name, a namespace it does not target
            forged("victim", "u1", "admin", "payments"),  # a target namespace, a role not granted
        ],
    )
    managed = [(r["binding"], r["subject"]) for r in listed if r["section"] == "managed"]
    assert managed == [("RoleBinding payments/egb:victim:clusterrole:edit", GROUP)]
    strays = {(r["binding"], r["resource"], r["claimedBy"]) for r in listed if r["section"] == "stray"}
    assert strays == {
        ("RoleBinding team-b/egb:victim:clusterrole:edit", "", "victim"),
        ("RoleBinding payments/egb:victim:clusterrole:admin", "", "victim"),
    }
    assert all(r["resource"] in ("", "victim") for r in listed)
    assert {r["viaGroups"] for r in listed if r["section"] == "stray"} == {""}
