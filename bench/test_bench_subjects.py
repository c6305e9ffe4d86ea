"""User mode's subject parsing, before and after, in one run (issue 17 point 7; `make bench` only).

2,000 bindings x 5,000 users: 100 user-mode resources x 20 namespaces over one 5,000-member
group. Each resource's owned bindings are decoded from JSON (fresh objects, as a LIST answer
gives them; decoding is not counted) and parsed as the reconcile parses them. "Before" is the
parse this project had until issue 17 (`Subject.from_manifest` and a canonical check per subject,
every binding on its own), kept here as the reference, paid by every reconcile; "listing" is
`ObservedBinding.from_manifests` on a fresh listing (one loop per distinct list, equal lists
compared in C and shared), what a reconcile pays when it reads the API server (the cache not yet
synced). With the cache, the work is split: "cache intake" is the binding informers' `prepare`
interning each decoded binding's subjects (`SubjectInterner`, once per watch event or list page,
e.g. a restart's list), "reconcile" the parse of the cached bindings, once per reconcile. Printed
through bench/table.py: CPU seconds of each and their ratios to "before" (target >= 10x for what
a refresh of every resource costs), and the idle plan and revocation guard over them.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Mapping
from typing import Any

import pytest

from bench.table import Table
from entra_rbac.constants import RBAC_GROUP
from entra_rbac.core.desired import NamespaceInfo, Owner, compute_desired
from entra_rbac.core.entra import DirectoryGroup, DirectoryMember, GroupLookup, GroupResolution, MemberType
from entra_rbac.core.models import EntraGroupBindingSpec, GroupRef, GroupState
from entra_rbac.core.plan import ObservedBinding, make_plan
from entra_rbac.core.revocation import check_revocation
from entra_rbac.core.subjects import Subject, SubjectInterner, build_subjects

# Its own timeout: 2,000 bindings x 5,000 users runs past pytest's default 300 s on a loaded machine.
pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]
RESOURCES, NAMESPACES, USERS = 100, 20, 5000
GROUP = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"


def _before(obj: Mapping[str, Any]) -> tuple[tuple[Subject, ...], bool]:
    """The reference: how ObservedBinding.from_manifest read subjects before issue 17."""

    def canonical(subject: Mapping[str, Any]) -> bool:
        return (
            len(subject) == 3
            and subject.get("apiGroup") == RBAC_GROUP
            and "kind" in subject
            and "name" in subject
        )

    raw = list(obj.get("subjects") or ())
    return tuple(map(Subject.from_manifest, raw)), all(map(canonical, raw))


def _resource_bindings(owner: Owner) -> tuple[bytes, Any]:
    spec = EntraGroupBindingSpec.model_validate(
        {
            "groups": [{"id": GROUP}],
            "subjects": {"kind": "User"},
            "roleBindings": [{"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"t": "x"}}}],
        }
    )
    members = {
        GROUP: [DirectoryMember(f"u{i}", MemberType.USER, f"user{i}@contoso.com") for i in range(USERS)]
    }
    resolutions = [
        GroupResolution(GroupLookup(GroupRef(id=GROUP)), GroupState.RESOLVED, DirectoryGroup(GROUP, "g"))
    ]
    subjects = build_subjects(spec.subjects, resolutions, members)
    namespaces = [NamespaceInfo(f"ns-{i}", {"t": "x"}) for i in range(NAMESPACES)]
    desired = compute_desired(owner, spec, subjects, namespaces)
    assert len(desired.bindings) == NAMESPACES
    listed = [{**b.to_manifest(), "kind": "RoleBinding"} for b in desired.bindings]
    return json.dumps(listed).encode(), desired


def test_bench_user_mode_subject_parsing_before_and_after() -> None:
    owner = Owner("big", "00000000-0000-0000-0000-00000000000f", 1)
    encoded, desired = _resource_bindings(owner)
    before = listing = intake = reconcile = plan_s = 0.0
    interner = SubjectInterner()
    for _ in range(RESOURCES):
        # Each side starts from a freshly decoded listing and a collected heap, so neither pays
        # for the other's garbage.
        listed = json.loads(encoded)
        gc.collect()
        started = time.process_time()
        old = [_before(b) for b in listed]
        before += time.process_time() - started
        listed = json.loads(encoded)
        gc.collect()
        started = time.process_time()
        observed = ObservedBinding.from_manifests(listed)
        listing += time.process_time() - started
        assert [(o.subjects, o.canonical_subjects) for o in observed] == old
        listed = json.loads(encoded)
        gc.collect()
        started = time.process_time()
        cached = [{**b, "subjects": interner.intern(b["subjects"])} for b in listed]
        intake += time.process_time() - started
        del listed
        started = time.process_time()
        from_cache = ObservedBinding.from_manifests(cached)
        reconcile += time.process_time() - started
        assert from_cache == observed
        del old, observed
        started = time.process_time()
        plan = make_plan(desired, from_cache)
        check_revocation(from_cache, plan, owner.uid)
        plan_s += time.process_time() - started
        assert not plan.actions
    assert len(interner) == 1  # one list held for every binding
    bindings = RESOURCES * NAMESPACES
    table = Table(
        "bench subject parsing",
        f"{bindings:,} bindings x {USERS:,} users ({RESOURCES} resources x {NAMESPACES} namespaces), "
        "CPU seconds in one run; baseline: the per-subject parse before issue 17",
    )
    table.add("before: per reconcile of every resource", f"{before:.2f} s", baseline="~58 s (issue 17)")
    table.add("listing (cache not synced), per reconcile of every resource", f"{listing:.2f} s",
              target=">= 10x", baseline=f"{before / listing:.1f}x", ok=before / listing >= 10)  # fmt: skip
    table.add("cache intake, once per binding written or listed", f"{intake:.2f} s",
              baseline=f"{before / intake:.1f}x")  # fmt: skip
    per_reconcile = max(reconcile, 1e-6)
    ratio = before / per_reconcile
    table.add("from the cache, per reconcile of every resource", f"{reconcile:.3f} s",
              target=">= 10x", baseline=f"{ratio:.0f}x", ok=ratio >= 10)  # fmt: skip
    table.add("idle plan + revocation guard over them", f"{plan_s:.2f} s")
    table.print()
