"""/usage export of a busy server's ledger: compressed to fit the channel's upload limit, and refused
privately (saying what to do instead) where even that does not fit."""

from __future__ import annotations

import csv
import gzip
import io
import sqlite3
import time
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.testing.discord import ADMIN_PERMISSIONS, FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import BOT_TOKEN, SEAART_KEY, Clock, first_answer, make_settings, start_bot

ROWS = 60_000  # ~11 MB of CSV: over the 10 MiB a plain channel takes


def busy_ledger(settings: Settings, guild_id: int) -> None:
    now = time.time() - 60
    rows = [
        (
            *(guild_id, 10**18 + n % 300, f"{n:016x}", "reserve" if n % 2 else "commit", 1, 40_000),
            *("nano_banana_2", "seaart", "1K", now - n, now - n, "job accepted" if n % 2 else "image delivered", 0),
        )
        for n in range(ROWS)
    ]
    with sqlite3.connect(settings.database.path) as conn:
        conn.executemany(
            "INSERT INTO ledger (guild_id, user_id, job_id, kind, units, cost_micro_usd, model, provider, size, "
            "window_at, created_at, reason, bypass) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )


async def exported(discord_fake: FakeDiscord) -> tuple[FakeInteraction, dict[str, Any]]:
    """The export and its answer (sixty thousand rows to read: on a loaded machine, after "thinking…"). Since two
    days ago, not `period:week`: the rows go back 17 hours, and on a Monday morning the week had not held them."""
    since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * 86_400))
    export = await discord_fake.slash_command(
        "usage export", {"since": since}, user_id=discord_fake.admin_id, permissions=ADMIN_PERMISSIONS
    )
    return export, (await first_answer(discord_fake, export, timeout=60))["data"]


async def export_with_limit(tmp_path: Path, limit: int) -> tuple[FakeDiscord, FakeInteraction, dict[str, Any]]:
    async with (
        FakeDiscord(bot_token=BOT_TOKEN, attachment_size_limit=limit) as discord_fake,
        FakeSeaArt(api_key=SEAART_KEY) as seaart,
    ):
        settings = make_settings(tmp_path, discord_fake, seaart)
        running = await start_bot(settings, discord_fake, Clock())
        try:
            busy_ledger(settings, discord_fake.guild_id)
            return discord_fake, *await exported(discord_fake)
        finally:
            await running.close()


async def test_a_busy_servers_export_is_sent_compressed(tmp_path: Path) -> None:
    discord_fake, export, data = await export_with_limit(tmp_path, 10 * 1024 * 1024)
    assert data["flags"] & 64, "privately"
    assert data["content"] == f"{ROWS:,} ledger row(s), as a gzip-compressed CSV."
    assert export.original_message_id is not None
    [file] = discord_fake.messages[export.original_message_id].files
    assert file.filename.endswith(".csv.gz") and len(file.data) < 10 * 1024 * 1024
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(file.data).decode())))
    assert len(rows) == ROWS and {r["kind"] for r in rows} == {"reserve", "commit"}


async def test_an_export_over_the_upload_limit_even_compressed_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    discord_fake, export, data = await export_with_limit(tmp_path, 256 * 1024)
    assert data["flags"] & 64, "privately"
    assert "Pick a shorter period" in data["content"], data
    assert "`bananacord usage --format csv`" in data["content"]
    assert export.original_message_id is None or not discord_fake.messages[export.original_message_id].files
