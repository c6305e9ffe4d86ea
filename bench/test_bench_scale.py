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

The floor under both (case `plain`, bench/plain.py): on a fresh server of its own, the same
resources created, then the very bindings the operator writes, by a plain client signed in as the
operator, 16 in flight, no operator running. Every case records the CPU-seconds of each server
process while converging (kube-apiserver, etcd, kube-controller-manager; on the sandbox the
benchmark's own process, which hosts its API server) and prints its requests by path shape.

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
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
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
from bench.plain import OPERATOR_QUERY, cpu_between, create_bindings, named, server_cpu
from bench.proc import cpu_seconds, peak_rss_mib, resident_by_allocator, rss_mib
from bench.refreshes import batches
from bench.scale_table import (
    BINDINGS,
    IDLE_MAX_INTERVAL,
    INTERVALS,
    NAMESPACES,
    REFRESH,
    SCALE,
    SERVER_IDLE,
    Run,
    scale_table,
)
from bench.settle import NOT_PEERING, WRITES, wait_quiet
from bench.table import not_run
from entra_rbac_sandbox.launcher import Sandbox

IN_FLIGHT = 16
QUIET = 5.0  # seconds without a write: the operator has stopped writing
CONVERGE_DEADLINE = max(300.0, 2.0 * SCALE)  # a hung run fails; the figure is what it printed
SERVERS = tuple(os.environ.get("BENCH_SERVERS", "sandbox,real").split(","))
OPERATORS = ("minimal", "operator", "plain")
MINIMAL = Path(__file__).with_name("minimal_operator.py")
EGB = "/apis/entra-rbac.io/v1alpha1/entragroupbindings"
GRAPH_READS = r"^/v1\.0/(\$batch$|directoryObjects/getByIds$|groups/[^/]+/(transitiveMembers|members))"
GRAPH_DELTA = r"^/v1\.0/groups/delta"
GRAPH_BY_IDS, GRAPH_BATCH = r"^/v1\.0/directoryObjects/getByIds$", r"^/v1\.0/\$batch$"
GRAPH_LOG = os.environ.get("BENCH_GRAPH_LOG")
# BENCH_PPROF=DIR: a CPU profile of kube-apiserver (its /debug/pprof) over the first
# BENCH_PPROF_SECONDS (30) of each convergence on real, into DIR/<operator>.pprof
# (`go tool pprof -top FILE` reads it): where the server's time goes, form by form.
PPROF = os.environ.get("BENCH_PPROF")
PPROF_SECONDS = int(os.environ.get("BENCH_PPROF_SECONDS", "30"))
LABEL = {"minimal": "minimal-operator", "operator": "entra-rbac-operator"}
# A run is set-up, warm-up, convergence, the writes' settling and the idle window (pytest's
# default timeout here is 300 s).
pytestmark = [pytest.mark.bench, pytest.mark.timeout(CONVERGE_DEADLINE + 900)]


RUNS: dict[tuple[str, str, float], Run] = {}


@dataclass
class Bench:
    sandbox: Sandbox
    requests: RequestCounts
    log: Path
    process: subprocess.Popen[str] | None = None
    # The control plane's processes by name (kube-apiserver, etcd, kube-controller-manager); on
    # the sandbox none: its API server is a thread of this process (BENCH_PROCESS).
    pids: dict[str, int] = field(default_factory=dict)
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
        scale_table(
            server,
            RUNS,
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
def _server(
    server: str, tmp_path: Path, interval: float
) -> Iterator[tuple[Sandbox, RequestCounts, dict[str, int]]]:
    """A fresh server of this kind with the CRD and the operator's identity, no operator yet; its
    processes by name (none on the sandbox)."""
    env = {"ENTRA_RBAC_REFRESH_INTERVAL": f"{interval:.0f}s", "ENTRA_RBAC_LOG_LEVEL": "warning"}
    directory = _directory(tmp_path / "directory.yaml")
    with ExitStack() as stack:
        kube: dict[str, Path] = {}
        audit = None
        pids: dict[str, int] = {}
        if server == "real":
            profiling = ("--profiling=true",) if PPROF else ()  # the harness turns it off
            cp = stack.enter_context(
                ControlPlane(workdir=tmp_path / "controlplane", apiserver_args=profiling)
            )
            pids = named(cp.pids)
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
        yield sandbox, requests, pids


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
        cpu_before, servers_before = cpu_seconds(pid), server_cpu(bench.pids)
        names = {f"r{i}" for i in range(SCALE)}
        ready: dict[str, float] = {}
        started = time.monotonic()
        profiling = _profile_server(http, base, bench, operator)
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
        servers = cpu_between(servers_before, server_cpu(bench.pids))
        requests, graph = bench.operator_requests(), bench.graph_reads()
        _print_requests(bench)
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
        await _profiled(profiling)
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
        server_cpu=servers,
    )


# A request's shape: its path with namespaces and object names as `*`.
_NAMED = re.compile(
    r"/(namespaces|entragroupbindings|rolebindings|clusterrolebindings|events|clusterkopfpeerings)/[^/]+"
)


def _profile_server(
    http: aiohttp.ClientSession, base: str, bench: Bench, operator: str
) -> asyncio.Task[None] | None:
    """With BENCH_PPROF on real, a task writing kube-apiserver's CPU profile of the next
    PPROF_SECONDS (the benchmark's kubeconfig is the cluster's admin there)."""
    if not PPROF or not bench.pids:
        return None

    async def profile() -> None:
        timeout = aiohttp.ClientTimeout(total=PPROF_SECONDS + 60)
        params = {"seconds": str(PPROF_SECONDS)}
        async with http.get(f"{base}/debug/pprof/profile", params=params, timeout=timeout) as answer:
            body = await answer.read()
        if answer.status != 200:
            print(f"\nBENCH scale pprof failed: {answer.status} {body[:300]!r}")
            return
        written = await asyncio.to_thread(_write_profile, Path(PPROF) / f"{operator}.pprof", body)
        print(f"\nBENCH scale kube-apiserver profile: {written}")

    return asyncio.create_task(profile())


def _write_profile(path: Path, body: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


async def _profiled(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        await task


def _print_requests(bench: Bench) -> None:
    """The convergence's API requests by method and path shape (on the sandbox, the benchmark's own
    included): which requests other than the binding creates there are, and how many."""
    shapes: dict[str, int] = {}
    for method, path in bench.requests.log():
        shape = f"{method} {_NAMED.sub(lambda m: f'/{m.group(1)}/*', path)}"
        shapes[shape] = shapes.get(shape, 0) + 1
    ordered = sorted(shapes.items(), key=lambda item: -item[1])
    print("\nBENCH scale API requests by shape: " + ", ".join(f"{shape} {n}" for shape, n in ordered))


async def _plain(bench: Bench) -> Run:
    """The floor: the benchmark's resources created as in a convergence, then every binding the
    operator would write for them, by a plain client signed in as the operator (bench/plain.py);
    no operator runs. Timed from the first resource's create to the last binding's answer."""
    base, http = kubehttp.session(bench.sandbox.kubeconfig)
    namespaces = [f"bench-{i}" for i in range(NAMESPACES)]
    bench.reset()
    cpu_before, servers_before = time.process_time(), server_cpu(bench.pids)
    started = time.monotonic()
    semaphore = asyncio.Semaphore(IN_FLIGHT)

    async def create(i: int) -> dict[str, Any]:
        group = {"id": guid(10_000 + i)}  # an id in every binding: the operator's answer for a name
        async with semaphore:
            bench.ours += 1
            return await kubehttp.create(http, base + EGB, _resource(f"r{i}", group, namespaces))

    async with http:
        profiling = _profile_server(http, base, bench, "plain")
        resources = await asyncio.gather(*(create(i) for i in range(SCALE)))
        await create_bindings(bench.sandbox.operator_kubeconfig, resources, namespaces, in_flight=IN_FLIGHT)
        converged = time.monotonic() - started
        servers = cpu_between(servers_before, server_cpu(bench.pids))
        client_cpu = time.process_time() - cpu_before
        requests = bench.operator_requests()  # the binding creates (the resources' are ours)
        print(f"\nBENCH scale plain client's query: {OPERATOR_QUERY}")
        _print_requests(bench)
        bindings = await _count_bindings(http, base, LABEL["operator"])
        await _profiled(profiling)
    # On the sandbox the API server is this process: its CPU is the server's and the client's.
    nothing = float("nan")
    return Run(converged, nothing, bindings, requests, 0, 0, 0, 0, client_cpu, nothing, nothing, 0, 0.0,
               server_cpu=servers)  # fmt: skip


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
    cpu_before, servers_before, began = cpu_seconds(pid), server_cpu(bench.pids), time.monotonic()
    end = began + 2 * interval
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))
    seconds = time.monotonic() - began
    servers = cpu_between(servers_before, server_cpu(bench.pids))
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
        # What the server processes use with nothing written: the part of a convergence's server
        # CPU that is its length, not its writes.
        **{f"{SERVER_IDLE}{name}": 100 * used / seconds for name, used in servers.items()},
    }


def _cases() -> list[Any]:
    """(server, operator, interval): the minimal operator and the plain client once per server
    (they have no refresh), this project's operator once per interval; ids as before for the main
    interval."""
    cases = []
    for server in SERVERS:
        for operator in OPERATORS:
            for interval in INTERVALS if operator == "operator" else (REFRESH,):
                suffix = "" if interval == REFRESH else f"-{interval:.0f}s"
                cases.append(pytest.param(server, operator, interval, id=f"{server}-{operator}{suffix}"))
    return cases


@pytest.mark.parametrize(("server", "operator", "interval"), _cases())
def test_bench_scale_convergence(server: str, operator: str, interval: float, tmp_path: Path) -> None:
    with _server(server, tmp_path, interval) as (sandbox, requests, pids):
        bench = Bench(sandbox, requests, tmp_path / "operator.log", pids=pids)
        with sandbox.admin_client() as api:
            for i in range(NAMESPACES):
                client.CoreV1Api(api).create_namespace(namespace(f"bench-{i}"))
        run = asyncio.run(_plain(bench)) if operator == "plain" else _operate(bench, operator, interval)
    RUNS[(server, operator, interval)] = run
    print(f"\nBENCH scale {server} {operator} (refresh {interval:.0f} s): {run}")
    assert run.bindings == BINDINGS, f"{run.bindings} of {BINDINGS} RoleBindings"
    if run.idle is not None:
        assert run.idle["writes"] == 0, f"{run.idle['writes']} writes while idle"


def _operate(bench: Bench, operator: str, interval: float) -> Run:
    """One operator's convergence (and idle window), its process stopped at the end."""
    process = _start(operator, bench)
    try:
        run = asyncio.run(_converge(bench, operator, process.pid, interval))
        if operator == "operator" and interval <= IDLE_MAX_INTERVAL:
            run.idle = _idle(bench, process.pid, interval)
        assert process.poll() is None, f"{operator} exited\n{bench.log.read_text()[-3000:]}"
    finally:
        if process is not bench.sandbox.process:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    return run
