"""`bananacord db audit` beside the running bot: the ledger the real bot wrote for real jobs is sound, and a
ledger altered behind its back is named fault by fault, with exit code 1 (bot/ledger_audit.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from tests.conftest import RunningBot
from tests.e2e.edits import jobs
from tests.test_cli import cli, config


async def test_the_ledger_of_real_jobs_is_sound_and_a_tampered_one_is_named(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    for prompt in ("a red kite", "a blue kite"):
        await discord_fake.slash_command("imagine", {"prompt": prompt})
    await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"] * 2, timeout=30)
    tmp = settings.database.path.parent
    cfg = str(config(tmp, db=settings.database.path))

    code, out = await _audit(tmp, cfg)
    assert code == 0, out
    assert "SQLite's check: ok; 2 job(s), 2 charged (0 running)" in out and ": balanced" in out
    assert "no job charged twice" in out and "PROBLEM" not in out

    first, second = (r["id"] for r in jobs(settings)[:2])
    with closing(sqlite3.connect(settings.database.path)) as conn, conn:
        # A delivered job's charge turned into a refund, and another's reservation gone.
        conn.execute("UPDATE ledger SET kind = 'refund', units = -units WHERE job_id = ? AND kind = 'commit'", (first,))
        conn.execute("DELETE FROM ledger WHERE job_id = ? AND kind = 'reserve'", (second,))
    code, out = await _audit(tmp, cfg)
    assert code == 1, out
    assert f"PROBLEM job {first} (delivered): settled as refund" in out
    assert f"PROBLEM job {second}: 0 reserve rows" in out
    assert f"PROBLEM job {second} (delivered): charge state committed, no reservation" in out
    assert "NOT BALANCED" in out


async def _audit(tmp: Path, cfg: str) -> tuple[int, str]:
    """The CLI beside the bot, without blocking the event loop the fake Discord answers on."""
    result = await asyncio.to_thread(cli, tmp, "db", "audit", "--config", cfg)
    return result.returncode, result.stdout + result.stderr
