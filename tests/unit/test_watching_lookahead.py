"""The look-ahead's hook (`triggers.watching.CacheFollower`): each EntraGroupBinding arriving at the
cache's watch hands the lookups its reconcile will make to the directory (issue 17 point 4), a
spec change hands the new ones, a deletion takes them back; other changes (status, kopf's
annotations) cost a comparison and nothing else."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from entra_rbac.core.entra import GroupLookup
from entra_rbac.triggers.watching import CacheFollower


class Directory:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[GroupLookup]]] = []

    def expect(self, lookups: list[GroupLookup]) -> None:
        self.calls.append(("expect", lookups))

    def unexpect(self, lookups: list[GroupLookup]) -> None:
        self.calls.append(("unexpect", lookups))


def _follower() -> tuple[Any, Directory]:
    directory = Directory()
    informers = {
        name: SimpleNamespace(listeners=[])
        for name in ("namespaces", "role_bindings", "cluster_bindings", "resources")
    }
    cache = SimpleNamespace(**informers)
    memo = SimpleNamespace(clients=SimpleNamespace(directory=directory))
    CacheFollower(memo, cache, None)  # type: ignore[arg-type]
    (listener,) = cache.resources.listeners
    return listener, directory


def _body(generation: int, groups: list[dict[str, str]], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "r", "generation": generation}, "spec": {"groups": groups, **spec}}


def _refs(calls: list[tuple[str, list[GroupLookup]]]) -> list[tuple[str, list[str]]]:
    return [
        (what, [str(lookup.ref.id or lookup.ref.display_name) for lookup in lookups])
        for what, lookups in calls
    ]


def test_an_arriving_resource_its_spec_changes_and_its_deletion_reach_the_look_ahead() -> None:
    listener, directory = _follower()
    first = _body(1, [{"id": "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"}, {"displayName": "Ops"}])
    listener("ADDED", None, first)
    listener("MODIFIED", first, {**first, "status": {"observedGeneration": 1}})  # not the spec
    second = _body(2, [{"displayName": "Dev"}])
    listener("MODIFIED", first, second)
    listener("DELETED", second, None)
    assert _refs(directory.calls) == [
        ("expect", ["6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f", "Ops"]),
        ("expect", ["Dev"]),
        ("unexpect", ["Dev"]),
    ]


def test_a_resource_that_reads_nothing_expects_nothing() -> None:
    listener, directory = _follower()
    listener("ADDED", None, _body(1, [{"displayName": "Ops"}], suspend=True))
    listener("ADDED", None, _body(1, [{"id": "not a guid"}]))  # its reconcile reports InvalidSpec
    assert _refs(directory.calls) == [("expect", []), ("expect", [])]
