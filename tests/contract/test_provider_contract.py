"""One contract every adapter passes, over sockets against its fake: the same GenerationRequest
becomes each provider's documented request, and every common outcome ends the job through the real
JobRunner (real SQLite, real httpx) in the right state with a clear message."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.cli_sink import FileSink
from bot.config import load_settings
from bot.jobs import JobRunner
from bot.models import GenerationRequest, JobState, ReferenceImage, UpdateStatus
from bot.moderation import honoured_levels
from bot.providers.base import Provider
from bot.providers.gemini import safety_settings_for
from bot.store import Database
from bot.store.jobs import Job, JobStore, NewJob
from bot.testing.providers import COMMON_OUTCOMES
from bot.transport import tls_context
from tests.conftest import Clock
from tests.providers.helpers import NB2, PROMPT, Adapter, Fake, SleepRecorder, req, run_to_end

# ---- 1. the same request, each provider's documented wire format ----------------------------------

# adapter -> (create path, the header that carries the key, how the key is written there)
CREATE_CALL = {
    "seaart": ("/model/v1/queue/nano_banana_2", "Authorization", "Bearer {key}"),  # docs/providers.md 2.1-2.3
    "kie": ("/api/v1/jobs/createTask", "Authorization", "Bearer {key}"),  # docs/providers.md 4.1
    "sinancode": ("/v1/generate/k/nano-banana-2", "Authorization", "Bearer {key}"),  # docs/providers.md 4.2, seed 003
    "segmind_v1": ("/v1/nano-banana-2", "x-api-key", "{key}"),  # docs/providers.md 5.2, seed 004
    "segmind_v2": ("/v2/nano-banana-2", "x-api-key", "{key}"),  # docs/providers.md 5.3
    "gemini": ("/v1beta/models/gemini-3.1-flash-image:generateContent", "x-goog-api-key", "{key}"),  # 6
}


def documented_body(
    adapter_id: str, size: str, ratio: str | None = None, ref_url: str | None = None, ref_b64: str | None = None
) -> dict[str, Any]:
    """The JSON body each provider's docs say a Nano Banana 2 request becomes. The size is always sent
    (the default too: it decides the price); nothing else the member left unset is."""

    def given(name: str, value: object) -> dict[str, Any]:
        return {name: value} if value else {}

    if adapter_id == "seaart":  # docs/providers.md 2.3
        return {
            "prompt": PROMPT,
            **given("image_urls", ref_url and [ref_url]),
            **given("aspect_ratio", ratio),
            "resolution": size,
        }
    if adapter_id in ("kie", "sinancode"):  # docs/providers.md 4.1, 4.2
        fields = {
            "prompt": PROMPT,
            **given("image_input", ref_url and [ref_url]),
            **given("aspect_ratio", ratio),
            "resolution": size,
        }
        return {"model": "nano-banana-2", "input": fields} if adapter_id == "kie" else fields
    if adapter_id.startswith("segmind"):  # docs/providers.md 5.2, 5.3
        return {
            "prompt": PROMPT,
            **given("image_urls", ref_url and [ref_url]),
            **given("aspect_ratio", ratio),
            "output_resolution": size,
            "response_modalities": "TEXT_AND_IMAGE",
        }
    assert adapter_id == "gemini"  # docs/providers.md 6.3: references travel inline
    parts = [{"text": PROMPT}, *([{"inlineData": {"mimeType": "image/png", "data": ref_b64}}] if ref_b64 else [])]
    return {
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {**given("aspectRatio", ratio), "imageSize": size},
        },
    }


async def test_same_request_becomes_each_documented_request(adapter: Adapter, fake: Fake, provider: Provider) -> None:
    ref_url = fake.register_image("reference", (64, 48))
    ref_bytes = fake.image_bytes("reference")
    reference = ReferenceImage(url=ref_url, content_type="image/png", size=len(ref_bytes))
    await provider.submit(req(aspect_ratio="16:9", resolution="2K", reference_images=(reference,)))
    (create,) = fake.creates
    path, header, value = CREATE_CALL[adapter.id]
    assert create.method == "POST" and create.path == path
    assert create.headers[header] == value.format(key=fake.api_key)
    assert create.json == documented_body(adapter.id, "2K", "16:9", ref_url, base64.b64encode(ref_bytes).decode())
    # The key travels in its header only: never in a URL, never in the body.
    for recorded in fake.requests:
        key = fake.api_key
        assert key not in recorded.path and key not in str(recorded.query) and key.encode() not in recorded.body


def prompt_sent(adapter_id: str, body: dict[str, Any]) -> str:
    """Where each provider's create carries the prompt (``documented_body``)."""
    if adapter_id == "kie":
        return str(body["input"]["prompt"])
    if adapter_id == "gemini":
        return str(body["contents"][-1]["parts"][0]["text"])
    return str(body["prompt"])


async def test_every_adapter_says_what_a_style_reference_is_for(
    adapter: Adapter, fake: Fake, provider: Provider
) -> None:
    """Midjourney's --sref given as an image's link (bot/reference_roles.py): the image goes as any reference does,
    and every provider is sent the member's words with what it is for, by its place."""
    ref_url = fake.register_image("style", (64, 48))
    style = ReferenceImage(url=ref_url, content_type="image/png", size=len(fake.image_bytes("style")), role="style")
    await provider.submit(req(reference_images=(style,)))
    (create,) = fake.creates
    assert create.json is not None
    assert prompt_sent(adapter.id, create.json) == (
        f"{PROMPT} Take only the style of the image: its colours, light, medium and texture, not what it shows."
    )


async def test_minimal_create_request(adapter: Adapter, fake: Fake, provider: Provider) -> None:
    handle = await provider.submit(req())
    (create,) = fake.creates
    path, header, value = CREATE_CALL[adapter.id]
    assert create.path == path and create.query == {}  # never ?key=
    assert create.headers[header] == value.format(key=fake.api_key)
    assert header == "Authorization" or "Authorization" not in create.headers
    assert create.headers["Content-Type"] == "application/json"
    assert create.json == documented_body(adapter.id, "1K")
    assert (handle.provider, handle.model) == (adapter.name, "nano_banana_2")
    assert handle.provider_job_id in fake.jobs


# ---- 2. every common outcome -> job state and category, through the real runner -------------------

EXPECTED: dict[str, tuple[JobState, str | None]] = {
    "success": (JobState.DELIVERED, None),
    "rate_limited": (JobState.DELIVERED, None),
    "server_error": (JobState.DELIVERED, None),
    "bad_input": (JobState.FAILED, "bad_input"),
    "content_blocked": (JobState.BLOCKED, "content_blocked"),
    "auth": (JobState.FAILED, "auth"),
    "out_of_credit": (JobState.FAILED, "out_of_credit"),
    "transient_failure": (JobState.FAILED, "transient"),
    "undecodable_image": (JobState.FAILED, "delivery"),
    "create_hang": (JobState.FAILED, "uncertain"),
}
# Where queued and synchronous APIs end differently.
SPLIT = {"never_finish", "malformed"}


def test_the_contract_covers_exactly_the_common_outcomes() -> None:
    assert set(EXPECTED) | SPLIT == COMMON_OUTCOMES


def test_every_fake_takes_the_common_outcomes(fake: Fake) -> None:
    assert COMMON_OUTCOMES.issubset(fake.outcomes)
    fake.script(*sorted(COMMON_OUTCOMES))
    with pytest.raises(ValueError):
        fake.script("succes")


def expected_for(adapter: Adapter, outcome: str) -> set[tuple[JobState, str | None]]:
    if outcome == "never_finish":
        # Queued APIs keep saying "running" until our deadline; a synchronous call just never answers.
        return {(JobState.EXPIRED, "expired")} if adapter.queued else {(JobState.FAILED, "uncertain")}
    if outcome == "malformed":
        # Garbage in a poll is retried, then given up on; garbage as a sync answer may have been billed.
        return {(JobState.FAILED, "transient"), (JobState.FAILED, "uncertain")}
    return {EXPECTED[outcome]}


async def run_through_the_runner(
    provider: Provider, tmp_path: Path, model: str = "nano_banana_2"
) -> tuple[Job, FileSink]:
    settings = load_settings(
        None, environment=False, database={"path": str(tmp_path / "contract.sqlite3")}, jobs={"deadline_seconds": 300}
    )
    db = Database(settings.database.path)
    await db.connect()
    clock = Clock(2_000_000.0)
    sink = FileSink(tmp_path / "out")
    async with httpx.AsyncClient(timeout=RUNNER_TIMEOUT, verify=tls_context()) as http:
        runner = JobRunner(
            JobStore(db), {provider.name: provider}, sink, settings.jobs, settings.imagine, http=http, clock=clock
        )
        request = GenerationRequest(model=model, prompt="contract", resolution="1K")
        job = await runner.create(NewJob(provider=provider.name, model=model, request=request))
        for _ in range(200):
            await runner.run_once()
            current = await runner.store.get(job.id)
            assert current is not None
            if current.terminal:
                await db.close()
                return current, sink
            clock.now += 5
    await db.close()
    raise AssertionError("job never reached a final state")


# The runner's own patience with a create that never answers: a second, not the provider tests' two.
RUNNER_TIMEOUT = httpx.Timeout(2.0, read=1.0)


@pytest.mark.parametrize("outcome", sorted(COMMON_OUTCOMES))
async def test_common_outcome_ends_in_the_right_state(
    outcome: str, adapter: Adapter, fake: Fake, client: httpx.AsyncClient, sleeps: SleepRecorder, tmp_path: Path
) -> None:
    provider = adapter.connect(fake, client, sleeps, timeout=RUNNER_TIMEOUT)
    fake.script(outcome)
    job, sink = await run_through_the_runner(provider, tmp_path)
    category = str(job.error_category) if job.error_category else None
    assert (job.state, category) in expected_for(adapter, outcome), job.error_message
    if job.state is JobState.DELIVERED:
        (path,) = sink.files[job.id]
        assert path.stat().st_size > 0
    else:
        message = job.error_message or ""
        assert len(message) > 20 and "http" not in message.lower() and fake.api_key not in message
    if outcome in ("auth", "out_of_credit", "bad_input", "create_hang"):
        assert len(fake.creates) == 1, "never retried"
    if outcome in ("rate_limited", "server_error"):
        assert len(fake.creates) == 2, "retried once, then accepted"


# ---- 3. the safety tolerance each provider receives, for every level -------------------------------


@pytest.mark.parametrize("level", range(1, 7))
async def test_safety_level_is_mapped_or_refused(level: int, adapter: Adapter, fake: Fake, provider: Provider) -> None:
    if level not in honoured_levels(type(provider).MODELS[NB2]):
        # /imagine (and failover) never send a level the provider cannot honour: covered end to end in
        # tests/e2e/test_moderation.py; here: such providers are exactly the ones without a knob.
        assert provider.name in ("seaart", "kie", "sinancode") and level > 4
        return
    handle = await provider.submit(req(safety_tolerance=level))
    assert (await run_to_end(provider, handle))[-1].status is UpdateStatus.SUCCEEDED  # the fake took the level
    (create,) = fake.creates
    body = create.json
    assert isinstance(body, dict)
    if provider.name == "segmind":
        assert body["safety_tolerance"] == level  # Segmind's own 1-6 scale, passed through
    elif provider.name == "gemini":
        assert body["safetySettings"] == safety_settings_for(level)
    else:
        # No knob: nothing is sent; the bot's own prompt gate is what enforces levels 1-4 here.
        assert body == documented_body(adapter.id, "1K")
