"""The delta follower reconciles exactly the resources a changed group concerns (issue 13, point 1).

A resource watches the groups its spec names or pins and the nested groups its transitive read
went through (`reconciler.watched_groups`); the follower asks the directory which watched groups
changed and reconciles only their resources. It decides nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import pytest

from entra_rbac.core.entra import DirectoryGroup, DirectoryMember, GroupLookup, GroupResolution, MemberType
from entra_rbac.core.models import GroupRef, GroupState
from entra_rbac.errors import DirectoryUnavailableError
from entra_rbac.reconciler.reconcile import watched_groups
from entra_rbac.reconciler.resolve import DirectoryOutcome
from entra_rbac.triggers.delta import DeltaFollower
from tests.unit.conftest import FakeGate, TaskContext

OPS, DEV, NESTED, OTHER = (f"00000000-0000-0000-0000-00000000000{i}" for i in range(1, 5))


@dataclass
class FakeDirectory:
    changed: set[str] = field(default_factory=set)
    asked: list[set[str]] = field(default_factory=list)
    fail: bool = False
    forgotten: list[set[str]] = field(default_factory=list)

    def forget(self, group_ids: Collection[str]) -> None:
        self.forgotten.append(set(group_ids))

    async def changed_groups(self, group_ids: Collection[str]) -> set[str]:
        self.asked.append(set(group_ids))
        if self.fail:
            raise DirectoryUnavailableError("Graph delta failed: HTTP 503")
        return self.changed & set(group_ids)


@dataclass
class FakeKube:
    names: dict[str, str]

    async def list_resources(self) -> list[dict[str, Any]]:
        return [{"metadata": {"name": name, "uid": uid}, "spec": {}} for uid, name in self.names.items()]


Follower = Callable[..., DeltaFollower]


@pytest.fixture
def follower(task_context: TaskContext) -> Follower:
    """Makes a follower over three resources: ops (Ops and a nested group), dev (Dev), idle."""
    task_context.memory.of("u-ops").watched_groups = frozenset({OPS, NESTED})
    task_context.memory.of("u-dev").watched_groups = frozenset({DEV})
    task_context.memory.of("u-idle")  # never read: watches nothing
    kube = FakeKube({"u-ops": "ops", "u-dev": "dev", "u-idle": "idle"})

    def make(directory: FakeDirectory, gate: FakeGate | None = None) -> DeltaFollower:
        return DeltaFollower(kube, directory, task_context, 5.0, gate=gate)  # type: ignore[arg-type]

    return make


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (set(), []),
        ({OPS}, ["ops"]),
        ({NESTED}, ["ops"]),  # a group nested in Ops: Ops' resource only
        ({DEV}, ["dev"]),
        ({OPS, DEV}, ["dev", "ops"]),
        ({OTHER}, []),  # nobody watches it
    ],
)
async def test_a_changed_group_reconciles_exactly_the_resources_watching_it(
    reconciled_names: list[str], follower: Follower, changed: set[str], expected: list[str]
) -> None:
    directory = FakeDirectory(changed=changed)
    assert await follower(directory).follow() == expected
    assert sorted(reconciled_names) == expected
    assert directory.asked == [{OPS, NESTED, DEV}]
    # The concerned resources' groups are all read again (a nested change shows on the parent).
    watched = {"ops": {OPS, NESTED}, "dev": {DEV}}
    assert directory.forgotten == ([set().union(*(watched[n] for n in expected))] if expected else [])


async def test_a_failed_delta_read_reconciles_nothing(
    reconciled_names: list[str], follower: Follower
) -> None:
    assert await follower(FakeDirectory(changed={OPS}, fail=True)).follow() == []
    assert reconciled_names == []


def test_watched_groups_are_the_named_pinned_found_and_nested_ones() -> None:
    lookup = GroupLookup(GroupRef(display_name="Ops"), pinned_id=OPS.upper())
    resolved = GroupResolution(lookup, GroupState.RESOLVED, DirectoryGroup(id=OPS, display_name="Ops"))
    gone = GroupResolution(GroupLookup(GroupRef(id=DEV)), GroupState.NOT_FOUND)
    members = {
        OPS: [
            DirectoryMember(id=NESTED, type=MemberType.GROUP),
            DirectoryMember(id=OTHER, type=MemberType.USER, user_principal_name="a@contoso.com"),
        ]
    }
    read = DirectoryOutcome([resolved, gone], members)
    assert watched_groups(read) == {OPS, DEV, NESTED}


@pytest.mark.parametrize("paused", [True, False])
async def test_a_paused_instance_neither_reads_entra_nor_reconciles(
    reconciled_names: list[str], follower: Follower, paused: bool
) -> None:
    directory = FakeDirectory(changed={OPS})
    names = await follower(directory, FakeGate(paused)).follow()
    assert (names, reconciled_names, len(directory.asked)) == (
        ([], [], 0) if paused else (["ops"], ["ops"], 1)
    )
