"""The operator benchmarks' shared ground: N one-group teams in a directory file, and an operator
process over the sandbox or a real control plane of the benchmark's own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from tests.controlplane.harness import ControlPlane
from tests.e2e.harness import AuditRequests, Cluster, RequestCounts, SandboxRequests, guid
from tests.e2e.real import RealServer, prepare

from bench.proc import cpu_seconds
from entra_rbac_sandbox.launcher import Sandbox


@contextmanager
def own_control_plane(workdir: Path, state: Path) -> Iterator[RealServer]:
    """A real control plane of the benchmark's own (it never relies on the garbage collector)."""
    with ControlPlane(workdir=workdir) as cp:
        yield prepare(cp, state, garbage_collection=False)


@dataclass
class BenchServer:
    """A benchmark's sandbox, what counts the requests its Kubernetes API received, and the CPU
    seconds that API's server has used so far (the sandbox's runs in the benchmark's own process,
    so there it is that whole process's; a real control plane's is its processes')."""

    sandbox: Sandbox
    requests: RequestCounts
    server_cpu: Callable[[], float]


@contextmanager
def bench_server(
    tmp_path: Path, directory: Path, env: dict[str, str], *, real: bool
) -> Iterator[BenchServer]:
    """A sandbox serving `directory`, no operator yet (`env` its environment, its output in
    tmp_path/operator.log), whose Kubernetes API is the sandbox's own or, with `real`, a real
    control plane of the benchmark's own; with what counts the requests that API received (the
    real one's audit log: the operator's requests only)."""
    with ExitStack() as stack:
        kube: dict[str, Path] = {}
        cp: ControlPlane | None = None
        server: RealServer | None = None
        if real:
            for workdir in ("cp", "real"):
                (tmp_path / workdir).mkdir()
            cp = stack.enter_context(ControlPlane(workdir=tmp_path / "cp"))
            server = prepare(cp, tmp_path / "real", garbage_collection=False)
            kube = {
                "cluster": server.admin_kubeconfig,
                "cluster_operator_kubeconfig": server.operator_kubeconfig,
            }
        log = stack.enter_context((tmp_path / "operator.log").open("w"))
        sandbox = stack.enter_context(
            Sandbox(
                directory,
                state_dir=tmp_path / "sb",
                operator=False,
                operator_env=env,
                operator_output=log,
                **kube,  # type: ignore[arg-type]
            )
        )
        if cp is not None and server is not None:
            pids = cp.pids
            yield BenchServer(sandbox, AuditRequests(server.audit), lambda: sum(map(cpu_seconds, pids)))
        else:
            assert sandbox.kube is not None
            yield BenchServer(sandbox, SandboxRequests(sandbox.kube.faults), lambda: cpu_seconds(os.getpid()))


@contextmanager
def bench_sandbox(
    tmp_path: Path, directory: Path, env: dict[str, str], *, real: bool
) -> Iterator[tuple[Sandbox, RequestCounts]]:
    """`bench_server`'s sandbox and request counts."""
    with bench_server(tmp_path, directory, env, real=real) as server:
        yield server.sandbox, server.requests


def write_teams(path: Path, teams: int) -> None:
    """`teams` groups `Team <i>` (mailNickname `team<i>`), each with one of 50 users."""
    users = [
        {"id": guid(1 + i), "userPrincipalName": f"u{i}@contoso.com", "userType": "Member"} for i in range(50)
    ]
    groups = [
        {
            "id": guid(10_000 + i),
            "displayName": f"Team {i}",
            "mailNickname": f"team{i}",
            "members": [users[i % 50]["id"]],
        }
        for i in range(teams)
    ]
    path.write_text(yaml.safe_dump({"users": users, "groups": groups}), encoding="utf-8")


@contextmanager
def team_cluster(
    server: str, tmp_path: Path, teams: int, refresh: float, real: RealServer | None
) -> Iterator[Cluster]:
    """The operator (refresh interval `refresh`, warnings only) over `teams` teams, on the sandbox
    API server (`real` None) or on `real`, signed in with its ServiceAccount's token."""
    directory = tmp_path / "directory.yaml"
    write_teams(directory, teams)
    env = {"ENTRA_RBAC_REFRESH_INTERVAL": f"{refresh}s", "ENTRA_RBAC_LOG_LEVEL": "warning"}
    log_path = tmp_path / "operator.log"
    kube: dict[str, Path] = {}
    if real is not None:
        kube = {"cluster": real.admin_kubeconfig, "cluster_operator_kubeconfig": real.operator_kubeconfig}
    with (
        log_path.open("w") as log,
        Sandbox(
            directory,
            state_dir=tmp_path / "sb",
            operator_env=env,
            operator_output=log,
            **kube,  # type: ignore[arg-type]
        ) as sandbox,
    ):
        yield Cluster(sandbox, log_path, server=server, audit=real.audit if real else None)
