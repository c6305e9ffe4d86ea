"""The reconciler against in-memory fakes (tests/unit/reconcile_fakes.py): no server, no kopf.

Each test arranges a `World` (a fake API server, a fake Entra, a clock that moves only when
told), runs `reconcile` and checks what it wrote, what status says and the `Outcome`. The
safety rules of docs/design.md (Directory semantics; Ownership) each have a table here:
fail-static, maxStaleness, the revocation hold and its two releases, make-before-break,
conflicts, suspend and deletion.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from typing import Any

import pytest

from entra_rbac.adapters.kube import errors
from entra_rbac.constants import (
    CONFIRM_REVOCATION_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    OWNER_UID_LABEL,
)
from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.naming import BindingKey
from entra_rbac.errors import DirectoryError, DirectoryForbiddenError, DirectoryUnavailableError, KubeError
from entra_rbac.reconciler import Policy
from tests.unit.reconcile_fakes import UID, World, guid

G1, G2 = guid(1), guid(2)
VIEW = BindingKey.of("ClusterRoleBinding", None, "egb:team:clusterrole:view")
EDIT = BindingKey.of("ClusterRoleBinding", None, "egb:team:clusterrole:edit")
PAYMENTS_EDIT = BindingKey.of("RoleBinding", "payments", "egb:team:clusterrole:edit")
BILLING_EDIT = BindingKey.of("RoleBinding", "billing", "egb:team:clusterrole:edit")
RETRY = Policy().retry_delay
CONFIRM = Policy().deletion_confirmation


def group_spec(*roles: str, groups: tuple[str, ...] = (G1,), **extra: Any) -> dict[str, Any]:
    return {
        "groups": [{"id": g} for g in groups],
        "clusterRoleBindings": [{"clusterRole": role} for role in roles or ("view",)],
        **extra,
    }


def user_spec(group: str = G1) -> dict[str, Any]:
    return {
        "groups": [{"id": group}],
        "subjects": {"kind": "User"},
        "clusterRoleBindings": [{"clusterRole": "view"}],
    }


async def settled_world(
    spec: dict[str, Any] | None = None, *, policy: Policy | None = None, **members: Any
) -> World:
    """A world whose resource has been reconciled once, successfully."""
    world = World(policy=policy or Policy())
    world.kube.namespaces = [NamespaceInfo("payments"), NamespaceInfo("billing")]
    world.directory.add_group(G1, *members.get("g1", ()))
    world.directory.add_group(G2)
    world.apply(spec or group_spec())
    outcome = await world.reconcile()
    assert outcome.settled, outcome
    assert world.condition()["status"] == "True", world.status
    return world


# --- the contract ------------------------------------------------------------------------


async def test_a_settled_reconcile_reports_its_ready_reason_and_asks_no_requeue() -> None:
    world = await settled_world()
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("Reconciled", None)
    assert world.kube.owned_keys() == [VIEW]


async def test_an_idle_resync_writes_nothing() -> None:
    world = await settled_world()
    writes, status_writes = list(world.kube.writes), world.kube.status_writes
    world.clock.advance(300)
    await world.reconcile()
    assert (world.kube.writes, world.kube.status_writes) == (writes, status_writes)


@pytest.mark.parametrize(
    ("break_it", "reason"),
    [
        (lambda world: world.kube.resources.pop("team"), "Gone"),
        (lambda world: world.kube.resources["team"]["metadata"].update(uid="another-uid"), "Gone"),
        (
            lambda world: setattr(world.kube, "unavailable", errors.unavailable("refused", "get")),
            "error",
        ),
    ],
    ids=["deleted", "recreated-under-a-new-uid", "api-server-down"],
)
async def test_a_resource_that_cannot_be_read_is_left_alone(
    break_it: Callable[[World], Any], reason: str
) -> None:
    world = await settled_world()
    before = world.kube.snapshot()
    break_it(world)
    outcome = await world.reconcile()
    assert outcome.reason == reason
    assert world.kube.bindings == before
    # Only a failure asks for a requeue; a resource that is gone is settled.
    assert (outcome.requeue_after is not None) is (reason == "error")


# --- fail-static -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "failure", "reason", "requeue_after"),
    [
        ("group", DirectoryUnavailableError("Graph answered 503"), "DirectoryUnavailable", RETRY),
        ("group", DirectoryUnavailableError("throttled", retry_after=42), "DirectoryUnavailable", 42),
        ("group", DirectoryUnavailableError("throttled", retry_after=0.1), "DirectoryUnavailable", 1.0),
        ("group", DirectoryForbiddenError("Graph refused"), "DirectoryForbidden", RETRY),
        # Partial: the groups resolved, one member read failed. Nothing is decided from half a read.
        ("members", DirectoryUnavailableError("page 3 failed"), "DirectoryUnavailable", RETRY),
    ],
)
async def test_fail_static_a_failed_or_partial_read_keeps_every_binding_exactly(
    mode: str, failure: DirectoryError, reason: str, requeue_after: float
) -> None:
    world = await settled_world(user_spec() if mode == "members" else None, g1=("alice", "bob"))
    before = world.kube.snapshot()
    writes = list(world.kube.writes)
    # Entra changed meanwhile: had the read succeeded, bindings would change.
    world.directory.members[G1] = []
    if mode == "members":
        world.directory.member_failure = failure
    else:
        world.directory.failure = failure
    outcome = await world.reconcile()
    assert world.kube.bindings == before
    assert world.kube.writes == writes
    ready = world.condition()
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert "kept unchanged" in ready["message"]
    assert (outcome.reason, outcome.requeue_after) == (reason, requeue_after)


# --- maxStaleness ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_staleness", "verified_again_at", "fails_at", "restart", "revoked"),
    [
        (600, None, 599, False, False),
        (600, None, 601, False, True),
        (None, None, 10**6, False, False),  # not configured: fail-static forever
        # The idle resync at 500 s verified Entra without writing status: memory knows.
        (600, 500, 1000, False, False),
        # After a restart memory is empty; status's lastDirectorySync bounds the outage, with the
        # slack by which it may lag the last verified read (a quarter of maxStaleness).
        (600, None, 751, True, True),
        (600, None, 749, True, False),
        # Issue 18: verified at 500 s, restarted during an outage: no revocation at 601 s or
        # 1000 s, since status was kept within the slack (written at 500 s, being older than 150 s).
        (600, 500, 1000, True, False),
        (600, 500, 1251, True, True),
        # A read 100 s in is within the slack: status kept 0 s, so a restart revokes past 750 s
        # (600 s after the real read would have been 700 s: later, never earlier, than promised).
        (600, 100, 700, True, False),
        (600, 100, 751, True, True),
    ],
)
async def test_max_staleness_revokes_every_binding_only_past_the_window(
    max_staleness: float | None,
    verified_again_at: float | None,
    fails_at: float,
    restart: bool,
    revoked: bool,
) -> None:
    world = await settled_world(policy=Policy(max_staleness=max_staleness))
    if verified_again_at is not None:
        world.clock.advance(verified_again_at)
        await world.reconcile()
        world.clock.advance(-verified_again_at)
    before = world.kube.snapshot()
    world.directory.failure = DirectoryUnavailableError("Graph unreachable")
    world.clock.advance(fails_at)
    if restart:
        world.ctx = world.new_context()
    outcome = await world.reconcile()
    ready = world.condition()
    assert (ready["status"], ready["reason"], outcome.reason) == (
        "False",
        "DirectoryUnavailable",
        "DirectoryUnavailable",
    )
    assert outcome.requeue_after is not None
    if revoked:
        assert world.kube.owned_keys() == []
        assert "maxStaleness" in ready["message"]
        assert [w[0] for w in world.kube.writes[-1:]] == ["delete"]
    else:
        assert world.kube.bindings == before
        assert "kept unchanged" in ready["message"]


@pytest.mark.parametrize(
    ("max_staleness", "idle_resyncs", "status_writes"),
    [
        (None, [100, 1000, 10**5], 0),  # off: an idle resync never writes
        (600, [100, 140], 0),  # within a quarter of maxStaleness: nothing to persist
        (600, [100, 160, 200, 320], 2),  # at 160 s (older than 150 s), then again at 320 s
    ],
)
async def test_with_max_staleness_the_sync_time_reaches_status_only_when_older_than_the_slack(
    max_staleness: float | None, idle_resyncs: list[float], status_writes: int
) -> None:
    world = await settled_world(policy=Policy(max_staleness=max_staleness))
    before, start = world.kube.status_writes, world.clock.now
    for at in idle_resyncs:
        world.clock.now = start
        world.clock.advance(at)
        assert (await world.reconcile()).settled
    assert world.kube.status_writes - before == status_writes
    assert world.condition()["reason"] == "Reconciled"


# --- the revocation hold -----------------------------------------------------------------

TEAM = ("alice", "bob", "carol", "dave", "erin", "frank")


async def held_world() -> World:
    """Six users bound; then Entra says five left at once: a mass revocation, held."""
    world = await settled_world(user_spec(), g1=TEAM)
    world.directory.members[G1] = world.directory.members[G1][:1]
    before = world.kube.snapshot()
    invalidations = world.directory.invalidations
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("RevocationHeld", RETRY)
    assert world.kube.bindings == before
    assert world.directory.invalidations == invalidations + 1  # the next read comes from Entra
    hold = world.status["revocationHold"]
    assert (hold["removed"], hold["current"]) == (5, 6)
    assert f"{CONFIRM_REVOCATION_ANNOTATION}={hold['fingerprint']}" in world.condition()["message"]
    return world


@pytest.mark.parametrize(
    ("wait", "annotation", "released"),
    [
        (RETRY, None, True),  # a later read, at least retry_delay on, asks for the same: go ahead
        (RETRY / 2, None, False),  # too soon: the same cached answer proves nothing
        (0, "fingerprint", True),  # a person confirmed exactly these removals
        (0, "0123456789abcdef", False),  # a confirmation of other removals
    ],
)
async def test_a_held_revocation_is_released_by_a_later_agreeing_read_or_the_confirming_annotation(
    wait: float, annotation: str | None, released: bool
) -> None:
    world = await held_world()
    hold = world.status["revocationHold"]
    world.clock.advance(wait)
    if annotation is not None:
        world.annotate(
            CONFIRM_REVOCATION_ANNOTATION, hold["fingerprint"] if annotation == "fingerprint" else annotation
        )
    outcome = await world.reconcile()
    if released:
        assert (outcome.reason, outcome.requeue_after) == ("Reconciled", None)
        assert world.subjects(VIEW) == ["alice@contoso.com"]
        assert world.status.get("revocationHold") is None
    else:
        assert outcome.reason == "RevocationHeld"
        assert len(world.subjects(VIEW)) == 6
        assert world.status["revocationHold"] == hold  # the same hold, its start unmoved


async def test_a_hold_survives_a_failed_read_and_ends_when_entra_takes_it_back() -> None:
    world = await held_world()
    hold = world.status["revocationHold"]
    world.directory.failure = DirectoryUnavailableError("Graph 503")
    await world.reconcile()
    assert world.status["revocationHold"] == hold
    world.directory.failure = None
    world.directory.add_group(G1, *TEAM)
    outcome = await world.reconcile()
    assert outcome.reason == "Reconciled"
    assert world.status.get("revocationHold") is None
    assert len(world.subjects(VIEW)) == 6


# --- status tells the truth first --------------------------------------------------------


def user_role_bindings(*namespaces: str) -> dict[str, Any]:
    """User mode, ClusterRole edit in each namespace: a role only the RoleBindings reference."""
    return {
        "groups": [{"id": G1}],
        "subjects": {"kind": "User"},
        "roleBindings": [{"clusterRole": "edit", "namespaces": list(namespaces)}],
    }


@pytest.mark.parametrize(
    ("arrange", "ready", "stalled", "bound"),
    [
        # Every member leaves at once: held. The existing role is not reported missing.
        (lambda world: world.directory.members.update({G1: []}), "RevocationHeld", None, 6),
        # ... and a missing role is reported beside the hold, which still outranks it.
        (
            lambda world: (
                world.directory.members.update({G1: []}),
                world.kube.cluster_roles.discard("edit"),
            ),
            "RevocationHeld",
            "RoleNotFound",
            6,
        ),
        # A missing role with the group intact: RoleNotFound, Stalled.
        (lambda world: world.kube.cluster_roles.discard("edit"), "RoleNotFound", "RoleNotFound", 6),
    ],
    ids=["hold", "hold-and-missing-role", "missing-role"],
)
async def test_ready_tells_the_most_important_truth_and_roles_are_checked_without_subjects(
    arrange: Callable[[World], Any], ready: str, stalled: str | None, bound: int
) -> None:
    world = await settled_world(user_role_bindings("payments"), g1=TEAM)
    arrange(world)
    outcome = await world.reconcile()
    if outcome.reason == "DeletionUnconfirmed":  # an emptied group: confirmed by a later read
        world.clock.advance(CONFIRM)
        outcome = await world.reconcile()
    assert outcome.reason == ready
    assert world.condition()["reason"] == ready
    stalled_now = [c for c in world.status["conditions"] if c["type"] == "Stalled"]
    assert [c["reason"] for c in stalled_now] == ([stalled] if stalled else [])
    assert len(world.subjects(PAYMENTS_EDIT)) == bound


@pytest.mark.parametrize("spec", [user_role_bindings("payments"), user_spec()], ids=["rolebinding", "crb"])
async def test_an_empty_user_mode_group_is_reconciled_not_stalled(spec: dict[str, Any]) -> None:
    world = World()
    world.kube.namespaces = [NamespaceInfo("payments")]
    world.directory.add_group(G1)
    world.apply(spec)
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("Reconciled", None)
    assert world.condition()["status"] == "True"
    assert [c["type"] for c in world.status["conditions"]] == ["Ready"]
    assert world.kube.owned_keys() == []


# --- deletion is confirmed ---------------------------------------------------------------


def forget_group(world: World) -> None:
    world.directory.groups.pop(G1)


def empty_group(world: World) -> None:
    world.directory.members[G1] = []


def bound(world: World, key: BindingKey) -> list[str]:
    return world.subjects(key) if key in world.kube.bindings else []


@pytest.mark.parametrize(
    ("spec", "members", "lose_it", "gone"),
    [
        (group_spec(), (), forget_group, "GroupNotFound"),
        (user_spec(), ("alice", "bob"), forget_group, "GroupNotFound"),
        (user_spec(), ("alice", "bob"), empty_group, "Reconciled"),
    ],
    ids=["group-mode-404", "user-mode-404", "user-mode-emptied"],
)
async def test_a_deletion_is_acted_on_only_when_a_fresh_read_after_the_interval_agrees(
    spec: dict[str, Any], members: tuple[str, ...], lose_it: Callable[[World], None], gone: str
) -> None:
    world = await settled_world(spec, g1=members)
    before = world.kube.snapshot()
    lose_it(world)
    # The first read that shows it deleted: kept exactly, the group Unverified, a requeue at the
    # end of the interval.
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("DeletionUnconfirmed", CONFIRM)
    assert world.kube.bindings == before
    assert [g["state"] for g in world.status["groups"]] == ["Unverified"]
    assert G1 in world.condition()["message"]
    assert world.condition("Reconciling")["reason"] == "DeletionUnconfirmed"
    # A second read before the interval has passed: still kept, asked again for the rest.
    world.clock.advance(CONFIRM / 2)
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("DeletionUnconfirmed", CONFIRM / 2)
    assert world.kube.bindings == before
    # After the interval: the confirming read bypasses the cache, agrees, and the subjects go.
    world.clock.advance(CONFIRM / 2)
    calls = len(world.directory.calls)
    outcome = await world.reconcile()
    assert world.directory.calls[calls:] == ["invalidate", "lookup"]
    assert outcome.reason == gone
    assert world.kube.owned_keys() == []
    assert world.ctx.memory.of(UID).pending_deletions == {}


async def test_a_group_that_answers_again_clears_the_pending_deletion() -> None:
    world = await settled_world(user_spec(), g1=("alice", "bob"))
    before = world.kube.snapshot()
    members = list(world.directory.members[G1])
    forget_group(world)
    assert (await world.reconcile()).reason == "DeletionUnconfirmed"
    world.directory.add_group(G1)
    world.directory.members[G1] = members
    world.clock.advance(1)
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("Reconciled", None)
    assert [g["state"] for g in world.status["groups"]] == ["Resolved"]
    assert world.kube.bindings == before
    assert world.ctx.memory.of(UID).pending_deletions == {}
    # A later 404 starts a new wait: the earlier sighting counts for nothing.
    world.clock.advance(CONFIRM)
    forget_group(world)
    assert (await world.reconcile()).reason == "DeletionUnconfirmed"
    assert world.kube.bindings == before


async def test_a_group_never_seen_present_is_not_found_at_once_and_deletion_forgets_pending() -> None:
    world = World()
    world.apply(group_spec())
    assert (await world.reconcile()).reason == "GroupNotFound"  # nothing was ever bound for it
    world.directory.add_group(G1)
    assert (await world.reconcile()).reason == "Reconciled"
    forget_group(world)
    assert (await world.reconcile()).reason == "DeletionUnconfirmed"
    await world.reconcile(deletion=True)
    assert UID not in world.ctx.memory


# --- make-before-break -------------------------------------------------------------------


def role_bindings(*namespaces: str) -> dict[str, Any]:
    return {"groups": [{"id": G1}], "roleBindings": [{"clusterRole": "edit", "namespaces": list(namespaces)}]}


@pytest.mark.parametrize(
    ("before", "after", "writes"),
    [
        # A role change is a new name: the new binding exists before the old one goes.
        (group_spec("view"), group_spec("edit"), [("create", EDIT), ("delete", VIEW)]),
        (
            role_bindings("payments"),
            role_bindings("billing"),
            [("create", BILLING_EDIT), ("delete", PAYMENTS_EDIT)],
        ),
        (group_spec("view"), group_spec("view", "edit"), [("create", EDIT)]),
    ],
)
async def test_every_create_comes_before_any_delete(
    before: dict[str, Any], after: dict[str, Any], writes: list[tuple[str, BindingKey]]
) -> None:
    world = await settled_world(before)
    done = len(world.kube.writes)
    world.apply(after)
    assert (await world.reconcile()).settled
    assert [(verb, key) for verb, key, ok in world.kube.writes[done:] if ok] == writes


async def test_a_binding_whose_role_ref_differs_is_replaced_at_its_name() -> None:
    world = await settled_world()
    world.kube.bindings[VIEW]["roleRef"]["name"] = "admin"  # as if written by an older version
    done = len(world.kube.writes)
    assert (await world.reconcile()).settled
    assert [(verb, key) for verb, key, _ in world.kube.writes[done:]] == [("delete", VIEW), ("create", VIEW)]
    assert world.kube.bindings[VIEW]["roleRef"]["name"] == "view"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (errors.UnavailableError("503", status=503, reason="ServiceUnavailable"), "ApplyFailed"),
        (errors.InvalidError("422", status=422, reason=errors.INVALID), "ApplyFailed"),
        (errors.ForbiddenError("no bind", status=403, reason=errors.FORBIDDEN), "RoleNotAllowed"),
    ],
)
async def test_deletes_are_skipped_when_a_create_failed(error: KubeError, reason: str) -> None:
    world = await settled_world(group_spec("view"))
    world.apply(group_spec("edit"))
    world.kube.fail_next("create", EDIT, error)
    done = len(world.kube.writes)
    outcome = await world.reconcile()
    assert world.kube.writes[done:] == [("create", EDIT, False)]
    assert world.kube.owned_keys() == [VIEW]  # the old access stays until the new one exists
    assert world.condition()["reason"] == reason
    assert outcome.requeue_after == RETRY
    # The next attempt, with the API server answering again, completes the change in order.
    assert (await world.reconcile()).settled
    assert world.kube.owned_keys() == [EDIT]


# --- conflicts ---------------------------------------------------------------------------


def foreign(
    key: BindingKey, labels: dict[str, str], owner_references: list[dict[str, Any]]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": key.name, "labels": labels, "ownerReferences": owner_references}
    if key.namespace:
        metadata["namespace"] = key.namespace
    return {
        "kind": key.kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
    }


MANAGED = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}


@pytest.mark.parametrize(
    ("labels", "owner_references"),
    [
        ({}, []),  # someone's own binding
        ({**MANAGED, OWNER_UID_LABEL: "another-uid"}, [{"uid": "another-uid", "controller": True}]),
        # Our labels, copied by hand, but no controller reference to us: still not ours.
        ({**MANAGED, OWNER_UID_LABEL: UID}, []),
    ],
    ids=["unlabelled", "another-resource", "labels-without-owner-reference"],
)
async def test_a_foreign_object_at_a_target_name_is_never_touched(
    labels: dict[str, str], owner_references: list[dict[str, Any]]
) -> None:
    world = World()
    world.directory.add_group(G1)
    world.kube.put_binding(foreign(VIEW, labels, owner_references))
    world.apply(group_spec("view"))
    original = world.kube.snapshot()[VIEW]
    for _ in range(2):
        outcome = await world.reconcile()
        assert world.kube.bindings[VIEW] == original
        assert outcome.reason == "Conflict"
        assert world.condition()["status"] == "False"
    # Only the first reconcile tried to create; the second read the name instead (one GET).
    assert [(verb, key) for verb, key, _ in world.kube.writes] == [("create", VIEW)]
    del world.kube.bindings[VIEW]
    assert (await world.reconcile()).reason == "Reconciled"
    assert world.kube.owned_keys() == [VIEW]


# --- suspend -----------------------------------------------------------------------------


async def test_a_suspended_resource_reads_nothing_and_writes_no_binding() -> None:
    world = await settled_world(g1=("alice",))
    before, lookups = world.kube.snapshot(), world.directory.lookups
    world.directory.groups.pop(G1)  # would revoke, were it read
    world.apply(group_spec(suspend=True))
    outcome = await world.reconcile()
    assert world.kube.bindings == before
    assert world.directory.lookups == lookups
    ready = world.condition()
    assert (ready["status"], ready["reason"], outcome.reason) == ("False", "Suspended", "Suspended")
    assert outcome.settled


# --- deletion ----------------------------------------------------------------------------


async def test_deletion_removes_every_owned_binding_and_forgets_the_resource() -> None:
    world = await settled_world(group_spec("view", "edit"))
    other = BindingKey.of("ClusterRoleBinding", None, "someone-elses")
    world.kube.put_binding(foreign(other, {}, []))
    assert UID in world.ctx.memory
    outcome = await world.reconcile(deletion=True)
    assert (outcome.reason, outcome.requeue_after) == ("Deleted", None)
    assert world.kube.owned_keys() == []
    assert other in world.kube.bindings
    assert UID not in world.ctx.memory
    assert world.metrics.managed_bindings.labels(kind="ClusterRoleBinding")._value.get() == 0


async def test_a_deletion_that_fails_asks_for_a_requeue() -> None:
    world = await settled_world()
    world.kube.fail_next(
        "delete", VIEW, errors.UnavailableError("503", status=503, reason="ServiceUnavailable")
    )
    outcome = await world.reconcile(deletion=True)
    assert (outcome.reason, outcome.requeue_after) == ("error", RETRY)
    assert "Kubernetes API" in outcome.message


# --- logs --------------------------------------------------------------------------------


async def test_each_write_is_logged_as_kubernetes_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="entra_rbac")
    await settled_world(role_bindings("payments"))
    [line] = [r for r in caplog.records if r.getMessage().startswith("Created")]
    assert line.getMessage() == "Created RoleBinding"
    assert fields_of(line) == {
        "resource": "team",
        "namespace": "payments",
        "name": "egb:team:clusterrole:edit",
        "roleRef": "ClusterRole/edit",
        "subjects": f"+Group {G1}",
        "groups": G1,
    }


def fields_of(record: logging.LogRecord) -> dict[str, object]:
    return dict(getattr(record, "entra_rbac_fields", {}))


# --- forged bindings (docs/design.md, Ownership) -----------------------------------------

FORGED = BindingKey.of("RoleBinding", "team-b", "egb:team:clusterrole:view")


def forgery(key: BindingKey = FORGED, subjects: int = 20) -> dict[str, Any]:
    """What a namespace admin of team-b can write: our labels and a controller reference to the
    victim (its uid is readable by anyone who may view it), any subjects they like."""
    forged = foreign(key, {**MANAGED, OWNER_UID_LABEL: UID}, [{"uid": UID, "controller": True}])
    forged["subjects"] = [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"u{n}"} for n in range(subjects)
    ]
    return forged


async def test_a_forged_binding_never_holds_a_revocation_and_is_deleted_as_cleanup() -> None:
    world = await settled_world(user_spec(), g1=("alice", "bob"))
    summary = world.status["summary"]
    world.kube.put_binding(forgery())
    world.directory.members[G1] = world.directory.members[G1][:1]  # bob leaves
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("Reconciled", None)
    assert world.subjects(VIEW) == ["alice@contoso.com"]  # bob lost access at once
    assert FORGED not in world.kube.bindings
    assert world.status.get("revocationHold") is None
    assert world.status["summary"] == {**summary, "subjects": 1}
    # One audit Event for the reconcile: bob's removal and the stray's deletion.
    audit = world.kube.events[-1]
    assert audit["reason"] == "Revoked"
    assert "updated ClusterRoleBinding egb:team:clusterrole:view" in audit["message"]
    assert "deleted RoleBinding team-b/egb:team:clusterrole:view" in audit["message"]


async def test_a_forged_binding_changes_no_status_and_no_guard_figure() -> None:
    world = await settled_world(g1=("alice",))
    status_writes, done = world.kube.status_writes, len(world.kube.writes)
    world.kube.put_binding(forgery())
    assert (await world.reconcile()).reason == "Reconciled"
    assert world.kube.writes[done:] == [("delete", FORGED, True)]
    assert world.kube.status_writes == status_writes
    # During a hold nothing is deleted, strays included, and the hold's figures are the
    # resource's own: six subjects, five to go (not 26 and 25).
    held = await held_world()
    held.kube.put_binding(forgery())
    assert (await held.reconcile()).reason == "RevocationHeld"
    assert FORGED in held.kube.bindings
    hold = held.status["revocationHold"]
    assert (hold["removed"], hold["current"]) == (5, 6)


async def test_subjects_added_at_one_target_are_healed_and_never_hold_a_revocation() -> None:
    """A namespace admin of billing rewrites the resource's binding there in place (its marks
    intact: the operator's, as far as anyone can tell) with twenty invented subjects while bob
    leaves: it is patched back, and bob loses access in payments at once (docs/design.md, Ownership)."""
    spec = {
        "groups": [{"id": G1}],
        "subjects": {"kind": "User"},
        "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments", "billing"]}],
    }
    world = await settled_world(spec, g1=("alice", "bob"))
    edited = copy.deepcopy(world.kube.bindings[BILLING_EDIT])
    edited["subjects"] = [*edited["subjects"], *forgery(subjects=20)["subjects"]]  # as read back
    world.kube.put_binding(edited)
    world.directory.members[G1] = world.directory.members[G1][:1]  # bob leaves
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("Reconciled", None)
    assert world.subjects(PAYMENTS_EDIT) == world.subjects(BILLING_EDIT) == ["alice@contoso.com"]
    assert world.status.get("revocationHold") is None


async def test_a_failed_cleanup_is_retried_without_touching_status() -> None:
    world = await settled_world(g1=("alice",))
    status_writes = world.kube.status_writes
    world.kube.put_binding(forgery())
    world.kube.fail_next(
        "delete", FORGED, errors.UnavailableError("503", status=503, reason="ServiceUnavailable")
    )
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("Reconciled", RETRY)
    assert world.kube.status_writes == status_writes
    assert (await world.reconcile()).settled
    assert FORGED not in world.kube.bindings


async def test_a_burst_builds_and_applies_bindings_a_bounded_number_at_a_time() -> None:
    """Issue 17 point 6: a reconcile past its directory read waits for a turn (`converging`) before
    it builds, writes or reports anything; its directory read is not held back (lookups coalesce)."""
    world = World()
    world.kube.namespaces = [NamespaceInfo("payments"), NamespaceInfo("billing")]
    world.directory.add_group(G1)
    world.apply(group_spec())
    world.ctx.converging = asyncio.Semaphore(1)
    await world.ctx.converging.acquire()  # another reconcile holds the one turn
    waiting = asyncio.create_task(world.reconcile())
    for _ in range(50):
        await asyncio.sleep(0)
    assert not waiting.done()
    assert world.directory.lookups == 1  # read while it waits
    assert (world.kube.writes, world.kube.status_writes) == ([], 0)
    world.ctx.converging.release()
    outcome = await asyncio.wait_for(waiting, timeout=10)
    assert outcome.settled, outcome
    assert world.kube.owned_keys() == [VIEW]


# A forgery's subjects never reach status or the guard's figures, wherever it stands outside
# the resource's targets (the brief of stop 29, point 1): held, and with Entra unreadable.
NAMESPACED_USERS = {
    "groups": [{"id": G1}],
    "subjects": {"kind": "User"},
    "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
}
FORGED_AT = {
    # The resource's own name, in a namespace it does not target.
    "other-namespace": BindingKey.of("RoleBinding", "billing", "egb:team:clusterrole:edit"),
    # A target namespace, at the name of a role the resource does not grant there.
    "other-role": BindingKey.of("RoleBinding", "payments", "egb:team:clusterrole:view"),
    # A target place, at a shard name the operator never wrote (it holds one binding there).
    "unwritten-shard": BindingKey.of("RoleBinding", "payments", "egb:team:clusterrole.7:edit"),
}


def forged_edit(key: BindingKey, subjects: int = 20) -> dict[str, Any]:
    """A forgery of the resource's marks granting edit (the role its bindings grant) to others."""
    forged = forgery(key, subjects)
    forged["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}
    return forged


async def namespaced_world_held() -> World:
    world = await settled_world(NAMESPACED_USERS, g1=TEAM)
    world.directory.members[G1] = world.directory.members[G1][:1]  # five of six leave at once
    assert (await world.reconcile()).reason == "RevocationHeld"
    return world


@pytest.mark.parametrize("where", sorted(FORGED_AT))
async def test_a_forgery_outside_the_targets_counts_in_no_status_figure_and_no_hold(where: str) -> None:
    key = FORGED_AT[where]
    honest = await namespaced_world_held()
    held = await namespaced_world_held()
    held.kube.put_binding(forged_edit(key))
    assert (await held.reconcile()).reason == "RevocationHeld"
    assert key in held.kube.bindings  # nothing is deleted during a hold, strays included
    for field in ("summary", "bindings", "revocationHold"):
        assert held.status[field] == honest.status[field], field
    assert (held.status["revocationHold"]["removed"], held.status["revocationHold"]["current"]) == (5, 6)
    assert held.status["bindings"] == [
        {
            "kind": "RoleBinding",
            "name": PAYMENTS_EDIT.name,
            "namespace": "payments",
            "roleRef": "ClusterRole/edit",
            "subjects": 6,
        }
    ]
    # Entra unreadable (fail-static): the bindings are kept, and status still counts only its own.
    held.directory.failure = DirectoryUnavailableError("Graph 503")
    honest.directory.failure = DirectoryUnavailableError("Graph 503")
    await held.reconcile()
    await honest.reconcile()
    assert held.status["summary"] == honest.status["summary"]
    assert held.status["bindings"] == honest.status["bindings"]


# A forged shard at a target place (the brief of stop 30, point 1): shard 7 of a resource the
# operator wrote as one binding is no binding of the resource's, before and after a restart.
UNWRITTEN_SHARD = FORGED_AT["unwritten-shard"]


@pytest.mark.parametrize("restart", [False, True])
async def test_a_forged_shard_at_a_target_place_causes_no_hold_and_is_deleted(restart: bool) -> None:
    """One member of six leaves (no mass revocation). Counted, the forged shard's twenty subjects
    would be granted at every place (the resource has one) and removed by the plan: 21 of 26, a
    hold delaying the one real revocation. It is a stray: the member goes at once, the forgery
    is deleted as cleanup, and status counts five subjects."""
    world = await settled_world(NAMESPACED_USERS, g1=TEAM)
    if restart:
        world.ctx = world.new_context()  # memory lost: status says what the operator wrote
    world.kube.put_binding(forged_edit(UNWRITTEN_SHARD))
    world.directory.members[G1] = world.directory.members[G1][1:]  # alice leaves
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.requeue_after) == ("Reconciled", None)
    assert world.status.get("revocationHold") is None
    assert UNWRITTEN_SHARD not in world.kube.bindings
    assert world.subjects(PAYMENTS_EDIT) == [f"{m}@contoso.com" for m in TEAM[1:]]
    assert (world.status["summary"]["bindings"], world.status["summary"]["subjects"]) == (1, 5)


# An invalid spec's status (the brief of stop 30, point 2): the targets are unknown, so status
# keeps what the operator last recorded of its own bindings, never what carries its marks now.
INVALID = {"groups": [{"id": "NOT-A-GUID"}], "clusterRoleBindings": [{"clusterRole": "view"}]}


async def test_an_invalid_spec_keeps_the_last_recorded_bindings_and_lists_no_forgery() -> None:
    """The resource's name for a role, in a namespace its spec never granted: a forgery (or a
    leftover) that an invalid spec cannot tell from its own; status lists the bindings and counts
    as the last valid reconcile recorded them, and nothing is written or deleted."""
    world = await settled_world(NAMESPACED_USERS, g1=TEAM)
    recorded = world.status
    world.kube.put_binding(forged_edit(FORGED_AT["other-namespace"]))
    world.kube.put_binding(forged_edit(UNWRITTEN_SHARD))
    world.apply(INVALID)
    done = len(world.kube.writes)
    assert (await world.reconcile()).reason == "InvalidSpec"
    assert world.kube.writes[done:] == []
    assert world.condition()["reason"] == "InvalidSpec"
    for field in ("bindings", "summary", "groups"):
        assert world.status[field] == recorded[field], field
    registry = world.ctx.metrics.registry
    assert [
        registry.get_sample_value("entra_rbac_managed_bindings", {"kind": kind})
        for kind in ("ClusterRoleBinding", "RoleBinding")
    ] == [0, 1]


async def test_a_spec_never_valid_lists_no_binding_whatever_carries_its_marks() -> None:
    world = World()
    world.kube.put_binding(forged_edit(FORGED_AT["other-namespace"]))
    world.kube.put_binding(forged_edit(BindingKey.of("ClusterRoleBinding", "", "egb:team:clusterrole:view")))
    world.apply(INVALID)
    assert (await world.reconcile()).reason == "InvalidSpec"
    assert world.status["bindings"] == []
    assert (world.status["summary"]["bindings"], world.status["summary"]["subjects"]) == (0, 0)
