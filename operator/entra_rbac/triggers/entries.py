"""The resource index's view of an EntraGroupBinding, and the binding index's view of a binding.

Holds `ResourceEntry` (what the resource index keeps: enough to route an event and start a
reconcile without a GET), the two index functions, and `entries_of`, which reads the index. It
must not start reconciles or decide anything about bindings.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from entra_rbac.constants import MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_UID_LABEL


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


def index_entry(body: Mapping[str, Any]) -> dict[str, ResourceEntry]:
    """Value of the resource index: uid -> entry."""
    entry = resource_entry(body)
    return {entry.uid: entry}


def index_binding_owner(labels: Mapping[str, str], namespace: str | None) -> dict[str, str] | None:
    """Value of the binding index: namespace -> owner uid (for namespaces losing a match)."""
    owner = labels.get(OWNER_UID_LABEL)
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE or not owner or not namespace:
        return None
    return {namespace: owner}


def entries_of(
    index: Mapping[str, Collection[ResourceEntry]], uids: Iterable[str] | None = None
) -> list[ResourceEntry]:
    """The entries of the resource index (of `uids` only, when given), one per resource."""
    keys = index.keys() if uids is None else [uid for uid in uids if uid in index]
    return [entry for key in keys for entry in list(index[key])[:1]]
