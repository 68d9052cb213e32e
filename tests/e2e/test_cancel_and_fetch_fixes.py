"""Two things a member was shown wrongly, through the fake Discord.

A Cancel click's answer ("Cancelling…") that Discord applied more than 3 s late landed over the job's end,
drawn once the end's wait for it ran out, and the message said "Cancelling…" for good (bot/job_messages.py
``_redraw_once_answered``). A reference image the bot could not fetch (a Vary's source deleted before its
download) was titled "The provider refused the request", though no provider saw it (ErrorCategory.REFERENCE).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.cancel_requests import CANCEL_ANSWER_WAIT
from bot.config import Settings
from bot.render import COLOUR_PROGRESS
from bot.testing.discord import FakeDiscord, FakeInteraction, RecordedRequest
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, png_bytes, start_bot
from tests.e2e.test_buttons import button, labels, rows, states
from tests.e2e.test_failover import Fakes
from tests.e2e.test_rework import delivered, press


def owed(settings: Settings) -> int:
    with sqlite3.connect(settings.database.path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM owed_edits").fetchone()[0])


def title(discord_fake: FakeDiscord, message_id: int) -> str:
    return str(discord_fake.messages[message_id].embeds[0]["title"])


def shows_the_end(discord_fake: FakeDiscord, message_id: int) -> bool:
    embed = discord_fake.messages[message_id].embeds[0]
    return bool(embed["title"] == "🍌 Cancelled" and embed["color"] != COLOUR_PROGRESS.value)


async def cancel_with_its_answer_held(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, count: int
) -> tuple[int, FakeInteraction]:
    """A running job (a batch of ``count``) cancelled while Discord holds the click's answer, until the end has
    been drawn after its CANCEL_ANSWER_WAIT; returns the message's id and the click, its answer still held."""
    seaart.hold(True)
    options: dict[str, object] = {"prompt": "hold on"} | ({"count": count} if count > 1 else {})
    interaction = await discord_fake.slash_command("imagine", options)
    await discord_fake.wait_for(lambda: states(settings) == ["running"] * count, timeout=10)
    message_id = interaction.original_message_id
    assert message_id is not None
    await discord_fake.wait_for(lambda: "Cancel" in labels(discord_fake, message_id), timeout=10)
    discord_fake.hold_callbacks()
    click = await discord_fake.click(message_id, button(discord_fake, message_id, "Cancel"))
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"] * count, timeout=10)
    # The end gave up waiting for the answer and was drawn; Discord still holds the answer.
    await discord_fake.wait_for(lambda: shows_the_end(discord_fake, message_id), timeout=CANCEL_ANSWER_WAIT + 5)
    assert not click.acknowledged
    return message_id, click


@pytest.mark.parametrize("count", [1, 2])
async def test_a_cancel_answer_discord_applies_after_the_end_was_drawn_leaves_the_end_shown(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, count: int
) -> None:
    """Discord applies the click's answer ("Cancelling…", no buttons) after the end's 3 s wait for it ran out
    and the end was drawn: the member must be left reading the end, not "Cancelling…" for good."""
    message_id, click = await cancel_with_its_answer_held(discord_fake, seaart, settings, count)
    discord_fake.hold_callbacks(False)
    await discord_fake.wait_for(lambda: click.acknowledged, timeout=10)
    # The answer has landed over the end; the end is drawn again.
    await discord_fake.wait_for(lambda: shows_the_end(discord_fake, message_id), timeout=10)
    await discord_fake.wait_for(lambda: owed(settings) == 0, timeout=10)  # nothing left for a restart to draw
    await asyncio.sleep(0.5)  # no edit still on its way lands over it
    assert shows_the_end(discord_fake, message_id), title(discord_fake, message_id)
    assert "Cancel" not in labels(discord_fake, message_id)
    assert [r["charge_state"] for r in rows(settings)] == ["refunded"] * count
    seaart.release()


async def test_an_end_drawn_before_a_late_cancel_answer_is_drawn_again_by_the_next_start(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The bot stops after drawing the end and before Discord applies the held answer: the end is still owed,
    so the next start draws it over the "Cancelling…" the answer left."""
    running = await start_bot(settings, discord_fake, Clock())
    try:
        message_id, click = await cancel_with_its_answer_held(discord_fake, seaart, settings, 1)
    finally:
        await running.close()
    discord_fake.hold_callbacks(False)
    await discord_fake.wait_for(lambda: click.acknowledged, timeout=10)
    assert not shows_the_end(discord_fake, message_id)  # the answer landed over the end
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await discord_fake.wait_for(lambda: shows_the_end(discord_fake, message_id), timeout=15)
        await discord_fake.wait_for(lambda: owed(settings) == 0, timeout=10)
    finally:
        await running.close()
        seaart.release()


def what_happened(discord_fake: FakeDiscord, message_id: int) -> str:
    embed = discord_fake.messages[message_id].embeds[0]
    return next(str(f["value"]) for f in embed.get("fields", []) if f["name"] in ("What happened", "Images"))


def assert_nothing_internal(text: str) -> None:
    """No link, host or signature of the CDN's in what the member reads."""
    for secret in ("http", "127.0.0.1", "?ex=", "hm=", "/attachments/"):
        assert secret not in text, (secret, text)


async def test_a_vary_whose_source_was_deleted_before_its_download_is_not_a_provider_refusal(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The reviewer's repro: a Vary queued while its source message is deleted gets a 404 for the source's
    image. No provider saw the request; the member reads that the image could not be fetched, and why."""
    original = await delivered(discord_fake, await discord_fake.slash_command("imagine", {"prompt": "a pear"}))
    discord_fake.hold_downloads()
    vary = await press(discord_fake, original, "Vary (Strong)", user_id=discord_fake.other_member_id)
    await discord_fake.wait_for(lambda: discord_fake.downloads_waiting >= 1, timeout=10)
    await press(discord_fake, original, "Delete", user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: discord_fake.messages[original.id].deleted, timeout=10)
    discord_fake.hold_downloads(False)
    await discord_fake.wait_for(lambda: len(rows(settings)) == 2 and rows(settings)[1]["state"] == "failed", timeout=20)
    job = rows(settings)[1]
    message_id = vary.original_message_id
    assert message_id is not None
    await discord_fake.wait_for(lambda: "What happened" in str(discord_fake.messages[message_id].embeds[0]), 10)
    assert (job["error_category"], job["charge_state"]) == ("reference", "refunded")
    assert title(discord_fake, message_id) == "🍌 A reference image could not be fetched"
    shown = what_happened(discord_fake, message_id)
    assert "may have been deleted" in shown and "HTTP 404" in shown, shown
    assert "provider" not in shown.lower() and "provider" not in title(discord_fake, message_id).lower()
    assert_nothing_internal(shown)
    assert len(seaart.creates) == 1  # the original's; nothing was sent for the Vary


async def test_a_batch_whose_reference_was_deleted_before_its_download_says_so_per_candidate(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A member's attachment deleted before the bot fetched it: each candidate's line says it could not fetch a
    reference image, not that the provider refused it."""
    ref = discord_fake.add_attachment(png_bytes(), "ref.png", "image/png")
    discord_fake.hold_downloads()
    interaction = await discord_fake.slash_command("imagine", {"prompt": "two", "count": 2, "image1": ref})
    await discord_fake.wait_for(lambda: discord_fake.downloads_waiting >= 1, timeout=10)
    discord_fake.delete_attachment(ref)
    discord_fake.hold_downloads(False)
    await discord_fake.wait_for(lambda: states(settings) == ["failed", "failed"], timeout=20)
    message_id = interaction.original_message_id
    assert message_id is not None
    await discord_fake.wait_for(lambda: "could not fetch" in what_happened(discord_fake, message_id), timeout=10)
    await discord_fake.wait_for(lambda: "None of the 2" in title(discord_fake, message_id), timeout=10)
    lines = what_happened(discord_fake, message_id)
    assert lines.count("could not fetch a reference image") == 2 and "provider" not in lines, lines
    assert "may have been deleted" in lines
    assert_nothing_internal(lines)
    assert [r["error_category"] for r in rows(settings)] == ["reference", "reference"]
    assert seaart.creates == []


async def test_a_reference_gemini_s_adapter_cannot_download_is_not_a_provider_refusal(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    """Gemini takes references inline, so its adapter downloads those the bot kept no file of, such as the
    member's images of a job moved to Gemini from another provider (here SeaArt, out of credit): a file deleted
    since the bot's check (here the CDN's second answer is a 404) was titled "The provider refused the
    request", though Google never saw the request."""
    downloads = 0

    def second_download(_request: RecordedRequest) -> bool:
        nonlocal downloads
        downloads += 1
        return downloads == 2

    fakes = Fakes()
    async with fakes.seaart, fakes.kie, fakes.segmind, fakes.gemini:
        fakes.seaart.script("out_of_credit")
        settings = fakes.settings(tmp_path, discord_fake, ["seaart", "gemini"])
        running = await start_bot(settings, discord_fake, clock)
        try:
            ref = discord_fake.add_attachment(png_bytes(), "ref.png", "image/png")
            discord_fake.fail_next("GET", r"/attachments/", status=404, match=second_download)
            interaction = await discord_fake.slash_command("imagine", {"prompt": "a pear", "image1": ref})
            await discord_fake.wait_for(lambda: states(settings) == ["failed"], timeout=20)
            message_id = interaction.original_message_id
            assert message_id is not None
            await discord_fake.wait_for(
                lambda: discord_fake.messages[message_id].embeds[0]["color"] != COLOUR_PROGRESS.value, timeout=10
            )
        finally:
            await running.close()
    assert downloads == 2, "the bot's check, then the adapter's download"
    assert [(r["error_category"], r["charge_state"]) for r in rows(settings)] == [("reference", "refunded")]
    assert "provider" not in title(discord_fake, message_id).lower(), title(discord_fake, message_id)
    assert not fakes.gemini.creates, "nothing reached Google"
