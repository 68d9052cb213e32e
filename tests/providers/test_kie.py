"""KieProvider (both flavours: Kie.ai and sinancode) against FakeKie over a real socket, real httpx."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import AsyncIterator
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
    TransientError,
)
from bot.models import GenerationRequest, JobHandle, JobUpdate, ReferenceImage, UpdateStatus
from bot.prompts import clean_prompt
from bot.providers import UnknownProviderError, provider_class
from bot.providers._http import RetryPolicy
from bot.providers.base import Capabilities, Provider, validate
from bot.providers.kie import KIE_MODELS, SINANCODE_MODELS, KieProvider, SinancodeProvider, input_fields
from bot.testing.providers.kie import (
    COMMON_OUTCOMES,
    KIE_OUTCOMES,
    SINANCODE_OUTCOMES,
    FakeKie,
    _field_problems,
    _kie_problems,
)

from .conftest import HANG_TIMEOUT, TIMEOUT, SleepRecorder

NB2 = "nano_banana_2"
PRO = "nano_banana_pro"
PROMPT = "A red apple on a white table, clean studio lighting."
FLAVOURS = ("kie", "sinancode")
# Sinancode is Kie behind a proxy: its adapter is a subclass of Kie's.
ADAPTERS: dict[str, type[KieProvider]] = {"kie": KieProvider, "sinancode": SinancodeProvider}
kie_only = pytest.mark.parametrize("fake", ["kie"], indirect=True)
sinancode_only = pytest.mark.parametrize("fake", ["sinancode"], indirect=True)


@pytest_asyncio.fixture(params=FLAVOURS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeKie]:
    async with FakeKie(flavour=request.param, queued_polls=1, running_polls=1, hang_seconds=10.0) as server:
        yield server


def make_provider(
    fake: FakeKie,
    client: httpx.AsyncClient,
    sleeps: SleepRecorder,
    timeout: httpx.Timeout = TIMEOUT,
    api_key: str | None = None,
) -> KieProvider:
    return ADAPTERS[fake.flavour](
        api_key=api_key or fake.api_key,
        base_url=fake.base_url,
        client=client,
        policy=RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=20.0),
        timeout=timeout,
        sleep=sleeps,
    )


@pytest_asyncio.fixture
async def provider(fake: FakeKie, client: httpx.AsyncClient, sleeps: SleepRecorder) -> KieProvider:
    return make_provider(fake, client, sleeps)


def ref(n: int, content_type: str = "image/png", size: int = 1000) -> ReferenceImage:
    return ReferenceImage(
        url=f"https://cdn.example.test/ref-{n}.png",
        content_type=content_type,
        size=size,
        filename=f"r{n}.png",
    )


def req(model: str = NB2, **kw: Any) -> GenerationRequest:
    return GenerationRequest(model=model, prompt=kw.pop("prompt", PROMPT), **kw)


def sent_fields(fake: FakeKie, index: int = 0) -> dict[str, Any]:
    """The generation fields of a create: Kie's ``input``, or sinancode's whole body."""
    body = fake.creates[index].json
    assert isinstance(body, dict)
    if fake.flavour == "kie":
        assert isinstance(body["input"], dict)
        return body["input"]
    return body


async def run_to_end(provider: KieProvider, handle: JobHandle, max_polls: int = 10) -> list[JobUpdate]:
    updates = []
    for _ in range(max_polls):
        update = await provider.poll(handle)
        updates.append(update)
        if update.status not in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            return updates
    return updates


def assert_user_safe(message: str | None, fake: FakeKie) -> None:
    assert message, "every failure needs a user-facing message"
    assert "http" not in message.lower() and "127.0.0.1" not in message
    assert fake.api_key not in message
    assert "{" not in message  # no raw JSON


# --- the provider as a whole ---------------------------------------------------------------------


def test_capabilities_are_data() -> None:
    nb2, pro = KIE_MODELS[NB2], KIE_MODELS[PRO]
    assert (nb2.provider_model, nb2.max_prompt_chars, nb2.max_reference_images) == (
        "nano-banana-2",
        20000,
        14,
    )
    assert len(nb2.aspect_ratios) == 15 and {"auto", "1:8", "8:1", "1:4", "4:1"} <= set(nb2.aspect_ratios)
    assert nb2.resolutions == ("1K", "2K", "4K") and nb2.default_resolution == "1K"
    assert set(nb2.output_formats) == {"jpg", "png"} and nb2.web_search
    assert (pro.provider_model, pro.max_prompt_chars, pro.max_reference_images) == (
        "nano-banana-pro",
        10000,
        8,
    )
    assert len(pro.aspect_ratios) == 11 and "auto" in pro.aspect_ratios and "1:8" not in pro.aspect_ratios
    assert set(pro.output_formats) == {"jpg", "png"} and not pro.web_search
    for caps in (nb2, pro):
        assert not caps.seed and not caps.thinking_levels and not caps.safety_knob and caps.queued
        assert "512" not in caps.resolutions
        assert all(caps.price(r) for r in caps.resolutions)
    assert nb2.price("1K") == 40_000 and pro.price("4K") == 120_000
    assert list(SINANCODE_MODELS) == [NB2] and SINANCODE_MODELS[NB2] == nb2


async def test_implements_the_provider_protocol(provider: KieProvider, fake: FakeKie) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == fake.flavour
    assert set(provider.models) == ({NB2, PRO} if fake.flavour == "kie" else {NB2})
    assert fake.api_key not in repr(provider) and fake.flavour in repr(provider)
    await provider.aclose()


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_bad_settings_are_config_errors(client: httpx.AsyncClient, flavour: Any) -> None:
    with pytest.raises(ConfigError) as info:
        ADAPTERS[flavour](api_key="  ", client=client)
    assert info.value.setting == f"{flavour}.api_key"
    with pytest.raises(ConfigError):
        ADAPTERS[flavour](api_key="a b", client=client)
    with pytest.raises(ConfigError) as info:
        ADAPTERS[flavour](api_key="k", base_url="ftp://x", client=client)
    assert info.value.setting == f"{flavour}.base_url"
    with pytest.raises(UnknownProviderError):
        provider_class("kei")


@pytest.mark.parametrize(
    ("flavour", "base"), [("kie", "https://api.kie.ai"), ("sinancode", "https://api.sinancode.com/v1")]
)
async def test_documented_default_base_urls(client: httpx.AsyncClient, flavour: Any, base: str) -> None:
    assert f"base_url='{base}'" in repr(ADAPTERS[flavour](api_key="k", client=client))


# --- what the provider sends ---------------------------------------------------------------------


async def test_minimal_create_request(provider: KieProvider, fake: FakeKie) -> None:
    before = time.time()
    handle = await provider.submit(req())
    (create,) = fake.creates
    assert create.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert create.headers["Content-Type"] == "application/json"
    # The default resolution is sent explicitly; nothing else the member left unset.
    fields = {"prompt": PROMPT, "resolution": "1K"}
    if fake.flavour == "kie":
        assert create.path == "/api/v1/jobs/createTask"
        assert create.json == {"model": "nano-banana-2", "input": fields}  # no callBackUrl
        assert handle.provider_job_id.startswith("task_nano-banana-2_")
    else:
        assert create.path == "/v1/generate/k/nano-banana-2"
        assert create.json == fields
    assert (handle.provider, handle.model) == (fake.flavour, NB2)
    assert handle.provider_job_id in fake.jobs
    assert before <= handle.extra["submitted_at"] <= time.time()


async def test_full_nb2_request(provider: KieProvider, fake: FakeKie) -> None:
    refs = tuple(ref(n, "image/webp" if n % 2 else "image/jpeg") for n in range(14))
    await provider.submit(
        req(reference_images=refs, aspect_ratio="auto", resolution="4K", output_format="png", web_search=True)
    )
    assert sent_fields(fake) == {
        "prompt": PROMPT,
        "image_input": [f"https://cdn.example.test/ref-{n}.png" for n in range(14)],
        "aspect_ratio": "auto",
        "resolution": "4K",
        "output_format": "png",
        "google_search": True,
    }


@kie_only
async def test_pro_on_kie(provider: KieProvider, fake: FakeKie) -> None:
    refs = tuple(ref(n) for n in range(8))
    await provider.submit(req(PRO, reference_images=refs, aspect_ratio="21:9", resolution="2K", output_format="jpg"))
    assert fake.creates[0].json == {
        "model": "nano-banana-pro",
        "input": {
            "prompt": PROMPT,
            "image_input": [r.url for r in refs],
            "aspect_ratio": "21:9",
            "resolution": "2K",
            "output_format": "jpg",
        },
    }


async def test_safety_tolerance_is_not_sent(provider: KieProvider, fake: FakeKie) -> None:
    # Neither API has a safety knob; refusing levels happens centrally, not here.
    await provider.submit(req(safety_tolerance=2, web_search=False))
    assert sent_fields(fake) == {"prompt": PROMPT, "resolution": "1K"}


BOTH_REFUSALS = {
    "long-prompt": req(prompt="x" * 20001),
    "blank": req(prompt="  \n\t "),
    "15-refs": req(reference_images=tuple(ref(n) for n in range(15))),
    "seed": req(seed=42),
    "thinking": req(thinking_level="high"),
    "512": req(resolution="512"),
    "ratio": req(aspect_ratio="7:3"),
    "webp-out": req(output_format="webp"),
    "gif-ref": req(reference_images=(ref(1, "image/gif"),)),
    "huge-ref": req(reference_images=(ref(1, size=29 * 1024 * 1024),)),
    "file-url": req(reference_images=(ReferenceImage(url="file:///etc/passwd", content_type="image/png", size=1),)),
    "model": req("nano_banana_9"),
}
KIE_REFUSALS = {
    "pro-long-prompt": req(PRO, prompt="x" * 10001),
    "pro-9-refs": req(PRO, reference_images=tuple(ref(n) for n in range(9))),
    "pro-web-search": req(PRO, web_search=True),
    "pro-1:8": req(PRO, aspect_ratio="1:8"),
}


@pytest.mark.parametrize("name", sorted(BOTH_REFUSALS))
async def test_refusals_never_reach_the_provider(provider: KieProvider, fake: FakeKie, name: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(BOTH_REFUSALS[name])
    assert info.value.user_message
    assert fake.requests == []


@kie_only
@pytest.mark.parametrize("name", sorted(KIE_REFUSALS))
async def test_pro_refusals_on_kie(provider: KieProvider, fake: FakeKie, name: str) -> None:
    with pytest.raises(InvalidRequestError):
        await provider.submit(KIE_REFUSALS[name])
    assert fake.requests == []


@sinancode_only
async def test_sinancode_offers_no_pro(provider: KieProvider, fake: FakeKie) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(PRO))
    assert "Nano Banana 2" in info.value.user_message
    assert fake.requests == []


async def test_seed_refusal_names_the_gap(provider: KieProvider) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(seed=7))
    assert "seed" in info.value.user_message


# --- what the provider makes of each outcome -----------------------------------------------------

JOB_FAILURES: dict[str, ErrorCategory] = {
    "content_blocked": ErrorCategory.CONTENT_BLOCKED,
    "fail_policy": ErrorCategory.CONTENT_BLOCKED,
    "transient_failure": ErrorCategory.TRANSIENT,
    "fail_generic": ErrorCategory.TRANSIENT,
    "fail_bad_input": ErrorCategory.BAD_INPUT,
    "success_no_urls": ErrorCategory.NO_IMAGE,
}


@pytest.mark.parametrize("outcome", sorted(JOB_FAILURES))
async def test_job_failures(provider: KieProvider, fake: FakeKie, outcome: str) -> None:
    fake.script(outcome)
    handle = await provider.submit(req())
    updates = await run_to_end(provider, handle)
    assert [u.status for u in updates] == [UpdateStatus.QUEUED, UpdateStatus.RUNNING, UpdateStatus.FAILED]
    final = updates[-1]
    assert final.error_category is JOB_FAILURES[outcome]
    assert final.images == []
    assert_user_safe(final.error_message, fake)
    assert final.error_detail and fake.api_key not in final.error_detail
    assert handle.provider_job_id in final.error_detail
    if outcome == "transient_failure":
        # sinancode sends only error_code here: the detail falls back to it.
        assert ("internal_error" if fake.flavour == "sinancode" else "Internal error") in final.error_detail


async def test_success(provider: KieProvider, fake: FakeKie, client: httpx.AsyncClient) -> None:
    handle = await provider.submit(req(aspect_ratio="16:9"))
    updates = await run_to_end(provider, handle)
    assert [u.status for u in updates] == [UpdateStatus.QUEUED, UpdateStatus.RUNNING, UpdateStatus.SUCCEEDED]
    final = updates[-1]
    (image,) = final.images
    assert final.error_category is None and final.error_message is None
    assert final.usage == ({"cost_time_ms": 8123} if fake.flavour == "kie" else {})
    download = await client.get(image.url or "")
    assert download.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(download.content)) as picture:
        assert picture.format == "PNG" and picture.size == (1024, 576)
    assert fake.jobs[handle.provider_job_id].polls == 3


@pytest.mark.parametrize(("ratio", "resolution", "size"), [("4:1", "1K", (1024, 256)), ("auto", "2K", (2048, 2048))])
async def test_images_are_sized_like_the_request(
    provider: KieProvider,
    fake: FakeKie,
    client: httpx.AsyncClient,
    ratio: str,
    resolution: str,
    size: tuple[int, int],
) -> None:
    final = (await run_to_end(provider, await provider.submit(req(aspect_ratio=ratio, resolution=resolution))))[-1]
    data = (await client.get(final.images[0].url or "")).content
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.size == size


@sinancode_only
async def test_result_as_strings(provider: KieProvider, fake: FakeKie) -> None:
    fake.script("result_strings")
    handle = await provider.submit(req())
    final = (await run_to_end(provider, handle))[-1]
    assert final.status is UpdateStatus.SUCCEEDED
    assert [i.url for i in final.images] == [
        f"{fake.image_base_url}/{fake.jobs[handle.provider_job_id].image_names[0]}.png"
    ]


async def test_undecodable_image_is_left_to_delivery(
    provider: KieProvider, fake: FakeKie, client: httpx.AsyncClient
) -> None:
    fake.script("undecodable_image")
    final = (await run_to_end(provider, await provider.submit(req())))[-1]
    assert final.status is UpdateStatus.SUCCEEDED
    download = await client.get(final.images[0].url or "")
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(download.content))


async def test_never_finish_stays_running(provider: KieProvider, fake: FakeKie) -> None:
    fake.script("never_finish")
    updates = await run_to_end(provider, await provider.submit(req()), max_polls=5)
    assert [u.status for u in updates] == [UpdateStatus.QUEUED] + [UpdateStatus.RUNNING] * 4


async def test_hold_and_release(provider: KieProvider, fake: FakeKie) -> None:
    fake.hold(True)
    handle = await provider.submit(req())
    assert (await run_to_end(provider, handle, max_polls=4))[-1].status is UpdateStatus.RUNNING
    fake.release(handle.provider_job_id)
    assert (await provider.poll(handle)).status is UpdateStatus.SUCCEEDED


async def test_poll_500_is_retried_within_one_poll(provider: KieProvider, fake: FakeKie, sleeps: SleepRecorder) -> None:
    fake.script("poll_500")
    handle = await provider.submit(req())
    assert (await provider.poll(handle)).status is UpdateStatus.QUEUED
    assert fake.jobs[handle.provider_job_id].polls == 2 and len(sleeps.delays) == 1
    assert (await run_to_end(provider, handle))[-1].status is UpdateStatus.SUCCEEDED


@kie_only
async def test_record_lagging_its_creation_reads_as_queued(provider: KieProvider, fake: FakeKie) -> None:
    fake.script("record_null_first")
    handle = await provider.submit(req())
    updates = await run_to_end(provider, handle)
    assert [u.status for u in updates] == [
        UpdateStatus.QUEUED,  # "recordInfo is null", seconds after the create
        UpdateStatus.QUEUED,
        UpdateStatus.RUNNING,
        UpdateStatus.SUCCEEDED,
    ]


async def test_malformed_poll_raises_transient_without_secrets(
    provider: KieProvider, fake: FakeKie, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script("malformed")
    handle = await provider.submit(req())
    with caplog.at_level(logging.WARNING, logger="bot.providers"), pytest.raises(TransientError) as info:
        await provider.poll(handle)
    assert_user_safe(info.value.user_message, fake)
    assert "IN_PROGR" in info.value.detail and fake.api_key not in caplog.text


async def test_unknown_task_fails_the_job(provider: KieProvider, fake: FakeKie) -> None:
    old = JobHandle(provider=fake.flavour, model=NB2, provider_job_id="task_gone", extra={"submitted_at": 1.0})
    update = await provider.poll(old)
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)
    assert_user_safe(update.error_message, fake)
    assert len(fake.requests) == 1  # not retried
    # Right after a create, "not found" means "not visible yet".
    fresh = old.model_copy(update={"extra": {"submitted_at": time.time()}})
    assert (await provider.poll(fresh)).status is UpdateStatus.QUEUED
    bare = old.model_copy(update={"extra": {}})
    assert (await provider.poll(bare)).status is UpdateStatus.FAILED


# --- create failures and retries -----------------------------------------------------------------

# outcome -> (error raised or None for success, creates, jobs made)
CREATE_OUTCOMES: dict[str, tuple[type[ProviderError] | None, int, int]] = {
    "rate_limited": (None, 2, 1),
    "server_error": (None, 2, 1),
    "auth": (AuthError, 1, 0),
    "out_of_credit": (OutOfCreditError, 1, 0),
    "bad_input": (BadInputError, 1, 0),
}
KIE_CREATE_OUTCOMES: dict[str, tuple[type[ProviderError] | None, int, int]] = {
    "http200:401": (AuthError, 1, 0),
    "http200:402": (OutOfCreditError, 1, 0),
    "http200:404": (AuthError, 1, 0),
    "http200:422": (BadInputError, 1, 0),
    "http200:429": (None, 2, 1),
    "http200:455": (TransientError, 1, 0),
    "http200:500": (None, 2, 1),
    "http200:501": (None, 2, 1),
    "http200:505": (AuthError, 1, 0),
    "http200_code_error": (OutOfCreditError, 1, 0),
    "maintenance_455": (TransientError, 1, 0),
    "generation_failed_501": (None, 2, 1),
    "feature_disabled_505": (AuthError, 1, 0),
}
CATEGORIES = {
    AuthError: ErrorCategory.AUTH,
    OutOfCreditError: ErrorCategory.OUT_OF_CREDIT,
    BadInputError: ErrorCategory.BAD_INPUT,
    TransientError: ErrorCategory.TRANSIENT,
}


async def _check_create_outcome(
    provider: KieProvider,
    fake: FakeKie,
    sleeps: SleepRecorder,
    outcome: str,
    expected: tuple[type[ProviderError] | None, int, int],
) -> None:
    error_type, creates, jobs = expected
    fake.script(outcome)
    if error_type is None:
        handle = await provider.submit(req())
        assert list(fake.jobs) == [handle.provider_job_id]
        assert len(sleeps.delays) == creates - 1
    else:
        with pytest.raises(error_type) as info:
            await provider.submit(req())
        error = info.value
        assert type(error) is error_type or error_type is TransientError
        assert error.category is CATEGORIES[error_type] and error.provider == fake.flavour
        assert_user_safe(error.user_message, fake)
        assert fake.api_key not in error.detail
        assert sleeps.delays == []  # refusals are not retried
    assert len(fake.creates) == creates and len(fake.jobs) == jobs


@pytest.mark.parametrize("outcome", sorted(CREATE_OUTCOMES))
async def test_create_outcomes(provider: KieProvider, fake: FakeKie, sleeps: SleepRecorder, outcome: str) -> None:
    await _check_create_outcome(provider, fake, sleeps, outcome, CREATE_OUTCOMES[outcome])


@kie_only
@pytest.mark.parametrize("outcome", sorted(KIE_CREATE_OUTCOMES))
async def test_kie_envelope_codes_decide(
    provider: KieProvider, fake: FakeKie, sleeps: SleepRecorder, outcome: str
) -> None:
    await _check_create_outcome(provider, fake, sleeps, outcome, KIE_CREATE_OUTCOMES[outcome])


async def test_rate_limited_until_attempts_run_out(provider: KieProvider, fake: FakeKie, sleeps: SleepRecorder) -> None:
    fake.script(*["rate_limited"] * 4)
    with pytest.raises(RateLimitedError) as info:
        await provider.submit(req())
    assert info.value.status_code == 429 and info.value.category is ErrorCategory.RATE_LIMITED
    assert_user_safe(info.value.user_message, fake)
    assert len(fake.creates) == 4 and fake.jobs == {} and len(sleeps.delays) == 3
    if fake.flavour == "sinancode":  # the fake's sinancode sends Retry-After: 1, honoured as a floor
        assert info.value.retry_after == 1.0 and all(d >= 1.0 for d in sleeps.delays)


async def test_create_hang_is_uncertain_and_never_resent(
    fake: FakeKie, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    provider = make_provider(fake, client, sleeps, timeout=HANG_TIMEOUT)
    fake.script("create_hang")
    with pytest.raises(SubmitUncertainError) as info:
        await provider.submit(req())
    assert info.value.category is ErrorCategory.UNCERTAIN
    assert len(fake.creates) == 1 and len(fake.jobs) == 1  # accepted upstream, never sent twice
    assert sleeps.delays == []


async def test_wrong_key_is_rejected_by_the_fake(
    fake: FakeKie, client: httpx.AsyncClient, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    provider = make_provider(fake, client, sleeps, api_key="wrong-key-123")
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        await provider.submit(req())
    assert "wrong-key-123" not in info.value.detail and "wrong-key-123" not in caplog.text
    assert fake.jobs == {} and len(fake.creates) == 1 and sleeps.delays == []


async def test_the_fakes_schema_refusal_is_bad_input(fake: FakeKie, client: httpx.AsyncClient) -> None:
    # A model entry that lets through what the real schema refuses shows the refusal end to end
    # (Kie: HTTP 200 + code 422; sinancode: HTTP 400).
    provider = make_provider(fake, client, SleepRecorder())
    provider.models[NB2] = Capabilities(
        model=NB2,
        display_name="Nano Banana 2",
        max_prompt_chars=5000,
        max_reference_images=3,
        aspect_ratios=("7:3",),
        resolutions=("1K",),
        provider_model="nano-banana-2",
    )
    with pytest.raises(BadInputError) as info:
        await provider.submit(req(aspect_ratio="7:3"))
    assert_user_safe(info.value.user_message, fake)
    assert "aspect_ratio" in info.value.detail
    assert len(fake.creates) == 1


# --- cancel and check ----------------------------------------------------------------------------


async def test_cancel_is_not_offered(provider: KieProvider, fake: FakeKie) -> None:
    handle = await provider.submit(req())
    sent = len(fake.requests)
    assert await provider.cancel(handle) is False
    assert len(fake.requests) == sent  # nothing sent: neither API documents a cancel


async def test_check_good_key(provider: KieProvider, fake: FakeKie) -> None:
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (True, True)
    probe = fake.requests[-1]
    if fake.flavour == "kie":
        assert probe.path == "/api/v1/chat/credit" and "1000 credits" in result.detail
    else:
        assert probe.path == "/v1/tasks/bananacord-key-check"
    assert fake.jobs == {}


@kie_only
async def test_check_reports_an_empty_balance(provider: KieProvider, fake: FakeKie) -> None:
    fake.credits = 0
    result = await provider.check()
    assert result.key_accepted is True and "0 credits" in result.detail and "402" in result.detail


async def test_check_bad_key(fake: FakeKie, client: httpx.AsyncClient) -> None:
    provider = make_provider(fake, client, SleepRecorder(), api_key="wrong-key-456")
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (True, False)
    assert "wrong-key-456" not in result.detail


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_check_unreachable(client: httpx.AsyncClient, flavour: Any) -> None:
    async with FakeKie(flavour=flavour) as gone:
        base_url = gone.base_url
    provider = ADAPTERS[flavour](api_key="k-123", base_url=base_url, client=client)
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (False, None)


# --- the fake's own protocol details -------------------------------------------------------------


@kie_only
async def test_fake_kie_protocol(fake: FakeKie, client: httpx.AsyncClient) -> None:
    assert fake.base_url == fake.origin
    create = f"{fake.base_url}/api/v1/jobs/createTask"
    missing = await client.post(create, json={})
    assert missing.status_code == 401
    assert missing.json() == {"code": 401, "msg": "You do not have access permissions", "data": None}
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    bad = await client.post(
        create,
        headers=auth,
        json={"model": "nano-banana-pro", "input": {"prompt": "", "google_search": True}},
    )
    assert bad.status_code == 200 and bad.json()["code"] == 422  # validation rides in a 200
    assert "input.prompt" in bad.json()["msg"] and "google_search" in bad.json()["msg"]
    model = await client.post(create, headers=auth, json={"model": "nano-banana-9", "input": {"prompt": "x"}})
    assert model.json()["code"] == 422
    ok = await client.post(create, headers=auth, json={"model": "nano-banana-2", "input": {"prompt": "x"}})
    task_id = ok.json()["data"]["taskId"]
    assert ok.json()["code"] == 200 and task_id in fake.jobs
    record = await client.get(f"{fake.base_url}/api/v1/jobs/recordInfo", params={"taskId": task_id}, headers=auth)
    data = record.json()["data"]
    assert record.json()["message"] == "success" and data["state"] == "waiting"
    assert '"prompt": "x"' in data["param"] and data["resultJson"] == ""
    unknown = await client.get(f"{fake.base_url}/api/v1/jobs/recordInfo", params={"taskId": "t"}, headers=auth)
    assert unknown.status_code == 200
    assert unknown.json() == {"code": 422, "message": "recordInfo is null", "data": None}
    credit = await client.get(f"{fake.base_url}/api/v1/chat/credit", headers=auth)
    assert credit.json() == {"code": 200, "msg": "success", "data": 1000.0}


@sinancode_only
async def test_fake_sinancode_protocol(fake: FakeKie, client: httpx.AsyncClient) -> None:
    assert fake.base_url == f"{fake.origin}/v1"
    missing = await client.post(f"{fake.base_url}/generate/k/nano-banana-2", json={"prompt": "x"})
    assert missing.status_code == 401
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    pro = await client.post(f"{fake.base_url}/generate/k/nano-banana-pro", json={"prompt": "x"}, headers=auth)
    assert pro.status_code == 404  # a Pro endpoint is not documented
    bad = await client.post(
        f"{fake.base_url}/generate/k/nano-banana-2",
        json={"prompt": "x", "image_input": [""], "resolution": "512"},
        headers=auth,
    )
    assert bad.status_code == 400 and "image_input" in bad.json()["error_msg"]
    ok = await client.post(f"{fake.base_url}/generate/k/nano-banana-2", json={"prompt": "x"}, headers=auth)
    task_id = ok.json()["task_id"]
    status = await client.get(f"{fake.base_url}/tasks/{task_id}", headers=auth)
    assert status.json() == {
        "id": task_id,
        "status": "pending",
        "error_code": "",
        "error_msg": "",
        "result": None,
    }
    unknown = await client.get(f"{fake.base_url}/tasks/nope", headers=auth)
    assert unknown.status_code == 404


def test_fake_outcome_names() -> None:
    assert {
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
    } == COMMON_OUTCOMES
    assert COMMON_OUTCOMES <= KIE_OUTCOMES and COMMON_OUTCOMES <= SINANCODE_OUTCOMES
    with pytest.raises(ValueError):
        FakeKie().script("succes")
    with pytest.raises(ValueError, match="sinancode"):
        FakeKie(flavour="sinancode").script("http200_code_error")
    with pytest.raises(ValueError, match="kie"):
        FakeKie(flavour="kie").script("result_strings")
    with pytest.raises(ValueError):
        FakeKie(flavour="other")  # type: ignore[arg-type]


# --- properties: validation, and what validate() lets through is what the schema accepts ---------

_ALL_CAPS = [KIE_MODELS[NB2], KIE_MODELS[PRO]]
_refs = st.builds(
    ReferenceImage,
    url=st.integers(0, 99).map(lambda n: f"https://cdn.example.test/r{n}.png"),
    content_type=st.sampled_from(["image/png", "image/jpeg", "image/webp", "IMAGE/PNG; charset=binary"]),
    size=st.integers(0, 28 * 1024 * 1024),
)


def _valid_requests(caps: Capabilities) -> st.SearchStrategy[GenerationRequest]:
    prompts = st.text(min_size=1, max_size=200).filter(lambda s: clean_prompt(s) != "") | st.integers(
        1, caps.max_prompt_chars
    ).map(lambda n: "a" * n)
    return st.builds(
        GenerationRequest,
        model=st.just(caps.model),
        prompt=prompts,
        reference_images=st.lists(_refs, max_size=caps.max_reference_images).map(tuple),
        aspect_ratio=st.none() | st.sampled_from(caps.aspect_ratios),
        resolution=st.none() | st.sampled_from(caps.resolutions),
        output_format=st.none() | st.sampled_from(caps.output_formats),
        web_search=st.booleans() if caps.web_search else st.just(False),
        safety_tolerance=st.none() | st.integers(1, 6),
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_valid_request_fits_the_documented_schema(data: st.DataObject) -> None:
    caps = data.draw(st.sampled_from(_ALL_CAPS))
    request = data.draw(_valid_requests(caps))
    validate(request, caps)
    fields = input_fields(request, caps)
    assert _kie_problems({"model": caps.provider_model, "input": fields}) == []
    if caps.model in SINANCODE_MODELS:
        assert _field_problems(caps.provider_model, fields) == []  # the same fields, flattened
    assert fields["resolution"] == (request.resolution or "1K")
    assert ("google_search" in fields) is request.web_search
    assert len(fields.get("image_input", [])) == len(request.reference_images)
    assert None not in fields.values()


def _one_thing_wrong(caps: Capabilities) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.integers(caps.max_prompt_chars + 1, caps.max_prompt_chars + 100).map(lambda n: {"prompt": "b" * n}),
        st.text(alphabet=" \t\n\u00a0", max_size=20).map(lambda p: {"prompt": p}),
        st.text(max_size=8).filter(lambda r: r not in caps.aspect_ratios).map(lambda r: {"aspect_ratio": r}),
        st.text(max_size=8).filter(lambda r: r not in caps.resolutions).map(lambda r: {"resolution": r}),
        st.text(max_size=5).filter(lambda f: f not in caps.output_formats).map(lambda f: {"output_format": f}),
        st.lists(_refs, min_size=caps.max_reference_images + 1, max_size=caps.max_reference_images + 2).map(
            lambda refs: {"reference_images": tuple(refs)}
        ),
        st.integers(0, 2**31 - 1).map(lambda s: {"seed": s}),
        st.sampled_from(["minimal", "high"]).map(lambda t: {"thinking_level": t}),
        st.just({"web_search": True}) if not caps.web_search else st.just({"resolution": "512"}),
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_validate_refuses_anything_out_of_range(data: st.DataObject) -> None:
    caps = data.draw(st.sampled_from(_ALL_CAPS))
    fields: dict[str, Any] = {"model": caps.model, "prompt": "a cat"} | data.draw(_one_thing_wrong(caps))
    with pytest.raises(InvalidRequestError) as info:
        validate(GenerationRequest(**fields), caps)
    assert info.value.user_message


# --- narrow parser cases the fake does not produce (httpx.MockTransport) -------------------------

MOCK_KEY = "sk-mock-0123456789"
A_PNG = "https://c.test/a.png"
MOCK_BASES = {"kie": "https://kie.test", "sinancode": "https://sinancode.test/v1"}


class Mock:
    """Answers creates and polls from lists (the last answer repeats); counts what it was sent."""

    def __init__(self, create: list[httpx.Response] | None = None, poll: list[httpx.Response] | None = None):
        self.create = create or [httpx.Response(500)]
        self.poll = poll or [httpx.Response(500)]
        self.calls: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        answers = self.create if request.method == "POST" else self.poll
        return answers.pop(0) if len(answers) > 1 else answers[0]


def mock_provider(flavour: Any, mock: Mock) -> KieProvider:
    async def no_sleep(delay: float) -> None:
        return None

    # A MockTransport holds no sockets, so the client needs no closing.
    client = httpx.AsyncClient(transport=httpx.MockTransport(mock))
    return ADAPTERS[flavour](
        api_key=MOCK_KEY,
        base_url=MOCK_BASES[flavour],
        client=client,
        sleep=no_sleep,
        policy=RetryPolicy(max_attempts=2),
    )


def handle_for(flavour: str) -> JobHandle:
    return JobHandle(provider=flavour, model=NB2, provider_job_id="t1")


def record(**data: Any) -> httpx.Response:
    return httpx.Response(200, json={"code": 200, "message": "success", "data": {"taskId": "t1", **data}})


@pytest.mark.parametrize(
    ("answer", "expected", "urls"),
    [
        # resultJson already decoded into an object is read the same way.
        (record(state="success", resultJson={"resultUrls": [A_PNG]}), UpdateStatus.SUCCEEDED, 1),
        # Non-web URLs are kept: the download step refuses them with a message naming the scheme.
        (record(state="success", resultJson='{"resultUrls":["data:image/png;base64,AA"]}'),
         UpdateStatus.SUCCEEDED, 1),
        # An unreadable resultJson on a success fails the job as transient, not forever-polling.
        (record(state="success", resultJson="{not json"), UpdateStatus.FAILED, 0),
        (record(state="queuing"), UpdateStatus.QUEUED, 0),
        # A state the docs do not list keeps the job running.
        (record(state="paused"), UpdateStatus.RUNNING, 0),
        # failCode/failMsg may be null.
        (record(state="fail", failCode=None, failMsg=None), UpdateStatus.FAILED, 0),
    ],
)  # fmt: skip
async def test_kie_record_shapes(answer: httpx.Response, expected: UpdateStatus, urls: int) -> None:
    update = await mock_provider("kie", Mock(poll=[answer])).poll(handle_for("kie"))
    assert update.status is expected and len(update.images) == urls
    if expected is UpdateStatus.FAILED:
        assert update.error_message and "http" not in update.error_message


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"code": 200, "message": "success", "data": None}),
        httpx.Response(200, json={"code": 200, "message": "success", "data": {"taskId": "t1"}}),
        httpx.Response(200, json={"no": "envelope"}),
    ],
)
async def test_kie_unreadable_records_raise_transient(answer: httpx.Response) -> None:
    with pytest.raises(TransientError):
        await mock_provider("kie", Mock(poll=[answer])).poll(handle_for("kie"))


def task(**body: Any) -> httpx.Response:
    return httpx.Response(200, json={"id": "t1", "error_code": "", "error_msg": "", **body})


@pytest.mark.parametrize(
    ("answer", "expected", "category", "urls"),
    [
        (task(status="queued"), UpdateStatus.QUEUED, None, 0),
        (task(status="WAITING"), UpdateStatus.QUEUED, None, 0),
        (task(status="Processing"), UpdateStatus.RUNNING, None, 0),
        # Mixed result entries: only image URLs count.
        (task(status="completed", result=[{"type": "video", "url": "https://c.test/v.mp4"}, A_PNG,
                                          {"type": "image", "url": "data:x"}, {"url": A_PNG}, 7]),
         UpdateStatus.SUCCEEDED, None, 2),
        (task(status="succeeded", result=A_PNG), UpdateStatus.SUCCEEDED, None, 1),
        (task(status="failed", error_code="content_blocked"),
         UpdateStatus.FAILED, ErrorCategory.CONTENT_BLOCKED, 0),
        (task(status="failed", error_code="x", error_msg="Your image was flagged by moderation"),
         UpdateStatus.FAILED, ErrorCategory.CONTENT_BLOCKED, 0),
        (task(status="canceled"), UpdateStatus.CANCELLED, ErrorCategory.CANCELLED, 0),
        # An enveloped variant is unwrapped.
        (httpx.Response(200, json={"data": {"status": "processing"}}), UpdateStatus.RUNNING, None, 0),
    ],
)  # fmt: skip
async def test_sinancode_task_shapes(
    answer: httpx.Response, expected: UpdateStatus, category: ErrorCategory | None, urls: int
) -> None:
    update = await mock_provider("sinancode", Mock(poll=[answer])).poll(handle_for("sinancode"))
    assert (update.status, update.error_category, len(update.images)) == (expected, category, urls)


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(200, json={"id": "t1"}), httpx.Response(200, json=["x"]), httpx.Response(200, text="")],
)
async def test_sinancode_unreadable_tasks_raise_transient(answer: httpx.Response) -> None:
    with pytest.raises(TransientError):
        await mock_provider("sinancode", Mock(poll=[answer])).poll(handle_for("sinancode"))


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"code": 200, "msg": "success", "data": {}}),
        httpx.Response(200, json={"status": "ok"}),
        httpx.Response(504, text="gateway timeout"),
        httpx.Response(200, json={"code": 504, "msg": "Gateway timeout", "data": None}),
    ],
)
async def test_create_answers_that_may_have_been_accepted_are_uncertain(flavour: Any, answer: httpx.Response) -> None:
    mock = Mock(create=[answer])
    with pytest.raises(SubmitUncertainError):
        await mock_provider(flavour, mock).submit(req())
    assert len(mock.calls) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_html_502_without_envelope_is_retried_then_transient(flavour: Any) -> None:
    mock = Mock(create=[httpx.Response(502, text="<html>Bad gateway</html>")])
    with pytest.raises(TransientError):
        await mock_provider(flavour, mock).submit(req())
    assert len(mock.calls) == 2


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        (httpx.Response(403, json={"message": "Insufficient balance"}), OutOfCreditError),
        (httpx.Response(403, json={"message": "IP not allowed"}), AuthError),
        (httpx.Response(404, json={"message": "Not Found"}), AuthError),
        (httpx.Response(413, json={"error_msg": "Payload too large"}), BadInputError),
    ],
)
async def test_create_status_mapping(flavour: Any, answer: httpx.Response, error_type: type[Exception]) -> None:
    with pytest.raises(error_type) as info:
        await mock_provider(flavour, Mock(create=[answer])).submit(req())
    assert isinstance(info.value, ProviderError)
    assert MOCK_KEY not in info.value.detail and "http" not in info.value.user_message


async def test_kie_long_retry_after_is_handed_to_the_runner() -> None:
    slow = httpx.Response(200, headers={"Retry-After": "600"}, json={"code": 429, "msg": "Rate limited"})
    mock = Mock(create=[slow])
    with pytest.raises(RateLimitedError) as info:
        await mock_provider("kie", mock).submit(req())
    assert info.value.retry_after == 600.0 and len(mock.calls) == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # The envelope decides: HTTP 200 with code 401 is a rejected key (a bare status probe would say OK).
        (httpx.Response(200, json={"code": 401, "msg": "You do not have access permissions"}), (True, False)),
        (httpx.Response(401, json={"code": 401, "msg": "You do not have access permissions"}), (True, False)),
        (httpx.Response(200, json={"code": 200, "msg": "success", "data": "lots"}), (True, True)),
        (httpx.Response(500, text="oops"), (True, None)),
    ],
)
async def test_kie_check_reads_the_envelope(answer: httpx.Response, expected: tuple[bool, bool | None]) -> None:
    result = await mock_provider("kie", Mock(poll=[answer])).check()
    assert (result.reachable, result.key_accepted) == expected
    assert MOCK_KEY not in result.detail
