"""Gemini takes the references inline, so its adapter downloads them itself, after the bot's own check of them
(bot/references.py ``check_references``) and with the create marked as leaving. A Discord CDN hiccup on that
second download (a 503, a timeout) ended the job at once, "A reference image could not be fetched", where the
same hiccup on the first download is tried again later; nothing had gone to Google, so it may go again."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction, RecordedRequest
from bot.testing.providers import FakeGemini
from tests.conftest import Clock, final_message, png_bytes, start_bot
from tests.e2e.test_replies import GEMINI_KEY, gemini_settings

ENDED = {"delivered", "failed", "blocked", "cancelled", "expired"}


def rows(settings: Settings) -> list[dict[str, Any]]:
    with sqlite3.connect(settings.database.path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM jobs")]


def ledger(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.database.path) as conn:
        return [kind for (kind,) in conn.execute("SELECT kind FROM ledger ORDER BY id")]


async def imagine_with_a_reference(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock, gemini: FakeGemini, failing: Callable[[int], bool]
) -> tuple[Settings, FakeInteraction]:
    """An /imagine with one attached reference on Gemini alone, the reference's ``n``th download from the CDN
    (counted from 1) answered 503 where ``failing(n)``; returns once the job has ended."""
    settings = gemini_settings(tmp_path, discord_fake, gemini)
    running = await start_bot(settings, discord_fake, clock)
    try:
        attachment = discord_fake.add_attachment(png_bytes(), "sketch.png", "image/png")
        seen = [0]

        def fails(_request: RecordedRequest) -> bool:
            seen[0] += 1
            return failing(seen[0])

        discord_fake.fail_next("GET", r"/attachments/", status=503, times=100, match=fails)
        command = await discord_fake.slash_command("imagine", {"prompt": "ink it", "image1": attachment})
        await discord_fake.wait_for(lambda: [r["state"] in ENDED for r in rows(settings)] == [True], timeout=60)
    finally:
        await running.close()
    return settings, command


def cdn_statuses(discord_fake: FakeDiscord) -> list[int]:
    return [r.status for r in discord_fake.requests if r.method == "GET" and "/attachments/" in r.path]


async def test_a_cdn_hiccup_on_gemini_s_own_download_of_a_reference_is_tried_again(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        # The bot's check is the first download; the adapter's, the second.
        settings, command = await imagine_with_a_reference(tmp_path, discord_fake, clock, gemini, lambda n: n == 2)
    (job,) = rows(settings)
    assert (job["state"], job["error_category"]) == ("delivered", None), job["error_message"]
    # The bot's check, the adapter's download (the 503), then both again a moment later.
    assert cdn_statuses(discord_fake) == [200, 503, 200, 200]
    assert len(gemini.creates) == 1
    assert ledger(settings) == ["reserve", "commit"]
    message = final_message(discord_fake, command.id)
    assert message is not None and len(message.files) == 1


async def test_a_reference_gemini_s_download_never_gets_ends_the_job_uncharged_after_a_few_tries(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        # Each try: the bot's check passes, the adapter's download fails.
        settings, command = await imagine_with_a_reference(tmp_path, discord_fake, clock, gemini, lambda n: n % 2 == 0)
    (job,) = rows(settings)
    assert (job["state"], job["error_category"]) == ("failed", "reference")
    assert job["error_message"] == "Could not download `sketch.png` just now (error 503). Try again in a moment."
    assert cdn_statuses(discord_fake) == [200, 503] * 3  # MAX_REFERENCE_TRIES
    assert gemini.creates == []
    assert ledger(settings) == ["reserve", "refund"]
    message = final_message(discord_fake, command.id)
    assert message is not None and "just now" in str(message.embeds)
