"""What every adapter makes of a create the provider refuses, rate-limits, fails or never answers: which
calls it repeats (and how long it waits), which it never sends twice, and what the member is told."""

from __future__ import annotations

import dataclasses
import logging

import httpx
import pytest

from bot.errors import (
    AuthError,
    BadInputError,
    ErrorCategory,
    OutOfCreditError,
    ProviderError,
    RateLimitedError,
    SubmitUncertainError,
    TransientError,
)
from bot.models import UpdateStatus
from bot.providers.base import Provider
from bot.testing.providers import Chaos
from tests.providers.helpers import (
    ADAPTERS,
    HANG_TIMEOUT,
    NB2,
    SYNCHRONOUS,
    Adapter,
    Fake,
    SleepRecorder,
    assert_user_safe,
    req,
    run_to_end,
)

# How each adapter's fake limits the rate, so what the adapter reports and waits: adapter -> (bounds of
# the retry_after it reports, None where the provider names no wait; bounds of each wait it sleeps).
PACING: dict[str, tuple[tuple[float, float] | None, tuple[float, float]]] = {
    "seaart": ((1.0, 1.0), (1.0, 20.0)),  # Retry-After: 1, a floor under the backoff
    "kie": (None, (0.0, 20.0)),  # no Retry-After: the backoff alone
    "sinancode": ((1.0, 1.0), (1.0, 20.0)),
    "segmind_v1": ((1.0, 2.0), (1.0, 2.0)),  # x-rate-limit-reset-at-utc, 2 s ahead
    "segmind_v2": ((1.0, 2.0), (1.0, 2.0)),
    "gemini": ((3.0, 3.0), (3.0, 3.0)),  # RetryInfo.retryDelay "3s"
}
# Words an error's detail (for the logs) and message (for the member) carry, per adapter and case.
DETAIL = {
    ("gemini", "rate_limited"): "RESOURCE_EXHAUSTED",
    ("gemini", "out_of_credit"): "FAILED_PRECONDITION",
    ("seaart", "wrong_key"): "UNAUTHORIZED",
    ("segmind_v1", "wrong_key"): "invalid",
    ("segmind_v2", "wrong_key"): "invalid",
    ("gemini", "wrong_key"): "PERMISSION_DENIED",
}
MESSAGE = {
    ("gemini", "out_of_credit"): "billing",
    ("gemini", "server_error"): "temporary failure",  # 500 INTERNAL; its 503 is tests/providers/test_gemini.py's
}


def assert_words(adapter: Adapter, case: str, error: ProviderError) -> None:
    assert DETAIL.get((adapter.id, case), "") in error.detail
    assert MESSAGE.get((adapter.id, case), "") in error.user_message


def assert_waits(adapter: Adapter, sleeps: SleepRecorder, count: int) -> None:
    low, high = PACING[adapter.id][1]
    assert len(sleeps.delays) == count and all(low <= d <= high for d in sleeps.delays), sleeps.delays


# ---- retried, then accepted --------------------------------------------------------------------------


async def test_rate_limited_once_then_accepted(
    adapter: Adapter, fake: Fake, provider: Provider, sleeps: SleepRecorder
) -> None:
    fake.script("rate_limited")
    handle = await provider.submit(req())
    assert len(fake.creates) == 2 and list(fake.jobs) == [handle.provider_job_id]
    assert_waits(adapter, sleeps, 1)
    assert (await run_to_end(provider, handle))[-1].status is UpdateStatus.SUCCEEDED


@pytest.mark.parametrize("times", [1, 2])
async def test_server_errors_are_retried(fake: Fake, provider: Provider, sleeps: SleepRecorder, times: int) -> None:
    fake.script(*["server_error"] * times)
    handle = await provider.submit(req())
    assert len(fake.creates) == times + 1 and list(fake.jobs) == [handle.provider_job_id]
    assert len(sleeps.delays) == times
    assert (await run_to_end(provider, handle))[-1].status is UpdateStatus.SUCCEEDED


# ---- retried until the attempts run out --------------------------------------------------------------


EXHAUSTED: dict[str, type[ProviderError]] = {"rate_limited": RateLimitedError, "server_error": TransientError}


@pytest.mark.parametrize(("outcome", "error_type"), list(EXHAUSTED.items()), ids=list(EXHAUSTED))
async def test_retried_until_the_attempts_run_out(
    adapter: Adapter,
    fake: Fake,
    provider: Provider,
    sleeps: SleepRecorder,
    outcome: str,
    error_type: type[ProviderError],
) -> None:
    fake.script(*[outcome] * 4)
    with pytest.raises(error_type) as info:
        await provider.submit(req())
    error = info.value
    assert error.category is (ErrorCategory.RATE_LIMITED if outcome == "rate_limited" else ErrorCategory.TRANSIENT)
    assert_user_safe(error.user_message, fake)
    assert_words(adapter, outcome, error)
    assert len(fake.creates) == 4 and fake.jobs == {} and len(sleeps.delays) == 3
    if isinstance(error, RateLimitedError):
        assert error.status_code == 429
        assert_waits(adapter, sleeps, 3)
        hinted = PACING[adapter.id][0]
        if hinted is None:
            assert error.retry_after is None
        else:
            assert error.retry_after is not None and hinted[0] <= error.retry_after <= hinted[1]


async def test_a_chaos_429_speaks_each_providers_dialect_and_the_adapter_reads_its_wait(
    adapter: Adapter, fake: Fake, provider: Provider
) -> None:
    """The soak's 429 fault (bot/testing/providers/_base.py Chaos) is each provider's own rate-limit
    answer: Retry-After (SeaArt, sinancode), a reset time (Segmind), RetryInfo (Gemini), nothing (Kie)."""
    fake.chaos = Chaos(rate=1.0, faults=("429",), retry_after="7")
    with pytest.raises(RateLimitedError) as info:
        await provider.submit(req())
    assert info.value.status_code == 429 and fake.jobs == {}
    if adapter.id == "kie":
        assert info.value.retry_after is None
    else:
        assert info.value.retry_after is not None and 5 <= info.value.retry_after <= 7


# ---- refused: never retried --------------------------------------------------------------------------

REFUSED: dict[str, type[ProviderError]] = {
    "auth": AuthError,
    "out_of_credit": OutOfCreditError,
    "bad_input": BadInputError,
}
# SeaArt's queue takes any well-formed request; a bad one fails as a job (tests/contract/test_job_outcomes.py).
REFUSALS = [(a, o) for a in ADAPTERS for o in REFUSED if (a, o) != ("seaart", "bad_input")]


@pytest.mark.parametrize(("adapter", "outcome"), REFUSALS, indirect=["adapter"])
async def test_create_refusals_are_not_retried(
    adapter: Adapter,
    fake: Fake,
    provider: Provider,
    sleeps: SleepRecorder,
    outcome: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.script(outcome)
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as info:
        await provider.submit(req())
    error = info.value
    assert type(error) is REFUSED[outcome] and error.provider == adapter.name
    assert error.category is ErrorCategory(outcome)
    assert_user_safe(error.user_message, fake)
    assert_words(adapter, outcome, error)
    assert fake.api_key not in error.detail and fake.api_key not in caplog.text
    assert len(fake.creates) == 1 and fake.jobs == {} and sleeps.delays == []


async def test_wrong_key_is_rejected_and_never_logged(
    adapter: Adapter, fake: Fake, client: httpx.AsyncClient, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    provider = adapter.connect(fake, client, sleeps, api_key="wrong-key-1234")
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        await provider.submit(req())
    assert_words(adapter, "wrong_key", info.value)
    assert "wrong-key-1234" not in info.value.detail and "wrong-key-1234" not in caplog.text
    assert fake.jobs == {} and len(fake.creates) == 1 and sleeps.delays == []


async def test_what_the_api_refuses_is_bad_input(fake: Fake, provider: Provider) -> None:
    # A model entry that lets through what the real API refuses shows the refusal mapped end to end.
    provider.models[NB2] = dataclasses.replace(provider.models[NB2], aspect_ratios=("7:3",))
    with pytest.raises(BadInputError) as info:
        await provider.submit(req(aspect_ratio="7:3"))
    assert_user_safe(info.value.user_message, fake)
    assert "aspect_ratio" in info.value.detail
    assert len(fake.creates) == 1


# ---- an answer lost after the job was made: uncertain, never sent again -----------------------------

LOST = [(a, "create_hang") for a in ADAPTERS] + [(a, "never_finish") for a in SYNCHRONOUS]


@pytest.mark.parametrize(("adapter", "outcome"), LOST, indirect=["adapter"])
async def test_a_lost_answer_is_uncertain_and_never_resent(
    adapter: Adapter, fake: Fake, client: httpx.AsyncClient, sleeps: SleepRecorder, outcome: str
) -> None:
    provider = adapter.connect(fake, client, sleeps, timeout=HANG_TIMEOUT)
    fake.script(outcome)
    with pytest.raises(SubmitUncertainError) as info:
        await provider.submit(req())
    assert info.value.category is ErrorCategory.UNCERTAIN
    assert len(fake.creates) == 1 and len(fake.jobs) == 1  # made (and billed) upstream, never sent twice
    assert sleeps.delays == []
