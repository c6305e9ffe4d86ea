"""Which resources a namespace or managed-binding event concerns (docs/design.md, Triggers).

Holds `names_namespace` (the core's namespace-selection rule, asked of a raw spec and of a
namespace's old and new labels), `NamespaceMemory` (what each namespace looked like when last
seen) and the two routers, `namespace_changed` and `binding_changed`, which hand the concerned
resources to `running.reconcile_all`. It must not decide anything about bindings.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from entra_rbac.constants import OWNER_UID_LABEL
from entra_rbac.core.desired import namespace_selected
from entra_rbac.core.models import RoleBindingSpec
from entra_rbac.triggers.entries import ResourceEntry, entries_of
from entra_rbac.triggers.memo import OperatorMemo
from entra_rbac.triggers.running import reconcile_all


def names_namespace(
    spec: Mapping[str, Any],
    namespace: str,
    label_sets: Iterable[Mapping[str, str]],
    reserved: Collection[str] = (),
) -> bool:
    """Whether a spec could select this namespace with any of the label sets given (old, new),
    by the core's own rule (`namespace_selected`).

    An entry that does not parse counts as a match: re-evaluating costs one reconcile, missing
    one would leave a binding wrong until the next refresh.
    """
    label_sets = list(label_sets)
    for raw in spec.get("roleBindings") or []:
        try:
            entry = RoleBindingSpec.model_validate(raw)
        except ValidationError:
            return True
        if any(namespace_selected(entry, namespace, labels, reserved) for labels in label_sets):
            return True
    return False


NamespaceState = tuple[dict[str, str], bool]  # (labels, terminating)


@dataclass
class NamespaceMemory:
    """The labels and state each namespace had when last seen: kopf's event handlers get no `old`,
    and only changes that can alter a selection (labels, termination) are worth a reconcile."""

    _seen: dict[str, NamespaceState] = field(default_factory=dict)

    def update(self, name: str, labels: Mapping[str, str], terminating: bool) -> NamespaceState | None:
        """Record the new state; return the previous one (None if never seen)."""
        previous = self._seen.get(name)
        self._seen[name] = (dict(labels), terminating)
        return previous

    def forget(self, name: str) -> dict[str, str]:
        return self._seen.pop(name, ({}, False))[0]


async def namespace_changed(
    event_type: str | None,
    body: Mapping[str, Any],
    resources: Mapping[str, Collection[ResourceEntry]],
    binding_owners: Mapping[str, Collection[str]],
    memo: OperatorMemo,
) -> None:
    """Re-evaluate the resources a namespace event concerns: those naming it, whose selectors
    match its old or new labels, or that own a binding in it."""
    meta = body.get("metadata") or {}
    name = str(meta.get("name", ""))
    old_labels = _labels_before(event_type, body, memo.namespaces)
    if old_labels is None:
        return
    labels = dict(meta.get("labels") or {})
    reserved = memo.ctx.policy.reserved_namespaces
    owners = set(binding_owners.get(name, ()))
    concerned = [
        entry
        for entry in entries_of(resources)
        if entry.uid in owners or names_namespace(entry.spec, name, (labels, old_labels), reserved)
    ]
    await reconcile_all(concerned, memo.ctx, why=f"namespace {name} {event_type or ''}".strip())


def _labels_before(
    event_type: str | None, body: Mapping[str, Any], memory: NamespaceMemory
) -> dict[str, str] | None:
    """The namespace's labels before this event, or None when the event changes nothing that
    could alter a selection."""
    meta = body.get("metadata") or {}
    name = str(meta.get("name", ""))
    if event_type == "DELETED":
        return memory.forget(name)
    labels = dict(meta.get("labels") or {})
    terminating = (
        bool(meta.get("deletionTimestamp")) or (body.get("status") or {}).get("phase") == "Terminating"
    )
    previous = memory.update(name, labels, terminating)
    # The first listing (type None, never seen) only fills the memory: the resume handlers
    # reconcile everything. A re-listing after a watch reconnect (type None again) that shows a
    # change made while the watch was down is a change like any other.
    if (event_type is None and previous is None) or previous == (labels, terminating):
        return None
    return previous[0] if previous else {}


async def binding_changed(
    event_type: str | None,
    body: Mapping[str, Any],
    resources: Mapping[str, Collection[ResourceEntry]],
    memo: OperatorMemo,
) -> None:
    """Heal a managed binding someone else changed or deleted by reconciling its owner."""
    meta = body.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(OWNER_UID_LABEL)
    if event_type is None or not owner:
        # A listing: at startup the resume handlers reconcile every resource; after a watch
        # reconnect, an edit made meanwhile cannot be told from no edit, and the refresh heals it.
        return
    if memo.clients.kube.is_own_write(
        meta.get("uid"), meta.get("resourceVersion"), deleted=event_type == "DELETED"
    ):
        return  # the echo of our own write, not drift
    why = f"{body.get('kind', 'binding')} {meta.get('name')} {event_type}"
    await reconcile_all(entries_of(resources, [owner]), memo.ctx, why=why)
