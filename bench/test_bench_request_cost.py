"""Benchmark (make bench): what each of the operator's request forms costs the real API server.

The convergence of 20,000 bindings (issue 17 point 2) costs kube-apiserver about 50 CPU-seconds
more with the operator than a plain client's creates of the same bindings (docs/performance.md,
Convergence). Besides the creates the operator sends, per resource, a status merge patch, kopf's
patch of its annotations and an audit Event, and it watches every binding it writes. This prices
each apart, on one control plane of the benchmark's own, as the server's CPU-seconds (and
etcd's) per 1,000 requests, 16 in flight, from /proc:

- `rb create`: the operator's RoleBinding creates (`bench.plain.binding`), no watch open;
- `rb create, full watch` / `rb create, metadata watch`: the same with one watch of every
  RoleBinding open and read, in full or as `PartialObjectMetadata`;
- `egb status patch`: a merge patch of each resource's `/status` (a condition's message);
- `egb status patch, 2 watches`: the same with two full watches of the resources open (kopf's
  and the operator's cache: the garbage collector's metadata watch is open in every form);
- `egb annotation patch`: a merge patch of an annotation on the main endpoint (kopf's form);
- `event create`: a core/v1 Event about each resource, in `default`;
- `configmap patch`: the baseline of a patch on a built-in resource;
- `bare status patch`: the same status patch on a custom resource whose CRD has no schema
  beyond `x-kubernetes-preserve-unknown-fields` and no rules: what our schema costs.

Prints figures only: `BENCH_COST_COUNT` requests per form (default 1,000).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.controlplane.harness import ControlPlane
from tests.e2e.real import prepare

from bench import kubehttp
from bench.plain import binding
from bench.proc import cpu_seconds
from bench.table import Table
from entra_rbac.core.events import EVENT_NAMESPACE

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]
COUNT = int(os.environ.get("BENCH_COST_COUNT", "1000"))
IN_FLIGHT = 16
NAMESPACES = 20
EGBS = "/apis/entra-rbac.io/v1alpha1/entragroupbindings"
RB = "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/rolebindings"
ALL_RB = "/apis/rbac.authorization.k8s.io/v1/rolebindings"
BARES = "/apis/bench.entra-rbac.io/v1/bares"
BARE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "bares.bench.entra-rbac.io"},
    "spec": {
        "group": "bench.entra-rbac.io",
        "scope": "Cluster",
        "names": {"plural": "bares", "singular": "bare", "kind": "Bare", "listKind": "BareList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
MERGE = {"Content-Type": "application/merge-patch+json"}
FIGURES: dict[str, dict[str, float]] = {}  # form -> process -> CPU-s per 1,000 requests


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    yield
    table = Table("bench request cost", "the real API server's CPU-s per 1,000 requests, by form")
    for form, cpu in FIGURES.items():
        split = ", ".join(
            f"{name} {seconds:.2f}" for name, seconds in cpu.items() if name != "kube-apiserver"
        )
        table.add(form, f"{cpu['kube-apiserver']:.2f}", baseline=split)
    table.print()


def _resource(i: int) -> dict[str, Any]:
    group = f"{i:08x}-0000-4000-8000-000000000000"
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": f"cost-{i}"},
        "spec": {
            "groups": [{"id": group}],
            "roleBindings": [{"clusterRole": "edit", "namespaces": [f"cost-{n}" for n in range(NAMESPACES)]}],
        },
    }


def _event(resource: dict[str, Any], i: int) -> dict[str, Any]:
    meta = resource["metadata"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}."},
        "involvedObject": {
            "apiVersion": resource["apiVersion"],
            "kind": resource["kind"],
            "name": meta["name"],
            "uid": meta["uid"],
        },
        "reason": "BindingsChanged",
        "message": f"Created 20 RoleBindings ({i})",
        "type": "Normal",
        "source": {"component": "entra-rbac-operator"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


async def _send(
    http: aiohttp.ClientSession, method: str, url: str, body: Any, headers: dict[str, str] | None = None
) -> None:
    async with http.request(
        method, url, data=json.dumps(body), headers=headers or {"Content-Type": "application/json"}
    ) as answer:
        if answer.status not in (200, 201):
            raise AssertionError(f"{method} {url}: {answer.status} {await answer.text()}")
        await answer.read()


Call = Callable[[], Awaitable[None]]


async def _many(calls: Sequence[Call]) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(call: Call) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(call) for call in calls))


@contextlib.asynccontextmanager
async def _watching(
    http: aiohttp.ClientSession, base: str, accept: str | None, path: str = ALL_RB
) -> AsyncIterator[list[int]]:
    """One watch of `path` (every RoleBinding) open and read meanwhile; yields the count of events seen."""
    async with http.get(f"{base}{path}", params={"limit": "1"}) as answer:
        version = (await answer.json())["metadata"]["resourceVersion"]
    seen = [0]

    async def follow() -> None:
        headers = {"Accept": accept} if accept else {}
        params = {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "true"}
        async with http.get(
            f"{base}{path}", params=params, headers=headers, timeout=aiohttp.ClientTimeout(total=None)
        ) as answer:
            async for line in answer.content:
                if line.strip():
                    seen[0] += 1

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)  # the watch's request goes out before the load
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _cpu(cp: ControlPlane) -> dict[str, float]:
    found: dict[str, float] = {}
    for pid in cp.pids:
        name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode().rpartition("/")[2]
        found[name] = cpu_seconds(pid)
    return found


async def _priced(cp: ControlPlane, form: str, calls: Sequence[Call]) -> None:
    before = _cpu(cp)
    began = time.monotonic()
    await _many(calls)
    wall = time.monotonic() - began
    after = _cpu(cp)
    FIGURES[form] = {name: 1000 * (after[name] - before[name]) / len(calls) for name in after}
    FIGURES[form]["wall s"] = wall
    print(f"\nBENCH request cost {form}: {len(calls)} in {wall:.1f} s, CPU-s/1000 {FIGURES[form]}")


def _status(i: int) -> dict[str, Any]:
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "Reconciled",
        "message": f"20 bindings ({i})",
        "lastTransitionTime": "2026-12-04T00:00:00Z",
        "observedGeneration": 1,
    }
    return {"status": {"observedGeneration": 1, "conditions": [condition]}}


async def _bare_status_patches(
    cp: ControlPlane, http: aiohttp.ClientSession, base: str, resources: list[dict[str, Any]]
) -> None:
    """The status patch of `egb status patch` on a schema-less CRD, its objects carrying the same spec."""
    await _send(http, "POST", f"{base}/apis/apiextensions.k8s.io/v1/customresourcedefinitions", BARE_CRD)
    deadline = time.monotonic() + 60
    while True:
        async with http.get(f"{base}{BARES}") as answer:
            if answer.status == 200:
                break
        assert time.monotonic() < deadline, "the bare CRD was not served within 60 s"
        await asyncio.sleep(0.2)
    names = [str(r["metadata"]["name"]) for r in resources]
    await _many([
        functools.partial(_send, http, "POST", f"{base}{BARES}",
                          {"apiVersion": "bench.entra-rbac.io/v1", "kind": "Bare", "metadata": {"name": name},
                           "spec": r["spec"]})
        for name, r in zip(names, resources, strict=True)
    ])  # fmt: skip
    calls = [
        functools.partial(_send, http, "PATCH", f"{base}{BARES}/{name}/status", _status(i), MERGE)
        for i, name in enumerate(names)
    ]
    await _priced(cp, "bare status patch", calls)


async def _resources(http: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    """The namespaces and COUNT EntraGroupBindings, as created (sorted by name)."""
    for n in range(NAMESPACES):
        await _send(http, "POST", f"{base}/api/v1/namespaces", {"metadata": {"name": f"cost-{n}"}})
    resources: list[dict[str, Any]] = []

    async def create(i: int) -> None:
        async with http.post(f"{base}{EGBS}", json=_resource(i)) as answer:
            assert answer.status == 201, await answer.text()
            resources.append(await answer.json())

    await _many([functools.partial(create, i) for i in range(COUNT)])
    return sorted(resources, key=lambda r: str(r["metadata"]["name"]))


def _creates(
    http: aiohttp.ClientSession, base: str, resources: list[dict[str, Any]], round_: int
) -> list[Call]:
    """One RoleBinding create per resource, in a namespace and under a name of this round's."""
    calls: list[Call] = []
    for i, resource in enumerate(resources):
        body = binding(resource, f"cost-{(i + round_) % NAMESPACES}")
        body["metadata"]["name"] = f"{body['metadata']['name']}-{round_}"
        url = f"{base}{RB.format(body['metadata']['namespace'])}"
        calls.append(functools.partial(_send, http, "POST", url, body))
    return calls


def _annotation(i: int) -> dict[str, Any]:
    digest = json.dumps({"spec": {"sha256": f"{i:064x}"}})
    return {"metadata": {"annotations": {"operator.entra-rbac.io/last-handled-configuration": digest}}}


async def test_bench_request_cost_by_form(tmp_path: Path) -> None:
    with ControlPlane(workdir=tmp_path / "cp") as cp:
        (tmp_path / "real").mkdir()
        server = prepare(cp, tmp_path / "real", garbage_collection=False)
        base, http = kubehttp.session(server.admin_kubeconfig)
        async with http:
            resources = await _resources(http, base)
            names = [str(r["metadata"]["name"]) for r in resources]
            await _priced(cp, "rb create", _creates(http, base, resources, 0))
            async with _watching(http, base, None) as seen:
                await _priced(cp, "rb create, full watch", _creates(http, base, resources, 1))
            print(f"full watch saw {seen[0]} events")
            async with _watching(http, base, METADATA) as seen:
                await _priced(cp, "rb create, metadata watch", _creates(http, base, resources, 2))
            print(f"metadata watch saw {seen[0]} events")
            await _priced(cp, "egb status patch", [
                functools.partial(_send, http, "PATCH", f"{base}{EGBS}/{name}/status", _status(i), MERGE)
                for i, name in enumerate(names)
            ])  # fmt: skip
            async with _watching(http, base, None, EGBS), _watching(http, base, None, EGBS) as seen:
                await _priced(cp, "egb status patch, 2 watches", [
                    functools.partial(_send, http, "PATCH", f"{base}{EGBS}/{name}/status", _status(-i), MERGE)
                    for i, name in enumerate(names)
                ])  # fmt: skip
            print(f"each resource watch saw {seen[0]} events")
            await _priced(cp, "egb annotation patch", [
                functools.partial(_send, http, "PATCH", f"{base}{EGBS}/{name}", _annotation(i), MERGE)
                for i, name in enumerate(names)
            ])  # fmt: skip
            events = f"{base}/api/v1/namespaces/{EVENT_NAMESPACE}/events"
            await _priced(cp, "event create", [
                functools.partial(_send, http, "POST", events, _event(r, i)) for i, r in enumerate(resources)
            ])  # fmt: skip
            cms = f"{base}/api/v1/namespaces/default/configmaps"
            await _many([
                functools.partial(_send, http, "POST", cms, {"metadata": {"name": name}, "data": {}})
                for name in names
            ])  # fmt: skip
            await _priced(cp, "configmap patch", [
                functools.partial(_send, http, "PATCH", f"{cms}/{name}", {"data": {"i": str(i)}}, MERGE)
                for i, name in enumerate(names)
            ])  # fmt: skip
            await _bare_status_patches(cp, http, base, resources)
    assert set(FIGURES) >= {"rb create", "egb status patch", "egb annotation patch", "bare status patch"}
