"""User-mode subjects built once per distinct member lists (reconciler.subject_lists; issue 17
point 7): resources over the same group share one subject tuple; a re-read group is built anew."""

from __future__ import annotations

from collections.abc import Mapping

from entra_rbac.adapters.directory.cache import SingleFlightCache
from entra_rbac.core.entra import DirectoryMember, MemberType
from entra_rbac.core.models import SubjectsSpec
from entra_rbac.core.subjects import Subject, build_subjects, users_of
from entra_rbac.reconciler.subject_lists import SubjectLists
from tests.unit.core_builders import G1, G2, resolved
from tests.unit.reconcile_fakes import member_names, user

USER_MODE = SubjectsSpec(kind="User")


def members(count: int, start: int = 0) -> tuple[DirectoryMember, ...]:
    return tuple(user(name) for name in member_names(start + count)[start:])


def test_two_resources_over_one_group_share_one_subject_tuple_built_once() -> None:
    lists, group = SubjectLists(), members(1000)
    first = build_subjects(USER_MODE, [resolved(G1)], {G1: group}, users=lists)
    second = build_subjects(USER_MODE, [resolved(G1)], {G1: group}, users=lists)
    assert first.subjects is second.subjects
    assert first.subjects == users_of([group], "")
    assert len(first.subjects) == 1000
    assert lists.built == 1


def test_a_group_read_again_is_built_from_its_new_members() -> None:
    lists = SubjectLists()
    before = lists([members(3)], "")
    after = lists([members(4)], "")  # a refresh: a new tuple, one member more
    assert len(before) == 3
    assert len(after) == 4
    assert lists.built == 2


def test_the_prefix_and_the_groups_are_part_of_the_key() -> None:
    lists, a, b = SubjectLists(), members(2), members(2, start=2)
    assert lists([a], "") == (
        Subject("User", "user000000@contoso.com"),
        Subject("User", "user000001@contoso.com"),
    )
    assert lists([a], "oidc:")[0] == Subject("User", "oidc:user000000@contoso.com")
    assert lists([a, b], "") == users_of([a, b], "")
    assert lists.built == 3


def test_mutable_member_lists_are_never_remembered_by_identity() -> None:
    lists, group = SubjectLists(), [user("alice")]
    assert lists([group], "") == (Subject("User", "alice@contoso.com"),)
    group.append(user("bob"))
    assert lists([group], "") == (Subject("User", "alice@contoso.com"), Subject("User", "bob@contoso.com"))
    assert len(lists) == 0


def test_the_memo_is_bounded_by_entries_and_by_members_held() -> None:
    lists = SubjectLists(max_entries=2, max_members=10)
    groups = [members(3, start=3 * i) for i in range(3)]
    for group in groups:
        lists([group], "")
    assert len(lists) == 2  # the oldest went
    lists([members(8, start=20)], "")
    assert len(lists) == 1  # 3 + 8 members passed the bound
    lists([groups[2]], "")
    assert lists.built == 5


def test_a_member_that_is_no_user_is_skipped_as_before() -> None:
    device = DirectoryMember("d1", MemberType.DEVICE)
    result = build_subjects(
        USER_MODE, [resolved(G1), resolved(G2)], {G1: (device,), G2: members(1)}, users=SubjectLists()
    )
    assert result.subjects == (Subject("User", "user000000@contoso.com"),)


async def test_members_read_again_unchanged_are_not_built_again() -> None:
    """The directory cache answers an equal re-read with the tuple it held (expired or forgotten
    by a delta round's baseline), so the memo keyed by that identity hits (issue 17 point 7)."""

    async def read(keys: list[str]) -> Mapping[str, tuple[DirectoryMember, ...]]:
        return {key: members(1000) for key in keys}  # a new, equal tuple every read

    cache: SingleFlightCache[str, tuple[DirectoryMember, ...]] = SingleFlightCache(60, read)
    lists = SubjectLists()
    first = lists([(await cache.get_many([G1]))[0][G1]], "")
    cache.discard([G1])
    again = lists([(await cache.get_many([G1]))[0][G1]], "")
    assert again is first
    assert lists.built == 1
