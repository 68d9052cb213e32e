"""The bot is stopped (SIGTERM, or killed) and comes back after a job's deadline (the rows moved back in time
by eleven minutes, as that would leave them; the default deadline is ten).

Before, every unfinished job past its deadline ended at its first step as "The provider did not finish within
10 minute(s)", before anything was asked: an image the provider finished (and billed) while the bot was down
was thrown away, and a request taken during the stop's grace, never sent, was blamed on the provider too. Now
a job the provider took is polled once more and delivered if it finished (expired, and told so, if not), and
one never sent ends saying the bot was back too late; nothing is charged unless delivered."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from bot.held_jobs import BACK_TOO_LATE
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.e2e.bot_process import BotProcess, bot_processes, write_config
from tests.e2e.test_failing_disk import rows
from tests.e2e.test_held_after_expiry import ledger_kinds, owed
from tests.e2e.test_process import HeldCreates, held_creates  # noqa: F401 (the fixture)

ENDED = ("delivered", "expired", "cancelled", "failed")
DOWN_FOR = 660  # eleven minutes: past the default deadline of ten


def move_back(db: Path, seconds: int) -> None:
    """What ``seconds`` of the bot being down leaves: every time the rows hold is that much older."""
    columns = ("created_at", "next_poll_at", "deadline_at", "started_at", "submit_started_at", "token_expires_at")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE jobs SET " + ", ".join(f"{c} = {c} - ?1" for c in columns),
            (seconds,),
        )
    conn.close()


def polls(seaart: FakeSeaArt) -> int:
    return sum(1 for r in seaart.requests if r.method == "GET" and "/requests/" in r.path)


def cancels(seaart: FakeSeaArt) -> int:
    return sum(1 for r in seaart.requests if r.method == "PUT" and r.path.endswith("/cancel"))


def ended(db: Path) -> bool:
    return bool(rows(db)) and all(row["state"] in ENDED for row in rows(db))


def shown(message: FakeMessage) -> str:
    return str(message.embeds[0]) if message.embeds else ""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
@pytest.mark.parametrize("finished", [True, False], ids=["finished-while-down", "still-running"])
async def test_a_job_running_when_the_bot_stopped_is_asked_about_once_more(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, sig: signal.Signals, finished: bool
) -> None:
    """``finished``: the provider finished the image while the bot was down (it is delivered and charged),
    or has not (the job expires, refunded, cancelled at the provider)."""
    config = write_config(tmp_path, discord_fake, seaart)  # default deadline: 600 s
    db = tmp_path / "bot.sqlite3"
    with bot_processes(config, tmp_path / "bot.log") as start:
        proc = start()
        await discord_fake.wait_until_ready(timeout=30)
        seaart.hold(True)
        interaction = await discord_fake.slash_command("imagine", {"prompt": "made while the bot was down"})
        await discord_fake.wait_for(lambda: [r["state"] for r in rows(db)] == ["running"], timeout=20)
        proc.send_signal(sig)
        await discord_fake.wait_for(lambda: proc.poll() is not None, timeout=40)
        if finished:
            seaart.hold(False)  # the provider finishes (and bills) it while the bot is away
        move_back(db, DOWN_FOR)
        polls_before, cancels_before = polls(seaart), cancels(seaart)
        start()
        await discord_fake.wait_for(lambda: ended(db), timeout=30)
        assert interaction.original_message_id is not None
        message = discord_fake.messages[interaction.original_message_id]
        await discord_fake.wait_for(lambda: "Generating" not in shown(message), timeout=10)
        await discord_fake.wait_for(lambda: owed(db) == [], timeout=10)
    (job,) = rows(db)
    assert polls(seaart) > polls_before, "the provider was asked about the job after the restart"
    assert len(seaart.creates) == 1
    title = message.embeds[0]["title"]
    if finished:
        assert job["state"] == "delivered", job
        assert len(message.files) == 1 and "Done" in title, title
        assert (job["charge_state"], ledger_kinds(db, job["id"])) == ("committed", ["reserve", "commit"])
        assert cancels(seaart) == cancels_before
    else:
        assert job["state"] == "expired" and job["error_category"] == "expired", job
        assert "did not finish within 10 minute(s)" in job["error_message"]
        assert "did not finish within 10 minute(s)" in shown(message) and not message.files, title
        assert (job["charge_state"], ledger_kinds(db, job["id"])) == ("refunded", ["reserve", "refund"])
        assert cancels(seaart) == cancels_before + 1, "nobody pays for an image never shown"


async def test_a_command_taken_during_the_stop_and_back_after_its_deadline_says_so(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    held_creates: HeldCreates,  # noqa: F811 (the fixture imported above)
) -> None:
    """A command answered during the stop's grace ("The bot is restarting: this goes on as soon as it is
    back") is never sent; the bot is back eleven minutes later. The job whose create was in flight at the stop
    is polled and delivered; the one taken during the stop ends saying the bot was back too late, uncharged,
    and nothing is sent for it."""
    config = write_config(tmp_path, discord_fake, held_creates.base_url, request_timeout=10.0)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        proc = start()
        during = await one_in_flight_and_one_taken_during_a_stop(discord_fake, held_creates, proc, log)
        assert during.original_message_id is not None
        message = discord_fake.messages[during.original_message_id]
        assert "restarting" in shown(message).lower(), shown(message)
        held_creates.release()
        await discord_fake.wait_for(lambda: proc.poll() is not None, timeout=40)
        assert len(seaart.creates) == 1
        # The job the provider took finishes while the bot is away (its next status answer says done).
        seaart.queued_polls = seaart.running_polls = 0
        move_back(db, DOWN_FOR)
        start()
        await discord_fake.wait_for(lambda: ended(db), timeout=30)
        await discord_fake.wait_for(lambda: "back too late" in shown(message), timeout=10)
        await discord_fake.wait_for(lambda: owed(db) == [], timeout=10)
    in_flight, taken_during = rows(db)
    assert len(seaart.creates) == 1, "nothing was sent for the command taken during the stop"
    assert in_flight["state"] == "delivered" and in_flight["charge_state"] == "committed", in_flight
    assert taken_during["message_id"] == message.id
    assert taken_during["state"] == "expired" and taken_during["error_message"] == BACK_TOO_LATE, taken_during
    assert "did not finish" not in shown(message) and "not charged" in shown(message)
    assert (taken_during["charge_state"], ledger_kinds(db, taken_during["id"])) == ("refunded", ["reserve", "refund"])


async def one_in_flight_and_one_taken_during_a_stop(
    discord_fake: FakeDiscord, held: HeldCreates, proc: BotProcess, log: Path
) -> FakeInteraction:
    """The bot process ``proc`` (just started) takes an /imagine whose create the provider holds, is sent
    SIGTERM, and takes a second /imagine during the stop's grace; that second one's interaction."""
    await discord_fake.wait_until_ready(timeout=30)
    await discord_fake.wait_for(lambda: "connected as" in log.read_text(errors="replace"), timeout=20)
    await discord_fake.slash_command("imagine", {"prompt": "in flight"})
    await discord_fake.wait_for(lambda: held.arrived == 1, timeout=20)
    proc.send_signal(signal.SIGTERM)
    await discord_fake.wait_for(lambda: "SIGTERM received" in log.read_text(errors="replace"), timeout=20)
    during = await discord_fake.slash_command("imagine", {"prompt": "during the stop"})
    await discord_fake.wait_for(lambda: during.original_message_id is not None, timeout=10)
    return during
