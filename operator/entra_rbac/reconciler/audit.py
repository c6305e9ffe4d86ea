"""The audit trail of time-bound grants (docs/design.md, Time-bound grants): one log line and one
Event for every grant that starts and every grant that ends, naming the resource, the groups,
the role and the scope.

Holds `audit_transitions`. What changed is the pure core's (`core.windows.transitions`, from the
previous `status.grants` to the new one); this module only tells. A failed Event is logged, not
fatal. It must not import kopf.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from entra_rbac.core.desired import Owner
from entra_rbac.core.events import EventDraft, bounded
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.windows import transitions
from entra_rbac.errors import KubeError
from entra_rbac.logsetup import fields
from entra_rbac.reconciler.context import ReconcileContext

log = logging.getLogger("entra_rbac.reconcile")


async def audit_transitions(
    owner: Owner,
    spec: EntraGroupBindingSpec,
    previous: Sequence[Mapping[str, Any]] | None,
    current: Sequence[Mapping[str, Any]] | None,
    now: datetime,
    ctx: ReconcileContext,
) -> None:
    """Log and record an Event for each grant that became Active or Expired."""
    groups = ", ".join(ref.key for ref in spec.groups)
    for change in transitions(previous, current or []):
        what = "started" if change.verb == "Started" else "expired"
        message = (
            f"Grant {change.grant} {what}: {change.role_ref} {change.scope} for Entra groups {groups} "
            f"(window {change.window})"
        )
        log.info(
            f"{change.verb} grant",
            extra=fields(
                resource=owner.name,
                grant=change.grant,
                roleRef=change.role_ref,
                scope=change.scope,
                groups=groups,
                window=change.window,
            ),
        )
        draft = EventDraft(
            type="Normal",
            reason=f"Grant{change.verb}",
            action=change.verb,
            note=bounded(message),
            series=f"{change.verb}:{change.grant}",
        )
        try:
            await ctx.kube.create_event(draft, owner_name=owner.name, owner_uid=owner.uid, now=now)
        except KubeError as error:
            log.warning("Failed to record Event", extra=fields(resource=owner.name, error=str(error)))
