"""insight.report over an in-memory reader: the expires column of time-bound grants."""

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
    def __init__(self, resources: list[dict[str, Any]], bindings: list[dict[str, Any]]) -> None:
        self._resources, self._bindings = resources, bindings

    def resources(self) -> list[dict[str, Any]]:
        return self._resources

    def cluster_role_bindings(self) -> Iterator[list[dict[str, Any]]]:
        yield [b for b in self._bindings if not b["metadata"].get("namespace")]

    def role_bindings(self) -> Iterator[list[dict[str, Any]]]:
        yield [b for b in self._bindings if b["metadata"].get("namespace")]


def expires(resources: list[dict[str, Any]], bindings: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    out = io.StringIO()
    write_report(cast(ClusterReader, Reader(resources, bindings)), "json", out, NOW)
    return {(r["resource"], r["role"]): r["expires"] for r in json.loads(out.getvalue())["rows"]}


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


def test_a_spec_that_does_not_parse_reports_no_expiry_rather_than_failing() -> None:
    broken = resource("broken", "u3", validUntil="tomorrow", clusterRoleBindings=[{"clusterRole": "view"}])
    assert expires([broken], [binding("broken", "u3", "view")]) == {("broken", "ClusterRole/view"): ""}
