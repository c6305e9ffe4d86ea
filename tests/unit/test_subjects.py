"""RBAC subjects from directory results (docs/design.md, The API)."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from entra_rbac.core import subjects as subjects_module
from entra_rbac.core.entra import DirectoryMember, GroupLookup, GroupResolution, MemberType
from entra_rbac.core.models import GroupRef, GroupState, SubjectsSpec
from entra_rbac.core.plan import ObservedBinding
from entra_rbac.core.problems import Reason
from entra_rbac.core.subjects import (
    SharedSubjects,
    Subject,
    SubjectInterner,
    bound_member_counts,
    build_subjects,
    group_subjects,
    parse_subjects,
    user_subjects,
)
from tests.unit.core_builders import G1, G2, G3, not_found, resolved

GROUP_MODE = SubjectsSpec()
USER_MODE = SubjectsSpec(kind="User")


def test_group_mode_gives_one_group_subject_per_resolved_group_sorted() -> None:
    result = build_subjects(GROUP_MODE, [resolved(G2), resolved(G1), not_found(GroupRef(id=G3))])
    assert result.subjects == (Subject("Group", G1), Subject("Group", G2))
    assert result.group_ids == (G1, G2)


def test_group_mode_applies_the_prefix_and_lower_cases_ids() -> None:
    result = build_subjects(SubjectsSpec(group_prefix="oidc:"), [resolved(G1.upper())])
    assert result.subjects == (Subject("Group", f"oidc:{G1}"),)


def test_the_same_group_named_twice_gives_one_subject() -> None:
    ref = GroupRef(display_name="Payments")
    result = build_subjects(GROUP_MODE, [resolved(G1), resolved(G1, ref=ref)])
    assert result.subjects == (Subject("Group", G1),)


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (DirectoryMember("u1", MemberType.USER, "alice@contoso.com", "Member"), "alice@contoso.com"),
        (DirectoryMember("u2", MemberType.USER, "bob_x.com#EXT#@contoso.com", "Guest"), "u2"),
        (DirectoryMember("sp1", MemberType.SERVICE_PRINCIPAL), "sp1"),
        (DirectoryMember("d1", MemberType.DEVICE), None),
        (DirectoryMember("c1", MemberType.ORG_CONTACT), None),
        (DirectoryMember("g1", MemberType.GROUP), None),
    ],
)
def test_user_mode_names_members_as_aks_does(member: DirectoryMember, expected: str | None) -> None:
    subjects = user_subjects([member], "")
    assert subjects == ((Subject("User", expected),) if expected else ())


def test_user_mode_merges_members_of_every_group_deduplicated_sorted_and_prefixed() -> None:
    alice = DirectoryMember("u1", MemberType.USER, "alice@contoso.com")
    bob = DirectoryMember("u2", MemberType.USER, "bob@contoso.com")
    result = build_subjects(
        SubjectsSpec(kind="User", user_prefix="aad:"),
        [resolved(G1), resolved(G2)],
        {G1: [bob, alice], G2: [alice]},
    )
    assert result.subjects == (
        Subject("User", "aad:alice@contoso.com"),
        Subject("User", "aad:bob@contoso.com"),
    )


def test_user_mode_refuses_to_decide_without_every_resolved_groups_members() -> None:
    with pytest.raises(ValueError, match="missing"):
        build_subjects(USER_MODE, [resolved(G1), resolved(G2)], {G1: []})


def test_user_mode_ignores_members_of_groups_that_did_not_resolve() -> None:
    alice = DirectoryMember("u1", MemberType.USER, "alice@contoso.com")
    result = build_subjects(USER_MODE, [not_found(GroupRef(id=G1))], {G1: [alice]})
    assert result.subjects == ()


def test_unresolved_groups_become_problems_naming_the_spec_entry() -> None:
    ambiguous = GroupResolution(
        GroupLookup(GroupRef(display_name="Ops")),
        GroupState.AMBIGUOUS,
        message="2 groups have displayName 'Ops'",
    )
    result = build_subjects(GROUP_MODE, [resolved(G1), not_found(GroupRef(id=G2), message="gone"), ambiguous])
    assert [(p.reason, p.field, p.message) for p in result.problems] == [
        (Reason.GROUP_NOT_FOUND, "spec.groups[1]", "gone"),
        (Reason.AMBIGUOUS_GROUP_NAME, "spec.groups[2]", "2 groups have displayName 'Ops'"),
    ]


def test_subjects_are_only_ever_groups_or_users_in_the_rbac_api_group() -> None:
    subject = group_subjects([G1], "")[0]
    assert subject.to_manifest() == {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": G1}


def test_member_counts_count_only_members_that_become_subjects() -> None:
    members = {
        G1.upper(): [
            DirectoryMember("u1", MemberType.USER, "alice@contoso.com"),
            DirectoryMember("u1", MemberType.USER, "alice@contoso.com"),  # reached through two nested groups
            DirectoryMember("d1", MemberType.DEVICE),
            DirectoryMember("g9", MemberType.GROUP),
            DirectoryMember("sp1", MemberType.SERVICE_PRINCIPAL),
        ],
        G2: [],
    }
    assert bound_member_counts(members) == {G1: 2, G2: 0}


RBAC = "rbac.authorization.k8s.io"


@pytest.mark.parametrize(
    ("raw", "subjects", "canonical"),
    [
        ([{"kind": "User", "apiGroup": RBAC, "name": "a"}], [Subject("User", "a")], True),
        ([{"kind": "Group", "apiGroup": "other.io", "name": "g"}], [Subject("Group", "g")], False),
        ([{"kind": "User", "apiGroup": RBAC, "name": "a", "namespace": "x"}], [Subject("User", "a")], False),
        ([{"kind": "User", "name": "a", "extra": 1}], [Subject("User", "a")], False),
        ([{"kind": "User", "apiGroup": RBAC}], [Subject("User", "")], False),
        (
            [{"kind": "ServiceAccount", "name": "ci", "namespace": "ops"}],
            [Subject("ServiceAccount", "ops/ci")],
            False,
        ),
        ([], [], True),
    ],
)
def test_parse_subjects_reads_each_subject_as_from_manifest_and_tells_what_we_would_not_write(
    raw: list[dict[str, Any]], subjects: list[Subject], canonical: bool
) -> None:
    parsed, is_canonical = parse_subjects(raw)
    assert parsed == tuple(subjects) == tuple(map(Subject.from_manifest, raw))
    assert all(type(s) is Subject for s in parsed)
    assert is_canonical is canonical


def _binding(name: str, subjects: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "roleRef": {"kind": "ClusterRole", "name": "edit"},
        "subjects": subjects,
    }


def test_bindings_listing_equal_subjects_share_one_parsed_tuple() -> None:
    users = [{"kind": "User", "apiGroup": RBAC, "name": f"u{i}"} for i in range(50)]
    # Equal lists, but separate objects as JSON decoding makes them.
    listed = [_binding(f"b{i}", [dict(u) for u in users]) for i in range(20)]
    listed.append(_binding("odd", [dict(u) for u in users[:-1]]))
    listed.append(_binding("foreign", [{**users[0], "apiGroup": "x"}]))
    observed = ObservedBinding.from_manifests(listed)
    assert [o.name for o in observed] == [b["metadata"]["name"] for b in listed]
    assert all(o.subjects is observed[0].subjects for o in observed[:20])
    assert observed[20].subjects == observed[0].subjects[:-1]
    assert [o.canonical_subjects for o in observed[19:]] == [True, True, False]
    assert observed == [ObservedBinding.from_manifest(b) for b in listed]  # same as one by one


def test_the_interner_holds_equal_canonical_lists_once_with_their_subjects_parsed() -> None:
    interner = SubjectInterner()
    users = [{"kind": "User", "apiGroup": RBAC, "name": f"u{i}"} for i in range(50)]
    # Equal lists as separate JSON decodes give them, with other lists in between.
    first = interner.intern([dict(u) for u in users])
    for i in range(10):
        interner.intern([{"kind": "User", "apiGroup": RBAC, "name": f"other{i}"}])
    again = interner.intern([dict(u) for u in users])
    assert isinstance(first, SharedSubjects)
    assert again is first
    assert first == users
    assert first.parsed == tuple(Subject("User", f"u{i}") for i in range(50))
    assert interner.intern(first) is first
    shorter = interner.intern([dict(u) for u in users[:-1]])
    assert shorter is not first
    assert shorter.parsed == first.parsed[:-1]


def test_the_interner_meets_interleaved_lists_without_parsing_them_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100 resources over 10 groups: their bindings' watch events arrive interleaved, and each
    list already held is answered by a comparison, not a parse (issue 17 point 7)."""
    interner = SubjectInterner()
    lists = [[{"kind": "User", "apiGroup": RBAC, "name": f"g{g}u{i}"} for i in range(100)] for g in range(10)]
    held = [interner.intern([dict(u) for u in users]) for users in lists]
    parses: list[object] = []
    real = subjects_module.parse_subjects
    monkeypatch.setattr(subjects_module, "parse_subjects", lambda raw: parses.append(raw) or real(raw))
    for _ in range(3):
        for g, users in enumerate(lists):
            assert interner.intern([dict(u) for u in users]) is held[g]
    assert parses == []
    # Same length, same first and last name, another list: compared, found unequal, parsed.
    middle = [dict(u) for u in lists[0]]
    middle[50] = {"kind": "User", "apiGroup": RBAC, "name": "someone else"}
    other = interner.intern(middle)
    assert other is not held[0]
    assert other.parsed[50] == Subject("User", "someone else")
    assert len(parses) == 1
    assert interner.intern([dict(u) for u in lists[0]]) is held[0]  # still found, by its content
    # A list we would not write, under a known hint, is still left as it came.
    foreign = [{**u, "apiGroup": "x"} for u in lists[1]]
    assert interner.intern(foreign) is foreign


def test_a_binding_read_alone_takes_the_parse_the_cache_made() -> None:
    """The start-up sweep of expired grants reads bindings from the cache: never parsed again."""
    interner = SubjectInterner()
    shared = interner.intern([{"kind": "User", "apiGroup": RBAC, "name": f"u{i}"} for i in range(5)])
    observed = ObservedBinding.from_manifest(_binding("b", shared))
    assert observed.subjects is shared.parsed
    assert observed.canonical_subjects


@pytest.mark.parametrize(
    "raw",
    [
        [{"kind": "User", "apiGroup": "other.io", "name": "a"}],
        [{"kind": "User", "apiGroup": RBAC, "name": "a", "namespace": "x"}],
        [{"kind": "ServiceAccount", "name": "ci", "namespace": "ops"}],
        [],
        None,
        "not a list",
    ],
)
def test_the_interner_leaves_what_we_would_not_write_as_it_came(raw: Any) -> None:
    """Such a list is parsed and healed by the reconcile as before; its object is kept."""
    assert SubjectInterner().intern(raw) is raw


def test_the_interner_forgets_lists_no_binding_holds() -> None:
    interner = SubjectInterner()
    held = interner.intern([{"kind": "User", "apiGroup": RBAC, "name": "a"}])
    for i in range(10):
        interner.intern([{"kind": "User", "apiGroup": RBAC, "name": f"b{i}"}])
    assert len(interner) >= 1
    del held
    gc.collect()
    assert all(shared.parsed[0].name != "a" for shared in interner._shared.values())


def test_bindings_whose_subjects_the_cache_interned_are_read_without_parsing() -> None:
    interner = SubjectInterner()
    users = [{"kind": "User", "apiGroup": RBAC, "name": f"u{i}"} for i in range(50)]
    listed = [_binding(f"b{i}", interner.intern([dict(u) for u in users])) for i in range(3)]
    observed = ObservedBinding.from_manifests(listed)
    assert all(o.subjects is listed[0]["subjects"].parsed for o in observed)
    assert all(o.canonical_subjects for o in observed)
    plain = [_binding(f"b{i}", [dict(u) for u in users]) for i in range(3)]
    assert observed == ObservedBinding.from_manifests(plain)
