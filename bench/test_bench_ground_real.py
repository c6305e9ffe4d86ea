"""Benchmark (make bench): where the real control plane's create time goes at 20,000 (issue 17 point 1).

test_bench_ground measures the real control plane's RoleBinding create rate at 20,000 at about
0.7 of its rate at 1,000, where the sandbox holds 0.87. Is that cost ours (this benchmark's
client, how many requests are in flight, the harness's settings: the audit log written in
blocking mode for request counts, etcd) or the server's? Each variant runs on a control plane of
its own (tests.controlplane, etcd with --unsafe-no-fsync as in every test run here: acceptable
for a benchmark, since durability is not what is measured):

- `harness`: as the tests run it, every request audited (blocking mode, JSON lines);
- `no-audit`: kube-apiserver without the audit log;
- `no-audit-no-owners`: and bindings without an ownerReference, so the garbage collector's graph
  builder does no work per binding.

For each, 1,000 then 20,000 creates (16 in flight, 20 namespaces) and the CPU seconds per 1,000
creates of each process (kube-apiserver, etcd, kube-controller-manager, and this benchmark's
client), from /proc. Prints figures only.
"""

from __future__ import annotations

import base64
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from tests.controlplane.harness import ControlPlane

from bench.proc import cpu_seconds
from bench.table import Table
from bench.test_bench_ground import SIZES, TARGET_RATIO, _create_bindings

pytestmark = pytest.mark.bench
VARIANTS = {
    "harness": ((), True),
    "no-audit": (("--audit-log-path=",), True),  # the last flag wins: no audit backend
    "no-audit-no-owners": (("--audit-log-path=",), False),
}
FIGURES: dict[str, dict[int, tuple[float, dict[str, float]]]] = {}


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    yield
    table = Table("bench ground real", "where the time goes: creates/s, CPU seconds per 1,000 creates")
    for variant, sizes in FIGURES.items():
        for size, (rate, cpu) in sorted(sizes.items()):
            split = ", ".join(f"{name} {seconds:.2f}" for name, seconds in cpu.items())
            table.add(f"{variant} {size:,} creates", f"{rate:.0f}/s", baseline=split)
        small, large = sizes.get(SIZES[0]), sizes.get(SIZES[1])
        if small and large:
            ratio = large[0] / small[0]
            table.add(f"{variant} rate at 20,000 / at 1,000", f"{ratio:.2f}", target=f">= {TARGET_RATIO}",
                      ok=ratio >= TARGET_RATIO)  # fmt: skip
    table.print()


def _context(cp: ControlPlane, folder: Path) -> ssl.SSLContext:
    user = yaml.safe_load(cp.admin_kubeconfig.read_text(encoding="utf-8"))["users"][0]["user"]
    cert, key = folder / "admin.crt", folder / "admin.key"
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    context = ssl.create_default_context(cafile=str(cp.ca_file))
    context.load_cert_chain(str(cert), str(key))
    return context


def _cpu(cp: ControlPlane) -> dict[str, float]:
    found = {Path(f"/proc/{pid}/comm").read_text().strip(): cpu_seconds(pid) for pid in cp.pids}
    found["client"] = time.process_time()
    return found


@pytest.mark.parametrize("variant", VARIANTS)
async def test_bench_real_ground_where_the_time_goes(variant: str, tmp_path: Path) -> None:
    args, owned = VARIANTS[variant]
    with ControlPlane(workdir=tmp_path / "cp", apiserver_args=args) as cp:
        connector = aiohttp.TCPConnector(limit=0, ssl=_context(cp, tmp_path))
        async with aiohttp.ClientSession(connector=connector) as http:
            for count in SIZES:
                before = _cpu(cp)
                rate = await _create_bindings(http, cp.url, f"n{count}", count, owned=owned)
                after = _cpu(cp)
                per_thousand = {name: 1000 * (after[name] - before[name]) / count for name in after}
                FIGURES.setdefault(variant, {})[count] = (rate, per_thousand)
                print(
                    f"\nBENCH ground real {variant}: {count} creates at {rate:.0f}/s, CPU/1000 {per_thousand}"
                )
