"""Results that come inside the provider's answer (Gemini's base64 image), many at once, against the bot
running as its own process: each is delivered whole, and the process's peak memory stays under a bound
that does not grow with the number of jobs (issue 10). And, in process, a kept result survives a restart
between its answer and its delivery, and leaves no file behind.

Before: twenty 2K Gemini results of 12.6 MB arriving together took the bot far past the bound (1.9 GB
with 17 MB ones): every answer read into memory at once, each body kept alive by a reference cycle
until the collector ran, and each image's bytes kept in its row and in the runner's cache of unfinished
jobs until delivered."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.result_images import MAX_RESULT_IMAGES
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeGemini
from bot.testing.providers._base import noise_png
from tests.conftest import BOT_TOKEN, Clock, start_bot
from tests.e2e.bot_process import bot_env, discord_and_database, start_process
from tests.e2e.test_failover import Fakes, rows
from tests.e2e.test_memory_bounds import peak_rss_mb
from tests.e2e.test_reencode_memory import delivered

JOBS = 20
GEMINI_KEY = "test-gemini-key"
# Measured on this 2-core machine: the bot idles at about 70 MB and peaked at 186-205 MB with twenty
# 12.6 MB results at once. The bound: idle + 2 answer slots (bot/imagework.py AnswerGate) of an answer
# being read and parsed (17 MB of base64, its 17 MB string, the 12.6 MB image) + 8 spools of 4 MiB +
# 50 MB for buffers, threads and arenas. The code before went past it: with the answers taking only
# the memory gate's 8 slots it peaked at 288-293 MB here; before answers waited for any slot, at 1.4 GB.
# Once, in the full suite on three test processes (2026-12-07), it peaked at 252 MB (alone 176-210 MB that hour,
# three at once too): the bound has 20 MB more for a loaded machine, still under what the code before took.
PEAK_RSS_BOUND_MB = 270
CALLS = 16
# The bot idles at about 70 MB; with the references on disk it held 107-110 MB with these calls in
# flight, the code before 716 MB (1,111 MB with twenty calls of two 5.9 MB references).
REFERENCES_BOUND_MB = 300


def last_state(settings: Settings) -> str | None:
    found = rows(settings)
    return str(found[-1]["state"]) if found else None


async def stopped_before_its_upload(discord_fake: FakeDiscord, settings: Settings, prompt: str) -> FakeInteraction:
    """A Gemini /imagine whose image is in hand (kept as a file) while Discord is slow to take the upload,
    and the bot stopped then: the job is left succeeded, its delivery still to do. Edits stay held."""
    discord_fake.hold_edits(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": prompt, "model": "nano_banana_pro"})
        await discord_fake.wait_for(lambda: last_state(settings) == "succeeded", timeout=20)
        await discord_fake.wait_for(lambda: discord_fake.edits_waiting > 0, timeout=10)
    finally:
        await running.close()
    return interaction


async def delivered_after_a_restart(
    discord_fake: FakeDiscord, settings: Settings, interaction: FakeInteraction
) -> bytes:
    """After ``stopped_before_its_upload``: edits let through, the bot started again until the job is
    delivered; returns the image posted on the member's message."""
    discord_fake.hold_edits(False)
    await asyncio.sleep(0.2)  # the stopped bot's held edit, carried out or dropped
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await discord_fake.wait_for(lambda: last_state(settings) == "delivered", timeout=20)
        # Its kept files are removed after the row says delivered, and a stop cancels that step: waited for.
        await discord_fake.wait_for(lambda: kept_files_of(settings, rows(settings)[-1]["id"]) == [], timeout=10)
    finally:
        await running.close()
    assert interaction.original_message_id is not None
    (file,) = discord_fake.messages[interaction.original_message_id].files
    return file.data


def kept_files_of(settings: Settings, job_id: str) -> list[str]:
    """The files kept in the results folder for the job ``job_id``."""
    kept = Path(f"{settings.database.path}.results")
    return [name for name in os.listdir(kept) if name.startswith(f"{job_id}-")] if kept.is_dir() else []


def gemini_config(tmp_path: Path, discord_fake: FakeDiscord, gemini: FakeGemini) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
{discord_and_database(tmp_path, discord_fake)}
[providers.seaart]
enabled = false
[providers.gemini]
enabled = true
base_url = "{gemini.base_url}"
request_timeout = 60
[quotas]
enabled = false
[jobs]
concurrency = 64
""",
        encoding="utf-8",
    )
    return config


async def test_many_inline_results_at_once_stay_within_a_memory_bound(tmp_path: Path) -> None:
    async with (
        FakeDiscord(bot_token=BOT_TOKEN, attachment_size_limit=25 * 1024 * 1024) as discord_fake,
        FakeGemini(api_key=GEMINI_KEY, hang_seconds=120, images="noise") as gemini,
    ):
        db = tmp_path / "bot.sqlite3"
        env = {**bot_env(), "GEMINI_API_KEY": GEMINI_KEY}
        bot = start_process(gemini_config(tmp_path, discord_fake, gemini), tmp_path / "bot.log", env=env, real=True)
        try:
            await discord_fake.wait_until_ready(timeout=30)
            gemini.hold(True)
            options: dict[str, Any] = {"model": "nano_banana_pro", "resolution": "2K"}
            interactions = [
                await discord_fake.slash_command("imagine", {"prompt": f"poster {n}", **options}) for n in range(JOBS)
            ]
            await discord_fake.wait_for(lambda: len(gemini.jobs) == JOBS, timeout=60)
            # Every answer made before any is released, so they all arrive together.
            png = await gemini._png((2048, 2048))
            gemini.hold(False)
            await discord_fake.wait_for(lambda: delivered(db) == JOBS, timeout=180)
            peak = peak_rss_mb(bot.pid)
            results = tmp_path / "bot.sqlite3.results"

            def kept() -> list[str]:
                return sorted(os.listdir(results)) if results.is_dir() else []

            # A job's file goes just after its row says delivered: the last one may still be going.
            with contextlib.suppress(TimeoutError):
                await discord_fake.wait_for(lambda: kept() == [], timeout=10)
            left = kept()
        finally:
            bot.send_signal(signal.SIGKILL)
            bot.wait(timeout=10)
    print(f"bot peak RSS with {JOBS} inline {len(png) / 1e6:.1f} MB results at once: {peak:.0f} MB")
    digest = hashlib.sha256(png).hexdigest()
    for interaction in interactions:
        assert interaction.original_message_id is not None
        (file,) = discord_fake.messages[interaction.original_message_id].files
        assert hashlib.sha256(file.data).hexdigest() == digest  # whole, as Gemini made it
    assert left == []  # every kept result went once delivered
    with sqlite3.connect(db) as conn:
        longest = conn.execute("SELECT MAX(LENGTH(result_json) + LENGTH(handle_json)) FROM jobs").fetchone()[0]
    assert longest < 10_000, "no image's bytes in a row"
    assert peak < PEAK_RSS_BOUND_MB


async def test_reference_images_sent_inline_wait_on_disk_while_gemini_draws(tmp_path: Path) -> None:
    """Gemini takes references inside the request, held for the whole call (minutes on a busy day). With
    sixteen calls in flight, each with two 4.3 MB references, the bot held 1.1 GB (the images, their
    base64, the JSON text); now the images wait in temporary files and are encoded as the body leaves."""
    async with (
        FakeDiscord(bot_token=BOT_TOKEN) as discord_fake,
        FakeGemini(api_key=GEMINI_KEY, hang_seconds=120) as gemini,
    ):
        pngs = [await asyncio.to_thread(noise_png, 1200 + n, 1200) for n in range(2)]
        env = {**bot_env(), "GEMINI_API_KEY": GEMINI_KEY}
        bot = start_process(gemini_config(tmp_path, discord_fake, gemini), tmp_path / "bot.log", env=env, real=True)
        try:
            await discord_fake.wait_until_ready(timeout=30)
            gemini.hold(True)
            for n in range(CALLS):
                references = {
                    f"image{i + 1}": discord_fake.add_attachment(png, f"ref{i}.png", "image/png")
                    for i, png in enumerate(pngs)
                }
                await discord_fake.slash_command("imagine", {"prompt": f"collage {n}", **references})
            await discord_fake.wait_for(lambda: len(gemini.jobs) == CALLS, timeout=120)
            held = peak_rss_mb(bot.pid)  # every call made and waiting for Google's answer
            gemini.hold(False)
            await discord_fake.wait_for(lambda: delivered(tmp_path / "bot.sqlite3") == CALLS, timeout=120)
        finally:
            bot.send_signal(signal.SIGKILL)
            bot.wait(timeout=10)
    print(f"bot peak RSS with {CALLS} calls in flight, two {len(pngs[0]) / 1e6:.1f} MB references each: {held:.0f} MB")
    # Every reference arrived whole, in the member's order.
    for call in gemini.jobs.values():
        assert [data for _, data in call.references] == pngs
    assert held < REFERENCES_BOUND_MB


async def test_a_kept_inline_result_survives_a_restart_before_its_delivery(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    fakes = Fakes()
    async with fakes.seaart, fakes.kie, fakes.segmind, fakes.gemini:
        settings = fakes.settings(tmp_path, discord_fake, ["gemini"])
        kept = Path(f"{settings.database.path}.results")
        interaction = await stopped_before_its_upload(discord_fake, settings, "kept")
        (job,) = rows(settings)
        name = f"{job['id']}-1"
        assert f'"file":"{name}"' in job["result_json"] and len(job["result_json"]) < 2_000
        assert sorted(os.listdir(kept)) == [name]
        png = (kept / name).read_bytes()
        (kept / "0123456789abcdef-1").write_bytes(b"left by a job that no longer exists")

        assert await delivered_after_a_restart(discord_fake, settings, interaction) == png
    assert os.listdir(kept) == []  # the delivered one and the stray one
    assert '"file":null' in rows(settings)[-1]["result_json"]


async def test_a_result_that_cannot_be_kept_as_a_file_is_delivered_from_its_row(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """A folder the bot cannot write (here a file stands where it would be): the paid-for image is not
    lost; it waits in the row, as before results were kept as files."""
    fakes = Fakes()
    async with fakes.seaart, fakes.kie, fakes.segmind, fakes.gemini:
        settings = fakes.settings(tmp_path, discord_fake, ["gemini"])
        Path(f"{settings.database.path}.results").write_bytes(b"not a folder")
        running = await start_bot(settings, discord_fake, Clock())
        try:
            interaction = await discord_fake.slash_command(
                "imagine", {"prompt": "no folder", "model": "nano_banana_pro"}
            )
            await discord_fake.wait_for(lambda: last_state(settings) == "delivered", timeout=20)
        finally:
            await running.close()
        png = await fakes.gemini._png((1024, 1024))
    assert interaction.original_message_id is not None
    (file,) = discord_fake.messages[interaction.original_message_id].files
    assert file.data == png


async def test_a_flood_of_inline_images_keeps_only_what_is_delivered(tmp_path: Path, discord_fake: FakeDiscord) -> None:
    """A Segmind answer with fifty base64 images: four files are kept (MAX_RESULT_IMAGES, what a delivery
    posts), not fifty, and none is left once they are posted."""
    fakes = Fakes()
    async with fakes.seaart, fakes.kie, fakes.segmind, fakes.gemini:
        settings = fakes.settings(tmp_path, discord_fake, ["segmind"])
        kept = Path(f"{settings.database.path}.results")
        fakes.segmind.script("v2_many_base64")
        discord_fake.hold_edits(True)  # the images in hand, not yet posted
        running = await start_bot(settings, discord_fake, Clock())
        try:
            interaction = await discord_fake.slash_command("imagine", {"prompt": "one of many"})
            await discord_fake.wait_for(lambda: last_state(settings) == "succeeded", timeout=20)
            files = sorted(os.listdir(kept))
            discord_fake.hold_edits(False)
            await discord_fake.wait_for(lambda: last_state(settings) == "delivered", timeout=20)
            # The files are removed after the row says delivered, and a stop cancels that step: waited for.
            await discord_fake.wait_for(lambda: os.listdir(kept) == [], timeout=10)
        finally:
            await running.close()
    job_id = rows(settings)[-1]["id"]
    assert files == [f"{job_id}-{n}" for n in range(1, MAX_RESULT_IMAGES + 1)]
    assert interaction.original_message_id is not None
    assert len(discord_fake.messages[interaction.original_message_id].files) == MAX_RESULT_IMAGES
    assert os.listdir(kept) == []


async def test_a_kept_result_removed_from_under_the_bot_fails_its_job_clearly_and_uncharged(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """The results folder cleared while the bot was down: the member is told the image was lost, and the
    job ends refunded, not retried for ten minutes."""
    fakes = Fakes()
    async with fakes.seaart, fakes.kie, fakes.segmind, fakes.gemini:
        settings = fakes.settings(tmp_path, discord_fake, ["gemini"])
        interaction = await stopped_before_its_upload(discord_fake, settings, "lost")
        for kept in Path(f"{settings.database.path}.results").iterdir():
            kept.unlink()
        discord_fake.hold_edits(False)
        await asyncio.sleep(0.2)  # the stopped bot's held edit, carried out or dropped
        running = await start_bot(settings, discord_fake, Clock())
        try:
            await discord_fake.wait_for(lambda: last_state(settings) == "failed", timeout=20)
            message = discord_fake.messages[interaction.original_message_id or 0]
            await discord_fake.wait_for(lambda: "lost before it could be posted" in str(message.embeds), timeout=10)
        finally:
            await running.close()
    (job,) = rows(settings)
    assert (job["error_category"], job["charge_state"]) == ("delivery", "refunded")
    assert job["delivery_attempts"] == 0
