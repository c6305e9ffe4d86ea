"""GraphCaller helpers: the retry budget is bounded; errors never carry secrets or tokens."""

from __future__ import annotations

import pytest

from entra_rbac.adapters.directory.graph import RetryBudget, redact


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_budget_honours_retry_after_until_count_is_spent() -> None:
    sleeps = Sleeps()
    budget = RetryBudget(max_retries=2, max_wait=100, sleep=sleeps)
    assert await budget.pause(3)
    assert await budget.pause(4)
    assert not await budget.pause(1)
    assert sleeps.slept == [3, 4]


async def test_budget_refuses_a_wait_beyond_the_total_bound() -> None:
    sleeps = Sleeps()
    budget = RetryBudget(max_retries=5, max_wait=10, sleep=sleeps)
    assert await budget.pause(6)
    assert not await budget.pause(5)
    assert sleeps.slept == [6]


async def test_budget_backs_off_exponentially_without_retry_after() -> None:
    sleeps = Sleeps()
    budget = RetryBudget(max_retries=3, max_wait=100, sleep=sleeps)
    for _ in range(3):
        assert await budget.pause(None)
    assert sleeps.slept == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    "text",
    [
        "AADSTS7000215: Invalid client secret provided: hunter2-secret-value",
        "Authorization: Bearer abc.def.ghi",
        "token eyJ0eXAiOiJKV1QiLCJhbGciOi.eyJhdWQiOiJodHRwczovL2dyYXBo.c2lnbmF0dXJl rejected",
    ],
)
def test_redact_removes_secrets_and_tokens(text: str) -> None:
    cleaned = redact(text, ["hunter2-secret-value", None])
    for leaked in ("hunter2-secret-value", "abc.def.ghi", "eyJ0eXAiOiJKV1Qi"):
        assert leaked not in cleaned
