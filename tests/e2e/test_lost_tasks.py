"""A create whose answer was lost, taken up again through kie.ai's callback (bot/lost_tasks.py).

The real bot, the fake Kie over sockets: the create is carried out but its answer never arrives (or the
request dies on the way), the bot's request times out, and the job waits, still "Generating", for a callback
naming a task it sent. Kie's record of that task names the job; the job adopts it and the member gets the
image, charged once, with nothing created twice. Nothing that names another deployment's job, or a job no
longer waiting, is taken up; with no callback, the wait ends "uncertain", uncharged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.callbacks import PATH, kie_signature
from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeKie
from bot.testing.serving import free_port
from tests.conftest import start_bot
from tests.e2e.test_callbacks import HMAC_KEY, KEY, settings_for


def jobs(settings: Settings) -> list[sqlite3.Row]:
    with sqlite3.connect(settings.database.path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()


def ledger(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.database.path) as conn:
        return [row[0] for row in conn.execute("SELECT kind FROM ledger ORDER BY id")]


def waiting(settings: Settings) -> bool:
    """The one job is queued with its create's mark: sent, never answered."""
    rows = jobs(settings)
    return len(rows) == 1 and rows[0]["state"] == "queued" and rows[0]["submit_started_at"] is not None


def title(discord_fake: FakeDiscord, interaction: FakeInteraction) -> str:
    if interaction.original_message_id is None:
        return ""  # not answered yet
    embeds = discord_fake.messages[interaction.original_message_id].embeds
    return str(embeds[0]["title"]) if embeds else ""


def logged(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for record in caplog.records if text in record.getMessage())


@contextlib.asynccontextmanager
async def lost_create(
    tmp_path: Path, discord_fake: FakeDiscord, task_seconds: float, *, on_the_way: bool = False, **options: Any
) -> AsyncIterator[tuple[FakeKie, Settings]]:
    """Kie, whose next create is carried out and never answered (``on_the_way``: lost before it arrived, so
    no task), and the real bot against it with ``options`` (settings_for's)."""
    async with kie_fake(task_seconds) as kie:
        if on_the_way:
            kie.lose_next("POST", "/createTask$")  # never carried out: no task, no callback
        else:
            kie.script("create_hang")  # the task is made; its id never reaches the bot
        settings = settings_for(tmp_path, discord_fake, kie, free_port(), **options)
        running = await start_bot(settings, discord_fake)
        try:
            yield kie, settings
        finally:
            await running.close()


def kie_fake(task_seconds: float) -> FakeKie:
    # hang_seconds: a create that hangs is answered (too late) after this, so nothing outlives the test.
    return FakeKie(
        flavour="kie",
        api_key=KEY,
        provider_time=lambda: task_seconds,
        webhook_hmac_key=HMAC_KEY,
        hang_seconds=20.0,
    )


@pytest.mark.parametrize("task_seconds", [0.5, 4.0], ids=["called-back-while-the-create-hangs", "called-back-later"])
async def test_a_create_whose_answer_was_lost_is_delivered_once_when_its_task_calls_back(
    task_seconds: float, tmp_path: Path, discord_fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with lost_create(tmp_path, discord_fake, task_seconds, quotas=True, request_timeout=2.0) as (kie, settings):
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a banana whose answer was lost"})
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"], timeout=30)
        assert interaction.original_message_id is not None
        message = discord_fake.messages[interaction.original_message_id]
        await discord_fake.wait_for(lambda: bool(message.attachments), timeout=10)
    (task_id,) = kie.jobs
    assert len(kie.creates) == 1, "the create was not sent again"
    (job,) = jobs(settings)
    assert job["provider_job_id"] == task_id and job["error_category"] is None
    assert ledger(settings) == ["reserve", "commit"], "charged once, for the image received"
    assert [c.status for c in kie.callbacks] == [200]
    assert logged(caplog, f"callback names its task {task_id}") == 1
    assert logged(caplog, "never answered its create") == 1
    # What the schedule learns from it is how long the task ran since its create left, not since it was
    # taken up (a few milliseconds before its image was fetched).
    with sqlite3.connect(settings.database.path) as conn:
        ((earliest, latest),) = conn.execute("SELECT earliest, latest FROM completion_times").fetchall()
    assert task_seconds <= latest < task_seconds + 5 and earliest <= latest


async def test_a_task_is_still_taken_up_when_kie_fails_to_answer_the_first_ask_whose_it_is(
    tmp_path: Path, discord_fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    """The callback is the only word the job gets of its task: one failed status call must not waste it."""
    caplog.set_level(logging.INFO)
    async with lost_create(tmp_path, discord_fake, 3.0, request_timeout=1.0) as (kie, settings):
        await discord_fake.slash_command("imagine", {"prompt": "a banana asked about twice"})
        await discord_fake.wait_for(lambda: logged(caplog, "never answered its create") == 1, timeout=10)
        kie.lose_next("GET", "/recordInfo$", times=2)  # both tries of the first ask time out
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"], timeout=30)
    assert logged(caplog, "asking whose it is failed") == 1
    assert logged(caplog, "could not ask whose it is") == 0
    (task_id,) = kie.jobs
    assert jobs(settings)[0]["provider_job_id"] == task_id and len(kie.creates) == 1


async def test_a_create_lost_on_the_way_fails_uncertain_and_uncharged_when_no_task_calls_back(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    options: dict[str, Any] = {"quotas": True, "request_timeout": 1.0, "lost_task_wait_seconds": 4.0}
    async with lost_create(tmp_path, discord_fake, 1.0, on_the_way=True, **options) as (kie, settings):
        sent = time.time()
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a banana lost on the way"})
        await discord_fake.wait_for(lambda: waiting(settings) and time.time() - sent > 1.5, timeout=10)
        # The member sees it generating (it may well be) while the bot waits, not "Queued".
        await discord_fake.wait_for(lambda: "Generating" in title(discord_fake, interaction), timeout=20)
        # And why it may take a while: the create went unanswered, and until when the bot waits for word of it.
        assert interaction.original_message_id is not None
        (row,) = jobs(settings)
        until = int(min(row["deadline_at"], row["submit_started_at"] + 4.0))
        (drawn,) = discord_fake.messages[interaction.original_message_id].embeds
        note = {f["name"]: f["value"] for f in drawn["fields"]}["Not confirmed yet"]
        assert f"until <t:{until}:R>" in note and "charged only for images you get" in note
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["failed"], timeout=20)
        ended = time.time() - sent
        await discord_fake.wait_for(lambda: "Generating" not in title(discord_fake, interaction), timeout=10)
        assert interaction.original_message_id is not None
        shown = json.dumps(discord_fake.messages[interaction.original_message_id].embeds)
    assert kie.jobs == {} and kie.callbacks == []
    (job,) = jobs(settings)
    assert job["error_category"] == "uncertain" and "stopped waiting" in job["error_message"]
    assert "stopped waiting" in shown and "not charged" in shown
    assert ended >= 4.0, f"it waited its {settings.callbacks.lost_task_wait_seconds} s (ended after {ended:.1f} s)"
    assert ledger(settings) == ["reserve", "refund"]


async def test_a_create_cut_short_by_a_stop_is_taken_up_by_the_next_start_when_its_task_calls_back(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """The bot stops while the create hangs: the next start finds the job waiting, not failed at once."""
    async with kie_fake(5.0) as kie:
        kie.script("create_hang")
        settings = settings_for(tmp_path, discord_fake, kie, free_port(), quotas=True)
        running = await start_bot(settings, discord_fake)
        try:
            await discord_fake.slash_command("imagine", {"prompt": "a banana across a restart"})
            await discord_fake.wait_for(lambda: len(kie.jobs) == 1 and waiting(settings), timeout=10)
        finally:
            await running.close()
        assert waiting(settings), "the stop left the job as it was"
        running = await start_bot(settings, discord_fake)
        try:
            await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"], timeout=30)
        finally:
            await running.close()
    (task_id,) = kie.jobs
    assert len(kie.creates) == 1
    assert jobs(settings)[0]["provider_job_id"] == task_id
    assert ledger(settings) == ["reserve", "commit"]


async def test_a_member_who_cancels_during_the_wait_is_refunded_and_the_task_is_not_taken_up(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    async with lost_create(tmp_path, discord_fake, 4.0, quotas=True, request_timeout=1.0) as (kie, settings):
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a banana, then not"})
        await discord_fake.wait_for(lambda: "Generating" in title(discord_fake, interaction), timeout=10)
        assert waiting(settings) and interaction.original_message_id is not None
        message = discord_fake.messages[interaction.original_message_id]
        (cancel,) = [c["custom_id"] for row in message.components for c in row["components"] if c["label"] == "Cancel"]
        await discord_fake.click(message.id, cancel, user_id=discord_fake.member_id)
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["cancelled"], timeout=10)
        # The task ends at Kie and calls back: no job waits for it any more.
        await discord_fake.wait_for(lambda: bool(kie.callbacks) and kie.callbacks[0].status is not None, 10)
    assert [c.status for c in kie.callbacks] == [404]
    (job,) = jobs(settings)
    assert job["state"] == "cancelled" and job["provider_job_id"] is None
    assert ledger(settings) == ["reserve", "refund"]


async def test_a_task_of_another_deployment_or_of_a_job_not_waiting_is_not_taken_up(
    tmp_path: Path, discord_fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    """Both callbacks are signed and name tasks of the bot's own Kie account, and one even names the waiting
    job's id: only a task whose callBackUrl is this bot's, naming a job still waiting, is taken up."""
    caplog.set_level(logging.INFO)
    async with lost_create(tmp_path, discord_fake, 0.5, on_the_way=True, request_timeout=1.0) as (kie, settings):
        url = f"{settings.callbacks.public_url}{PATH}"
        sent = time.time()
        await discord_fake.slash_command("imagine", {"prompt": "a banana waiting for its own task"})
        await discord_fake.wait_for(lambda: waiting(settings) and time.time() - sent > 1.5, timeout=10)
        job_id = jobs(settings)[0]["id"]

        async def create(callback_url: str) -> str:
            body: dict[str, Any] = {"model": "nano-banana-2", "callBackUrl": callback_url, "input": {"prompt": "x"}}
            async with httpx.AsyncClient() as client:
                answer = await client.post(
                    f"{kie.base_url}/api/v1/jobs/createTask", json=body, headers={"Authorization": f"Bearer {KEY}"}
                )
            return str(answer.json()["data"]["taskId"])

        # Another deployment on the same account, its job named as ours is: Kie calls it, not us (a closed
        # port here), and the callback is replayed to this bot by hand, signed.
        foreign = await create(f"http://127.0.0.1:{free_port()}{PATH}?job={job_id}")
        # This bot's URL, naming a job that is not waiting: Kie calls back itself.
        stray = await create(f"{url}?job=00000000deadbeef")
        await discord_fake.wait_for(lambda: {c.task_id for c in kie.callbacks} == {foreign, stray}, timeout=10)
        stamp = str(int(time.time()))
        task_body = json.dumps({"code": 200, "msg": "success", "data": {"taskId": foreign, "state": "success"}})
        headers = {"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": kie_signature(foreign, stamp, HMAC_KEY)}
        async with httpx.AsyncClient() as client:
            replayed = (await client.post(url, content=task_body, headers=headers)).status_code
        await discord_fake.wait_for(
            lambda: logged(caplog, "names no job of this bot's") + logged(caplog, "no longer waits") == 2, 10
        )
        assert waiting(settings), "the job still waits for its own task"
    assert replayed == 200
    assert logged(caplog, f"{foreign} called back and names no job of this bot's") == 1
    assert logged(caplog, f"{stray}: sent by job 00000000deadbeef, which no longer waits for it") == 1
    (job,) = jobs(settings)
    assert job["provider_job_id"] is None


async def test_a_lost_task_s_callback_while_another_program_holds_the_database_is_taken_up_once_it_lets_go(
    tmp_path: Path, discord_fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    """The task is traced while an operator's DB browser holds the write lock past the bot's wait: taking
    it up is a write the job cannot do without (the task is made and billed), so it waits for the lock,
    and nothing is logged as an error."""
    caplog.set_level(logging.INFO)
    options: dict[str, Any] = {"request_timeout": 1.0, "busy_timeout": 0.5, "retry_after": 2.0}
    async with lost_create(tmp_path, discord_fake, 3.0, **options) as (kie, settings):
        await discord_fake.slash_command("imagine", {"prompt": "a banana traced while the database is held"})
        await discord_fake.wait_for(lambda: logged(caplog, "never answered its create") == 1, timeout=10)
        other = sqlite3.connect(settings.database.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            await discord_fake.wait_for(lambda: bool(kie.callbacks) and kie.callbacks[0].status is not None, 30)
            # The trace has asked Kie and its write has given up at least once. Waited for, not slept on: on a
            # loaded machine the trace's write may queue behind other writes the lock refuses first (the
            # wait for the lost task's own), and a lock let go too soon would find it never refused.
            await discord_fake.wait_for(
                lambda: any(
                    "the task kie created (" in r.getMessage() and "cannot be written yet" in r.getMessage()
                    for r in caplog.records
                ),
                timeout=30,
            )
            assert waiting(settings)
        finally:
            other.close()
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"], timeout=20)
    assert [c.status for c in kie.callbacks] == [200]
    (task_id,) = kie.jobs
    assert jobs(settings)[0]["provider_job_id"] == task_id
    assert logged(caplog, f"the task kie created ({task_id}) written after") == 1, "the lock refused it first"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_batch_says_which_candidate_s_create_went_unanswered(tmp_path: Path, discord_fake: FakeDiscord) -> None:
    """Two candidates; the first create is lost on its way. Their one message names that candidate while
    the bot waits for word of it; the other is delivered, and the lost one ends uncertain, uncharged."""
    options: dict[str, Any] = {"quotas": True, "request_timeout": 1.0, "lost_task_wait_seconds": 4.0}
    async with lost_create(tmp_path, discord_fake, 1.0, on_the_way=True, **options) as (kie, settings):
        interaction = await discord_fake.slash_command("imagine", {"prompt": "two bananas, one lost", "count": 2})

        def note() -> str:
            if interaction.original_message_id is None:
                return ""
            (embed,) = discord_fake.messages[interaction.original_message_id].embeds
            return str({f["name"]: f["value"] for f in embed["fields"]}.get("Not confirmed yet", ""))

        await discord_fake.wait_for(lambda: "never answered the request for #" in note(), timeout=10)
        lost = next(r for r in jobs(settings) if r["state"] == "queued" and r["submit_started_at"] is not None)
        until = int(min(lost["deadline_at"], lost["submit_started_at"] + 4.0))
        assert f"the request for #{lost['batch_index']}." in note() and f"until <t:{until}:R>" in note()
        await discord_fake.wait_for(lambda: sorted(r["state"] for r in jobs(settings)) == ["delivered", "failed"])
        await discord_fake.wait_for(lambda: note() == "", timeout=10)  # the end drawn without it
    assert len(kie.jobs) == 1
    assert sorted(ledger(settings)) == ["commit", "refund", "reserve", "reserve"]


async def test_a_batch_does_not_call_a_create_still_on_its_way_unanswered(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """A create on its way looks, in its row, like one never answered (queued, marked). The batch's message,
    redrawn when the other candidate's image came, said the first "never answered" while its create was
    still waiting for its answer; only once it times out is it unconfirmed."""
    options: dict[str, Any] = {"request_timeout": 6.0, "lost_task_wait_seconds": 4.0}
    async with lost_create(tmp_path, discord_fake, 0.3, **options) as (kie, settings):
        interaction = await discord_fake.slash_command("imagine", {"prompt": "one slow to answer", "count": 2})

        def fields() -> dict[str, str]:
            if interaction.original_message_id is None:
                return {}
            (embed,) = discord_fake.messages[interaction.original_message_id].embeds
            return {f["name"]: f["value"] for f in embed["fields"]}

        await discord_fake.wait_for(lambda: "delivered" in [r["state"] for r in jobs(settings)], timeout=20)
        await asyncio.sleep(0.5)  # the redraw with the image
        sending = [r for r in jobs(settings) if r["state"] == "queued"]
        assert len(sending) == 1 and sending[0]["submit_started_at"] is not None
        assert time.time() - sending[0]["submit_started_at"] < 6.0, "the create is still on its way"
        assert "Not confirmed yet" not in fields(), fields()
        # Once the create times out, the wait for word of it begins, and says so.
        await discord_fake.wait_for(lambda: "Not confirmed yet" in fields(), timeout=10)
    assert len(kie.creates) == 2
