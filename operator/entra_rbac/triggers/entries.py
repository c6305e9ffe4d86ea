"""What the routers know an EntraGroupBinding by, from the cache's resource index.

Holds `ResourceEntry` (enough to route an event and start a reconcile), `resource_entry` and
`entries_of`, which reads an index of them by uid (`triggers.watching.ResourceIndex`). It must
not start reconciles or decide anything about bindings.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResourceEntry:
    """An EntraGroupBinding as the resource index keeps it. The reconcile re-reads the object, so
    only the name and uid (which resource) and the spec (which namespaces it may select) are kept."""

    name: str
    uid: str
    spec: Mapping[str, Any]


def resource_entry(body: Mapping[str, Any]) -> ResourceEntry:
    meta = body.get("metadata") or {}
    return ResourceEntry(
        name=str(meta.get("name", "")), uid=str(meta.get("uid", "")), spec=dict(body.get("spec") or {})
    )


def entries_of(
    index: Mapping[str, Collection[ResourceEntry]], uids: Iterable[str] | None = None
) -> list[ResourceEntry]:
    """The entries of the resource index (of `uids` only, when given), one per resource."""
    keys = index.keys() if uids is None else [uid for uid in uids if uid in index]
    return [entry for key in keys for entry in list(index[key])[:1]]
