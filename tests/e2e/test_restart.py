"""A bot process killed hard after the provider accepted the job; a new process finishes it."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage, RecordedRequest
from bot.testing.providers import FakeSeaArt
from tests.conftest import BOT_TOKEN, SEAART_KEY
from tests.e2e.bot_process import BotProcess, bot_processes, command_being_answered, start_process, write_config


def job_state(db: Path) -> tuple[str, str | None] | None:
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT state, provider_job_id FROM jobs").fetchone()
    return (row[0], row[1]) if row else None


async def test_restart_resumes_without_second_create(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    config = write_config(tmp_path, discord_fake, seaart)
    db = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    first = start_process(config, log)
    second: BotProcess | None = None
    try:
        await discord_fake.wait_until_ready(timeout=30)
        seaart.hold(True)
        interaction = await discord_fake.slash_command("imagine", {"prompt": "survive a crash"})

        def accepted() -> bool:
            state = job_state(db)
            return state is not None and state[1] is not None

        await discord_fake.wait_for(accepted, timeout=20)
        first.send_signal(signal.SIGKILL)  # no graceful shutdown: no close frame, no cleanup
        first.wait(timeout=10)
        assert len(seaart.creates) == 1

        seaart.release()
        second = start_process(config, log)
        await discord_fake.wait_for(lambda: discord_fake.identify_count >= 2, timeout=30)
        await discord_fake.wait_for(lambda: (job_state(db) or ("",))[0] == "delivered", timeout=30)

        assert len(seaart.creates) == 1, "the provider saw exactly one create"
        assert interaction.original_message_id is not None
        message = discord_fake.messages[interaction.original_message_id]
        assert len(message.files) == 1 and "Done" in message.embeds[0]["title"]
        # Only one message was ever made for this interaction: the same one was edited.
        assert [m.id for m in discord_fake.messages.values() if m.interaction_id == interaction.id] == [message.id]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    output = log.read_text(errors="replace")
    assert SEAART_KEY not in output and BOT_TOKEN not in output
    assert interaction.token not in output


def job_row(db: Path) -> tuple[str, str | None, str | None] | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT state, charge_state, error_message FROM jobs").fetchone()
    return (row[0], row[1], row[2]) if row else None


@pytest.mark.parametrize("down_for", [0, 1920], ids=["back-at-once", "back-half-an-hour-later"])
async def test_a_job_held_when_the_bot_died_and_never_shown_ends_uncharged(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, down_for: int
) -> None:
    """Killed while acknowledging the command, and Discord never took the acknowledgement: the restarted
    bot finds no message for the job, so nothing is sent to the provider and the reservation goes back
    (instead of the job waiting an hour). The other case, Discord did take it, is in test_soak.py.

    ``down_for``: the bot stays down that long (the rows are moved back in time, as that would leave them).
    A start looked only for holds less than half over: after half an hour the job was missed, and would
    have started an hour after its command with no message to show it in (and, with a deadline over an
    hour, been "delivered" into no message and charged)."""
    config = write_config(tmp_path, discord_fake, seaart)
    db = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    first = start_process(config, log)
    second: BotProcess | None = None
    try:
        interaction = await command_being_answered(discord_fake, "never acknowledged")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        discord_fake.expire_token(interaction.token)  # the interaction is gone: nobody saw a message
        discord_fake.hold_callbacks(False)
        with sqlite3.connect(db) as conn:
            conn.execute(
                "UPDATE jobs SET created_at = created_at - ?1, next_poll_at = next_poll_at - ?1, "
                "deadline_at = deadline_at - ?1",
                (down_for,),
            )
        second = start_process(config, log)
        await discord_fake.wait_for(lambda: (job_row(db) or ("",))[0] == "cancelled", timeout=30)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
    state, charge, message = job_row(db) or ("", None, None)
    assert (state, charge) == ("cancelled", "refunded") and "not charged" in (message or "")
    assert seaart.creates == []


REFUSED_TITLE = "🍌 The provider refused the request"


def refused_edit(request: RecordedRequest) -> bool:
    """The edit that shows the member their job was refused by the provider."""
    return "The provider refused the request" in json.dumps(request.json)


def owed(db: Path) -> list[str]:
    """Jobs whose end is still owed to their member's message."""
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT job_id FROM owed_edits")]


async def imagine_refused(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, prompt: str, *, edit_fails: tuple[int, int] | None = None
) -> FakeInteraction:
    """/imagine for a job the provider refuses; ``edit_fails`` = (status, times): Discord answers the first
    edits that would show the member so with that status instead."""
    if edit_fails is not None:
        status, times = edit_fails
        discord_fake.fail_next("PATCH", r"/messages/", status=status, times=times, match=refused_edit)
    seaart.script("error:REQUEST_INVALID")
    return await discord_fake.slash_command("imagine", {"prompt": prompt})


async def wait_shown_and_paid(discord_fake: FakeDiscord, message: FakeMessage, db: Path) -> None:
    """The member's message says the job was refused, and nothing is owed any more."""
    await discord_fake.wait_for(lambda: message.embeds[0]["title"] == REFUSED_TITLE, timeout=30)
    await discord_fake.wait_for(lambda: owed(db) == [], timeout=10)


async def test_a_final_edit_discord_refused_is_shown_after_the_bot_dies(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The job fails at the provider, Discord refuses the edit that would tell the member (and the
    runner's first retry), the bot is SIGKILLed while waiting to retry: the next process still edits the
    message to say how the job ended, and no longer owes it afterwards."""
    config = write_config(tmp_path, discord_fake, seaart)
    db = tmp_path / "bot.sqlite3"

    with bot_processes(config, tmp_path / "bot.log") as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        # discord.py does not retry a 403 itself: the runner's own retries (after 1 s, 3 s, ...) do.
        interaction = await imagine_refused(discord_fake, seaart, "refused twice", edit_fails=(403, 2))
        await discord_fake.wait_for(lambda: (job_row(db) or ("",))[0] == "failed", timeout=20)
        await discord_fake.wait_for(
            lambda: len([r for r in discord_fake.requests if r.method == "PATCH" and refused_edit(r)]) == 2,
            timeout=10,
        )
        assert interaction.original_message_id is not None
        message = discord_fake.messages[interaction.original_message_id]
        assert "refused" not in message.embeds[0]["title"]  # the member still sees it running
        assert len(owed(db)) == 1
        first.send_signal(signal.SIGKILL)  # during the 3 s wait before the runner's next try
        first.wait(timeout=10)

        start()
        await wait_shown_and_paid(discord_fake, message, db)
    state, _, error = job_row(db) or ("", None, None)
    assert state == "failed" and error is not None
    assert error in str(message.embeds[0]["fields"])  # why, in the member's words


async def test_a_job_s_end_is_shown_after_the_bot_dies_while_showing_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The job fails at the provider; the bot writes the end and, while its edit of the member's message
    is still in flight (Discord answered 500 and discord.py waits a second to resend it), it is
    SIGKILLed. The end is in the row, not on the member's screen: the next process must still show it.
    (Found by bench/soak.py: a job whose message said "Queued" for good.)"""
    config = write_config(tmp_path, discord_fake, seaart)
    db = tmp_path / "bot.sqlite3"

    with bot_processes(config, tmp_path / "bot.log") as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        interaction = await imagine_refused(discord_fake, seaart, "killed mid-edit", edit_fails=(500, 1))
        await discord_fake.wait_for(lambda: any(refused_edit(r) for r in discord_fake.requests), timeout=20)
        first.send_signal(signal.SIGKILL)  # discord.py is waiting to resend the 500'd edit
        first.wait(timeout=10)
        assert interaction.original_message_id is not None
        message = discord_fake.messages[interaction.original_message_id]
        assert "refused" not in message.embeds[0]["title"]  # the member still sees it running
        assert (job_row(db) or ("",))[0] == "failed" and len(owed(db)) == 1

        start()
        await wait_shown_and_paid(discord_fake, message, db)
    assert len([r for r in discord_fake.requests if refused_edit(r)]) == 2  # the 500'd one, the next start's


async def test_a_job_s_end_shown_at_once_leaves_no_debt(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The debt written with a failure is cleared once the member sees it: nothing is retried later."""
    config = write_config(tmp_path, discord_fake, seaart)
    db = tmp_path / "bot.sqlite3"
    with bot_processes(config, tmp_path / "bot.log") as start:
        start()
        await discord_fake.wait_until_ready(timeout=30)
        interaction = await imagine_refused(discord_fake, seaart, "refused, shown at once")
        await discord_fake.wait_for(lambda: interaction.original_message_id is not None, timeout=20)
        assert interaction.original_message_id is not None
        await wait_shown_and_paid(discord_fake, discord_fake.messages[interaction.original_message_id], db)
    assert len([r for r in discord_fake.requests if refused_edit(r)]) == 1  # shown once, never retried


def cancel_calls(seaart: FakeSeaArt) -> int:
    return len([r for r in seaart.requests if r.method == "PUT" and r.path.endswith("/cancel")])


def cancel_pending(db: Path) -> list[str]:
    """Jobs with a cancel still to carry out, or whose provider is still to be told."""
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM jobs WHERE cancel_requested IS NOT NULL")]


@pytest.mark.parametrize("how", ["cancel button", "message deleted"])
async def test_a_cancel_cut_short_by_a_crash_is_finished_at_the_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, how: str
) -> None:
    """The member presses Cancel (or deletes the job's message): the job ends at once, uncharged, and
    the member is shown so; then the provider is asked to stop it, a call lost on the way, and the bot is
    SIGKILLed while it waits. The next process must ask the provider again (else the task runs on, billed
    to the operator, for an image nobody will see), and the job stays cancelled."""
    config = write_config(tmp_path, discord_fake, seaart)
    db = tmp_path / "bot.sqlite3"
    with bot_processes(config, tmp_path / "bot.log") as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        seaart.hold(True)
        interaction = await discord_fake.slash_command("imagine", {"prompt": "call it off"})
        await discord_fake.wait_for(lambda: (job_row(db) or ("",))[0] == "running", timeout=20)
        message_id = interaction.original_message_id
        assert message_id is not None
        message = discord_fake.messages[message_id]
        seaart.lose_next("PUT", r"/cancel$")
        if how == "cancel button":
            (cancel,) = [c["custom_id"] for row in message.components for c in row["components"]]
            await discord_fake.click(message_id, str(cancel), user_id=discord_fake.member_id)
        else:
            await discord_fake.delete_messages(message_id)
        await discord_fake.wait_for(lambda: cancel_calls(seaart) == 1, timeout=10)
        # Ended and shown before the provider was asked: the member did not wait on the lost call.
        state, charge, error = job_row(db) or ("", None, None)
        assert (state, charge) == ("cancelled", "refunded") and "not charged" in (error or "")
        if how == "cancel button":
            assert "Cancelled" in message.embeds[0]["title"]
            assert f"<@{discord_fake.member_id}>" in json.dumps(message.embeds[0]["fields"])  # who did it
        assert len(cancel_pending(db)) == 1  # the provider is still to be told
        first.send_signal(signal.SIGKILL)  # the cancel call is still unanswered
        first.wait(timeout=10)
        # The wait above held this loop: a poll the killed process sent first is answered now, before the
        # release, or it would find the image done and the next cancel be refused as too late (seen once,
        # in a full run on a busy machine).
        await asyncio.sleep(0.5)
        seaart.release()  # the image would be done at the provider's next answer

        start()
        await discord_fake.wait_for(lambda: cancel_calls(seaart) == 2, timeout=30)  # asked again
        await discord_fake.wait_for(lambda: cancel_pending(db) == [], timeout=10)
        assert (job_row(db) or ("",))[:2] == ("cancelled", "refunded")
        assert message.files == [] and (message.deleted or "Cancelled" in message.embeds[0]["title"])
        assert [job.cancelled for job in seaart.jobs.values()] == [True]


async def cancel_while_a_poll_hangs(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, db: Path, prompt: str
) -> FakeMessage:
    """/imagine a job the provider holds running; once it runs, lose its next status poll (the step
    polling it then holds the job until the bot's request timeout) and press Cancel meanwhile. Returns
    the job's message once the bot has taken the click."""
    seaart.hold(True)
    interaction = await discord_fake.slash_command("imagine", {"prompt": prompt})
    await discord_fake.wait_for(lambda: (job_row(db) or ("",))[0] == "running", timeout=20)
    assert interaction.original_message_id is not None
    message = discord_fake.messages[interaction.original_message_id]
    polled = len(seaart.requests)
    seaart.lose_next("GET", r"/status$")
    await discord_fake.wait_for(lambda: any(r.path.endswith("/status") for r in seaart.requests[polled:]), timeout=10)
    (cancel,) = [c["custom_id"] for row in message.components for c in row["components"]]
    click = await discord_fake.click(message.id, str(cancel), user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: click.acknowledged, timeout=5)
    assert click.callbacks[0]["type"] == 7  # taken: the message updated, not a "too late" answer
    # The member sees the click taken at once, although the job's step still holds the job.
    assert message.embeds[0]["title"] == "🍌 Cancelling…" and message.components == []
    return message


async def wait_cancelled_and_told(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, db: Path, message: FakeMessage
) -> None:
    """The job ended cancelled and refunded, its message says so without an image, and its provider was
    asked (once) to stop it, with nothing left pending."""
    await discord_fake.wait_for(lambda: (job_row(db) or ("",))[0] in ("cancelled", "delivered"), timeout=30)
    assert (job_row(db) or ("",))[:2] == ("cancelled", "refunded")
    await discord_fake.wait_for(lambda: "Cancelled" in message.embeds[0]["title"], timeout=10)
    await discord_fake.wait_for(lambda: cancel_calls(seaart) == 1 and cancel_pending(db) == [], timeout=10)
    assert message.files == []


async def test_a_cancel_taken_while_a_poll_hangs_survives_a_crash(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The member's click on Cancel is acknowledged while the job's poll hangs (its step holds the job);
    the bot dies before that step ends. The member saw the click taken, so the cancel must not be lost:
    it is written before the acknowledgement, and the next process carries it out."""
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0)
    db = tmp_path / "bot.sqlite3"
    with bot_processes(config, tmp_path / "bot.log") as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        message = await cancel_while_a_poll_hangs(discord_fake, seaart, db, "cancel mid-poll")
        first.send_signal(signal.SIGKILL)  # the poll still hangs: the first process never cancelled
        first.wait(timeout=10)
        assert cancel_calls(seaart) == 0 and (job_row(db) or ("",))[0] == "running"
        seaart.release()

        start()
        await wait_cancelled_and_told(discord_fake, seaart, db, message)


async def test_a_cancel_waiting_when_the_bot_is_stopped_is_carried_out_by_the_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """SIGTERM (docker stop) while a taken Cancel waits for the job's hung poll: the bot gives the step its
    grace, stops cleanly without starting the cancel against a closing database, and the next start
    carries the cancel out."""
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0, jobs="shutdown_grace_seconds = 1")
    db = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        message = await cancel_while_a_poll_hangs(discord_fake, seaart, db, "stopped mid-cancel")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
        output = log.read_text(errors="replace")
        assert "stopped cleanly" in output and "Traceback" not in output
        assert (job_row(db) or ("",))[0] == "running" and len(cancel_pending(db)) == 1
        # The stop names what held it: the job's step, waiting in its poll for SeaArt's answer.
        (job_id,) = cancel_pending(db)
        held = f"still running after 1 s: cancel-{job_id} in Canceller.now; job-{job_id} in Poller.poll > "
        assert held in output
        seaart.release()

        start()
        await wait_cancelled_and_told(discord_fake, seaart, db, message)
