"""The disk under the database stops taking writes while the bot runs (full, or failing), then recovers.

Simulated on the bot's own process with RLIMIT_FSIZE 0 (``resource.prlimit`` from the test): from then on
every write the process makes to a file fails (EFBIG; Python ignores SIGXFSZ), SQLite's included, as on
a disk that is full or has gone bad; reads go on. Raising the limit again is the space coming back.
Nothing may be lost or charged meanwhile, members are told why their command did nothing, and the bot
picks up where it was without a restart.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import sqlite3
from pathlib import Path
from typing import Any

from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.e2e.bot_process import BotProcess, bot_processes, write_config
from tests.e2e.test_rework import press


def rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY created_at")]


def states(db: Path) -> list[str]:
    return [r["state"] for r in rows(db)] if db.exists() else []


def ledger(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT job_id, kind FROM ledger ORDER BY id").fetchall()


def writes_fail(proc: BotProcess, failing: bool) -> None:
    limit = 0 if failing else resource.RLIM_INFINITY
    resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def private_answer(interaction: FakeInteraction) -> str:
    (callback,) = interaction.callbacks
    assert callback["data"]["flags"] & 64, callback  # ephemeral
    return str(callback["data"]["content"])


async def test_a_disk_that_stops_taking_writes_loses_nothing_charges_nothing_and_says_so(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    config = write_config(tmp_path, discord_fake, seaart)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        proc = start()
        await discord_fake.wait_until_ready(timeout=30)
        first = await discord_fake.slash_command("imagine", {"prompt": "before the disk fills"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=20)
        assert first.original_message_id is not None
        shown = discord_fake.messages[first.original_message_id]
        edit = await press(discord_fake, shown, "Edit")  # the form, opened before and submitted during
        await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=20)
        seaart.hold(True)
        await discord_fake.slash_command("imagine", {"prompt": "running when it fills"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered", "running"], timeout=20)

        writes_fail(proc, True)
        seaart.hold(False)  # its image is ready: the bot finds it, and cannot record it
        refused = await discord_fake.slash_command("imagine", {"prompt": "while it is full"})
        await discord_fake.wait_for(lambda: bool(refused.callbacks), timeout=20)
        reroll = await press(discord_fake, shown, "Re-roll")
        await discord_fake.wait_for(lambda: bool(reroll.callbacks), timeout=20)
        submitted = await discord_fake.submit_modal(edit, {"instruction": "make it night"})
        await discord_fake.wait_for(lambda: bool(submitted.callbacks), timeout=20)
        await discord_fake.post_message("make it night", reply_to=first.original_message_id)
        member = discord_fake.member_id
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=20)
        await asyncio.sleep(2)  # polls and steps fail meanwhile
        assert states(db) == ["delivered", "running"]

        writes_fail(proc, False)
        await discord_fake.wait_for(lambda: states(db) == ["delivered", "delivered"], timeout=30)
        after = await discord_fake.slash_command("imagine", {"prompt": "after the space came back"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered"] * 3, timeout=20)
        assert after.callbacks[0]["type"] == 4
    (note,) = discord_fake.dms_to(member)
    answers = [private_answer(refused), private_answer(reroll), private_answer(submitted), note.content or ""]
    for answer in answers:
        assert "cannot save" in answer and "not charged" in answer, answer
    prompts = [c.json["prompt"] for c in seaart.creates]
    assert prompts == ["before the disk fills", "running when it fills", "after the space came back"]
    jobs = rows(db)
    assert [j["charge_state"] for j in jobs] == ["committed"] * 3
    assert sorted(ledger(db)) == sorted((j["id"], kind) for j in jobs for kind in ("reserve", "commit"))
    shown = discord_fake.messages[jobs[1]["message_id"]]
    assert len(shown.files) == 1 and "Done" in str(shown.embeds[0]["title"])


async def test_a_stop_while_the_disk_refuses_writes_exits_cleanly_and_the_next_start_delivers(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """SIGTERM while nothing can be written (the stop's own writes fail too): the process still exits 0 at
    once, and the job whose image came meanwhile, which could not be recorded, is delivered by the next
    start, charged once."""
    config = write_config(tmp_path, discord_fake, seaart)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        proc = start()
        await discord_fake.wait_until_ready(timeout=30)
        seaart.hold(True)
        await discord_fake.slash_command("imagine", {"prompt": "running when it fills"})
        await discord_fake.wait_for(lambda: states(db) == ["running"], timeout=20)
        writes_fail(proc, True)
        seaart.hold(False)
        await asyncio.sleep(1)  # its image is found, and cannot be recorded
        proc.send_signal(signal.SIGTERM)
        await discord_fake.wait_for(lambda: proc.poll() is not None, timeout=30)
        assert proc.returncode == 0 and states(db) == ["running"]
        start()
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=30)
    (job,) = rows(db)
    assert job["charge_state"] == "committed" and ledger(db) == [(job["id"], "reserve"), (job["id"], "commit")]
    assert len(seaart.creates) == 1
