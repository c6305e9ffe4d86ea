"""The guardrails, read live: at start, and whenever the Guardrails object changes (glue).

Holds `load_guardrails` (the startup read: the object if there is one, else the settings'
guardrails) and `guardrails_changed` (the watch: a change puts the new guardrails in force and
re-checks every resource at once). An object that does not parse leaves the guardrails in force
as they were (logged as an error): a typo must neither widen nor, by revoking everything at once,
narrow what is granted. Deleting the object returns to the settings' guardrails. It must not
decide anything about bindings: the reconcile does, with `ctx.policy.guardrails`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Mapping
from typing import Any

from entra_rbac.constants import GUARDRAILS_NAME
from entra_rbac.core.guardrails import OBJECT_SOURCE, Guardrails, GuardrailsError
from entra_rbac.logsetup import fields
from entra_rbac.triggers.entries import ResourceEntry, entries_of
from entra_rbac.triggers.memo import OperatorMemo
from entra_rbac.triggers.running import reconcile_all

log = logging.getLogger("entra_rbac.triggers")


async def load_guardrails(memo: OperatorMemo) -> None:
    """At start, before any reconcile: the object's guardrails when it exists and parses."""
    body = await memo.clients.kube.get_guardrails()
    if body is not None:
        _put_in_force(memo, body)


def _put_in_force(memo: OperatorMemo, body: Mapping[str, Any]) -> bool:
    """Make the object's guardrails the ones in force; True when what they allow changed."""
    try:
        new = Guardrails.from_object(body)
    except GuardrailsError as error:
        log.error(
            "Ignored invalid Guardrails; the guardrails in force are unchanged",
            extra=fields(name=GUARDRAILS_NAME, error=str(error), source=memo.ctx.policy.guardrails.source),
        )
        return False
    return _replace(memo, new)


def _replace(memo: OperatorMemo, new: Guardrails) -> bool:
    old = memo.ctx.policy.guardrails
    memo.ctx.policy = dataclasses.replace(memo.ctx.policy, guardrails=new)
    return dataclasses.replace(new, source=old.source) != old


async def guardrails_changed(
    event_type: str | None,
    body: Mapping[str, Any],
    resources: Mapping[str, Collection[ResourceEntry]],
    memo: OperatorMemo,
) -> None:
    """The Guardrails object was listed, added, changed or deleted: re-check every resource if
    what the guardrails allow changed (any resource may be concerned: a role's status changes
    with its rules, a namespace's with its labels)."""
    if (body.get("metadata") or {}).get("name") != GUARDRAILS_NAME:
        return
    if event_type == "DELETED":
        changed = _replace(memo, memo.settings_guardrails)
    else:
        changed = _put_in_force(memo, body)
    if not changed:
        return
    log.info(
        "Guardrails changed; re-checking every EntraGroupBinding",
        extra=fields(source=memo.ctx.policy.guardrails.source, event=event_type or "listed"),
    )
    await reconcile_all(entries_of(resources), memo.ctx, why=f"{OBJECT_SOURCE} {event_type or 'listed'}")
