"""RBAC subjects from what the directory resolved (docs/design.md, The API, "Subjects the operator emits").

Holds the `Subject` value and pure functions that derive a resource's subjects from its group
resolutions (group mode) or their transitive members (user mode), plus the problems the
resolutions carry (NotFound, Ambiguous). Emits Group or User subjects only, never any other kind.
Must not read the directory itself: the reconciler passes what it read.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any, NamedTuple

from entra_rbac.constants import RBAC_GROUP
from entra_rbac.core.entra import DirectoryMember, GroupResolution, aks_user_name
from entra_rbac.core.models import GroupState, SubjectKind, SubjectsSpec
from entra_rbac.core.problems import Problem, Reason
from entra_rbac.core.subject_bytes import MIN_BYTES, EncodedLists, Loads


class Subject(NamedTuple):
    """One RBAC subject. Ordered by (kind, name): the order bindings list them in.

    A NamedTuple rather than a dataclass: hashing, comparing and sorting run in C, which matters
    when a user-mode resource holds thousands of subjects in each of hundreds of bindings.
    """

    kind: str
    name: str

    def to_manifest(self) -> dict[str, str]:
        return {"kind": self.kind, "apiGroup": RBAC_GROUP, "name": self.name}

    @classmethod
    def from_manifest(cls, subject: Mapping[str, Any]) -> Subject:
        """A subject as the API returns it. ServiceAccounts keep their namespace in the name
        (`ns/name`) so that two of them never compare equal; we never emit them."""
        kind, name = subject.get("kind", ""), subject.get("name", "")
        if kind == "ServiceAccount" and subject.get("namespace"):
            name = f"{subject['namespace']}/{name}"
        return cls(str(kind), str(name))


def render_subjects(subjects: Iterable[Subject]) -> list[dict[str, str]]:
    """The `subjects` list of a binding manifest, in the order given."""
    return [{"kind": kind, "apiGroup": RBAC_GROUP, "name": name} for kind, name in subjects]


def distinct_subjects(lists: Iterable[Sequence[Subject]]) -> set[Subject]:
    """Every subject of every list, once. The bindings of one resource share one tuple (the plan's
    and the cache's), so each distinct list object is added once, in C: in user mode a status or
    an Event over 20 bindings of 1,000 subjects made a set of 20,000 (issue 17 point 7)."""
    by_identity = {id(found): found for found in lists}
    return set().union(*by_identity.values())


_new_subject = partial(tuple.__new__, Subject)  # Subject(kind, name), with no Python-level call
_kind_and_name = itemgetter("kind", "name")
_api_group = itemgetter("apiGroup")
_first = itemgetter(0)
_second = itemgetter(1)


def parse_subjects(raw: Sequence[Mapping[str, Any]]) -> tuple[tuple[Subject, ...], bool]:
    """A binding's subjects as the API returns them (each read as `Subject.from_manifest` reads
    it), and whether every one is exactly what the operator writes (kind, apiGroup
    rbac.authorization.k8s.io, name, nothing else; otherwise the binding is healed).

    User-mode bindings hold thousands of subjects and this ran, one Python call per subject, for
    every binding of every reconcile (issue 17 point 7): the usual list (string kinds and names,
    no ServiceAccount, each with an apiGroup) is read with C-level maps only; anything else takes
    the careful path.
    """
    try:
        pairs = list(map(_kind_and_name, raw))
        groups = set(map(_api_group, raw))
    except (KeyError, TypeError):
        return _parse_carefully(raw)
    kinds = set(map(_first, pairs))
    if "ServiceAccount" in kinds or set(map(type, kinds)) - {str}:
        return _parse_carefully(raw)
    try:
        "".join(map(_second, pairs))  # C's check that every name is a string: TypeError if not
    except TypeError:
        return _parse_carefully(raw)
    canonical = groups <= {RBAC_GROUP} and set(map(len, raw)) <= {3}
    return tuple(map(_new_subject, pairs)), canonical


class RenderedSubjects(list[dict[str, str]]):
    """A subject list the plan rendered from `parsed` (`render_subjects`), carrying that tuple so
    that simulating the plan (`core.revocation.after_plan`: status, the revocation guard) does not
    parse back what it has just rendered (issue 17 point 7: 1,000 subjects per resource per
    reconcile). Only ever made from the tuple it carries; never mutated (only serialised)."""

    parsed: tuple[Subject, ...]


def rendered_subjects(subjects: tuple[Subject, ...]) -> RenderedSubjects:
    """`render_subjects(subjects)`, carrying `subjects`."""
    rendered = RenderedSubjects(render_subjects(subjects))
    rendered.parsed = subjects
    return rendered


class SharedSubjects(list[dict[str, Any]]):
    """A binding's subject list as the cluster cache holds it: one object shared by every cached
    binding whose subjects are equal, carrying them already parsed (`parsed`). Never mutated."""

    parsed: tuple[Subject, ...]
    encoded: bytes  # its JSON, for a long list (`core.subject_bytes`)


_Hint = tuple[int, object, object]

# `SubjectInterner.hold`: below this many subjects a list is under `subject_bytes.MIN_BYTES`
# of JSON (each subject's encoding is over 60 bytes), so it is not recognised by its bytes.
MIN_HELD_SUBJECTS = MIN_BYTES // 64


class SubjectInterner:
    """Equal subject lists held once (issue 17 point 7; docs/design.md, Observing from the cache).

    In user mode every binding of a resource lists the same thousands of subjects: 20 namespaces
    x 1,000 members held 20,000 decoded dicts where 1,000 say it all. `intern` parses a list as it
    arrives from the API server (once per watch event or list, not once per reconcile) and answers
    the one `SharedSubjects` of that content, so the cache holds each distinct list once and a
    reconcile reads the parsed tuple without parsing. A list the operator would not have written
    (`parse_subjects`' canonical flag false) is answered as it came, to be parsed and healed as
    before. Lists no cached binding holds any more are forgotten (weak references).
    """

    def __init__(self) -> None:
        self._shared: weakref.WeakValueDictionary[tuple[Subject, ...], SharedSubjects] = (
            weakref.WeakValueDictionary()
        )
        # The last list interned under each `_hint`, compared with a new list of that hint in C
        # before parsing it. A few recent lists were not enough (issue 17 point 7, py-spy): 100
        # resources over 10 groups reconcile at once, their watch events interleave, and the
        # parse of each echo was 9% of user mode's convergence CPU.
        self._by_hint: weakref.WeakValueDictionary[_Hint, SharedSubjects] = weakref.WeakValueDictionary()
        # The long lists held, by their bytes: a write's answer or a watch echo carrying one is
        # not decoded again (`decode`).
        self.encoded = EncodedLists()

    def decode(self, data: bytes, loads: Loads = json.loads, *, event: bool = False) -> Any:
        """A binding (or a watch event, `event`) from the bytes the API server sent, decoded by
        `loads`, its subjects the held list itself when they are byte for byte one
        (`core.subject_bytes`)."""
        return self.encoded.decode(data, loads, event=event)

    def decode_page(self, data: bytes, loads: Loads = json.loads) -> Any:
        """A list page of bindings from its bytes, each item's subjects the held list itself
        when they are byte for byte one (`core.subject_bytes`)."""
        return self.encoded.decode_page(data, loads)

    def intern(self, raw: Any) -> Any:
        """The shared list equal to `raw`, or `raw` itself when it is not a canonical list."""
        if isinstance(raw, SharedSubjects) or not isinstance(raw, list) or not raw:
            return raw
        hint = _hint(raw)
        known = self._by_hint.get(hint)
        if known is not None and known == raw:
            return known
        subjects, canonical = parse_subjects(raw)
        if not canonical:
            return raw
        found = self._held(raw, subjects)
        self._by_hint[hint] = found  # two lists of one hint: the later is remembered (both are right)
        return found

    def hold(self, rendered: RenderedSubjects) -> SharedSubjects | None:
        """The held list of the plan's `rendered` subjects, made now if none is held, so that the
        answers of the writes about to carry it are recognised by their bytes from the first
        (`decode`), not decoded whole until one of them has been taken into the cache (issue 17
        point 7: a resource's 20 writes go out as one job, and ten resources over one group write
        at once, so hundreds of 1,000-subject answers were decoded whole before their list was
        held). Nothing is taken on trust: an answer is given this list only when its bytes are
        exactly this list's encoding, which is what decoding them would give; `rendered` is the
        canonical form of its tuple (`render_subjects`), so parsing it gives that tuple. None for
        a short list (never recognised by bytes). The caller keeps the answer alive while the
        writes are out (held lists are weakly referenced)."""
        if len(rendered) < MIN_HELD_SUBJECTS:
            return None
        return self._held(rendered, rendered.parsed)

    def _held(self, items: list[Any], subjects: tuple[Subject, ...]) -> SharedSubjects:
        """The list held for `subjects`, made from `items` (their canonical rendering) and
        registered by its bytes when none is held."""
        found = self._shared.get(subjects)
        if found is None:
            found = SharedSubjects(items)
            found.parsed = subjects
            self._shared[subjects] = found
            self.encoded.register(found)
        return found

    def __len__(self) -> int:
        """How many distinct lists are held."""
        return len(self._shared)


def _hint(raw: list[Any]) -> _Hint:
    """A cheap key under which equal lists meet: the length and the first and last names (a
    name that is not a string hints nothing: such a list is parsed, and left as it came)."""
    return len(raw), _name_hint(raw[0]), _name_hint(raw[-1])


def _name_hint(subject: Any) -> object:
    name = subject.get("name") if isinstance(subject, dict) else None
    return name if isinstance(name, str) else None


def _parse_carefully(raw: Iterable[Mapping[str, Any]]) -> tuple[tuple[Subject, ...], bool]:
    return tuple(map(Subject.from_manifest, raw)), all(map(_is_canonical, raw))


def _is_canonical(subject: Mapping[str, Any]) -> bool:
    """Exactly what we write for a subject: kind, apiGroup rbac.authorization.k8s.io, name."""
    return (
        len(subject) == 3
        and subject.get("apiGroup") == RBAC_GROUP
        and "kind" in subject
        and "name" in subject
    )


@dataclass(frozen=True)
class SubjectSet:
    """A resource's subjects, the Entra groups they come from and the problems found on the way."""

    subjects: tuple[Subject, ...]
    group_ids: tuple[str, ...]
    problems: tuple[Problem, ...] = ()


def resolved_group_ids(resolutions: Sequence[GroupResolution]) -> tuple[str, ...]:
    """Sorted, deduplicated lower-case ids of the groups whose subjects are bound (Resolved only).

    In user mode these are the groups whose transitive members the reconciler must read.
    """
    return tuple(
        sorted({r.group.id.lower() for r in resolutions if r.state is GroupState.RESOLVED and r.group})
    )


def group_subjects(group_ids: Iterable[str], group_prefix: str) -> tuple[Subject, ...]:
    """One Group subject per group, named `<groupPrefix><object id>` (AKS sends lower-case ids)."""
    return tuple(sorted({Subject("Group", f"{group_prefix}{gid.lower()}") for gid in group_ids}))


def user_subjects(members: Iterable[DirectoryMember], user_prefix: str) -> tuple[Subject, ...]:
    """User subjects named as AKS names the members; devices, contacts and groups are skipped."""
    names = {aks_user_name(m) for m in members}
    return tuple(sorted(Subject("User", f"{user_prefix}{n}") for n in names if n))


# Builds a resource's User subjects from its groups' member lists (in group id order) and the
# userPrefix: `users_of`, or a memo of it that builds them once per distinct lists.
UserSubjects = Callable[[Sequence[Sequence[DirectoryMember]], str], tuple[Subject, ...]]


def users_of(member_lists: Sequence[Sequence[DirectoryMember]], user_prefix: str) -> tuple[Subject, ...]:
    """The User subjects of every member of every list (`user_subjects` over all of them)."""
    return user_subjects((m for found in member_lists for m in found), user_prefix)


def bound_member_counts(members: Mapping[str, Sequence[DirectoryMember]]) -> dict[str, int]:
    """Per group id, how many of its transitive members become User subjects (status.groups[].members):
    devices, contacts and nested group objects are not counted, as they are never bound."""
    return {
        gid.lower(): len({name for m in found if (name := aks_user_name(m)) is not None})
        for gid, found in members.items()
    }


def resolution_problems(resolutions: Sequence[GroupResolution]) -> tuple[Problem, ...]:
    """GroupNotFound / AmbiguousGroupName for each reference that did not resolve to one group."""
    problems = []
    for index, resolution in enumerate(resolutions):
        field = f"spec.groups[{index}]"
        if resolution.state is GroupState.NOT_FOUND:
            message = resolution.message or f"no group matches {resolution.lookup.ref.key}"
            problems.append(Problem(Reason.GROUP_NOT_FOUND, message, field))
        elif resolution.state is GroupState.AMBIGUOUS:
            message = resolution.message or f"several groups match {resolution.lookup.ref.key}"
            problems.append(Problem(Reason.AMBIGUOUS_GROUP_NAME, message, field))
    return tuple(problems)


def build_subjects(
    spec: SubjectsSpec,
    resolutions: Sequence[GroupResolution],
    members: Mapping[str, Sequence[DirectoryMember]] | None = None,
    *,
    users: UserSubjects = users_of,
) -> SubjectSet:
    """The subjects of a resource: group mode from `resolutions`; user mode from `members`.

    `resolutions` are in spec order (one per `spec.groups` entry). In user mode `members` maps
    each id of `resolved_group_ids(resolutions)` to its transitive members; a missing id is a
    programming error (deciding from partial data would revoke access), so it raises ValueError.
    `users` builds the User subjects from the member lists (the reconciler passes a memo of
    `users_of`: ten resources over one group of 1,000 build its subjects once, not ten times).
    """
    group_ids = resolved_group_ids(resolutions)
    problems = resolution_problems(resolutions)
    if spec.kind is SubjectKind.GROUP:
        return SubjectSet(group_subjects(group_ids, spec.group_prefix), group_ids, problems)
    given = {key.lower(): value for key, value in (members or {}).items()}
    missing = [gid for gid in group_ids if gid not in given]
    if missing:
        raise ValueError(f"user mode needs the members of every resolved group; missing {missing}")
    return SubjectSet(users([given[gid] for gid in group_ids], spec.user_prefix), group_ids, problems)
