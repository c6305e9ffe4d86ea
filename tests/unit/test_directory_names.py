"""Deciding a resolution from what Graph returned: the docs/design.md (Directory semantics) rows, without
I/O."""

from __future__ import annotations

import pytest

from entra_rbac.adapters.directory.names import resolve_by_id, resolve_by_name
from entra_rbac.core.entra import DirectoryGroup, GroupLookup
from entra_rbac.core.models import GroupRef, GroupState

G1 = "11111111-1111-1111-1111-111111111111"
G2 = "22222222-2222-2222-2222-222222222222"
G3 = "33333333-3333-3333-3333-333333333333"


def by_name(name: str) -> GroupLookup:
    return GroupLookup(GroupRef(display_name=name))


@pytest.mark.parametrize(
    ("candidates", "state", "group_id"),
    [
        ([], GroupState.NOT_FOUND, None),
        ([DirectoryGroup(G1, "Payments")], GroupState.RESOLVED, G1),
        ([DirectoryGroup(G1, "Payments"), DirectoryGroup(G2, "Payments")], GroupState.AMBIGUOUS, None),
        # Graph's eq ignores case; only the exact name counts.
        ([DirectoryGroup(G1, "payments")], GroupState.NOT_FOUND, None),
        ([DirectoryGroup(G1, "payments"), DirectoryGroup(G2, "Payments")], GroupState.RESOLVED, G2),
        # A prefix lookup (long names) returns longer names too.
        ([DirectoryGroup(G1, "Payments Team")], GroupState.NOT_FOUND, None),
    ],
)
def test_name_resolution_counts_exact_matches_only(
    candidates: list[DirectoryGroup], state: GroupState, group_id: str | None
) -> None:
    resolution = resolve_by_name(by_name("Payments"), candidates)
    assert resolution.state is state
    assert (resolution.group.id if resolution.group else None) == group_id


def test_ambiguous_message_names_count_and_ids() -> None:
    groups = [DirectoryGroup(g, "Dup") for g in (G3, G1, G2)]
    resolution = resolve_by_name(by_name("Dup"), groups)
    assert resolution.message.startswith("3 groups have displayName 'Dup': ")
    assert f"{G1}, {G2}, {G3}" in resolution.message


def test_not_found_message_mentions_case_only_differences() -> None:
    resolution = resolve_by_name(by_name("Payments"), [DirectoryGroup(G1, "PAYMENTS")])
    assert resolution.message == "no group has displayName 'Payments' (differing only in case: 'PAYMENTS')"


def test_mail_nickname_compares_the_nickname() -> None:
    lookup = GroupLookup(GroupRef(mail_nickname="pay"))
    resolution = resolve_by_name(lookup, [DirectoryGroup(G1, "Payments", "pay")])
    assert resolution.state is GroupState.RESOLVED


def test_id_resolution_reports_current_display_name() -> None:
    lookup = GroupLookup(GroupRef(display_name="Old Name"), pinned_id=G1)
    resolution = resolve_by_id(lookup, G1, DirectoryGroup(G1, "New Name"))
    assert resolution.state is GroupState.RESOLVED
    assert resolution.group == DirectoryGroup(G1, "New Name")


@pytest.mark.parametrize(
    ("lookup", "message"),
    [
        (GroupLookup(GroupRef(id=G1)), f"no group has id {G1}"),
        (
            GroupLookup(GroupRef(display_name="Payments"), pinned_id=G1),
            f"group {G1} (pinned for displayName=Payments) no longer exists",
        ),
    ],
)
def test_missing_id_is_not_found(lookup: GroupLookup, message: str) -> None:
    resolution = resolve_by_id(lookup, G1, None)
    assert resolution.state is GroupState.NOT_FOUND
    assert resolution.message == message
