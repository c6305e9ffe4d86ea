"""The reconciler (layer 2): one idempotent reconcile for every trigger.

parse -> resolve (directory) -> desired -> observe -> plan -> apply -> status. It maps the
project's errors to kopf's TemporaryError / PermanentError; the glue (handlers) only delegates.
"""

from __future__ import annotations

from entra_rbac.reconciler.context import Policy, ReconcileContext, build_context
from entra_rbac.reconciler.reconcile import reconcile_resource, remove_all

__all__ = [
    "Policy",
    "ReconcileContext",
    "build_context",
    "reconcile_resource",
    "remove_all",
]
