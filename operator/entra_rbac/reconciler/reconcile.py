"""The one idempotent reconcile every trigger runs: parse, resolve, desired, observe, plan, apply, status.

`reconcile(name, uid, ctx, deletion=, fresh=)` returns an `Outcome`; it never branches on which
event woke it. A resource outside the guardrails grants nothing (checked first, before Entra is
read, suspended or not). It decides nothing from a failed directory read (fail-static: bindings
stay exactly as they are), holds back mass revocations, and writes status only when it changed,
so an idle resync sends no write at all. Each branch ends by building one `Report`, from which
status is written. It must not import kopf: the glue turns the outcome into kopf's errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from entra_rbac.core.desired import (
    DesiredState,
    NamespaceInfo,
    Owner,
    RoleInventory,
    compute_desired,
    shards_in_use,
)
from entra_rbac.core.entra import MemberType
from entra_rbac.core.guardrails import ClusterView, check_guardrails
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.naming import binding_name, shard_index
from entra_rbac.core.plan import (
    Action,
    ObservedBinding,
    OwnedBindings,
    Plan,
    Verb,
    cleanup_plan,
    make_plan,
    split_owned,
)
from entra_rbac.core.problems import Problem, Reason, invalid_spec_problems
from entra_rbac.core.revocation import after_plan
from entra_rbac.core.size import oversized
from entra_rbac.core.subjects import SubjectSet, build_subjects
from entra_rbac.core.windows import all_expired, lapsed_keys, next_transition
from entra_rbac.errors import DirectoryError, KubeError
from entra_rbac.logsetup import fields
from entra_rbac.reconciler.apply import ApplyResult, apply_plan
from entra_rbac.reconciler.confirm import Confirmation, confirm_deletions, confirmation_due, deleted_looking
from entra_rbac.reconciler.context import ReconcileContext
from entra_rbac.reconciler.events import post_events
from entra_rbac.reconciler.expiry import remove_lapsed
from entra_rbac.reconciler.guard import inventory, read_cluster
from entra_rbac.reconciler.hold import HoldPolicy, revocation_hold
from entra_rbac.reconciler.memory import ResourceRecord
from entra_rbac.reconciler.outcome import DELETED, FAILED, GONE, Outcome
from entra_rbac.reconciler.report import STALENESS_SLACK, Report, Resource, write_status
from entra_rbac.reconciler.resolve import DirectoryOutcome, lookups_for, read_directory
from entra_rbac.reconciler.unchanged import Inputs, inputs_of, replay, settled

log = logging.getLogger("entra_rbac.reconcile")

# The shortest pause kopf is asked for after a failed directory read, whatever Entra said.
MIN_DIRECTORY_RETRY = 1.0


async def reconcile(
    name: str, uid: str, ctx: ReconcileContext, *, deletion: bool = False, fresh: bool = False
) -> Outcome:
    """Drive the bindings of the EntraGroupBinding `name` (whose uid is `uid`) toward its spec.

    `deletion`: the resource is going; remove its bindings. `fresh`: read Entra, not the cache.
    Reconciles of one resource run one at a time, whoever calls.
    """
    started = time.monotonic()
    result = FAILED
    try:
        async with ctx.memory.of(uid).lock:
            outcome = await _reconcile(name, uid, ctx, deletion=deletion, fresh=fresh)
        result = outcome.reason
        return outcome
    finally:
        if deletion:
            ctx.memory.forget(uid)
        ctx.metrics.reconcile_finished(result, time.monotonic() - started)


async def _reconcile(name: str, uid: str, ctx: ReconcileContext, *, deletion: bool, fresh: bool) -> Outcome:
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
        return await _sync(Resource.from_manifest(current), ctx, fresh=fresh)
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


def _named_for(owner: Owner, marked: list[ObservedBinding]) -> list[ObservedBinding]:
    """Without a valid spec the targets are unknown: status lists only the marked bindings whose
    name is the one this resource gives a binding of that role (nothing is written anyway)."""
    return [
        o
        for o in marked
        if o.role_ref.kind in ("ClusterRole", "Role")
        and shard_index(
            o.name,
            binding_name(
                owner.name, "ClusterRole" if o.role_ref.kind == "ClusterRole" else "Role", o.role_ref.name
            ),
        )
        is not None
    ]


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
        report = Report.invalid(_named_for(resource.owner, marked), invalid_spec_problems(error))
        return await _conclude(resource, report, now, ctx)
    view = await read_cluster(resource.owner, spec, ctx)
    owned = split_owned(
        marked, resource.owner.uid, _targets(resource.owner, spec, list(view.namespaces), ctx).target_keys()
    )
    observed = list(owned.ours)
    violations = check_guardrails(spec, ctx.policy.guardrails, view)
    if violations:
        return await _refuse(resource, spec, owned, violations, now, ctx)
    if spec.suspend:
        # Suspending freezes the bindings, but never past their time: an expiry still happens.
        kept = await remove_lapsed(resource.owner, spec, observed, now, ctx)
        report = replace(Report.suspended(spec, kept.left), written=kept.deleted)
        return await _conclude(resource, report, now, ctx)
    if all_expired(spec, now):
        # Finished: nothing to read from Entra, nothing to hold back; remove what is left.
        everything = [*observed, *owned.strays]
        revoked = await _revoke_all(resource.owner, everything, ctx)
        left = [b for b in _after(everything, revoked) if b in observed]
        report = replace(Report.expired(spec, left), written=tuple(revoked.done))
        return await _conclude(resource, report, now, ctx)
    pending = ctx.memory.of(resource.owner.uid).pending_deletions
    interval = ctx.policy.deletion_confirmation
    if confirmation_due(pending, now=now, interval=interval):
        # The read that confirms a deletion comes from Entra (this resource's groups only).
        ctx.directory.invalidate(lookups_for(spec.groups, resource.status))
        fresh, read = True, None
    if read is None:
        read = await read_directory(ctx.directory, spec.groups, resource.status, spec.subjects.kind)
    if read.error is not None:
        return await _directory_failed(resource, spec, owned, read.error, now, ctx)
    ctx.metrics.directory_verified()
    ctx.memory.of(resource.owner.uid).watched_groups = watched_groups(read)
    seen = deleted_looking(spec, read, resource.status)
    decision = confirm_deletions(seen, pending, now=now, interval=interval, fresh=fresh)
    if decision.unconfirmed:
        return await _unconfirmed(resource, spec, observed, decision, now, ctx)
    if decision.confirmed:
        log.info(
            "Confirmed group deletion: a later read from Entra agreed",
            extra=fields(resource=resource.owner.name, groups=",".join(sorted(decision.confirmed))),
        )
    async with ctx.converging:  # what a burst holds at once is bounded here (CONVERGING)
        outcome = await _converge(resource, spec, owned, read, view, now, ctx)
    record = ctx.memory.of(resource.owner.uid)
    record.settled = settled(inputs, spec, read, outcome, record)
    return outcome


async def _refuse(
    resource: Resource,
    spec: EntraGroupBindingSpec,
    owned: OwnedBindings,
    violations: Sequence[Problem],
    now: datetime,
    ctx: ReconcileContext,
) -> Outcome:
    """Outside the guardrails: nothing is granted from the resource, whole, suspended or not.

    Every binding with its marks goes (strays included) through the ordinary plan, each deletion
    audited, without the revocation guard: that guard holds back what a directory blip would
    remove, not what a cluster admin's guardrails forbid. Entra is not read (nothing it says
    could make the resource acceptable)."""
    everything = [*owned.ours, *owned.strays]
    if everything:
        log.info(
            "Revoking bindings: the resource is outside the guardrails",
            extra=fields(resource=resource.owner.name, violation=violations[0].text()),
        )
    applied = await _revoke_all(resource.owner, everything, ctx)
    bindings = [b for b in _after(everything, applied) if b in owned.ours]
    # The audit names the groups as last verified (Entra is not read here).
    groups = sorted({str(g["id"]) for g in resource.status.get("groups") or [] if g.get("id")})
    report = Report.refused(
        spec, bindings, violations, pending=applied.retry, written=applied.done, groups=groups
    )
    retry = "some deletions must be retried" if applied.retry else None
    return await _conclude(resource, report, now, ctx, retry=retry)


async def _unconfirmed(
    resource: Resource,
    spec: EntraGroupBindingSpec,
    observed: list[ObservedBinding],
    decision: Confirmation,
    now: datetime,
    ctx: ReconcileContext,
) -> Outcome:
    """A group reads as deleted for the first time (or too recently): keep every binding exactly."""
    interval = ctx.policy.deletion_confirmation
    what = "; ".join(decision.unconfirmed[gid] for gid in sorted(decision.unconfirmed))
    message = (
        f"Entra reads a group as deleted ({what}); its bindings are kept until a read from Entra "
        f"at least {interval:.0f}s after the first one agrees"
    )
    log.info(
        "Kept bindings: group deletion not yet confirmed",
        extra=fields(resource=resource.owner.name, groups=",".join(sorted(decision.unconfirmed))),
    )
    kept = await remove_lapsed(resource.owner, spec, observed, now, ctx)
    report = replace(
        Report.unconfirmed(spec, kept.left, Problem(Reason.DELETION_UNCONFIRMED, message)),
        written=kept.deleted,
    )
    delay = max(decision.wait, MIN_DIRECTORY_RETRY)
    return await _conclude(resource, report, now, ctx, retry=message, delay=delay)


async def _converge(
    resource: Resource,
    spec: EntraGroupBindingSpec,
    owned: OwnedBindings,
    read: DirectoryOutcome,
    view: ClusterView,
    now: datetime,
    ctx: ReconcileContext,
) -> Outcome:
    """Plan from a verified read and carry the plan out, unless it is a revocation to hold.

    Only the bindings at the targets (`owned.ours`) are planned, guarded and reported; the strays
    are deleted afterwards, never during a hold, and never change status (docs/design.md, Ownership).
    """
    owner, record, observed = resource.owner, ctx.memory.of(resource.owner.uid), list(owned.ours)
    subjects = build_subjects(spec.subjects, read.resolutions or [], read.members, users=ctx.subject_lists)
    desired = _desired(owner, spec, subjects, view, now, ctx, shards_now=_shards_now(owner, observed, record))
    plan = make_plan(desired, [*observed, *await _known_foreign(owner, desired, record, ctx)])
    problems: list[Problem] = [*desired.problems, *plan.problems()]
    too_large = oversized(plan, ctx.policy.sharding.max_bytes, ctx.policy.sharding.max_shards)
    if too_large is not None:
        return await _too_large(resource, spec, read, observed, [*problems, too_large], now, ctx)
    # An expiry is never held back: the guard weighs only what the directory changed.
    lapsed = lapsed_keys(spec, owner.name, now, (o.key for o in observed))
    hold = revocation_hold(
        owner,
        [o for o in observed if o.key not in lapsed],
        Plan(tuple(a for a in plan.actions if a.key not in lapsed), plan.conflicts),
        resource.status,
        resource.annotations,
        now=now,
        policy=_hold_policy(ctx),
    )
    if hold is not None:
        # The next read must come from Entra, not from the cache (this resource's groups only).
        ctx.directory.invalidate(lookups_for(spec.groups, resource.status))
        problems.append(Problem(Reason.REVOCATION_HELD, hold.message))
        kept = await remove_lapsed(owner, spec, observed, now, ctx)
        report = replace(Report.held(spec, read, kept.left, problems, hold), written=kept.deleted)
        return await _conclude(resource, report, now, ctx, retry=hold.message)
    applied = await apply_plan(ctx.kube, owner, plan, desired.group_ids, turns=ctx.writers)
    record.foreign_names = frozenset({c.key for c in plan.conflicts} | set(applied.conflicts))
    if not applied.retry:
        record.shards = shards_in_use(owner.name, desired.bindings)
    # Make-before-break holds for strays too: an old binding left by a role change goes only
    # once its replacement exists.
    cleanup = cleanup_plan(owned.strays, desired.frozen_namespaces)
    swept = (
        await _clean_up(owner, cleanup, desired, ctx) if cleanup and _creates_done(plan, applied) else None
    )
    cleaned = not cleanup or (swept is not None and not swept.retry and not swept.problems)
    report = Report.applied(
        spec,
        read,
        _after(observed, applied),
        [*problems, *applied.problems],
        pending=applied.retry,
        written=[*applied.done, *(swept.done if swept else ())],
        groups=desired.group_ids,
    )
    retry = "some writes must be retried" if applied.retry or not cleaned else None
    return await _conclude(resource, report, now, ctx, retry=retry)


def _shards_now(owner: Owner, observed: Sequence[ObservedBinding], record: ResourceRecord) -> int:
    """The count of shards in use for the split's hysteresis: the one this process last wrote
    (`ResourceRecord.shards`) while any binding of the resource stands at its targets; after a
    restart, the highest shard index among those bindings. Never, while remembered, a shard name
    observed: one carrying the resource's marks may be someone else's (docs/design.md, Ownership)."""
    if record.shards is not None and observed:
        return record.shards
    return shards_in_use(owner.name, observed)


async def _too_large(
    resource: Resource,
    spec: EntraGroupBindingSpec,
    read: DirectoryOutcome,
    observed: list[ObservedBinding],
    problems: list[Problem],
    now: datetime,
    ctx: ReconcileContext,
) -> Outcome:
    """A binding the plan would write is too large to store: none of the plan is carried out (no
    resource half-applied), its bindings are kept exactly; an expiry still happens."""
    log.warning(
        "Kept bindings: a binding would be too large to write",
        extra=fields(resource=resource.owner.name, problem=problems[-1].message),
    )
    kept = await remove_lapsed(resource.owner, spec, observed, now, ctx)
    report = replace(Report.applied(spec, read, kept.left, problems, pending=False), written=kept.deleted)
    return await _conclude(resource, report, now, ctx)


def _creates_done(plan: Plan, applied: ApplyResult) -> bool:
    done = {(a.verb, a.key) for a in applied.done}
    return all((a.verb, a.key) in done for a in plan.actions if a.verb in (Verb.CREATE, Verb.REPLACE))


async def _clean_up(owner: Owner, cleanup: Plan, desired: DesiredState, ctx: ReconcileContext) -> ApplyResult:
    """Delete the strays: bindings with this resource's marks outside its targets. Each delete is
    logged and counted in the reconcile's audit Event like any other; a failure is logged and
    retried, but never reported in status: what is outside the targets never changes status."""
    log.info(
        "Deleting bindings outside the resource's targets",
        extra=fields(
            resource=owner.name, bindings=",".join(f"{a.namespace or ''}/{a.name}" for a in cleanup.actions)
        ),
    )
    result = await apply_plan(ctx.kube, owner, cleanup, desired.group_ids, turns=ctx.writers)
    for problem in result.problems:
        log.warning(
            "Failed to delete a binding outside the targets",
            extra=fields(resource=owner.name, error=problem.message),
        )
    return result


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


def _hold_policy(ctx: ReconcileContext) -> HoldPolicy:
    policy = ctx.policy
    return HoldPolicy(
        max_share=policy.revocation_guard_share,
        min_count=policy.revocation_guard_min,
        retry_delay=policy.retry_delay,
    )


async def _known_foreign(
    owner: Owner, desired: DesiredState, record: ResourceRecord, ctx: ReconcileContext
) -> list[ObservedBinding]:
    """The foreign objects still holding names this resource wants (known from earlier 409s)."""
    wanted = {b.key for b in desired.bindings}
    found = []
    for key in sorted(record.foreign_names & wanted):
        current = await ctx.kube.get_binding(key.kind, key.namespace_or_none, key.name)
        if current is not None:
            observed = ObservedBinding.from_manifest(current)
            if not observed.owned_by(owner.uid):
                found.append(observed)
    return found


def _targets(
    owner: Owner, spec: EntraGroupBindingSpec, namespaces: list[NamespaceInfo], ctx: ReconcileContext
) -> DesiredState:
    """Where the spec grants what, whoever the subjects are (no role read: targets do not
    depend on whether a role exists), and whenever: a grant outside its window still names its
    bindings, so one that lapsed is the resource's own, deleted on time by the plan or by
    `remove_lapsed`, never a stray waiting for the cleanup."""
    return _compute(owner, spec, SubjectSet((), ()), namespaces, None, ctx)


def _compute(
    owner: Owner,
    spec: EntraGroupBindingSpec,
    subjects: SubjectSet,
    namespaces: list[NamespaceInfo],
    roles: RoleInventory | None,
    ctx: ReconcileContext,
    *,
    now: datetime | None = None,
    shards_now: int = 1,
) -> DesiredState:
    return compute_desired(
        owner,
        spec,
        subjects,
        namespaces,
        reserved_namespaces=ctx.policy.reserved_namespaces,
        allowed_roles=ctx.policy.allowed_roles,
        existing_roles=roles,
        now=now,
        sharding=ctx.policy.sharding,
        shards_now=shards_now,
    )


def _desired(
    owner: Owner,
    spec: EntraGroupBindingSpec,
    subjects: SubjectSet,
    view: ClusterView,
    now: datetime,
    ctx: ReconcileContext,
    *,
    shards_now: int,
) -> DesiredState:
    """The desired bindings now (grants outside their window left out), with missing roles
    reported (from the roles `read_cluster` read), sharded from the `shards_now` shards written."""
    return _compute(
        owner, spec, subjects, list(view.namespaces), inventory(view), ctx, now=now, shards_now=shards_now
    )


async def _directory_failed(
    resource: Resource,
    spec: EntraGroupBindingSpec,
    owned: OwnedBindings,
    error: DirectoryError,
    now: datetime,
    ctx: ReconcileContext,
) -> Outcome:
    """Fail-static: keep every binding exactly; fail-closed only past the configured maxStaleness
    (then every binding carrying the resource's marks goes, strays included)."""
    message = f"Entra could not be read, bindings are kept unchanged: {error}"
    # Fail-static keeps what Entra decides, never what time does: expired grants still go.
    kept = await remove_lapsed(resource.owner, spec, owned.ours, now, ctx)
    bindings: Sequence[ObservedBinding] = kept.left
    revoked: Sequence[Action] = kept.deleted
    if _stale(resource, now, ctx):
        everything = [*bindings, *owned.strays]
        applied = await _revoke_all(resource.owner, everything, ctx)
        bindings = [b for b in _after(everything, applied) if b in owned.ours]
        revoked = [*kept.deleted, *applied.done]
        message = (
            f"Entra could not be read for longer than maxStaleness "
            f"({ctx.policy.max_staleness:.0f}s), so every binding was revoked: {error}"
        )
    report = Report.directory_failed(spec, bindings, Problem(Reason(error.reason), message), revoked)
    delay = error.retry_after if error.retry_after is not None else ctx.policy.retry_delay
    return await _conclude(resource, report, now, ctx, retry=message, delay=max(delay, MIN_DIRECTORY_RETRY))


async def _revoke_all(owner: Owner, observed: list[ObservedBinding], ctx: ReconcileContext) -> ApplyResult:
    """Fail-closed: delete every owned binding through the ordinary plan (so each is audited)."""
    if not observed:
        return ApplyResult()
    nothing = DesiredState(owner=owner, bindings=(), problems=(), subjects=(), group_ids=())
    return await apply_plan(ctx.kube, owner, make_plan(nothing, observed), (), turns=ctx.writers)


def _stale(resource: Resource, now: datetime, ctx: ReconcileContext) -> bool:
    """Whether the last verified read is past maxStaleness: memory knows its time exactly; status
    (what a restart finds) may lag the real read by up to `STALENESS_SLACK` of the limit, so its
    deadline is that much later. Stale only past the later deadline: never earlier than promised."""
    limit = ctx.policy.max_staleness
    if limit is None:
        return False
    deadlines = []
    remembered = ctx.memory.of(resource.owner.uid).verified_at
    if remembered is not None:
        deadlines.append(remembered + timedelta(seconds=limit))
    last = resource.status.get("lastDirectorySync")
    try:
        stored = datetime.fromisoformat(last) if isinstance(last, str) else None
    except ValueError:
        stored = None
    if stored is not None and (remembered is None or stored > remembered):
        # Read by this instance before a restart, or by another instance meanwhile.
        deadlines.append(stored + timedelta(seconds=limit * (1 + STALENESS_SLACK)))
    return bool(deadlines) and now > max(deadlines)


def _after(observed: list[ObservedBinding], applied: ApplyResult) -> list[ObservedBinding]:
    """The owned bindings as they stand once the successful writes took effect."""
    return after_plan(observed, applied.executed)


async def _conclude(
    resource: Resource,
    report: Report,
    now: datetime,
    ctx: ReconcileContext,
    *,
    retry: str | None = None,
    delay: float | None = None,
) -> Outcome:
    """Write status from `report`; the outcome asks for a requeue (after `delay`, or the policy's
    retry delay) when `retry` says why one is needed. Before it, the Events: the audit summary of
    what was written, and a Warning per problem (deduplicated)."""
    # Events first: a status write that fails must not lose the audit of writes already made.
    await post_events(resource.owner, report, now, ctx)
    reason = await write_status(resource, report, now, ctx)
    upcoming = next_transition(report.spec, now) if report.spec is not None else None
    if retry is None:
        return Outcome(reason, next_change=upcoming)
    return Outcome(
        reason,
        requeue_after=delay if delay is not None else ctx.policy.retry_delay,
        message=retry,
        next_change=upcoming,
    )
