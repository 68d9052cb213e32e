"""What every adapter makes of a job the provider took: the image it delivers (or leaves to delivery to
refuse), a failure told safely, a job that keeps running, a poll that goes wrong, and cancelling."""

from __future__ import annotations

import asyncio
import io
import logging

import httpx
import pytest
from PIL import Image, UnidentifiedImageError

from bot.errors import ErrorCategory, TransientError
from bot.models import JobHandle, UpdateStatus
from bot.providers.base import Provider
from bot.testing.providers._base import NOT_AN_IMAGE, result_png
from tests.providers.helpers import (
    ADAPTERS,
    NB2,
    PRO,
    QUEUED,
    Adapter,
    Fake,
    SleepRecorder,
    assert_user_safe,
    image_bytes,
    models_of,
    req,
    run_to_end,
)


def statuses_until(adapter: Adapter, last: UpdateStatus) -> list[UpdateStatus]:
    """A job's updates, first poll to ``last``: the fakes keep a queued job queued for one poll and
    running for one; a synchronous adapter's first poll hands back the answer."""
    return [UpdateStatus.QUEUED, UpdateStatus.RUNNING, last] if adapter.queued else [last]


# ---- successes -----------------------------------------------------------------------------------------

# (model, ratio, size asked; None = the default) -> the image's pixels
SIZES = [
    (NB2, "1:8", "512", (64, 512)),
    (NB2, "4:1", "1K", (1024, 256)),
    (NB2, "16:9", None, (1024, 576)),
    (NB2, "16:9", "512", (512, 288)),
    (NB2, "9:16", "2K", (1152, 2048)),
    (NB2, "auto", "2K", (2048, 2048)),
    (PRO, "16:9", "4K", (4096, 2304)),
    (PRO, "3:4", "4K", (3072, 4096)),
]
# Whose answer says how large the image is (the others leave it to delivery).
SIZE_IN_THE_ANSWER = {"seaart", "gemini"}


def _offered(adapter_id: str, model: str, ratio: str, size: str | None) -> bool:
    caps = models_of(adapter_id).get(model)
    return caps is not None and ratio in caps.aspect_ratios and (size is None or size in caps.resolutions)


@pytest.mark.parametrize(
    ("adapter", "model", "ratio", "size", "pixels"),
    [
        pytest.param(a, model, ratio, size, pixels, id=f"{a}-{model}-{ratio}-{size or 'default'}")
        for a in ADAPTERS
        for model, ratio, size, pixels in SIZES
        if _offered(a, model, ratio, size)
    ],
    indirect=["adapter"],
)
async def test_success_is_one_png_sized_like_the_request(
    adapter: Adapter,
    provider: Provider,
    client: httpx.AsyncClient,
    model: str,
    ratio: str,
    size: str | None,
    pixels: tuple[int, int],
) -> None:
    if size == "4K":
        # The fakes encode a result of a size once per process (result_png), inside the first request for it:
        # half a second of an idle core, more than the adapters' 2 s test timeout on a loaded one (a ReadTimeout
        # with four workers on two cores). Made before the request, as a real provider's image is.
        await asyncio.to_thread(result_png, *pixels)
    updates = await run_to_end(provider, await provider.submit(req(model, aspect_ratio=ratio, resolution=size)))
    assert [u.status for u in updates] == statuses_until(adapter, UpdateStatus.SUCCEEDED)
    done = updates[-1]
    assert done.error_category is None and done.error_message is None
    (image,) = done.images
    data = await image_bytes(image, client)
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.format == "PNG" and picture.size == pixels
    reported = pixels if adapter.id in SIZE_IN_THE_ANSWER else (None, None)
    assert (image.width, image.height) == reported
    if size == "4K":
        assert 1_000_000 < len(data) < 10_000_000  # "a few MB", like a real 4K PNG


async def test_undecodable_image_is_left_to_delivery(fake: Fake, provider: Provider, client: httpx.AsyncClient) -> None:
    # The adapter does not decode: a broken file surfaces when delivery opens it.
    fake.script("undecodable_image")
    updates = await run_to_end(provider, await provider.submit(req()))
    assert updates[-1].status is UpdateStatus.SUCCEEDED
    (image,) = updates[-1].images
    data = await image_bytes(image, client)
    assert data == NOT_AN_IMAGE
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(data))


# ---- failures --------------------------------------------------------------------------------------

CATEGORIES = {
    "content_blocked": ErrorCategory.CONTENT_BLOCKED,
    "transient_failure": ErrorCategory.TRANSIENT,
    "bad_input": ErrorCategory.BAD_INPUT,
}
# SeaArt's queue takes any well-formed request, so a bad one fails as a job there (and is refused at
# the create everywhere else: tests/contract/test_create_outcomes.py).
JOB_FAILURES = [(a, o) for a in ADAPTERS for o in ("content_blocked", "transient_failure")] + [("seaart", "bad_input")]
# What the detail (for the logs) names, per adapter and outcome; "{job}" is the provider's job id.
DETAIL: dict[tuple[str, str], tuple[str, ...]] = {
    ("seaart", "content_blocked"): ("CONTENT_BLOCKED",),
    ("seaart", "transient_failure"): ("INFERENCE_FAILURE",),
    ("seaart", "bad_input"): ("REQUEST_INVALID",),
    ("kie", "content_blocked"): ("{job}",),
    ("kie", "transient_failure"): ("{job}", "Internal error"),
    # sinancode sends only error_code here: the detail falls back to it.
    ("sinancode", "content_blocked"): ("{job}",),
    ("sinancode", "transient_failure"): ("{job}", "internal_error"),
    ("segmind_v1", "content_blocked"): ("422",),
    ("segmind_v1", "transient_failure"): ("422",),
    ("segmind_v2", "content_blocked"): ("422",),
    ("segmind_v2", "transient_failure"): ("422",),
    ("gemini", "content_blocked"): ("finishReason=IMAGE_SAFETY",),
    ("gemini", "transient_failure"): ("finishReason=OTHER",),
}


@pytest.mark.parametrize(("adapter", "outcome"), JOB_FAILURES, indirect=["adapter"])
async def test_job_failures(
    adapter: Adapter, fake: Fake, provider: Provider, sleeps: SleepRecorder, outcome: str
) -> None:
    fake.script(outcome)
    handle = await provider.submit(req())
    updates = await run_to_end(provider, handle)
    assert [u.status for u in updates] == statuses_until(adapter, UpdateStatus.FAILED)
    failed = updates[-1]
    assert failed.error_category is CATEGORIES[outcome]
    assert failed.images == []
    assert_user_safe(failed.error_message, fake)
    assert failed.error_detail and fake.api_key not in failed.error_detail
    for word in DETAIL[adapter.id, outcome]:
        assert word.format(job=handle.provider_job_id) in failed.error_detail
    assert len(fake.creates) == 1 and sleeps.delays == []


@pytest.mark.parametrize("adapter", ["seaart", "segmind_v1", "segmind_v2"], indirect=True)
async def test_an_answer_in_words_only_is_no_image(fake: Fake, provider: Provider) -> None:
    # The fakes whose "no_image" is the model answering in prose (Gemini's is its text_only outcome).
    fake.script("no_image")
    update = (await run_to_end(provider, await provider.submit(req())))[-1]
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.NO_IMAGE)
    assert update.text == "I can't make that image."
    assert_user_safe(update.error_message, fake)


# ---- a queued job: running, held, polled through trouble ----------------------------------------------


@pytest.mark.parametrize("adapter", QUEUED, indirect=True)
async def test_never_finish_stays_running(fake: Fake, provider: Provider) -> None:
    fake.script("never_finish")
    updates = await run_to_end(provider, await provider.submit(req()), max_polls=6)
    assert [u.status for u in updates] == [UpdateStatus.QUEUED] + [UpdateStatus.RUNNING] * 5


@pytest.mark.parametrize("adapter", QUEUED, indirect=True)
async def test_hold_and_release(fake: Fake, provider: Provider) -> None:
    fake.hold(True)
    handle = await provider.submit(req())
    assert (await run_to_end(provider, handle, max_polls=4))[-1].status is UpdateStatus.RUNNING
    fake.release(handle.provider_job_id)
    assert (await provider.poll(handle)).status is UpdateStatus.SUCCEEDED


# The outcome that answers a job's first poll with a 5xx, as each fake names it.
POLL_500 = {"seaart": "status_500", "kie": "poll_500", "sinancode": "poll_500"}


@pytest.mark.parametrize("adapter", list(POLL_500), indirect=True)
async def test_a_5xx_poll_is_retried_within_the_poll(
    adapter: Adapter, fake: Fake, provider: Provider, sleeps: SleepRecorder
) -> None:
    fake.script(POLL_500[adapter.id])
    handle = await provider.submit(req())
    assert (await provider.poll(handle)).status is UpdateStatus.QUEUED
    assert fake.jobs[handle.provider_job_id].polls == 2 and len(sleeps.delays) == 1
    assert (await run_to_end(provider, handle))[-1].status is UpdateStatus.SUCCEEDED


@pytest.mark.parametrize("adapter", QUEUED, indirect=True)
async def test_malformed_poll_raises_transient_without_secrets(
    fake: Fake, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script("malformed")
    handle = await provider.submit(req())
    with caplog.at_level(logging.WARNING, logger="bot.providers"), pytest.raises(TransientError) as info:
        await provider.poll(handle)
    assert_user_safe(info.value.user_message, fake)
    assert "IN_PROGR" in info.value.detail  # a truncated body for the logs
    assert "IN_PROGR" in caplog.text and fake.api_key not in caplog.text


@pytest.mark.parametrize("adapter", QUEUED, indirect=True)
async def test_a_job_the_provider_does_not_know_fails_without_a_retry(
    adapter: Adapter, fake: Fake, provider: Provider
) -> None:
    extra = {"mode": "v2"} if adapter.id == "segmind_v2" else {}
    update = await provider.poll(JobHandle(provider=adapter.name, model=NB2, provider_job_id="gone-1", extra=extra))
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)
    assert_user_safe(update.error_message, fake)
    assert len(fake.requests) == 1  # a "not found" is an answer, not retried


@pytest.mark.parametrize("adapter", ["seaart", "segmind_v2"], indirect=True)
async def test_a_status_url_on_another_host_is_not_followed(fake: Fake, provider: Provider) -> None:
    # The key goes with every call, so a status_url the handle names elsewhere must not be used.
    handle = await provider.submit(req())
    evil = handle.model_copy(update={"extra": handle.extra | {"status_url": "http://evil.example.test/steal"}})
    assert (await provider.poll(evil)).status is UpdateStatus.QUEUED
    assert fake.requests[-1].path == httpx.URL(handle.extra["status_url"]).path


# ---- cancel --------------------------------------------------------------------------------------------

# Only SeaArt documents a cancel (tests/providers/test_seaart.py cancels a running job).
NO_CANCEL = [a for a in ADAPTERS if a != "seaart"]


@pytest.mark.parametrize("adapter", NO_CANCEL, indirect=True)
async def test_cancel_where_the_api_has_none_sends_nothing(fake: Fake, provider: Provider) -> None:
    handle = await provider.submit(req())
    before = len(fake.requests)
    assert await provider.cancel(handle) is False
    assert len(fake.requests) == before


async def test_cancel_of_a_finished_or_unknown_job_is_refused(adapter: Adapter, provider: Provider) -> None:
    handle = await provider.submit(req())
    assert (await run_to_end(provider, handle))[-1].status is UpdateStatus.SUCCEEDED
    assert await provider.cancel(handle) is False
    unknown = JobHandle(provider=adapter.name, model=NB2, provider_job_id="gone-2")
    assert await provider.cancel(unknown) is False
