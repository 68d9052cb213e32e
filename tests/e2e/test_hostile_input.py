"""Input that lies or hides: reference files judged by their bytes, invisible prompt characters, and
option values sent past Discord's own checks. Nothing bad reaches the provider; nothing is charged."""

from __future__ import annotations

import io
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from bot.testing.providers._base import bomb_png
from tests.conftest import RunningBot, final_message, make_settings, png_bytes, start_bot
from tests.discord_markdown import live_markdown

TERMINAL = {"delivered", "failed", "blocked", "cancelled", "expired"}


def encoded(fmt: str, size: tuple[int, int] = (64, 64), **options: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, fmt, **options)
    return buffer.getvalue()


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (64, 64), (i * 60, 0, 0)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def shown_embeds(discord_fake: FakeDiscord, interaction_id: int) -> str:
    message = final_message(discord_fake, interaction_id)
    return str(message.embeds) if message is not None else ""


def ephemeral_reply(interaction: Any) -> str:
    (callback,) = interaction.callbacks
    assert callback["type"] == 4 and callback["data"]["flags"] & 64, "a private reply"
    return str(callback["data"]["content"])


async def start(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, **imagine: Any) -> RunningBot:
    settings = make_settings(tmp_path, discord_fake, seaart, imagine=imagine)
    return await start_bot(settings, discord_fake)


# name -> (bytes, declared type, declared size or None for the real one, words the member must read)
LIARS: dict[str, tuple[bytes, str, int | None, str]] = {
    "empty": (b"", "image/png", 2048, "is empty"),
    "html": (b"<!DOCTYPE html><html><body>login</body></html>", "image/png", None, "is a web page"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "image/png", None, "SVG drawing"),
    "gif": (encoded("GIF"), "image/png", None, "is a GIF"),
    "one-pixel": (encoded("PNG", (1, 1)), "image/png", None, "only 1 x 1 pixels"),
    "animated": (animated_webp(), "image/webp", None, "is animated"),
    "truncated": (encoded("PNG")[:-30], "image/png", None, "damaged or incomplete"),
    "undersized-claim": (encoded("PNG", (700, 700), compress_level=0), "image/png", 1000, "larger than this bot"),
    "bomb": (bomb_png(), "image/png", 4096, "reference images may have at most 40 megapixels"),
}


@pytest.mark.parametrize("name", list(LIARS))
async def test_reference_bytes_that_lie_are_refused_before_the_provider(
    name: str, tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    data, declared_type, declared_size, words = LIARS[name]
    # 1 MiB: the "undersized-claim" file really holds about 1.4 MB while declaring 1 kB.
    running = await start(tmp_path, discord_fake, seaart, max_attachment_bytes=1_048_576)
    db = running.bot.settings.database.path
    try:
        attachment = discord_fake.add_attachment(data, f"{name}.png", declared_type, size=declared_size)
        interaction = await discord_fake.slash_command("imagine", {"prompt": "use my photo", "image1": attachment})
        await discord_fake.wait_for(lambda: bool(rows(db, "SELECT 1 FROM jobs WHERE state IN ('failed')")), 20)
        await discord_fake.wait_for(lambda: "What happened" in shown_embeds(discord_fake, interaction.id), 10)
    finally:
        await running.close()
    assert seaart.creates == [], "nothing was sent to the provider"
    ((state, category, message, charge),) = rows(
        db, "SELECT state, error_category, error_message, charge_state FROM jobs"
    )
    assert (state, category, charge) == ("failed", "bad_input", "refunded")
    assert f"`{name}.png`" in message and words in message
    assert rows(db, "SELECT SUM(units) FROM ledger WHERE kind IN ('reserve', 'refund')") == [(0,)]
    shown = final_message(discord_fake, interaction.id)
    assert shown is not None and message in str(shown.embeds[0])


async def test_a_file_name_cannot_write_markdown_into_the_public_message(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A refused reference is named in the job's public message, in a code span: a backtick in the file's
    name ended the span, and the rest of the name was read as Markdown (a masked link, bold)."""
    running = await start(tmp_path, discord_fake, seaart)
    db = running.bot.settings.database.path
    name = "a`**[Free nitro](e.example)**`" + "x" * 200 + ".png"
    try:
        attachment = discord_fake.add_attachment(LIARS["html"][0], name, "image/png")
        interaction = await discord_fake.slash_command("imagine", {"prompt": "use my photo", "image1": attachment})
        await discord_fake.wait_for(lambda: "What happened" in shown_embeds(discord_fake, interaction.id), 20)
    finally:
        await running.close()
    ((message,),) = rows(db, "SELECT error_message FROM jobs")
    assert "[Free nitro](e.example)" in message  # refused (here: the link does not serve it), and named
    shown = final_message(discord_fake, interaction.id)
    assert shown is not None
    (field,) = [f["value"] for f in shown.embeds[0]["fields"] if f["name"] == "What happened"]
    outside_code = re.sub(r"`[^`]*`", "", field)
    assert live_markdown(outside_code) == [], field
    # The name is shortened, keeping its extension.
    assert "x….png`" in field and len(field) < 300


async def test_an_honest_reference_still_goes_through(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    running = await start(tmp_path, discord_fake, seaart)
    db = running.bot.settings.database.path
    try:
        attachment = discord_fake.add_attachment(png_bytes((128, 96)), "sketch.png", "image/png")
        await discord_fake.slash_command("imagine", {"prompt": "from my sketch", "image1": attachment})
        await discord_fake.wait_for(lambda: rows(db, "SELECT state FROM jobs") == [("delivered",)], 20)
    finally:
        await running.close()
    assert [c.json["image_urls"] for c in seaart.creates] == [[attachment["url"]]]


async def test_invisible_and_control_characters_never_reach_the_provider(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    running = await start(tmp_path, discord_fake, seaart)
    db = running.bot.settings.database.path
    try:
        only_invisible = await discord_fake.slash_command("imagine", {"prompt": "\u200b\u200b\u2060\ufeff\u200b"})
        await discord_fake.wait_for(lambda: bool(only_invisible.callbacks), 10)
        dirty = "a red\x00 fox\x07 at dusk\x1b \u202eegami"
        interaction = await discord_fake.slash_command("imagine", {"prompt": dirty})
        await discord_fake.wait_for(lambda: rows(db, "SELECT state FROM jobs") == [("delivered",)], 20)
        await discord_fake.wait_for(lambda: "Done" in shown_embeds(discord_fake, interaction.id), 10)
    finally:
        await running.close()
    assert "The prompt is empty" in ephemeral_reply(only_invisible)
    (create,) = seaart.creates
    assert create.json["prompt"] == "a red fox at dusk egami"
    shown = final_message(discord_fake, interaction.id)
    assert shown is not None
    embed_text = str(shown.embeds[0])
    for hidden in ("\x00", "\x07", "\x1b", "\u202e"):
        assert hidden not in embed_text


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"seed": -5}, "`seed` must be a whole number from 0 to 2,147,483,647"),
        ({"seed": 2**31}, "`seed` must be a whole number from 0 to 2,147,483,647"),
        # Past /imagine's own bound: refused by it, naming the option, before any provider is chosen.
        ({"prompt": "x" * 7000}, "`prompt` must be 1 to 6,000 characters of text; yours has 7,000."),
        ({"prompt": "x" * 3000}, "takes at most 2,500"),  # within it, past the provider's
        ({"aspect_ratio": "99:1"}, "does not offer aspect ratio 99:1"),
        ({"resolution": "16K"}, "does not offer resolution 16K"),
        # Quoted back, it made an answer over Discord's 2,000 characters, which Discord refused: no answer
        # at all ("The application did not respond").
        ({"aspect_ratio": "9" * 2100 + ":1"}, "does not offer aspect ratio 999"),
        ({"output_format": "x" * 2100}, "x" * 20),
    ],
)
async def test_options_sent_past_discord_get_a_clear_refusal(
    options: dict[str, Any], words: str, tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    running = await start(tmp_path, discord_fake, seaart)
    db = running.bot.settings.database.path
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a fox", **options}, unchecked=True)
        await discord_fake.wait_for(lambda: bool(interaction.callbacks), 10)
    finally:
        await running.close()
    reply = ephemeral_reply(interaction)
    assert words in reply and "went wrong" not in reply and len(reply) <= 2000
    assert rows(db, "SELECT COUNT(*) FROM jobs") == [(0,)] and seaart.creates == []


async def test_the_slash_command_declares_its_bounds(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Discord enforces min/max and lengths in its own UI when the command declares them."""
    running = await start(tmp_path, discord_fake, seaart)
    await running.close()
    command = next(c for c in discord_fake.commands if c["name"] == "imagine")
    options = {o["name"]: o for o in command["options"]}
    assert (options["seed"]["min_value"], options["seed"]["max_value"]) == (0, 2_147_483_647)
    assert (options["prompt"]["min_length"], options["prompt"]["max_length"]) == (1, 6000)
