"""Subject lists recognised in the API server's bytes (core.subject_bytes; issue 17 point 7): a
known list stands in for the subjects only when the bytes say exactly that list, at exactly the
binding's `subjects`; anything else decodes as plain JSON would."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from entra_rbac.core.subject_bytes import MIN_BYTES, encode
from entra_rbac.core.subjects import SharedSubjects, Subject, SubjectInterner, rendered_subjects

RBAC = "rbac.authorization.k8s.io"


def users(count: int, start: int = 0) -> list[dict[str, str]]:
    return [
        {"kind": "User", "apiGroup": RBAC, "name": f"user{n:05d}@contoso.com"}
        for n in range(start, start + count)
    ]


def rolebinding(subjects: Any, **metadata: Any) -> dict[str, Any]:
    """Ordered as kube-apiserver sends it: metadata, subjects, roleRef."""
    return {
        "kind": "RoleBinding",
        "apiVersion": f"{RBAC}/v1",
        "metadata": {"name": "egb:r:clusterrole:edit", "namespace": "ns", "resourceVersion": "7", **metadata},
        "subjects": subjects,
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "edit"},
    }


def wire(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def held(interner: SubjectInterner, subjects: list[dict[str, str]]) -> SharedSubjects:
    shared = interner.intern(json.loads(wire(subjects)))
    assert isinstance(shared, SharedSubjects)
    return shared


def test_an_answer_holding_a_known_list_gets_that_list_undecoded() -> None:
    interner = SubjectInterner()
    shared = held(interner, users(1000))
    data = wire(rolebinding(users(1000)))
    decoded = interner.decode(data)
    assert decoded["subjects"] is shared
    assert decoded == json.loads(data)
    assert interner.encoded.recognised == 1


def test_a_watch_event_holding_a_known_list_gets_that_list() -> None:
    interner = SubjectInterner()
    shared = held(interner, users(1000))
    data = wire({"type": "MODIFIED", "object": rolebinding(users(1000))})
    decoded = interner.decode(data, event=True)
    assert decoded["object"]["subjects"] is shared
    assert decoded == json.loads(data)


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: [*s, {"kind": "User", "apiGroup": RBAC, "name": "mallory@contoso.com"}],  # added by hand
        lambda s: s[:500] + s[501:],  # removed by hand
        lambda s: [*s[:-1], {**s[-1], "apiGroup": "example.com"}],  # changed
        lambda s: [{**s[0], "namespace": "x"}, *s[1:]],  # a field we never write
    ],
    ids=["added", "removed", "changed", "extra-field"],
)
def test_a_hand_edited_list_of_1000_is_decoded_as_it_is(edit: Any) -> None:
    interner = SubjectInterner()
    shared = held(interner, users(1000))
    data = wire(rolebinding(edit(users(1000))))
    decoded = interner.decode(data)
    assert decoded == json.loads(data)
    assert decoded["subjects"] is not shared
    assert interner.encoded.recognised == 0


def test_the_known_bytes_elsewhere_than_at_subjects_are_not_taken_for_them() -> None:
    interner = SubjectInterner()
    shared = held(interner, users(1000))
    # The first `"subjects":` holds the known list, but inside another object: the binding's own
    # subjects (later) are someone else's.
    tricky = rolebinding(users(3), decoy={"subjects": users(1000)})
    data = wire(tricky)
    assert data.find(b'"subjects":') < data.rfind(b'"subjects":')
    decoded = interner.decode(data)
    assert decoded == json.loads(data)
    assert decoded["subjects"] is not shared
    assert decoded["metadata"]["decoy"]["subjects"] is not shared


def test_a_document_already_holding_the_placeholder_is_decoded_whole() -> None:
    interner = SubjectInterner()
    held(interner, users(1000))
    data = wire(rolebinding(users(1000), annotations={"a": "entra-rbac.io/held-subject-list"}))
    assert interner.decode(data) == json.loads(data)
    assert interner.encoded.recognised == 0


def test_short_lists_are_not_recognised_and_lists_sharing_a_prefix_are_told_apart() -> None:
    interner = SubjectInterner()
    held(interner, users(2))
    assert interner.decode(wire(rolebinding(users(2))))["subjects"] == users(2)
    assert len(encode(users(2))) < MIN_BYTES
    assert interner.encoded.recognised == 0
    small, large = held(interner, users(1000)), held(interner, users(1500))  # same first subjects
    assert interner.decode(wire(rolebinding(users(1000))))["subjects"] is small
    assert interner.decode(wire(rolebinding(users(1500))))["subjects"] is large


def _corrupted_as_plain_json(
    decode: Callable[[bytes], object], data: bytes, alphabet: bytes, seed: int
) -> None:
    """300 one-byte corruptions of `data`: each decodes as `json.loads` does, or fails as it does."""
    randomly = random.Random(seed)
    for _ in range(300):
        at = randomly.randrange(len(data))
        corrupt = data[:at] + bytes([randomly.choice(alphabet)]) + data[at + 1 :]
        try:
            expected = json.loads(corrupt)
        except ValueError:
            with pytest.raises(json.JSONDecodeError):
                decode(corrupt)
            continue
        assert decode(corrupt) == expected


def test_any_corruption_of_the_bytes_decodes_or_fails_exactly_as_plain_json() -> None:
    interner = SubjectInterner()
    held(interner, users(200))
    _corrupted_as_plain_json(interner.decode, wire(rolebinding(users(200))), b'"[]{},:0aA\\ ', 17)


def test_a_planned_list_held_before_its_writes_is_recognised_in_their_first_answer() -> None:
    """`SubjectInterner.hold` (issue 17 point 7): the plan's rendered list is held before any
    answer carrying it was interned; an answer with exactly its bytes gets it, carrying the plan's
    tuple, as decoding would give; an edited list is decoded and parsed as before; a short list
    is not held."""
    interner = SubjectInterner()
    planned = rendered_subjects(tuple(Subject("User", s["name"]) for s in users(1000)))
    shared = interner.hold(planned)
    assert shared is not None
    assert shared.parsed is planned.parsed
    assert interner.hold(planned) is shared
    data = wire(rolebinding(users(1000)))
    decoded = interner.decode(data)
    assert decoded["subjects"] is shared
    assert decoded == json.loads(data)
    assert interner.encoded.recognised == 1
    assert interner.intern(json.loads(wire(users(1000)))) is shared  # decoded whole: the same list
    edited = interner.decode(wire(rolebinding([*users(999), *users(1, start=5000)])))
    assert edited["subjects"] is not shared
    assert interner.encoded.recognised == 1
    assert interner.hold(rendered_subjects((Subject("User", "alice"),))) is None


def page(*items: Any, more: str = "") -> bytes:
    """A list page as kube-apiserver sends it (items without kind and apiVersion)."""
    listed = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")} for item in items]
    meta = {"resourceVersion": "42", **({"continue": more} if more else {})}
    return wire({"kind": "RoleBindingList", "apiVersion": f"{RBAC}/v1", "metadata": meta, "items": listed})


def test_a_list_page_gets_every_held_list_undecoded_and_the_rest_decoded() -> None:
    """A restart's list (issue 17 point 7): 100 bindings of 1,000 subjects a page; each item whose
    subjects are byte for byte a held list gets that list, any other item is decoded as it is
    (a hand edit, a list never seen, a short list), and the page equals plain JSON's."""
    interner = SubjectInterner()
    first, second = held(interner, users(1000)), held(interner, users(1000, start=3000))
    edited = [*users(999), {"kind": "User", "apiGroup": RBAC, "name": "mallory@contoso.com"}]
    items = [
        rolebinding(users(1000), name="a"),
        rolebinding(users(1000, start=3000), name="b"),
        rolebinding(edited, name="c"),
        rolebinding(users(1000), name="d"),
        rolebinding(users(3), name="e"),
        rolebinding(users(1000, start=7000), name="f"),
    ]
    data = page(*items, more="next")
    decoded = interner.decode_page(data)
    assert decoded == json.loads(data)
    listed = decoded["items"]
    assert listed[0]["subjects"] is first
    assert listed[1]["subjects"] is second
    assert listed[3]["subjects"] is first
    assert all(not isinstance(listed[i]["subjects"], SharedSubjects) for i in (2, 4, 5))
    assert interner.encoded.recognised == 3


@pytest.mark.parametrize(
    "tricky",
    [
        # The held list's bytes as another field's value, inside an item: not its subjects.
        lambda: [rolebinding(users(3), decoy={"subjects": users(1000)}), rolebinding(users(1000), name="x")],
        # An item naming a placeholder of ours (as any string may be written).
        lambda: [rolebinding(users(1000)), rolebinding("entra-rbac.io/held-subject-list#0", name="x")],
        lambda: [rolebinding(users(1000), annotations={"a": "entra-rbac.io/held-subject-list"})],
    ],
    ids=["decoy", "placeholder-as-subjects", "placeholder-in-annotation"],
)
def test_a_page_not_exactly_items_holding_held_lists_is_decoded_whole(tricky: Any) -> None:
    interner = SubjectInterner()
    held(interner, users(1000))
    data = page(*tricky())
    decoded = interner.decode_page(data)
    assert decoded == json.loads(data)
    assert all(not isinstance(i["subjects"], SharedSubjects) for i in decoded["items"])
    assert interner.encoded.recognised == 0


def test_a_corrupt_page_decodes_or_fails_exactly_as_plain_json() -> None:
    interner = SubjectInterner()
    held(interner, users(200))
    data = page(rolebinding(users(200), name="a"), rolebinding(users(200), name="b"))
    _corrupted_as_plain_json(interner.decode_page, data, b'"[]{},:0aA\\ #', 7)
