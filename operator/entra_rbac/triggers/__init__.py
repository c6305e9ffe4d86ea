"""What the kopf handlers delegate to (glue, layer 1), one module per concern.

- `entries`: what a resource is known by (name, uid, spec) when routing events, and reading them.
- `watching`: the operator's cache's namespace and binding changes as triggers (no kopf index).
- `running`: starting reconciles, for one resource or many; an `Outcome` asking for a requeue
  becomes kopf's `TemporaryError` there and nowhere else.
- `routing`: which resources a namespace or managed-binding event concerns.
- `refresher`: the periodic directory refresh, one operator-wide task.
- `conflicts`: the names foreign objects hold, read every second, so a Conflict heals at once.
- `delta`: Entra changes within seconds (Graph delta queries), one operator-wide task.
- `guardrails`: the guardrails read live (at start, and on every change of the Guardrails object).
- `lifecycle`: the operator's start and stop, and every kopf setting it changes.
- `memo`: kopf's memo, typed.

It decides nothing about bindings: the reconciler does. It must not be imported by the
reconciler or anything below it.
"""

from __future__ import annotations

from entra_rbac.triggers.entries import ResourceEntry, resource_entry
from entra_rbac.triggers.guardrails import guardrails_changed
from entra_rbac.triggers.lifecycle import (
    CONFIRM_FIELD,
    SYNC_FIELD,
    connection_info,
    directory_freshness,
    start,
    stop,
    tune_kopf,
)
from entra_rbac.triggers.memo import OperatorMemo
from entra_rbac.triggers.refresher import Refresher, first_refresh_delay
from entra_rbac.triggers.routing import NamespaceMemory, binding_changed, names_namespace, namespace_changed
from entra_rbac.triggers.running import (
    is_deletion,
    reconcile_all,
    reconcile_body,
    reconcile_entry,
    resource_gone,
)

__all__ = [
    "CONFIRM_FIELD",
    "SYNC_FIELD",
    "NamespaceMemory",
    "OperatorMemo",
    "Refresher",
    "ResourceEntry",
    "binding_changed",
    "connection_info",
    "directory_freshness",
    "first_refresh_delay",
    "guardrails_changed",
    "is_deletion",
    "names_namespace",
    "namespace_changed",
    "reconcile_all",
    "reconcile_body",
    "reconcile_entry",
    "resource_entry",
    "resource_gone",
    "start",
    "stop",
    "tune_kopf",
]
