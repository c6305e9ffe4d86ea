"""Graph requests per full refresh against the floor (issue 17 point 4; `make bench` only).

1,000 resources over the sandbox Entra directory (msgraph-sdk over HTTPS), each naming one group
by id (250 distinct) and one by display name (250 distinct), every 20th in user mode over
groups of 1,000 members. The real `Refresher` schedules them on its own clock (a 5-minute
interval) and each refresh runs the reconcile's directory phase (`read_directory`, through the
one shared cache) at the refresher's concurrency. Printed for a cold refresh (names not yet
pinned) and a steady one (pinned, so names are verified by id), with and without the prefetch,
against the floor ceil(ids/1000) + ceil(names/20) + member pages, and the target 1.1 x floor.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import entra_rbac.reconciler as reconciler_package
import entra_rbac.triggers.refresher as refresher_module
from bench.entra import directory_config, directory_serving
from bench.table import Table
from entra_rbac.adapters.directory import CountingMetrics, EntraDirectory
from entra_rbac.core.models import GroupRef, GroupState, SubjectKind
from entra_rbac.reconciler import Outcome
from entra_rbac.reconciler.resolve import read_directory
from entra_rbac.settings import Freshness
from entra_rbac.triggers import Refresher, ResourceEntry
from entra_rbac_sandbox.entra.server import EntraSandboxThread

pytestmark = pytest.mark.bench
RESOURCES, IDS, NAMES, MEMBERS, PAGE = 1000, 250, 250, 1000, 999


def _id(kind: str, n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{kind}-{n}"))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[EntraSandboxThread]:
    users = [{"id": _id("user", n), "userPrincipalName": f"user{n}@contoso.com"} for n in range(MEMBERS)]
    members = [u["id"] for u in users]
    groups = [
        {"id": _id("g", n), "displayName": f"Group {n:04d}", "members": members} for n in range(IDS + NAMES)
    ]
    with directory_serving(tmp_path, {"users": users, "groups": groups}) as server:
        yield server


def _bodies() -> list[dict[str, Any]]:
    bodies = []
    for n in range(RESOURCES):
        spec: dict[str, Any] = {
            "groups": [{"id": _id("g", n % IDS)}, {"displayName": f"Group {IDS + (n * 7) % NAMES:04d}"}],
            "clusterRoleBindings": [{"clusterRole": "view"}],
        }
        if n % 20 == 0:
            spec["subjects"] = {"kind": "User"}
        bodies.append({"metadata": {"name": f"r{n}", "uid": f"uid-{n}"}, "spec": spec, "status": {}})
    return bodies


def _floor(bodies: list[dict[str, Any]]) -> int:
    ids, names, member_groups = set(), set(), set()
    pinned = {ref for b in bodies for ref in (g["ref"] for g in b["status"].get("groups", []))}
    for body in bodies:
        for group in body["spec"]["groups"]:
            ref = GroupRef.model_validate(group)
            gid = ref.id or next(
                (g["id"] for g in body["status"].get("groups", []) if g["ref"] == ref.key), None
            )
            if gid:
                ids.add(gid)
            elif ref.key not in pinned:
                names.add(ref.key)
            if body["spec"].get("subjects"):
                member_groups.add(gid or ref.key)
    return (
        math.ceil(len(ids) / 1000)
        + math.ceil(len(names) / 20)
        + len(member_groups) * math.ceil(MEMBERS / PAGE)
    )


async def _full_refresh(
    directory: EntraDirectory,
    bodies: list[dict[str, Any]],
    *,
    prefetch: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tick the real refresher through one interval; each refresh runs the directory phase and
    pins what it resolved in the body's status (as the reconcile's status write would)."""
    by_uid = {b["metadata"]["uid"]: b for b in bodies}

    async def reconcile(entry: ResourceEntry, _ctx: Any) -> Outcome:
        body = by_uid[entry.uid]
        spec = body["spec"]
        groups = [GroupRef.model_validate(g) for g in spec["groups"]]
        mode = SubjectKind.USER if spec.get("subjects") else SubjectKind.GROUP
        read = await read_directory(directory, groups, body["status"], mode)
        assert read.error is None
        assert read.resolutions is not None
        assert all(r.state is GroupState.RESOLVED and r.group for r in read.resolutions)
        body["status"] = {
            "groups": [{"ref": r.lookup.ref.key, "id": r.group.id} for r in read.resolutions if r.group]
        }
        return Outcome("Reconciled")

    async def no_prefetch(*_: Any) -> None:
        return None

    monkeypatch.setattr(refresher_module, "reconcile_entry", reconcile)
    if not prefetch:
        monkeypatch.setattr(reconciler_package, "prefetch_directory", no_prefetch)
    freshness = Freshness.of(300)
    ctx = type("Ctx", (), {"directory": directory, "clock": staticmethod(lambda: datetime.now(UTC))})()
    refresher = Refresher(kube=None, ctx=ctx, freshness=freshness)  # type: ignore[arg-type]
    refreshed: set[str] = set()
    now = 0.0
    while len(refreshed) < len(bodies):
        refresher._schedule(bodies, now)
        refreshed |= set(refresher._running)
        await asyncio.gather(*refresher._running.values())
        now += freshness.tick
    monkeypatch.undo()


@pytest.mark.parametrize("prefetch", [False, True], ids=["without-prefetch", "with-prefetch"])
async def test_bench_graph_requests_per_full_refresh(
    sandbox: EntraSandboxThread, prefetch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = _bodies()
    mode = "with prefetch" if prefetch else "without prefetch (before)"
    table = Table("bench graph per full refresh", f"{RESOURCES} resources, {mode}")
    for label in ("cold (names unpinned)", "steady (names pinned)"):
        floor = _floor(bodies)
        metrics = CountingMetrics()
        async with EntraDirectory(directory_config(sandbox), metrics=metrics) as directory:
            await _full_refresh(directory, bodies, prefetch=prefetch, monkeypatch=monkeypatch)
        sent = metrics.total_requests()
        by_kind = {op: metrics.total_requests(op) for op in ("getByIds", "batch", "transitiveMembers")}
        table.add(
            f"{label}: Graph requests {by_kind}",
            f"{sent} ({sent / floor:.2f}x floor)",
            target=f"<= {1.1 * floor:.1f}",
            baseline=f"floor {floor}",
            ok=sent <= 1.1 * floor,
        )
    table.print()
