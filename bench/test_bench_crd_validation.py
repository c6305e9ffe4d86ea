"""Benchmark of the sandbox's custom-object validation (run by `make bench`, never by `make test`).

Prints the wall time the sandbox API server spends validating one EntraGroupBinding against the
CRD (schema + CEL through celpy), the first time and when the same object comes again (every
status write re-validates the spec), for a small resource and for one at the CRD's limits
(100 groups, 50 role bindings).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.table import Table
from entra_rbac_sandbox.kube.crd_validation import validate_object

pytestmark = pytest.mark.bench
ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "crds" / "entragroupbindings.yaml").read_text())["spec"]["versions"][0][
    "schema"
]["openAPIV3Schema"]


def _egb(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": spec,
    }


def _small(i: int) -> dict[str, Any]:
    return _egb(
        f"r{i}",
        {
            "groups": [{"displayName": f"Team {i}"}],
            "roleBindings": [{"clusterRole": "edit", "namespaces": [f"ns-{i}"]}],
        },
    )


def _largest(i: int) -> dict[str, Any]:
    return _egb(
        f"big{i}",
        {
            "groups": [{"id": f"{i:04x}{g:04x}-0000-4000-8000-000000000000"} for g in range(100)],
            "clusterRoleBindings": [{"clusterRole": f"role-{c}"} for c in range(50)],
            "roleBindings": [
                {
                    "clusterRole": f"role-{r}",
                    "namespaces": [f"ns-{n}" for n in range(20)],
                    "namespaceSelector": {
                        "matchExpressions": [{"key": "team", "operator": "In", "values": [f"t{r}"]}]
                    },
                }
                for r in range(50)
            ],
        },
    )


@pytest.mark.parametrize(("kind", "build", "count"), [("small", _small, 200), ("largest", _largest, 10)])
def test_bench_crd_validation(kind: str, build: Any, count: int) -> None:
    objects = [build(i) for i in range(count)]
    started = time.perf_counter()
    for obj in objects:
        _, errors = validate_object(SCHEMA, obj)
        assert errors == []
    first = (time.perf_counter() - started) / count
    started = time.perf_counter()
    for obj in objects:
        validate_object(SCHEMA, obj)
    again = (time.perf_counter() - started) / count
    table = Table("bench crd validation", f"{kind} EntraGroupBinding, mean of {count}")
    table.add("first", f"{first * 1000:.1f} ms")
    table.add("again", f"{again * 1000:.2f} ms")
    table.print()
