"""The one retry policy of both adapters: how often, and how long in all, a failed call is retried.

Holds `RetryPolicy` (the numbers) and `RetryBudget` (one logical call's allowance, spent pause by
pause). The budget only says how long to pause, or that it is time to give up; the caller
sleeps (the Kubernetes transport in its worker thread, the Graph caller on the event loop).
Pure: no I/O, no clock, no sleeping.

Written here rather than taken from tenacity: tenacity sleeps for the caller and bounds the
total by the wall-clock time elapsed, while both adapters need a bound on the pauses they are
about to take (a `Retry-After` longer than what is left fails now rather than blocks), one
budget shared by a `$batch` and the items it re-sends, and the same rule for a synchronous and
an asynchronous caller. That is the twenty lines below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """At most `retries` pauses and `max_wait` seconds of pausing for one logical call.

    A pause is the server's `Retry-After` when it gave one, otherwise an exponential backoff
    from `first_backoff`, doubling after every pause up to `max_backoff`.
    """

    retries: int
    max_wait: float
    first_backoff: float
    max_backoff: float = math.inf

    def budget(self) -> RetryBudget:
        return RetryBudget(self)


class RetryBudget:
    """What is left of one call's allowance."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._pauses_left = policy.retries
        self._wait_left = policy.max_wait
        self._backoff = policy.first_backoff
        self._max_backoff = policy.max_backoff

    def next_pause(self, retry_after: float | None) -> float | None:
        """Seconds to pause before the next attempt, or None when the budget is spent."""
        delay = retry_after if retry_after is not None else self._backoff
        if self._pauses_left <= 0 or delay > self._wait_left:
            return None
        self._pauses_left -= 1
        self._wait_left -= delay
        self._backoff = min(self._backoff * 2, self._max_backoff)
        return delay

    def spend(self, delay: float) -> bool:
        """Charge a wait not caused by this call (another call's throttle): False if it does not fit."""
        if delay > self._wait_left:
            return False
        self._wait_left -= delay
        return True
