"""The one idempotent reconcile every trigger runs: parse, resolve, desired, observe, plan, apply, status.

It never branches on which event woke it. It decides nothing from a failed directory read
(fail-static: bindings stay exactly as they are), holds back mass revocations, and writes status
only when it changed, so an idle resync sends no write at all. Domain errors become kopf's
TemporaryError here and nowhere else.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from entra_rbac.constants import CONFIRM_REVOCATION_ANNOTATION
from entra_rbac.core.desired import DesiredState, Owner, RoleInventory, compute_desired
from entra_rbac.core.models import EntraGroupBindingSpec, SubjectKind
from entra_rbac.core.plan import ObservedBinding, Plan, make_plan
from entra_rbac.core.problems import Problem, Reason, invalid_spec_problems
from entra_rbac.core.revocation import after_plan, check_revocation
from entra_rbac.core.status import build_status, status_changed, timestamp
from entra_rbac.core.subjects import Subject, SubjectSet, bound_member_counts, build_subjects
from entra_rbac.errors import KubeError
from entra_rbac.reconciler.apply import ApplyResult, apply_plan
from entra_rbac.reconciler.context import ReconcileContext
from entra_rbac.reconciler.resolve import DirectoryOutcome, read_directory

log = logging.getLogger("entra_rbac.reconcile")

HOLD_KEY = "revocationHold"


async def reconcile_resource(
    *,
    name: str,
    uid: str,
    generation: int,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    annotations: Mapping[str, str],
    deletion: bool,
    ctx: ReconcileContext,
    fresh: bool = False,
) -> None:
    """Drive the bindings of one EntraGroupBinding toward what it asks for. `fresh` re-reads Entra."""
    started = time.monotonic()
    owner = Owner(name=name, uid=uid, generation=generation)
    result = "error"
    try:
        if deletion:
            await remove_all(owner, ctx)
            result = "Deleted"
            return
        if fresh:
            ctx.directory.invalidate()
        # Act on the object as it is now, not as the event that woke us saw it: a stale status
        # would move lastTransitionTime (a needless write), a stale spec would undo a newer one.
        current = await ctx.kube.get_resource(name)
        if current is None or current.get("metadata", {}).get("uid") != uid:
            result = "Gone"
            return
        meta = current["metadata"]
        owner = Owner(name=name, uid=uid, generation=int(meta.get("generation") or generation))
        result = await _reconcile(
            owner, current.get("spec") or {}, current.get("status") or {}, meta.get("annotations") or {}, ctx
        )
    except KubeError as error:
        raise kopf.TemporaryError(f"Kubernetes API: {error}", delay=ctx.policy.retry_delay) from error
    finally:
        ctx.metrics.reconcile_finished(result, time.monotonic() - started)


async def remove_all(owner: Owner, ctx: ReconcileContext) -> None:
    """Delete every binding this resource owns (the garbage collector would, a little later)."""
    for observed in await _owned(owner, ctx):
        if observed.uid is not None:
            await ctx.kube.delete_binding(
                observed.kind, observed.namespace, observed.name, uid=observed.uid, resource_version=None
            )
            log.info("Deleted %s %s", observed.kind, observed.name, extra={"resource": owner.name})
    ctx.metrics.forget_resource(owner.uid)
    ctx.verified_at.pop(owner.uid, None)
    ctx.conflicts.pop(owner.uid, None)


async def _owned(owner: Owner, ctx: ReconcileContext) -> list[ObservedBinding]:
    """The bindings carrying this resource's label that it really owns (label AND controller ref)."""
    listed = [ObservedBinding.from_manifest(o) for o in await ctx.kube.list_owned_bindings(owner.uid)]
    return [o for o in listed if o.owned_by(owner.uid)]


async def _reconcile(
    owner: Owner,
    raw_spec: Mapping[str, Any],
    previous: Mapping[str, Any],
    annotations: Mapping[str, str],
    ctx: ReconcileContext,
) -> str:
    now = ctx.clock()
    observed = await _owned(owner, ctx)
    try:
        spec = EntraGroupBindingSpec.model_validate(raw_spec)
    except ValidationError as error:
        # The API server validates too; this guards objects written before the CRD's rules.
        invalid = invalid_spec_problems(error)
        return await _finish(owner, previous, now, ctx, spec=None, bindings=observed, problems=invalid)
    if spec.suspend:
        return await _finish(owner, previous, now, ctx, spec=spec, bindings=observed, suspended=True)

    outcome = await read_directory(ctx.directory, spec.groups, previous, spec.subjects.kind)
    if outcome.error is not None:
        return await _directory_failed(owner, spec, previous, observed, outcome, now, ctx)
    ctx.metrics.directory_verified()
    subjects = build_subjects(spec.subjects, outcome.resolutions or [], outcome.members)
    desired = await _desired(owner, spec, subjects, ctx)
    plan = make_plan(desired, [*observed, *await _known_foreign(owner, desired, ctx)])
    problems: list[Problem] = [*desired.problems, *plan.problems()]

    hold = _revocation_hold(owner, observed, plan, previous, annotations, now, ctx)
    if hold is not None:
        ctx.directory.invalidate()  # the next read must come from Entra, not from the cache
        problems.append(Problem(Reason.REVOCATION_HELD, hold["message"]))
        await _finish(
            owner,
            previous,
            now,
            ctx,
            spec=spec,
            outcome=outcome,
            bindings=observed,
            problems=problems,
            synced=now,
            hold=hold,
        )
        raise kopf.TemporaryError(hold["message"], delay=ctx.policy.retry_delay)

    applied = await apply_plan(ctx.kube, owner, plan, desired.group_ids)
    problems.extend(applied.problems)
    ctx.conflicts[owner.uid] = {c.key for c in plan.conflicts} | set(applied.conflicts)
    bindings = _after(observed, applied)
    reason = await _finish(
        owner,
        previous,
        now,
        ctx,
        spec=spec,
        outcome=outcome,
        bindings=bindings,
        problems=problems,
        synced=now,
        reconciling=applied.retry,
    )
    if applied.retry:
        raise kopf.TemporaryError("some writes must be retried", delay=ctx.policy.retry_delay)
    return reason


async def _known_foreign(owner: Owner, desired: DesiredState, ctx: ReconcileContext) -> list[ObservedBinding]:
    """The foreign objects still holding names this resource wants (known from earlier 409s)."""
    wanted = {b.key for b in desired.bindings}
    found = []
    for key in sorted(ctx.conflicts.get(owner.uid, set()) & wanted):
        current = await ctx.kube.get_binding(key.kind, key.namespace_or_none, key.name)
        if current is not None:
            observed = ObservedBinding.from_manifest(current)
            if not observed.owned_by(owner.uid):
                found.append(observed)
    return found


async def _desired(
    owner: Owner, spec: EntraGroupBindingSpec, subjects: SubjectSet, ctx: ReconcileContext
) -> DesiredState:
    """The desired bindings, with missing roles reported (one read per role, not per binding)."""
    namespaces = await ctx.kube.list_namespaces() if spec.role_bindings else []

    def compute(roles: RoleInventory | None) -> DesiredState:
        return compute_desired(
            owner,
            spec,
            subjects,
            namespaces,
            reserved_namespaces=ctx.policy.reserved_namespaces,
            allowed_roles=ctx.policy.allowed_roles,
            existing_roles=roles,
        )

    first = compute(None)
    return compute(await _role_inventory(first, spec, ctx))


async def _role_inventory(
    first: DesiredState, spec: EntraGroupBindingSpec, ctx: ReconcileContext
) -> RoleInventory:
    cluster_roles = {b.role_ref.name for b in first.bindings if b.role_ref.kind == "ClusterRole"}
    cluster_roles |= {c.cluster_role for c in spec.cluster_role_bindings}
    existing = {r for r in sorted(cluster_roles) if await ctx.kube.cluster_role_exists(r)}
    role_targets = [b for b in first.bindings if b.role_ref.kind == "Role" and b.namespace]
    roles = (
        await ctx.kube.role_names(
            sorted({b.namespace or "" for b in role_targets}), sorted({b.role_ref.name for b in role_targets})
        )
        if role_targets
        else {}
    )
    return RoleInventory(cluster_roles=frozenset(existing), roles=roles)


async def _directory_failed(
    owner: Owner,
    spec: EntraGroupBindingSpec,
    previous: Mapping[str, Any],
    observed: list[ObservedBinding],
    outcome: DirectoryOutcome,
    now: datetime,
    ctx: ReconcileContext,
) -> str:
    """Fail-static: keep every binding exactly; fail-closed only past the configured maxStaleness."""
    assert outcome.error is not None
    error = outcome.error
    reason = Reason(error.reason)
    message = f"Entra could not be read, bindings are kept unchanged: {error}"
    bindings: Sequence[ObservedBinding] = observed
    if _stale(owner, previous, now, ctx):
        if observed:
            nothing = DesiredState(owner=owner, bindings=(), problems=(), subjects=(), group_ids=())
            revoke = make_plan(nothing, observed)
            bindings = _after(observed, await apply_plan(ctx.kube, owner, revoke, ()))
        message = (
            f"Entra could not be read for longer than maxStaleness "
            f"({ctx.policy.max_staleness:.0f}s), so every binding was revoked: {error}"
        )
    await _finish(
        owner,
        previous,
        now,
        ctx,
        spec=spec,
        outcome=None,
        bindings=bindings,
        problems=[Problem(reason, message)],
        keep_hold=True,
    )
    delay = error.retry_after if error.retry_after is not None else ctx.policy.retry_delay
    raise kopf.TemporaryError(message, delay=max(delay, 1.0))


def _stale(owner: Owner, previous: Mapping[str, Any], now: datetime, ctx: ReconcileContext) -> bool:
    """Whether the last verified read (in memory, or in status after a restart) is past maxStaleness."""
    limit = ctx.policy.max_staleness
    last = previous.get("lastDirectorySync")
    known = [ctx.verified_at[owner.uid]] if owner.uid in ctx.verified_at else []
    if isinstance(last, str):
        known.append(datetime.fromisoformat(last))
    if limit is None or not known:
        return False
    return (now - max(known)).total_seconds() > limit


def _revocation_hold(
    owner: Owner,
    observed: list[ObservedBinding],
    plan: Plan,
    previous: Mapping[str, Any],
    annotations: Mapping[str, str],
    now: datetime,
    ctx: ReconcileContext,
) -> dict[str, Any] | None:
    """The hold to record when this plan revokes too much at once, or None to go ahead.

    A hold is released when a later directory read (at least `retry_delay` after the hold, from
    Entra rather than the cache) asks for the same removals, or when the resource is annotated
    with `entra-rbac.io/confirm-revocation=<fingerprint>` naming exactly these removals.
    """
    check = check_revocation(
        observed,
        plan,
        owner.uid,
        max_share=ctx.policy.revocation_guard_share,
        min_count=ctx.policy.revocation_guard_min,
    )
    if not check.held:
        return None
    fingerprint = _fingerprint(check.removed)
    if annotations.get(CONFIRM_REVOCATION_ANNOTATION) == fingerprint:
        log.info("Revocation of %d subjects confirmed by annotation", len(check.removed))
        return None
    earlier = previous.get(HOLD_KEY) or {}
    if earlier.get("fingerprint") == fingerprint:
        since = datetime.fromisoformat(str(earlier.get("since", "")))
        if (now - since).total_seconds() >= ctx.policy.retry_delay:
            log.info("Revocation of %d subjects seen again on a later read; applying", len(check.removed))
            return None
        return dict(earlier)
    message = check.message.replace(
        f"annotate the resource with {CONFIRM_REVOCATION_ANNOTATION}",
        f"annotate the resource with {CONFIRM_REVOCATION_ANNOTATION}={fingerprint}",
    )
    return {
        "fingerprint": fingerprint,
        "since": timestamp(now),
        "removed": len(check.removed),
        "current": check.current,
        "message": message,
    }


def _fingerprint(subjects: Sequence[Subject]) -> str:
    text = "\n".join(f"{s.kind}:{s.name}" for s in sorted(subjects))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _after(observed: list[ObservedBinding], applied: ApplyResult) -> list[ObservedBinding]:
    """The owned bindings as they stand once the successful writes took effect."""
    return after_plan(observed, applied.executed)


async def _finish(
    owner: Owner,
    previous: Mapping[str, Any],
    now: datetime,
    ctx: ReconcileContext,
    *,
    spec: EntraGroupBindingSpec | None,
    bindings: Sequence[ObservedBinding],
    outcome: DirectoryOutcome | None = None,
    problems: Sequence[Problem] = (),
    synced: datetime | None = None,
    suspended: bool = False,
    reconciling: bool = False,
    hold: Mapping[str, Any] | None = None,
    keep_hold: bool = False,
) -> str:
    """Build the status and write it only if it changed; returns the Ready reason (for metrics)."""
    members = None
    if outcome is not None and spec is not None and spec.subjects.kind is SubjectKind.USER:
        members = bound_member_counts(outcome.members)
    new = build_status(
        previous,
        now=now,
        generation=owner.generation,
        spec=spec,
        resolutions=outcome.resolutions if outcome is not None else None,
        bindings=bindings,
        problems=problems,
        member_counts=members,
        reconciling=reconciling,
        suspended=suspended,
        directory_synced_at=synced,
    )
    new[HOLD_KEY] = dict(hold) if hold is not None else (previous.get(HOLD_KEY) if keep_hold else None)
    if synced is not None:
        ctx.verified_at[owner.uid] = synced
    # A newer sync time alone is no reason to write: an idle resync must send nothing. The exact
    # time lives in memory (maxStaleness) and in the metrics; status gets it with the next change.
    if status_changed(previous, new, ignoring=("lastDirectorySync",)):
        await ctx.kube.patch_status(owner.name, new)
    cluster_wide = sum(1 for b in bindings if b.kind == "ClusterRoleBinding")
    ctx.metrics.set_managed_bindings(
        owner.uid, cluster_role_bindings=cluster_wide, role_bindings=len(bindings) - cluster_wide
    )
    ready = next(c for c in new["conditions"] if c["type"] == "Ready")
    return str(ready["reason"])
