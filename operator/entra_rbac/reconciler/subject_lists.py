"""User-mode subjects built once per distinct member lists, shared by every resource over them.

Holds `SubjectLists`, a bounded memo of `core.subjects.users_of` keyed by the identity of the
member tuples the directory cache answers (one tuple per group, shared by every resource that
reads the group until it is read again). In user mode ten resources over one group of 1,000
members built, sorted and held the same 1,000 subjects ten times per convergence (issue 17
point 7; docs/design.md, Directory semantics: user mode holds each member list once); now once,
and every resource's desired bindings share the one tuple. A cache only: a miss builds the
subjects as before, so losing it (a restart) costs CPU, never a decision.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from entra_rbac.core.entra import DirectoryMember
from entra_rbac.core.subjects import Subject, users_of

# Bounds on what the memo keeps alive: a member tuple the directory replaced (a refresh read the
# group again) stays held here until pushed out, so the entries and the members they hold are
# capped; the 50,000-member shape fits, several of it do not need to.
MAX_ENTRIES = 256
MAX_MEMBERS = 200_000

_Key = tuple[str, tuple[int, ...]]


class SubjectLists:
    """`users_of`, remembered by (userPrefix, the member tuples' identities)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_members: int = MAX_MEMBERS) -> None:
        self.max_entries = max_entries
        self.max_members = max_members
        # The member tuples are held with the subjects: an id is only ever reused once its
        # object is gone, so while an entry lives its key names exactly those tuples.
        self._built: OrderedDict[_Key, tuple[tuple[Sequence[DirectoryMember], ...], tuple[Subject, ...]]] = (
            OrderedDict()
        )
        self._members = 0
        self.built = 0  # how many times the subjects were built (a miss), for tests

    def __call__(
        self, member_lists: Sequence[Sequence[DirectoryMember]], user_prefix: str
    ) -> tuple[Subject, ...]:
        lists = tuple(member_lists)
        if not all(type(found) is tuple for found in lists):
            # Only immutable lists are remembered by identity (the directory's are tuples).
            return users_of(lists, user_prefix)
        key = (user_prefix, tuple(map(id, lists)))
        entry = self._built.get(key)
        if entry is not None:
            self._built.move_to_end(key)
            return entry[1]
        subjects = users_of(lists, user_prefix)
        self.built += 1
        self._built[key] = (lists, subjects)
        self._members += sum(map(len, lists))
        while self._built and (len(self._built) > self.max_entries or self._members > self.max_members):
            _, (dropped, _) = self._built.popitem(last=False)
            self._members -= sum(map(len, dropped))
        return subjects

    def __len__(self) -> int:
        return len(self._built)
