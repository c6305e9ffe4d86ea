"""The adapters' one retry policy: how long each pause is, and when the budget is spent."""

from __future__ import annotations

import pytest

from entra_rbac.adapters.retry import RetryPolicy


def pauses(policy: RetryPolicy, retry_afters: list[float | None]) -> list[float | None]:
    budget = policy.budget()
    return [budget.next_pause(retry_after) for retry_after in retry_afters]


@pytest.mark.parametrize(
    ("policy", "retry_afters", "expected"),
    [
        # Kubernetes' numbers: backoff 0.2 s doubling, three pauses at most.
        (RetryPolicy(3, 10.0, 0.2), [None, None, None, None], [0.2, 0.4, 0.8, None]),
        # The server's Retry-After wins, and the backoff still doubles behind it.
        (RetryPolicy(3, 10.0, 0.2), [2.0, None, 2.0], [2.0, 0.4, 2.0]),
        # A pause longer than what is left of the wait fails now instead of blocking.
        (RetryPolicy(3, 10.0, 0.2), [60.0], [None]),
        (RetryPolicy(5, 5.0, 0.5), [3.0, 3.0, 1.0], [3.0, None, 1.0]),
        # Graph's numbers: backoff 0.5 s doubling up to 8 s.
        (RetryPolicy(6, 100.0, 0.5, max_backoff=8.0), [None] * 6, [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]),
        (RetryPolicy(0, 100.0, 0.5), [None], [None]),
    ],
)
def test_each_pause_within_the_budget_and_none_once_it_is_spent(
    policy: RetryPolicy, retry_afters: list[float | None], expected: list[float | None]
) -> None:
    assert pauses(policy, retry_afters) == expected


def test_every_call_gets_a_budget_of_its_own() -> None:
    policy = RetryPolicy(1, 10.0, 0.2)
    first = policy.budget()
    assert first.next_pause(None) == 0.2
    assert first.next_pause(None) is None
    assert policy.budget().next_pause(None) == 0.2
