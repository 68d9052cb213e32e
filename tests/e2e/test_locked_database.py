"""The database refuses the bot's writes for a while: another program holds its write lock, or the disk is full.

SQLite lets one writer at a time. An operator's DB browser with an edit not yet written, a `VACUUM` run by
hand, or a backup tool that writes holds the lock, and every write of the bot waits ``busy_timeout`` (5 s by
default; most tests here set 1 s, ``[database] busy_timeout_seconds``, to wait less) and then fails with
"database is locked". A full disk (``RLIMIT_FSIZE`` 0 on the bot's process, as in
test_failing_disk.py) fails them at once. Either way the bot must lose nothing it was given: above all not
a task a provider has made (and bills) whose answer came back while the write could not be made.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.models import GenerationRequest
from bot.store import Database
from bot.store.jobs import JobStore, NewJob
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import answer_given, png_bytes
from tests.e2e.bot_process import BotProcess, bot_processes, write_config
from tests.e2e.test_failing_disk import ledger, rows, states, writes_fail
from tests.e2e.test_rework import press

SETTLED = {"delivered", "failed", "blocked", "cancelled", "expired"}
# The bot's wait for another program's lock in the tests whose point is what follows a refused write, not
# the wait itself; they sleep PAST_BUSY to be sure the write has been refused.
BUSY = 1.0
PAST_BUSY = 2.5


@contextlib.contextmanager
def writes_refused(how: str, proc: BotProcess | None, db: Path) -> Iterator[None]:
    """While inside: "locked", another program holds the database's write lock (BEGIN IMMEDIATE); "full",
    every file write of the bot's process fails."""
    if how == "full":
        assert proc is not None
        writes_fail(proc, True)
        try:
            yield
        finally:
            writes_fail(proc, False)
        return
    assert how == "locked", how
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


@contextlib.asynccontextmanager
async def bot_held_to_discord_s_3_s(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, busy_timeout: float | None = None
) -> AsyncIterator[Path]:
    """The bot started and connected, with the fake Discord refusing any first answer after 3 s, as Discord
    does; yields its database's path."""
    discord_fake.answer_window = 3.0
    config = write_config(tmp_path, discord_fake, seaart, busy_timeout=busy_timeout)
    with bot_processes(config, tmp_path / "bot.log") as start:
        start()
        await discord_fake.wait_until_ready(timeout=30)
        yield tmp_path / "bot.sqlite3"


def warned_without_an_error(log: Path, warning: str) -> None:
    """The bot's log says ``warning`` and has no ERROR line (a refused write is no fault of the bot's)."""
    text = log.read_text(encoding="utf-8")
    assert " ERROR " not in text, text
    assert warning in text


def settled(db: Path) -> bool:
    found = states(db)
    return bool(found) and all(state in SETTLED for state in found)


@pytest.mark.parametrize("how", ["locked", "full"])
async def test_a_create_answered_while_the_database_refuses_writes_is_kept_not_abandoned(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, how: str
) -> None:
    """The create has left (its start is written first) and its answer comes back while no write can be
    made. The task exists at SeaArt and is paid for: the bot keeps its answer and writes it once it can,
    and the member gets the image, charged once. It used to let the write's error end the step; the next
    step found a create started and never recorded, and failed the job as "uncertain" ("the bot
    restarted..."), refunded, with SeaArt's image never fetched."""
    config = write_config(tmp_path, discord_fake, seaart, busy_timeout=BUSY)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        proc = start()
        await discord_fake.wait_until_ready(timeout=30)
        seaart.hold_create_answers(True)
        command = await discord_fake.slash_command("imagine", {"prompt": "answered while nothing can be written"})
        await discord_fake.wait_for(lambda: len(seaart.creates) == 1, timeout=20)
        with writes_refused(how, proc, db):
            seaart.hold_create_answers(False)
            await asyncio.sleep(PAST_BUSY)  # past the bot's busy_timeout: its write has failed
            assert states(db) == ["queued"]
        await discord_fake.wait_for(lambda: settled(db), timeout=40)
    (job,) = rows(db)
    assert job["state"] == "delivered", (job["state"], job["error_message"])
    assert job["provider_job_id"] is not None and job["charge_state"] == "committed"
    assert ledger(db) == [(job["id"], "reserve"), (job["id"], "commit")]
    assert len(seaart.creates) == 1
    assert command.original_message_id is not None
    shown = discord_fake.messages[command.original_message_id]
    assert len(shown.files) == 1 and "Done" in str(shown.embeds[0]["title"])


@pytest.mark.parametrize("how", ["locked", "full"])
async def test_a_job_whose_start_cannot_be_written_after_its_answer_went_starts_once_it_can(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, how: str
) -> None:
    """The command's rows are written and its answer, the job's "Queued" message, is on its way; then the
    database refuses writes, so the job's start (its message and "due now", written after the answer) fails.
    The member sees the job's message: the job must start once the database takes the write, and end
    delivered in that message, charged once. Before, the write's error reached the command, whose member was
    told the database was busy and nothing saved (the answer had gone, so that went nowhere) while the job
    stayed held for an hour under "Queued" (bench/soak.py --seed 139, at a lost answer's look-up)."""
    config = write_config(tmp_path, discord_fake, seaart, busy_timeout=BUSY)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        proc = start()
        await discord_fake.wait_until_ready(timeout=30)
        discord_fake.hold_callbacks()
        command = await discord_fake.slash_command("imagine", {"prompt": "started once it can be written"})
        await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 1, timeout=10)
        assert states(db) == ["queued"]  # recorded, held until its answer is out
        with writes_refused(how, proc, db):
            discord_fake.hold_callbacks(False)  # the answer goes out; the start's write is refused
            await discord_fake.wait_for(lambda: bool(command.callbacks), timeout=5)
            await asyncio.sleep(PAST_BUSY)  # past the bot's busy_timeout: its write has failed
            assert seaart.creates == []
        await discord_fake.wait_for(lambda: settled(db), timeout=40)
    (job,) = rows(db)
    assert job["state"] == "delivered", (job["state"], job["error_message"])
    assert job["charge_state"] == "committed" and ledger(db) == [(job["id"], "reserve"), (job["id"], "commit")]
    assert len(seaart.creates) == 1 and command.original_message_id == job["message_id"]
    shown = discord_fake.messages[command.original_message_id]
    assert len(shown.files) == 1 and "Done" in str(shown.embeds[0]["title"])
    assert len(command.callbacks) == 1 and not command.followup_ids  # nobody was told "busy"
    assert " ERROR " not in log.read_text(encoding="utf-8")


@pytest.mark.parametrize("how", ["locked", "full"])
async def test_a_job_whose_writes_are_refused_is_asked_about_at_its_pace_not_in_a_loop(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, how: str
) -> None:
    """Its image is ready while nothing can be written: the poll that finds it cannot record it, and the
    step fails. The job is due again after ``max_poll_interval_seconds`` (2 s here). Putting that off was
    itself a write, which failed too and left the job due at once: on a full disk the bot asked SeaArt
    about it in a loop, as fast as the loop turned. The log says so in one line a step, no traceback."""
    config = write_config(tmp_path, discord_fake, seaart, max_poll_interval=2.0, busy_timeout=BUSY)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        proc = start()
        await discord_fake.wait_until_ready(timeout=30)
        await running_job(discord_fake, seaart, db, "ready while nothing can be written")
        with writes_refused(how, proc, db):
            seaart.hold(False)
            began = len(seaart.requests)
            await asyncio.sleep(6)  # at its pace, a poll every 2 s or more; in a loop, hundreds
            asked = [r for r in seaart.requests[began:] if r.method == "GET" and r.path.endswith("/status")]
            assert states(db) == ["running"]
        await discord_fake.wait_for(lambda: settled(db), timeout=30)
    assert 1 <= len(asked) <= 5, [round(r.at, 2) for r in asked]
    (job,) = rows(db)
    assert job["state"] == "delivered" and job["charge_state"] == "committed"
    text = log.read_text(encoding="utf-8")
    assert "Traceback" not in text and "never retrieved" not in text, text
    if how == "locked":  # a full disk takes the log's lines too
        assert "step failed, the database refused a write (database is locked); will retry" in text


async def running_job(discord_fake: FakeDiscord, seaart: FakeSeaArt, db: Path, prompt: str) -> int:
    """/imagine for a job that SeaArt holds running; the id of its message."""
    seaart.hold(True)
    command = await discord_fake.slash_command("imagine", {"prompt": prompt})
    await discord_fake.wait_for(lambda: states(db) == ["running"], timeout=20)
    assert command.original_message_id is not None
    return command.original_message_id


def private_answer(interaction: FakeInteraction) -> str:
    """The interaction's one answer, which must be private (ephemeral), as its text."""
    (callback,) = interaction.callbacks
    assert callback["type"] == 4 and callback["data"]["flags"] & 64, callback
    return str(callback["data"]["content"])


@pytest.mark.parametrize(("held", "busy"), [(3.5, 5.0), (4.5, 3.0)])
async def test_a_command_sent_while_another_program_holds_the_database_is_told_in_time_that_it_is_busy(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, held: float, busy: float
) -> None:
    """The job's rows cannot be written in Discord's 3 s. The member is told privately, in time, that the
    database is busy and nothing was charged; nothing is made. Held 3.5 s (past the 2 s the bot gives the
    write, within the write's own 5 s wait), the rows are written after that answer, and are ended at once,
    refunded, before anything starts; held 4.5 s past a 3 s wait, the write fails and nothing is left.
    Before, the member saw "The application did not respond", and in the first case the job went on
    without a message that anyone saw."""
    discord_fake.answer_window = 3.0
    config = write_config(tmp_path, discord_fake, seaart, busy_timeout=busy)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        start()
        await discord_fake.wait_until_ready(timeout=30)
        with writes_refused("locked", None, db):
            command = await discord_fake.slash_command("imagine", {"prompt": "sent while the database is held"})
            await discord_fake.wait_for(lambda: bool(command.callbacks), timeout=5)
            assert command.response_delay is not None and command.response_delay < 3
            await asyncio.sleep(held - 2.0)
        if held < busy:
            await discord_fake.wait_for(lambda: settled(db), timeout=15)
        else:
            await asyncio.sleep(2)  # the write has failed, and nothing comes of the command
    answer = private_answer(command)
    assert "database is busy" in answer and "not charged" in answer
    assert seaart.creates == [] and command.followup_ids == []
    assert all(m.ephemeral for m in discord_fake.messages.values() if m.interaction_id == command.id)
    if held < busy:  # written after the answer, and taken back
        (job,) = rows(db)
        assert (job["state"], job["charge_state"]) == ("cancelled", "refunded")
        assert ledger(db) == [(job["id"], "reserve"), (job["id"], "refund")]
        assert "a request answered 'busy' was written after all; taking it back" in log.read_text(encoding="utf-8")
    else:
        assert rows(db) == [] and ledger(db) == []


async def test_a_command_sent_just_before_a_blocked_write_gives_up_is_told_in_time_too(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A lock held for longer than one write's wait (3 s here): the first command's write waits 3 s and
    fails, and the second command's write starts waiting its own 3 s. The second command, sent 1.5 s after
    the first, is checked 2 s later, half a second into that new wait. It is told "busy" in time all the same: the
    database was held up throughout, one statement after another. Before, the bot judged by the latest
    statement alone (0.5 s old, "not held up"), waited for the write, and the member saw "The application
    did not respond" (found by bench/soak.py --db-locks, seed 126)."""
    async with bot_held_to_discord_s_3_s(tmp_path, discord_fake, seaart, busy_timeout=3.0) as db:
        with writes_refused("locked", None, db):
            first = await discord_fake.slash_command("imagine", {"prompt": "the first, while the database is held"})
            await asyncio.sleep(1.5)
            second = await discord_fake.slash_command("imagine", {"prompt": "the second, as the first write fails"})
            await discord_fake.wait_for(lambda: bool(second.callbacks), timeout=5)
            await asyncio.sleep(5)  # past the second write's own 3 s wait: it has failed, the lock never let go
    for command in (first, second):
        assert command.response_delay is not None and command.response_delay < 3
        assert "database is busy" in private_answer(command)
    assert seaart.creates == [] and rows(db) == [] and ledger(db) == []


async def test_a_burst_of_commands_queued_behind_each_other_s_refused_writes_is_told_in_time(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A busy_timeout of 0.5 s and a lock of 5 s: each write is refused after half a second, and a burst's
    writes wait for each other (one connection), so the eighth is refused about 4 s after it was sent. No
    statement lasted the second that said "held up", so the bot took the wait for a queue of its own and
    answered the last ones after Discord's 3 s ("The application did not respond"; bench/soak.py
    --busy-timeout 0.5, seed 143). Now a statement refused after nearly the whole busy_timeout counts:
    every one is told in time that the database is busy, and nothing is made or charged."""
    async with bot_held_to_discord_s_3_s(tmp_path, discord_fake, seaart, busy_timeout=0.5) as db:
        with writes_refused("locked", None, db):
            commands = [
                await discord_fake.slash_command("imagine", {"prompt": f"one of a burst, {n}"}) for n in range(8)
            ]
            await asyncio.sleep(5)
        await asyncio.sleep(1)
    for command in commands:
        assert command.response_delay is not None and command.response_delay < 3, command.response_delay
        assert "database is busy" in private_answer(command)
    assert seaart.creates == []
    assert all(job["charge_state"] == "refunded" for job in rows(db))


@pytest.mark.parametrize(("held", "busy"), [(3.5, 5.0), (4.5, 3.0)])
async def test_a_moderator_s_command_waiting_on_a_held_database_answers_thinking_in_time_then_the_outcome(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, held: float, busy: float
) -> None:
    """A setting promises nothing before its answer, so its answer may wait for the write: the bot answers
    "thinking…" privately within Discord's 3 s, and then what came of it. Held 3.5 s, the term is added once
    the lock goes, and the answer says so; held 4.5 s, past the write's own wait (3 s here), nothing is
    added and the answer says the database is busy. Before, the member saw "The application did not respond" either way,
    and in the first case the term was added all the same."""
    async with bot_held_to_discord_s_3_s(tmp_path, discord_fake, seaart, busy_timeout=busy) as db:
        with writes_refused("locked", None, db):
            command = await discord_fake.slash_command(
                "mod blockterm add", {"term": "held"}, user_id=discord_fake.moderator_id
            )
            await discord_fake.wait_for(lambda: bool(command.callbacks), timeout=5)
            await asyncio.sleep(max(held - 2.0, 0.0))
        await discord_fake.wait_for(lambda: bool(command.followup_ids), timeout=10)
    assert command.response_delay is not None and command.response_delay < 3
    (callback,) = command.callbacks
    assert callback["type"] == 5 and callback["data"]["flags"] & 64  # "thinking...", privately
    answer = discord_fake.messages[command.followup_ids[0]]
    assert answer.id == command.original_message_id and answer.flags & 64 and not answer.loading
    with sqlite3.connect(db) as conn:
        terms = [row[0] for row in conn.execute("SELECT term FROM blocked_terms")]
    if held < busy:
        assert terms == ["held"] and "held" in str(answer.content)
    else:
        assert terms == [] and "database is busy" in str(answer.content)


@pytest.mark.parametrize("where", ["the job's message", "/jobs"])
async def test_a_cancel_pressed_while_another_program_holds_the_database_is_answered_in_time(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, where: str
) -> None:
    """The click is answered privately within Discord's 3 s (the database is busy). The cancel, written once
    the lock is free, is carried out all the same, as the member asked. Before, "This interaction failed"
    (for /jobs' Cancel until the session after the job's own was mended)."""
    discord_fake.answer_window = 3.0
    config = write_config(tmp_path, discord_fake, seaart)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        start()
        await discord_fake.wait_until_ready(timeout=30)
        shown = discord_fake.messages[
            await running_job(discord_fake, seaart, db, "called off while the database is held")
        ]
        listed = shown
        if where == "/jobs":
            command = await discord_fake.slash_command("jobs", {})
            await discord_fake.wait_for(lambda: command.original_message_id is not None, timeout=10)
            listed = discord_fake.messages[command.original_message_id or 0]
        with writes_refused("locked", None, db):
            if where == "/jobs":
                click = await discord_fake.click(listed.id, listed.components[0]["components"][0]["custom_id"])
            else:
                click = await press(discord_fake, shown, "Cancel")
            await discord_fake.wait_for(lambda: bool(click.callbacks), timeout=5)
            await asyncio.sleep(1.5)
        await discord_fake.wait_for(lambda: settled(db), timeout=30)
        await discord_fake.wait_for(lambda: "Cancel" in str(shown.embeds[0]["title"]), timeout=10)
        await discord_fake.wait_for(lambda: [j.cancelled for j in seaart.jobs.values()] == [True], timeout=10)
    assert click.response_delay is not None and click.response_delay < 3
    assert "database is busy" in private_answer(click)
    (job,) = rows(db)
    assert job["state"] == "cancelled" and job["charge_state"] == "refunded"
    assert shown.files == []


async def database_made(start: Callable[[], BotProcess], discord_fake: FakeDiscord) -> None:
    """A first bot made the database (its schema in place) and stopped: the next start is the one tested."""
    first = start()
    await discord_fake.wait_until_ready(timeout=30)
    first.terminate()
    await discord_fake.wait_for(lambda: first.poll() is not None, timeout=30)


async def test_a_press_whose_reads_queue_behind_a_held_write_is_told_in_time_that_the_database_is_busy(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The bot has one connection: while one of its writes waits for another program's lock, its reads wait
    behind it. A Re-roll pressed just then reads its job, the member's preferences and the server's rules
    before it writes anything, and those reads waited up to 5 s: the answer came after Discord's 3 s ("This
    interaction failed"; bench/soak.py --db-locks, seed 127, for Edit, Cancel and "Edit with Nano Banana").
    Now a press still reading when its 2 s are up, with the database held up, has done nothing yet: it is
    called off and the member reads privately that the database is busy. Nothing is made or charged."""
    async with bot_held_to_discord_s_3_s(tmp_path, discord_fake, seaart) as db:
        first = await discord_fake.slash_command("imagine", {"prompt": "made before the database is held"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=20)
        shown = discord_fake.messages[first.original_message_id or 0]
        with writes_refused("locked", None, db):
            # A write of the bot's that waits for the lock: a new job's rows (answered "busy" itself at 2 s).
            command = await discord_fake.slash_command("imagine", {"prompt": "its rows wait for the lock"})
            await asyncio.sleep(1.0)  # its reads done, its write waiting: the press's reads queue behind it
            click = await press(discord_fake, shown, "Re-roll")
            await discord_fake.wait_for(lambda: bool(click.callbacks), timeout=5)
            await asyncio.sleep(4.0)  # past the command's write's 5 s: it has failed
        await asyncio.sleep(1.0)
    assert click.response_delay is not None and click.response_delay < 3
    assert "database is busy" in private_answer(click)
    assert "database is busy" in private_answer(command)
    assert states(db) == ["delivered"] and len(seaart.creates) == 1
    assert ledger(db) == [(rows(db)[0]["id"], "reserve"), (rows(db)[0]["id"], "commit")]


async def test_a_batch_image_shown_while_another_program_holds_the_database_is_recorded_later_without_an_error(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A candidate of a batch is shown on its message, and the row that says so cannot be written: another
    program holds the lock. That is no fault of the bot's: a WARNING line, and the delivery is tried again
    once the lock is free (showing it again replaces its own upload). Before, it was "unexpected error while
    delivering" with a traceback, an ERROR (bench/soak.py --db-locks, seed 127), and the refusal counted
    against the job's delivery attempts, as a failed upload does."""
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    async with bot_held_to_discord_s_3_s(tmp_path, discord_fake, seaart, busy_timeout=BUSY):
        seaart.hold(True)
        command = await discord_fake.slash_command("imagine", {"prompt": "two, one shown while held", "count": 2})
        await discord_fake.wait_for(lambda: states(db) == ["running"] * 2, timeout=20)
        discord_fake.hold_edits(True)
        seaart.release(next(iter(seaart.jobs)))
        await discord_fake.wait_for(lambda: discord_fake.edits_waiting > 0 and "succeeded" in states(db), timeout=10)
        with writes_refused("locked", None, db):
            discord_fake.hold_edits(False)  # shown; its row waits for the lock, busy_timeout, and is refused
            await asyncio.sleep(PAST_BUSY + 0.5)
        seaart.hold(False)
        await discord_fake.wait_for(lambda: states(db) == ["delivered"] * 2, timeout=30)
    message = discord_fake.messages[command.original_message_id or 0]
    assert len(message.files) == 2
    assert [job["delivery_attempts"] for job in rows(db)] == [1, 1]
    assert sorted(kind for _, kind in ledger(db)) == ["commit", "commit", "reserve", "reserve"]
    warned_without_an_error(log, "the database refused a write")


async def test_an_end_shown_while_another_program_holds_the_database_leaves_its_debt_without_an_error(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A job's end is written with a note that its message still owes the edit; the edit is made, and the
    note cannot be cleared: another program holds the lock. No fault of the bot's, and nothing is lost (a
    restart would redraw the end once more): a WARNING line. Before, an ERROR with a traceback ("could not
    clear the final edit owed", bench/soak.py --db-locks, seed 127)."""
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    async with bot_held_to_discord_s_3_s(tmp_path, discord_fake, seaart, busy_timeout=BUSY):
        shown = discord_fake.messages[await running_job(discord_fake, seaart, db, "ended while the database is held")]
        discord_fake.hold_edits(True)
        click = await press(discord_fake, shown, "Cancel")
        await discord_fake.wait_for(lambda: click.acknowledged and states(db) == ["cancelled"], timeout=10)
        await discord_fake.wait_for(lambda: discord_fake.edits_waiting > 0, timeout=10)
        with writes_refused("locked", None, db):
            discord_fake.hold_edits(False)  # the end is shown; clearing its debt waits and is refused
            await discord_fake.wait_for(lambda: "Cancelled" in str(shown.embeds[0]["title"]), timeout=10)
            await asyncio.sleep(PAST_BUSY)
    warned_without_an_error(
        log, "could not clear the final edit owed (a restart redraws it): the database refused the write"
    )


WAITING = "is locked by another program; waiting up to 30 s for it"


async def test_a_bot_started_while_another_program_holds_the_database_waits_for_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Another program holds the write lock when the bot starts (a restart while someone inspects the
    database): the bot waits, says so in one line, and serves once the lock is gone. It used to exit 2 at
    once with "config error: [database] path ... cannot be used (database is locked). Point it at a SQLite
    file in a folder the bot can write to", the wrong cause and the wrong advice."""
    config = write_config(tmp_path, discord_fake, seaart, busy_timeout=BUSY)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        await database_made(start, discord_fake)
        with writes_refused("locked", None, db):
            second = start()
            await discord_fake.wait_for(lambda: WAITING in log.read_text(encoding="utf-8"), timeout=30)
            await asyncio.sleep(1.5)  # past more than one try: it waits on (it used to exit at once)
            assert second.poll() is None, log.read_text(encoding="utf-8")
        await discord_fake.wait_until_ready(timeout=30)
        await discord_fake.slash_command("imagine", {"prompt": "after the wait"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=20)
    assert log.read_text(encoding="utf-8").count(WAITING) == 1  # said once, not at every try


async def test_a_bot_started_while_the_database_stays_locked_exits_saying_why(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    config = write_config(tmp_path, discord_fake, seaart)
    config.write_text(config.read_text().replace("[database]\n", "[database]\nbusy_wait_seconds = 2\n"))
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        await database_made(start, discord_fake)
        with writes_refused("locked", None, db):
            second = start()
            await discord_fake.wait_for(lambda: second.poll() is not None, timeout=30)
    assert second.returncode == 1
    last = log.read_text(encoding="utf-8").strip().splitlines()[-1]
    assert last.startswith("bananacord: the database ") and "stayed locked by another program for " in last
    assert "config error" not in last


async def test_a_message_deleted_while_the_database_is_locked_ends_its_job_when_it_is_free(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The deletion's cancel cannot be written (the handler's write fails after busy_timeout): one WARNING
    line, not discord.py's "Ignoring exception" with a traceback, and nothing is lost by it: the job's next
    edit finds its message gone, and it ends cancelled and uncharged, its image never fetched. That edit's
    own cancel is refused too (the lock outlasts busy_timeout): the job's next step writes it again before
    anything else. Before, that step polled on, found the image ready and fetched it for nobody."""
    config = write_config(tmp_path, discord_fake, seaart, max_poll_interval=1.0, busy_timeout=BUSY)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        start()
        await discord_fake.wait_until_ready(timeout=30)
        message_id = await running_job(discord_fake, seaart, db, "deleted while the database is held")
        with writes_refused("locked", None, db):
            await discord_fake.delete_messages(message_id)
            await asyncio.sleep(PAST_BUSY)  # the handler's write has failed
            assert states(db) == ["running"]
        seaart.hold(False)
        await discord_fake.wait_for(lambda: settled(db), timeout=30)
    (job,) = rows(db)
    assert (job["state"], job["charge_state"]) == ("cancelled", "refunded")
    assert not any(r.path.endswith(".png") for r in seaart.requests)  # the image was never downloaded
    text = log.read_text(encoding="utf-8")
    assert "on_raw_message_delete: the database refused a write (database is locked)" in text
    assert "Traceback" not in text and "Ignoring exception" not in text


async def test_a_held_job_whose_command_was_answered_busy_is_not_started_in_that_private_answer(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The rows of a command answered "busy" were written after the answer, and the bot died before it
    took them back: the next start looks for the job's message, finds the private "busy" answer, and must
    not take it for the job's (an image would go, charged, where only its member sees it, after being told
    nothing was made). The job ends uncharged, nothing sent to SeaArt."""
    discord_fake.answer_window = 3.0
    config = write_config(tmp_path, discord_fake, seaart)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        with writes_refused("locked", None, db):
            command = await discord_fake.slash_command("imagine", {"prompt": "answered busy, written later"})
            await discord_fake.wait_for(lambda: bool(command.callbacks), timeout=5)
            first.kill()  # before the write: the bot dies with the member told "busy"
            first.wait(timeout=10)
        # What the dead bot's late write would have left: the job, held, with the command's token.
        store = Database(db)
        await store.connect()
        try:
            await JobStore(store).create_batch(
                [
                    NewJob(
                        provider="seaart",
                        model="nano_banana_2",
                        request=GenerationRequest(model="nano_banana_2", prompt="answered busy, written later"),
                        guild_id=discord_fake.guild_id,
                        channel_id=discord_fake.channel_id,
                        user_id=discord_fake.member_id,
                        application_id=discord_fake.application_id,
                        interaction_id=command.id,
                        interaction_token=command.token,
                        token_expires_at=time.time() + 900,
                    )
                ],
                now=time.time(),
                deadline_seconds=600,
                start_at=time.time() + 3600,
            )
        finally:
            await store.close()
        start()
        await discord_fake.wait_for(lambda: settled(db), timeout=30)
    (job,) = rows(db)
    assert job["state"] == "cancelled" and job["message_id"] is None
    assert seaart.creates == []
    assert "database is busy" in private_answer(command)


async def test_the_edit_menu_used_while_another_program_holds_the_database_is_answered_in_time(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """ "Edit with Nano Banana" keeps the form's images in SQLite before it opens the form. Past Discord's
    window the member reads that the database is busy; before, the form's answer came too late (404,
    Unknown interaction: "This interaction failed") and the log had an ERROR with a traceback (found by
    bench/soak.py --db-locks)."""
    discord_fake.answer_window = 3.0
    config = write_config(tmp_path, discord_fake, seaart)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        start()
        await discord_fake.wait_until_ready(timeout=30)
        photo = discord_fake.add_attachment(png_bytes(), "photo.png", "image/png")
        post = await discord_fake.post_message("my cat", attachments=[photo])
        with writes_refused("locked", None, db):
            used = await discord_fake.message_command("Edit with Nano Banana", post.id)
            await discord_fake.wait_for(lambda: bool(used.callbacks), timeout=5)
            await asyncio.sleep(4)  # the form's write, taken or failed, comes to nothing
    assert used.response_delay is not None and used.response_delay < 3
    assert "database is busy" in private_answer(used)
    assert rows(db) == [] and seaart.creates == []
    assert " ERROR " not in log.read_text(encoding="utf-8")


async def test_a_reply_refused_while_another_program_holds_the_database_is_told_without_an_error(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A banned member replies to an image asking for an edit while the bot's gateway session is lost: the
    new session's catch-up finds the reply and refuses it (no write needed), and while its DM is on the way
    another program takes the database. The member gets the note; keeping that it was sent is a write the
    lock refuses, which is a warning. Before, that write's error escaped the reply and the catch-up logged
    it at ERROR with a traceback (found by `bench/soak.py --callbacks --seed 150`)."""
    config = write_config(tmp_path, discord_fake, seaart, busy_timeout=BUSY)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    member = discord_fake.member_id

    def connected(times: int) -> bool:
        return log.read_text(encoding="utf-8").count("bot.app: connected as") >= times

    def dm_failed() -> bool:
        return any(r.path == "/users/@me/channels" and r.status == 500 for r in discord_fake.requests)

    with bot_processes(config, log) as start:
        start()
        await discord_fake.wait_for(lambda: connected(1), timeout=30)  # its guilds too: a session to lose
        first = await discord_fake.slash_command("imagine", {"prompt": "a harbour at dawn"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=20)
        ban = await discord_fake.slash_command(
            "mod ban", {"member": member, "reason": "spam"}, user_id=discord_fake.moderator_id
        )
        await answer_given(discord_fake, ban)
        assert first.original_message_id is not None
        # The DM's first try fails (discord.py tries again a second later): the lock is taken meanwhile.
        discord_fake.fail_next("POST", r"/users/@me/channels$", status=500)
        # Discord drops the connection and will not resume the session: the reply reaches nobody, and the
        # new session's catch-up reads it from the channel.
        await discord_fake.drop_gateway(forget_sessions=True)
        reply = await discord_fake.post_message("make it night", reply_to=first.original_message_id, live=False)
        await discord_fake.wait_for(dm_failed, timeout=20)
        with writes_refused("locked", None, db):
            await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=10)
            await asyncio.sleep(PAST_BUSY)  # keeping that the note went has been refused by now
    (note,) = discord_fake.dms_to(member)
    assert "banned from using this bot" in (note.content or "") and f"/{reply.id}" in (note.content or "")
    assert states(db) == ["delivered"] and len(seaart.creates) == 1
    warned_without_an_error(log, f"reply {reply.id}: told, but could not keep that it was (database is locked)")
