"""Callback endpoint fixes from a review, through the real bot against the fake Kie and the fake Discord.

A lost task's callback that comes while the bot stops is kept for the next start, not refused for good; a stop
is not held by senders dripping bodies; requests the handler or aiohttp's parser cannot read are counted
refusals, never ERROR lines with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.callbacks import PATH
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeKie
from bot.testing.serving import free_port
from tests.conftest import start_bot
from tests.e2e.test_callbacks import settings_for
from tests.e2e.test_lost_tasks import jobs, kie_fake, ledger, logged, waiting


@pytest.fixture
async def kie() -> AsyncIterator[FakeKie]:
    async with kie_fake(1.0) as fake:
        yield fake


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_lost_task_s_callback_during_the_stop_s_grace_is_taken_up_by_the_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM while a create hangs; Kie's callback for that very task comes during the grace. It was answered
    404 "not a job this bot is waiting for" (the runner traces no task while it stops), so the next start
    found the job waiting for a callback already spent: "uncertain" when the wait ended, though Kie had made
    (and billed) the image. Now 503 (try again later), and the task is kept for the next start to trace."""
    caplog.set_level(logging.INFO)
    async with kie_fake(0.5) as kie:  # the task is done 0.5 s after its create arrived
        kie.script("create_hang")  # ...whose answer never comes
        settings = settings_for(
            tmp_path, discord_fake, kie, free_port(), quotas=True, request_timeout=4.0, lost_task_wait_seconds=30.0
        )
        db = settings.database.path
        kept = db.with_name(db.name + ".lost-task-callbacks")  # bot/lost_tasks.py kept_path_for
        running = await start_bot(settings, discord_fake)
        try:
            await discord_fake.slash_command("imagine", {"prompt": "a banana, then a SIGTERM"})
            await discord_fake.wait_for(lambda: len(kie.jobs) == 1, timeout=10)
            # What SIGTERM runs (bananacord's service: bot.shutdown(grace)); the create is still in flight.
            stopping = asyncio.create_task(running.bot.shutdown(10.0))
            await discord_fake.wait_for(lambda: bool(kie.callbacks) and kie.callbacks[0].status is not None, 10)
            await stopping
        finally:
            await running.close()
        assert [c.status for c in kie.callbacks] == [503]
        assert waiting(settings) and kept.exists()
        running = await start_bot(settings, discord_fake)  # the next start
        try:
            await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"], timeout=30)
        finally:
            await running.close()
    (task_id,) = kie.jobs
    (job,) = jobs(settings)
    assert job["provider_job_id"] == task_id and len(kie.creates) == 1
    assert ledger(settings) == ["reserve", "commit"], "charged once, for the image received"
    assert logged(caplog, f"callback names its task {task_id}") == 1
    assert not kept.exists(), "done with once traced"
    assert errors(caplog) == []


async def test_a_stop_is_not_held_by_senders_dripping_bodies(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    kie: FakeKie,
) -> None:
    """Unsigned senders, each dripping a body: the stop waited for each until its body timed out (10 s) and
    answered it 408. Now they are cut a second into the stop, unanswered."""
    port = free_port()
    running = await start_bot(settings_for(tmp_path, discord_fake, kie, port), discord_fake)
    dripping = []
    try:
        for _ in range(32):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"POST {PATH} HTTP/1.1\r\nHost: bot\r\nX-Webhook-Timestamp: {int(time.time())}\r\n"
                f"X-Webhook-Signature: x\r\nContent-Length: 1000\r\n\r\n{{".encode()
            )
            dripping.append((reader, writer))
        await asyncio.sleep(0.3)
        await running.bot.shutdown(0.0)
    finally:
        await running.close()
    answers = [await asyncio.wait_for(reader.read(), 15) for reader, _ in dripping]
    for _, writer in dripping:
        writer.close()
    assert answers == [b""] * 32, "no sender was waited on until its body timed out"


async def test_requests_the_endpoint_cannot_read_write_no_error_to_the_bot_s_log(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    kie: FakeKie,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each was an ERROR with a traceback, per request: a timestamp of 400 digits, a signature in non-ASCII, a
    task id no bytes encode (the handler's 500s), a header line without a colon, a header over 8 KB (aiohttp's
    parser). Now refusals, summed up with the rest."""
    caplog.set_level(logging.INFO)
    port = free_port()
    running = await start_bot(settings_for(tmp_path, discord_fake, kie, port), discord_fake)
    now = int(time.time())
    task = b'{"data":{"taskId":"t1"}}'

    def post(headers: bytes, body: bytes = task) -> bytes:
        return (
            f"POST {PATH} HTTP/1.1\r\nHost: bot\r\n".encode()
            + headers
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    requests = [
        post(b"X-Webhook-Timestamp: 1" + b"0" * 400 + b"\r\nX-Webhook-Signature: eA==\r\n"),
        post(f"X-Webhook-Timestamp: {now}\r\nX-Webhook-Signature: ".encode() + "été".encode() + b"\r\n"),
        post(f"X-Webhook-Timestamp: {now}\r\nX-Webhook-Signature: eA==\r\n".encode(), b'{"data":{"taskId":"\\ud800"}}'),
        f"POST {PATH} HTTP/1.1\r\nHost: bot\r\nno colon here\r\n\r\n".encode(),
        f"POST {PATH} HTTP/1.1\r\nHost: bot\r\nX-A: {'a' * 20_000}\r\n\r\n".encode(),
    ]
    answers = []
    try:
        for request in requests * 4:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            answers.append(await asyncio.wait_for(reader.readline(), 10))
            writer.close()
    finally:
        await running.close()
    assert all(line.split()[1] in (b"400", b"401", b"431") for line in answers), answers
    assert errors(caplog) == []
    reports = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert sum(int(report.split()[1]) for report in reports) == 20
