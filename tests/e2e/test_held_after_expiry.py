"""The bot is killed while Discord holds its answer to /imagine; Discord then makes the answer ("Queued", with
Cancel), and the bot never learns its id. It comes back, and looks for the message of the job it held.

Back more than 15 minutes later, the interaction's token is dead, and the bot used to conclude from that
alone that there was no message: the job ended uncharged as "never shown" while the member's message said
"Queued" for good, its Cancel answering "This job has already finished". Now the bot reads the channel
with its own token for the answer to the job's interaction, and the job goes on (or, past its deadline,
ends) in that message."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.delivery import REPLY_SEARCH_DEPTH
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import BOT_TOKEN
from tests.e2e.bot_process import BotProcess, bot_processes, write_config

ENDED = ("delivered", "expired", "cancelled", "failed")


def rows(db: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM jobs ORDER BY batch_index").fetchall()


def ledger_kinds(db: Path, job_id: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT kind FROM ledger WHERE job_id = ? ORDER BY id", (job_id,))]


def owed(db: Path) -> list[str]:
    """Jobs whose end is still owed to their member's message."""
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT job_id FROM owed_edits")]


def labels(message: FakeMessage) -> list[str]:
    return [str(c.get("label")) for row in message.components for c in row["components"]]


@pytest.mark.parametrize(
    ("down_for", "deadline", "count", "ends"),
    [
        (0, 3600, 1, "delivered"),
        (1200, 3600, 1, "delivered"),
        (1200, None, 1, "expired"),
        (1200, 3600, 2, "delivered"),
        (1200, None, 2, "expired"),
    ],
    ids=[
        "back-at-once",
        "back-twenty-minutes-later",
        "back-past-the-job-s-deadline",
        "a-batch-back-twenty-minutes-later",
        "a-batch-back-past-its-deadline",
    ],
)
async def test_a_command_answered_as_the_bot_died_ends_in_the_member_s_message(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    down_for: int,
    deadline: int | None,
    count: int,
    ends: str,
) -> None:
    """``down_for``: how long the bot stays down (the rows are moved back in time, as that would leave them;
    past 15 minutes Discord refuses the interaction's token too). ``deadline``: the job's, in seconds (None:
    the bot's default, 10 minutes). ``count``: images asked for, shown in one message. Within its deadline
    the member gets what they asked for, charged once; past it, the message says why there is nothing and
    that nothing was charged."""
    config = write_config(
        tmp_path, discord_fake, seaart, jobs="" if deadline is None else f"deadline_seconds = {deadline}"
    )
    db = tmp_path / "bot.sqlite3"
    with bot_processes(config, tmp_path / "bot.log") as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        discord_fake.hold_callbacks()
        interaction = await discord_fake.slash_command(
            "imagine", {"prompt": "answered as the bot died", "count": count}
        )
        await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 1, timeout=20)
        first.send_signal(signal.SIGKILL)  # the bot never learns the answer's message id
        first.wait(timeout=10)
        discord_fake.hold_callbacks(False)  # Discord takes the answer: the member sees it queued, with Cancel
        await discord_fake.wait_for(lambda: interaction.original_message_id is not None, timeout=10)
        assert interaction.original_message_id is not None
        message = discord_fake.messages[interaction.original_message_id]
        opening = message.embeds[0]["title"]
        assert "Cancel" in labels(message), opening
        if down_for:
            discord_fake.expire_token(interaction.token)
            with sqlite3.connect(db) as conn:
                conn.execute(
                    "UPDATE jobs SET created_at = created_at - ?1, next_poll_at = next_poll_at - ?1, "
                    "deadline_at = deadline_at - ?1, token_expires_at = token_expires_at - ?1",
                    (down_for,),
                )

        start()
        await discord_fake.wait_for(lambda: all(row["state"] in ENDED for row in rows(db)), timeout=60)
        jobs = rows(db)
        assert [row["state"] for row in jobs] == [ends] * count, [dict(row) for row in jobs]
        # The end is shown where the member looks, and nothing is left owed to that message.
        await discord_fake.wait_for(lambda: message.embeds[0]["title"] != opening, timeout=10)
        await discord_fake.wait_for(lambda: owed(db) == [], timeout=10)

    assert [row["message_id"] for row in jobs] == [message.id] * count
    assert "Cancel" not in labels(message)  # no button left that would answer "already finished"
    title = message.embeds[0]["title"]
    if ends == "delivered":
        assert len(message.attachments) == count and "Done" in title, title
        assert len(seaart.creates) == count
        for row in jobs:
            assert (row["charge_state"], ledger_kinds(db, row["id"])) == ("committed", ["reserve", "commit"])
    else:
        # Past its deadline the provider was never asked: nothing to wait for, nothing charged.
        assert seaart.creates == [] and not message.attachments
        assert title == ("🍌 Timed out" if count == 1 else f"🍌 None of the {count} images came"), title
        shown = str(message.embeds[0]["fields"])
        assert "back too late to start it" in shown and "not charged" in shown, shown
        for row in jobs:
            assert (row["charge_state"], ledger_kinds(db, row["id"])) == ("refunded", ["reserve", "refund"])
    # Only one message was ever made for the command: the member's own, edited in place.
    assert [m.id for m in discord_fake.messages.values() if m.interaction_id == interaction.id] == [message.id]
    if down_for:
        # With the token dead, the message was found in the channel and edited with the bot's own token; one
        # read of the channel for the command's message, however many candidates it shows (two looked twice).
        assert history_reads(discord_fake) == 1
        edits = [r for r in discord_fake.requests if r.method == "PATCH" and r.path.endswith(f"/{message.id}")]
        assert edits and all(r.headers["Authorization"] == f"Bot {BOT_TOKEN}" for r in edits)
    log = (tmp_path / "bot.log").read_text(errors="replace")
    assert interaction.token not in log


def history_reads(discord_fake: FakeDiscord, since: int = 0) -> int:
    """The bot's reads of the channel's history (each a page of up to 100 messages) since request ``since``."""
    path = f"/channels/{discord_fake.channel_id}/messages"
    return sum(1 for r in discord_fake.requests[since:] if r.method == "GET" and r.path == path)


async def a_command_never_answered(
    discord_fake: FakeDiscord, start: Callable[[], BotProcess], count: int
) -> FakeInteraction:
    """/imagine ``count`` images; the bot is killed while Discord holds its answer, which Discord never makes
    (its token dies with the interaction): nobody ever saw a message, and the held jobs are left behind."""
    first = start()
    await discord_fake.wait_until_ready(timeout=30)
    discord_fake.hold_callbacks()
    interaction = await discord_fake.slash_command("imagine", {"prompt": "never answered", "count": count})
    await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 1, timeout=20)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    discord_fake.expire_token(interaction.token)
    return interaction


def moved_back(db: Path, seconds: int, *, interaction_too: bool) -> None:
    """The rows as a bot down ``seconds`` left them; ``interaction_too``: the interaction's id (a snowflake:
    its time) as well, for a command made that long ago, before what the channel posted meanwhile."""
    earlier = (seconds * 1000) << 22 if interaction_too else 0
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE jobs SET created_at = created_at - ?1, next_poll_at = next_poll_at - ?1, "
            "deadline_at = deadline_at - ?1, token_expires_at = token_expires_at - ?1, "
            "interaction_id = interaction_id - ?2",
            (seconds, earlier),
        )


@pytest.mark.parametrize(
    ("interaction_too", "most_reads"),
    [(True, 1), (False, REPLY_SEARCH_DEPTH // 100)],
    ids=["chatter-while-the-bot-was-down", "chatter-within-the-minute-of-the-command"],
)
async def test_a_batch_never_answered_in_a_busy_channel_is_looked_for_once_and_briefly(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, interaction_too: bool, most_reads: int
) -> None:
    """/imagine count:4, and the bot killed before Discord took the answer, which it then never made; the
    channel goes on (1,200 messages) while the bot is down twenty minutes. The restart looks for the answer
    once for the four candidates, and reads the channel only as far as a minute past the command (Discord
    takes an answer within 3 s): one page when the chatter came later, as it did while the bot was down
    ("chatter-while-the-bot-was-down"); when all of it came within that minute (the fake Discord posts it
    at once, "chatter-within-the-minute-of-the-command"), one search as deep as REPLY_SEARCH_DEPTH, ten pages.
    Before: a search of ten pages per candidate, 40 reads, all made before the bot came online."""
    config = write_config(tmp_path, discord_fake, seaart)
    db = tmp_path / "bot.sqlite3"
    with bot_processes(config, tmp_path / "bot.log") as start:
        await a_command_never_answered(discord_fake, start, 4)
        for i in range(1200):
            await discord_fake.post_message(f"chatter {i}", live=False)
        moved_back(db, 1200, interaction_too=interaction_too)
        since = len(discord_fake.requests)
        start()
        await discord_fake.wait_for(lambda: all(row["state"] in ENDED for row in rows(db)), timeout=60)
    jobs = rows(db)
    assert [(row["state"], row["charge_state"]) for row in jobs] == [("cancelled", "refunded")] * 4
    assert all("not charged" in row["error_message"] for row in jobs)
    assert seaart.creates == []
    assert history_reads(discord_fake, since) <= most_reads, history_reads(discord_fake, since)


async def test_a_restart_comes_online_without_waiting_for_its_looks(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A restart's look for a held job's message is slow (Discord answers two reads of the channel 500, which
    discord.py retries after 1 and 3 s): the bot comes online meanwhile, the job still held, and the look
    then ends it as before. Before, the first look was made before the bot connected: it came online only
    once every held job was settled."""
    config = write_config(tmp_path, discord_fake, seaart)
    db = tmp_path / "bot.sqlite3"
    with bot_processes(config, tmp_path / "bot.log") as start:
        await a_command_never_answered(discord_fake, start, 1)
        moved_back(db, 1200, interaction_too=True)
        since = len(discord_fake.requests)
        discord_fake.fail_next("GET", rf"^/channels/{discord_fake.channel_id}/messages$", status=500, times=2)
        start()
        # Ready after the new process's login (the killed one's socket may not be closed yet).
        await discord_fake.wait_for(lambda: any(r.path == "/users/@me" for r in discord_fake.requests[since:]), 30)
        await discord_fake.wait_until_ready(timeout=30)
        assert [row["state"] for row in rows(db)] == ["queued"], "online while its look goes on"
        await discord_fake.wait_for(lambda: all(row["state"] in ENDED for row in rows(db)), timeout=30)
    (job,) = rows(db)
    assert (job["state"], job["charge_state"]) == ("cancelled", "refunded") and seaart.creates == []
    assert history_reads(discord_fake, since) == 3  # two refused, then the one that found nothing


async def test_a_request_waiting_its_turn_held_as_the_bot_died_still_waits_and_starts_after_a_long_outage(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A member may have one request generating: their second is taken waiting its turn, and the bot is killed as
    Discord holds its answer. Back 20 minutes later (past the 10 minutes a request has), the first has run out of
    time, but the second never started: its time starts when it does. It waits its turn, starts, and is delivered,
    in its message. Before, it ended at once "back too late", though it had never been sent."""
    config = write_config(tmp_path, discord_fake, seaart, jobs="[quotas]\nin_flight_per_user = 1")
    db = tmp_path / "bot.sqlite3"
    seaart.hold(True)
    with bot_processes(config, tmp_path / "bot.log") as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        await discord_fake.slash_command("imagine", {"prompt": "the first, generating"})
        await discord_fake.wait_for(lambda: len(seaart.creates) == 1, timeout=20)
        discord_fake.hold_callbacks()
        waiting = await discord_fake.slash_command("imagine", {"prompt": "the second, waiting its turn"})
        await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 1, timeout=20)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        discord_fake.hold_callbacks(False)
        await discord_fake.wait_for(lambda: waiting.original_message_id is not None, timeout=10)
        message = discord_fake.messages[waiting.original_message_id or 0]
        assert message.embeds[0]["title"] == "🍌 Waiting for your turn…", message.embeds[0]
        discord_fake.expire_token(waiting.token)
        with sqlite3.connect(db) as conn:
            conn.execute(
                "UPDATE jobs SET created_at = created_at - ?1, next_poll_at = next_poll_at - ?1, "
                "deadline_at = deadline_at - ?1, token_expires_at = token_expires_at - ?1",
                (1200,),
            )
        seaart.hold(False)
        start()
        await discord_fake.wait_for(lambda: all(row["state"] in ENDED for row in rows(db)), timeout=60)
        await discord_fake.wait_for(lambda: message.embeds[0]["title"].startswith("🍌 Done"), timeout=10)
    states = {json.loads(row["request_json"])["prompt"]: row["state"] for row in rows(db)}
    assert states == {"the first, generating": "expired", "the second, waiting its turn": "delivered"}, states
    assert [row["message_id"] for row in rows(db) if row["state"] == "delivered"] == [message.id]
