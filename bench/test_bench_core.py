"""Benchmarks of the pure core (run by `make bench`, never by `make test`).

Prints the CPU time of one reconcile's pure part (subjects, desired, plan, revocation guard,
status) for the issue-5 scale (200 resources x 10 namespaces, group mode) and for one large
user-mode resource (401 bindings x 1,000 users), idle (nothing to change) and from scratch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from bench.table import Table
from entra_rbac.core.desired import NamespaceInfo, Owner, compute_desired
from entra_rbac.core.entra import DirectoryGroup, DirectoryMember, GroupLookup, GroupResolution, MemberType
from entra_rbac.core.models import EntraGroupBindingSpec, GroupRef, GroupState
from entra_rbac.core.plan import ObservedBinding, make_plan
from entra_rbac.core.revocation import check_revocation
from entra_rbac.core.status import build_status
from entra_rbac.core.subjects import build_subjects

pytestmark = pytest.mark.bench
GROUP = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
NOW = datetime(2026, 11, 28, tzinfo=UTC)
RESOLUTIONS = [
    GroupResolution(GroupLookup(GroupRef(id=GROUP)), GroupState.RESOLVED, DirectoryGroup(GROUP, "g"))
]


def _one_pass(
    owner: Owner,
    spec: EntraGroupBindingSpec,
    namespaces: list[NamespaceInfo],
    members: Mapping[str, Sequence[DirectoryMember]],
    actual: list[dict[str, Any]],
) -> tuple[int, int]:
    subjects = build_subjects(spec.subjects, RESOLUTIONS, members)
    desired = compute_desired(owner, spec, subjects, namespaces)
    observed = [ObservedBinding.from_manifest(m) for m in actual]
    plan = make_plan(desired, observed)
    check_revocation(observed, plan, owner.uid)
    build_status(None, now=NOW, generation=1, spec=spec, resolutions=RESOLUTIONS, bindings=desired.bindings)
    return len(desired.bindings), len(plan.actions)


def test_bench_core_200_resources_by_10_namespaces() -> None:
    spec = EntraGroupBindingSpec.model_validate(
        {
            "groups": [{"id": GROUP}],
            "clusterRoleBindings": [{"clusterRole": "view"}],
            "roleBindings": [{"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"team": "t"}}}],
        }
    )
    namespaces = [NamespaceInfo(f"ns-{i}", {"team": "t"}) for i in range(10)]
    owners = [Owner(f"r{i}", f"00000000-0000-0000-0000-{i:012}", 1) for i in range(200)]
    started = time.process_time()
    existing: dict[str, list[dict[str, Any]]] = {}
    for owner in owners:
        subjects = build_subjects(spec.subjects, RESOLUTIONS)
        existing[owner.uid] = [
            b.to_manifest() for b in compute_desired(owner, spec, subjects, namespaces).bindings
        ]
        _one_pass(owner, spec, namespaces, {}, [])
    first = time.process_time() - started
    started = time.process_time()
    for owner in owners:
        _, actions = _one_pass(owner, spec, namespaces, {}, existing[owner.uid])
        assert actions == 0
    idle = time.process_time() - started
    table = Table("bench core", "200 resources x 10 namespaces (2,200 bindings), CPU for all resources")
    table.add("from scratch", f"{first * 1000:.0f} ms")
    table.add("idle resync", f"{idle * 1000:.0f} ms")
    table.print()


def test_bench_core_one_large_user_mode_resource() -> None:
    spec = EntraGroupBindingSpec.model_validate(
        {
            "groups": [{"id": GROUP}],
            "subjects": {"kind": "User"},
            "clusterRoleBindings": [{"clusterRole": "view"}],
            "roleBindings": [
                {"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"t": "x"}}},
                {
                    "clusterRole": "admin",
                    "namespaceSelector": {"matchExpressions": [{"key": "t", "operator": "Exists"}]},
                },
            ],
        }
    )
    namespaces = [NamespaceInfo(f"ns-{i}", {"t": "x"}) for i in range(200)]
    members = {
        GROUP: [DirectoryMember(f"u{i}", MemberType.USER, f"user{i}@contoso.com") for i in range(1000)]
    }
    owner = Owner("large", "00000000-0000-0000-0000-00000000000f", 1)
    started = time.process_time()
    bindings, actions = _one_pass(owner, spec, namespaces, members, [])
    first = time.process_time() - started
    subjects = build_subjects(spec.subjects, RESOLUTIONS, members)
    existing = [b.to_manifest() for b in compute_desired(owner, spec, subjects, namespaces).bindings]
    started = time.process_time()
    _, idle_actions = _one_pass(owner, spec, namespaces, members, existing)
    idle = time.process_time() - started
    assert (bindings, actions, idle_actions) == (401, 401, 0)
    # Baselines: before Subject became a NamedTuple (commit 544812e).
    table = Table("bench core", "one user-mode resource, 401 bindings x 1,000 users, CPU")
    table.add("from scratch", f"{first * 1000:.0f} ms", baseline="961 ms before 544812e")
    table.add("idle resync", f"{idle * 1000:.0f} ms", baseline="992 ms before 544812e")
    table.print()
