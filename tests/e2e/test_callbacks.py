"""kie.ai callbacks through the real bot: the fake Kie calls the bot's endpoint when a task ends.

A good callback gets the image to the member with one status request; a forged, replayed, unknown or
lost one changes nothing but time (the slow fallback poll still delivers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import Bananacord, point_discord_at
from bot.callbacks import PATH, kie_signature
from bot.config import Settings, load_settings
from bot.errors import ConfigError
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeKie
from bot.testing.serving import free_port
from tests.conftest import BOT_TOKEN, RunningBot, start_bot

KEY = "test-kie-key-7d1e"
HMAC_KEY = "test-webhook-hmac-key-3c9a"


@pytest.fixture
async def kie() -> AsyncIterator[FakeKie]:
    async with FakeKie(flavour="kie", api_key=KEY, provider_time=lambda: 1.0, webhook_hmac_key=HMAC_KEY) as fake:
        yield fake


def settings_for(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    kie: FakeKie,
    port: int,
    *,
    busy_timeout: float = 5.0,
    retry_after: float = 15.0,
    quotas: bool = False,
    request_timeout: float = 30.0,
    **callbacks: Any,
) -> Settings:
    """``busy_timeout``: [database] busy_timeout_seconds; ``retry_after``: [jobs] max_poll_interval_seconds,
    which is also how long a step that failed waits to be tried again; ``request_timeout``: Kie's."""
    return load_settings(
        None,
        environment=False,
        discord_token=BOT_TOKEN,
        kie_api_key=KEY,
        kie_webhook_hmac_key=HMAC_KEY,
        discord={"api_base_url": discord_fake.api_base_url, "gateway_url": discord_fake.gateway_url},
        database={"path": str(tmp_path / "bot.sqlite3"), "busy_timeout_seconds": busy_timeout},
        providers={
            "seaart": {"enabled": False},
            "kie": {"enabled": True, "base_url": kie.base_url, "request_timeout": request_timeout},
        },
        imagine={"default_provider": "kie"},
        jobs={
            "progress_interval_seconds": 0,
            "poll_interval_seconds": min(3.0, retry_after),
            "max_poll_interval_seconds": retry_after,
        },
        quotas={"enabled": quotas},
        callbacks={
            "enabled": True,
            "public_url": f"http://127.0.0.1:{port}",
            "listen_port": port,
            "fallback_poll_seconds": 30.0,
            **callbacks,
        },
    )


def states(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.database.path) as conn:
        return [row[0] for row in conn.execute("SELECT state FROM jobs ORDER BY created_at")]


def status_requests(kie: FakeKie, task_id: str) -> int:
    return sum(1 for r in kie.requests if r.path.endswith("/recordInfo") and r.query.get("taskId") == task_id)


async def one_job(discord_fake: FakeDiscord, settings: Settings, kie: FakeKie) -> str:
    await discord_fake.slash_command("imagine", {"prompt": "a banana, called back"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=40)
    (task_id,) = kie.jobs
    return task_id


async def boot(
    tmp_path: Path, discord_fake: FakeDiscord, kie: FakeKie, **callbacks: Any
) -> tuple[Settings, RunningBot]:
    settings = settings_for(tmp_path, discord_fake, kie, free_port(), **callbacks)
    return settings, await start_bot(settings, discord_fake)


async def test_a_callback_delivers_with_one_status_request(
    tmp_path: Path, discord_fake: FakeDiscord, kie: FakeKie
) -> None:
    settings, running = await boot(tmp_path, discord_fake, kie)
    try:
        task_id = await one_job(discord_fake, settings, kie)
    finally:
        await running.close()
    create = kie.creates[0].json
    with sqlite3.connect(settings.database.path) as conn:
        (job_id,) = [row[0] for row in conn.execute("SELECT id FROM jobs")]
    # The job's id rides along, so a task whose create's answer is lost can be traced (test_lost_tasks.py).
    assert create["callBackUrl"] == f"{settings.callbacks.public_url}{PATH}?job={job_id}"
    (callback,) = kie.callbacks
    assert callback.status == 200
    assert status_requests(kie, task_id) == 1, "only the poll that confirms what the callback said"


async def test_a_replayed_callback_changes_nothing(tmp_path: Path, discord_fake: FakeDiscord, kie: FakeKie) -> None:
    kie.script_callbacks("twice")
    settings, running = await boot(tmp_path, discord_fake, kie)
    try:
        task_id = await one_job(discord_fake, settings, kie)
        await discord_fake.wait_for(lambda: len(kie.callbacks) == 2 and kie.callbacks[1].status is not None, 10)
    finally:
        await running.close()
    first, replay = kie.callbacks
    assert first.status == 200 and replay.status == 200
    assert status_requests(kie, task_id) == 1, "the replay did not cause another poll"


@pytest.mark.parametrize("mode", ["lost", "bad_signature"])
async def test_without_a_good_callback_the_fallback_poll_still_delivers(
    mode: str, tmp_path: Path, discord_fake: FakeDiscord, kie: FakeKie
) -> None:
    kie.script_callbacks(mode)
    settings, running = await boot(tmp_path, discord_fake, kie, fallback_poll_seconds=2.0)
    try:
        task_id = await one_job(discord_fake, settings, kie)
    finally:
        await running.close()
    if mode == "bad_signature":
        assert [c.status for c in kie.callbacks] == [401]
    else:
        assert kie.callbacks == []
    assert status_requests(kie, task_id) >= 1


async def test_a_callback_while_another_program_holds_the_database_wakes_its_job_all_the_same(
    tmp_path: Path, discord_fake: FakeDiscord, kie: FakeKie, caplog: pytest.LogCaptureFixture
) -> None:
    """The callback comes while another program holds the database's write lock (an operator's DB browser)
    longer than the bot waits for it. Its wake-up needs no write (a restart polls every unfinished job
    anyway), so it is answered 200 and the job is polled at once, long before its fallback poll (30 s).
    Before, the wake-up's write was refused: the endpoint answered 500, and aiohttp logged the error at
    ERROR (found by `bench/soak.py --callbacks --seed 152`)."""
    caplog.set_level(logging.INFO)
    # A step whose write the lock refused is tried again 2 s later (15 s by default).
    settings = settings_for(tmp_path, discord_fake, kie, free_port(), busy_timeout=0.5, retry_after=2.0)
    running = await start_bot(settings, discord_fake)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "a banana, called back while the database is held"})
        # The task is made (one second of work at kie.ai) and the bot has written that it waits for it.
        await discord_fake.wait_for(lambda: states(settings) == ["submitted"], timeout=20)
        other = sqlite3.connect(settings.database.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            await discord_fake.wait_for(lambda: bool(kie.callbacks) and kie.callbacks[0].status is not None, 10)
            await asyncio.sleep(1.0)  # past the bot's 0.5 s wait: any write of the callback's has given up
        finally:
            other.close()
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=15)
    finally:
        await running.close()
    (callback,) = kie.callbacks
    assert callback.status == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_forged_and_unknown_callbacks_are_refused(
    tmp_path: Path, discord_fake: FakeDiscord, kie: FakeKie
) -> None:
    kie.script_callbacks("lost")  # only the test's own callbacks reach the bot
    settings, running = await boot(tmp_path, discord_fake, kie, fallback_poll_seconds=30.0)
    url = f"{settings.callbacks.public_url}{PATH}"
    try:
        await discord_fake.slash_command("imagine", {"prompt": "a banana, waiting"})
        await discord_fake.wait_for(lambda: len(kie.jobs) == 1, timeout=20)
        (task_id,) = kie.jobs
        stamp = str(int(time.time()))

        async def post(task: str, *, signature: str, timestamp: str = stamp, body: str = "") -> int:
            body = body or json.dumps({"code": 200, "msg": "success", "data": {"taskId": task, "state": "success"}})
            headers = {"X-Webhook-Timestamp": timestamp, "X-Webhook-Signature": signature}
            async with httpx.AsyncClient() as client:
                return (await client.post(url, content=body, headers=headers)).status_code

        answers = {
            "wrong key": await post(task_id, signature=kie_signature(task_id, stamp, "not-the-key")),
            "stale": await post(
                task_id, signature=kie_signature(task_id, "1000000000", HMAC_KEY), timestamp="1000000000"
            ),
            "unknown task": await post("task_not_ours", signature=kie_signature("task_not_ours", stamp, HMAC_KEY)),
            "unsigned": await post(task_id, signature=""),
            # Nested past what a JSON parser recurses: a bad body, not a crash of the handler.
            # Nested past the parser, within the body's bound (bot/callbacks.py MAX_BODY_BYTES).
            "nested": await post(task_id, signature="x", body="[" * 30_000 + "]" * 30_000),
            "too large": await post(task_id, signature="x", body="[" * 100_000 + "]" * 100_000),
        }
        await asyncio.sleep(1.5)  # the job finished at the fake after 1 s; nothing may have woken it
        polled = status_requests(kie, task_id)
        assert states(settings) == ["submitted"] or states(settings) == ["running"]
        good = await post(task_id, signature=kie_signature(task_id, stamp, HMAC_KEY))
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    finally:
        await running.close()
    assert answers == {
        "wrong key": 401,
        "stale": 401,
        "unknown task": 404,
        "unsigned": 401,
        "nested": 400,
        "too large": 413,
    }
    assert polled == 0, "no refused callback caused a status request"
    assert good == 200 and status_requests(kie, task_id) == 1


async def test_a_flood_of_refused_callbacks_is_summed_up_in_the_log_not_written_line_by_line(
    tmp_path: Path, discord_fake: FakeDiscord, kie: FakeKie, caplog: pytest.LogCaptureFixture
) -> None:
    """The endpoint is public: 300 unsigned or forged requests give two log lines, with the counts."""
    caplog.set_level(logging.INFO, logger="bot.callbacks")
    settings, running = await boot(tmp_path, discord_fake, kie)
    url = f"{settings.callbacks.public_url}{PATH}"
    body = json.dumps({"code": 200, "data": {"taskId": "task_not_ours", "state": "success"}})
    stamp = str(int(time.time()))
    try:
        async with httpx.AsyncClient() as client:
            answers = [
                (await client.post(url, content=body, headers={"X-Webhook-Timestamp": stamp, **signed})).status_code
                for signed in [{}] * 200 + [{"X-Webhook-Signature": "forged"}] * 100
            ]
    finally:
        await running.close()
    assert answers == [401] * 300
    reports = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    # The first refusal at once, the rest summed up at stop (a minute had not passed).
    assert reports == [
        "refused 1 provider callback(s): unsigned 1",
        "refused 299 provider callback(s): unsigned 199, bad signature 100",
    ]


async def test_a_bot_with_callbacks_and_no_key_to_verify_them_refuses_to_start(
    tmp_path: Path, discord_fake: FakeDiscord, kie: FakeKie
) -> None:
    """However it is started (`bananacord run` says so before contacting Discord): with no key, anyone
    could sign a callback (an HMAC with an empty key). Nothing listens for callbacks and nothing is synced."""
    port = free_port()
    keyed = settings_for(tmp_path, discord_fake, kie, port)
    settings = keyed.model_copy(update={"kie_webhook_hmac_key": None})
    point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)
    bot = Bananacord(settings, guild_ready_timeout=0.1)
    try:
        with pytest.raises(ConfigError, match="KIE_WEBHOOK_HMAC_KEY: is not set"):
            await bot.login(BOT_TOKEN)
    finally:
        await bot.close()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.post(f"http://127.0.0.1:{port}{PATH}", content=b"{}")
    assert not any(r.path.endswith("/commands") for r in discord_fake.requests)


async def test_a_callback_port_the_machine_will_not_give_is_one_line_before_anything_starts(
    tmp_path: Path, discord_fake: FakeDiscord, kie: FakeKie
) -> None:
    """The port taken by another program: an OSError with a traceback once the job runner had started and
    the commands were synced; now a setting to fix, said before either."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = settings_for(tmp_path, discord_fake, kie, port)
        point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)
        bot = Bananacord(settings, guild_ready_timeout=0.1)
        try:
            with pytest.raises(
                ConfigError, match=rf"\[callbacks\] listen_host / listen_port: cannot listen on .*:{port}"
            ):
                await bot.login(BOT_TOKEN)
        finally:
            await bot.close()
    assert not any(r.path.endswith("/commands") for r in discord_fake.requests)
