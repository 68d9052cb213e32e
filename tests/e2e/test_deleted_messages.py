"""A job whose message is deleted while it runs is cancelled: at the provider, uncharged, never drawn again."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, make_settings, start_bot
from tests.e2e.test_buttons import rows, start_running_job, states
from tests.e2e.test_member_jobs import link, listed, private_list
from tests.e2e.test_rework import imagine


def owed(settings: Settings) -> int:
    with sqlite3.connect(settings.database.path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM owed_edits").fetchone()[0])


def calls_to(discord_fake: FakeDiscord, message_id: int, after: float) -> list[str]:
    return [f"{r.method} {r.path}" for r in discord_fake.requests if r.at > after and r.path.endswith(f"/{message_id}")]


async def test_deleting_a_running_jobs_message_cancels_it(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, running_bot: RunningBot
) -> None:
    message_id = await start_running_job(discord_fake, seaart, settings)
    deleted_at = time.monotonic()  # the clock the fake stamps requests with
    await discord_fake.delete_messages(message_id)  # the member deletes it in their client
    await cancelled_unseen(discord_fake, seaart, settings, message_id, since=deleted_at)


async def cancelled_unseen(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, message_id: int, *, since: float
) -> None:
    """The one running job ends cancelled, refunded and its provider asked to stop, as its message can no
    longer be seen; nothing is tried on that message after ``since`` (so nothing is owed), and when its
    image would have come, the job stays cancelled."""
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    (job,) = rows(settings)
    assert job["charge_state"] == "refunded" and job["cancelled_by"] is None
    # The provider is asked to stop after the row is written: waited for, not read at once (a CI run read it
    # in between).
    await discord_fake.wait_for(lambda: any(r.path.endswith("/cancel") for r in seaart.requests), timeout=10)
    assert [r.method for r in seaart.requests if r.path.endswith("/cancel")] == ["PUT"]
    seaart.release()
    await asyncio.sleep(1.0)  # a poll or an edit that should not come would come by now
    assert states(settings) == ["cancelled"]
    assert calls_to(discord_fake, message_id, since) == [] and owed(settings) == 0


async def test_a_purge_cancels_the_batch_it_removed_and_nothing_else(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, running_bot: RunningBot
) -> None:
    seaart.hold(True)
    batch = await discord_fake.slash_command("imagine", {"prompt": "two to be purged", "count": 2})
    kept = await discord_fake.slash_command("imagine", {"prompt": "left alone"})
    await discord_fake.wait_for(lambda: states(settings) == ["running"] * 3, timeout=10)
    chatter = await discord_fake.post_message("nice")
    assert batch.original_message_id is not None and kept.original_message_id is not None
    await discord_fake.delete_messages(batch.original_message_id, chatter.id)  # one bulk delete
    await discord_fake.wait_for(lambda: sorted(states(settings)) == ["cancelled", "cancelled", "running"], timeout=10)
    seaart.release()
    await discord_fake.wait_for(lambda: sorted(states(settings)) == ["cancelled", "cancelled", "delivered"], timeout=20)
    by_prompt: dict[str, list[sqlite3.Row]] = {}
    for row in rows(settings):
        by_prompt.setdefault(json.loads(row["request_json"])["prompt"], []).append(row)
    assert {r["state"] for r in by_prompt["two to be purged"]} == {"cancelled"}
    assert {r["charge_state"] for r in by_prompt["two to be purged"]} == {"refunded"}
    assert [r["state"] for r in by_prompt["left alone"]] == ["delivered"]
    assert owed(settings) == 0


@pytest.fixture
async def running_bot_slow_progress(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> AsyncIterator[RunningBot]:
    """A bot that redraws a running job's progress only hourly: its next edit is the delivery."""
    settings = make_settings(tmp_path, discord_fake, seaart, jobs={"progress_interval_seconds": 3600})
    running = await start_bot(settings, discord_fake, Clock())
    yield running
    await running.close()


# Discord does not replay the events a bot missed: a message deleted while the bot was down (or while its
# gateway connection was being resumed) is found gone only when the bot next edits it (404, code 10008).


async def test_a_message_deleted_unseen_is_found_gone_at_the_next_progress_edit(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, running_bot: RunningBot
) -> None:
    message_id = await start_running_job(discord_fake, seaart, settings)
    discord_fake.remove_message(discord_fake.messages[message_id])  # gone, and no MESSAGE_DELETE
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    (job,) = rows(settings)
    assert job["charge_state"] == "refunded" and job["cancelled_by"] is None
    assert job["error_category"] == "cancelled"
    # The provider is told, as for a deletion the bot saw: nobody pays for an image nobody can be shown.
    await discord_fake.wait_for(lambda: any(r.path.endswith("/cancel") for r in seaart.requests), timeout=10)
    assert owed(settings) == 0


async def test_an_image_whose_message_is_gone_ends_cancelled_and_uncharged_not_as_a_failed_delivery(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, running_bot_slow_progress: RunningBot
) -> None:
    """The member deleted the message while the image was on its way (the bot delivers an image it
    already has rather than cancel it): the upload finds the message gone. Not a delivery failure an
    admin should look into, and not charged."""
    settings = running_bot_slow_progress.bot.settings
    message_id = await start_running_job(discord_fake, seaart, settings)
    discord_fake.remove_message(discord_fake.messages[message_id])
    seaart.release()  # the next poll brings the image; no progress edit comes first (interval 1 h)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    (job,) = rows(settings)
    assert job["charge_state"] == "refunded" and job["error_category"] == "cancelled"
    assert job["error_message"] == "Its message was deleted, so the image could not be shown. You were not charged."
    uploads = [r for r in discord_fake.requests if r.method == "PATCH" and r.path.endswith(f"/{message_id}")]
    assert [r.status for r in uploads] == [404]  # it was tried once, found gone, not retried
    assert owed(settings) == 0


async def test_a_batch_whose_message_is_gone_cancels_every_candidate_still_running(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, running_bot: RunningBot
) -> None:
    seaart.hold(True)
    batch = await discord_fake.slash_command("imagine", {"prompt": "three, then gone unseen", "count": 3})
    await discord_fake.wait_for(lambda: states(settings) == ["running"] * 3, timeout=10)
    assert batch.original_message_id is not None
    discord_fake.remove_message(discord_fake.messages[batch.original_message_id])
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"] * 3, timeout=10)
    assert {r["charge_state"] for r in rows(settings)} == {"refunded"}
    await discord_fake.wait_for(
        lambda: len([r for r in seaart.requests if r.path.endswith("/cancel")]) == 3, timeout=10
    )
    assert owed(settings) == 0


@pytest.mark.parametrize("kind", ["channel", "thread"])
async def test_deleting_a_channel_cancels_the_jobs_running_in_it_and_nothing_else(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock, kind: str
) -> None:
    """A moderator deletes a channel while jobs run in it: Discord sends CHANNEL_DELETE and no message
    deletes, and nobody can be shown those jobs any more. They end cancelled at once, at the provider and
    uncharged, and nothing is tried on their messages (before, each was found gone only at its next edit,
    or its image was made and its upload refused); a job in another channel is delivered. The same for a
    thread (a forum's posts are threads), which Discord reports as THREAD_DELETE."""
    # Before the bot starts: its guild's channels (or threads) include it.
    doomed = (
        discord_fake.add_channel("doomed")
        if kind == "channel"
        else discord_fake.add_thread(discord_fake.channel_id, "doomed")
    )
    running = await start_bot(settings, discord_fake, clock)
    try:
        seaart.hold(True)
        gone = await discord_fake.slash_command("imagine", {"prompt": "in the doomed channel"}, channel_id=doomed)
        await discord_fake.slash_command("imagine", {"prompt": "elsewhere"})
        # By channel, not in the order the rows were written: the two commands are answered side by side, and
        # the second one's job was sometimes written first (a CI-like run read ["running", "cancelled"]).
        elsewhere = discord_fake.channel_id

        def by_channel() -> dict[int, str]:
            return {row["channel_id"]: row["state"] for row in rows(settings)}

        await discord_fake.wait_for(lambda: by_channel() == {doomed: "running", elsewhere: "running"}, timeout=10)
        assert gone.original_message_id is not None
        deleted_at = time.monotonic()
        await discord_fake.delete_channel(doomed)
        await discord_fake.wait_for(lambda: by_channel() == {doomed: "cancelled", elsewhere: "running"}, timeout=10)
        seaart.release()
        await discord_fake.wait_for(lambda: by_channel() == {doomed: "cancelled", elsewhere: "delivered"}, timeout=20)
        await asyncio.sleep(1.0)  # an edit of the deleted channel's message that should not come would come by now
    finally:
        await running.close()
    cancelled, delivered = sorted(rows(settings), key=lambda row: row["channel_id"] != doomed)
    assert cancelled["channel_id"] == doomed and cancelled["charge_state"] == "refunded"
    assert cancelled["cancelled_by"] is None and cancelled["error_category"] == "cancelled"
    assert delivered["channel_id"] == discord_fake.channel_id and delivered["charge_state"] == "committed"
    cancels = [r.path for r in seaart.requests if r.path.endswith("/cancel")]
    assert len(cancels) == 1 and cancelled["provider_job_id"] in cancels[0]  # asked to stop, once
    assert calls_to(discord_fake, gone.original_message_id, deleted_at) == [] and owed(settings) == 0


async def test_an_image_whose_channel_was_deleted_unseen_ends_cancelled_and_uncharged_at_its_upload(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, running_bot_slow_progress: RunningBot
) -> None:
    """The channel went while the bot was between gateway sessions (CHANNEL_DELETE never reached it) and
    Discord already refuses the job's interaction token, so its image goes up with the bot's token, on
    the channel's own route: 404 Unknown Channel (code 10003). That is found gone, as a deleted message
    is: cancelled, uncharged, tried once."""
    settings = running_bot_slow_progress.bot.settings
    doomed = discord_fake.add_channel("doomed")
    seaart.hold(True)
    interaction = await discord_fake.slash_command("imagine", {"prompt": "slow banana"}, channel_id=doomed)
    await discord_fake.wait_for(lambda: states(settings) == ["running"], timeout=10)
    message_id = interaction.original_message_id
    discord_fake.expire_token(interaction.token)
    discord_fake.remove_channel(doomed)  # no CHANNEL_DELETE: the bot never hears of it
    seaart.release()
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=20)
    (job,) = rows(settings)
    assert job["charge_state"] == "refunded" and job["error_category"] == "cancelled"
    route = f"/channels/{doomed}/messages/{message_id}"  # the fake answers it 404, code 10003
    assert [r.status for r in discord_fake.requests if r.method == "PATCH" and r.path == route] == [404]
    assert owed(settings) == 0


async def test_a_bot_removed_from_the_server_cancels_the_jobs_running_there(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, running_bot: RunningBot
) -> None:
    """The server's owner removes the bot while a job runs: the bot's token may no longer touch the server's
    channels (403 Missing Access), and whether the interaction's token still edits its message is [U], so
    nobody can count on being shown the image. The job ends cancelled at once, at the provider and
    uncharged, and nothing more is tried on its message (before, it ran on to its delivery)."""
    message_id = await start_running_job(discord_fake, seaart, settings)
    removed_at = time.monotonic()
    await discord_fake.remove_bot()
    await cancelled_unseen(discord_fake, seaart, settings, message_id, since=removed_at)


@pytest.mark.parametrize("away", ["session lost", "stopped"])
async def test_a_bot_removed_while_away_cancels_the_jobs_running_there_when_it_is_back(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock, away: str
) -> None:
    """Removed while its gateway session was lost, or while it was stopped, the bot gets no GUILD_DELETE; the
    next READY lists no such server. Its job ran on, polled and paid for, to fail as a "delivery"."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, clock)
    try:
        message_id = await start_running_job(discord_fake, seaart, settings)
        if away == "stopped":
            await running.close()
            await discord_fake.remove_bot(seen=False)
            running = await start_bot(settings, discord_fake, clock)
        else:
            await discord_fake.remove_bot(seen=False)
            await discord_fake.drop_gateway(forget_sessions=True)
        # Its progress may be drawn until the READY tells (through the interaction's token, which Discord may
        # still take); from the cancel on, nothing.
        await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
        await cancelled_unseen(discord_fake, seaart, settings, message_id, since=time.monotonic())
    finally:
        await running.close()


async def test_a_stop_while_a_deleted_message_s_cancel_waits_for_a_held_database_is_a_warning(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    """A member deletes a running job's message: the cancel is written, and at that moment another program
    takes the database, so carrying the cancel out (the job's end) waits for the lock; the bot is told to
    stop meanwhile, and that write is refused. The refusal is a WARNING, not an ERROR with a traceback
    (found by `bench/soak.py --callbacks --seed 152`: a SIGTERM during one of its locks), and the cancel,
    kept in the row, is carried out by the next start: cancelled, uncharged."""
    caplog.set_level(logging.INFO)
    # Polled every 3 s, not every 0.2 s: no step of the job holds it while the cancel is carried out (one
    # that did would let the cancel find the bot stopping and leave it to the next start, writing nothing).
    settings = make_settings(
        tmp_path,
        discord_fake,
        seaart,
        database={"busy_timeout_seconds": 2.0},
        jobs={"poll_interval_seconds": 3.0, "max_poll_interval_seconds": 3.0},
    )
    db = settings.database.path

    def cancel_written() -> bool:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT cancel_requested FROM jobs").fetchone()[0] is not None

    running = await start_bot(settings, discord_fake)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        message_id = await start_running_job(discord_fake, seaart, settings)
        await discord_fake.delete_messages(message_id)
        # Checked at every turn of the event loop the bot shares with this test, and the lock taken at once
        # (synchronously: the bot cannot write in between), before the cancel's end is written.
        deadline = time.monotonic() + 10
        while not cancel_written():
            assert time.monotonic() < deadline, "the deletion's cancel was never written"
            await asyncio.sleep(0)
        other.execute("BEGIN IMMEDIATE")
        await asyncio.sleep(0.5)  # the end's write is waiting for the lock by now (for 2 s)
        await running.bot.shutdown(grace=5.0)  # what SIGTERM does: steps and cancels in flight get the grace
    finally:
        other.close()
        await running.close()
    # Either the member's cancel (the deletion's handler) or the loop's step (the cancel made the job due at
    # once) carries the cancel out, whichever takes the job first; the stop finds it waiting on the lock and
    # its refused write is a WARNING either way ("... failed while the bot was stopping: the database
    # refused the write", or the step's "step failed, the database refused a write"). fresh-ci saw both.
    refused = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "refused" in r.getMessage() and "database is locked" in r.getMessage()
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [], refused
    assert any("failed while the bot was stopping" in m or "step failed" in m for m in refused), refused
    assert states(settings) == ["running"]

    again = await start_bot(settings, discord_fake)
    try:
        await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
        # Closed at once, as a stop right after a start: the catch-up of replies it began may be mid-read.
        catch_ups = [t for t in asyncio.all_tasks() if t.get_name() == "replies-catch-up"]
    finally:
        await again.close()
    (job,) = rows(settings)
    assert job["charge_state"] == "refunded"
    # Ended before the database closed: before, one was left to fail on the closed database ("no active
    # connection", logged by asyncio as a task exception never retrieved).
    assert all(t.done() and (t.cancelled() or t.exception() is None) for t in catch_ups), catch_ups


async def test_an_ended_image_whose_message_is_deleted_in_discord_is_no_longer_linked_by_jobs(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A moderator deletes a finished image's message in their client (or a purge takes it): /jobs listed a link
    that led nowhere. The job is marked deleted (by nobody the bot knows: Discord does not say), and /jobs says so;
    a member's own message deleted marks nothing."""
    kept = await imagine(discord_fake, {"prompt": "kept"})
    gone = await imagine(discord_fake, {"prompt": "deleted by a moderator"})
    other = await discord_fake.post_message("an ordinary message")
    await discord_fake.delete_messages(other.id)
    await asyncio.sleep(0.3)
    assert deleted_by(settings) == {"kept": None, "deleted by a moderator": None}
    await discord_fake.delete_messages(gone.id)
    await discord_fake.wait_for(lambda: deleted_by(settings) == {"kept": None, "deleted by a moderator": 0}, timeout=10)
    listing = listed(await private_list(discord_fake))
    assert link(discord_fake, kept) in listing and link(discord_fake, gone) not in listing
    assert "message deleted" in listing


def deleted_by(settings: Settings) -> dict[str, int | None]:
    with sqlite3.connect(settings.database.path) as conn:
        rows = conn.execute("SELECT json_extract(request_json, '$.prompt'), deleted_by FROM jobs").fetchall()
    return {str(prompt): by for prompt, by in rows}
