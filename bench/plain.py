"""The floor of the convergence benchmark: a plain client writing the operator's 20,000 bindings.

Issue 17 point 2 asks 20,000 bindings within 60 s on the real control plane. What the server
alone costs for that many writes is the floor under any operator: `create_bindings` sends the
very RoleBindings the operator writes (`core.desired.build_binding`: name, labels, annotations,
controller owner reference, one Group subject) with the operator's request form (the query its
`KubeAdapter` sends), 16 in flight, signed in as the operator's ServiceAccount (so the real
authenticator, RBAC and the `bind` check judge them as they judge the operator's), by aiohttp
from the benchmark's process: no kopf, no reconcile, no status.

`server_cpu` reads the CPU-seconds of the control plane's processes (kube-apiserver, etcd,
kube-controller-manager) from /proc, and of the benchmark's own process, which on the sandbox is
the API server too (it runs in a thread of the benchmark).
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import kubehttp
from bench.proc import cpu_seconds
from entra_rbac.constants import FIELD_MANAGER
from entra_rbac.core.desired import Owner, build_binding
from entra_rbac.core.subjects import Subject, SubjectSet

RB = "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/rolebindings"
# The benchmark's own process: the sandbox API server (a thread of it) and the benchmark's client.
BENCH_PROCESS = "bench process"
# The query of the operator's binding creates (adapters/kube/adapter.py, KubeAdapter._create_sync),
# and `BENCH_PLAIN_QUERY` (`name=value&...`) added to it: a request form's cost on the server
# measured without an operator (e.g. `fieldValidation=Ignore`).
OPERATOR_QUERY: Mapping[str, str] = {
    "fieldManager": FIELD_MANAGER,
    **dict(urllib.parse.parse_qsl(os.environ.get("BENCH_PLAIN_QUERY", ""))),
}


def named(pids: Sequence[int]) -> dict[str, int]:
    """Each process by its binary's name (/proc/PID/cmdline's first word: `comm` cuts names at 15
    characters, kube-controller-manager among them)."""
    return {Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode().rpartition("/")[2]: pid
            for pid in pids}  # fmt: skip


def server_cpu(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU-seconds so far of each named process, and of this one (BENCH_PROCESS)."""
    found = {name: cpu_seconds(pid) for name, pid in pids.items()}
    found[BENCH_PROCESS] = time.process_time()
    return found


def cpu_between(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in after if name in before}


def binding(resource: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The RoleBinding the operator writes for `resource` in `namespace` (group mode, one group id)."""
    owner = Owner.from_manifest(resource)
    group = str(resource["spec"]["groups"][0]["id"])
    subjects = SubjectSet(subjects=(Subject("Group", group),), group_ids=(group,))
    return build_binding(owner, "ClusterRole", "edit", namespace, subjects).to_manifest()


async def create_bindings(
    kubeconfig: Path,
    resources: Sequence[Mapping[str, Any]],
    namespaces: Sequence[str],
    *,
    in_flight: int,
    query: Mapping[str, str] = OPERATOR_QUERY,
) -> int:
    """Every resource's binding in every namespace, `in_flight` at a time, as `kubeconfig`'s
    user; the number created (any other answer than 201 fails)."""
    base, http = kubehttp.session(kubeconfig)
    semaphore = asyncio.Semaphore(in_flight)
    created = 0

    async def create(resource: Mapping[str, Any], namespace: str) -> None:
        nonlocal created
        body = binding(resource, namespace)
        async with semaphore, http.post(base + RB.format(namespace), json=body, params=query) as response:
            if response.status != 201:
                raise AssertionError(f"create in {namespace}: {response.status} {await response.text()}")
            created += 1

    async with http:
        await asyncio.gather(*(create(r, ns) for r in resources for ns in namespaces))
    return created
