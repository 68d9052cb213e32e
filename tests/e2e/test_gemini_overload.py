"""Gemini, the only provider, answers a create "overloaded" (503 UNAVAILABLE, "retry after 30-60 s":
docs/providers.md 6.6). Nothing was made, so the create may go again; the bot waits the 30 s in the queue,
its member reading why, with every request to Gemini paused meanwhile, and sends it again.

Before, the 30 s were longer than a call's retries wait, so the error went to the job runner, which read no
wait from it: the job failed after one call ("Gemini is overloaded right now. Try again in a minute."), and
the next job was sent to Gemini at once, into the same overload.

The wait is Gemini's documented one, paused on the bot's own monotonic clock (bot/budget.py): this test takes
about half a minute.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.providers.gemini import OVERLOADED_RETRY_SECONDS
from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeGemini
from tests.conftest import Clock, final_message, start_bot
from tests.e2e.test_replies import GEMINI_KEY, gemini_settings

ENDED = {"delivered", "failed", "blocked", "cancelled", "expired"}


def rows(settings: Settings) -> list[dict[str, Any]]:
    with sqlite3.connect(settings.database.path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY created_at")]


def ledger(settings: Settings) -> list[tuple[str, str]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT job_id, kind FROM ledger ORDER BY id").fetchall()


def fields(message: FakeMessage | None) -> dict[str, str]:
    if message is None or not message.embeds:
        return {}
    return {str(f["name"]): str(f["value"]) for f in message.embeds[0].get("fields", [])}


async def test_an_overloaded_gemini_is_waited_out_and_the_image_delivered(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        gemini.script("overloaded")  # once; every later call is answered with the image
        running = await start_bot(settings, discord_fake, clock)
        try:
            first = await discord_fake.slash_command("imagine", {"prompt": "a banana taking a break"})
            # What the member reads while the bot waits: why, and when it tries again.
            await discord_fake.wait_for(lambda: "Waiting" in fields(final_message(discord_fake, first.id)), 10)
            waiting = final_message(discord_fake, first.id)
            assert waiting is not None and waiting.embeds[0]["title"] == "🍌 Queued…"
            note = fields(waiting)["Waiting"]
            assert note.startswith("Gemini is overloaded right now. The bot sends this request again <t:"), note
            assert "charged only for images you get" in note and "Cancel" in str(waiting.components)
            (job,) = rows(settings)
            assert (job["state"], job["submit_started_at"]) == ("queued", None)  # nothing may be in flight
            # Another member's job meanwhile is not sent into the overload: Gemini's requests are paused.
            second = await discord_fake.slash_command("imagine", {"prompt": "a second banana"})
            await discord_fake.wait_for(
                lambda: all(r["state"] in ENDED for r in rows(settings)) and len(rows(settings)) == 2,
                timeout=OVERLOADED_RETRY_SECONDS + 30,
            )
        finally:
            await running.close()

    assert [r["state"] for r in rows(settings)] == ["delivered", "delivered"]
    overloaded, *sent_again = gemini.creates
    assert len(sent_again) == 2, "one more create for the first job, one for the second"
    assert all(r.at - overloaded.at >= OVERLOADED_RETRY_SECONDS - 1 for r in sent_again), "the wait was kept"
    # Charged once each, for the image each got.
    assert sorted(kind for _, kind in ledger(settings)) == ["commit", "commit", "reserve", "reserve"]
    for command in (first, second):
        message = final_message(discord_fake, command.id)
        assert message is not None and len(message.files) == 1 and "Done" in message.embeds[0]["title"]
        assert "Waiting" not in fields(message)
