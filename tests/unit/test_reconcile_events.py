"""The reconciler's Events against the in-memory fakes: one audit Event per change, a Warning per
problem, and repeats counted up on the Event posted instead of new ones (docs/design.md, Events)."""

from __future__ import annotations

from typing import Any

from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.errors import DirectoryUnavailableError
from entra_rbac.reconciler import Policy
from tests.unit.reconcile_fakes import World, guid

G1, G2 = guid(1), guid(2)
INTERVAL = 60.0


def spec(*namespaces: str, **extra: Any) -> dict[str, Any]:
    return {
        "groups": [{"id": G1}],
        "roleBindings": [{"clusterRole": "edit", "namespaces": list(namespaces)}],
        **extra,
    }


async def world_with(*namespaces: str) -> World:
    world = World(policy=Policy(event_series_interval=INTERVAL))
    world.kube.namespaces = [NamespaceInfo(f"team-{i}") for i in range(20)]
    world.kube.cluster_roles = {"edit", "view"}
    world.directory.add_group(G1)
    world.apply(spec(*namespaces))
    await world.reconcile()
    return world


def kinds(world: World) -> list[tuple[str, str]]:
    return [(e["type"], e["reason"]) for e in world.kube.events]


async def test_twenty_bindings_written_make_one_audit_event() -> None:
    world = await world_with(*(f"team-{i}" for i in range(20)))
    assert len(world.kube.bindings) == 20
    assert kinds(world) == [("Normal", "Granted")]
    assert world.kube.events[0]["message"].startswith("Granted access: created 20 bindings (+1 subject).")
    # Nothing changed: no Event at all.
    world.clock.advance(300)
    await world.reconcile()
    assert len(world.kube.events) == 1


async def test_a_removal_is_one_revoked_event() -> None:
    world = await world_with("team-0", "team-1")
    world.apply(spec("team-0"))
    await world.reconcile()
    assert kinds(world)[-1] == ("Normal", "Revoked")
    assert "deleted RoleBinding team-1/egb:team:clusterrole:edit" in world.kube.events[-1]["message"]


async def test_a_stalled_problem_is_one_warning_counted_up_at_most_once_per_interval() -> None:
    world = await world_with("team-0", "absent")
    assert kinds(world) == [("Normal", "Granted"), ("Warning", "NamespaceNotFound")]
    warning = world.kube.events[1]
    for _ in range(5):  # five repeats within the interval: counted in memory only
        world.clock.advance(5)
        await world.reconcile()
    assert len(world.kube.events) == 2
    assert world.kube.event_patches == []
    world.clock.advance(INTERVAL)
    await world.reconcile()
    assert len(world.kube.events) == 2
    assert world.kube.event_patches == [
        (warning["metadata"]["name"], {"count": 7, "lastTimestamp": warning_time(world)})
    ]
    assert warning["count"] == 7


def warning_time(world: World) -> str:
    return world.clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_problem_that_clears_and_returns_is_a_new_warning() -> None:
    world = await world_with("team-0", "absent")
    world.apply(spec("team-0"))
    await world.reconcile()
    world.apply(spec("team-0", "absent"))
    await world.reconcile()
    assert [r for t, r in kinds(world) if t == "Warning"] == ["NamespaceNotFound", "NamespaceNotFound"]


async def test_a_directory_outage_is_one_warning_and_does_not_end_other_series() -> None:
    world = await world_with("team-0", "absent")
    world.directory.failure = DirectoryUnavailableError("Graph answered 503")
    for _ in range(3):
        world.clock.advance(5)
        await world.reconcile()
    world.directory.failure = DirectoryUnavailableError("timed out")
    world.clock.advance(5)
    await world.reconcile()
    world.directory.failure = None
    world.clock.advance(5)
    await world.reconcile()
    # One DirectoryUnavailable whatever the error text; NamespaceNotFound was not posted again.
    assert kinds(world) == [
        ("Normal", "Granted"),
        ("Warning", "NamespaceNotFound"),
        ("Warning", "DirectoryUnavailable"),
    ]


async def test_an_expired_warning_is_posted_again() -> None:
    world = await world_with("absent")
    world.kube.events.clear()  # the API server's event TTL (an hour by default) took it
    world.clock.advance(INTERVAL)
    await world.reconcile()
    assert kinds(world) == [("Warning", "NamespaceNotFound")]


async def test_a_failed_event_post_is_not_fatal() -> None:
    world = World(policy=Policy(event_series_interval=INTERVAL))
    world.kube.namespaces = [NamespaceInfo("team-0")]
    world.kube.cluster_roles = {"edit"}
    world.directory.add_group(G1)
    world.apply(spec("team-0"))
    original = world.kube.create_event

    async def refuse(*args: Any, **kwargs: Any) -> str:
        from entra_rbac.adapters.kube import errors

        raise errors.ForbiddenError("events is forbidden", status=403, reason=errors.FORBIDDEN)

    world.kube.create_event = refuse  # type: ignore[method-assign]
    outcome = await world.reconcile()
    assert outcome.settled
    assert len(world.kube.bindings) == 1
    world.kube.create_event = original  # type: ignore[method-assign]
