"""What one refresh costs, told apart from everything else an idle operator does meanwhile.

An idle window of two refresh intervals holds two or three refreshes (the refresher runs each
resource every interval, starting a batch as soon as one is due, so the batches are not aligned
with the window), and between them the delta follower's rounds, the refresher's ticks and kopf.
Dividing the window's CPU or Graph lookups by two counts neither (issue 17 points 4 and 5).

Here a refresh is found where it shows: a run of Graph lookups (getByIds, $batch, member pages)
with no gap over `GAP` seconds between them. Its CPU is what the operator spent from just before
its first lookup until `TAIL` seconds after its last (the reconciles that follow read the cache),
above the operator's own background rate in the rest of the window (the median of its sampled
CPU rate), so the delta follower and ticks are not charged to it.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.proc import cpu_seconds

GAP = 10.0  # seconds between two lookups of one refresh at most (a batch takes well under one)
LEAD = 1.0  # seconds before a refresh's first lookup charged to it (the batch being gathered)
TAIL = 15.0  # seconds after its last lookup charged to it (its reconciles)


def batches(times: Iterable[float], gap: float = GAP) -> list[tuple[float, float, int]]:
    """Runs of `times` (monotonic seconds) with no gap over `gap`: (first, last, count) each."""
    runs: list[tuple[float, float, int]] = []
    for t in sorted(times):
        if runs and t - runs[-1][1] <= gap:
            first, _, count = runs[-1]
            runs[-1] = (first, t, count + 1)
        else:
            runs.append((t, t, 1))
    return runs


@dataclass
class CpuSampler:
    """Samples a process's CPU time every `every` seconds in a thread (reads /proc only: the
    operator and its servers see nothing of it)."""

    pid: int
    every: float = 0.5
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> CpuSampler:
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), cpu_seconds(self.pid)))
            if self._stop.wait(self.every):
                self.samples.append((time.monotonic(), cpu_seconds(self.pid)))
                return

    def cpu_between(self, start: float, end: float) -> float:
        """CPU-seconds between the samples nearest `start` and `end`."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        return inside[-1][1] - inside[0][1] if len(inside) > 1 else 0.0

    def background(self, busy: list[tuple[float, float]]) -> float:
        """The median CPU rate (CPU-seconds per second) of the sample steps outside `busy`."""
        rates = [
            (c1 - c0) / (t1 - t0)
            for (t0, c0), (t1, c1) in zip(self.samples, self.samples[1:], strict=False)
            if t1 > t0 and not any(b0 <= t1 and t0 <= b1 for b0, b1 in busy)
        ]
        return statistics.median(rates) if rates else 0.0


@dataclass(frozen=True)
class Refreshes:
    """The refreshes found in a window: their count, Graph lookups and CPU each."""

    lookups: list[int]
    cpu: list[float]

    @property
    def count(self) -> int:
        return len(self.lookups)


def refreshes(lookup_times: Iterable[float], sampler: CpuSampler, window: tuple[float, float]) -> Refreshes:
    """The refreshes whose lookups fall in `window`, with the CPU each cost above the background.

    A batch cut by the window's edge is left out (its lookups or its reconciles are partly outside)."""
    start, end = window
    found = batches(t for t in lookup_times if start <= t <= end)
    whole = [b for b in found if b[0] - LEAD >= start and b[1] + TAIL <= end]
    spans = [(first - LEAD, last + TAIL) for first, last, _ in whole]
    rate = sampler.background([(first - LEAD, last + TAIL) for first, last, _ in found])
    cpu = [max(0.0, sampler.cpu_between(s, e) - rate * (e - s)) for s, e in spans]
    return Refreshes([count for _, _, count in whole], cpu)
