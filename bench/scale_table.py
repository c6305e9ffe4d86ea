"""The convergence benchmark's figures (bench/test_bench_scale.py): one run's `Run`, the
benchmark's shape (`BENCH_SCALE`, `BENCH_REFRESH_INTERVAL`) and the table each server prints,
against issue 17 point 2's targets, the minimal kopf operator and the plain client's floor."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bench.plain import BENCH_PROCESS
from bench.proc import MB_PER_MIB
from bench.table import Table

SCALE = int(os.environ.get("BENCH_SCALE", "1000"))  # resources
NAMESPACES = 20
BINDINGS = SCALE * NAMESPACES
# Seconds: the operator's refresh interval, one run per value (the first is the table's main run);
# the idle window is two of them, run only up to IDLE_MAX_INTERVAL.
INTERVALS = tuple(float(v) for v in os.environ.get("BENCH_REFRESH_INTERVAL", "30").split(","))
REFRESH = INTERVALS[0]
IDLE_MAX_INTERVAL = 60.0
CACHE_SHARE = 0.2  # the cache's lifetime, a fifth of the interval (settings.CACHE_SHARE_OF_INTERVAL)
TARGET_RATIO, TARGET_REAL_SECONDS, TARGET_PER_BINDING = 1.3, 60.0, 1.2
SERVER_IDLE = "server idle: "  # the idle window's keys of each server process's CPU, % of a core


@dataclass
class Run:
    converged: float
    median_ready: float  # the median resource's Ready time, as a fraction of `converged`
    bindings: int
    requests: int
    graph: int
    graph_by_ids: int
    graph_batches: int
    graph_delta: int  # delta rounds' requests (not lookups)
    cpu: float
    rss: float
    peak_rss: float
    late_writes: int  # writes after every resource was Ready, until they stopped
    settle: float  # seconds from all Ready until the writes stopped
    idle: dict[str, float] | None = None
    # CPU-seconds while converging of each server process (bench/plain.py, server_cpu).
    server_cpu: dict[str, float] = field(default_factory=dict)
    # Where the resident memory is once the writes stopped (bench/proc.py, resident_by_allocator).
    allocators: dict[str, float] = field(default_factory=dict)


def _where(run: Run) -> str:
    return ", ".join(f"{name} {mib:.0f}" for name, mib in run.allocators.items())


Runs = Mapping[tuple[str, str, float], Run]  # (server, operator, refresh interval) -> its run


def scale_table(server: str, runs: Runs, why: Callable[..., str]) -> Table:
    """The server's figures; a run without figures says why (bench/table.py, not_run)."""
    minimal, ours = runs.get((server, "minimal", REFRESH)), runs.get((server, "operator", REFRESH))
    table = Table(
        f"bench scale {server}",
        f"{SCALE} resources x {NAMESPACES} namespaces = {BINDINGS} RoleBindings, group mode, "
        f"half by id, half by displayName, refresh interval {REFRESH:.0f} s; baseline: the minimal "
        f"kopf operator, same run",
    )
    base = f"minimal {minimal.converged:.1f} s" if minimal else f"minimal {why('minimal')}"
    plain = runs.get((server, "plain", REFRESH))
    if ours is None:
        table.add("converged", why("operator"), baseline=base)
        _floor_rows(table, ours, minimal, plain, why)
        return table
    target = f"<= {TARGET_REAL_SECONDS:.0f} s" if server == "real" else "(real only)"
    table.add(
        "converged",
        f"{ours.converged:.1f} s",
        target=target,
        baseline=base,
        ok=ours.converged <= TARGET_REAL_SECONDS if server == "real" and SCALE == 1000 else None,
    )
    if minimal:
        ratio = ours.converged / minimal.converged
        table.add("ratio to minimal", f"{ratio:.2f}x", target=f"<= {TARGET_RATIO}x", baseline="1.00x",
                  ok=ratio <= TARGET_RATIO)  # fmt: skip
    table.add("bindings per second", f"{ours.bindings / ours.converged:.0f}",
              baseline=f"{minimal.bindings / minimal.converged:.0f}" if minimal else "")  # fmt: skip
    table.add("median Ready / total time", f"{ours.median_ready:.2f}",
              baseline=f"{minimal.median_ready:.2f}" if minimal else "")  # fmt: skip
    per_binding = ours.requests / max(ours.bindings, 1)
    table.add("API requests per binding", f"{per_binding:.2f} ({ours.requests})",
              target=f"<= {TARGET_PER_BINDING}", ok=per_binding <= TARGET_PER_BINDING,
              baseline=f"{minimal.requests / max(minimal.bindings, 1):.2f}" if minimal else "")  # fmt: skip
    floor = math.ceil(math.ceil(SCALE / 2) / 1000) + math.ceil((SCALE // 2) / 20)
    for interval in INTERVALS:
        run = ours if interval == REFRESH else runs.get((server, "operator", interval))
        _graph_rows(table, run, interval, floor, why("operator", interval))
    table.add("writes after all Ready", f"{ours.late_writes} (stopped {ours.settle:.1f} s later)",
              baseline=f"{minimal.late_writes}" if minimal else "")  # fmt: skip
    table.add("CPU while converging", f"{ours.cpu:.1f} s",
              baseline=f"{minimal.cpu:.1f} s" if minimal else "")  # fmt: skip
    _floor_rows(table, ours, minimal, plain, why)
    memory_target = {1000: 200.0, 50: 120.0}.get(SCALE)
    # The targets are MB (10^6 bytes), /proc's figures KiB: compared in one unit.
    target_mib = f" = {memory_target / MB_PER_MIB:.1f} MiB" if memory_target else ""
    table.add("resident memory (peak)",
              f"{ours.rss:.1f} MiB = {ours.rss * MB_PER_MIB:.1f} MB (peak {ours.peak_rss:.0f} MiB)",
              target=f"<= {memory_target:.0f} MB{target_mib}" if memory_target else "",
              ok=ours.rss * MB_PER_MIB <= memory_target if memory_target else None,
              baseline=f"{minimal.rss:.0f} MiB" if minimal else "")  # fmt: skip
    if ours.allocators:
        table.add("resident: where (MiB)", _where(ours), baseline=_where(minimal) if minimal else "")
    if ours.idle is None:
        table.add(
            "idle (2 refreshes)", f"not run: 2 x {REFRESH:.0f} s (run only at <= {IDLE_MAX_INTERVAL:.0f} s)"
        )
    if ours.idle:
        idle = ours.idle
        table.add("idle writes (2 refreshes)", f"{idle['writes']:.0f}", target="0", ok=idle["writes"] == 0)
        table.add("idle API reads per refresh", f"{idle['reads per refresh']:.0f}",
                  target="0 (real)" if server == "real" else "",
                  ok=idle["reads per refresh"] == 0 if server == "real" else None)  # fmt: skip
        # Every group's id is known by then (names pinned): a refresh's floor is its getByIds, of
        # the resources' groups and the warm-up's (1,001 at full size: two getByIds).
        refresh_floor = math.ceil((SCALE + 1) / 1000)
        table.add(f"idle Graph lookups per refresh (most of {idle['refreshes']:.0f})",
                  f"{idle['graph per refresh']:.0f}",
                  target=f"<= {1.1 * refresh_floor:.1f}", baseline=f"floor {refresh_floor}",
                  ok=0 < idle["graph per refresh"] <= 1.1 * refresh_floor)  # fmt: skip
        table.add("idle Graph delta rounds per refresh", f"{idle['delta per refresh']:.0f}")
        table.add("idle CPU", f"{idle['cpu percent']:.1f}% of a core", target="< 5%",
                  ok=idle["cpu percent"] < 5)  # fmt: skip
        servers = [(k.removeprefix(SERVER_IDLE), v) for k, v in idle.items() if k.startswith(SERVER_IDLE)]
        table.add("idle server CPU (% of a core)", ", ".join(f"{name} {v:.1f}" for name, v in servers))
    return table


def _cpu_split(run: Run | None, why: str) -> str:
    if run is None:
        return why
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in run.server_cpu.items())


def _per_thousand(run: Run | None) -> str:
    """The API server's CPU-seconds per 1,000 of the run's requests (on the sandbox the benchmark's
    process: server and client)."""
    if run is None or not run.requests:
        return "-"
    server = run.server_cpu.get("kube-apiserver", run.server_cpu.get(BENCH_PROCESS, float("nan")))
    return f"{1000 * server / run.requests:.2f}"


def _floor_rows(table: Table, ours: Run | None, minimal: Run | None, plain: Run | None,
                why: Callable[..., str]) -> None:  # fmt: skip
    """The floor under the convergence: each server process's CPU while converging, per 1,000
    requests, and a plain client writing the same bindings (bench/plain.py)."""
    table.add("server CPU while converging (s)", _cpu_split(ours, why("operator")),
              baseline=f"minimal: {_cpu_split(minimal, why('minimal'))}")  # fmt: skip
    table.add("API server CPU-s per 1,000 requests", _per_thousand(ours),
              baseline=f"minimal {_per_thousand(minimal)}, plain {_per_thousand(plain)}")  # fmt: skip
    if plain is None:
        table.add("plain client, the same bindings", why("plain"))
        return
    table.add("plain client, the same bindings",
              f"{plain.converged:.1f} s ({plain.bindings} bindings, {plain.requests} requests)",
              baseline=f"server CPU: {_cpu_split(plain, '')}; client {plain.cpu:.1f} s")  # fmt: skip


def _graph_rows(table: Table, run: Run | None, interval: float, floor: int, why: str) -> None:
    """The convergence's Graph rows at one refresh interval, against the issue's floor (each
    distinct group once) and, for the record, the floor the cache's lifetime sets over this
    convergence (an id answer lives a fifth of the interval, so ids cost one getByIds per
    lifetime while reconciles keep asking: docs/design.md, Directory semantics)."""
    # The main interval's rows keep their names (the subtitle says which interval it is).
    label = "" if interval == REFRESH else f" at {interval:.0f} s refresh"
    if run is None:
        table.add(f"Graph lookups while converging{label}", why)
        return
    lifetime = CACHE_SHARE * interval
    ids = math.ceil(math.ceil(SCALE / 2) / 1000)
    lifetime_floor = ids * math.ceil(run.converged / lifetime) + (floor - ids)
    table.add(f"Graph lookups while converging{label}",
              f"{run.graph} ({run.graph_by_ids} getByIds, {run.graph_batches} $batch)",
              target=f"<= {1.1 * floor:.0f}",
              baseline=f"floor {floor}; {lifetime_floor} at {lifetime:.0f} s answers, {run.converged:.0f} s",
              ok=run.graph <= 1.1 * floor)  # fmt: skip
    if interval != REFRESH:
        table.add(f"converged{label}", f"{run.converged:.1f} s")
    table.add(f"Graph delta requests while converging{label}", str(run.graph_delta))
