"""Sizes of compact JSON counted without encoding (`core.json_size`) and the shard split that uses
them (`core.desired._sharded` via `Binding.unsplit_bound`, `core.shards.stays_whole`): a bound is
never below the real size (adversarial text: quotes, backslashes, control characters, DEL,
non-ASCII, astral, lone surrogates), exact for printable ASCII, and the split it skips is the
split the exact count makes."""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import product
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entra_rbac.core.desired import Binding, Owner, RoleRef, build_binding
from entra_rbac.core.json_size import compact_size, mapping_bound, string_bound
from entra_rbac.core.shards import Sharding, split_subjects, stays_whole, subject_bytes, subjects_bound
from entra_rbac.core.subjects import Subject, SubjectSet

NASTY = [
    "",
    "plain-name",
    'quo"te',
    "back\\slash",
    '\\"\\"',
    "tab\tnew\nline\rcr\bbs\fff",
    "\x00\x01\x1f",
    "del\x7f",
    " ~",
    "é",
    "日本語",
    "😀",
    'a😀é\x7f\\"\x00',
    "\ud800",  # a lone surrogate: the stdlib escapes it, orjson refuses it
    "\u2028\u2029",
    "\ufeff",
]
# Every character class the stdlib escapes differently, mixed with printable ASCII.
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.sampled_from(['"', "\\", "\x7f", "\n", "\x00", "\x1f", "é", "€", "😀", "\ud800", "\u2028"]),
        st.characters(),
    ),
    max_size=40,
)


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


@pytest.mark.parametrize("text", NASTY)
def test_a_string_bound_is_never_below_the_encoded_size(text: str) -> None:
    assert string_bound(text) >= len(json.dumps(text))


@given(TEXT)
def test_a_string_bound_is_never_below_the_encoded_size_for_any_text(text: str) -> None:
    assert string_bound(text) >= len(json.dumps(text))


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80))
def test_a_string_bound_is_exact_for_printable_ascii(text: str) -> None:
    assert string_bound(text) == len(json.dumps(text))


@given(st.dictionaries(TEXT, st.one_of(TEXT, st.booleans(), st.none(), st.integers()), max_size=6))
def test_a_mapping_bound_is_never_below_the_encoded_size(mapping: dict[str, Any]) -> None:
    assert mapping_bound(mapping) >= compact(mapping)


def test_a_mapping_bound_is_exact_for_printable_ascii() -> None:
    mapping = {"a": "b", 'q"': "\\", "controller": True, "x": False, "n": None, "i": -12}
    assert mapping_bound(mapping) == compact(mapping)
    assert mapping_bound({}) == compact({})


JSON = st.recursive(
    st.one_of(TEXT, st.booleans(), st.none(), st.integers(min_value=-(2**70), max_value=2**70)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=20,
)


@pytest.mark.parametrize("text", NASTY)
def test_compact_size_is_the_stdlib_length(text: str) -> None:
    value = {"metadata": {"name": text, "labels": {text: text}}, "subjects": [{"name": text}], "n": 3}
    assert compact_size(value) == compact(value)


@given(JSON)
def test_compact_size_is_the_stdlib_length_for_any_json_without_floats(value: Any) -> None:
    assert compact_size(value) == compact(value)


def test_compact_size_counts_list_subclasses_and_tuples_as_the_stdlib_does() -> None:
    class Held(list[dict[str, str]]):
        pass

    value = {"subjects": Held([{"kind": "User", "name": "a@b"}]), "pair": ("x", 1)}
    assert compact_size(value) == compact(value)


# --- the bound of a binding's manifest ------------------------------------------------------------


def binding(name: str, namespace: str | None, role: str, label: str, owner: str) -> Binding:
    """A binding with every string it writes chosen (built as `build_binding` builds one, then
    each string replaced: binding names are hashed from valid text only)."""
    made = build_binding(
        Owner(name="o", uid="0b7e3a58-1d2c-4c55-9f0f-3e6d7d8c9a10"),
        "ClusterRole",
        "view",
        namespace,
        SubjectSet((Subject("Group", "g"),), ("g",)),
    )
    return replace(
        made,
        name=name,
        role_ref=RoleRef("ClusterRole", role),
        labels={**made.labels, label: label},
        annotations={**made.annotations, label: owner},
        owner_reference={**made.owner_reference, "name": owner},
    )


@pytest.mark.parametrize(("text", "namespace"), list(product(NASTY, [None, "ns"])))
def test_a_binding_bound_is_never_below_its_manifest_without_subjects(
    text: str, namespace: str | None
) -> None:
    for b in (
        binding(text, namespace, "view", "l", "o"),
        binding("n", text if namespace else None, text, text, text),
        replace(binding("n", namespace, "view", "l", "o"), role_ref=RoleRef(text, text)),
    ):
        assert b.unsplit_bound() >= compact(b.to_manifest([]))


@given(TEXT, TEXT, TEXT, TEXT, st.booleans())
def test_a_binding_bound_is_never_below_for_any_names(
    name: str, role: str, label: str, owner: str, namespaced: bool
) -> None:
    b = binding(name, label if namespaced else None, role, label, owner)
    assert b.unsplit_bound() >= compact(b.to_manifest([]))


def test_a_binding_bound_is_exact_for_a_usual_binding() -> None:
    for namespace in (None, "team-a"):
        b = binding("egb:team:clusterrole:view", namespace, "view", "team", "team")
        assert b.unsplit_bound() == compact(b.to_manifest([]))


@given(st.lists(st.tuples(st.sampled_from(["User", "Group", 'K"\\']), TEXT), max_size=30))
def test_a_subjects_bound_is_never_below_their_bytes(pairs: list[tuple[str, str]]) -> None:
    subjects = tuple(Subject(kind, name) for kind, name in pairs)
    exact = sum(subject_bytes(s) for s in subjects)
    assert subjects_bound(subjects, 10**9) >= exact
    assert subjects_bound(subjects, 10) >= min(exact, 11)  # stopped early: still over the limit


# --- the split the bounds skip is the exact one ---------------------------------------------------


@given(
    total=st.integers(0, 3_000),
    budget=st.integers(-100, 3_000),
    max_shards=st.integers(1, 5),
    current=st.integers(0, 6),
)
@settings(max_examples=150)
def test_stays_whole_says_yes_only_when_the_split_keeps_one_binding(
    total: int, budget: int, max_shards: int, current: int
) -> None:
    """`subjects` of `total` bytes (10-byte names: 74 bytes a subject) split as `split_subjects`
    splits them: whenever `stays_whole` says yes, the split is the one list."""
    subjects = tuple(Subject("User", f"u{n:09d}") for n in range(total // 74))
    exact = sum(subject_bytes(s) for s in subjects)
    whole = split_subjects(subjects, budget, max_shards, current) == (subjects,)
    assert stays_whole(exact, budget, max_shards, current) == whole or (not subjects and whole)


@given(
    name=TEXT,
    role=TEXT,
    count=st.integers(0, 40),
    max_bytes=st.integers(300, 4_000),
    current=st.integers(1, 3),
)
@settings(max_examples=100, deadline=None)
def test_the_sharded_bindings_are_those_of_the_exact_count(
    name: str, role: str, count: int, max_bytes: int, current: int
) -> None:
    """`compute_desired`'s split (bounds first) against the split counted exactly with the stdlib,
    around the limit (adversarial names make the bound loose)."""
    from entra_rbac.core.desired import _sharded
    from entra_rbac.core.naming import shard_name

    base = "egb:team:clusterrole:view"  # shard names are made from a binding name's parts
    whole = [binding(base, ns, role, name, role) for ns in (None, "a", name)]
    subjects = tuple(sorted(Subject("User", f"user{n:04d}@contoso.com") for n in range(count)))
    whole = [replace(b, subjects=subjects) for b in whole]
    sharding = Sharding(max_bytes=max_bytes, max_shards=4)
    overhead = max(compact(b.to_manifest([])) for b in whole) + 32
    parts = split_subjects(subjects, max_bytes - overhead, 4, current)
    expected = (
        whole
        if len(parts) == 1
        else [
            replace(b, name=shard_name(b.name, i), subjects=p)
            for b in whole
            for i, p in enumerate(parts, start=1)
            if p
        ]
    )
    assert list(_sharded(whole, subjects, sharding, current)) == expected
