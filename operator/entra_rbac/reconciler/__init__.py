"""The reconciler (layer 2): one idempotent reconcile for every trigger.

parse -> resolve (directory) -> desired -> observe -> plan -> apply -> status, as
`reconcile(name, uid, ctx, deletion=, fresh=) -> Outcome`. It imports no kopf (an import-linter
contract holds it to that): the glue turns an `Outcome` into kopf's errors.
"""

from __future__ import annotations

from entra_rbac.reconciler.context import Clients, Policy, ReconcileContext, build_clients, build_context
from entra_rbac.reconciler.expiry import check_clock_skew, sweep_expired
from entra_rbac.reconciler.memory import ResourceMemory, ResourceRecord
from entra_rbac.reconciler.outcome import Outcome
from entra_rbac.reconciler.prefetch import expected_lookups, prefetch_directory
from entra_rbac.reconciler.reconcile import reconcile, remove_all

__all__ = [
    "Clients",
    "Outcome",
    "Policy",
    "ReconcileContext",
    "ResourceMemory",
    "ResourceRecord",
    "build_clients",
    "build_context",
    "check_clock_skew",
    "expected_lookups",
    "prefetch_directory",
    "reconcile",
    "remove_all",
    "sweep_expired",
]
