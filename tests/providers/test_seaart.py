"""SeaArtProvider against FakeSeaArt over a real socket, with the real httpx client."""

from __future__ import annotations

import io
import logging
from typing import Any

import httpx
import pytest
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
    RateLimitedError,
    SubmitUncertainError,
    TransientError,
)
from bot.models import GenerationRequest, JobHandle, JobUpdate, ReferenceImage, UpdateStatus
from bot.prompts import clean_prompt
from bot.providers._http import RetryPolicy
from bot.providers.base import Capabilities, Provider, validate
from bot.providers.seaart import SEAART_MODELS, SeaArtProvider
from bot.testing.providers import SEAART_OUTCOMES, FakeSeaArt

from .conftest import HANG_TIMEOUT, SleepRecorder

NB2 = "nano_banana_2"
PRO = "nano_banana_pro"
PROMPT = "A red apple on a white table, clean studio lighting."


def ref(n: int, content_type: str = "image/png") -> ReferenceImage:
    return ReferenceImage(
        url=f"https://cdn.example.test/ref-{n}.png",
        content_type=content_type,
        size=1000,
        filename=f"r{n}.png",
    )


def req(model: str = NB2, **kw: Any) -> GenerationRequest:
    return GenerationRequest(model=model, prompt=kw.pop("prompt", PROMPT), **kw)


async def run_to_end(provider: SeaArtProvider, handle: JobHandle, max_polls: int = 10) -> list[JobUpdate]:
    updates = []
    for _ in range(max_polls):
        update = await provider.poll(handle)
        updates.append(update)
        if update.status not in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            return updates
    return updates


def assert_user_safe(message: str | None, fake: FakeSeaArt) -> None:
    assert message, "every failure needs a user-facing message"
    assert "http" not in message.lower() and "127.0.0.1" not in message
    assert fake.api_key not in message
    assert "{" not in message  # no raw JSON


# --- the provider as a whole ---------------------------------------------------------------------


def test_capabilities_are_data() -> None:
    nb2, pro = SEAART_MODELS[NB2], SEAART_MODELS[PRO]
    assert (nb2.display_name, nb2.max_prompt_chars, nb2.max_reference_images) == ("Nano Banana 2", 2500, 3)
    assert len(nb2.aspect_ratios) == 14 and {"1:8", "8:1", "1:4", "4:1"} <= set(nb2.aspect_ratios)
    assert nb2.resolutions == ("512", "1K", "2K", "4K") and nb2.default_resolution == "1K"
    assert (pro.display_name, pro.max_prompt_chars, pro.max_reference_images) == ("Nano Banana Pro", 2500, 14)
    assert len(pro.aspect_ratios) == 10 and "1:8" not in pro.aspect_ratios
    assert pro.resolutions == ("1K", "2K", "4K")


async def test_implements_the_provider_protocol(provider: SeaArtProvider) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == "seaart"
    assert set(provider.models) == {NB2, PRO}
    assert "test-seaart-key" not in repr(provider)
    await provider.aclose()


async def test_empty_key_is_a_config_error(client: httpx.AsyncClient) -> None:
    with pytest.raises(ConfigError) as info:
        SeaArtProvider(api_key="  ", client=client)
    assert info.value.setting == "seaart.api_key"


# --- what the provider sends ---------------------------------------------------------------------


async def test_minimal_create_request(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    handle = await provider.submit(req())
    (create,) = fake.creates
    assert create.path == "/model/v1/queue/nano_banana_2"
    assert create.headers["Authorization"] == "Bearer test-seaart-key"
    assert create.headers["Content-Type"] == "application/json"
    # Default resolution is sent explicitly; no refs, no ratio.
    assert create.json == {"prompt": PROMPT, "resolution": "1K"}
    assert handle.provider == "seaart" and handle.model == NB2
    assert handle.provider_job_id.startswith("mmsu_") and handle.provider_job_id in fake.jobs
    base = f"{fake.base_url}/v1/queue/nano_banana_2/requests/{handle.provider_job_id}"
    assert handle.extra == {
        "status_url": f"{base}/status",
        "response_url": f"{base}/response",
        "cancel_url": f"{base}/cancel",
    }


async def test_full_nb2_request_maps_512_to_half_k(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    await provider.submit(req(reference_images=(ref(1), ref(2), ref(3)), aspect_ratio="21:9", resolution="512"))
    assert fake.creates[0].json == {
        "prompt": PROMPT,
        "image_urls": [f"https://cdn.example.test/ref-{n}.png" for n in (1, 2, 3)],
        "aspect_ratio": "21:9",
        "resolution": "0.5K",
    }


async def test_pro_sends_image_size_and_takes_many_refs(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    await provider.submit(req(PRO, reference_images=tuple(ref(n) for n in range(4)), resolution="4K"))
    await provider.submit(req(PRO, reference_images=tuple(ref(n) for n in range(14)), aspect_ratio="4:5"))
    first, second = (c.json for c in fake.creates)
    assert first is not None and second is not None
    assert first["image_size"] == "4K" and len(first["image_urls"]) == 4
    assert second["image_size"] == "1K" and len(second["image_urls"]) == 14 and second["aspect_ratio"] == "4:5"
    assert all(c.path == "/model/v1/queue/nano_banana_pro" for c in fake.creates)


@pytest.mark.parametrize(
    ("model", "resolution", "field", "value"),
    [
        (NB2, "512", "resolution", "0.5K"),
        (NB2, "1K", "resolution", "1K"),
        (NB2, "2K", "resolution", "2K"),
        (NB2, "4K", "resolution", "4K"),
        (NB2, None, "resolution", "1K"),
        (PRO, "1K", "image_size", "1K"),
        (PRO, "2K", "image_size", "2K"),
        (PRO, "4K", "image_size", "4K"),
        (PRO, None, "image_size", "1K"),
    ],
)
async def test_exactly_one_size_field(
    provider: SeaArtProvider, fake: FakeSeaArt, model: str, resolution: str | None, field: str, value: str
) -> None:
    await provider.submit(req(model, resolution=resolution))
    body = fake.creates[0].json
    assert body is not None
    assert body[field] == value
    assert not ("image_size" in body and "resolution" in body)


@pytest.mark.parametrize(
    "request_",
    [
        req(prompt="x" * 2501),
        req(prompt="   \n\t "),
        req(reference_images=(ref(1), ref(2), ref(3), ref(4))),
        req(PRO, aspect_ratio="1:8"),
        req(PRO, resolution="512"),
        req(aspect_ratio="auto"),
        req(reference_images=(ref(1, "application/pdf"),)),
        req(reference_images=(ReferenceImage(url="file:///etc/passwd", content_type="image/png", size=1),)),
        req("nano_banana_9"),
    ],
    ids=["long-prompt", "blank", "4-refs-nb2", "1:8-pro", "512-pro", "auto", "pdf-ref", "file-url", "model"],
)
async def test_refusals_never_reach_the_provider(
    provider: SeaArtProvider, fake: FakeSeaArt, request_: GenerationRequest
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(request_)
    assert info.value.user_message
    assert fake.requests == []


# --- what the provider makes of each outcome -----------------------------------------------------

# outcome -> (status, category)
FAILURES: dict[str, tuple[UpdateStatus, ErrorCategory]] = {
    "error:INFERENCE_FAILURE": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "error:INFERENCE_TIMEOUT": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "error:INTERNAL_SERVER_ERROR": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "error:REQUEST_INVALID": (UpdateStatus.FAILED, ErrorCategory.BAD_INPUT),
    "error:CONTENT_BLOCKED": (UpdateStatus.FAILED, ErrorCategory.CONTENT_BLOCKED),
    "error:CANCELED": (UpdateStatus.CANCELLED, ErrorCategory.CANCELLED),
    "seed_error:005001095": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "seed_error:005001096": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "seed_error:005001097": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "seed_error:005001098": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "result_404": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
}


@pytest.mark.parametrize("outcome", sorted(FAILURES))
async def test_job_failures(provider: SeaArtProvider, fake: FakeSeaArt, outcome: str) -> None:
    fake.script(outcome)
    handle = await provider.submit(req())
    updates = await run_to_end(provider, handle)
    assert [u.status for u in updates[:2]] == [UpdateStatus.QUEUED, UpdateStatus.RUNNING]
    final = updates[-1]
    assert (final.status, final.error_category) == FAILURES[outcome]
    assert final.images == []
    assert_user_safe(final.error_message, fake)
    assert final.error_detail and fake.api_key not in final.error_detail
    if outcome.startswith("seed_error:"):
        assert outcome.removeprefix("seed_error:") in final.error_detail
    elif outcome.startswith("error:"):
        assert outcome.removeprefix("error:") in final.error_detail


async def test_success_todays_shape(provider: SeaArtProvider, fake: FakeSeaArt, client: httpx.AsyncClient) -> None:
    handle = await provider.submit(req(aspect_ratio="16:9", resolution="512"))
    updates = await run_to_end(provider, handle)
    assert [u.status for u in updates] == [UpdateStatus.QUEUED, UpdateStatus.RUNNING, UpdateStatus.SUCCEEDED]
    final = updates[-1]
    (image,) = final.images
    assert (image.width, image.height, image.content_type) == (512, 288, "image/png")
    assert final.text is None and final.error_category is None
    assert final.usage == {"inference_time": 1.25}
    # The fake's result endpoint was used, after three status polls.
    assert fake.jobs[handle.provider_job_id].result_fetches == 1
    download = await client.get(image.url or "")
    assert download.headers["content-type"] == "image/png"
    assert download.content == fake.image_bytes(image.url.rsplit("/", 1)[-1] if image.url else "")
    with Image.open(io.BytesIO(download.content)) as picture:
        assert picture.format == "PNG" and picture.size == (512, 288)


async def test_success_seed_shape_with_text_and_usage(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    fake.script("success_seed")
    handle = await provider.submit(req(PRO, aspect_ratio="3:4", resolution="2K"))
    final = (await run_to_end(provider, handle))[-1]
    assert final.status is UpdateStatus.SUCCEEDED
    assert len(final.images) == 1 and final.images[0].url
    assert final.text == "Here is your red apple."
    assert final.usage["total_tokens"] == 1302
    # The seed shape carries the output on the status body: no result call needed.
    assert fake.jobs[handle.provider_job_id].result_fetches == 0
    with Image.open(io.BytesIO(fake.image_bytes(fake.jobs[handle.provider_job_id].image_names[0]))) as pic:
        assert pic.size == (1536, 2048)


async def test_success_with_text_entry(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    fake.script("success_text")
    final = (await run_to_end(provider, await provider.submit(req())))[-1]
    assert final.status is UpdateStatus.SUCCEEDED
    assert len(final.images) == 1
    assert final.text == "Here is your red apple."


async def test_undecodable_image_is_left_to_delivery(
    provider: SeaArtProvider, fake: FakeSeaArt, client: httpx.AsyncClient
) -> None:
    # The adapter does not download: a broken file surfaces when delivery decodes it.
    fake.script("undecodable_image")
    final = (await run_to_end(provider, await provider.submit(req())))[-1]
    assert final.status is UpdateStatus.SUCCEEDED
    download = await client.get(final.images[0].url or "")
    assert download.headers["content-type"] == "image/png"
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(download.content))


async def test_never_finish_stays_running(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    fake.script("never_finish")
    updates = await run_to_end(provider, await provider.submit(req()), max_polls=6)
    assert [u.status for u in updates] == [UpdateStatus.QUEUED] + [UpdateStatus.RUNNING] * 5


async def test_hold_and_release(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    fake.hold(True)
    handle = await provider.submit(req())
    updates = await run_to_end(provider, handle, max_polls=4)
    assert updates[-1].status is UpdateStatus.RUNNING
    fake.release(handle.provider_job_id)
    assert (await provider.poll(handle)).status is UpdateStatus.SUCCEEDED


async def test_status_500_is_retried_within_one_poll(
    provider: SeaArtProvider, fake: FakeSeaArt, sleeps: SleepRecorder
) -> None:
    fake.script("status_500")
    handle = await provider.submit(req())
    assert (await provider.poll(handle)).status is UpdateStatus.QUEUED
    assert fake.jobs[handle.provider_job_id].polls == 2 and len(sleeps.delays) == 1
    assert (await run_to_end(provider, handle))[-1].status is UpdateStatus.SUCCEEDED


async def test_status_hang_is_retried_after_the_read_timeout(
    fake: FakeSeaArt, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    provider = SeaArtProvider(
        api_key=fake.api_key, base_url=fake.base_url, client=client, timeout=HANG_TIMEOUT, sleep=sleeps
    )
    fake.script("status_hang")
    handle = await provider.submit(req())
    assert (await provider.poll(handle)).status is UpdateStatus.QUEUED
    assert fake.jobs[handle.provider_job_id].polls == 2


async def test_malformed_status_raises_transient_without_secrets(
    provider: SeaArtProvider, fake: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script("malformed")
    handle = await provider.submit(req())
    with caplog.at_level(logging.WARNING, logger="bot.providers"), pytest.raises(TransientError) as info:
        await provider.poll(handle)
    assert_user_safe(info.value.user_message, fake)
    assert "IN_PROGR" in info.value.detail  # a truncated body for the logs
    assert "IN_PROGR" in caplog.text and fake.api_key not in caplog.text


async def test_unknown_request_id_fails_the_job(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    update = await provider.poll(JobHandle(provider="seaart", model=NB2, provider_job_id="mmsu_gone"))
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)
    assert_user_safe(update.error_message, fake)
    assert len(fake.requests) == 1  # a 404 is not retried


async def test_unknown_app_on_poll_is_a_config_error(provider: SeaArtProvider) -> None:
    with pytest.raises(AuthError) as info:
        await provider.poll(JobHandle(provider="seaart", model="not_a_model", provider_job_id="mmsu_x"))
    assert "App not found" in info.value.detail


async def test_foreign_result_urls_are_not_followed(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    # The key goes with every call, so a status_url on another host must not be used.
    handle = await provider.submit(req())
    evil = handle.model_copy(update={"extra": {"status_url": "http://evil.example.test/steal"}})
    assert (await provider.poll(evil)).status is UpdateStatus.QUEUED
    assert fake.requests[-1].path.endswith(f"/requests/{handle.provider_job_id}/status")


@pytest.mark.parametrize(
    ("model", "ratio", "resolution", "size"),
    [(NB2, "1:8", "512", (64, 512)), (NB2, "4:1", "1K", (1024, 256)), (PRO, "16:9", "4K", (4096, 2304))],
)
async def test_images_are_sized_like_the_request(
    provider: SeaArtProvider,
    fake: FakeSeaArt,
    client: httpx.AsyncClient,
    model: str,
    ratio: str,
    resolution: str,
    size: tuple[int, int],
) -> None:
    final = (await run_to_end(provider, await provider.submit(req(model, aspect_ratio=ratio, resolution=resolution))))[
        -1
    ]
    (image,) = final.images
    assert (image.width, image.height) == size
    data = (await client.get(image.url or "")).content
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.size == size
    if resolution == "4K":
        assert 1_000_000 < len(data) < 10_000_000  # "a few MB", like a real 4K PNG


# --- create failures and retries -----------------------------------------------------------------


async def test_create_429_then_success_honours_retry_after(
    provider: SeaArtProvider, fake: FakeSeaArt, sleeps: SleepRecorder
) -> None:
    fake.script("create_429")
    handle = await provider.submit(req())
    assert len(fake.creates) == 2 and len(fake.jobs) == 1
    assert handle.provider_job_id in fake.jobs
    assert len(sleeps.delays) == 1 and 1.0 <= sleeps.delays[0] <= 20.0


async def test_create_429_until_attempts_run_out(
    provider: SeaArtProvider, fake: FakeSeaArt, sleeps: SleepRecorder
) -> None:
    fake.script(*["create_429"] * 4)
    with pytest.raises(RateLimitedError) as info:
        await provider.submit(req())
    assert info.value.retry_after == 1.0 and info.value.status_code == 429
    assert len(fake.creates) == 4 and fake.jobs == {}
    assert all(d >= 1.0 for d in sleeps.delays) and len(sleeps.delays) == 3


async def test_create_500_is_retried(provider: SeaArtProvider, fake: FakeSeaArt, sleeps: SleepRecorder) -> None:
    fake.script("create_500", "create_500")
    handle = await provider.submit(req())
    assert len(fake.creates) == 3 and list(fake.jobs) == [handle.provider_job_id]
    assert len(sleeps.delays) == 2


async def test_create_hang_is_uncertain_and_never_resent(
    fake: FakeSeaArt, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    provider = SeaArtProvider(
        api_key=fake.api_key, base_url=fake.base_url, client=client, timeout=HANG_TIMEOUT, sleep=sleeps
    )
    fake.script("create_hang")
    with pytest.raises(SubmitUncertainError) as info:
        await provider.submit(req())
    assert info.value.category is ErrorCategory.UNCERTAIN
    assert len(fake.creates) == 1 and len(fake.jobs) == 1  # accepted upstream, never sent twice
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("outcome", "error_type", "category"),
    [
        ("create_401", AuthError, ErrorCategory.AUTH),
        ("create_403_model", AuthError, ErrorCategory.AUTH),
        ("create_403_balance", OutOfCreditError, ErrorCategory.OUT_OF_CREDIT),
    ],
)
async def test_create_refusals_are_not_retried(
    provider: SeaArtProvider,
    fake: FakeSeaArt,
    sleeps: SleepRecorder,
    outcome: str,
    error_type: type[Exception],
    category: ErrorCategory,
) -> None:
    fake.script(outcome)
    with pytest.raises(error_type) as info:
        await provider.submit(req())
    error = info.value
    assert isinstance(error, AuthError | OutOfCreditError)
    assert error.category is category and error.provider == "seaart"
    assert_user_safe(error.user_message, fake)
    assert fake.api_key not in error.detail
    assert len(fake.creates) == 1 and sleeps.delays == []
    if outcome == "create_403_model":
        assert "Nano Banana 2" in error.user_message


async def test_wrong_key_is_rejected_by_the_fake(
    fake: FakeSeaArt, client: httpx.AsyncClient, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    provider = SeaArtProvider(api_key="wrong-key-123", base_url=fake.base_url, client=client, sleep=sleeps)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        await provider.submit(req())
    assert "UNAUTHORIZED" in info.value.detail
    assert "wrong-key-123" not in info.value.detail and "wrong-key-123" not in caplog.text
    assert fake.jobs == {}


# --- cancel --------------------------------------------------------------------------------------


async def test_cancel_running_job(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    fake.hold(True)
    handle = await provider.submit(req())
    assert (await provider.poll(handle)).status is UpdateStatus.QUEUED
    assert await provider.cancel(handle) is True
    assert fake.requests[-1].method == "PUT" and fake.requests[-1].path.endswith("/cancel")
    final = await provider.poll(handle)
    assert (final.status, final.error_category) == (UpdateStatus.CANCELLED, ErrorCategory.CANCELLED)
    assert_user_safe(final.error_message, fake)
    assert await provider.cancel(handle) is False  # 400 ALREADY_COMPLETED


async def test_cancel_finished_or_unknown_job(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    handle = await provider.submit(req())
    assert (await run_to_end(provider, handle))[-1].status is UpdateStatus.SUCCEEDED
    assert await provider.cancel(handle) is False
    assert await provider.cancel(JobHandle(provider="seaart", model=NB2, provider_job_id="mmsu_nope")) is False


# --- the fake's own protocol details -------------------------------------------------------------


async def test_fake_auth_and_documented_bodies(fake: FakeSeaArt, client: httpx.AsyncClient) -> None:
    url = f"{fake.base_url}/v1/queue/nano_banana_2"
    missing = await client.post(url, json={"prompt": "x"})
    assert missing.status_code == 401
    assert missing.json()["error"] == {
        "code": "UNAUTHORIZED",
        "message": "Authorization Bearer or Key token is required",
    }
    ok = await client.post(url, json={"prompt": "x"}, headers={"Authorization": f"Key {fake.api_key}"})
    assert ok.status_code == 200 and ok.json()["queue_position"] == 0
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    sync = await client.post(f"{url}/sync", json={"prompt": "x"}, headers=auth)
    assert (sync.status_code, sync.json()) == (404, {"detail": "Not Found"})
    hook = await client.post(url, json={"prompt": "x", "webhook_url": "https://x.test"}, headers=auth)
    assert (hook.status_code, hook.json()) == (400, {"detail": "webhook not supported"})
    bad = await client.post(url, json={"prompt": "", "aspect_ratio": "7:3"}, headers=auth)
    assert bad.status_code == 422
    assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {("body", "prompt"), ("body", "aspect_ratio")}
    app = await client.post(f"{fake.base_url}/v1/queue/nope", json={"prompt": "x"}, headers=auth)
    assert (app.status_code, app.json()) == (404, {"detail": "App not found: nope"})


def test_fake_rejects_unknown_outcomes() -> None:
    with pytest.raises(ValueError):
        FakeSeaArt().script("succes")
    assert "create_hang" in SEAART_OUTCOMES


async def test_provider_maps_a_422_to_bad_input(fake: FakeSeaArt, client: httpx.AsyncClient) -> None:
    # A model entry that lets through what the real schema refuses shows the 422 mapping end to end.
    loose = Capabilities(
        model=NB2,
        display_name="Nano Banana 2",
        max_prompt_chars=5000,
        max_reference_images=3,
        aspect_ratios=("7:3",),
        resolutions=("1K",),
    )
    provider = SeaArtProvider(api_key=fake.api_key, base_url=fake.base_url, client=client)
    provider.models[NB2] = loose
    with pytest.raises(BadInputError) as info:
        await provider.submit(req(aspect_ratio="7:3"))
    assert_user_safe(info.value.user_message, fake)
    assert "aspect_ratio" in info.value.detail
    assert len(fake.creates) == 1


# --- validate(): property tests ------------------------------------------------------------------

_caps = st.sampled_from(list(SEAART_MODELS.values()))
_refs = st.builds(
    ReferenceImage,
    url=st.just("https://cdn.example.test/r.png"),
    content_type=st.sampled_from(["image/png", "image/jpeg", "image/webp", "IMAGE/PNG; charset=binary"]),
    size=st.integers(0, 10 * 1024 * 1024),
)


def _prompts(limit: int) -> st.SearchStrategy[str]:
    short = st.text(min_size=1, max_size=300).filter(lambda s: clean_prompt(s) != "")
    long = st.integers(1, limit).map(lambda n: "a" * n)
    return short | long


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_validate_accepts_everything_in_range(data: st.DataObject) -> None:
    caps = data.draw(_caps)
    request = GenerationRequest(
        model=caps.model,
        prompt=data.draw(_prompts(caps.max_prompt_chars)),
        reference_images=tuple(data.draw(st.lists(_refs, max_size=caps.max_reference_images))),
        aspect_ratio=data.draw(st.none() | st.sampled_from(caps.aspect_ratios)),
        resolution=data.draw(st.none() | st.sampled_from(caps.resolutions)),
    )
    validate(request, caps)


def _one_thing_wrong(caps: Capabilities) -> st.SearchStrategy[dict[str, Any]]:
    whitespace = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=30)
    return st.one_of(
        st.integers(caps.max_prompt_chars + 1, caps.max_prompt_chars + 500).map(lambda n: {"prompt": "b" * n}),
        whitespace.map(lambda p: {"prompt": p}),
        st.text(max_size=8).filter(lambda r: r not in caps.aspect_ratios).map(lambda r: {"aspect_ratio": r}),
        st.text(max_size=8).filter(lambda r: r not in caps.resolutions).map(lambda r: {"resolution": r}),
        st.lists(_refs, min_size=caps.max_reference_images + 1, max_size=caps.max_reference_images + 3).map(
            lambda refs: {"reference_images": tuple(refs)}
        ),
        st.sampled_from(["image/gif", "application/pdf", "text/plain", ""]).map(
            lambda t: {"reference_images": (ReferenceImage(url="https://x.test/r", content_type=t, size=1),)}
        ),
        st.integers(caps.max_reference_bytes + 1, 2**40).map(
            lambda n: {"reference_images": (ReferenceImage(url="https://x.test/r", content_type="image/png", size=n),)}
        ),
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_validate_refuses_anything_out_of_range(data: st.DataObject) -> None:
    caps = data.draw(_caps)
    fields: dict[str, Any] = {"model": caps.model, "prompt": "a cat"} | data.draw(_one_thing_wrong(caps))
    with pytest.raises(InvalidRequestError) as info:
        validate(GenerationRequest(**fields), caps)
    assert info.value.user_message


def test_validate_boundaries() -> None:
    nb2, pro = SEAART_MODELS[NB2], SEAART_MODELS[PRO]
    validate(req(prompt="a" * 2500), nb2)
    validate(req(prompt=" a "), nb2)
    validate(req(PRO, reference_images=tuple(ref(n) for n in range(14))), pro)
    for bad, caps in [
        (req(prompt="a" * 2501), nb2),
        (req(PRO, reference_images=tuple(ref(n) for n in range(15))), pro),
        (req(PRO, aspect_ratio="1:4"), pro),
    ]:
        with pytest.raises(InvalidRequestError):
            validate(bad, caps)


async def test_no_image_outcome(provider: SeaArtProvider, fake: FakeSeaArt) -> None:
    fake.script("no_image")
    final = (await run_to_end(provider, await provider.submit(req())))[-1]
    assert (final.status, final.error_category) == (UpdateStatus.FAILED, ErrorCategory.NO_IMAGE)
    assert final.text == "I can't make that image."
    assert_user_safe(final.error_message, fake)


# --- narrow parser cases the fake does not produce (httpx.MockTransport) -------------------------

MOCK_BASE = "https://seaart.test/model"
MOCK_KEY = "sk-mock-0123456789"
HANDLE = JobHandle(provider="seaart", model=NB2, provider_job_id="mmsu_1")


def mock_provider(status: httpx.Response, result: httpx.Response | None = None) -> SeaArtProvider:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return status
        if request.url.path.endswith("/response") and result is not None:
            return result
        if request.method == "POST":
            return status
        return httpx.Response(500)

    async def no_sleep(delay: float) -> None:
        return None

    # A MockTransport holds no sockets, so the client needs no closing.
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return SeaArtProvider(
        api_key=MOCK_KEY,
        base_url=MOCK_BASE,
        client=client,
        sleep=no_sleep,
        policy=RetryPolicy(max_attempts=2),
    )


def completed(**extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"status": "COMPLETED", "request_id": "mmsu_1", **extra})


@pytest.mark.parametrize(
    ("status_body", "expected"),
    [
        # A null error is a serializer artefact, not a failure.
        ({"status": "completed", "error": None, "output": [{"content": [{"type": "image", "url": "https://c.test/a.png"}]}]},
         (UpdateStatus.SUCCEEDED, None)),
        # Seed codes arrive as integers (leading zeros lost) or strings.
        ({"status": "failed", "error": {"code": 5001097, "error_message": "HTTP error response"}},
         (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)),
        # "failed" without any error text still fails, as transient.
        ({"status": "failed"}, (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)),
        # An error_type we do not know is treated as transient.
        ({"status": "COMPLETED", "error": "x", "error_type": "SOMETHING_NEW"},
         (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)),
        ({"status": "CANCELED"}, (UpdateStatus.CANCELLED, ErrorCategory.CANCELLED)),
        ({"status": "pending"}, (UpdateStatus.QUEUED, None)),
        ({"status": "processing"}, (UpdateStatus.RUNNING, None)),
    ],
)  # fmt: skip
async def test_status_shapes(status_body: dict[str, Any], expected: tuple[UpdateStatus, ErrorCategory | None]) -> None:
    provider = mock_provider(httpx.Response(200, json=status_body))
    update = await provider.poll(HANDLE)
    assert (update.status, update.error_category) == expected
    if update.status is UpdateStatus.FAILED:
        assert update.error_message and "http" not in update.error_message


async def test_result_shapes_nested_image_url_and_bad_urls() -> None:
    result = httpx.Response(
        200,
        json={
            "outputs": [
                {"type": "image_url", "image_url": {"url": "https://c.test/1.webp"}},
                {"type": "image", "url": "data:image/png;base64,AAAA"},  # not a downloadable link
                {"type": "image", "url": "https://c.test/2.webp", "width": True, "content_type": 5},
                {"type": "video", "url": "https://c.test/3.mp4"},
                "junk",
            ]
        },
    )
    update = await mock_provider(completed(), result).poll(HANDLE)
    assert update.status is UpdateStatus.SUCCEEDED
    assert [i.url for i in update.images] == ["https://c.test/1.webp", "https://c.test/2.webp"]
    assert update.images[1].width is None and update.images[1].content_type is None


async def test_result_202_means_still_running() -> None:
    result = httpx.Response(202, json={"status": "IN_PROGRESS"})
    assert (await mock_provider(completed(), result).poll(HANDLE)).status is UpdateStatus.RUNNING


@pytest.mark.parametrize(
    "status",
    [
        httpx.Response(200, json={"status": "EXPLODED"}),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, json={"no_status": True}),
    ],
)
async def test_unexpected_status_shapes_raise_transient(status: httpx.Response) -> None:
    with pytest.raises(TransientError) as info:
        await mock_provider(status).poll(HANDLE)
    assert "http" not in info.value.user_message


async def test_result_without_outputs_raises_transient() -> None:
    with pytest.raises(TransientError):
        await mock_provider(completed(), httpx.Response(200, json={"request_id": "mmsu_1"})).poll(HANDLE)


async def test_create_answer_without_request_id_is_uncertain() -> None:
    provider = mock_provider(httpx.Response(200, json={"queue_position": 0}))
    with pytest.raises(SubmitUncertainError):
        await provider.submit(req())


async def test_create_504_is_uncertain() -> None:
    provider = mock_provider(httpx.Response(504, text="gateway timeout"))
    with pytest.raises(SubmitUncertainError):
        await provider.submit(req())


@pytest.mark.parametrize(
    ("response", "error_type"),
    [
        (httpx.Response(402, json={"detail": "Payment required"}), OutOfCreditError),
        (httpx.Response(403, json={"detail": "Forbidden"}), AuthError),
        (httpx.Response(403, json={"detail": "Insufficient balance"}), OutOfCreditError),
        (httpx.Response(404, json={"detail": "App not found: nano_banana_2"}), AuthError),
        (
            httpx.Response(422, json={"detail": [{"loc": ["body", "prompt"], "msg": "too long"}]}),
            BadInputError,
        ),
        (httpx.Response(400, json={"detail": "webhook not supported"}), BadInputError),
    ],
)
async def test_create_status_mapping(response: httpx.Response, error_type: type[Exception]) -> None:
    with pytest.raises(error_type) as info:
        await mock_provider(response).submit(req())
    assert isinstance(info.value, AuthError | OutOfCreditError | BadInputError)
    assert MOCK_KEY not in info.value.detail
    assert "http" not in info.value.user_message
