"""The apply phase: carry out a plan against the API server, one write at a time, in plan order.

Every outcome is a value: a failed write becomes a Problem (or a retry) and the other actions go
on, so one bad namespace never blocks the rest. Deletes run only when every create and replace
succeeded: a role change is make-before-break, and a failed create must not be followed by the
removal of the access it was meant to replace. Each write is logged; the one audit Event that
summarises them all is posted with the reconcile's conclusion (`reconciler.events`). A plan with
writes waits for a turn (`turns`, the context's `writers`): a few reconciles write at once, each
its whole plan, so resources finish one by one during a burst (docs/design.md, Writing resource
by resource).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby

from entra_rbac.adapters.kube import errors as kube_errors
from entra_rbac.core.cluster import Cluster
from entra_rbac.core.desired import Owner
from entra_rbac.core.naming import BindingKey
from entra_rbac.core.plan import Action, ObservedBinding, Plan, Verb, adoption_refusal
from entra_rbac.core.problems import Problem, Reason
from entra_rbac.errors import KubeError
from entra_rbac.logsetup import fields

log = logging.getLogger("entra_rbac.apply")

# Writes into a namespace that is gone or going: nothing to do there, and nothing to report.
_NAMESPACE_GONE = (kube_errors.NotFoundError, kube_errors.NamespaceTerminatingError)


@dataclass
class ApplyResult:
    """What happened: the actions done, the problems found, and whether to try again soon."""

    done: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    retry: bool = False
    skipped_deletes: int = 0
    # Desired names found taken by foreign objects: read (not re-created) on the next reconcile.
    conflicts: list[BindingKey] = field(default_factory=list)

    @property
    def executed(self) -> Plan:
        return Plan(actions=tuple(self.done))


async def apply_plan(
    kube: Cluster,
    owner: Owner,
    plan: Plan,
    groups: Sequence[str],
    *,
    turns: asyncio.Semaphore | None = None,
) -> ApplyResult:
    """Carry out `plan` for `owner`; `groups` (Entra ids) name where the subjects come from, for the
    log. With `turns`, a plan that writes anything first waits for one (an empty plan never waits)."""
    if not plan.actions:
        return ApplyResult()
    async with turns if turns is not None else contextlib.nullcontext():
        return await _apply_all(kube, owner, plan, groups)


async def _apply_all(kube: Cluster, owner: Owner, plan: Plan, groups: Sequence[str]) -> ApplyResult:
    """The plan's runs of writes (its creates, replaces and patches; then its deletes), each run
    handed to the cluster as one batch (`Cluster.write_bindings`: one worker-thread job, each
    write still its own request and outcome), the outcomes then taken in plan order."""
    result = ApplyResult()
    creates_ok = True
    for deletes, run in groupby(plan.actions, key=lambda action: action.verb is Verb.DELETE):
        actions = list(run)
        if deletes and not creates_ok:
            result.skipped_deletes += len(actions)
            continue
        for action, error in zip(actions, await kube.write_bindings(actions), strict=True):
            if error is None:
                result.done.append(action)
                _log_write(owner, action, groups)
                continue
            await _failed(kube, owner, action, error, result)
            if action.verb in (Verb.CREATE, Verb.REPLACE) or action.added:
                # Make-before-break: a subject a delete takes away may have moved to the binding
                # this write grants it in (a shard, docs/design.md), so no delete follows a failed grant.
                creates_ok = False
    if result.skipped_deletes:
        result.retry = True
    return result


async def _failed(kube: Cluster, owner: Owner, action: Action, error: KubeError, result: ApplyResult) -> None:
    where = f"{action.kind} {action.namespace + '/' if action.namespace else ''}{action.name}"
    if action.verb is Verb.CREATE and isinstance(error, kube_errors.AlreadyExistsError):
        await _already_exists(kube, owner, action, where, result)
    elif isinstance(error, _NAMESPACE_GONE) and action.namespace is not None:
        log.info(f"Skipped {action.kind}: its namespace is gone or terminating", extra=_fields(owner, action))
    elif isinstance(error, kube_errors.ForbiddenError):
        result.problems.append(
            Problem(
                Reason.ROLE_NOT_ALLOWED,
                f"the API server refused to let the operator {action.verb.value} {where} "
                f"({action.role_ref}): add the role to the operator's bind allowlist ({error})",
            )
        )
    elif isinstance(error, kube_errors.TooLargeError):
        # The server's limit is below the operator's (MAX_BINDING_BYTES): retrying cannot help.
        log.warning(f"Refused {action.kind}: too large", extra=_fields(owner, action, error=str(error)))
        result.problems.append(
            Problem(
                Reason.BINDING_TOO_LARGE,
                f"the API server refused {where} as too large ({error}): use group mode "
                "(spec.subjects.kind: Group) or smaller groups",
                "spec.subjects",
            )
        )
    elif isinstance(error, kube_errors.NotFoundError | kube_errors.ConflictError):
        # Changed or removed since it was read: read again and plan again.
        log.info(
            f"Retrying {action.kind}: it changed since it was read",
            extra=_fields(owner, action, reason=error.reason),
        )
        result.retry = True
    else:
        log.warning(
            f"Failed to {action.verb.value} {action.kind}", extra=_fields(owner, action, error=str(error))
        )
        result.problems.append(
            Problem(Reason.APPLY_FAILED, f"could not {action.verb.value} {where}: {error}")
        )
        result.retry = True


async def _already_exists(
    kube: Cluster, owner: Owner, action: Action, where: str, result: ApplyResult
) -> None:
    """A create hit an existing object: ours (a race; patch it next time) or foreign (a conflict)."""
    try:
        found = await kube.get_binding(action.kind, action.namespace, action.name)
    except KubeError:
        result.retry = True
        return
    owner_uid = str(
        (action.manifest or {}).get("metadata", {}).get("ownerReferences", [{}])[0].get("uid", "")
    )
    observed = None if found is None else ObservedBinding.from_manifest(found)
    if observed is None or observed.owned_by(owner_uid):
        result.retry = True
        return
    result.conflicts.append(action.key)  # read on the next reconcile, adopted there if it may be
    if adoption_refusal(observed, action.role_ref, owner.name) is None:
        result.retry = True
        return
    result.problems.append(
        Problem(
            Reason.CONFLICT,
            f"{where} already exists and is not managed by this resource; it was left untouched: "
            "delete or rename it to let the operator create its binding",
        )
    )


def _log_write(owner: Owner, action: Action, groups: Sequence[str]) -> None:
    """One log line per write ("Created RoleBinding" namespace=... name=...), the full audit; the
    Event of the reconcile summarises them (docs/design.md, Events)."""
    audit = _fields(
        owner,
        action,
        roleRef=str(action.role_ref),
        changed=",".join(action.changes) or None,
        subjects=action.subject_changes() or None,
        groups=",".join(groups) or None,
    )
    log.info(f"{action.event_reason} {action.kind}", extra=audit)


def _fields(owner: Owner, action: Action, **more: object) -> dict[str, object]:
    """The structured fields of a log line about one action: the resource, then the binding."""
    values = {"resource": owner.name, "namespace": action.namespace, "name": action.name, **more}
    return fields(**{key: value for key, value in values.items() if value is not None})
