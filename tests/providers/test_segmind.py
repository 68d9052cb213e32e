"""SegmindProvider (v1 and v2) against FakeSegmind over a real socket, with the real httpx client."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, UnidentifiedImageError

from bot.errors import (
    AuthError,
    BadInputError,
    ConfigError,
    ContentBlockedError,
    ErrorCategory,
    InvalidRequestError,
    OutOfCreditError,
    ProviderError,
    RateLimitedError,
    SubmitUncertainError,
    TransientError,
)
from bot.models import GenerationRequest, JobHandle, JobUpdate, ReferenceImage, UpdateStatus
from bot.prompts import clean_prompt
from bot.providers._http import RetryPolicy
from bot.providers.base import Provider, validate
from bot.providers.segmind import (
    SEGMIND_MODELS,
    SegmindProvider,
    find_images,
    reset_seconds,
    segmind_models,
)
from bot.testing.providers._base import make_png
from bot.testing.providers.segmind import SEGMIND_OUTCOMES, FakeSegmind, validate_body

from .conftest import HANG_TIMEOUT, TIMEOUT, SleepRecorder

NB2 = "nano_banana_2"
PRO = "nano_banana_pro"

PROMPT = "A red apple on a white table, clean studio lighting."
MODES = ("v1", "v2")


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeSegmind]:
    async with FakeSegmind(queued_polls=1, running_polls=1, hang_seconds=10.0) as server:
        yield server


def make(
    fake: FakeSegmind,
    client: httpx.AsyncClient,
    sleeps: SleepRecorder,
    mode: str,
    timeout: httpx.Timeout = TIMEOUT,
) -> SegmindProvider:
    assert mode in ("v1", "v2")
    return SegmindProvider(
        api_key=fake.api_key,
        base_url=fake.base_url,
        client=client,
        policy=RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=20.0),
        timeout=timeout,
        sleep=sleeps,
        mode="v1" if mode == "v1" else "v2",
    )


@pytest.fixture(params=MODES)
def provider(
    request: pytest.FixtureRequest, fake: FakeSegmind, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> SegmindProvider:
    return make(fake, client, sleeps, request.param)


@pytest.fixture
def v1(fake: FakeSegmind, client: httpx.AsyncClient, sleeps: SleepRecorder) -> SegmindProvider:
    return make(fake, client, sleeps, "v1")


@pytest.fixture
def v2(fake: FakeSegmind, client: httpx.AsyncClient, sleeps: SleepRecorder) -> SegmindProvider:
    return make(fake, client, sleeps, "v2")


def ref(n: int, content_type: str = "image/png") -> ReferenceImage:
    return ReferenceImage(
        url=f"https://cdn.example.test/ref-{n}.png",
        content_type=content_type,
        size=1000,
        filename=f"r{n}.png",
    )


def req(model: str = NB2, **kw: Any) -> GenerationRequest:
    return GenerationRequest(model=model, prompt=kw.pop("prompt", PROMPT), **kw)


async def run_to_end(provider: SegmindProvider, handle: JobHandle, max_polls: int = 10) -> list[JobUpdate]:
    updates = []
    for _ in range(max_polls):
        update = await provider.poll(handle)
        updates.append(update)
        if update.status not in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            break
    return updates


async def final(provider: SegmindProvider, request: GenerationRequest | None = None) -> JobUpdate:
    return (await run_to_end(provider, await provider.submit(request or req())))[-1]


def assert_user_safe(message: str | None, fake: FakeSegmind) -> None:
    assert message, "every failure needs a user-facing message"
    assert "http" not in message.lower() and "127.0.0.1" not in message and "segmind.com" not in message
    assert fake.api_key not in message
    assert "{" not in message  # no raw JSON


def picture_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()
        return picture.size


# --- the provider as a whole ---------------------------------------------------------------------


def test_capabilities_are_data() -> None:
    nb2, pro = SEGMIND_MODELS[NB2], SEGMIND_MODELS[PRO]
    assert (nb2.provider_model, pro.provider_model) == ("nano-banana-2", "nano-banana-pro")
    assert (nb2.seed, nb2.web_search, nb2.safety_knob) == (True, True, True)
    assert nb2.thinking_levels == ("minimal", "high") and nb2.output_formats == ("jpg", "png")
    assert len(nb2.aspect_ratios) == 15 and "auto" in nb2.aspect_ratios
    assert nb2.resolutions == ("512", "1K", "2K", "4K") and nb2.max_reference_images == 14
    assert (pro.seed, pro.web_search, pro.safety_knob, pro.thinking_levels) == (False, False, False, ())
    assert len(pro.aspect_ratios) == 10 and "auto" not in pro.aspect_ratios
    assert pro.resolutions == ("1K", "2K", "4K") and pro.output_formats == ("jpg", "png")
    assert [nb2.price(r) for r in ("512", "1K", "2K", "4K", None)] == [
        60_000,
        80_000,
        120_000,
        160_000,
        80_000,
    ]
    assert [pro.price(r) for r in ("1K", "2K", "4K")] == [150_000, 150_000, 250_000]


async def test_queued_depends_on_the_mode_per_instance(v1: SegmindProvider, v2: SegmindProvider) -> None:
    assert not any(c.queued for c in v1.models.values())
    assert all(c.queued for c in v2.models.values())
    assert all(c.queued for c in SEGMIND_MODELS.values())  # the shared table is untouched
    assert v1.models is not v2.models and segmind_models("v1") == v1.models


async def test_implements_the_provider_protocol(provider: SegmindProvider, fake: FakeSegmind) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == "segmind"
    assert set(provider.models) == {NB2, PRO}
    assert fake.api_key not in repr(provider)
    await provider.aclose()


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"api_key": "  "}, "segmind.api_key"),
        ({"api_key": "SG_ab cd"}, "segmind.api_key"),
        ({"api_key": "SG_x", "base_url": "api.segmind.com"}, "segmind.base_url"),
        ({"api_key": "SG_x", "mode": "v3"}, "segmind.mode"),
    ],
)
async def test_bad_settings_are_config_errors(client: httpx.AsyncClient, kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        SegmindProvider(client=client, **kwargs)
    assert info.value.setting == setting


# --- what the provider sends ---------------------------------------------------------------------


async def test_minimal_request(provider: SegmindProvider, fake: FakeSegmind) -> None:
    handle = await provider.submit(req())
    (create,) = fake.creates
    assert create.path == f"/{provider.mode}/nano-banana-2"
    assert create.headers["x-api-key"] == fake.api_key
    assert "Authorization" not in create.headers
    assert create.headers["Content-Type"] == "application/json"
    # The default size is ordered explicitly; everything the member left unset is left out.
    assert create.json == {
        "prompt": PROMPT,
        "output_resolution": "1K",
        "response_modalities": "TEXT_AND_IMAGE",
    }
    assert handle.provider == "segmind" and handle.model == NB2
    assert handle.provider_job_id in fake.jobs and handle.extra["mode"] == provider.mode
    if provider.mode == "v2":
        assert handle.ready is None
        assert handle.extra["status_url"] == f"{fake.origin}/v2/requests/{handle.provider_job_id}/status"
    else:
        assert handle.ready is not None and handle.ready.status is UpdateStatus.SUCCEEDED


async def test_every_nb2_field(provider: SegmindProvider, fake: FakeSegmind) -> None:
    await provider.submit(
        req(
            reference_images=(ref(1), ref(2)),
            aspect_ratio="auto",
            resolution="512",
            seed=420875,
            output_format="png",
            thinking_level="high",
            web_search=True,
            safety_tolerance=2,
        )
    )
    assert fake.creates[0].json == {
        "prompt": PROMPT,
        "image_urls": ["https://cdn.example.test/ref-1.png", "https://cdn.example.test/ref-2.png"],
        "aspect_ratio": "auto",
        "output_resolution": "512px",
        "output_format": "png",
        "seed": 420875,
        "thinking_level": "high",
        "web_search": True,
        "safety_tolerance": 2,
        "response_modalities": "TEXT_AND_IMAGE",
    }


async def test_pro_sends_only_its_documented_fields(provider: SegmindProvider, fake: FakeSegmind) -> None:
    # Pro has no safety knob [S]: a moderator's level is left out rather than the job refused.
    await provider.submit(
        req(PRO, reference_images=tuple(ref(n) for n in range(14)), aspect_ratio="21:9", resolution="4K",
            output_format="jpg", safety_tolerance=1)
    )  # fmt: skip
    (create,) = fake.creates
    assert create.path == f"/{provider.mode}/nano-banana-pro"
    assert create.json is not None
    assert set(create.json) == {"prompt", "image_urls", "aspect_ratio", "output_resolution", "output_format"}
    assert (create.json["output_resolution"], len(create.json["image_urls"])) == ("4K", 14)


@pytest.mark.parametrize(
    ("model", "resolution", "value"),
    [(NB2, "512", "512px"), (NB2, "2K", "2K"), (NB2, "4K", "4K"), (PRO, None, "1K"), (PRO, "2K", "2K")],
)
async def test_resolution_names(
    v2: SegmindProvider, fake: FakeSegmind, model: str, resolution: str | None, value: str
) -> None:
    await v2.submit(req(model, resolution=resolution))
    assert fake.creates[0].json is not None and fake.creates[0].json["output_resolution"] == value


@pytest.mark.parametrize(
    "request_",
    [
        req(PRO, seed=7),
        req(PRO, thinking_level="minimal"),
        req(PRO, web_search=True),
        req(PRO, aspect_ratio="auto"),
        req(PRO, aspect_ratio="1:8"),
        req(PRO, resolution="512"),
        req(output_format="webp"),
        req(thinking_level="medium"),
        req(aspect_ratio="7:3"),
        req(prompt="x" * 5001),
        req(prompt="  \n "),
        req(reference_images=tuple(ref(n) for n in range(15))),
        req(reference_images=(ref(1, "application/pdf"),)),
        req(reference_images=(ReferenceImage(url="file:///etc/passwd", content_type="image/png", size=1),)),
        req("nano_banana_9"),
    ],
    ids=[
        "seed-pro", "thinking-pro", "search-pro", "auto-pro", "1:8-pro", "512-pro", "webp", "thinking-medium",
        "ratio", "long-prompt", "blank", "15-refs", "pdf-ref", "file-url", "model",
    ],
)  # fmt: skip
async def test_refusals_never_reach_the_provider(
    provider: SegmindProvider, fake: FakeSegmind, request_: GenerationRequest
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(request_)
    assert_user_safe(info.value.user_message, fake)
    assert fake.requests == []


async def test_refusal_names_what_is_supported(v2: SegmindProvider) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await v2.submit(req(PRO, thinking_level="high"))
    assert "thinking level" in info.value.user_message
    with pytest.raises(InvalidRequestError) as info:
        await v2.submit(req(PRO, resolution="512"))
    assert "1K, 2K, 4K" in info.value.user_message


# --- successes -----------------------------------------------------------------------------------


async def test_v1_answers_with_the_image_and_its_accounting(v1: SegmindProvider, fake: FakeSegmind) -> None:
    handle = await v1.submit(req(aspect_ratio="16:9", resolution="512", seed=420875))
    assert handle.ready is not None
    update = handle.ready
    assert update.status is UpdateStatus.SUCCEEDED and update.error_category is None
    (image,) = update.images
    assert image.url is None and image.content_type == "image/png" and image.data
    assert picture_size(image.data) == (512, 288)
    assert update.usage == {
        "cost_usd": "0.06",
        "remaining_credits": "99.94",
        "seed": 420875,
        "generation_time": 1.25,
        "request_id": handle.provider_job_id,
    }
    # poll() hands back the stored answer without another request.
    assert await v1.poll(handle) == update
    assert len(fake.requests) == 1
    # The handle survives storage as JSON (bytes travel as base64).
    stored = JobHandle.model_validate_json(handle.model_dump_json())
    assert stored.ready is not None and stored.ready.images[0].data == image.data


async def test_v2_queue_result_and_metrics(v2: SegmindProvider, fake: FakeSegmind, client: httpx.AsyncClient) -> None:
    handle = await v2.submit(req(PRO, aspect_ratio="3:4", resolution="4K"))
    updates = await run_to_end(v2, handle)
    assert [u.status for u in updates] == [UpdateStatus.QUEUED, UpdateStatus.RUNNING, UpdateStatus.SUCCEEDED]
    done = updates[-1]
    (image,) = done.images  # listed under both `output` and `images[]`, reported once
    assert image.url and image.data is None
    assert done.usage == {
        "cost_usd": "0.25",
        "remaining_credits": "99.75",
        "inference_time": 13.06,
        "queue_time": 0.42,
        "total_time": 13.48,
        "retry_count": 0,
    }
    job = fake.jobs[handle.provider_job_id]
    assert (job.polls, job.result_fetches) == (3, 1)
    paths = [r.path for r in fake.requests]
    assert paths[1:] == [f"/v2/requests/{handle.provider_job_id}/status"] * 3 + [
        f"/v2/requests/{handle.provider_job_id}"
    ]
    download = await client.get(image.url)
    assert "x-api-key" not in download.request.headers  # outputs are public links [S]
    assert picture_size(download.content) == (3072, 4096)


@pytest.mark.parametrize("outcome", ["v1_json_url", "v1_json_base64"])
async def test_v1_json_answers(v1: SegmindProvider, fake: FakeSegmind, client: httpx.AsyncClient, outcome: str) -> None:
    fake.script(outcome)
    update = await final(v1, req(aspect_ratio="4:1"))
    assert update.status is UpdateStatus.SUCCEEDED
    (image,) = update.images
    if outcome == "v1_json_url":
        assert image.url and image.data is None
        data = (await client.get(image.url)).content
    else:
        assert image.data and image.content_type == "image/png"
        data = image.data
    assert picture_size(data) == (1024, 256)
    assert update.usage["cost_usd"] == "0.08" and "remaining_credits" in update.usage


async def test_v2_base64_result(v2: SegmindProvider, fake: FakeSegmind) -> None:
    fake.script("v2_base64")
    update = await final(v2, req(aspect_ratio="1:1"))
    assert update.status is UpdateStatus.SUCCEEDED
    (image,) = update.images
    assert image.data and image.content_type == "image/png" and picture_size(image.data) == (1024, 1024)


async def test_no_image(provider: SegmindProvider, fake: FakeSegmind) -> None:
    fake.script("no_image")
    update = await final(provider)
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.NO_IMAGE)
    assert update.text == "I can't make that image."
    assert_user_safe(update.error_message, fake)


async def test_undecodable_image_is_left_to_delivery(
    provider: SegmindProvider, fake: FakeSegmind, client: httpx.AsyncClient
) -> None:
    fake.script("undecodable_image")
    update = await final(provider)
    assert update.status is UpdateStatus.SUCCEEDED
    (image,) = update.images
    data = image.data if image.data is not None else (await client.get(image.url or "")).content
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(data))


# --- job failures --------------------------------------------------------------------------------

JOB_FAILURES: dict[str, ErrorCategory] = {
    "content_blocked": ErrorCategory.CONTENT_BLOCKED,
    "transient_failure": ErrorCategory.TRANSIENT,
    "failed_422": ErrorCategory.TRANSIENT,
}


@pytest.mark.parametrize("outcome", sorted(JOB_FAILURES))
async def test_job_failures(provider: SegmindProvider, fake: FakeSegmind, outcome: str, sleeps: SleepRecorder) -> None:
    fake.script(outcome)
    handle = await provider.submit(req())
    updates = await run_to_end(provider, handle)
    last = updates[-1]
    assert (last.status, last.error_category) == (UpdateStatus.FAILED, JOB_FAILURES[outcome])
    assert last.images == [] and "cost_usd" not in last.usage  # failures are not billed [S]
    assert_user_safe(last.error_message, fake)
    assert last.error_detail and fake.api_key not in last.error_detail and "422" in last.error_detail
    assert len(fake.creates) == 1 and sleeps.delays == []
    assert fake.credits == Decimal("100")
    if provider.mode == "v2":
        assert [u.status for u in updates[:2]] == [UpdateStatus.QUEUED, UpdateStatus.RUNNING]


async def test_expired_record_fails_the_job(v2: SegmindProvider, fake: FakeSegmind) -> None:
    fake.script("expired_404")
    handle = await v2.submit(req())
    updates = await run_to_end(v2, handle)
    assert updates[0].status is UpdateStatus.QUEUED
    gone = updates[-1]
    assert (gone.status, gone.error_category) == (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)
    assert gone.error_message and "expire" in gone.error_message
    assert_user_safe(gone.error_message, fake)
    assert fake.jobs[handle.provider_job_id].polls == 1  # the 404 is answered by the fake, not retried
    assert len(fake.requests) == 3


async def test_expired_after_an_hour(v2: SegmindProvider, fake: FakeSegmind) -> None:
    handle = await v2.submit(req())
    fake.expire(handle.provider_job_id)
    update = await v2.poll(handle)
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)
    assert update.error_detail and "not found" in update.error_detail
    assert len(fake.requests) == 2


async def test_malformed(provider: SegmindProvider, fake: FakeSegmind, caplog: pytest.LogCaptureFixture) -> None:
    fake.script("malformed")
    handle = await provider.submit(req())
    if provider.mode == "v1":
        # The call ran (and was billed); its answer is unreadable, and asking again cannot help.
        update = await provider.poll(handle)
        assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)
        assert_user_safe(update.error_message, fake)
        assert update.error_detail and "IN_PROGR" in update.error_detail
        return
    with caplog.at_level(logging.WARNING, logger="bot.providers"), pytest.raises(TransientError) as info:
        await provider.poll(handle)
    assert_user_safe(info.value.user_message, fake)
    assert "IN_PROGR" in info.value.detail and fake.api_key not in caplog.text


async def test_never_finish_v2_stays_running(v2: SegmindProvider, fake: FakeSegmind) -> None:
    fake.script("never_finish")
    updates = await run_to_end(v2, await v2.submit(req()), max_polls=6)
    assert [u.status for u in updates] == [UpdateStatus.QUEUED] + [UpdateStatus.RUNNING] * 5


async def test_hold_and_release(v2: SegmindProvider, fake: FakeSegmind) -> None:
    fake.hold(True)
    handle = await v2.submit(req())
    assert (await run_to_end(v2, handle, max_polls=4))[-1].status is UpdateStatus.RUNNING
    fake.release(handle.provider_job_id)
    assert (await v2.poll(handle)).status is UpdateStatus.SUCCEEDED


async def test_foreign_status_url_is_not_followed(v2: SegmindProvider, fake: FakeSegmind) -> None:
    # The key goes with every call, so a status_url on another host must not be used.
    handle = await v2.submit(req())
    evil = handle.model_copy(update={"extra": {"mode": "v2", "status_url": "http://evil.example.test/steal"}})
    assert (await v2.poll(evil)).status is UpdateStatus.QUEUED
    assert fake.requests[-1].path == f"/v2/requests/{handle.provider_job_id}/status"


async def test_cancel_sends_nothing(provider: SegmindProvider, fake: FakeSegmind) -> None:
    handle = await provider.submit(req())
    before = len(fake.requests)
    assert await provider.cancel(handle) is False
    assert len(fake.requests) == before


# --- create failures and retries -----------------------------------------------------------------

REFUSALS: dict[str, type[ProviderError]] = {
    "bad_input": BadInputError,
    "auth": AuthError,
    "forbidden_403": AuthError,
    "model_retired_410": AuthError,
    "out_of_credit": OutOfCreditError,
    "spend_limit_406": OutOfCreditError,
    "wrong_content_type_406": BadInputError,
}


@pytest.mark.parametrize("outcome", sorted(REFUSALS))
async def test_create_refusals_are_not_retried(
    provider: SegmindProvider,
    fake: FakeSegmind,
    sleeps: SleepRecorder,
    outcome: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.script(outcome)
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as info:
        await provider.submit(req())
    error = info.value
    assert type(error) is REFUSALS[outcome] and error.provider == "segmind"
    assert_user_safe(error.user_message, fake)
    assert fake.api_key not in error.detail and fake.api_key not in caplog.text
    assert len(fake.creates) == 1 and fake.jobs == {} and sleeps.delays == []
    if outcome == "spend_limit_406":
        assert "spend limit" in error.user_message
    if outcome in ("forbidden_403", "model_retired_410"):
        assert "Nano Banana 2" in error.user_message
    if outcome == "wrong_content_type_406":
        assert "bot bug" in error.user_message
        assert any(r.levelno == logging.ERROR and "Content-Type" in r.getMessage() for r in caplog.records)


async def test_balance_below_the_price_is_out_of_credit(v2: SegmindProvider, fake: FakeSegmind) -> None:
    fake.credits = Decimal("0.10")
    with pytest.raises(OutOfCreditError):
        await v2.submit(req(resolution="4K"))
    await v2.submit(req(resolution="1K"))  # $0.08 still fits


async def test_rate_limited_waits_for_the_reset_then_succeeds(
    provider: SegmindProvider, fake: FakeSegmind, sleeps: SleepRecorder
) -> None:
    fake.script("rate_limited")
    handle = await provider.submit(req())
    assert len(fake.creates) == 2 and list(fake.jobs) == [handle.provider_job_id]
    # No Retry-After: the wait comes from x-rate-limit-reset-at-utc, 2 s ahead.
    assert len(sleeps.delays) == 1 and 1.0 <= sleeps.delays[0] <= 2.0


async def test_rate_limited_until_attempts_run_out(
    v2: SegmindProvider, fake: FakeSegmind, sleeps: SleepRecorder
) -> None:
    fake.script(*["rate_limited"] * 4)
    with pytest.raises(RateLimitedError) as info:
        await v2.submit(req())
    assert info.value.status_code == 429
    assert info.value.retry_after is not None and 0.5 < info.value.retry_after <= 2.0
    assert_user_safe(info.value.user_message, fake)
    assert len(fake.creates) == 4 and fake.jobs == {} and len(sleeps.delays) == 3


async def test_a_far_reset_is_handed_to_the_runner(
    fake: FakeSegmind, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    fake.reset_seconds = 120.0
    fake.script("rate_limited")
    with pytest.raises(RateLimitedError) as info:
        await make(fake, client, sleeps, "v1").submit(req())
    assert info.value.retry_after is not None and 100 < info.value.retry_after <= 120
    assert len(fake.creates) == 1 and sleeps.delays == []


@pytest.mark.parametrize("outcome", ["server_error", "gateway_502"])
async def test_server_errors_are_retried(
    provider: SegmindProvider, fake: FakeSegmind, sleeps: SleepRecorder, outcome: str
) -> None:
    fake.script(outcome)
    handle = await provider.submit(req())
    assert len(fake.creates) == 2 and list(fake.jobs) == [handle.provider_job_id]
    assert len(sleeps.delays) == 1


async def test_server_error_until_attempts_run_out(v1: SegmindProvider, fake: FakeSegmind) -> None:
    fake.script(*["server_error"] * 4)
    with pytest.raises(TransientError) as info:
        await v1.submit(req())
    assert_user_safe(info.value.user_message, fake)
    assert len(fake.creates) == 4


@pytest.mark.parametrize(("mode", "outcome"), [("v1", "create_hang"), ("v2", "create_hang"), ("v1", "never_finish")])
async def test_lost_answers_are_uncertain_and_never_resent(
    fake: FakeSegmind, client: httpx.AsyncClient, sleeps: SleepRecorder, mode: str, outcome: str
) -> None:
    provider = make(fake, client, sleeps, mode, timeout=HANG_TIMEOUT)
    fake.script(outcome)
    with pytest.raises(SubmitUncertainError) as info:
        await provider.submit(req())
    assert info.value.category is ErrorCategory.UNCERTAIN
    assert len(fake.creates) == 1 and len(fake.jobs) == 1  # accepted upstream, never sent twice
    assert sleeps.delays == []


async def test_gateway_504_on_create_is_uncertain(
    provider: SegmindProvider, fake: FakeSegmind, sleeps: SleepRecorder
) -> None:
    fake.script("gateway_504")
    with pytest.raises(SubmitUncertainError):
        await provider.submit(req())
    assert len(fake.creates) == 1 and len(fake.jobs) == 1 and sleeps.delays == []


async def test_wrong_key(fake: FakeSegmind, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    provider = SegmindProvider(api_key="SG_wrongwrongwrong1", base_url=fake.base_url, client=client)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        await provider.submit(req())
    assert "invalid" in info.value.detail
    assert "SG_wrongwrongwrong1" not in info.value.detail and "SG_wrongwrongwrong1" not in caplog.text
    assert fake.jobs == {}


# --- check() -------------------------------------------------------------------------------------


async def test_check_good_key_reads_the_balance(provider: SegmindProvider, fake: FakeSegmind) -> None:
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (True, True)
    assert "100" in result.detail
    assert [r.path for r in fake.requests] == ["/v1/get-user-credits"]
    assert fake.jobs == {}


async def test_check_bad_key(fake: FakeSegmind, client: httpx.AsyncClient) -> None:
    result = await SegmindProvider(api_key="SG_bad", base_url=fake.base_url, client=client).check()
    assert (result.reachable, result.key_accepted) == (True, False)
    assert "SG_bad" not in result.detail


async def test_check_unreachable(client: httpx.AsyncClient) -> None:
    async with FakeSegmind() as gone:
        base = gone.base_url
    result = await SegmindProvider(api_key="SG_x", base_url=base, client=client, timeout=TIMEOUT).check()
    assert (result.reachable, result.key_accepted) == (False, None)


# --- the fake's own protocol details -------------------------------------------------------------


async def test_fake_protocol_details(fake: FakeSegmind, client: httpx.AsyncClient) -> None:
    key = {"x-api-key": fake.api_key}
    url = f"{fake.base_url}/v2/nano-banana-2"
    missing = await client.post(url, json={"prompt": "x"})
    assert (missing.status_code, missing.json()) == (
        401,
        {"error": "Missing Authorization or x-api-key in header"},
    )
    bearer = await client.post(url, json={"prompt": "x"}, headers={"Authorization": f"Bearer {fake.api_key}"})
    assert bearer.status_code == 401 and "invalid" in bearer.json()["error"]
    # Wrong Content-Type: 406 whatever is scripted, and no scripted outcome is used up.
    fake.script("auth")
    plain = await client.post(url, content=b'{"prompt": "x"}', headers={**key, "Content-Type": "text/plain"})
    assert (plain.status_code, plain.text) == (406, "Invalid content type")
    assert (await client.post(url, json={"prompt": "x"}, headers=key)).status_code == 401  # the scripted one
    verb = await client.get(url, headers=key)
    assert verb.status_code == 405 and verb.headers["content-type"].startswith("text/html")
    unknown = await client.post(f"{fake.base_url}/v2/nano-banana-9", json={"prompt": "x"}, headers=key)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Model nano-banana-9 not found"})
    no_prompt = await client.post(url, json={"seed": 1}, headers=key)
    assert no_prompt.status_code == 400
    bad_value = await client.post(url, json={"prompt": "x", "output_resolution": "512"}, headers=key)
    assert bad_value.status_code == 406 and "output_resolution" in bad_value.json()["error"]
    created = (await client.post(url, json={"prompt": "x"}, headers=key)).json()
    assert created["status"] == "QUEUED" and set(created) >= {
        "request_id",
        "poll_url",
        "status_url",
        "response_url",
    }
    alias = await client.get(created["poll_url"], headers=key)
    assert alias.status_code == 200 and alias.json()["request_id"] == created["request_id"]
    gone = await client.get(f"{fake.base_url}/v2/requests/nope/status", headers=key)
    assert (gone.status_code, gone.json()) == (404, {"error": "Request nope not found"})
    credits = await client.get(f"{fake.base_url}/v1/get-user-credits", headers=key)
    assert credits.json() == {"credits": 100.0}


def test_fake_outcomes() -> None:
    common = {
        "success", "bad_input", "content_blocked", "rate_limited", "server_error", "auth", "out_of_credit",
        "transient_failure", "never_finish", "undecodable_image", "create_hang", "malformed",
    }  # fmt: skip
    extra = {"v1_json_url", "v1_json_base64", "wrong_content_type_406", "spend_limit_406", "failed_422"}
    assert common | extra | {"expired_404", "model_retired_410"} <= SEGMIND_OUTCOMES
    with pytest.raises(ValueError):
        FakeSegmind().script("succes")


async def test_provider_maps_a_406_value_refusal_to_bad_input(fake: FakeSegmind, client: httpx.AsyncClient) -> None:
    # A model entry that lets through what the real field list refuses shows the 406 mapping end to end.
    provider = SegmindProvider(api_key=fake.api_key, base_url=fake.base_url, client=client)
    provider.models[NB2] = replace(provider.models[NB2], aspect_ratios=("7:3",))
    with pytest.raises(BadInputError) as info:
        await provider.submit(req(aspect_ratio="7:3"))
    assert_user_safe(info.value.user_message, fake)
    assert "aspect_ratio" in info.value.detail and len(fake.creates) == 1


# --- narrow parser cases the fake does not produce (httpx.MockTransport) -------------------------

MOCK_BASE = "https://segmind.test"
MOCK_KEY = "SG_mock0123456789ab"
HANDLE = JobHandle(provider="segmind", model=NB2, provider_job_id="req-1", extra={"mode": "v2"})
PNG = make_png(8, 4)


def mock(*answers: httpx.Response, mode: str = "v2") -> SegmindProvider:
    queue = list(answers)

    async def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if queue else httpx.Response(500)

    async def no_sleep(delay: float) -> None:
        return None

    # A MockTransport holds no sockets, so the client needs no closing.
    return SegmindProvider(
        api_key=MOCK_KEY,
        base_url=MOCK_BASE,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        sleep=no_sleep,
        policy=RetryPolicy(max_attempts=2),
        mode="v1" if mode == "v1" else "v2",
    )


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        # FAILED on the light status body without a reason: the full record says why.
        ([httpx.Response(200, json={"status": "FAILED"}),
          httpx.Response(422, json={"status": "FAILED", "error": "Blocked by safety filter (IMAGE_SAFETY)"})],
         (UpdateStatus.FAILED, ErrorCategory.CONTENT_BLOCKED)),
        # A 422 straight from the status endpoint, even without a status field.
        ([httpx.Response(422, json={"error": "CUDA out of memory"})],
         (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)),
        # The record lags the status endpoint.
        ([httpx.Response(200, json={"status": "COMPLETED"}),
          httpx.Response(200, json={"status": "PROCESSING"})],
         (UpdateStatus.RUNNING, None)),
        # images[] as objects, output as a nested list; status/response links are not results.
        ([httpx.Response(200, json={"status": "COMPLETED"}),
          httpx.Response(200, json={"status": "COMPLETED", "status_url": "https://api.segmind.test/x",
                                    "output": [["https://images.segmind.test/a.jpeg"]],
                                    "images": [{"url": "https://images.segmind.test/a.jpeg",
                                                "content_type": "image/jpeg"}]})],
         (UpdateStatus.SUCCEEDED, None)),
        # COMPLETED with only prose.
        ([httpx.Response(200, json={"status": "COMPLETED"}),
          httpx.Response(200, json={"output": {"text": "No."}})],
         (UpdateStatus.FAILED, ErrorCategory.NO_IMAGE)),
    ],
)  # fmt: skip
async def test_v2_shapes(answers: list[httpx.Response], expected: tuple[UpdateStatus, ErrorCategory | None]) -> None:
    update = await mock(*answers).poll(HANDLE)
    assert (update.status, update.error_category) == expected
    if update.status is UpdateStatus.SUCCEEDED:
        assert [(i.url, i.content_type) for i in update.images] == [
            ("https://images.segmind.test/a.jpeg", "image/jpeg")
        ]
    if update.status is UpdateStatus.FAILED:
        assert update.error_message and "http" not in update.error_message


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"status": "EXPLODED"}),
        httpx.Response(200, json=["x"]),
        httpx.Response(200, text="ok"),
    ],
)
async def test_unexpected_status_raises_transient(answer: httpx.Response) -> None:
    with pytest.raises(TransientError):
        await mock(answer).poll(HANDLE)


async def test_v1_handle_without_its_answer_fails() -> None:
    update = await mock().poll(HANDLE.model_copy(update={"extra": {"mode": "v1"}}))
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, content=PNG, headers={"content-type": "application/octet-stream"}),
         (UpdateStatus.SUCCEEDED, None)),
        (httpx.Response(200, content=PNG), (UpdateStatus.SUCCEEDED, None)),
        (httpx.Response(200, json={"output": "data:image/png;base64," + base64.b64encode(PNG).decode()}),
         (UpdateStatus.SUCCEEDED, None)),
        (httpx.Response(200, json={"images": [{"b64_json": base64.b64encode(PNG).decode()}]}),
         (UpdateStatus.SUCCEEDED, None)),
        (httpx.Response(200, json={"error": "Request blocked: NSFW content detected"}),
         (UpdateStatus.FAILED, ErrorCategory.CONTENT_BLOCKED)),
        (httpx.Response(200, text="<html>hello</html>", headers={"content-type": "text/html"}),
         (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)),
        (httpx.Response(200, content=b"", headers={"content-type": "image/png"}),
         (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)),
    ],
)  # fmt: skip
async def test_v1_answer_shapes(answer: httpx.Response, expected: tuple[UpdateStatus, ErrorCategory | None]) -> None:
    handle = await mock(answer, mode="v1").submit(req())
    assert handle.provider_job_id.startswith("local-")  # no x-request-id header
    assert handle.ready is not None
    assert (handle.ready.status, handle.ready.error_category) == expected
    if expected[0] is UpdateStatus.SUCCEEDED:
        assert handle.ready.images[0].data == PNG and handle.ready.images[0].content_type == "image/png"


@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        (httpx.Response(406, text="Insufficient credits: balance 0.01, required 0.08"), OutOfCreditError),
        (httpx.Response(406, json={"error": "Invalid value for thinking_level"}), BadInputError),
        (httpx.Response(405, text="<html><body>405 Not Allowed</body></html>"), AuthError),
        (httpx.Response(404, json={"error": "Model not found"}), AuthError),
        (httpx.Response(400, json={"error": "Prompt violates our content policy"}), ContentBlockedError),
        (httpx.Response(422, json={"status": "FAILED", "error": "Out of memory"}), TransientError),
        (
            httpx.Response(422, json={"status": "FAILED", "error": "blocked by safety filter"}),
            ContentBlockedError,
        ),
        (
            httpx.Response(401, json={"error": "invalid_token", "error_description": "Token is invalid"}),
            AuthError,
        ),
    ],
)
async def test_v2_create_status_mapping(answer: httpx.Response, error_type: type[ProviderError]) -> None:
    with pytest.raises(error_type) as info:
        await mock(answer).submit(req())
    assert type(info.value) is error_type
    assert MOCK_KEY not in info.value.detail and "http" not in info.value.user_message


async def test_v2_create_without_request_id_is_uncertain() -> None:
    with pytest.raises(SubmitUncertainError):
        await mock(httpx.Response(200, json={"status": "QUEUED"})).submit(req())


async def test_rate_limit_with_epoch_reset() -> None:
    reset = str(int(datetime.now(UTC).timestamp()) + 600)
    answer = httpx.Response(429, json={"error": "Rate limit exceeded"}, headers={"x-rate-limit-reset-at-utc": reset})
    with pytest.raises(RateLimitedError) as info:
        await mock(answer).submit(req())
    assert info.value.retry_after is not None and 590 < info.value.retry_after <= 600


async def test_check_falls_back_to_the_status_probe() -> None:
    # The credits endpoint answering something unexpected: a job that cannot exist proves the key.
    result = await mock(httpx.Response(404, text="Not Found"), httpx.Response(404, json={"error": "nope"})).check()
    assert (result.reachable, result.key_accepted) == (True, True)
    no_record = await mock(httpx.Response(404, json={"error": "No credits found for the user"})).check()
    assert (no_record.reachable, no_record.key_accepted) == (True, True)


# --- pure helpers and properties -----------------------------------------------------------------

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2026-11-22T12:00:30Z", 30.0),
        ("2026-11-22T12:00:30.500+00:00", 30.5),
        ("2026-11-22T12:00:10", 10.0),  # naive: the header says UTC
        ("2026-11-22T11:00:00Z", 0.0),  # in the past
        (str(int(NOW.timestamp()) + 45), 45.0),
        (str(int(NOW.timestamp() * 1000) + 5000), 5.0),
        ("12", 12.0),
        ("Sun, 22 Nov 2026 12:01:00 GMT", 60.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_reset_seconds(value: str | None, seconds: float | None) -> None:
    assert reset_seconds(value, now=NOW) == seconds


_KEYS = st.sampled_from(["output", "images", "url", "text", "status_url", "b64_json", "x"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
    | st.sampled_from(["https://x.test/a.png", "data:image/png;base64,AAAA", "status", "output"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(body=_json)
def test_find_images_never_raises_and_returns_only_usable_images(body: Any) -> None:
    images, texts = find_images(body)
    for image in images:
        assert (image.url is None) != (image.data is None)
        assert image.url is None or image.url.startswith("https://")
    assert all(isinstance(t, str) and t for t in texts)


_refs = st.lists(st.builds(ref, st.integers(0, 99)), max_size=14).map(tuple)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_every_valid_request_maps_to_a_body_the_fake_accepts(data: st.DataObject) -> None:
    # Property: whatever validate() lets through, the mapped body passes the documented field lists.
    caps = data.draw(st.sampled_from(list(SEGMIND_MODELS.values())))
    request = GenerationRequest(
        model=caps.model,
        prompt=data.draw(st.text(min_size=1, max_size=200).filter(clean_prompt)),
        reference_images=data.draw(_refs),
        aspect_ratio=data.draw(st.none() | st.sampled_from(caps.aspect_ratios)),
        resolution=data.draw(st.none() | st.sampled_from(caps.resolutions)),
        seed=data.draw(st.none() | st.integers(0, 2**31 - 1)) if caps.seed else None,
        output_format=data.draw(st.none() | st.sampled_from(caps.output_formats)),
        thinking_level=data.draw(st.none() | st.sampled_from(caps.thinking_levels)) if caps.thinking_levels else None,
        web_search=data.draw(st.booleans()) if caps.web_search else False,
        safety_tolerance=data.draw(st.none() | st.integers(1, 6)),
    )
    validate(request, caps)
    body = SegmindProvider._body(request, caps)
    assert validate_body(caps.provider_model, body) is None
    assert body["prompt"] == request.prompt
    assert ("seed" in body) == (request.seed is not None)
    assert ("safety_tolerance" in body) == (caps.safety_knob and request.safety_tolerance is not None)
