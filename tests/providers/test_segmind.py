"""What only Segmind does, against FakeSegmind over a real socket with the real httpx client: two
transports (v1 answers with the image, v2 queues), its accounting and billing, its field names, its
own refusals and rate-limit reset header. What every adapter does is in tests/contract."""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import load_settings
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
from bot.models import GenerationRequest, JobHandle, UpdateStatus
from bot.providers.base import Capabilities, validate
from bot.providers.segmind import SEGMIND_MODELS, SegmindProvider, find_images, reset_seconds, segmind_models
from bot.testing.providers._base import make_png, result_png
from bot.testing.providers.segmind import SEGMIND_OUTCOMES, FakeSegmind, validate_body
from tests.providers.helpers import (
    ADAPTERS,
    NB2,
    PRO,
    PROMPT,
    Adapter,
    SleepRecorder,
    assert_create_refused,
    assert_user_safe,
    fake_fixture,
    final,
    picture_size,
    ref,
    req,
    run_to_end,
    valid_requests,
)

SEGMIND: dict[str, Adapter] = {"v1": ADAPTERS["segmind_v1"], "v2": ADAPTERS["segmind_v2"]}


fake = fake_fixture("segmind_v2")  # one server answers v1 and v2


def connect(mode: str, fake: FakeSegmind, client: httpx.AsyncClient, sleeps: SleepRecorder) -> SegmindProvider:
    provider = SEGMIND[mode].connect(fake, client, sleeps)
    assert isinstance(provider, SegmindProvider)
    return provider


@pytest.fixture(params=list(SEGMIND))
def provider(
    request: pytest.FixtureRequest, fake: FakeSegmind, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> SegmindProvider:
    return connect(request.param, fake, client, sleeps)


@pytest.fixture
def v1(fake: FakeSegmind, client: httpx.AsyncClient, sleeps: SleepRecorder) -> SegmindProvider:
    return connect("v1", fake, client, sleeps)


@pytest.fixture
def v2(fake: FakeSegmind, client: httpx.AsyncClient, sleeps: SleepRecorder) -> SegmindProvider:
    return connect("v2", fake, client, sleeps)


# --- the provider as a whole ---------------------------------------------------------------------


async def test_an_unknown_mode_is_a_config_error(client: httpx.AsyncClient) -> None:
    with pytest.raises(ConfigError) as info:
        SegmindProvider(api_key="SG_x", client=client, mode="v3")  # type: ignore[arg-type]
    assert info.value.setting == "segmind.mode"


async def test_queued_depends_on_the_mode_per_instance(v1: SegmindProvider, v2: SegmindProvider) -> None:
    assert not any(c.queued for c in v1.models.values())
    assert all(c.queued for c in v2.models.values())
    assert all(c.queued for c in SEGMIND_MODELS.values())  # the shared table is untouched
    assert v1.models is not v2.models and segmind_models("v1") == v1.models


# --- what the provider sends ---------------------------------------------------------------------


async def test_the_handle_per_mode(provider: SegmindProvider, fake: FakeSegmind) -> None:
    handle = await provider.submit(req())
    assert handle.extra["mode"] == provider.mode
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
    # The fake encodes a 4K result once per process (result_png), inside the first request for it: more than
    # the test timeouts on a loaded machine (a ReadTimeout with four workers on two cores). Made beforehand.
    await asyncio.to_thread(result_png, 3072, 4096)
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


# --- job failures --------------------------------------------------------------------------------

# The common failures (also in tests/contract) and Segmind's own documented one: none is billed.
JOB_FAILURES: dict[str, ErrorCategory] = {
    "content_blocked": ErrorCategory.CONTENT_BLOCKED,
    "transient_failure": ErrorCategory.TRANSIENT,
    "failed_422": ErrorCategory.TRANSIENT,
}


@pytest.mark.parametrize("outcome", sorted(JOB_FAILURES))
async def test_failures_are_not_billed(
    provider: SegmindProvider, fake: FakeSegmind, outcome: str, sleeps: SleepRecorder
) -> None:
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


async def test_a_malformed_v1_answer_fails_the_job(v1: SegmindProvider, fake: FakeSegmind) -> None:
    # The call ran (and was billed); its answer is unreadable, and asking again cannot help. (A malformed
    # v2 poll is retried like every queued adapter's: tests/contract.)
    fake.script("malformed")
    update = await v1.poll(await v1.submit(req()))
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)
    assert_user_safe(update.error_message, fake)
    assert update.error_detail and "IN_PROGR" in update.error_detail


# --- create failures and retries -----------------------------------------------------------------

# Segmind's own refusals (the common ones, auth, out_of_credit and bad_input, are in tests/contract).
REFUSALS: dict[str, type[ProviderError]] = {
    "forbidden_403": AuthError,
    "model_retired_410": AuthError,
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


async def test_a_far_reset_is_handed_to_the_runner(
    fake: FakeSegmind, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    fake.reset_seconds = 120.0
    fake.script("rate_limited")
    with pytest.raises(RateLimitedError) as info:
        await SEGMIND["v1"].connect(fake, client, sleeps).submit(req())
    assert info.value.retry_after is not None and 100 < info.value.retry_after <= 120
    assert len(fake.creates) == 1 and sleeps.delays == []


async def test_a_gateway_502_is_retried(provider: SegmindProvider, fake: FakeSegmind, sleeps: SleepRecorder) -> None:
    fake.script("gateway_502")
    handle = await provider.submit(req())
    assert len(fake.creates) == 2 and list(fake.jobs) == [handle.provider_job_id]
    assert len(sleeps.delays) == 1


async def test_gateway_504_on_create_is_uncertain(
    provider: SegmindProvider, fake: FakeSegmind, sleeps: SleepRecorder
) -> None:
    fake.script("gateway_504")
    with pytest.raises(SubmitUncertainError):
        await provider.submit(req())
    assert len(fake.creates) == 1 and len(fake.jobs) == 1 and sleeps.delays == []


# --- the fake's own protocol details -------------------------------------------------------------


async def test_fake_segmind_protocol(fake: FakeSegmind, client: httpx.AsyncClient) -> None:
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


def test_fake_offers_segminds_own_outcomes() -> None:
    extra = {"v1_json_url", "v1_json_base64", "wrong_content_type_406", "spend_limit_406", "failed_422"}
    assert extra | {"expired_404", "model_retired_410"} <= SEGMIND_OUTCOMES


# --- narrow parser cases the fake does not produce (httpx.MockTransport) -------------------------


def mock(*answers: httpx.Response, mode: str = "v2") -> SegmindProvider:
    """Segmind over httpx.MockTransport, answering its calls in order (then 500)."""
    queue = list(answers)

    async def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if queue else httpx.Response(500)

    provider = SEGMIND[mode].over_mock(handler)
    assert isinstance(provider, SegmindProvider)
    return provider


HANDLE = JobHandle(provider="segmind", model=NB2, provider_job_id="req-1", extra={"mode": "v2"})


PNG = make_png(8, 4)


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
    await assert_create_refused(mock(answer), error_type)


@pytest.mark.parametrize("request_id", [None, "r" * 100_000, "r1\n\x00"], ids=["none", "far too long", "control"])
async def test_v2_create_without_a_usable_request_id_is_uncertain(request_id: str | None) -> None:
    with pytest.raises(SubmitUncertainError):
        await mock(httpx.Response(200, json={"status": "QUEUED", "request_id": request_id})).submit(req())


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


# Built once, not per example (building and validating a fresh strategy cost more than the example): either model,
# then a request for it, as drawing the model first and then its request did.
_SEGMIND_REQUESTS = st.one_of([st.tuples(st.just(caps), valid_requests(caps)) for caps in SEGMIND_MODELS.values()])


@settings(max_examples=200, deadline=None)
@given(drawn=_SEGMIND_REQUESTS)
def test_every_valid_request_maps_to_a_body_the_fake_accepts(drawn: tuple[Capabilities, GenerationRequest]) -> None:
    # Property: whatever validate() lets through, the mapped body passes the documented field lists.
    caps, request = drawn
    validate(request, caps)
    body = SegmindProvider._body(request, caps)
    assert validate_body(caps.provider_model, body) is None
    assert body["prompt"] == request.prompt
    assert ("seed" in body) == (request.seed is not None)
    assert ("safety_tolerance" in body) == (caps.safety_knob and request.safety_tolerance is not None)


async def test_a_v1_create_slower_than_request_timeout_still_brings_its_image(
    fake: FakeSegmind, client: httpx.AsyncClient
) -> None:
    # v1 answers once the image is drawn (docs/providers.md 5.2); from the settings its read timeout is the
    # longer of request_timeout (120 s by default) and 360 s (8.4). Before, from_settings always passed
    # request_timeout, which cut the create short: an image Segmind made and billed, lost as "uncertain".
    def settings(mode: str) -> Any:
        section = {"enabled": True, "mode": mode, "base_url": fake.base_url, "request_timeout": 0.2}
        return load_settings(None, environment=False, segmind_api_key=fake.api_key, providers={"segmind": section})

    v1 = SegmindProvider.from_settings(settings("v1"), client)
    fake.hold_create_answers()
    create = asyncio.create_task(v1.submit(req()))
    await asyncio.sleep(1.0)  # five times request_timeout: an answer later than it allows
    assert len(fake.creates) == 1, "the create arrived, and its answer is held"
    fake.hold_create_answers(False)
    handle = await create
    assert handle.ready is not None and handle.ready.status is UpdateStatus.SUCCEEDED
    # v2's create answers at once, and keeps request_timeout: a held answer is given up as before.
    v2 = SegmindProvider.from_settings(settings("v2"), client)
    fake.hold_create_answers()
    with pytest.raises(SubmitUncertainError):
        await v2.submit(req())
    fake.hold_create_answers(False)
