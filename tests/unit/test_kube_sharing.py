"""adapters.kube.sharing: equal small parts of cached objects held once, anything else as it came."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from entra_rbac.adapters.kube.sharing import SharedList, SharedMap, ValueSharing

LABELS = {"app.kubernetes.io/managed-by": "entra-rbac-operator", "entra-rbac.io/owner-uid": "u1"}
REF = {"apiVersion": "entra-rbac.io/v1alpha1", "kind": "EntraGroupBinding", "name": "a", "uid": "u1",
       "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def test_equal_flat_mappings_are_held_once() -> None:
    sharing = ValueSharing()
    first, second = sharing.mapping(dict(LABELS)), sharing.mapping(dict(LABELS))
    assert first is second
    assert isinstance(first, SharedMap)
    assert first == LABELS
    assert sharing.mapping(first) is first


def test_equal_lists_of_flat_mappings_are_held_once_and_share_their_items() -> None:
    sharing = ValueSharing()
    first, second = sharing.mappings([dict(REF)]), sharing.mappings([dict(REF)])
    assert first is second
    assert isinstance(first, SharedList)
    assert first == [REF]
    assert first[0] is sharing.mapping(dict(REF))


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({**REF, "controller": True}, {**REF, "controller": 1}),  # True is not 1 (the controller check)
        ({"a": "1"}, {"a": 1}),
        ({"a": "x", "b": "y"}, {"a": "x", "b": "z"}),
        ({"a": "x", "b": "y"}, {"b": "y", "a": "x"}),  # another order: not shared, still equal
    ],
)
def test_mappings_that_differ_in_a_value_or_its_type_are_not_shared(
    one: dict[str, Any], other: dict[str, Any]
) -> None:
    sharing = ValueSharing()
    held, answered = sharing.mapping(one), sharing.mapping(other)
    assert held is not answered
    assert answered == other
    assert [type(v) for v in answered.values()] == [type(v) for v in other.values()]


@pytest.mark.parametrize(
    "value",
    [{}, [], {"a": {"nested": "x"}}, {"a": ["x"]}, [{"a": {"b": 1}}], ["x"], "text", None, 3],
)
def test_anything_but_flat_scalar_values_is_answered_as_it_came(value: Any) -> None:
    sharing = ValueSharing()
    assert sharing.mapping(value) is value
    assert sharing.mappings(value) is value
    assert len(sharing) == 0


def test_a_value_no_one_holds_is_forgotten() -> None:
    sharing = ValueSharing()
    held = sharing.mappings([dict(REF)])
    assert len(sharing) == 2  # the list and its mapping
    del held
    gc.collect()
    assert len(sharing) == 0
