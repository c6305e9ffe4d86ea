"""The one idempotent reconcile every trigger runs: parse, resolve, desired, observe, plan, apply, status.

`reconcile(name, uid, ctx, deletion=, fresh=)` returns an `Outcome`; it never branches on which
event woke it. This module holds the entry and the order of the decision (`_decide`): a resource
outside the guardrails grants nothing (checked first, before Entra is read, suspended or not),
then suspension, expiry, the directory read and the confirmation of group deletions, before
`reconciler.converge` plans and applies. The branches that keep or revoke instead are in
`reconciler.keep_or_revoke`; each branch ends in `reconciler.conclude`, building one `Report`
from which status is written (only when it changed, so an idle resync sends no write at all).
It decides nothing from a failed directory read (fail-static) and must not import kopf: the
glue turns the outcome into kopf's errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from entra_rbac.core.desired import Owner
from entra_rbac.core.entra import MemberType
from entra_rbac.core.guardrails import check_guardrails
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.plan import ObservedBinding
from entra_rbac.core.problems import invalid_spec_problems
from entra_rbac.core.windows import all_expired
from entra_rbac.errors import KubeError
from entra_rbac.logsetup import fields
from entra_rbac.reconciler import ownership
from entra_rbac.reconciler.conclude import after, conclude, revoke_all
from entra_rbac.reconciler.confirm import confirm_deletions, confirmation_due, deleted_looking
from entra_rbac.reconciler.context import ReconcileContext
from entra_rbac.reconciler.converge import converge, own_shards, targets
from entra_rbac.reconciler.expiry import remove_lapsed
from entra_rbac.reconciler.guard import read_cluster
from entra_rbac.reconciler.keep_or_revoke import directory_failed, refuse, unconfirmed
from entra_rbac.reconciler.outcome import DELETED, FAILED, GONE, Outcome
from entra_rbac.reconciler.report import Report, Resource
from entra_rbac.reconciler.resolve import DirectoryOutcome, lookups_for, read_directory
from entra_rbac.reconciler.unchanged import Inputs, inputs_of, replay, settled

log = logging.getLogger("entra_rbac.reconcile")


async def reconcile(
    name: str,
    uid: str,
    ctx: ReconcileContext,
    *,
    deletion: bool = False,
    fresh: bool = False,
    stamp: str | None = None,
) -> Outcome:
    """Drive the bindings of the EntraGroupBinding `name` (whose uid is `uid`) toward its spec.

    `deletion`: the resource is going; remove its bindings. `fresh`: read Entra, not the cache.
    `stamp`: the last-handled configuration of the kopf handling that asks, written to status
    with the conclusion when it needs no retry (`Outcome.stamped` says whether it was).
    Reconciles of one resource run one at a time, whoever calls.
    """
    started = time.monotonic()
    result = FAILED
    try:
        async with ctx.memory.of(uid).lock:
            outcome = await _reconcile(name, uid, ctx, deletion=deletion, fresh=fresh, stamp=stamp)
        result = outcome.reason
        return outcome
    finally:
        if deletion:
            ctx.memory.forget(uid)
        ctx.metrics.reconcile_finished(result, time.monotonic() - started)


async def _reconcile(
    name: str, uid: str, ctx: ReconcileContext, *, deletion: bool, fresh: bool, stamp: str | None
) -> Outcome:
    try:
        if deletion:
            await remove_all(Owner(name=name, uid=uid), ctx)
            return Outcome(DELETED)
        if fresh:
            ctx.directory.invalidate()
        # Act on the object as it is now, not as the event that woke us saw it: a stale status
        # would move lastTransitionTime (a needless write), a stale spec would undo a newer one.
        current = await ctx.kube.get_resource(name)
        if current is None or (current.get("metadata") or {}).get("uid") != uid:
            return Outcome(GONE)
        return await _sync(Resource.from_manifest(current, stamp=stamp), ctx, fresh=fresh)
    except KubeError as error:
        return Outcome(FAILED, requeue_after=ctx.policy.retry_delay, message=f"Kubernetes API: {error}")


async def remove_all(owner: Owner, ctx: ReconcileContext) -> None:
    """Delete every binding this resource owns (the garbage collector would, a little later)."""
    for observed in await _owned(owner, ctx):
        if observed.uid is not None:
            await ctx.kube.delete_binding(
                observed.kind, observed.namespace, observed.name, uid=observed.uid, resource_version=None
            )
            log.info(
                f"Deleted {observed.kind}",
                extra=fields(resource=owner.name, namespace=observed.namespace, name=observed.name),
            )
    ctx.metrics.forget_resource(owner.uid)


async def _owned(owner: Owner, ctx: ReconcileContext) -> list[ObservedBinding]:
    """The bindings carrying this resource's marks (its labels AND a controller ref to it). The
    marks can be forged: which of them count is decided against the targets (`split_owned`)."""
    return _marked(owner, await ctx.kube.list_owned_bindings(owner.uid))


def _marked(owner: Owner, listed: Sequence[Mapping[str, Any]]) -> list[ObservedBinding]:
    return [o for o in ObservedBinding.from_manifests(listed) if o.owned_by(owner.uid)]


async def _sync(resource: Resource, ctx: ReconcileContext, *, fresh: bool = False) -> Outcome:
    now = ctx.clock()
    owner, record = resource.owner, ctx.memory.of(resource.owner.uid)
    listed = await ctx.kube.list_owned_bindings(owner.uid)
    inputs = (
        None if fresh else inputs_of(owner, resource.spec, resource.status, resource.annotations, listed, ctx)
    )
    replayed, read = await replay(inputs, record, ctx, now)
    if replayed is not None:
        return replayed  # every input and Entra's answer as at the last clean conclusion
    record.settled = None
    return await _decide(resource, _marked(owner, listed), ctx, now, fresh=fresh, read=read, inputs=inputs)


async def _decide(
    resource: Resource,
    marked: list[ObservedBinding],
    ctx: ReconcileContext,
    now: datetime,
    *,
    fresh: bool,
    read: DirectoryOutcome | None,
    inputs: Inputs | None,
) -> Outcome:
    """The reconcile proper. `read`: the directory read already made for it, if any; `inputs`:
    what a clean conclusion is remembered with (`reconciler.unchanged`)."""
    try:
        spec = EntraGroupBindingSpec.model_validate(resource.spec)
    except ValidationError as error:
        # The API server validates too; this guards objects written before the CRD's rules.
        # Nothing is written, and without targets no binding read now is known to be the
        # resource's: status keeps its last record of them (`core.status.build_status`).
        report = Report.invalid(invalid_spec_problems(error))
        return await conclude(resource, report, now, ctx)
    view = await read_cluster(resource.owner, spec, ctx)
    # A shard past those the operator wrote is a stray (`ownership.own`); converge counts the
    # shards the split asks for too when it grows.
    written = own_shards(ctx.memory.of(resource.owner.uid), resource.status)
    grants = targets(resource.owner, spec, list(view.namespaces), ctx)
    owned = ownership.own(marked, resource.owner.uid, grants, written)
    observed = list(owned.ours)
    violations = check_guardrails(spec, ctx.policy.guardrails, view)
    if violations:
        return await refuse(resource, spec, owned, violations, now, ctx)
    if spec.suspend:
        # Suspending freezes the bindings, but never past their time: an expiry still happens.
        kept = await remove_lapsed(resource.owner, spec, observed, now, ctx)
        report = replace(Report.suspended(spec, kept.left), written=kept.deleted)
        return await conclude(resource, report, now, ctx)
    if all_expired(spec, now):
        # Finished: nothing to read from Entra, nothing to hold back; remove what is left.
        everything = [*observed, *owned.strays]
        revoked = await revoke_all(resource.owner, everything, ctx)
        left = [b for b in after(everything, revoked) if b in observed]
        report = replace(Report.expired(spec, left), written=tuple(revoked.done))
        return await conclude(resource, report, now, ctx)
    pending = ctx.memory.of(resource.owner.uid).pending_deletions
    interval = ctx.policy.deletion_confirmation
    if confirmation_due(pending, now=now, interval=interval):
        # The read that confirms a deletion comes from Entra (this resource's groups only).
        ctx.directory.invalidate(lookups_for(spec.groups, resource.status))
        fresh, read = True, None
    if read is None:
        read = await read_directory(ctx.directory, spec.groups, resource.status, spec.subjects.kind)
    if read.error is not None:
        return await directory_failed(resource, spec, owned, read.error, now, ctx)
    ctx.metrics.directory_verified()
    ctx.memory.of(resource.owner.uid).watched_groups = watched_groups(read)
    seen = deleted_looking(spec, read, resource.status)
    decision = confirm_deletions(seen, pending, now=now, interval=interval, fresh=fresh)
    if decision.unconfirmed:
        return await unconfirmed(resource, spec, observed, decision, now, ctx)
    if decision.confirmed:
        log.info(
            "Confirmed group deletion: a later read from Entra agreed",
            extra=fields(resource=resource.owner.name, groups=",".join(sorted(decision.confirmed))),
        )
    async with ctx.converging:  # what a burst holds at once is bounded here (CONVERGING)
        outcome = await converge(resource, spec, owned, read, view, now, ctx)
    record = ctx.memory.of(resource.owner.uid)
    record.settled = settled(inputs, spec, read, outcome, record)
    return outcome


def watched_groups(read: DirectoryOutcome) -> frozenset[str]:
    """The groups whose change concerns the resource: every id its lookups named, pinned or
    found, and the nested groups the transitive member reads went through."""
    found: set[str] = set()
    for resolution in read.resolutions or []:
        lookup = resolution.lookup
        found.update(i.lower() for i in (lookup.ref.id, lookup.pinned_id) if i)
        if resolution.group is not None:
            found.add(resolution.group.id.lower())
    for members in read.members.values():
        found.update(m.id.lower() for m in members if m.type is MemberType.GROUP)
    return frozenset(found)
