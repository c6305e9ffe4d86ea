"""Benchmark (make bench): user mode at scale against group mode (issue 17 point 7).

Two shapes, each run in user mode and, as its baseline, in group mode over the same groups and
the same number of bindings, each on a fresh sandbox with a fresh operator process:
- (a) `big`: one resource over one group of 50,000 transitive members (BENCH_USER_MEMBERS; two
  nested groups of half each), bound in one namespace: 50,000 User subjects, over the 1 MiB of
  JSON one binding holds (about 12,000 of these subjects), so written as shards of one RoleBinding
  (docs/design.md, Subjects the operator emits); a BindingTooLarge (over ENTRA_RBAC_MAX_SHARDS
  shards' worth) fails the run at once;
- (b) `many`: 100 resources (BENCH_USER_RESOURCES) x 20 namespaces over 10 groups of 1,000 users
  (resource i binds group i % 10, so every group's members are shared by ten resources and each
  resource's by its 20 bindings): 2,000 RoleBindings of 1,000 subjects each.

Each run: the operator is started and left to settle (its CPU quiet), the resources are created,
and the clock runs until every one is Ready (observedGeneration current); then its writes are
left to stop (bench/settle.py), every binding is checked (count, subjects), and the operator is
restarted over the unchanged resources until it settles again, writing nothing. Printed through
bench/table.py: Ready time and CPU-seconds (user mode's target: within 2x of group mode's),
resident memory at Ready, steady and peak, and after the restart (target <= 300 MiB), the
restart's CPU-seconds. Asserts correctness only (every binding there with every subject, no
write after the restart).

`BENCH_USER_SERVER=real` runs each on a real control plane of its own instead of the sandbox API
server (the directory stays the sandbox's): the sandbox serves 2,000 bindings of 1,000 subjects
in the benchmark's own process, so there its wall time is partly the server's. With each run, the
API server's CPU seconds until Ready (the sandbox's: the benchmark process's).

The floor beside (b) (`test_bench_user_mode_many_floor`): on a fresh server of the same kind, the
same 2,000 RoleBindings, each exactly as the operator writes it, created by a plain client
(bench/plain_writes.py: the official client, 8 and 16 in flight, in a process of its own) signed
in as the operator, in user mode and in group mode: how much of Ready is the server's own cost
of storing the bytes, and how much is the operator's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.e2e.harness import RequestCounts, guid

from bench import plain_writes
from bench.kubeobjects import EGB, egbs, json_object, namespace, raw_items
from bench.proc import cpu_seconds, peak_rss_mib, rss_mib
from bench.settle import NOT_PEERING, WRITES, cpu_settle, wait_quiet
from bench.table import Table, not_run
from bench.teams import BenchServer, bench_server
from entra_rbac_sandbox.launcher import project_root

MEMBERS = int(os.environ.get("BENCH_USER_MEMBERS", "50000"))
RESOURCES = int(os.environ.get("BENCH_USER_RESOURCES", "100"))
SERVER = os.environ.get("BENCH_USER_SERVER", "sandbox")  # or "real"
NAMESPACES = 20
GROUPS, GROUP_SIZE = plain_writes.GROUPS, plain_writes.GROUP_SIZE
IN_FLIGHT = (8, 16)  # the floor's plain client
REFRESH = 300.0  # no refresh inside a run: the figures are the convergence and the restart
READY_DEADLINE = 900.0
TARGET_RATIO, TARGET_RSS = 2.0, 300.0
pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]
SHAPES = {
    "big": f"1 resource over 1 group of {MEMBERS:,} transitive members, 1 namespace",
    "many": f"{RESOURCES} resources x {NAMESPACES} namespaces over {GROUPS} groups of {GROUP_SIZE:,} users",
}


@dataclass
class Run:
    bindings: int
    subjects: int  # in every binding
    ready_s: float
    ready_cpu: float
    rss_ready: float
    rss_steady: float
    peak: float
    restart_s: float
    restart_cpu: float
    restart_rss: float
    restart_peak: float
    restart_writes: int
    server_cpu: float  # the API server's, until Ready


@dataclass
class Floor:
    seconds: float  # the first create to the last answer
    client_cpu: float
    server_cpu: float
    megabytes: float  # the bodies sent


RUNS: dict[tuple[str, str], Run] = {}
FLOORS: dict[tuple[str, int], Floor] = {}  # (mode, in flight)


@pytest.fixture(scope="module", autouse=True)
def table(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for shape in SHAPES:

        def why(mode: str, shape: str = shape) -> str:
            return not_run(request, shape=shape, mode=mode)

        _table(shape, why).print()


def _directory(shape: str) -> dict[str, Any]:
    """(a) a parent group nesting two halves of MEMBERS users; (b) GROUPS groups of GROUP_SIZE."""
    if shape == "big":
        users = [plain_writes.user(n) for n in range(MEMBERS)]
        half = MEMBERS // 2
        groups = [
            {"id": guid(10_001), "displayName": "Big A", "members": [u["id"] for u in users[:half]]},
            {"id": guid(10_002), "displayName": "Big B", "members": [u["id"] for u in users[half:]]},
            {"id": guid(10_000), "displayName": "Big", "members": [guid(10_001), guid(10_002)]},
        ]
    else:
        users = [plain_writes.user(n) for n in range(GROUPS * GROUP_SIZE)]
        groups = [
            {
                "id": guid(10_000 + g),
                "displayName": f"Team {g}",
                "members": [u["id"] for u in users[g * GROUP_SIZE : (g + 1) * GROUP_SIZE]],
            }
            for g in range(GROUPS)
        ]
    return {"users": users, "groups": groups}


def _resources(shape: str, mode: str) -> list[dict[str, Any]]:
    count, namespaces = (1, ["bench-0"]) if shape == "big" else (RESOURCES, _namespaces())
    return [
        {
            "apiVersion": "entra-rbac.io/v1alpha1",
            "kind": "EntraGroupBinding",
            "metadata": {"name": f"r{i}"},
            "spec": {
                "groups": [{"id": guid(10_000 + (0 if shape == "big" else i % GROUPS))}],
                "subjects": {"kind": mode.capitalize()},
                "roleBindings": [{"clusterRole": "edit", "namespaces": namespaces}],
            },
        }
        for i in range(count)
    ]


def _namespaces() -> list[str]:
    return [f"bench-{i}" for i in range(NAMESPACES)]


@contextmanager
def _sandbox(tmp_path: Path, shape: str) -> Iterator[BenchServer]:
    """A fresh sandbox serving the shape's directory (written once, as JSON: YAML's subset, and
    parsed in C), with its namespaces, no operator yet; its Kubernetes API is the sandbox's or,
    with BENCH_USER_SERVER=real, a real control plane's. With it, what counts the writes and the
    server's CPU."""
    directory = tmp_path / "directory.yaml"
    directory.write_text(json.dumps(_directory(shape)), encoding="utf-8")
    env = {"ENTRA_RBAC_REFRESH_INTERVAL": f"{REFRESH:.0f}s", "ENTRA_RBAC_LOG_LEVEL": "warning"}
    with bench_server(tmp_path, directory, env, real=SERVER == "real") as server:
        with server.sandbox.admin_client() as api:
            for name in _namespaces():
                client.CoreV1Api(api).create_namespace(namespace(name))
        yield server


def _ready_count(custom: client.CustomObjectsApi) -> int:
    items = egbs(custom)
    return sum(
        1
        for item in items
        if (item.get("status") or {}).get("observedGeneration") == item["metadata"].get("generation")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (item.get("status") or {}).get("conditions") or []
        )
    )


def _too_large(custom: client.CustomObjectsApi) -> str:
    """The Ready message of a resource stalled with BindingTooLarge, or "" (none is)."""
    for item in egbs(custom):
        for c in (item.get("status") or {}).get("conditions") or []:
            if c["type"] == "Ready" and c.get("reason") == "BindingTooLarge":
                return str(c.get("message", ""))
    return ""


def _bindings(api: client.ApiClient) -> list[dict[str, Any]]:
    """The managed RoleBindings, decoded here rather than by the client's models (2,000 x 1,000)."""
    answer = client.RbacAuthorizationV1Api(api).list_role_binding_for_all_namespaces(
        label_selector="app.kubernetes.io/managed-by=entra-rbac-operator", _preload_content=False
    )
    return raw_items(answer)


def _sharded(bindings: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """The subjects of each (namespace, resource), over all its shards (every binding here has
    one role); a subject held twice (in two shards) fails the run."""
    found: dict[tuple[str, str], set[str]] = {}
    for b in bindings:
        meta = b["metadata"]
        held = found.setdefault((meta["namespace"], meta["annotations"]["entra-rbac.io/owner"]), set())
        names = {s["name"] for s in b.get("subjects") or []}
        assert len(names) == len(b.get("subjects") or []), "a subject held twice in one binding"
        assert not held & names, "a subject held in two shards"
        held |= names
    return found


def _writes(requests: RequestCounts) -> int:
    return sum(requests.count(m, NOT_PEERING) for m in WRITES)


@pytest.mark.parametrize("mode", ["group", "user"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_bench_user_mode(shape: str, mode: str, tmp_path: Path) -> None:
    resources = _resources(shape, mode)
    namespaces = 1 if shape == "big" else NAMESPACES
    expected_subjects = 1 if mode == "group" else (MEMBERS if shape == "big" else GROUP_SIZE)
    with _sandbox(tmp_path, shape) as server, server.sandbox.admin_client() as api:
        sandbox, requests = server.sandbox, server.requests
        custom = client.CustomObjectsApi(api)
        process = sandbox.start_operator()
        cpu_settle(process.pid, time.monotonic())
        cpu0, server_cpu0, started = cpu_seconds(process.pid), server.server_cpu(), time.monotonic()
        for resource in resources:
            custom.create_cluster_custom_object(*EGB, resource)
        deadline = started + READY_DEADLINE
        while _ready_count(custom) < len(resources):
            assert time.monotonic() < deadline, f"not Ready within {READY_DEADLINE:.0f}s"
            assert not (too_large := _too_large(custom)), (
                f"{too_large}: more subjects than ENTRA_RBAC_MAX_SHARDS shards hold "
                "(docs/design.md, Subjects the operator emits)"
            )
            assert process.poll() is None, "the operator exited"
            time.sleep(0.5)  # polling a condition, bounded by the deadline
        ready_s, ready_cpu = time.monotonic() - started, cpu_seconds(process.pid) - cpu0
        server_cpu = server.server_cpu() - server_cpu0
        rss_ready = rss_mib(process.pid)
        wait_quiet(lambda: _writes(requests), quiet=5, timeout=600, what="writes")
        shards = _sharded(_bindings(api))
        assert len(shards) == len(resources) * namespaces
        assert {len(subjects) for subjects in shards.values()} == {expected_subjects}
        del shards
        rss_steady, peak = rss_mib(process.pid), peak_rss_mib(process.pid)

        sandbox.stop_operator()
        requests.reset()
        restarted = time.monotonic()
        process = sandbox.start_operator()
        restart_s, restart_cpu = cpu_settle(process.pid, restarted)
        restart_writes = _writes(requests)
        run = Run(
            len(resources) * namespaces,
            expected_subjects,
            ready_s,
            ready_cpu,
            rss_ready,
            rss_steady,
            peak,
            restart_s,
            restart_cpu,
            rss_mib(process.pid),
            peak_rss_mib(process.pid),
            restart_writes,
            server_cpu,
        )
    RUNS[(shape, mode)] = run
    print(f"\nBENCH user mode {shape} {mode}: {run}")
    assert restart_writes == 0, f"{restart_writes} writes after a restart over unchanged resources"


@pytest.mark.parametrize("in_flight", IN_FLIGHT)
@pytest.mark.parametrize("mode", ["group", "user"])
def test_bench_user_mode_many_floor(mode: str, in_flight: int, tmp_path: Path) -> None:
    """(b)'s 2,000 RoleBindings created by a plain client (bench/plain_writes.py) on a fresh
    server, as the operator signs in, over the resources created (and never reconciled: no
    operator runs); every binding checked as the operator's are."""
    with _sandbox(tmp_path, "many") as server, server.sandbox.admin_client() as api:
        custom = client.CustomObjectsApi(api)
        owners = [json_object(custom.create_cluster_custom_object(*EGB, r)) for r in _resources("many", mode)]
        given = tmp_path / "owners.json"
        given.write_text(json.dumps({"owners": owners, "namespaces": _namespaces()}), encoding="utf-8")
        command = [sys.executable, "-m", "bench.plain_writes", str(server.sandbox.operator_kubeconfig)]
        server_cpu0 = server.server_cpu()
        done = subprocess.run(
            [*command, str(given), mode, str(in_flight)],
            cwd=project_root(),
            capture_output=True,
            text=True,
            timeout=READY_DEADLINE,
            check=False,
        )
        server_cpu = server.server_cpu() - server_cpu0
        assert done.returncode == 0, done.stderr[-3000:]
        shards = _sharded(_bindings(api))
        assert len(shards) == len(owners) * NAMESPACES
        assert {len(subjects) for subjects in shards.values()} == {1 if mode == "group" else GROUP_SIZE}
    figures = json.loads(done.stdout.splitlines()[-1])
    floor = Floor(figures["seconds"], figures["cpu"], server_cpu, figures["bytes"] / 1e6)
    FLOORS[(mode, in_flight)] = floor
    print(f"\nBENCH user mode many floor {mode} {in_flight} in flight: {floor}")


def _table(shape: str, why: Callable[[str], str]) -> Table:
    """The shape's figures; a mode without figures says why (bench/table.py, not_run)."""
    group, user = RUNS.get((shape, "group")), RUNS.get((shape, "user"))
    table = Table(
        f"bench user mode {shape} on {SERVER}", SHAPES[shape] + "; baseline: group mode, same bindings"
    )
    if user is None:
        base = (
            f"group mode {group.ready_s:.1f} s, {group.ready_cpu:.1f} CPU-s"
            if group
            else f"group mode {why('group')}"
        )
        table.add("user mode", why("user"), baseline=base)
        return table
    shape_base = f"{group.bindings:,} x {group.subjects}" if group else f"group mode {why('group')}"
    table.add("bindings x subjects", f"{user.bindings:,} x {user.subjects:,}", baseline=shape_base)
    ratio = user.ready_s / group.ready_s if group else None
    table.add("Ready", f"{user.ready_s:.1f} s", target="<= 2x group mode",
              baseline=f"{group.ready_s:.1f} s ({ratio:.2f}x)" if group and ratio else "",
              ok=ratio <= TARGET_RATIO if ratio else None)  # fmt: skip
    cpu_ratio = user.ready_cpu / group.ready_cpu if group else None
    table.add("CPU until Ready", f"{user.ready_cpu:.1f} s", target="<= 2x group mode",
              baseline=f"{group.ready_cpu:.1f} s ({cpu_ratio:.2f}x)" if group and cpu_ratio else "",
              ok=cpu_ratio <= TARGET_RATIO if cpu_ratio else None)  # fmt: skip
    table.add("resident at Ready", f"{user.rss_ready:.0f} MiB", target=f"<= {TARGET_RSS:.0f} MiB",
              baseline=f"{group.rss_ready:.0f} MiB" if group else "",
              ok=user.rss_ready <= TARGET_RSS)  # fmt: skip
    table.add("resident steady (peak)", f"{user.rss_steady:.0f} MiB ({user.peak:.0f})",
              target=f"<= {TARGET_RSS:.0f} MiB", ok=max(user.rss_steady, user.peak) <= TARGET_RSS,
              baseline=f"{group.rss_steady:.0f} MiB ({group.peak:.0f})" if group else "")  # fmt: skip
    table.add("restart: seconds, CPU-seconds to settle", f"{user.restart_s:.1f} s, {user.restart_cpu:.1f} s",
              baseline=f"{group.restart_s:.1f} s, {group.restart_cpu:.1f} s" if group else "")  # fmt: skip
    restart_top = max(user.restart_rss, user.restart_peak)
    restart_base = f"{group.restart_rss:.0f} MiB ({group.restart_peak:.0f})" if group else ""
    table.add("restart: resident (peak)", f"{user.restart_rss:.0f} MiB ({user.restart_peak:.0f})",
              target=f"<= {TARGET_RSS:.0f} MiB", ok=restart_top <= TARGET_RSS,
              baseline=restart_base)  # fmt: skip
    table.add("restart: writes", str(user.restart_writes), target="0", ok=user.restart_writes == 0)
    table.add("server CPU until Ready", f"{user.server_cpu:.1f} s",
              baseline=f"{group.server_cpu:.1f} s" if group else "")  # fmt: skip
    if shape == "many":
        _floor_rows(table, user, group)
    return table


def _floor_rows(table: Table, user: Run, group: Run | None) -> None:
    """The plain client's creates of the same bindings (user mode; group mode as the baseline),
    and Ready over the floor at 8 in flight (the operator's writers: reconciler.context.WRITERS)."""
    for in_flight in IN_FLIGHT:
        u, g = FLOORS.get(("user", in_flight)), FLOORS.get(("group", in_flight))
        if u is None:
            continue
        base = (
            f"group {g.seconds:.1f} s ({u.seconds / g.seconds:.2f}x), server {g.server_cpu:.1f} CPU-s"
            if g
            else ""
        )
        value = f"{u.seconds:.1f} s, server {u.server_cpu:.1f} CPU-s, client {u.client_cpu:.1f}"
        value += f", {u.megabytes:.0f} MB"
        table.add(f"floor: plain client, {in_flight} in flight", value, baseline=base)
    u, g = FLOORS.get(("user", IN_FLIGHT[0])), FLOORS.get(("group", IN_FLIGHT[0]))
    if u is not None:
        base = f"group {group.ready_s / g.seconds:.2f}x" if group and g else ""
        table.add(
            f"Ready / floor at {IN_FLIGHT[0]} in flight", f"{user.ready_s / u.seconds:.2f}x", baseline=base
        )
