"""The fakes' clocks and Kie's callbacks, over real sockets with httpx.

Time mode (bot/testing/providers/_base.py) finishes a job by the clock rather than by the number of
polls; FakeKie POSTs signed callbacks (bot/testing/providers/kie.py); FakeDiscord notes when a message
first carried files (bot/testing/discord/records.py). bench/poll_schedule.py builds its figures on these.
Provider times are a few tenths of a second; answers are checked against the times the fake recorded,
never against how long something took.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeKie, FakeSeaArt, FakeSegmind
from bot.testing.providers.kie import FakeKieJob

HMAC_KEY = "test-webhook-hmac-key-3e1f"
NB2 = {"prompt": "a banana", "resolution": "1K"}


def expected_signature(task_id: str, timestamp: str, key: str = HMAC_KEY) -> str:
    """Kie's documented rule, computed here independently of the fake."""
    mac = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class Arrival:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A callback endpoint on 127.0.0.1 that keeps what it was sent and answers 200."""

    url: str = ""
    arrivals: list[Arrival] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.append(Arrival(dict(request.headers), await request.read()))
        self.changed.set()
        return web.json_response({"ok": True})

    async def wait_for(self, count: int) -> None:
        async def reached() -> None:
            while len(self.arrivals) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), 10)

    def for_task(self, task_id: str) -> list[Arrival]:
        return [a for a in self.arrivals if json.loads(a.body)["data"]["taskId"] == task_id]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/callbacks/kie", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}/callbacks/kie"
    yield found
    await runner.cleanup()


async def kie_create(http: httpx.AsyncClient, fake: FakeKie, callback: str | None = None) -> FakeKieJob:
    body: dict[str, Any] = {"model": "nano-banana-2", "input": dict(NB2)}
    if callback is not None:
        body["callBackUrl"] = callback
    answer = await http.post(
        f"{fake.base_url}/api/v1/jobs/createTask", json=body, headers={"Authorization": f"Bearer {fake.api_key}"}
    )
    task_id = answer.json()["data"]["taskId"]
    return fake.jobs[task_id]


async def kie_record(http: httpx.AsyncClient, fake: FakeKie, task_id: str) -> dict[str, Any]:
    answer = await http.get(
        f"{fake.base_url}/api/v1/jobs/recordInfo",
        params={"taskId": task_id},
        headers={"Authorization": f"Bearer {fake.api_key}"},
    )
    data: dict[str, Any] = answer.json()["data"]
    return data


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()) + 0.02)


# ---- time mode ------------------------------------------------------------------------------------


async def test_seaart_time_mode_moves_by_the_clock_and_records_its_times() -> None:
    async with FakeSeaArt(provider_time=lambda: 0.3, queue_time=lambda: 0.2) as fake, httpx.AsyncClient() as http:
        auth = {"Authorization": f"Bearer {fake.api_key}"}
        created = (await http.post(f"{fake.base_url}/v1/queue/nano_banana_2", json=NB2, headers=auth)).json()
        job = fake.jobs[created["request_id"]]
        assert job.running_at is not None and job.ready_at is not None
        assert job.running_at == pytest.approx(job.created_at + 0.2)
        assert job.ready_at == pytest.approx(job.created_at + 0.5)

        answers: list[tuple[float, float, str]] = []  # (sent, answered, status)
        while not answers or answers[-1][2] != "COMPLETED":
            sent = time.time()
            status = (await http.get(created["status_url"], headers=auth)).json()["status"]
            answers.append((sent, time.time(), status))
            await asyncio.sleep(0.05)

        # Each answer matches the clock at the time it was given, whatever the number of polls.
        for sent, answered, status in answers:
            if answered < job.running_at:
                assert status == "IN_QUEUE"
            elif sent >= job.running_at and answered < job.ready_at:
                assert status == "IN_PROGRESS"
            elif sent >= job.ready_at:
                assert status == "COMPLETED"
        order = ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
        seen = [order.index(s) for _, _, s in answers]
        assert seen == sorted(seen)
        result = (await http.get(created["response_url"], headers=auth)).json()
        assert result["outputs"][0]["type"] == "image"


async def test_a_single_poll_after_the_time_is_up_finds_the_job_done() -> None:
    async with FakeSeaArt(provider_time=lambda: 0.2) as fake, httpx.AsyncClient() as http:
        auth = {"Authorization": f"Bearer {fake.api_key}"}
        created = (await http.post(f"{fake.base_url}/v1/queue/nano_banana_2", json=NB2, headers=auth)).json()
        job = fake.jobs[created["request_id"]]
        assert job.ready_at is not None
        await sleep_until(job.ready_at)

        status = (await http.get(created["status_url"], headers=auth)).json()["status"]

        assert status == "COMPLETED" and job.polls == 1


async def test_poll_mode_stays_the_default_and_notes_when_a_poll_first_said_done() -> None:
    async with FakeSeaArt(queued_polls=1, running_polls=1) as fake, httpx.AsyncClient() as http:
        auth = {"Authorization": f"Bearer {fake.api_key}"}
        created = (await http.post(f"{fake.base_url}/v1/queue/nano_banana_2", json=NB2, headers=auth)).json()
        job = fake.jobs[created["request_id"]]
        statuses = []
        for _ in range(3):
            before = time.time()
            statuses.append((await http.get(created["status_url"], headers=auth)).json()["status"])
            if statuses[-1] != "COMPLETED":
                assert job.ready_at is None
        assert statuses == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
        assert job.running_at is None and job.ready_at is not None
        assert job.created_at <= before <= job.ready_at


async def test_kie_time_mode_states_and_cost_time() -> None:
    async with FakeKie(provider_time=lambda: 0.3, queue_time=lambda: 0.2) as fake, httpx.AsyncClient() as http:
        job = await kie_create(http, fake)
        first = await kie_record(http, fake, job.task_id)
        assert job.running_at is not None and job.ready_at is not None
        if time.time() < job.running_at:  # skip on a machine stalled past the queue time
            assert first["state"] == "waiting" and first["costTime"] is None
        await sleep_until(job.running_at)
        if time.time() < job.ready_at - 0.05:  # skip the middle check on a stalled machine
            assert (await kie_record(http, fake, job.task_id))["state"] == "generating"
        await sleep_until(job.ready_at)

        done = await kie_record(http, fake, job.task_id)

        assert done["state"] == "success" and json.loads(done["resultJson"])["resultUrls"]
        assert done["costTime"] == round((job.ready_at - job.running_at) * 1000) == 300
        assert done["completeTime"] == int(job.ready_at * 1000)
        assert done["createTime"] == int(job.created_at * 1000)
        assert "progress" not in done


async def test_a_held_job_in_time_mode_finishes_no_earlier_than_its_release() -> None:
    async with FakeKie(provider_time=lambda: 0.2) as fake, httpx.AsyncClient() as http:
        fake.hold(True)
        job = await kie_create(http, fake)
        assert job.ready_at is not None
        await sleep_until(job.ready_at)
        assert (await kie_record(http, fake, job.task_id))["state"] == "generating"

        released = time.time()
        fake.hold(False)

        assert job.ready_at >= released
        assert (await kie_record(http, fake, job.task_id))["state"] == "success"


async def test_segmind_time_mode_processes_until_ready_then_completes_with_the_result() -> None:
    async with FakeSegmind(provider_time=lambda: 0.3) as fake, httpx.AsyncClient() as http:
        auth = {"x-api-key": fake.api_key}
        created = (
            await http.post(f"{fake.base_url}/v2/nano-banana-2", json={"prompt": "a banana"}, headers=auth)
        ).json()
        job = fake.jobs[created["request_id"]]
        assert job.running_at is not None and job.ready_at is not None
        if time.time() < job.ready_at - 0.05:  # skip on a machine stalled past the provider time
            status = await http.get(created["status_url"], headers=auth)
            assert status.json()["status"] == "PROCESSING"
            assert (await http.get(created["response_url"], headers=auth)).json()["status"] == "PROCESSING"
        await sleep_until(job.ready_at)

        assert (await http.get(created["status_url"], headers=auth)).json()["status"] == "COMPLETED"
        result = (await http.get(created["response_url"], headers=auth)).json()
        assert result["status"] == "COMPLETED" and result["images"] == [
            f"{fake.image_base_url}/{job.image_names[0]}.png"
        ]


async def test_every_request_carries_its_arrival_time() -> None:
    async with FakeSeaArt() as fake, httpx.AsyncClient() as http:
        auth = {"Authorization": f"Bearer {fake.api_key}"}
        windows = []
        for _ in range(3):
            before = time.time()
            await http.post(f"{fake.base_url}/v1/queue/nano_banana_2", json=NB2, headers=auth)
            windows.append((before, time.time()))
        assert len(fake.requests) == 3
        for request, (before, after) in zip(fake.requests, windows, strict=True):
            assert before <= request.at <= after


# ---- Kie callbacks -------------------------------------------------------------------------------


async def test_callback_is_signed_as_kie_documents(receiver: Receiver) -> None:
    async with (
        FakeKie(provider_time=lambda: 0.2, webhook_hmac_key=HMAC_KEY) as fake,
        httpx.AsyncClient() as http,
    ):
        job = await kie_create(http, fake, receiver.url)
        await receiver.wait_for(1)

    (arrival,) = receiver.arrivals
    stamp = arrival.headers["X-Webhook-Timestamp"]
    assert stamp.isdigit()
    assert hmac.compare_digest(arrival.headers["X-Webhook-Signature"], expected_signature(job.task_id, stamp))
    body = json.loads(arrival.body)
    assert body["code"] == 200 and body["msg"] == "success"
    data = body["data"]
    assert data["taskId"] == job.task_id and data["state"] == "success"
    assert json.loads(data["resultJson"])["resultUrls"][0].endswith(".png")
    assert data["costTime"] == 200
    (sent,) = fake.callbacks
    assert sent.status == 200 and sent.error is None and sent.url == receiver.url
    assert job.ready_at is not None and sent.at >= job.ready_at


async def test_a_failed_task_calls_back_too(receiver: Receiver) -> None:
    async with (
        FakeKie(provider_time=lambda: 0.2, webhook_hmac_key=HMAC_KEY) as fake,
        httpx.AsyncClient() as http,
    ):
        fake.script("content_blocked")
        job = await kie_create(http, fake, receiver.url)
        await receiver.wait_for(1)

    data = json.loads(receiver.arrivals[0].body)["data"]
    assert data["taskId"] == job.task_id
    assert data["state"] == "fail" and data["failCode"] == "400" and "content policy" in data["failMsg"]


async def test_lost_bad_signature_twice_and_late(receiver: Receiver) -> None:
    async with (
        FakeKie(provider_time=lambda: 0.2, webhook_hmac_key=HMAC_KEY) as fake,
        httpx.AsyncClient() as http,
    ):
        fake.script_callbacks("lost", "bad_signature", "twice", "late:0.3")
        lost = await kie_create(http, fake, receiver.url)
        forged = await kie_create(http, fake, receiver.url)
        replayed = await kie_create(http, fake, receiver.url)
        late = await kie_create(http, fake, receiver.url)
        normal = await kie_create(http, fake, receiver.url)
        # bad_signature 1 + twice 2 + late 1 + normal 1; the late one comes last.
        await receiver.wait_for(5)
        # The lost task finished first: had it been sent, it would have arrived by now.
        assert lost.ready_at is not None and lost.ready_at <= normal.created_at + 0.2

        assert receiver.for_task(lost.task_id) == []
        assert [c.task_id for c in fake.callbacks].count(lost.task_id) == 0

        (bad,) = receiver.for_task(forged.task_id)
        stamp = bad.headers["X-Webhook-Timestamp"]
        assert bad.headers["X-Webhook-Signature"] != expected_signature(forged.task_id, stamp)

        first, second = receiver.for_task(replayed.task_id)
        assert first.body == second.body
        for name in ("X-Webhook-Timestamp", "X-Webhook-Signature"):
            assert first.headers[name] == second.headers[name]
        assert first.headers["X-Webhook-Signature"] == expected_signature(
            replayed.task_id, first.headers["X-Webhook-Timestamp"]
        )
        assert [c.status for c in fake.callbacks if c.task_id == replayed.task_id] == [200, 200]

        (late_sent,) = [c for c in fake.callbacks if c.task_id == late.task_id]
        assert late.ready_at is not None and late_sent.at >= late.ready_at + 0.3
        assert receiver.arrivals[-1] == receiver.for_task(late.task_id)[0]


async def test_without_a_key_no_signature_headers(receiver: Receiver) -> None:
    async with FakeKie(provider_time=lambda: 0.2) as fake, httpx.AsyncClient() as http:
        await kie_create(http, fake, receiver.url)
        await receiver.wait_for(1)
    headers = {k.lower() for k in receiver.arrivals[0].headers}
    assert "x-webhook-signature" not in headers and "x-webhook-timestamp" not in headers


async def test_poll_mode_calls_back_when_a_poll_first_sees_the_task_done(receiver: Receiver) -> None:
    async with FakeKie(webhook_hmac_key=HMAC_KEY) as fake, httpx.AsyncClient() as http:
        job = await kie_create(http, fake, receiver.url)
        states = [(await kie_record(http, fake, job.task_id))["state"] for _ in range(3)]
        await receiver.wait_for(1)
        assert (await kie_record(http, fake, job.task_id))["state"] == "success"
    assert states == ["waiting", "generating", "success"]
    assert len(receiver.arrivals) == 1 and len(fake.callbacks) == 1


async def test_a_receiver_that_is_down_is_recorded_not_raised() -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with (
        FakeKie(provider_time=lambda: 0.2, webhook_hmac_key=HMAC_KEY) as fake,
        httpx.AsyncClient() as http,
    ):
        job = await kie_create(http, fake, f"http://127.0.0.1:{port}/callbacks/kie")

        def attempted() -> bool:
            return bool(fake.callbacks) and (fake.callbacks[0].status, fake.callbacks[0].error) != (None, None)

        async def until_attempted() -> None:
            while not attempted():  # noqa: ASYNC110 - sampling the fake's record
                await asyncio.sleep(0.02)

        await asyncio.wait_for(until_attempted(), 10)
        (sent,) = fake.callbacks
        assert sent.status is None and sent.error
        # The fake itself carries on.
        assert (await kie_record(http, fake, job.task_id))["state"] == "success"


def test_unknown_callback_modes_are_refused() -> None:
    fake = FakeKie()
    for mode in ("late:soon", "late:-1", "sometimes"):
        with pytest.raises(ValueError, match="callback mode"):
            fake.script_callbacks(mode)


# ---- FakeDiscord ----------------------------------------------------------------------------------


async def test_message_notes_when_it_first_got_files() -> None:
    async with FakeDiscord(bot_token="t") as fake, httpx.AsyncClient() as http:
        auth = {"Authorization": "Bot t"}
        url = f"{fake.api_base_url}/channels/{fake.channel_id}/messages"
        plain = (await http.post(url, json={"content": "thinking"}, headers=auth)).json()
        assert fake.messages[int(plain["id"])].files_at is None

        before = time.time()
        files = {
            "payload_json": (None, json.dumps({"content": "done"}), "application/json"),
            "files[0]": ("out.png", b"\x89PNG not really", "image/png"),
        }
        await http.patch(f"{url}/{plain['id']}", files=files, headers=auth)
        message = fake.messages[int(plain["id"])]
        assert message.files_at is not None and message.files_at >= before
        first = message.files_at

        await http.patch(f"{url}/{plain['id']}", json={"content": "edited again"}, headers=auth)
        assert message.files_at == first
