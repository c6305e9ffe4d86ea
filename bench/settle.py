"""Waiting for an operator's writes to stop, so an idle window never starts while writes still arrive.

"Every resource Ready" is not "done writing": kopf patches its own annotations (last-handled
configuration, progress) after the handler's status write, 40 or more of them after the last
status at 1,000 resources (issue 17 point 8). An idle window opened at "all Ready" counted those
as idle writes. `wait_quiet` polls a counter until it has not moved for a quiet period, a
condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.proc import cpu_seconds

# kopf's peering heartbeat is a write of its own, on its own clock, whatever the operator does.
NOT_PEERING = r"^(?!.*kopfpeerings/)"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


# The operator is settled when its CPU stays below this share of a core for SETTLE_QUIET seconds.
SETTLE_SHARE = 0.05
SETTLE_QUIET = 3.0


class NeverQuiet(AssertionError):
    """The counter kept moving until the deadline."""


def wait_quiet(
    count: Callable[[], int], *, quiet: float, timeout: float, what: str, poll: float = 0.25
) -> float:
    """Return once `count()` has not changed for `quiet` seconds; the seconds waited in all.

    Raises NeverQuiet after `timeout` seconds, naming `what` and the last value."""
    began = time.monotonic()
    last, since = count(), began
    while True:
        now = time.monotonic()
        if now - since >= quiet:
            return now - began
        if now - began >= timeout:
            raise NeverQuiet(f"{what} still moving after {timeout:.0f}s (last {last})")
        time.sleep(poll)
        value = count()
        if value != last:
            last, since = value, time.monotonic()


def cpu_settle(pid: int, started: float, timeout: float = 600.0) -> tuple[float, float]:
    """(seconds from `started` to the start of the first window of SETTLE_QUIET seconds in which
    process `pid` used under SETTLE_SHARE of a core, its CPU-seconds at that start): how long a
    resume or a burst kept the operator busy, sampled from /proc, with a deadline."""
    window: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now, cpu = time.monotonic(), cpu_seconds(pid)
        window.append((now, cpu))
        old = [w for w in window if now - w[0] >= SETTLE_QUIET]
        if old and now - started > SETTLE_QUIET:
            t0, c0 = old[-1]
            if (cpu - c0) / (now - t0) < SETTLE_SHARE:
                return t0 - started, c0
        time.sleep(0.25)  # sampling /proc at a fixed rate, bounded by the deadline
    raise AssertionError(f"the operator did not settle within {timeout:.0f}s")
