"""What only Gemini does, against FakeGemini over a real socket with the real httpx client: model ids
as configuration, references fetched and sent inline, safety thresholds, block and finish reasons, and
RetryInfo. What every adapter does is in tests/contract."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import socket
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.budget import BudgetHook, RequestBudget, origin_of
from bot.cli_sink import FileSink
from bot.config import load_settings
from bot.errors import (
    AuthError,
    BadInputError,
    ConfigError,
    ErrorCategory,
    InvalidRequestError,
    OutOfCreditError,
    OverloadedError,
    ProviderError,
    RateLimitedError,
    ReferenceUnavailableError,
    SubmitUncertainError,
    TransientError,
)
from bot.jobs import JobRunner
from bot.models import GenerationRequest, JobHandle, JobState, JobUpdate, ReferenceImage, Turn, UpdateStatus
from bot.providers._http import RetryPolicy
from bot.providers.base import Capabilities, validate
from bot.providers.base64_text import SLICE as BASE64_SLICE
from bot.providers.gemini import (
    GEMINI_DEFAULT_MODEL_IDS,
    GEMINI_MODELS,
    HARM_CATEGORIES,
    OVERLOADED_RETRY_SECONDS,
    GeminiProvider,
    PastTurn,
    build_request_body,
    gemini_models,
    safety_settings_for,
    turns_to_send,
)
from bot.store import Database
from bot.store.jobs import Job, JobStore, NewJob
from bot.testing.providers import noise_png
from bot.testing.providers._base import result_png
from bot.testing.providers.gemini import (
    FINISH_REASONS,
    PROMPT_BLOCK_REASONS,
    FakeGemini,
    FakeGeminiCall,
    validate_generate_request,
)
from tests.conftest import Clock
from tests.contract.test_provider_contract import run_through_the_runner
from tests.providers.helpers import (
    ADAPTERS,
    NB2,
    PRO,
    PROMPT,
    Answers,
    SleepRecorder,
    assert_create_refused,
    assert_user_safe,
    fake_fixture,
    ref,
    req,
    valid_requests,
)
from tests.providers.test_base64_text import SPELLINGS

GEMINI = ADAPTERS["gemini"]
FLASH_ID = "gemini-3.1-flash-image"
PRO_ID = "gemini-3-pro-image"
GENERATE = f"/v1beta/models/{FLASH_ID}:generateContent"


# --- fixtures and helpers ------------------------------------------------------------------------


fake = fake_fixture("gemini")


@pytest.fixture
def provider(fake: FakeGemini, client: httpx.AsyncClient, sleeps: SleepRecorder) -> GeminiProvider:
    provider = GEMINI.connect(fake, client, sleeps)
    assert isinstance(provider, GeminiProvider)
    return provider


def picture(size: tuple[int, int] = (40, 30), fmt: str = "PNG", colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    return buffer.getvalue()


def served(fake: FakeGemini, name: str, data: bytes, content_type: str = "image/png") -> ReferenceImage:
    url = fake.serve_reference(name, data, content_type)
    return ReferenceImage(url=url, content_type=content_type, size=len(data), filename=name)


def ready(handle: JobHandle) -> JobUpdate:
    assert handle.ready is not None, "a synchronous provider returns a terminal update"
    return handle.ready


def decode(data: bytes | None) -> tuple[str | None, tuple[int, int]]:
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


# --- the provider as a whole --------------------------------------------------------------------------


def test_model_ids_are_configuration() -> None:
    models = gemini_models({"nano_banana_2": "models/gemini-nano-banana-2.1"})
    assert models[NB2].provider_model == "gemini-nano-banana-2.1"
    assert models[NB2].resolutions == ("1K", "2K", "4K")  # 2.1 has no 512 tier (6.2)
    assert models[PRO] == GEMINI_MODELS[PRO]
    lite = gemini_models({"nano_banana_2": "gemini-3.1-flash-lite-image"})[NB2]
    assert lite.resolutions == ("1K",) and lite.web_search is False
    assert gemini_models(None) == gemini_models(GEMINI_DEFAULT_MODEL_IDS) == GEMINI_MODELS


@pytest.mark.parametrize(
    ("ids", "setting"),
    [
        ({"nano_banana_9": FLASH_ID}, "gemini.model_ids.nano_banana_9"),
        ({NB2: "gemini-3.1-flash-image-preview"}, "gemini.model_ids.nano_banana_2"),
        ({PRO: "gemini-3-pro-image-preview"}, "gemini.model_ids.nano_banana_pro"),
        ({NB2: "  "}, "gemini.model_ids.nano_banana_2"),
        ({NB2: "gemini 3/flash?key=x"}, "gemini.model_ids.nano_banana_2"),
    ],
)
def test_bad_model_ids_are_config_errors(ids: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        gemini_models(ids)
    assert info.value.setting == setting
    if "preview" in next(iter(ids.values())):
        assert "shut down" in info.value.user_message


def test_a_base_url_with_a_query_is_a_config_error(client: httpx.AsyncClient) -> None:
    # Every path is appended to the base: a query there would land in the middle of the URL.
    with pytest.raises(ConfigError) as info:
        GeminiProvider(client=client, api_key="k", base_url="https://x.test/?key=abc")
    assert info.value.setting == "gemini.base_url"


# --- what the provider sends --------------------------------------------------------------------------


async def test_the_handle_names_the_model_id(provider: GeminiProvider) -> None:
    handle = await provider.submit(req())
    assert handle.extra == {"model_id": FLASH_ID}


async def test_full_flash_request_sends_references_inline(provider: GeminiProvider, fake: FakeGemini) -> None:
    images = [
        ("a.png", picture((40, 30)), "image/png"),
        ("b.jpg", picture((30, 40), "JPEG"), "image/jpeg"),
        ("c.webp", picture((20, 20), "WEBP"), "image/webp"),
    ]
    refs = tuple(served(fake, name, data, ctype) for name, data, ctype in images)
    handle = await provider.submit(
        req(
            reference_images=refs,
            aspect_ratio="21:9",
            resolution="512",
            thinking_level="high",
            web_search=True,
            safety_tolerance=4,
        )
    )
    (create,) = fake.creates
    body = create.json
    assert body is not None
    parts = body["contents"][0]["parts"]
    assert parts[0] == {"text": PROMPT}
    assert [p["inlineData"]["mimeType"] for p in parts[1:]] == ["image/png", "image/jpeg", "image/webp"]
    assert [base64.b64decode(p["inlineData"]["data"]) for p in parts[1:]] == [d for _, d, _ in images]
    assert body["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "21:9", "imageSize": "512"},
        "thinkingConfig": {"thinkingLevel": "HIGH"},
    }
    assert body["tools"] == [{"google_search": {}}]
    assert body["safetySettings"] == [{"category": c, "threshold": "BLOCK_ONLY_HIGH"} for c in HARM_CATEGORIES]
    assert set(body) == {"contents", "generationConfig", "tools", "safetySettings"}
    # What the fake decoded is byte for byte what the reference URLs served.
    assert fake.jobs[handle.provider_job_id].references == [(c, d) for _, d, c in images]
    downloads = [r for r in fake.requests if r.path.startswith("/refs/")]
    assert sorted(r.path for r in downloads) == ["/refs/a.png", "/refs/b.jpg", "/refs/c.webp"]
    assert all("x-goog-api-key" not in r.headers for r in downloads)  # the key stays with Google
    assert decode(ready(handle).images[0].data) == ("PNG", (512, 219))


async def test_references_the_bot_checked_are_sent_from_its_files_not_downloaded_again(
    provider: GeminiProvider, fake: FakeGemini
) -> None:
    """The bot downloads a job's references to check them before its first create (bot/references.py); those
    files go to Gemini as they are, and only a link without one is fetched. The files stay the caller's: open,
    and as they were (a JPEG with a clip after it is sent cut, its file left whole)."""
    drawing, photo = picture((40, 30)), picture((30, 40), "JPEG")
    clip = b"\x00\x00\x00\x18ftypmp42" + os.urandom(4_000)
    checked_png = served(fake, "a.png", drawing)
    checked_jpeg = served(fake, "b.jpg", photo + clip, "image/jpeg")
    fetched = served(fake, "c.webp", picture((20, 20), "WEBP"), "image/webp")
    with tempfile.TemporaryFile() as png_file, tempfile.TemporaryFile() as jpeg_file:
        png_file.write(drawing)
        jpeg_file.write(photo + clip)
        files = {checked_png.url: png_file, checked_jpeg.url: jpeg_file}
        handle = await provider.submit(req(reference_images=(checked_png, checked_jpeg, fetched)), prefetched=files)
        assert [r.path for r in fake.requests if r.path.startswith("/refs/")] == ["/refs/c.webp"]
        assert fake.jobs[handle.provider_job_id].references == [
            ("image/png", drawing),
            ("image/jpeg", photo),
            ("image/webp", picture((20, 20), "WEBP")),
        ]
        for file, whole in ((png_file, drawing), (jpeg_file, photo + clip)):
            assert not file.closed
            file.seek(0)
            assert file.read() == whole


async def test_a_checked_file_that_is_not_an_image_is_refused_like_a_download(
    provider: GeminiProvider, fake: FakeGemini
) -> None:
    ref = served(fake, "a.png", picture())
    with tempfile.TemporaryFile() as file:
        file.write(b"<html>not an image</html>")
        with pytest.raises(InvalidRequestError) as info:
            await provider.submit(req(reference_images=(ref,)), prefetched={ref.url: file})
    assert "`a.png` is not a readable PNG, JPEG or WebP image" in info.value.user_message
    assert fake.creates == [] and not [r for r in fake.requests if r.path.startswith("/refs/")]


async def test_pro_request(provider: GeminiProvider, fake: FakeGemini) -> None:
    # The fake encodes a 4K result once per process (result_png), inside the first request for it: more than
    # the test timeouts on a loaded machine (a ReadTimeout with four workers on two cores). Made beforehand.
    await asyncio.to_thread(result_png, 4096, 2304)
    handle = await provider.submit(req(PRO, aspect_ratio="16:9", resolution="4K"))
    (create,) = fake.creates
    assert create.path == f"/v1beta/models/{PRO_ID}:generateContent"
    assert create.json is not None
    assert create.json["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "4K"},
    }
    update = ready(handle)
    assert decode(update.images[0].data) == ("PNG", (4096, 2304))
    assert update.usage["candidatesTokenCount"] == 2520


async def test_thinking_minimal(provider: GeminiProvider, fake: FakeGemini) -> None:
    await provider.submit(req(thinking_level="minimal"))
    assert fake.creates[0].json is not None
    assert fake.creates[0].json["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "MINIMAL"}


async def test_auto_ratio_is_left_to_the_model(provider: GeminiProvider, fake: FakeGemini) -> None:
    wide = served(fake, "wide.png", picture((80, 40)))
    handle = await provider.submit(req(aspect_ratio="auto", reference_images=(wide,)))
    assert fake.creates[0].json is not None
    assert fake.creates[0].json["generationConfig"]["imageConfig"] == {"imageSize": "1K"}
    # The fake, like the model, takes the shape of the reference image when no ratio is given.
    assert decode(ready(handle).images[0].data) == ("PNG", (1024, 512))


async def test_base_url_may_name_the_api_version(
    fake: FakeGemini, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    provider = GeminiProvider(api_key=fake.api_key, base_url=fake.base_url + "/v1beta/", client=client)
    await provider.submit(req())
    assert fake.creates[0].path == GENERATE


# --- safety settings ----------------------------------------------------------------------------------


EXPECTED_THRESHOLDS = {
    1: "BLOCK_LOW_AND_ABOVE",
    2: "BLOCK_MEDIUM_AND_ABOVE",
    3: "BLOCK_MEDIUM_AND_ABOVE",
    4: "BLOCK_ONLY_HIGH",
    5: "BLOCK_NONE",
    6: "OFF",
}


STRICT_TO_LOOSE = ["BLOCK_LOW_AND_ABOVE", "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_ONLY_HIGH", "BLOCK_NONE", "OFF"]


@pytest.mark.parametrize(("level", "threshold"), sorted(EXPECTED_THRESHOLDS.items()))
def test_safety_settings_for_each_level(level: int, threshold: str) -> None:
    assert safety_settings_for(level) == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": threshold},
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": threshold},
        {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": threshold},
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": threshold},
    ]


@pytest.mark.parametrize("level", [0, 7, -1, True])
def test_safety_settings_for_refuses_other_levels(level: int) -> None:
    with pytest.raises(ValueError):
        safety_settings_for(level)


@given(st.integers(1, 6), st.integers(1, 6))
def test_a_looser_level_never_blocks_more(a: int, b: int) -> None:
    low, high = sorted((a, b))
    strict, loose = safety_settings_for(low), safety_settings_for(high)
    assert [s["category"] for s in strict] == list(HARM_CATEGORIES)
    assert STRICT_TO_LOOSE.index(strict[0]["threshold"]) <= STRICT_TO_LOOSE.index(loose[0]["threshold"])


# --- references: fetched, checked, sent inline --------------------------------------------------------


async def test_references_beyond_the_inline_limit_are_refused(provider: GeminiProvider, fake: FakeGemini) -> None:
    # Each within the per-image cap, together more than Gemini takes inline.
    refs = tuple(ref(n, size=10 * 1024 * 1024) for n in range(8))
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(reference_images=refs))
    assert_user_safe(info.value.user_message, fake)
    assert fake.requests == []


async def test_missing_reference_is_named(provider: GeminiProvider, fake: FakeGemini) -> None:
    gone = ReferenceImage(url=f"{fake.origin}/refs/gone.png", content_type="image/png", size=10, filename="cat.png")
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(reference_images=(gone,)))
    assert "`cat.png`" in info.value.user_message and "404" in info.value.user_message
    assert_user_safe(info.value.user_message, fake)
    assert fake.creates == []


async def test_reference_larger_than_the_cap(provider: GeminiProvider, fake: FakeGemini) -> None:
    provider.models[NB2] = replace(provider.models[NB2], max_reference_bytes=2000)
    big = picture((200, 200), colour=(1, 2, 3)) + b"\0" * 3000
    ref = served(fake, "big.png", big).model_copy(update={"size": 100})  # the attachment understated it
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(reference_images=(ref,)))
    assert "`big.png`" in info.value.user_message and "MiB" in info.value.user_message
    assert fake.creates == []


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (b"hello, not an image", "image/png", "not a readable PNG, JPEG or WebP"),
        (picture()[:60], "image/png", "not a readable PNG, JPEG or WebP"),  # truncated
        (picture(fmt="GIF"), "image/png", "not a readable PNG, JPEG or WebP"),
    ],
    # A JPEG said to be a PNG (or a PNG a WebP) is sent as what it is, no longer refused:
    # tests/test_reference_bytes_fixes.py.
    ids=["text", "truncated", "gif"],
)
async def test_references_are_checked_with_pillow(
    provider: GeminiProvider, fake: FakeGemini, data: bytes, declared: str, expected: str
) -> None:
    ref = served(fake, "odd.png", data, declared)
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(reference_images=(served(fake, "ok.png", picture()), ref)))
    assert "`odd.png`" in info.value.user_message and expected in info.value.user_message
    assert fake.creates == []


async def test_unreachable_reference_host(provider: GeminiProvider, fake: FakeGemini) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ref = ReferenceImage(url=f"http://127.0.0.1:{port}/x.png", content_type="image/png", size=9, filename="x.png")
    # Tried again later by the job (bot/job_submit.py): a network error may pass, and nothing went to Google.
    with pytest.raises(ReferenceUnavailableError) as info:
        await provider.submit(req(reference_images=(ref,)))
    assert "`x.png`" in info.value.user_message and "network error" in info.value.user_message
    assert info.value.retryable
    assert fake.requests == []


# --- what the provider makes of each answer -----------------------------------------------------------


async def test_success_carries_the_image_and_the_token_counts(provider: GeminiProvider, fake: FakeGemini) -> None:
    handle = await provider.submit(req(aspect_ratio="9:16", resolution="2K"))
    update = ready(handle)
    (image,) = update.images
    assert image.url is None and image.content_type == "image/png"
    assert update.text is None
    assert update.usage["candidatesTokenCount"] == 1680 and update.usage["modelVersion"] == FLASH_ID
    assert update.usage["totalTokenCount"] > update.usage["promptTokenCount"] > 0
    assert await provider.poll(handle) == update  # nothing more to ask Google
    assert len(fake.creates) == 1
    # The handle is stored as JSON with the job: the image bytes survive the round trip.
    stored = JobHandle.model_validate_json(handle.model_dump_json())
    assert stored.ready is not None and stored.ready.images[0].data == image.data


async def test_success_with_text(provider: GeminiProvider, fake: FakeGemini) -> None:
    fake.script("success_text")
    update = ready(await provider.submit(req()))
    assert update.status is UpdateStatus.SUCCEEDED and update.text == "Here is your image."


async def test_interim_thought_images_are_ignored(provider: GeminiProvider, fake: FakeGemini) -> None:
    fake.script("with_thought_image")
    handle = await provider.submit(req(aspect_ratio="16:9"))
    update = ready(handle)
    assert update.status is UpdateStatus.SUCCEEDED
    (image,) = update.images
    assert decode(image.data) == ("PNG", (1024, 576))  # the final image, not the half-size draft
    assert update.text == "Here is the final image."  # thought text is not shown either
    raw = fake.requests[-1]
    assert raw.path == GENERATE


@pytest.mark.parametrize("reason", PROMPT_BLOCK_REASONS)
async def test_prompt_blocks(provider: GeminiProvider, fake: FakeGemini, reason: str) -> None:
    fake.script(f"prompt_blocked:{reason}")
    update = ready(await provider.submit(req()))
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.CONTENT_BLOCKED)
    assert update.images == [] and update.text is None
    assert_user_safe(update.error_message, fake)
    assert update.error_detail and f"blockReason={reason}" in update.error_detail
    assert len(fake.creates) == 1  # a block is never retried


# finish reason -> category
FINISHES: dict[str, ErrorCategory] = {
    "IMAGE_SAFETY": ErrorCategory.CONTENT_BLOCKED,
    "IMAGE_PROHIBITED_CONTENT": ErrorCategory.CONTENT_BLOCKED,
    "SAFETY": ErrorCategory.CONTENT_BLOCKED,
    "PROHIBITED_CONTENT": ErrorCategory.CONTENT_BLOCKED,
    "RECITATION": ErrorCategory.CONTENT_BLOCKED,
    "IMAGE_RECITATION": ErrorCategory.CONTENT_BLOCKED,
    "BLOCKLIST": ErrorCategory.CONTENT_BLOCKED,
    "SPII": ErrorCategory.CONTENT_BLOCKED,
    "NO_IMAGE": ErrorCategory.NO_IMAGE,
    "IMAGE_OTHER": ErrorCategory.NO_IMAGE,
    "MAX_TOKENS": ErrorCategory.NO_IMAGE,
    "OTHER": ErrorCategory.TRANSIENT,
    "LANGUAGE": ErrorCategory.BAD_INPUT,
}


def test_every_scripted_finish_reason_has_an_expectation() -> None:
    assert set(FINISHES) == set(FINISH_REASONS)


@pytest.mark.parametrize("reason", sorted(FINISHES))
async def test_finish_reasons(provider: GeminiProvider, fake: FakeGemini, reason: str) -> None:
    fake.script(f"finish:{reason}")
    update = ready(await provider.submit(req()))
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, FINISHES[reason])
    assert update.images == []
    assert_user_safe(update.error_message, fake)
    assert update.error_detail and f"finishReason={reason}" in update.error_detail


async def test_each_block_and_no_image_reason_reads_differently(provider: GeminiProvider, fake: FakeGemini) -> None:
    outcomes = [f"prompt_blocked:{r}" for r in PROMPT_BLOCK_REASONS] + [f"finish:{r}" for r in FINISHES]
    outcomes.append("text_only")
    fake.script(*outcomes)
    messages = [ready(await provider.submit(req())).error_message for _ in outcomes]
    assert len(set(messages)) == len(messages), "every reason deserves its own explanation"
    by_outcome = dict(zip(outcomes, messages, strict=True))
    assert "reference images" in (by_outcome["prompt_blocked:IMAGE_SAFETY"] or "")
    assert "generated image" in (by_outcome["finish:IMAGE_SAFETY"] or "")
    assert "copyrighted" in (by_outcome["finish:RECITATION"] or "")
    assert "personal information" in (by_outcome["finish:SPII"] or "")
    assert "blocklist" in (by_outcome["prompt_blocked:BLOCKLIST"] or "")


async def test_text_only_answer_is_no_image_with_the_text(provider: GeminiProvider, fake: FakeGemini) -> None:
    fake.script("text_only")
    update = ready(await provider.submit(req()))
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.NO_IMAGE)
    assert update.error_message and "text only" in update.error_message
    assert update.text and update.text.startswith("I can't create that image")
    assert_user_safe(update.error_message, fake)


async def test_an_undecodable_image_has_no_size(provider: GeminiProvider, fake: FakeGemini) -> None:
    fake.script("undecodable_image")
    (image,) = ready(await provider.submit(req())).images
    assert (image.width, image.height) == (None, None)


async def test_malformed_answer_is_uncertain_and_not_resent(
    provider: GeminiProvider, fake: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script("malformed")
    with caplog.at_level(logging.DEBUG), pytest.raises(SubmitUncertainError) as info:
        await provider.submit(req())
    assert "IN_PROGR" in info.value.detail and fake.api_key not in info.value.detail
    assert len(fake.creates) == 1 and fake.api_key not in caplog.text


# --- HTTP errors and retries --------------------------------------------------------------------------


async def test_long_retry_delay_is_handed_to_the_runner(
    provider: GeminiProvider, fake: FakeGemini, sleeps: SleepRecorder
) -> None:
    fake.retry_delay = "95.5s"
    fake.script("rate_limited")
    with pytest.raises(RateLimitedError) as info:
        await provider.submit(req())
    assert info.value.retry_after == 95.5
    assert len(fake.creates) == 1 and sleeps.delays == []


async def test_an_internal_error_is_retried(provider: GeminiProvider, fake: FakeGemini, sleeps: SleepRecorder) -> None:
    fake.script("internal_error")
    handle = await provider.submit(req())
    assert ready(handle).status is UpdateStatus.SUCCEEDED
    assert len(fake.creates) == 2 and len(sleeps.delays) == 1


async def test_a_504_is_judged_by_its_body(provider: GeminiProvider, fake: FakeGemini, sleeps: SleepRecorder) -> None:
    # 6.6: a 504 with Google's DEADLINE_EXCEEDED body means Google gave the call up: retry it. It used to end
    # the job as "the provider did not confirm the request", with no retry and no failover.
    fake.script("gateway_timeout")
    handle = await provider.submit(req())
    assert ready(handle).status is UpdateStatus.SUCCEEDED
    assert len(fake.creates) == 2 and len(sleeps.delays) == 1
    # A 504 without Google's body (a proxy's HTML page) says nothing of what Google did: never sent again.
    fake.script("proxy_timeout")
    with pytest.raises(SubmitUncertainError) as info:
        await provider.submit(req())
    assert info.value.category is ErrorCategory.UNCERTAIN
    assert len(fake.creates) == 3 and len(sleeps.delays) == 1


async def test_deadline_exceeded_every_time_is_a_temporary_fault(
    provider: GeminiProvider, fake: FakeGemini, sleeps: SleepRecorder
) -> None:
    fake.script(*["gateway_timeout"] * 4)
    with pytest.raises(ProviderError) as info:
        await provider.submit(req())
    error = info.value
    # Transient: the job runner fails it over to the next provider (bot/failover.py), or tells the member to
    # try again, rather than calling it uncertain.
    assert type(error) is TransientError and error.category is ErrorCategory.TRANSIENT
    assert "took too long" in error.user_message and "DEADLINE_EXCEEDED" in error.detail
    assert len(fake.creates) == 4 and fake.jobs == {} and len(sleeps.delays) == 3


async def test_overloaded_is_handed_on_at_once_with_the_documented_wait(
    provider: GeminiProvider, fake: FakeGemini, sleeps: SleepRecorder
) -> None:
    # 6.6: 503 UNAVAILABLE, "retry after 30-60 s". Three retries within 2.5 s hit the same overload; the
    # 30 s wait is longer than a call's backoff, so the error goes to the job runner at once, carrying the
    # wait as a 429 does (the runner waits it out: test_an_overload_is_waited_out_in_the_queue_and_sent_again).
    fake.script("overloaded")
    with pytest.raises(OverloadedError) as info:
        await provider.submit(req())
    error = info.value
    assert isinstance(error, RateLimitedError) and error.category is ErrorCategory.RATE_LIMITED
    assert error.retry_after == OVERLOADED_RETRY_SECONDS == 30.0
    assert error.user_message == "Gemini is overloaded right now. Try again in a minute."
    assert len(fake.creates) == 1 and sleeps.delays == []


@pytest.mark.parametrize(
    ("headers", "wait"),
    [({}, 30.0), ({"Retry-After": "45"}, 45.0), ({"Retry-After": "soon"}, 30.0)],
    ids=["documented", "retry-after", "unreadable-retry-after"],
)
async def test_an_overload_that_says_how_long_is_taken_at_its_word(headers: dict[str, str], wait: float) -> None:
    body = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    with pytest.raises(OverloadedError) as info:
        await mock_provider(httpx.Response(503, json=body, headers=headers)).submit(req())
    assert info.value.retry_after == wait


async def test_any_other_503_is_a_temporary_fault_retried_as_usual() -> None:
    provider = GEMINI.over_mock(Answers(create=[httpx.Response(503, text="<html>Service Unavailable</html>")]))
    with pytest.raises(TransientError) as info:
        await provider.submit(req())
    assert type(info.value) is TransientError and info.value.category is ErrorCategory.TRANSIENT


# An overload no longer ends the job as a temporary fault: test_an_overload_is_waited_out_in_the_queue_and_sent_again.
@pytest.mark.parametrize(("outcomes", "words"), [(["gateway_timeout"] * 4, "took too long")], ids=["deadline_exceeded"])
async def test_the_member_reads_a_temporary_fault_not_an_unconfirmed_request(
    fake: FakeGemini,
    client: httpx.AsyncClient,
    sleeps: SleepRecorder,
    tmp_path: Path,
    outcomes: list[str],
    words: str,
) -> None:
    provider = GEMINI.connect(fake, client, sleeps)
    fake.script(*outcomes)
    job, _ = await run_through_the_runner(provider, tmp_path)
    assert (job.state, job.error_category) == (JobState.FAILED, ErrorCategory.TRANSIENT)
    assert job.error_message and words in job.error_message
    assert SubmitUncertainError.user_message not in job.error_message


async def test_an_overload_is_waited_out_in_the_queue_and_sent_again(
    fake: FakeGemini, client: httpx.AsyncClient, sleeps: SleepRecorder, tmp_path: Path
) -> None:
    # The only provider: the job waits the 30 s on the runner's clock, not in the call, and is sent again.
    # Before, it failed at once: "Gemini is overloaded right now. Try again in a minute."
    provider = GEMINI.connect(fake, client, sleeps)
    fake.script("overloaded")
    job, sink = await run_through_the_runner(provider, tmp_path)
    assert job.state is JobState.DELIVERED and (job.error_category, job.error_message) == (None, None)
    assert len(fake.creates) == 2 and sleeps.delays == [] and len(sink.files[job.id]) == 1


async def run_jobs(
    fake: FakeGemini, sleeps: SleepRecorder, tmp_path: Path, count: int, *, deadline: float = 300.0
) -> tuple[list[Job], list[int]]:
    """``count`` jobs through the job runner against ``fake``, the second and later ones made after the first
    job's first step, 5 s apart on the runner's clock, with the request budget every request waits on
    (bot/budget.py, hooked on the client as bot/app.py does) on that clock too. Returns the jobs as they ended
    and how many creates the fake had received after each step."""
    settings = load_settings(
        None, environment=False, database={"path": str(tmp_path / "jobs.sqlite3")}, jobs={"deadline_seconds": deadline}
    )
    clock = Clock(2_000_000.0)
    budget = RequestBudget(0, clock=clock)
    hook = BudgetHook({origin_of(fake.base_url): budget})
    db = Database(settings.database.path)
    await db.connect()
    try:
        async with httpx.AsyncClient(event_hooks={"request": [hook], "response": [hook.on_response]}) as http:
            provider = GEMINI.connect(fake, http, sleeps)
            runner = JobRunner(
                JobStore(db),
                {provider.name: provider},
                FileSink(tmp_path / "out"),
                settings.jobs,
                settings.imagine,
                http=http,
                clock=clock,
                budgets={provider.name: budget},
            )
            request = GenerationRequest(model=NB2, prompt="overloaded", resolution="1K")
            new = NewJob(provider=provider.name, model=NB2, request=request)
            ids = [(await runner.create(new)).id]
            sent: list[int] = []
            for _ in range(int(deadline // 5) + 2):
                await runner.run_once()
                sent.append(len(fake.creates))
                if len(ids) < count:
                    ids += [(await runner.create(new)).id for _ in range(count - len(ids))]
                clock.now += 5
            jobs = [await runner.store.get(job_id) for job_id in ids]
    finally:
        await db.close()
    assert all(job is not None and job.terminal for job in jobs)
    return [job for job in jobs if job is not None], sent


async def test_an_overload_past_the_job_s_deadline_ends_it_saying_so(
    fake: FakeGemini, sleeps: SleepRecorder, tmp_path: Path
) -> None:
    # Sent again 30 s later while that is before its deadline (95 s here: at 0, 30, 60 and 90 s), then ended.
    fake.script(*["overloaded"] * 10)
    (job,), _ = await run_jobs(fake, sleeps, tmp_path, 1, deadline=95)
    assert (job.state, job.error_category) == (JobState.FAILED, ErrorCategory.RATE_LIMITED)
    assert job.error_message == "Gemini is overloaded right now. Try again in a minute."
    assert len(fake.creates) == 4 and sleeps.delays == []


async def test_an_overload_pauses_gemini_for_every_job(fake: FakeGemini, sleeps: SleepRecorder, tmp_path: Path) -> None:
    # While the first job waits out the overload, the second is not sent into it.
    fake.script("overloaded")
    jobs, sent = await run_jobs(fake, sleeps, tmp_path, 2)
    assert [job.state for job in jobs] == [JobState.DELIVERED, JobState.DELIVERED]
    # Nothing went to Gemini for the 30 s it asked for; then both jobs, one at a time (a probe first).
    quiet = int(OVERLOADED_RETRY_SECONDS // 5)
    assert sent[:quiet] == [1] * quiet and sent[quiet:][:2] == [2, 3] and sent[-1] == 3


async def test_overloaded_waits_thirty_seconds_where_a_call_may_wait_that_long(
    fake: FakeGemini, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    patient = GeminiProvider(
        api_key=fake.api_key,
        base_url=fake.base_url,
        client=client,
        sleep=sleeps,
        policy=RetryPolicy(max_attempts=2, max_delay=60.0),
    )
    fake.script("overloaded")
    handle = await patient.submit(req())
    assert ready(handle).status is UpdateStatus.SUCCEEDED
    assert len(fake.creates) == 2 and sleeps.delays == [30.0]


@pytest.mark.parametrize(
    ("outcome", "error_type", "category"),
    [
        ("api_key_invalid", AuthError, ErrorCategory.AUTH),
        ("billing_400", OutOfCreditError, ErrorCategory.OUT_OF_CREDIT),
        ("model_404", AuthError, ErrorCategory.AUTH),
    ],
)
async def test_refusals_are_not_retried(
    provider: GeminiProvider,
    fake: FakeGemini,
    sleeps: SleepRecorder,
    outcome: str,
    error_type: type[ProviderError],
    category: ErrorCategory,
) -> None:
    fake.script(outcome)
    with pytest.raises(error_type) as info:
        await provider.submit(req())
    error = info.value
    assert error.category is category and error.provider == "gemini"
    assert_user_safe(error.user_message, fake)
    assert fake.api_key not in error.detail
    assert len(fake.creates) == 1 and fake.jobs == {} and sleeps.delays == []
    if outcome == "billing_400":
        assert "billing" in error.user_message and "FAILED_PRECONDITION" in error.detail
    if outcome == "model_404":
        assert f"`{FLASH_ID}`" in error.user_message and "retired" in error.user_message


async def test_a_retired_model_id_is_reported(
    fake: FakeGemini, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    provider = GeminiProvider(
        api_key=fake.api_key,
        base_url=fake.base_url,
        client=client,
        sleep=sleeps,
        model_ids={PRO: "gemini-2.9-pro-image"},
    )
    with pytest.raises(AuthError) as info:
        await provider.submit(req(PRO))
    assert "`gemini-2.9-pro-image`" in info.value.user_message and "Nano Banana Pro" in info.value.user_message
    assert "NOT_FOUND" in info.value.detail
    assert [c.path for c in fake.creates] == ["/v1beta/models/gemini-2.9-pro-image:generateContent"]


async def test_the_key_never_travels_in_a_url(provider: GeminiProvider, fake: FakeGemini) -> None:
    ref = served(fake, "k.png", picture())
    fake.script("rate_limited", "finish:IMAGE_SAFETY")
    await provider.submit(req(reference_images=(ref,)))
    await provider.submit(req(PRO))
    await provider.check()
    assert len(fake.requests) >= 6
    for recorded in fake.requests:
        assert "key" not in recorded.query
        assert fake.api_key not in recorded.path and fake.api_key not in str(recorded.query)
        if recorded.path.startswith("/v1beta/"):
            assert recorded.headers["x-goog-api-key"] == fake.api_key
        else:
            assert "x-goog-api-key" not in recorded.headers


# --- poll, check, hold --------------------------------------------------------------------------------


async def test_poll_needs_the_ready_answer(provider: GeminiProvider) -> None:
    handle = await provider.submit(req())
    bare = handle.model_copy(update={"ready": None})
    update = await provider.poll(bare)
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.INTERNAL)
    assert update.error_message and "http" not in update.error_message


async def test_check_names_an_unknown_model_id(fake: FakeGemini, client: httpx.AsyncClient) -> None:
    provider = GeminiProvider(
        api_key=fake.api_key, base_url=fake.base_url, client=client, model_ids={NB2: "gemini-9-flash-image"}
    )
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (True, True)
    assert "'gemini-9-flash-image'" in result.detail and "retired" in result.detail
    assert "gemini.model_ids.nano_banana_2" in result.detail and PRO_ID not in result.detail


async def test_a_held_call_answers_when_released(provider: GeminiProvider, fake: FakeGemini) -> None:
    fake.hold(True)
    task = asyncio.create_task(provider.submit(req()))
    for _ in range(200):
        if fake.jobs:
            break
        await asyncio.sleep(0.01)
    (job,) = fake.jobs.values()
    assert job.held and not job.answered and not task.done()
    fake.release(job.response_id)
    handle = await task
    assert handle.provider_job_id == job.response_id and ready(handle).status is UpdateStatus.SUCCEEDED


# --- the fake's own protocol details ------------------------------------------------------------------


async def test_fake_gemini_protocol(fake: FakeGemini, client: httpx.AsyncClient) -> None:
    url = f"{fake.base_url}{GENERATE}"
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    missing = await client.post(url, json=body)
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
    by_query = await client.post(url, json=body, params={"key": fake.api_key})  # Google accepts it too
    assert by_query.status_code == 200 and by_query.json()["candidates"][0]["finishReason"] == "STOP"
    auth = {"x-goog-api-key": fake.api_key}
    snake = {
        "contents": [{"parts": [{"text": "x"}]}],
        "generation_config": {"image_config": {"image_size": "2K"}},
    }
    assert (await client.post(url, json=snake, headers=auth)).status_code == 200  # proto JSON: both cases
    models = (await client.get(f"{fake.base_url}/v1beta/models", headers=auth)).json()["models"]
    assert [m["name"] for m in models] == [f"models/{FLASH_ID}", f"models/{PRO_ID}"]
    stream = await client.post(url.replace(":generateContent", ":streamGenerateContent"), json=body, headers=auth)
    assert stream.status_code == 404
    gone = await client.get(f"{fake.base_url}/v1beta/models/gemini-3-pro-image-preview", headers=auth)
    assert (gone.status_code, gone.json()["error"]["status"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("model_id", "generation_config", "fragment"),
    [
        (PRO_ID, {"imageConfig": {"imageSize": "512"}}, "image_size"),
        (FLASH_ID, {"imageConfig": {"imageSize": "1k"}}, "image_size"),  # upper-case K required
        (PRO_ID, {"imageConfig": {"aspectRatio": "8:1"}}, "aspect_ratio"),
        (PRO_ID, {"thinkingConfig": {"thinkingLevel": "HIGH"}}, "thinking_level"),
        (FLASH_ID, {"imageConfig": {"outputMimeType": "image/jpeg"}}, "not supported in Gemini API"),
        (FLASH_ID, {"responseModalities": ["AUDIO"]}, "response_modalities"),
        (FLASH_ID, {"imageSize": "1K"}, 'Unknown name "imageSize"'),
    ],
)
async def test_fake_validates_like_gemini(
    fake: FakeGemini,
    client: httpx.AsyncClient,
    model_id: str,
    generation_config: dict[str, Any],
    fragment: str,
) -> None:
    response = await client.post(
        f"{fake.base_url}/v1beta/models/{model_id}:generateContent",
        json={"contents": [{"parts": [{"text": "x"}]}], "generationConfig": generation_config},
        headers={"x-goog-api-key": fake.api_key},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and fragment in error["message"]
    assert fake.jobs == {}


# --- property: whatever validate() lets through, Gemini (the fake's reading of the docs) accepts ------


_FAMILY = {NB2: "flash", PRO: "pro"}
# Built once, not per example (building and validating a fresh strategy cost more than the example): either model,
# then a request for it, as drawing the model first and then its request did.
_GEMINI_REQUESTS = st.one_of([st.tuples(st.just(caps), valid_requests(caps)) for caps in GEMINI_MODELS.values()])
_INLINE = st.lists(st.sampled_from([("image/png", b"\x89PNG"), ("image/webp", b"RIFF")]), max_size=14).map(tuple)


@settings(max_examples=150, deadline=None)
@given(drawn=_GEMINI_REQUESTS, refs=_INLINE)
def test_valid_requests_make_valid_bodies(drawn: tuple[Capabilities, GenerationRequest], refs: tuple[Any, ...]) -> None:
    caps, request = drawn
    validate(request, caps)
    body = build_request_body(request, caps, refs)
    assert validate_generate_request(_FAMILY[caps.model], body) == []
    config = body["generationConfig"]["imageConfig"]
    assert config["imageSize"] == (request.resolution or "1K")
    assert ("aspectRatio" in config) == (request.aspect_ratio not in (None, "auto"))


# --- narrow parser cases the fake does not produce (httpx.MockTransport) ------------------------------


def mock_provider(response: httpx.Response) -> GeminiProvider:
    provider = GEMINI.over_mock(Answers(create=[response]))
    assert isinstance(provider, GeminiProvider)
    return provider


def image_part(data: bytes, **extra: Any) -> dict[str, Any]:
    return {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(data).decode()}, **extra}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # A filter stop wins even when an image part came along.
        ({"candidates": [{"finishReason": "IMAGE_SAFETY", "content": {"parts": [image_part(picture())]}}]},
         (UpdateStatus.FAILED, ErrorCategory.CONTENT_BLOCKED)),
        # A block reason we do not know is still a block.
        ({"promptFeedback": {"blockReason": "NEW_REASON"}},
         (UpdateStatus.FAILED, ErrorCategory.CONTENT_BLOCKED)),
        # No candidates and no block reason: nothing came back.
        ({"usageMetadata": {"promptTokenCount": 3}}, (UpdateStatus.FAILED, ErrorCategory.NO_IMAGE)),
        # Only a thought image: the final image never came.
        ({"candidates": [{"finishReason": "STOP",
                          "content": {"parts": [image_part(picture(), thought=True)]}}]},
         (UpdateStatus.FAILED, ErrorCategory.NO_IMAGE)),
        # Base64 that does not decode.
        ({"candidates": [{"finishReason": "STOP", "content": {"parts": [{"inlineData": {"data": "%%%"}}]}}]},
         (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)),
        # URL-safe, unpadded base64 (proto JSON allows it) still decodes.
        ({"candidates": [{"finishReason": "STOP", "content": {"parts": [
            {"inlineData": {"data": base64.urlsafe_b64encode(picture((33, 7))).decode().rstrip("=")}}]}}]},
         (UpdateStatus.SUCCEEDED, None)),
        # snake_case answers are read too.
        ({"candidates": [{"finish_reason": "STOP", "content": {"parts": [
            {"inline_data": {"mime_type": "image/png", "data": base64.b64encode(picture()).decode()}}]}}]},
         (UpdateStatus.SUCCEEDED, None)),
    ],
)  # fmt: skip
async def test_answer_shapes(body: dict[str, Any], expected: tuple[UpdateStatus, ErrorCategory | None]) -> None:
    update = ready(await mock_provider(httpx.Response(200, json=body)).submit(req()))
    assert (update.status, update.error_category) == expected
    if update.status is UpdateStatus.FAILED:
        assert update.error_message and "http" not in update.error_message


# Images of a byte, and of more than two of the decoder's slices (bot/providers/base64_text.py).
IMAGE_SLICE = BASE64_SLICE // 4 * 3


@pytest.mark.parametrize("size", [1, 2 * IMAGE_SLICE + 2])
@pytest.mark.parametrize("encoding", sorted(SPELLINGS))
async def test_an_image_arrives_whole_however_long_and_however_encoded(size: int, encoding: str) -> None:
    data = (b"\xfb\xff\xbf" + os.urandom(size))[:size]  # starts with "+/+/" (url-safe: "-_-_")
    body = {"candidates": [{"finishReason": "STOP", "content": {"parts": [
        {"inlineData": {"mimeType": "image/png", "data": SPELLINGS[encoding](data)}}]}}]}  # fmt: skip
    update = ready(await mock_provider(httpx.Response(200, json=body)).submit(req()))
    assert update.status is UpdateStatus.SUCCEEDED and update.images[0].data == data


@pytest.mark.parametrize("bad", ["QUJD=RA==", "QUJD" * BASE64_SLICE + "$", "QUJDR"])
async def test_base64_that_does_not_decode_anywhere_in_a_long_answer_is_refused(bad: str) -> None:
    body = {"candidates": [{"finishReason": "STOP", "content": {"parts": [{"inlineData": {"data": bad}}]}}]}
    update = ready(await mock_provider(httpx.Response(200, json=body)).submit(req()))
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)


async def test_unknown_block_reason_is_named() -> None:
    update = ready(
        await mock_provider(httpx.Response(200, json={"promptFeedback": {"blockReason": "NEW_REASON"}})).submit(req())
    )
    assert update.error_message and "new_reason" in update.error_message


@pytest.mark.parametrize("large", [False, True], ids=["small", "taken-out-of-the-answer"])
async def test_the_last_non_thought_image_wins(large: bool) -> None:
    """``large``: each image's base64 is long enough to be decoded straight from the answer's bytes
    (base64_text.parse_lifting): every part still gets its own image back."""
    if large:  # incompressible: about 120 KB of PNG each, 160 KB of base64
        first, draft, last = noise_png(200, 200), noise_png(210, 200), noise_png(30, 700)
    else:
        first, draft, last = picture((10, 10)), picture((20, 20)), picture((30, 20))
    parts = [image_part(first), image_part(draft, thought=True), {"text": "done"}, image_part(last)]
    body = {"candidates": [{"finishReason": "STOP", "content": {"parts": parts}}], "responseId": "r-1"}
    handle = await mock_provider(httpx.Response(200, json=body)).submit(req())
    update = ready(handle)
    assert [i.data for i in update.images] == [last] and (update.images[0].width, update.text) == (30, "done")
    assert handle.provider_job_id == "r-1"


async def test_grounding_sources_and_generated_ids() -> None:
    body = {
        "candidates": [
            {
                "finishReason": "STOP",
                "content": {"parts": [image_part(picture())]},
                "groundingMetadata": {
                    "groundingChunks": [{"web": {"uri": "https://news.example/a", "title": "A"}}, {"web": {}}]
                },
            }
        ]
    }
    handle = await mock_provider(httpx.Response(200, json=body)).submit(req())
    assert handle.provider_job_id.startswith("gemini-")  # no responseId: one is made up
    assert ready(handle).usage["groundingSources"] == [{"uri": "https://news.example/a", "title": "A"}]


@pytest.mark.parametrize(
    ("response", "error_type", "retry_after"),
    [
        (httpx.Response(401, json={"error": {"code": 401, "status": "UNAUTHENTICATED"}}), AuthError, None),
        (httpx.Response(413, text="too large"), BadInputError, None),
        (httpx.Response(422, json={"error": {"code": 422}}), BadInputError, None),
        # Some Google front ends wrap the error in a list; RetryInfo is still found.
        (httpx.Response(429, json=[{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}]),
         RateLimitedError, 1.5),
        # Without RetryInfo, a Retry-After header still counts.
        (httpx.Response(429, headers={"Retry-After": "2"}, text="slow down"), RateLimitedError, 2.0),
    ],
)  # fmt: skip
async def test_status_mapping(
    response: httpx.Response, error_type: type[ProviderError], retry_after: float | None
) -> None:
    error = await assert_create_refused(mock_provider(response), error_type)
    if retry_after is not None:
        assert isinstance(error, RateLimitedError) and error.retry_after == retry_after


async def test_answer_that_is_not_an_object_is_uncertain() -> None:
    with pytest.raises(SubmitUncertainError):
        await mock_provider(httpx.Response(200, json=["not", "an", "object"])).submit(req())


# --- a conversation of edits: earlier turns go back with their signatures (docs/providers.md 6.3) -----


def turn(prompt: str, result: ReferenceImage, *refs: ReferenceImage, signature: str | None = None) -> Turn:
    return Turn(prompt=prompt, reference_images=refs, result=result, thought_signature=signature)


def inline_bytes(part: dict[str, Any]) -> bytes:
    return base64.b64decode(part["inlineData"]["data"])


async def test_a_conversation_is_sent_turn_by_turn_with_the_signatures(
    provider: GeminiProvider, fake: FakeGemini
) -> None:
    cat, night, hat = picture(colour=(1, 1, 1)), picture(colour=(2, 2, 2)), picture(colour=(3, 3, 3))
    scarf = picture(colour=(4, 4, 4))
    first, second = served(fake, "cat.png", cat), served(fake, "night.png", night)
    history = (
        turn("a cat", first, signature="sig-1"),  # /imagine, no references
        turn("make it night", second, first, served(fake, "hat.png", hat), signature="sig-2"),
    )
    request = req(prompt="add a scarf", reference_images=(second, served(fake, "scarf.png", scarf)), history=history)
    handle = await provider.submit(request)
    assert ready(handle).status is UpdateStatus.SUCCEEDED

    contents = fake.creates[0].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert [c["parts"][0]["text"] for c in contents[::2]] == ["a cat", "make it night", "add a scarf"]
    # Each answer is the image as delivered, with the signature Gemini gave it, untouched.
    assert [inline_bytes(c["parts"][0]) for c in contents[1::2]] == [cat, night]
    assert [c["parts"][0]["thoughtSignature"] for c in contents[1::2]] == ["sig-1", "sig-2"]
    # A turn's first reference is the answer before it: not sent twice.
    assert [inline_bytes(p) for p in contents[2]["parts"][1:]] == [hat]
    assert [inline_bytes(p) for p in contents[4]["parts"][1:]] == [scarf]
    assert validate_generate_request("flash", fake.creates[0].json) == []


async def test_the_answer_carries_the_signature_of_its_image(provider: GeminiProvider, fake: FakeGemini) -> None:
    (image,) = ready(await provider.submit(req())).images
    assert image.thought_signature  # the fake signs every answer image, as Gemini does


async def test_a_turn_whose_image_is_gone_is_left_out_with_the_turns_before_it(
    provider: GeminiProvider, fake: FakeGemini
) -> None:
    expired = ReferenceImage(url=f"{fake.origin}/refs/expired.png", content_type="image/png", size=10, filename="a.png")
    gone = ReferenceImage(url=f"{fake.origin}/refs/gone.png", content_type="image/png", size=10, filename="b.png")
    second, third = served(fake, "second.png", picture(colour=(2, 2, 2))), served(fake, "third.png", picture())
    history = (
        turn("a cat", expired, signature="sig-1"),
        turn("make it night", second, expired, signature="sig-2"),
        turn("add this hat", third, second, gone, signature="sig-3"),
    )
    await provider.submit(req(prompt="add a scarf", reference_images=(third,), history=history))
    contents = fake.creates[0].json["contents"]
    # The first turn's image is gone: the turns from the second go back, without the images that are gone.
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert contents[0]["parts"] == [{"text": "make it night"}] and contents[2]["parts"] == [{"text": "add this hat"}]
    assert [inline_bytes(c["parts"][0]) for c in contents[1::2]] == [picture(colour=(2, 2, 2)), picture()]
    assert contents[4]["parts"] == [{"text": "add a scarf"}]


async def test_without_the_image_being_edited_the_request_is_refused(
    provider: GeminiProvider, fake: FakeGemini
) -> None:
    expired = ReferenceImage(url=f"{fake.origin}/refs/expired.png", content_type="image/png", size=10, filename="a.png")
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(reference_images=(expired,), history=(turn("a cat", expired),)))
    assert "`a.png`" in info.value.user_message and fake.creates == []


def test_only_the_latest_turns_that_fit_the_image_limit_are_sent() -> None:
    images = [ref(i) for i in range(8)]
    history = (
        turn("one", images[0], images[1], images[2], signature="sig-1"),  # 2 references + its result
        turn("two", images[3], images[0], signature="sig-2"),  # the answer before, and its result
        turn("three", images[4], images[3], images[5], signature="sig-3"),  # the answer before, 1 more, and its result
    )
    request = req(reference_images=(images[4], images[6]), history=history)
    assert [t.prompt for t in turns_to_send(request, 14)] == ["one", "two", "three"]  # 3 + 1 + 2 + 1 = 7
    # 6 images: "two" becomes the first turn sent, with its first reference again (1 + 1 + 2 + 1 = 5).
    assert [t.prompt for t in turns_to_send(request, 6)] == ["two", "three"]
    assert [t.prompt for t in turns_to_send(request, 4)] == ["three"]  # 2 + 1 + 1
    assert turns_to_send(request, 3) == ()
    # A request whose first reference is not the last answer continues nothing.
    assert turns_to_send(req(reference_images=(images[6],), history=history), 14) == ()


def only_call(fake: FakeGemini) -> FakeGeminiCall:
    (call,) = fake.jobs.values()
    return call


async def test_an_earlier_image_from_another_provider_goes_back_as_the_member_s_reference(
    provider: GeminiProvider, fake: FakeGemini
) -> None:
    # "a cat" was drawn by SeaArt (no signature: only Gemini signs its images), then edited here ("make it
    # night", signed), and now edited again. Before, the cat went back as a model turn Gemini never produced,
    # without a signature (NB2 is reported to refuse it: "invalid thought signature").
    cat, night, hat = picture(colour=(1, 1, 1)), picture(colour=(2, 2, 2)), picture(colour=(3, 3, 3))
    first, second = served(fake, "cat.png", cat), served(fake, "night.png", night)
    history = (
        turn("a cat", first),
        turn("make it night", second, first, served(fake, "hat.png", hat), signature="sig-2"),
    )
    request = req(prompt="add a scarf", reference_images=(second,), history=history)
    assert ready(await provider.submit(request)).status is UpdateStatus.SUCCEEDED
    contents = fake.creates[0].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    # The turn Gemini answered opens with the member's images, SeaArt's cat first (its first reference).
    assert contents[0]["parts"][0] == {"text": "make it night"}
    assert [inline_bytes(p) for p in contents[0]["parts"][1:]] == [cat, hat]
    assert inline_bytes(contents[1]["parts"][0]) == night and contents[1]["parts"][0]["thoughtSignature"] == "sig-2"
    assert contents[2]["parts"] == [{"text": "add a scarf"}]
    assert only_call(fake).unsigned_model_images == 0


async def test_editing_another_provider_s_image_sends_it_as_the_member_s_reference(
    provider: GeminiProvider, fake: FakeGemini
) -> None:
    # The image being edited came from Kie: nothing of its conversation goes back as Gemini's, the image is the
    # request's own reference (as in an edit without history), within the model's reference limit.
    cat = picture(colour=(1, 1, 1))
    first = served(fake, "cat.png", cat)
    request = req(prompt="make it night", reference_images=(first,), history=(turn("a cat", first),))
    assert ready(await provider.submit(request)).status is UpdateStatus.SUCCEEDED
    (content,) = fake.creates[0].json["contents"]
    assert content["role"] == "user" and content["parts"][0] == {"text": "make it night"}
    assert [inline_bytes(p) for p in content["parts"][1:]] == [cat]
    assert only_call(fake).unsigned_model_images == 0


def test_a_body_never_holds_a_model_turn_without_its_signature() -> None:
    # build_request_body itself, whatever turns it is given: an unsigned one opens the next user turn.
    png = picture()
    earlier = PastTurn(prompt="a cat", images=(), result=("image/png", png), signature=None)
    body = build_request_body(req(prompt="make it night"), GEMINI_MODELS[NB2], (), (earlier,))
    image = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "make it night"}, image]}]


@pytest.mark.parametrize(("name", "value"), [("temperature", 0.7), ("topP", 0.9), ("topK", 40), ("top_k", 40)])
async def test_the_fake_refuses_the_deprecated_sampling_knobs(
    fake: FakeGemini, client: httpx.AsyncClient, name: str, value: float
) -> None:
    # docs/providers.md 6.3: temperature, topP and topK are deprecated and must not be sent. The fake took them.
    body = build_request_body(req(), GEMINI_MODELS[NB2])
    body["generationConfig"][name] = value
    answer = await client.post(f"{fake.base_url}{GENERATE}", json=body, headers={"x-goog-api-key": fake.api_key})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT") and "must not be sent" in error["message"]
    assert fake.jobs == {}


async def test_a_generate_call_slower_than_request_timeout_still_brings_its_image(
    fake: FakeGemini, client: httpx.AsyncClient
) -> None:
    # generateContent answers once the image is drawn; from the settings its read timeout is at least 360 s
    # (docs/providers.md 8.4), whatever request_timeout says (180 s by default). Before, request_timeout cut it
    # short, and an image Google may have billed was lost as "uncertain".
    settings = load_settings(
        None,
        environment=False,
        gemini_api_key=fake.api_key,
        providers={"gemini": {"enabled": True, "base_url": fake.base_url, "request_timeout": 0.2}},
    )
    provider = GeminiProvider.from_settings(settings, client)
    fake.hold_create_answers()
    call = asyncio.create_task(provider.submit(req()))
    await asyncio.sleep(1.0)  # five times request_timeout: an answer later than it allows
    assert len(fake.jobs) == 1, "the call arrived, and its answer is held"
    fake.hold_create_answers(False)
    assert ready(await call).status is UpdateStatus.SUCCEEDED
    assert len(fake.creates) == 1
