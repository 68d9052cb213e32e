"""The request budget every request to a provider waits on (bot/budget.py) pauses that provider on what its
adapter reads as a rate limit, for the wait it asked: Kie's HTTP 200 carrying code 429 (docs/providers.md
4.1, 8.3) and Segmind's 429 whose only wait is its ``x-rate-limit-reset-at-utc`` header (5.4). Against the
fakes over a real socket, the budget hooked on the real httpx client as bot/app.py hooks it, on a clock the
test moves (each create is tried once, so nothing waits in the hook)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.budget import MAX_RETRY_AFTER_SECONDS, BudgetHook, RequestBudget, origin_of
from bot.errors import RateLimitedError
from bot.providers._http import RetryPolicy
from bot.providers.kie import KieProvider
from bot.providers.segmind import SegmindProvider
from bot.testing.providers import FakeKie, FakeSegmind
from tests.conftest import Clock
from tests.providers.helpers import TIMEOUT, SleepRecorder, req

ONCE = RetryPolicy(max_attempts=1)


@contextlib.asynccontextmanager
async def metered(base_url: str, budget: RequestBudget) -> AsyncIterator[httpx.AsyncClient]:
    hook = BudgetHook({origin_of(base_url): budget})
    hooks = {"request": [hook], "response": [hook.on_response]}
    async with httpx.AsyncClient(timeout=TIMEOUT, event_hooks=hooks) as client:
        yield client


async def test_kie_s_rate_limit_in_a_200_pauses_every_request_to_kie() -> None:
    # Before, the hook saw an HTTP 200, called the provider recovered, and nothing paused: every job asked again.
    clock = Clock(1000.0)
    budget = RequestBudget(10, clock=clock)
    async with FakeKie(flavour="kie") as fake, metered(fake.base_url, budget) as client:
        provider = KieProvider(
            api_key=fake.api_key, base_url=fake.base_url, client=client, policy=ONCE, sleep=SleepRecorder()
        )
        fake.script("http200:429", "http200:429")
        with pytest.raises(RateLimitedError):
            await provider.submit(req())
        assert budget.paused_for() == 1.0 and budget.room() == 0  # no wait named: the first backoff step
        clock.now += 1.0
        # The probe gets the same answer: paused again, twice as long (its 200 did not reset the backoff).
        with pytest.raises(RateLimitedError):
            await provider.submit(req())
        assert budget.paused_for() == 2.0 and budget.room() == 0
        clock.now += 2.0
        await provider.submit(req())  # accepted: the pause ends for everyone
        assert budget.paused_for() == 0.0 and budget.room() == 9
    assert len(fake.creates) == 3


async def test_segmind_s_reset_header_pauses_every_request_for_the_wait_it_names() -> None:
    # Before, the hook found no Retry-After and paused a second, whatever the reset header said.
    clock = Clock(1000.0)
    budget = RequestBudget(10, clock=clock)
    async with FakeSegmind(reset_seconds=45.0) as fake, metered(fake.base_url, budget) as client:
        provider = SegmindProvider(
            api_key=fake.api_key, base_url=fake.base_url, client=client, policy=ONCE, sleep=SleepRecorder()
        )
        fake.script("rate_limited")
        with pytest.raises(RateLimitedError) as info:
            await provider.submit(req())
        asked = info.value.retry_after
        assert asked is not None and 40.0 < asked <= 45.0
        assert budget.paused_for() == pytest.approx(asked) and budget.room() == 0
        # A reset an hour away is obeyed for a minute at most; then one request asks again.
        clock.now += asked
        fake.reset_seconds = 3600.0
        fake.script("rate_limited")
        with pytest.raises(RateLimitedError):
            await provider.submit(req())
        assert budget.paused_for() == MAX_RETRY_AFTER_SECONDS
