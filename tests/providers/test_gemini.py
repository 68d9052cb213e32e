"""GeminiProvider against FakeGemini over a real socket, with the real httpx client."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
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
    ErrorCategory,
    InvalidRequestError,
    OutOfCreditError,
    ProviderError,
    RateLimitedError,
    SubmitUncertainError,
)
from bot.models import GenerationRequest, JobHandle, JobUpdate, ReferenceImage, UpdateStatus
from bot.prompts import clean_prompt
from bot.providers._http import RetryPolicy
from bot.providers.base import Provider, validate
from bot.providers.gemini import (
    DEFAULT_BASE_URL,
    GEMINI_DEFAULT_MODEL_IDS,
    GEMINI_MODELS,
    HARM_CATEGORIES,
    GeminiProvider,
    build_request_body,
    gemini_models,
    safety_settings_for,
)
from bot.testing.providers._base import NOT_AN_IMAGE
from bot.testing.providers.gemini import (
    FINISH_REASONS,
    GEMINI_OUTCOMES,
    PROMPT_BLOCK_REASONS,
    FakeGemini,
    validate_generate_request,
)

from .conftest import HANG_TIMEOUT, TIMEOUT, SleepRecorder

NB2 = "nano_banana_2"
PRO = "nano_banana_pro"
FLASH_ID = "gemini-3.1-flash-image"
PRO_ID = "gemini-3-pro-image"
PROMPT = "A red apple on a white table, clean studio lighting."
GENERATE = f"/v1beta/models/{FLASH_ID}:generateContent"


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(hang_seconds=10.0) as server:
        yield server


@pytest_asyncio.fixture
async def provider(fake: FakeGemini, client: httpx.AsyncClient, sleeps: SleepRecorder) -> GeminiProvider:
    return GeminiProvider(
        api_key=fake.api_key,
        base_url=fake.base_url,
        client=client,
        policy=RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=20.0),
        timeout=TIMEOUT,
        sleep=sleeps,
    )


def picture(size: tuple[int, int] = (40, 30), fmt: str = "PNG", colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    return buffer.getvalue()


def served(fake: FakeGemini, name: str, data: bytes, content_type: str = "image/png") -> ReferenceImage:
    url = fake.serve_reference(name, data, content_type)
    return ReferenceImage(url=url, content_type=content_type, size=len(data), filename=name)


def req(model: str = NB2, **kw: Any) -> GenerationRequest:
    return GenerationRequest(model=model, prompt=kw.pop("prompt", PROMPT), **kw)


def ready(handle: JobHandle) -> JobUpdate:
    assert handle.ready is not None, "a synchronous provider returns a terminal update"
    return handle.ready


def assert_user_safe(message: str | None, fake: FakeGemini) -> None:
    assert message, "every failure needs a user-facing message"
    assert "http" not in message.lower() and "127.0.0.1" not in message
    assert fake.api_key not in message
    assert "{" not in message  # no raw JSON


def decode(data: bytes | None) -> tuple[str | None, tuple[int, int]]:
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


# --- the provider as a whole ---------------------------------------------------------------------


def test_capabilities_are_data() -> None:
    nb2, pro = GEMINI_MODELS[NB2], GEMINI_MODELS[PRO]
    assert (nb2.provider_model, pro.provider_model) == (FLASH_ID, PRO_ID)
    assert nb2.resolutions == ("512", "1K", "2K", "4K") and pro.resolutions == ("1K", "2K", "4K")
    assert len(nb2.aspect_ratios) == 15 and {"1:8", "8:1", "1:4", "4:1", "auto"} <= set(nb2.aspect_ratios)
    assert len(pro.aspect_ratios) == 11 and "1:8" not in pro.aspect_ratios and "auto" in pro.aspect_ratios
    assert nb2.max_reference_images == pro.max_reference_images == 14
    assert nb2.thinking_levels == ("minimal", "high") and pro.thinking_levels == ()
    for caps in (nb2, pro):
        assert caps.seed is False and caps.output_formats == ()
        assert caps.web_search and caps.safety_knob and not caps.queued
    assert [nb2.price(r) for r in ("512", None, "2K", "4K")] == [45_000, 67_000, 101_000, 151_000]
    assert [pro.price(r) for r in ("1K", "2K", "4K", "512")] == [134_000, 134_000, 240_000, None]
    assert gemini_models(None) == gemini_models(GEMINI_DEFAULT_MODEL_IDS) == GEMINI_MODELS


def test_model_ids_are_configuration() -> None:
    models = gemini_models({"nano_banana_2": "models/gemini-nano-banana-2.1"})
    assert models[NB2].provider_model == "gemini-nano-banana-2.1"
    assert models[NB2].resolutions == ("1K", "2K", "4K")  # 2.1 has no 512 tier (6.2)
    assert models[PRO] == GEMINI_MODELS[PRO]
    lite = gemini_models({"nano_banana_2": "gemini-3.1-flash-lite-image"})[NB2]
    assert lite.resolutions == ("1K",) and lite.web_search is False


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


async def test_implements_the_provider_protocol(provider: GeminiProvider, fake: FakeGemini) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == "gemini"
    assert set(provider.models) == {NB2, PRO}
    assert fake.api_key not in repr(provider) and FLASH_ID in repr(provider)
    await provider.aclose()


@pytest.mark.parametrize(
    ("kw", "setting"),
    [
        ({"api_key": " "}, "gemini.api_key"),
        ({"api_key": "ab cd"}, "gemini.api_key"),
        ({"api_key": "k", "base_url": "generativelanguage.googleapis.com"}, "gemini.base_url"),
        ({"api_key": "k", "base_url": "https://x.test/?key=abc"}, "gemini.base_url"),
    ],
)
def test_bad_settings_are_config_errors(client: httpx.AsyncClient, kw: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        GeminiProvider(client=client, api_key=kw["api_key"], base_url=kw.get("base_url", DEFAULT_BASE_URL))
    assert info.value.setting == setting


# --- what the provider sends ---------------------------------------------------------------------


async def test_minimal_request(provider: GeminiProvider, fake: FakeGemini) -> None:
    handle = await provider.submit(req())
    (create,) = fake.creates
    assert create.path == GENERATE
    assert create.headers["x-goog-api-key"] == fake.api_key
    assert "Authorization" not in create.headers
    assert create.headers["Content-Type"] == "application/json"
    assert create.query == {}  # never ?key=
    assert create.json == {
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
        # The default size is sent explicitly (it decides the price); nothing else optional is.
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"imageSize": "1K"}},
    }
    assert handle.provider == "gemini" and handle.model == NB2
    assert handle.provider_job_id in fake.jobs and handle.extra == {"model_id": FLASH_ID}


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


async def test_pro_request(provider: GeminiProvider, fake: FakeGemini) -> None:
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


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5, 6])
async def test_safety_tolerance_reaches_gemini(provider: GeminiProvider, fake: FakeGemini, level: int) -> None:
    handle = await provider.submit(req(safety_tolerance=level))
    assert ready(handle).status is UpdateStatus.SUCCEEDED  # the fake accepted every threshold
    assert fake.creates[0].json is not None
    assert fake.creates[0].json["safetySettings"] == safety_settings_for(level)


async def test_base_url_may_name_the_api_version(
    fake: FakeGemini, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    provider = GeminiProvider(api_key=fake.api_key, base_url=fake.base_url + "/v1beta/", client=client)
    await provider.submit(req())
    assert fake.creates[0].path == GENERATE


# --- safety settings -----------------------------------------------------------------------------

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


async def test_no_tolerance_means_no_safety_settings(provider: GeminiProvider, fake: FakeGemini) -> None:
    await provider.submit(req(safety_tolerance=None))
    assert fake.creates[0].json is not None and "safetySettings" not in fake.creates[0].json


# --- refusals before anything is sent ------------------------------------------------------------


def _ref(n: int, content_type: str = "image/png", size: int = 1000) -> ReferenceImage:
    return ReferenceImage(
        url=f"https://cdn.example.test/r{n}.png", content_type=content_type, size=size, filename=f"r{n}.png"
    )


@pytest.mark.parametrize(
    "request_",
    [
        req(seed=7),
        req(output_format="png"),
        req(PRO, thinking_level="high"),
        req(PRO, resolution="512"),
        req(PRO, aspect_ratio="1:8"),
        req(aspect_ratio="7:3"),
        req(resolution="8K"),
        req(reference_images=tuple(_ref(n) for n in range(15))),
        req(prompt="a" * 20_001),
        req(prompt=" \n "),
        req(reference_images=(_ref(1, "application/pdf"),)),
        req(reference_images=(ReferenceImage(url="file:///etc/passwd", content_type="image/png", size=1),)),
        req(reference_images=tuple(_ref(n, size=10 * 1024 * 1024) for n in range(8))),
        req("nano_banana_9"),
    ],
    ids=[
        "seed",
        "output-format",
        "thinking-pro",
        "512-pro",
        "1:8-pro",
        "7:3",
        "8K",
        "15-refs",
        "long-prompt",
        "blank",
        "pdf-ref",
        "file-url",
        "80-MiB-of-refs",
        "model",
    ],
)
async def test_refusals_never_reach_anyone(
    provider: GeminiProvider, fake: FakeGemini, request_: GenerationRequest
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(request_)
    assert_user_safe(info.value.user_message, fake)
    assert fake.requests == []


async def test_seed_refusal_says_it_is_unsupported(provider: GeminiProvider) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(seed=1))
    assert "seed" in info.value.user_message and "leave it unset" in info.value.user_message


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
        (picture(fmt="JPEG"), "image/png", "says it is PNG but is really a JPEG"),
        (picture(fmt="PNG"), "image/webp", "says it is WEBP but is really a PNG"),
    ],
    ids=["text", "truncated", "gif", "jpeg-as-png", "png-as-webp"],
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
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(reference_images=(ref,)))
    assert "`x.png`" in info.value.user_message and "network error" in info.value.user_message
    assert fake.requests == []


# --- what the provider makes of each answer ------------------------------------------------------


async def test_success(provider: GeminiProvider, fake: FakeGemini) -> None:
    handle = await provider.submit(req(aspect_ratio="9:16", resolution="2K"))
    update = ready(handle)
    assert update.status is UpdateStatus.SUCCEEDED and update.error_category is None
    (image,) = update.images
    assert image.url is None and image.content_type == "image/png"
    assert decode(image.data) == ("PNG", (1152, 2048)) and (image.width, image.height) == (1152, 2048)
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


@pytest.mark.parametrize(
    ("outcome", "category"),
    [("content_blocked", ErrorCategory.CONTENT_BLOCKED), ("transient_failure", ErrorCategory.TRANSIENT)],
)
async def test_common_failure_outcomes(
    provider: GeminiProvider, fake: FakeGemini, outcome: str, category: ErrorCategory
) -> None:
    fake.script(outcome)
    update = ready(await provider.submit(req()))
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, category)
    assert_user_safe(update.error_message, fake)


async def test_undecodable_image_is_left_to_delivery(provider: GeminiProvider, fake: FakeGemini) -> None:
    fake.script("undecodable_image")
    update = ready(await provider.submit(req()))
    assert update.status is UpdateStatus.SUCCEEDED
    (image,) = update.images
    assert image.data == NOT_AN_IMAGE and (image.width, image.height) == (None, None)
    with pytest.raises(UnidentifiedImageError):
        decode(image.data)


async def test_malformed_answer_is_uncertain_and_not_resent(
    provider: GeminiProvider, fake: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script("malformed")
    with caplog.at_level(logging.DEBUG), pytest.raises(SubmitUncertainError) as info:
        await provider.submit(req())
    assert "IN_PROGR" in info.value.detail and fake.api_key not in info.value.detail
    assert len(fake.creates) == 1 and fake.api_key not in caplog.text


# --- HTTP errors and retries ---------------------------------------------------------------------


async def test_rate_limit_honours_retry_info(provider: GeminiProvider, fake: FakeGemini, sleeps: SleepRecorder) -> None:
    fake.script("rate_limited")
    handle = await provider.submit(req())
    assert ready(handle).status is UpdateStatus.SUCCEEDED
    assert len(fake.creates) == 2 and list(fake.jobs) == [handle.provider_job_id]
    assert sleeps.delays == [3.0]  # RetryInfo.retryDelay "3s", not the sub-second backoff


async def test_rate_limit_until_attempts_run_out(
    provider: GeminiProvider, fake: FakeGemini, sleeps: SleepRecorder
) -> None:
    fake.script(*["rate_limited"] * 4)
    with pytest.raises(RateLimitedError) as info:
        await provider.submit(req())
    assert info.value.retry_after == 3.0 and info.value.status_code == 429
    assert_user_safe(info.value.user_message, fake)
    assert "RESOURCE_EXHAUSTED" in info.value.detail
    assert len(fake.creates) == 4 and fake.jobs == {} and sleeps.delays == [3.0, 3.0, 3.0]


async def test_long_retry_delay_is_handed_to_the_runner(
    provider: GeminiProvider, fake: FakeGemini, sleeps: SleepRecorder
) -> None:
    fake.retry_delay = "95.5s"
    fake.script("rate_limited")
    with pytest.raises(RateLimitedError) as info:
        await provider.submit(req())
    assert info.value.retry_after == 95.5
    assert len(fake.creates) == 1 and sleeps.delays == []


@pytest.mark.parametrize("outcome", ["server_error", "internal_error"])
async def test_server_errors_are_retried(
    provider: GeminiProvider, fake: FakeGemini, sleeps: SleepRecorder, outcome: str
) -> None:
    fake.script(outcome)
    handle = await provider.submit(req())
    assert ready(handle).status is UpdateStatus.SUCCEEDED
    assert len(fake.creates) == 2 and len(sleeps.delays) == 1


async def test_server_errors_until_attempts_run_out(provider: GeminiProvider, fake: FakeGemini) -> None:
    fake.script(*["server_error"] * 4)
    with pytest.raises(ProviderError) as info:
        await provider.submit(req())
    assert info.value.category is ErrorCategory.TRANSIENT and "overloaded" in info.value.user_message
    assert len(fake.creates) == 4


async def test_gateway_timeout_is_uncertain(provider: GeminiProvider, fake: FakeGemini, sleeps: SleepRecorder) -> None:
    fake.script("gateway_timeout")
    with pytest.raises(SubmitUncertainError):
        await provider.submit(req())
    assert len(fake.creates) == 1 and sleeps.delays == []


@pytest.mark.parametrize("outcome", ["create_hang", "never_finish"])
async def test_a_hanging_call_is_uncertain_and_never_resent(
    fake: FakeGemini, client: httpx.AsyncClient, sleeps: SleepRecorder, outcome: str
) -> None:
    provider = GeminiProvider(
        api_key=fake.api_key, base_url=fake.base_url, client=client, timeout=HANG_TIMEOUT, sleep=sleeps
    )
    fake.script(outcome)
    with pytest.raises(SubmitUncertainError) as info:
        await provider.submit(req())
    assert info.value.category is ErrorCategory.UNCERTAIN
    assert len(fake.creates) == 1 and len(fake.jobs) == 1  # made (and billed) upstream, never sent twice
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("outcome", "error_type", "category"),
    [
        ("auth", AuthError, ErrorCategory.AUTH),
        ("api_key_invalid", AuthError, ErrorCategory.AUTH),
        ("out_of_credit", OutOfCreditError, ErrorCategory.OUT_OF_CREDIT),
        ("billing_400", OutOfCreditError, ErrorCategory.OUT_OF_CREDIT),
        ("bad_input", BadInputError, ErrorCategory.BAD_INPUT),
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
    if outcome in ("out_of_credit", "billing_400"):
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


async def test_wrong_key_is_rejected_and_never_logged(
    fake: FakeGemini, client: httpx.AsyncClient, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    provider = GeminiProvider(api_key="wrong-key-1234", base_url=fake.base_url, client=client, sleep=sleeps)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        await provider.submit(req())
    assert "PERMISSION_DENIED" in info.value.detail
    assert "wrong-key-1234" not in info.value.detail and "wrong-key-1234" not in caplog.text
    assert fake.jobs == {} and len(fake.creates) == 1


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


# --- poll, cancel, check -------------------------------------------------------------------------


async def test_cancel_is_refused_and_poll_needs_the_ready_answer(provider: GeminiProvider) -> None:
    handle = await provider.submit(req())
    assert await provider.cancel(handle) is False
    bare = handle.model_copy(update={"ready": None})
    update = await provider.poll(bare)
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.INTERNAL)
    assert update.error_message and "http" not in update.error_message


async def test_check_good_key(provider: GeminiProvider, fake: FakeGemini) -> None:
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (True, True)
    assert FLASH_ID in result.detail and PRO_ID in result.detail
    assert [r.path for r in fake.requests] == [f"/v1beta/models/{FLASH_ID}", f"/v1beta/models/{PRO_ID}"]
    assert all(r.method == "GET" for r in fake.requests) and fake.creates == []


async def test_check_bad_key(fake: FakeGemini, client: httpx.AsyncClient) -> None:
    provider = GeminiProvider(api_key="bad-key-5678", base_url=fake.base_url, client=client)
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (True, False)
    assert "bad-key-5678" not in result.detail and "PERMISSION_DENIED" in result.detail
    assert len(fake.requests) == 1


async def test_check_names_an_unknown_model_id(fake: FakeGemini, client: httpx.AsyncClient) -> None:
    provider = GeminiProvider(
        api_key=fake.api_key, base_url=fake.base_url, client=client, model_ids={NB2: "gemini-9-flash-image"}
    )
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (True, True)
    assert "'gemini-9-flash-image'" in result.detail and "retired" in result.detail
    assert "gemini.model_ids.nano_banana_2" in result.detail and PRO_ID not in result.detail


async def test_check_unreachable(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = GeminiProvider(api_key="k-123456", base_url=f"http://127.0.0.1:{port}", client=client)
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (False, None)
    assert "k-123456" not in result.detail


# --- the fake's own protocol details -------------------------------------------------------------


async def test_fake_auth_and_documented_bodies(fake: FakeGemini, client: httpx.AsyncClient) -> None:
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


def test_fake_rejects_unknown_outcomes() -> None:
    with pytest.raises(ValueError):
        FakeGemini().script("succes")
    common = {
        "success",
        "bad_input",
        "content_blocked",
        "rate_limited",
        "server_error",
        "auth",
        "out_of_credit",
        "transient_failure",
        "never_finish",
        "undecodable_image",
        "create_hang",
        "malformed",
    }
    assert common <= GEMINI_OUTCOMES


async def test_hold_and_release(provider: GeminiProvider, fake: FakeGemini) -> None:
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


# --- property: whatever validate() lets through, Gemini (the fake's reading of the docs) accepts ---

_FAMILY = {NB2: "flash", PRO: "pro"}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_valid_requests_make_valid_bodies(data: st.DataObject) -> None:
    caps = data.draw(st.sampled_from(list(GEMINI_MODELS.values())))
    request = GenerationRequest(
        model=caps.model,
        prompt=data.draw(st.text(min_size=1, max_size=200).filter(lambda s: clean_prompt(s) != "")),
        aspect_ratio=data.draw(st.none() | st.sampled_from(caps.aspect_ratios)),
        resolution=data.draw(st.none() | st.sampled_from(caps.resolutions)),
        thinking_level=data.draw(st.none() | st.sampled_from(caps.thinking_levels or ("minimal",)))
        if caps.thinking_levels
        else None,
        web_search=data.draw(st.booleans()),
        safety_tolerance=data.draw(st.none() | st.integers(1, 6)),
    )
    validate(request, caps)
    refs = tuple(
        data.draw(st.lists(st.sampled_from([("image/png", b"\x89PNG"), ("image/webp", b"RIFF")]), max_size=14))
    )
    body = build_request_body(request, caps, refs)
    assert validate_generate_request(_FAMILY[caps.model], body) == []
    config = body["generationConfig"]["imageConfig"]
    assert config["imageSize"] == (request.resolution or "1K")
    assert ("aspectRatio" in config) == (request.aspect_ratio not in (None, "auto"))


# --- narrow parser cases the fake does not produce (httpx.MockTransport) -------------------------

MOCK_KEY = "AIzaMockKey0123456789"


def mock_provider(response: httpx.Response) -> GeminiProvider:
    async def handler(request: httpx.Request) -> httpx.Response:
        return response

    async def no_sleep(delay: float) -> None:
        return None

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))  # holds no sockets
    return GeminiProvider(
        api_key=MOCK_KEY,
        base_url="https://gemini.test",
        client=client,
        sleep=no_sleep,
        policy=RetryPolicy(max_attempts=2),
    )


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


async def test_unknown_block_reason_is_named() -> None:
    update = ready(
        await mock_provider(httpx.Response(200, json={"promptFeedback": {"blockReason": "NEW_REASON"}})).submit(req())
    )
    assert update.error_message and "new_reason" in update.error_message


async def test_the_last_non_thought_image_wins() -> None:
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
    with pytest.raises(error_type) as info:
        await mock_provider(response).submit(req())
    assert MOCK_KEY not in info.value.detail and "http" not in info.value.user_message
    if retry_after is not None:
        assert isinstance(info.value, RateLimitedError) and info.value.retry_after == retry_after


async def test_answer_that_is_not_an_object_is_uncertain() -> None:
    with pytest.raises(SubmitUncertainError):
        await mock_provider(httpx.Response(200, json=["not", "an", "object"])).submit(req())
