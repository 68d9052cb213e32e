"""Decompression bombs, as a result and as a reference, against the bot running as its own process:
refused from the header, and the process's peak memory stays far below what decoding would take."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from bot.testing.providers._base import bomb_png
from tests.e2e.bot_process import start_process, write_config

# The bot idles at about 70 MB here; decoding the 12,600 x 12,600 RGBA bomb alone takes 635 MB.
PEAK_RSS_BOUND_MB = 250


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has ever had, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def states(db: Path) -> list[tuple[str, str | None, str | None]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT state, error_category, error_message FROM jobs ORDER BY created_at").fetchall()


async def test_bombs_are_refused_without_decoding(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    config = write_config(tmp_path, discord_fake, seaart)
    db = tmp_path / "bot.sqlite3"
    bot = start_process(config, tmp_path / "bot.log", real=True)
    try:
        await discord_fake.wait_until_ready(timeout=30)
        seaart.script("hostile:bomb")
        await discord_fake.slash_command("imagine", {"prompt": "a result that explodes"})
        await discord_fake.wait_for(lambda: len(states(db)) == 1 and states(db)[0][0] == "failed", timeout=30)
        attachment = discord_fake.add_attachment(bomb_png(), "innocent.png", "image/png")
        await discord_fake.slash_command("imagine", {"prompt": "a reference that explodes", "image1": attachment})
        await discord_fake.wait_for(lambda: len(states(db)) == 2 and states(db)[1][0] == "failed", timeout=30)
        peak = peak_rss_mb(bot.pid)
    finally:
        bot.send_signal(signal.SIGKILL)
        bot.wait(timeout=10)
    print(f"bot peak RSS after two bombs: {peak:.0f} MB (bound {PEAK_RSS_BOUND_MB} MB)")
    (result, reference) = states(db)
    assert result[1] == "delivery" and "far larger than any this model makes" in (result[2] or "")
    assert reference[1] == "bad_input" and "at most 40 megapixels" in (reference[2] or "")
    assert len(seaart.creates) == 1, "the bomb reference never reached the provider"
    assert peak < PEAK_RSS_BOUND_MB
