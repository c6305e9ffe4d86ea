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

# kopf's peering heartbeat is a write of its own, on its own clock, whatever the operator does.
NOT_PEERING = r"^(?!.*kopfpeerings/)"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


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
