"""Equal small parts of cached objects held once (issue 17 point 6; docs/design.md, Observing from
the cache).

Holds `ValueSharing`: it answers, for a flat mapping (labels, annotations, a roleRef) or a list of
flat mappings (ownerReferences), the one object the cache already holds with that content, or
takes this one in as that object. Every binding of a resource carries the same labels,
annotations, owner reference and roleRef: at 20,000 bindings those were 100,000 small dicts
saying what 1,000 say (about 0.9 KiB per binding). Only values made of strings, numbers,
booleans and None are shared, compared with their types (True is not 1); anything else is
answered as it came. Shared values are never mutated (no code changes a cached object); a value
no cached object holds any more is forgotten (weak references). It decides nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

_Scalar = str | int | float | bool | None
_SCALARS = (str, int, float, bool, type(None))


class SharedMap(dict[str, Any]):
    """A mapping held once for every cached object equal to it. Never mutated."""

    __slots__ = ("__weakref__",)


class SharedList(list[Any]):
    """A list of `SharedMap`s held once for every cached object equal to it. Never mutated."""

    __slots__ = ("__weakref__",)


_Key = tuple[tuple[str, type, _Scalar], ...]


def _flat_key(value: Mapping[Any, Any]) -> _Key | None:
    """The content of a flat str-keyed mapping as a hashable key (its types included), or None."""
    key = []
    for name, item in value.items():
        if not isinstance(name, str) or not isinstance(item, _SCALARS):
            return None
        key.append((name, type(item), item))
    return tuple(key)


class ValueSharing:
    """The cache's held values, by content (see the module docstring)."""

    def __init__(self) -> None:
        self._maps: weakref.WeakValueDictionary[_Key, SharedMap] = weakref.WeakValueDictionary()
        self._lists: weakref.WeakValueDictionary[tuple[_Key, ...], SharedList] = weakref.WeakValueDictionary()

    def mapping(self, value: Any) -> Any:
        """The held mapping equal to `value`, or `value` itself when it is not a flat mapping."""
        if isinstance(value, SharedMap) or not isinstance(value, dict) or not value:
            return value
        key = _flat_key(value)
        if key is None:
            return value
        found = self._maps.get(key)
        if found is None:
            found = self._maps[key] = SharedMap(value)
        return found

    def mappings(self, value: Any) -> Any:
        """The held list equal to `value` (a list of flat mappings), or `value` itself."""
        if isinstance(value, SharedList) or not isinstance(value, list) or not value:
            return value
        keys = []
        for item in value:
            key = _flat_key(item) if isinstance(item, dict) else None
            if key is None:
                return value
            keys.append(key)
        whole = tuple(keys)
        found = self._lists.get(whole)
        if found is None:
            found = self._lists[whole] = SharedList(self.mapping(item) for item in value)
        return found

    def __len__(self) -> int:
        """How many distinct mappings and lists are held."""
        return len(self._maps) + len(self._lists)
