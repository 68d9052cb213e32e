"""Broken or hostile provider answers, read by the real adapters over sockets, and jobs meeting them run by the
real JobRunner on a real SQLite file: each is refused or read within plain bounds of time and memory, and its
job ends settled, its member told why without the provider's own words.

A tiny aiohttp server (``Scripted``) answers where the trick is in the answer's bytes or links; the fakes of
bot/testing/providers serve the rest.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import gzip
import io
import logging
import struct
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from multidict import CIMultiDict
from PIL import Image

from bot.cli_sink import FileSink
from bot.config import load_settings
from bot.errors import SubmitUncertainError, TransientError
from bot.job_polls import MAX_POLL_ERRORS
from bot.jobs import JobRunner
from bot.logs import RedactingFilter, Redactor
from bot.models import GenerationRequest, JobHandle, UpdateStatus
from bot.netguard import guarded_client
from bot.providers.base import Prefetched, Provider
from bot.providers.gemini import GeminiProvider
from bot.providers.kie import KieProvider
from bot.providers.seaart import SeaArtProvider
from bot.providers.segmind import MAX_FOUND_IMAGES, SegmindProvider
from bot.store import Database
from bot.store.jobs import Job, JobStore, NewJob
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock
from tests.providers.helpers import ADAPTERS, TIMEOUT, SleepRecorder, final

KEY = "sk-hostile-0123456789"
NB2 = "nano_banana_2"
SEAART_STATUS = f"/model/v1/queue/{NB2}/requests/abc/status"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Scripted:
    """An aiohttp server on 127.0.0.1: every request is answered by ``handler`` and recorded (method, path)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str]] = []
        self.origin = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Scripted:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.origin = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await self.handler(request)

    def asked(self, method: str, path: str) -> int:
        return self.requests.count((method, path))


def answering(routes: dict[tuple[str, str], Any]) -> Handler:
    """A handler answering (method, path) with its JSON, or a 404."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = routes.get((request.method, request.path))
        return web.Response(status=404) if body is None else web.json_response(body)

    return handle


def seaart(origin: str, client: httpx.AsyncClient) -> SeaArtProvider:
    return SeaArtProvider(api_key=KEY, base_url=f"{origin}/model", client=client, sleep=SleepRecorder())


def handle_of(provider: str, job_id: str = "abc", **extra: Any) -> JobHandle:
    return JobHandle(provider=provider, model=NB2, provider_job_id=job_id, extra=extra)


# ---- compressed answers --------------------------------------------------------------------------------


@functools.cache
def status_bomb() -> bytes:
    """A SeaArt status answer padded to 64 MB, gzipped to about 64 kB."""
    return gzip.compress(b'{"status": "IN_PROGRESS", "pad": "' + b"a" * (64 << 20) + b'"}', 9)


@contextlib.contextmanager
def python_memory() -> Iterator[list[int]]:
    """The peak of Python's allocations inside, in bytes (the one item of the list, once the block ends)."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


async def test_a_status_answer_compressed_behind_a_first_header_saying_identity_is_refused_unread() -> None:
    """Two Content-Encoding headers, identity then gzip: only the first was read and httpx decoded both, so
    a 300 kB status answer was inflated to 963 MB. Now refused before its body is read, as a failed poll."""

    async def bomb(request: web.Request) -> web.StreamResponse:
        codings = [("Content-Type", "application/json"), ("Content-Encoding", "identity"), ("Content-Encoding", "gzip")]
        return web.Response(body=status_bomb(), headers=CIMultiDict(codings))

    status_bomb()  # made before memory is counted
    async with Scripted(bomb) as server, guarded_client(["127.0.0.1"]) as http:
        with python_memory() as peak, pytest.raises(TransientError) as failed:
            await seaart(server.origin, http).poll(handle_of("seaart"))
    assert "compressed" in failed.value.detail
    assert peak[0] < 16 << 20, f"{peak[0]} bytes at the peak"
    assert server.asked("GET", SEAART_STATUS) == 2  # a poll's two attempts, both refused unread


@pytest.mark.parametrize("adapter_id", list(ADAPTERS))
async def test_every_provider_call_asks_for_the_answer_as_it_is_whatever_client_it_is_given(adapter_id: str) -> None:
    """The bot's client asks for no compression (bot/netguard.py); an adapter given another client (httpx's
    default asks for gzip) now asks itself, so the transport refuses a compressed answer instead of httpx
    inflating it without a bound."""
    adapter = ADAPTERS[adapter_id]
    async with adapter.make_fake() as fake, httpx.AsyncClient(timeout=TIMEOUT) as plain:
        update = await final(adapter.connect(fake, plain, SleepRecorder()))
    assert update.status is UpdateStatus.SUCCEEDED
    calls = [r for r in fake.requests if not r.path.startswith(("/files/", "/hostile/"))]
    assert calls and {r.headers.get("Accept-Encoding") for r in calls} == {"identity"}


# ---- answers of any length ----------------------------------------------------------------------------

HUGE_STATUS = "x-" * 100_000


async def test_a_status_of_any_length_is_described_briefly_in_the_error() -> None:
    """An unknown status goes into the poll error's detail, which is logged at every poll: it was the whole
    200 kB status; now a short excerpt saying how long it was."""
    routes = {
        ("GET", SEAART_STATUS): {"status": HUGE_STATUS},
        ("GET", "/v2/requests/r1/status"): {"status": HUGE_STATUS},
    }
    async with Scripted(answering(routes)) as server, httpx.AsyncClient(timeout=TIMEOUT) as http:
        segmind = SegmindProvider(api_key=KEY, base_url=server.origin, client=http, sleep=SleepRecorder())
        asked = [(seaart(server.origin, http), handle_of("seaart")), (segmind, handle_of("segmind", "r1", mode="v2"))]
        for provider, handle in asked:
            with pytest.raises(TransientError) as failed:
                await provider.poll(handle)
            assert "200000 characters" in failed.value.detail and len(failed.value.detail) < 1000


@contextlib.contextmanager
def redacted_log(name: str) -> Iterator[io.StringIO]:
    """What logger ``name`` writes through the bot's redacting filter (bot/logs.py), as the bot's handler would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(Redactor([KEY])))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


async def test_an_unknown_kie_state_of_any_length_is_logged_briefly_and_at_once() -> None:
    """Logged as a warning at every poll: 40 kB of "a-a-a-" took the log filter 23.5 s (a quadratic pattern)
    and was written whole. Now the poll and its line take milliseconds, and the line is short."""
    routes = {("GET", "/api/v1/jobs/recordInfo"): {"code": 200, "msg": "ok", "data": {"state": "a-" * 20_000}}}
    async with Scripted(answering(routes)) as server, httpx.AsyncClient(timeout=TIMEOUT) as http:
        kie = KieProvider(api_key=KEY, base_url=server.origin, client=http, sleep=SleepRecorder())
        with redacted_log("bot.providers.kie") as log:
            started = time.monotonic()
            update = await kie.poll(handle_of("kie", "t1"))
            took = time.monotonic() - started
    assert update.status is UpdateStatus.RUNNING
    (line,) = log.getvalue().splitlines()
    assert "unknown state 'a-a-" in line and "40000 characters" in line and len(line) < 400
    assert took < 2.0, f"{took:.1f} s"


async def test_a_result_listing_twenty_thousand_links_is_read_without_holding_the_loop() -> None:
    """Each image found was compared with every one found before: 20,000 links held the event loop for 11 s.
    Now a dict finds the duplicates, and the scan stops a few images past what a delivery posts."""
    links = [f"https://cdn.example.test/{n}.png" for n in range(20_000)]
    routes = {
        ("GET", "/v2/requests/r1/status"): {"status": "COMPLETED"},
        ("GET", "/v2/requests/r1"): {"status": "COMPLETED", "output": links, "images": links[:3]},
    }
    stalls: list[float] = []

    async def watch() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            stalls.append(now - last - 0.05)
            last = now

    async with Scripted(answering(routes)) as server, httpx.AsyncClient(timeout=TIMEOUT) as http:
        segmind = SegmindProvider(api_key=KEY, base_url=server.origin, client=http, sleep=SleepRecorder())
        watcher = asyncio.create_task(watch())
        try:
            update = await segmind.poll(handle_of("segmind", "r1", mode="v2"))
            await asyncio.sleep(0.1)  # the watcher wakes: its last gap covers the poll's last stretch
        finally:
            watcher.cancel()
    assert update.status is UpdateStatus.SUCCEEDED
    assert [image.url for image in update.images] == links[:MAX_FOUND_IMAGES]
    assert max(stalls) < 1.0, f"the event loop stood still for {max(stalls):.1f} s"


BLOCK_REASON = "X) — key expired, re-verify at [discord.gift/nitro](https://evil.example/login) (x" + "-a" * 100_000


async def test_a_block_reason_that_is_no_enum_name_is_not_shown_to_the_member() -> None:
    """Gemini's promptFeedback.blockReason went into the member's message as it came: a masked link and
    200 kB. Only a name like Google's (SAFETY, NEW_REASON) is named; anything else reads as a reason the bot
    could not read, and the log gets an excerpt."""

    async def blocked(request: web.Request) -> web.StreamResponse:
        return web.json_response({"promptFeedback": {"blockReason": BLOCK_REASON}})

    async with Scripted(blocked) as server, httpx.AsyncClient(timeout=TIMEOUT) as http:
        gemini = GeminiProvider(api_key=KEY, base_url=server.origin, client=http, sleep=SleepRecorder())
        update = (await gemini.submit(GenerationRequest(model=NB2, prompt="a banana"))).ready
    assert update is not None and update.status is UpdateStatus.FAILED
    message, detail = update.error_message or "", update.error_detail or ""
    assert "could not read" in message and len(message) < 200
    assert "http" not in message and "](" not in message and "evil" not in message
    assert len(detail) < 500


# ---- numbers that int() and float() refuse ------------------------------------------------------------------


@pytest.mark.parametrize("code", ["²", "9" * 5000], ids=["superscript", "5000 digits"])
async def test_a_kie_code_that_is_no_number_is_no_envelope_not_a_crash(code: str) -> None:
    """str.isdigit takes "²" and 5,000 digits, int() refuses both: the ValueError escaped the adapter, and a
    create answered so told its member "the bot restarted while sending this request"."""
    routes = {
        ("POST", "/api/v1/jobs/createTask"): {"code": code, "msg": "ok", "data": {"taskId": "t1"}},
        ("GET", "/api/v1/jobs/recordInfo"): {"code": code, "data": {"state": "success", "resultJson": "{}"}},
    }
    async with Scripted(answering(routes)) as server, httpx.AsyncClient(timeout=TIMEOUT) as http:
        kie = KieProvider(api_key=KEY, base_url=server.origin, client=http, sleep=SleepRecorder())
        with pytest.raises(SubmitUncertainError):  # made, maybe, but without an id to follow
            await kie.submit(GenerationRequest(model=NB2, prompt="a banana"))
        with pytest.raises(TransientError):
            await kie.poll(handle_of("kie", "t1"))
    assert server.asked("POST", "/api/v1/jobs/createTask") == 1


async def test_segmind_numbers_that_do_not_fit_are_left_out_of_the_usage() -> None:
    """A seed of "²", a retry count of 5,000 digits, a time as an integer of 400 digits: ValueError and
    OverflowError escaped the poll. The image is delivered; the usage keeps what it can read."""
    metrics = {"seed": "²", "retry_count": "1" * 5000, "inference_time": 10**400, "cost": 10**400, "queue_time": 2}
    usage = {"metrics": metrics}
    routes = {
        ("GET", "/v2/requests/r1/status"): {"status": "COMPLETED"},
        ("GET", "/v2/requests/r1"): {"status": "COMPLETED", "output": "https://cdn.example.test/a.png", **usage},
    }
    async with Scripted(answering(routes)) as server, httpx.AsyncClient(timeout=TIMEOUT) as http:
        segmind = SegmindProvider(api_key=KEY, base_url=server.origin, client=http, sleep=SleepRecorder())
        update = await segmind.poll(handle_of("segmind", "r1", mode="v2"))
    assert update.status is UpdateStatus.SUCCEEDED and update.usage == {"queue_time": 2.0}


# ---- jobs run by the real runner ------------------------------------------------------------------------


async def run_job(
    tmp_path: Path, provider: Provider, http: httpx.AsyncClient, *, deadline: float = 60, passes: int = 100
) -> tuple[Job, JobRunner]:
    """One job at ``provider``, its steps run until it ends (or ``passes`` run out), 10 s of fake time apart."""
    settings = load_settings(
        None,
        environment=False,
        database={"path": str(tmp_path / "jobs.sqlite3")},
        jobs={"deadline_seconds": deadline, "poll_interval_seconds": 2, "max_poll_interval_seconds": 10},
    )
    db = Database(settings.database.path)
    await db.connect()
    try:
        clock = Clock(1_000_000.0)
        providers = {provider.name: provider}
        runner = JobRunner(
            JobStore(db), providers, FileSink(tmp_path / "out"), settings.jobs, settings.imagine, http=http, clock=clock
        )
        request = GenerationRequest(model=NB2, prompt="a banana")
        job: Job | None = await runner.create(NewJob(provider=provider.name, model=NB2, request=request))
        for _ in range(passes):
            await runner.run_once()
            assert job is not None
            job = await runner.store.get(job.id)
            if job is not None and job.terminal:
                break
            clock.now += 10
    finally:
        await db.close()
    assert job is not None
    return job, runner


@pytest.mark.parametrize(
    ("status_url", "cancel_url"),
    [
        ("https://[x/", "https://[x/"),  # urlsplit: ValueError
        ("{base}/v1/queue/nano_banana_2/requests/r1/status", "{base}/x\x7f"),  # httpx: InvalidURL (DEL)
        ("{base}/" + "s" * 70_000, "{base}/" + "c" * 70_000),  # httpx: InvalidURL (too long)
    ],
    ids=["unparseable", "control-character", "70,000 characters"],
)
async def test_links_in_a_create_answer_that_cannot_be_followed_are_not_followed(
    tmp_path: Path, status_url: str, cancel_url: str
) -> None:
    """A malformed status_url failed every poll with a traceback until the deadline; a malformed cancel_url
    made the cancel at the deadline raise, and the job was never ended. Such links are not ours: the
    documented paths are asked instead, and the job ends at its deadline like any other."""
    job_path = f"/model/v1/queue/{NB2}/requests/r1"

    async def provider_api(request: web.Request) -> web.StreamResponse:
        base = f"http://{request.host}/model"
        if request.method == "POST":
            links = {"status_url": status_url.format(base=base), "cancel_url": cancel_url.format(base=base)}
            return web.json_response({"request_id": "r1", **links})
        if request.method == "PUT":
            return web.json_response({})
        return web.json_response({"status": "IN_PROGRESS"})

    async with Scripted(provider_api) as server, httpx.AsyncClient(timeout=TIMEOUT) as http:
        job, runner = await run_job(tmp_path, seaart(server.origin, http), http)
    assert (job.state, job.error_category) == ("expired", "expired")
    assert runner.errors == 0
    assert server.asked("GET", f"{job_path}/status") >= 3
    assert server.asked("PUT", f"{job_path}/cancel") == 1
    assert len(server.requests) == 1 + server.asked("GET", f"{job_path}/status") + 1


def dds_of_an_unknown_kind() -> bytes:
    """A DDS whose pixel format Pillow does not know: Image.open raises NotImplementedError."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "DDS")
    data = bytearray(out.getvalue())
    data[80:84] = struct.pack("<I", 0)
    return bytes(data)


async def test_an_image_pillow_cannot_size_ends_its_job_as_no_image_not_as_a_restart(tmp_path: Path) -> None:
    """Gemini's answer carried a DDS: sizing it raised NotImplementedError, which escaped the create, and
    the member read "the bot restarted while sending this request" (and Google had made the image)."""
    inline = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(dds_of_an_unknown_kind()).decode()}}

    async def gemini_api(request: web.Request) -> web.StreamResponse:
        return web.json_response({"candidates": [{"content": {"parts": [inline]}, "finishReason": "STOP"}]})

    async with Scripted(gemini_api) as server, httpx.AsyncClient(timeout=TIMEOUT) as http:
        gemini = GeminiProvider(api_key=KEY, base_url=server.origin, client=http, sleep=SleepRecorder())
        job, runner = await run_job(tmp_path, gemini, http)
    assert (job.state, job.error_category) == ("failed", "delivery")
    assert "not a valid image" in (job.error_message or "") and "restarted" not in (job.error_message or "")
    assert runner.errors == 0 and len(server.requests) == 1


class SeaArtMisreadingItsIds(SeaArtProvider):
    """An adapter with a bug in reading a create's answer (as Kie's int() of "²" was): it raises ValueError
    after SeaArt accepted the create."""

    async def submit(
        self, request: GenerationRequest, *, job_id: str | None = None, prefetched: Prefetched | None = None
    ) -> JobHandle:
        handle = await super().submit(request, job_id=job_id)
        int(handle.provider_job_id)  # not a number: ValueError
        return handle


class SeaArtMisreadingItsCancel(SeaArtProvider):
    """An adapter with a bug in reading a cancel's answer: it raises ValueError once SeaArt has answered."""

    async def cancel(self, handle: JobHandle) -> bool:
        return bool(int(str(await super().cancel(handle))))  # "True" is not a number: ValueError


class SeaArtMisreadingItsStatus(SeaArtProvider):
    """An adapter with a bug in reading status answers: every poll raises ValueError."""

    def _status_of(self, data: dict[str, Any], response: httpx.Response) -> UpdateStatus:
        int(str(data.get("status")))  # not a number: ValueError
        return super()._status_of(data, response)


async def test_a_create_whose_answer_an_adapter_misreads_ends_uncertain_and_says_so(tmp_path: Path) -> None:
    """Anything but a ProviderError from a create escaped the step, and the next step told the member "the
    bot restarted while sending this request". Now it ends at once: uncertain (it may have been made),
    uncharged, sent once, its member told the answer could not be read."""
    async with FakeSeaArt(api_key=KEY) as fake, httpx.AsyncClient(timeout=TIMEOUT) as http:
        provider = SeaArtMisreadingItsIds(api_key=KEY, base_url=fake.base_url, client=http, sleep=SleepRecorder())
        job, runner = await run_job(tmp_path, provider, http)
    assert (job.state, job.error_category) == ("failed", "uncertain")
    message = job.error_message or ""
    assert "could not be read" in message and "not charged" in message and "restarted" not in message
    assert runner.errors == 0 and len(fake.creates) == 1


async def test_polls_an_adapter_misreads_count_toward_the_limit_and_end_the_job(tmp_path: Path) -> None:
    """Anything but a ProviderError from a poll escaped the step: a traceback at every poll, for as long as
    the job's deadline allowed. Now each counts as a failed poll, and MAX_POLL_ERRORS of them end the job."""
    async with FakeSeaArt(api_key=KEY) as fake, httpx.AsyncClient(timeout=TIMEOUT) as http:
        fake.script("never_finish")
        provider = SeaArtMisreadingItsStatus(api_key=KEY, base_url=fake.base_url, client=http, sleep=SleepRecorder())
        job, runner = await run_job(tmp_path, provider, http, deadline=3600)
    assert (job.state, job.error_category) == ("failed", "transient")
    assert "could not read" in (job.error_message or "")
    assert runner.errors == 0
    polls = [r for r in fake.requests if r.method == "GET" and r.path.endswith("/status")]
    assert len(polls) == MAX_POLL_ERRORS
    assert [r.method for r in fake.requests].count("PUT") == 1  # asked to stop: nobody pays for an unseen image


async def test_a_cancel_an_adapter_misreads_still_lets_the_job_end(tmp_path: Path) -> None:
    """At its deadline a job asks its provider to stop it, then ends. Anything but a ProviderError from the
    cancel escaped, so the job was never ended: stepped again, and failing again, at every pass."""
    async with FakeSeaArt(api_key=KEY) as fake, httpx.AsyncClient(timeout=TIMEOUT) as http:
        fake.script("never_finish")
        provider = SeaArtMisreadingItsCancel(api_key=KEY, base_url=fake.base_url, client=http, sleep=SleepRecorder())
        job, runner = await run_job(tmp_path, provider, http)
    assert (job.state, job.error_category) == ("expired", "expired")
    assert runner.errors == 0
    assert [r.method for r in fake.requests].count("PUT") == 1
