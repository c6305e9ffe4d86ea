"""Benchmark (make bench): convergence at 1,000 resources x 20 namespaces, against a minimal kopf operator.

Issue 17 point 2: 20,000 RoleBindings (group mode, one group per resource, half named by id and
half by displayName) converge within 60 s on the real control plane and within 1.3x the time of
the minimal kopf operator (bench/minimal_operator.py) on the same kind of server in the same run.
Each (server, operator) pair runs on a fresh server (a sandbox API server, or a real control
plane of its own: etcd, kube-apiserver, kube-controller-manager), both operators signed in as the
operator's least-privileged ServiceAccount, so they start from the same state:

1. the 20 namespaces are made and the operator process started; a warm-up resource proves it
   works, and the clock starts only once its writes have stopped (bench/settle.py);
2. the resources are created, 16 in flight, while a watch records when each first shows Ready;
3. converged = every resource Ready (its observedGeneration current); then the RoleBindings are
   counted (every one must be there), and the writes after that are counted until they stop;
4. this project's operator only: an idle window of two refresh intervals, opened after the writes
   stopped (issue 17 point 8), counts writes (target 0), reads and CPU.

Printed (bench/table.py): convergence time with the ratio to the minimal operator, the 60 s target
on real, median Ready time as a fraction of the total (the resources should not all finish at the
end), API requests per binding written, Graph requests against the floor, CPU, memory, idle cost.
Request counts: the real server's audit log, the operators' ServiceAccount only; the sandbox's
counter less this benchmark's own requests. Asserts only correctness.

`BENCH_SCALE=50` (resources; 20 namespaces each) makes a smoke run; `BENCH_SERVERS=sandbox` or
`real` runs one server; `BENCH_GRAPH_LOG=DIR` writes the directory's request log of each
operator's convergence there (`<server>-<operator>.jsonl`: seconds from the start, method, path,
query), to see when each lookup went. `BENCH_REFRESH_INTERVAL` (seconds, default 30; a comma list
runs this project's operator once per interval, e.g. `30,300`: 300 s is the product's default)
sets the operator's refresh interval; the first is the table's main run, and every other
interval adds its convergence's Graph rows, labelled with it. The idle window (two intervals) is
run only at intervals of at most 60 s: at 300 s it would take 10 minutes
(bench/test_bench_idle.py measures idle at the default interval).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes import client
from tests.controlplane.harness import ControlPlane
from tests.e2e.harness import AuditRequests, RequestCounts, SandboxRequests, guid
from tests.e2e.real import prepare

from bench import kubehttp
from bench.kubeobjects import namespace
from bench.proc import MB_PER_MIB, cpu_seconds, peak_rss_mib, resident_by_allocator, rss_mib
from bench.refreshes import batches
from bench.settle import NOT_PEERING, WRITES, wait_quiet
from bench.table import Table, not_run
from entra_rbac_sandbox.launcher import Sandbox

SCALE = int(os.environ.get("BENCH_SCALE", "1000"))  # resources
NAMESPACES = 20
BINDINGS = SCALE * NAMESPACES
IN_FLIGHT = 16
# Seconds: the operator's refresh interval, one run per value (the first is the table's main run);
# the idle window is two of them, run only up to IDLE_MAX_INTERVAL.
INTERVALS = tuple(float(v) for v in os.environ.get("BENCH_REFRESH_INTERVAL", "30").split(","))
REFRESH = INTERVALS[0]
IDLE_MAX_INTERVAL = 60.0
CACHE_SHARE = 0.2  # the cache's lifetime, a fifth of the interval (settings.CACHE_SHARE_OF_INTERVAL)
QUIET = 5.0  # seconds without a write: the operator has stopped writing
CONVERGE_DEADLINE = max(300.0, 2.0 * SCALE)  # a hung run fails; the figure is what it printed
SERVERS = tuple(os.environ.get("BENCH_SERVERS", "sandbox,real").split(","))
OPERATORS = ("minimal", "operator")
MINIMAL = Path(__file__).with_name("minimal_operator.py")
EGB = "/apis/entra-rbac.io/v1alpha1/entragroupbindings"
GRAPH_READS = r"^/v1\.0/(\$batch$|directoryObjects/getByIds$|groups/[^/]+/(transitiveMembers|members))"
GRAPH_DELTA = r"^/v1\.0/groups/delta"
GRAPH_BY_IDS, GRAPH_BATCH = r"^/v1\.0/directoryObjects/getByIds$", r"^/v1\.0/\$batch$"
GRAPH_LOG = os.environ.get("BENCH_GRAPH_LOG")
LABEL = {"minimal": "minimal-operator", "operator": "entra-rbac-operator"}
# A run is set-up, warm-up, convergence, the writes' settling and the idle window (pytest's
# default timeout here is 300 s).
pytestmark = [pytest.mark.bench, pytest.mark.timeout(CONVERGE_DEADLINE + 900)]
TARGET_RATIO, TARGET_REAL_SECONDS, TARGET_PER_BINDING = 1.3, 60.0, 1.2


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
    # Where the resident memory is once the writes stopped (bench/proc.py, resident_by_allocator).
    allocators: dict[str, float] = field(default_factory=dict)


RUNS: dict[tuple[str, str, float], Run] = {}


@dataclass
class Bench:
    sandbox: Sandbox
    requests: RequestCounts
    log: Path
    process: subprocess.Popen[str] | None = None
    ours: int = 0  # this benchmark's own requests since the last reset (the sandbox counts them)

    def operator_requests(self, method: str | None = None, path: str | None = None) -> int:
        count = self.requests.count(method, path)
        return count - self.ours if self.requests.__class__ is SandboxRequests and method is None else count

    def writes(self) -> int:
        return sum(self.requests.count(m, NOT_PEERING) for m in WRITES)

    def graph_reads(self) -> int:
        """Graph lookups (getByIds, $batch, member pages: the outer HTTP requests), not delta rounds."""
        return int(self.sandbox.entra.count(None, GRAPH_READS))

    def reset(self) -> None:
        self.requests.reset()
        self.sandbox.entra.reset_requests()
        self.ours = 0


@pytest.fixture(scope="module", autouse=True)
def table(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for server in SERVERS:
        _table(
            server,
            lambda operator, interval=REFRESH, server=server: not_run(
                request, server=server, operator=operator, interval=interval
            ),
        ).print()


def _directory(path: Path) -> Path:
    groups = [
        {"id": guid(10_000 + i), "displayName": f"Team {i}", "mailNickname": f"team{i}", "members": []}
        for i in range(SCALE)
    ]
    groups.append({"id": guid(1), "displayName": "Warm-up", "mailNickname": "warmup", "members": []})
    path.write_text(yaml.safe_dump({"users": [], "groups": groups}), encoding="utf-8")
    return path


@contextmanager
def _server(server: str, tmp_path: Path, interval: float) -> Iterator[tuple[Sandbox, RequestCounts]]:
    """A fresh server of this kind with the CRD and the operator's identity, no operator yet."""
    env = {"ENTRA_RBAC_REFRESH_INTERVAL": f"{interval:.0f}s", "ENTRA_RBAC_LOG_LEVEL": "warning"}
    directory = _directory(tmp_path / "directory.yaml")
    with ExitStack() as stack:
        kube: dict[str, Path] = {}
        audit = None
        if server == "real":
            cp = stack.enter_context(ControlPlane(workdir=tmp_path / "controlplane"))
            real = prepare(cp, tmp_path, garbage_collection=False)
            kube = {"cluster": real.admin_kubeconfig, "cluster_operator_kubeconfig": real.operator_kubeconfig}
            audit = real.audit
        log = stack.enter_context((tmp_path / "operator.log").open("w"))
        sandbox = Sandbox(
            directory,
            state_dir=tmp_path / "sb",
            operator=False,
            operator_env=env,
            operator_output=log,
            **kube,  # type: ignore[arg-type]
        )
        stack.enter_context(sandbox)
        requests: RequestCounts
        if sandbox.kube is not None:
            requests = SandboxRequests(sandbox.kube.faults)
        else:
            assert audit is not None
            requests = AuditRequests(audit)
        yield sandbox, requests


def _start(operator: str, bench: Bench) -> subprocess.Popen[str]:
    if operator == "operator":
        return bench.sandbox.start_operator()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_RBAC_", "AZURE_"))}
    env["KUBECONFIG"] = str(bench.sandbox.operator_kubeconfig)
    output = bench.sandbox.operator_output
    command = [
        sys.executable,
        "-m",
        "kopf",
        "run",
        "--standalone",
        "--all-namespaces",
        "--quiet",
        str(MINIMAL),
    ]
    return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)


def _resource(name: str, group: dict[str, str], namespaces: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": {"groups": [group], "roleBindings": [{"clusterRole": "edit", "namespaces": namespaces}]},
    }


def _ready(item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    current = status.get("observedGeneration") == item["metadata"].get("generation")
    return current and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )


async def _follow_ready(
    http: aiohttp.ClientSession, base: str, bench: Bench, names: set[str], ready: dict[str, float]
) -> None:
    """Record when each named resource first shows Ready, from a watch (re-listed if it expires)."""
    resource_version = ""
    while len(ready) < len(names):
        if not resource_version:
            bench.ours += 1
            async with http.get(base + EGB) as response:
                listed = await response.json()
            resource_version = listed["metadata"]["resourceVersion"]
            for item in listed["items"]:
                if item["metadata"]["name"] in names and _ready(item):
                    ready.setdefault(item["metadata"]["name"], time.monotonic())
        bench.ours += 1
        async for event in kubehttp.watch(http, base + EGB, resource_version):
            if event["type"] == "ERROR":  # 410 Gone: list again
                resource_version = ""
                break
            item = event["object"]
            resource_version = item["metadata"]["resourceVersion"]
            name = item["metadata"].get("name")
            if event["type"] != "BOOKMARK" and name in names and _ready(item):
                ready.setdefault(name, time.monotonic())
            if len(ready) == len(names):
                return


async def _wait_ready(http: aiohttp.ClientSession, base: str, name: str, bench: Bench) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        bench.ours += 1
        async with http.get(f"{base}{EGB}/{name}") as response:
            if response.status == 200 and _ready(await response.json()):
                return
        await asyncio.sleep(0.05)  # fine enough to time a lone resource's reconcile
    raise AssertionError(f"{name} was not Ready within 180 s\n{bench.log.read_text()[-3000:]}")


async def _count_bindings(http: aiohttp.ClientSession, base: str, label: str) -> int:
    """RoleBindings of the benchmark's resources (not the warm-up's), in pages of 5,000."""
    found, token = 0, ""
    while True:
        params = {"labelSelector": f"app.kubernetes.io/managed-by={label}", "limit": "5000"}
        if token:
            params["continue"] = token
        async with http.get(
            f"{base}/apis/rbac.authorization.k8s.io/v1/rolebindings", params=params
        ) as response:
            page = await response.json()
        found += sum(1 for item in page["items"] if item["metadata"]["name"].startswith("egb:r"))
        token = page["metadata"].get("continue", "")
        if not token:
            return found


async def _converge(bench: Bench, operator: str, pid: int, interval: float) -> Run:
    base, http = kubehttp.session(bench.sandbox.kubeconfig)
    namespaces = [f"bench-{i}" for i in range(NAMESPACES)]
    async with http:
        lone = time.monotonic()  # the warm-up is a lone resource on an idle operator
        await kubehttp.create(http, base + EGB, _resource("warmup", {"id": guid(1)}, namespaces[:1]))
        await _wait_ready(http, base, "warmup", bench)
        print(f"\nBENCH scale warm-up (a lone resource) Ready {time.monotonic() - lone:.2f} s after create")
        await asyncio.to_thread(
            wait_quiet, bench.writes, quiet=QUIET, timeout=120, what="the warm-up's writes"
        )
        bench.reset()
        cpu_before = cpu_seconds(pid)
        names = {f"r{i}" for i in range(SCALE)}
        ready: dict[str, float] = {}
        started = time.monotonic()
        follower = asyncio.create_task(_follow_ready(http, base, bench, names, ready))
        semaphore = asyncio.Semaphore(IN_FLIGHT)

        async def create(i: int) -> None:
            group = {"id": guid(10_000 + i)} if i % 2 == 0 else {"displayName": f"Team {i}"}
            async with semaphore:
                bench.ours += 1
                await kubehttp.create(http, base + EGB, _resource(f"r{i}", group, namespaces))

        await asyncio.gather(*(create(i) for i in range(SCALE)))
        try:
            await asyncio.wait_for(asyncio.shield(follower), timeout=CONVERGE_DEADLINE)
        except TimeoutError:
            follower.cancel()
            raise AssertionError(
                f"{operator}: {len(ready)} of {SCALE} Ready after {CONVERGE_DEADLINE:.0f}s\n"
                + bench.log.read_text()[-3000:]
            ) from None
        converged = time.monotonic() - started
        requests, graph = bench.operator_requests(), bench.graph_reads()
        entra = bench.sandbox.entra
        by_ids, batches, delta = (
            entra.count(None, path) for path in (GRAPH_BY_IDS, GRAPH_BATCH, GRAPH_DELTA)
        )
        print(f"\nBENCH scale Graph requests while converging: {entra.request_counts()}")
        if GRAPH_LOG:
            _write_graph_log(bench, operator, started, interval)
        cpu = cpu_seconds(pid) - cpu_before
        writes_at_ready = bench.writes()
        settle = await asyncio.to_thread(
            wait_quiet, bench.writes, quiet=QUIET, timeout=300, what="the writes after all Ready"
        )
        late_writes = bench.writes() - writes_at_ready
        bindings = await _count_bindings(http, base, LABEL[operator])
    median = statistics.median(t - started for t in ready.values()) / converged
    return Run(
        converged,
        median,
        bindings,
        requests,
        graph,
        by_ids,
        batches,
        delta,
        cpu,
        rss_mib(pid),
        peak_rss_mib(pid),
        late_writes,
        settle - QUIET,
        allocators=resident_by_allocator(pid),
    )


def _write_graph_log(bench: Bench, operator: str, started: float, interval: float, part: str = "") -> None:
    """The directory's requests of the convergence (or of the idle window, `part="-idle"`), one
    JSON line each (BENCH_GRAPH_LOG)."""
    server = "real" if bench.requests.__class__ is AuditRequests else "sandbox"
    suffix = "" if interval == REFRESH else f"-{interval:.0f}s"
    path = Path(GRAPH_LOG or ".") / f"{server}-{operator}{suffix}{part}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for record in bench.sandbox.entra.request_log():
            entry = {"t": round(record.monotonic - started, 3), "method": record.method, "path": record.path}
            out.write(json.dumps({**entry, "query": record.query}) + "\n")


def _idle(bench: Bench, pid: int, interval: float) -> dict[str, float]:
    """Two refresh intervals with nothing changing (opened after the writes stopped). The window is
    a span of time by definition; nothing is awaited in it. A refresh is a run of Graph lookups
    (bench/refreshes.py): the window holds two or three, as the refresher's batches are not
    aligned with it, so its lookups are counted per refresh, the most any one of them made."""
    bench.reset()
    cpu_before, began = cpu_seconds(pid), time.monotonic()
    end = began + 2 * interval
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))
    seconds = time.monotonic() - began
    written = [f"{m} {p}" for m, p in bench.requests.log() if m in WRITES and "kopfpeerings/" not in p]
    if written:
        print(f"\nBENCH scale idle writes: {written[:10]}")
    if GRAPH_LOG:
        _write_graph_log(bench, "operator", began, interval, "-idle")
    lookups = [r.monotonic for r in bench.sandbox.entra.request_log() if re.search(GRAPH_READS, r.path)]
    rounds = batches(lookups)
    return {
        "writes": bench.writes(),
        "reads per refresh": bench.requests.count("GET") / 2,
        "graph per refresh": max((count for _, _, count in rounds), default=0),
        "refreshes": len(rounds),
        "delta per refresh": bench.sandbox.entra.count(None, GRAPH_DELTA) / 2,
        "cpu percent": 100 * (cpu_seconds(pid) - cpu_before) / seconds,
    }


def _cases() -> list[Any]:
    """(server, operator, interval): the minimal operator once per server (it has no refresh),
    this project's operator once per interval; ids as before for the main interval."""
    cases = []
    for server in SERVERS:
        for operator in OPERATORS:
            for interval in INTERVALS if operator == "operator" else (REFRESH,):
                suffix = "" if interval == REFRESH else f"-{interval:.0f}s"
                cases.append(pytest.param(server, operator, interval, id=f"{server}-{operator}{suffix}"))
    return cases


@pytest.mark.parametrize(("server", "operator", "interval"), _cases())
def test_bench_scale_convergence(server: str, operator: str, interval: float, tmp_path: Path) -> None:
    with _server(server, tmp_path, interval) as (sandbox, requests):
        bench = Bench(sandbox, requests, tmp_path / "operator.log")
        with sandbox.admin_client() as api:
            for i in range(NAMESPACES):
                client.CoreV1Api(api).create_namespace(namespace(f"bench-{i}"))
        process = _start(operator, bench)
        try:
            run = asyncio.run(_converge(bench, operator, process.pid, interval))
            if operator == "operator" and interval <= IDLE_MAX_INTERVAL:
                run.idle = _idle(bench, process.pid, interval)
            assert process.poll() is None, f"{operator} exited\n{bench.log.read_text()[-3000:]}"
        finally:
            if process is not sandbox.process:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
    RUNS[(server, operator, interval)] = run
    print(f"\nBENCH scale {server} {operator} (refresh {interval:.0f} s): {run}")
    assert run.bindings == BINDINGS, f"{run.bindings} of {BINDINGS} RoleBindings"
    if run.idle is not None:
        assert run.idle["writes"] == 0, f"{run.idle['writes']} writes while idle"


def _where(run: Run) -> str:
    return ", ".join(f"{name} {mib:.0f}" for name, mib in run.allocators.items())


def _table(server: str, why: Callable[..., str]) -> Table:
    """The server's figures; a run without figures says why (bench/table.py, not_run)."""
    minimal, ours = RUNS.get((server, "minimal", REFRESH)), RUNS.get((server, "operator", REFRESH))
    table = Table(
        f"bench scale {server}",
        f"{SCALE} resources x {NAMESPACES} namespaces = {BINDINGS} RoleBindings, group mode, "
        f"half by id, half by displayName, refresh interval {REFRESH:.0f} s; baseline: the minimal "
        f"kopf operator, same run",
    )
    base = f"minimal {minimal.converged:.1f} s" if minimal else f"minimal {why('minimal')}"
    if ours is None:
        table.add("converged", why("operator"), baseline=base)
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
        run = ours if interval == REFRESH else RUNS.get((server, "operator", interval))
        _graph_rows(table, run, interval, floor, why("operator", interval))
    table.add("writes after all Ready", f"{ours.late_writes} (stopped {ours.settle:.1f} s later)",
              baseline=f"{minimal.late_writes}" if minimal else "")  # fmt: skip
    table.add("CPU while converging", f"{ours.cpu:.1f} s",
              baseline=f"{minimal.cpu:.1f} s" if minimal else "")  # fmt: skip
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
    return table


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
