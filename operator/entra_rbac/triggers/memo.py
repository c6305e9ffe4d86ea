"""kopf's `memo`, typed: `OperatorMemo` names what the runner puts in it and what startup adds.

kopf hands every handler a shallow copy of the memo given to `kopf.run`, so these attributes
are shared by all of them. Declared, not assigned, here: `kopf.Memo` keeps attributes as dict
items, which the annotations only describe to mypy. It must hold no logic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import kopf

if TYPE_CHECKING:  # the modules that fill the memo import this one
    from entra_rbac.core.guardrails import Guardrails
    from entra_rbac.metrics import OperatorMetrics
    from entra_rbac.reconciler import Clients, ReconcileContext
    from entra_rbac.triggers.conflicts import ConflictWatcher
    from entra_rbac.triggers.delta import DeltaFollower
    from entra_rbac.triggers.diffbase import SpecDigestDiffBaseStorage
    from entra_rbac.triggers.refresher import Refresher
    from entra_rbac.triggers.routing import NamespaceMemory
    from entra_rbac.triggers.watching import CacheFollower


class OperatorMemo(kopf.Memo):
    """What every handler shares. `metrics` and `instance` come from `entra-rbac run`; the rest
    is set by the startup handler (`lifecycle.start`) before any resource handler runs."""

    metrics: OperatorMetrics
    # reportingInstance of Events: which replica wrote them (the pod name in a cluster).
    instance: str
    # This instance's name in kopf's peering (kopf.run's identity), shared with the refresher's gate.
    identity: str
    clients: Clients
    ctx: ReconcileContext
    # The settings' guardrails: in force while no Guardrails object exists.
    settings_guardrails: Guardrails
    namespaces: NamespaceMemory
    refresher: Refresher
    conflicts: ConflictWatcher
    delta: DeltaFollower | None  # None with ENTRA_RBAC_DELTA_INTERVAL=off
    follower: CacheFollower  # the cache's namespace and binding changes -> reconciles
    # kopf's diff-base: what a kopf handling's reconcile records with its status (None when
    # kopf is tuned otherwise, e.g. by a test).
    stamps: SpecDigestDiffBaseStorage | None
