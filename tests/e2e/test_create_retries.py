"""A create the provider refused, waiting to be tried again, when the bot dies (bot/create_attempts.py).

The bot writes that a create may be in flight before it leaves, and a next start that finds that mark on
a queued job fails it as "uncertain" rather than risk paying twice. A create answered 429 or 5xx waits and
is tried again; nothing of it is outstanding during that wait, so the mark must not say otherwise.
"""

from __future__ import annotations

import signal
from pathlib import Path

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.e2e.bot_process import bot_processes, write_config
from tests.e2e.test_failing_disk import ledger, rows
from tests.e2e.test_locked_database import settled


async def test_a_create_waiting_to_retry_a_refusal_when_the_bot_dies_is_sent_again_by_the_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """SeaArt refuses creates for a while (503, "come back in 2 s"); the bot waits to try again and is
    SIGKILLed in that wait. The next start sends the create again, and the member gets the image in the
    message they saw, charged once, one task made. Before, the row still said a create might be in flight
    and the next start failed the job as uncertain ("The bot restarted while sending this request..."):
    every job caught in an outage's retries by a crash (bench/soak.py --seed 143: 36 at one kill)."""
    config = write_config(tmp_path, discord_fake, seaart)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        seaart.outage(60, retry_after=2)
        command = await discord_fake.slash_command("imagine", {"prompt": "sent again after a crash"})
        await discord_fake.wait_for(lambda: len(seaart.creates) == 1, timeout=20)
        # Refused at once; the next attempt is 2 s away. The row's mark is cleared after the refusal comes
        # back (bot/create_attempts.py settled): waited for, not slept on, before the kill.
        await discord_fake.wait_for(
            lambda: [(job["state"], job["submit_started_at"]) for job in rows(db)] == [("queued", None)], timeout=10
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert len(seaart.creates) == 1 and seaart.jobs == {}
        assert [(job["state"], job["submit_started_at"]) for job in rows(db)] == [("queued", None)]
        seaart.outage(0)
        start()
        await discord_fake.wait_for(lambda: settled(db), timeout=40)
    (job,) = rows(db)
    assert job["state"] == "delivered", (job["state"], job["error_message"])
    assert job["charge_state"] == "committed" and ledger(db) == [(job["id"], "reserve"), (job["id"], "commit")]
    assert len(seaart.jobs) == 1 and len(seaart.creates) == 2
    assert command.original_message_id == job["message_id"]
    shown = discord_fake.messages[command.original_message_id]
    assert len(shown.files) == 1 and "Done" in str(shown.embeds[0]["title"])
    assert " ERROR " not in log.read_text(encoding="utf-8")
