"""The bot is killed while Discord holds its answer to /imagine; Discord then makes the answer ("Queued", with
Cancel), and the bot never learns its id. It comes back, and looks for the message of the job it held.

Back more than 15 minutes later, the interaction's token is dead, and the bot used to conclude from that
alone that there was no message: the job ended uncharged as "never shown" while the member's message said
"Queued" for good, its Cancel answering "This job has already finished". Now the bot reads the channel
with its own token for the answer to the job's interaction, and the job goes on (or, past its deadline,
ends) in that message."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import BOT_TOKEN
from tests.e2e.bot_process import bot_processes, write_config

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
        # With the token dead, the message was found in the channel and edited with the bot's own token.
        history = f"/channels/{message.channel_id}/messages"
        assert any(r.method == "GET" and r.path == history for r in discord_fake.requests)
        edits = [r for r in discord_fake.requests if r.method == "PATCH" and r.path.endswith(f"/{message.id}")]
        assert edits and all(r.headers["Authorization"] == f"Bot {BOT_TOKEN}" for r in edits)
    log = (tmp_path / "bot.log").read_text(errors="replace")
    assert interaction.token not in log
