"""What only SeaArt does, against FakeSeaArt over a real socket with the real httpx client: its two size
fields, its own error types and seed codes, its result endpoint and seed-shaped answers, and its cancel.
What every adapter does is in tests/contract."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.errors import (
    AuthError,
    BadInputError,
    ErrorCategory,
    OutOfCreditError,
    ProviderError,
    SubmitUncertainError,
    TransientError,
)
from bot.models import JobHandle, UpdateStatus
from bot.providers.base import Provider
from bot.testing.providers import FakeSeaArt
from tests.providers.helpers import (
    ADAPTERS,
    HANG_TIMEOUT,
    NB2,
    PRO,
    PROMPT,
    SleepRecorder,
    assert_create_refused,
    assert_user_safe,
    fake_fixture,
    ref,
    req,
    run_to_end,
)

SEAART = ADAPTERS["seaart"]


fake = fake_fixture("seaart")


@pytest.fixture
def provider(fake: FakeSeaArt, client: httpx.AsyncClient, sleeps: SleepRecorder) -> Provider:
    return SEAART.connect(fake, client, sleeps)


# --- what the provider sends ---------------------------------------------------------------------


async def test_the_create_answer_gives_the_task_links(provider: Provider, fake: FakeSeaArt) -> None:
    handle = await provider.submit(req())
    assert handle.provider_job_id.startswith("mmsu_")
    base = f"{fake.base_url}/v1/queue/nano_banana_2/requests/{handle.provider_job_id}"
    assert handle.extra == {
        "status_url": f"{base}/status",
        "response_url": f"{base}/response",
        "cancel_url": f"{base}/cancel",
    }


async def test_full_nb2_request_maps_512_to_half_k(provider: Provider, fake: FakeSeaArt) -> None:
    await provider.submit(req(reference_images=(ref(1), ref(2), ref(3)), aspect_ratio="21:9", resolution="512"))
    assert fake.creates[0].json == {
        "prompt": PROMPT,
        "image_urls": [f"https://cdn.example.test/ref-{n}.png" for n in (1, 2, 3)],
        "aspect_ratio": "21:9",
        "resolution": "0.5K",
    }


async def test_pro_sends_image_size_and_takes_many_refs(provider: Provider, fake: FakeSeaArt) -> None:
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
    provider: Provider, fake: FakeSeaArt, model: str, resolution: str | None, field: str, value: str
) -> None:
    await provider.submit(req(model, resolution=resolution))
    body = fake.creates[0].json
    assert body is not None
    assert body[field] == value
    assert not ("image_size" in body and "resolution" in body)


# --- what the provider makes of each outcome -----------------------------------------------------

# SeaArt's own error types and seed codes -> (status, category); the ones the common outcomes
# stand for (REQUEST_INVALID, CONTENT_BLOCKED, INFERENCE_FAILURE) are in tests/contract.
FAILURES: dict[str, tuple[UpdateStatus, ErrorCategory]] = {
    "error:INFERENCE_TIMEOUT": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "error:INTERNAL_SERVER_ERROR": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "error:CANCELED": (UpdateStatus.CANCELLED, ErrorCategory.CANCELLED),
    "seed_error:005001095": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "seed_error:005001096": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "seed_error:005001097": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "seed_error:005001098": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
    "result_404": (UpdateStatus.FAILED, ErrorCategory.TRANSIENT),
}


@pytest.mark.parametrize("outcome", sorted(FAILURES))
async def test_seaart_error_types_and_seed_codes(provider: Provider, fake: FakeSeaArt, outcome: str) -> None:
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


async def test_success_reads_the_result_endpoint(
    provider: Provider, fake: FakeSeaArt, client: httpx.AsyncClient
) -> None:
    handle = await provider.submit(req(aspect_ratio="16:9", resolution="512"))
    final = (await run_to_end(provider, handle))[-1]
    (image,) = final.images
    assert image.content_type == "image/png"
    assert final.text is None
    assert final.usage == {"inference_time": 1.25}
    # The fake's result endpoint was used, after three status polls.
    assert fake.jobs[handle.provider_job_id].result_fetches == 1
    download = await client.get(image.url or "")
    assert download.content == fake.image_bytes(image.url.rsplit("/", 1)[-1] if image.url else "")


async def test_success_seed_shape_with_text_and_usage(provider: Provider, fake: FakeSeaArt) -> None:
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


async def test_success_with_text_entry(provider: Provider, fake: FakeSeaArt) -> None:
    fake.script("success_text")
    final = (await run_to_end(provider, await provider.submit(req())))[-1]
    assert final.status is UpdateStatus.SUCCEEDED
    assert len(final.images) == 1
    assert final.text == "Here is your red apple."


async def test_status_hang_is_retried_after_the_read_timeout(
    fake: FakeSeaArt, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    provider = SEAART.connect(fake, client, sleeps, timeout=HANG_TIMEOUT)
    fake.script("status_hang")
    handle = await provider.submit(req())
    assert (await provider.poll(handle)).status is UpdateStatus.QUEUED
    assert fake.jobs[handle.provider_job_id].polls == 2


async def test_unknown_app_on_poll_is_a_config_error(provider: Provider) -> None:
    with pytest.raises(AuthError) as info:
        await provider.poll(JobHandle(provider="seaart", model="not_a_model", provider_job_id="mmsu_x"))
    assert "App not found" in info.value.detail


async def test_a_model_not_allowed_is_refused_by_name(
    provider: Provider, fake: FakeSeaArt, sleeps: SleepRecorder
) -> None:
    fake.script("create_403_model")
    with pytest.raises(AuthError) as info:
        await provider.submit(req())
    error = info.value
    assert error.category is ErrorCategory.AUTH and error.provider == "seaart"
    assert_user_safe(error.user_message, fake)
    assert "Nano Banana 2" in error.user_message
    assert fake.api_key not in error.detail
    assert len(fake.creates) == 1 and sleeps.delays == []


# --- cancel --------------------------------------------------------------------------------------


async def test_cancel_running_job(provider: Provider, fake: FakeSeaArt) -> None:
    fake.hold(True)
    handle = await provider.submit(req())
    assert (await provider.poll(handle)).status is UpdateStatus.QUEUED
    assert await provider.cancel(handle) is True
    assert fake.requests[-1].method == "PUT" and fake.requests[-1].path.endswith("/cancel")
    final = await provider.poll(handle)
    assert (final.status, final.error_category) == (UpdateStatus.CANCELLED, ErrorCategory.CANCELLED)
    assert_user_safe(final.error_message, fake)
    assert await provider.cancel(handle) is False  # 400 ALREADY_COMPLETED


async def test_a_held_job_let_go_ends_at_its_next_answer_so_a_cancel_before_it_is_taken(
    provider: Provider, fake: FakeSeaArt
) -> None:
    """Polled many times while held, then released: the job ends at its next status answer, not the moment
    it is let go, so a cancel sent before that answer is taken. Before, the fake judged the cancel by the
    answers given while held and refused it as already completed whenever the bot had polled often enough
    (tests/e2e/test_restart.py's cancel after a crash failed so in a full run on a busy machine)."""
    fake.hold(True)
    handle = await provider.submit(req())
    for _ in range(6):
        assert (await provider.poll(handle)).status in (UpdateStatus.QUEUED, UpdateStatus.RUNNING)
    fake.release()
    assert await provider.cancel(handle) is True
    final = await provider.poll(handle)
    assert (final.status, final.error_category) == (UpdateStatus.CANCELLED, ErrorCategory.CANCELLED)


# --- the fake's own protocol details -------------------------------------------------------------


async def test_fake_seaart_protocol(fake: FakeSeaArt, client: httpx.AsyncClient) -> None:
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


# --- narrow parser cases the fake does not produce (httpx.MockTransport) -------------------------

HANDLE = JobHandle(provider="seaart", model=NB2, provider_job_id="mmsu_1")


def mock_provider(status: httpx.Response, result: httpx.Response | None = None) -> Provider:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return status
        if request.url.path.endswith("/response") and result is not None:
            return result
        if request.method == "POST":
            return status
        return httpx.Response(500)

    return SEAART.over_mock(handler)


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


@pytest.mark.parametrize(
    "answer",
    [{"queue_position": 0}, {"request_id": "x" * 100_000}, {"request_id": "mmsu_1\r\n\x1b[2J"}, {"request_id": 7}],
    ids=["none", "far too long", "control characters", "not text"],
)
async def test_create_answer_without_a_usable_request_id_is_uncertain(answer: dict[str, object]) -> None:
    provider = mock_provider(httpx.Response(200, json=answer))
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
async def test_create_status_mapping(response: httpx.Response, error_type: type[ProviderError]) -> None:
    await assert_create_refused(mock_provider(response), error_type)
