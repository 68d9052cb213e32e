"""Prompts through the real bot and the fake Discord: one that shows nothing is empty; one past /imagine's
6,000 characters (sent past discord.py's checks, or typed into the Edit form) is refused; a trailing
``--ar 16:9`` is read from the cleaned prompt (and from a phone's ``—ar``); a Re-roll of a seeded image draws
a new seed instead of paying for the same image again."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import make_settings, start_bot
from tests.e2e.test_buttons import ephemeral_reply
from tests.e2e.test_failover import Fakes, boot, done, fakes  # noqa: F401
from tests.e2e.test_rework import delivered, imagine, press, settled


def query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute(sql).fetchall()


def nothing_made(settings: Settings) -> bool:
    return query(settings, "SELECT COUNT(*) FROM jobs") == [(0,)] and query(settings, "SELECT * FROM ledger") == []


async def private_answer(discord_fake: FakeDiscord, interaction: FakeInteraction) -> dict[str, Any]:
    await discord_fake.wait_for(lambda: bool(interaction.callbacks), timeout=10)
    return dict(interaction.callbacks[0])


@pytest.mark.parametrize(
    "prompt",
    ["\u3164", "\u3164 \u3164", "\u2800\u2800", "\u115f\u1160", "\uffa0", "\u034f\ufe0f", "\u3164\u200b\ufe0f\n"],
    ids=["hangul-filler", "fillers-and-space", "braille-blank", "choseong-jungseong", "halfwidth", "cgj-vs16", "mix"],
)
async def test_a_prompt_that_shows_nothing_is_refused_as_empty_and_nothing_is_made(
    prompt: str, tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake)
    try:
        answer = await private_answer(discord_fake, await discord_fake.slash_command("imagine", {"prompt": prompt}))
    finally:
        await running.close()
    assert answer["type"] == 4 and answer["data"]["flags"] & 64, answer
    assert answer["data"]["content"].startswith("The prompt is empty"), answer["data"]["content"]
    assert seaart.creates == [] and nothing_made(settings)


async def test_a_prompt_past_6000_characters_sent_past_discord_s_checks_is_refused_naming_the_option(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """Kie takes 20,000 characters, so only the bot's own bound stood between this payload and a paid job."""
    settings = fakes.settings(tmp_path, discord_fake, ["kie"])
    running = await boot(settings, discord_fake)
    try:
        long = await discord_fake.slash_command("imagine", {"prompt": "a fox " * 3000}, unchecked=True)
        answer = await private_answer(discord_fake, long)
        # Exactly 6,000 is taken (the bound Discord's own client holds members to).
        fits = await discord_fake.slash_command("imagine", {"prompt": "a" * 6000})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
    finally:
        await running.close()
    assert answer["type"] == 4 and answer["data"]["flags"] & 64, answer
    # Counted as Discord counts the option: as sent, its trailing space included.
    assert answer["data"]["content"] == "`prompt` must be 1 to 6,000 characters of text; yours has 18,000."
    assert [len(create.json["input"]["prompt"]) for create in fakes.kie.creates] == [6000]
    assert fits.callbacks[0]["data"].get("flags", 0) & 64 == 0
    assert query(settings, "SELECT state FROM jobs") == [("delivered",)]


async def test_an_edit_form_past_the_prompt_limit_is_refused_clearly(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """The form declares 4,000 characters, but a hand-made submit is not held to it; the prompt it makes
    would have gone to Kie whole."""
    settings = fakes.settings(tmp_path, discord_fake, ["kie"])
    running = await boot(settings, discord_fake)
    try:
        original = await imagine(discord_fake, {"prompt": "a garden"})
        edit = await press(discord_fake, original, "Edit")
        await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
        submit = await discord_fake.submit_modal(edit, {"instruction": "b" * 17_999}, modified_client=True)
        refusal = await ephemeral_reply(discord_fake, submit)
        await settled(discord_fake, settings)
    finally:
        await running.close()
    assert refusal == (
        "The prompt would be 17,999 characters; the bot sends at most 6,000. Ask again with fewer words."
    )
    assert len(fakes.kie.creates) == 1 and query(settings, "SELECT COUNT(*) FROM jobs") == [(1,)]


@pytest.mark.parametrize(
    "prompt",
    [
        "a fox in the snow --ar 16:9\u200b",
        "a fox in the snow --ar 16:9\u3164",
        "a fox in the snow \u2014ar 16:9",
        "a fox in the snow \u2013ar 16:9",
    ],
    ids=["zero-width-space-after", "hangul-filler-after", "em-dash", "en-dash"],
)
async def test_a_trailing_ratio_is_read_from_the_cleaned_prompt(
    prompt: str, tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake)
    try:
        message = await imagine(discord_fake, {"prompt": prompt})
    finally:
        await running.close()
    (create,) = seaart.creates
    assert (create.json["prompt"], create.json["aspect_ratio"]) == ("a fox in the snow", "16:9")
    assert message.embeds[0]["description"] == "a fox in the snow"


async def test_the_edit_form_reads_a_ratio_followed_by_an_invisible_character(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake)
    try:
        original = await imagine(discord_fake, {"prompt": "a meadow", "aspect_ratio": "4:3"})
        edit = await press(discord_fake, original, "Edit")
        await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
        await delivered(
            discord_fake, await discord_fake.submit_modal(edit, {"instruction": "at night --ar 16:9\u200b"})
        )
    finally:
        await running.close()
    create = seaart.creates[1].json
    assert (create["prompt"], create["aspect_ratio"]) == ("at night", "16:9")


async def test_a_re_roll_of_a_seeded_image_draws_a_new_seed_and_shows_it(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["segmind"])
    running = await boot(settings, discord_fake)
    try:
        original = await imagine(discord_fake, {"prompt": "a lighthouse", "seed": 42, "aspect_ratio": "3:2"})
        rolled = await delivered(discord_fake, await press(discord_fake, original, "Re-roll"))
        await settled(discord_fake, settings)
    finally:
        await running.close()
    first, again = (create.json for create in fakes.segmind.creates)
    assert first["seed"] == 42 and isinstance(again["seed"], int) and again["seed"] != 42
    # Everything else is the request as it was.
    assert {k: v for k, v in again.items() if k != "seed"} == {k: v for k, v in first.items() if k != "seed"}
    shown = " ".join(str(field["value"]) for field in rolled.embeds[0]["fields"])
    assert f"seed {again['seed']}" in shown and "seed 42" not in shown


async def test_a_prompt_within_6000_characters_that_cleaning_lengthens_is_made(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """Devanagari letters with a nukta typed precomposed (U+0958..U+095F) are composition exclusions: cleaning
    (NFC) writes each as a letter and a combining mark, and a 5,900-character Hindi prompt Discord took was
    refused as 6,767. Re-rolled, it is taken too."""
    sentence = "\u095bमीन पर \u095eूलों का बा\u095a, \u095bरा सा \u0958िला "  # ज़मीन पर फ़ूलों का बाग़, ज़रा सा क़िला
    prompt = (sentence * 1000)[:5900].strip()
    settings = fakes.settings(tmp_path, discord_fake, ["kie"])
    running = await boot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": prompt})
        original = await delivered(discord_fake, interaction)
        reroll = await press(discord_fake, original, "Re-roll")
        await discord_fake.wait_for(lambda: len(fakes.kie.creates) == 2, timeout=30)
    finally:
        await running.close()
    assert not interaction.callbacks[0]["data"].get("flags", 0) & 64
    assert not reroll.callbacks[0]["data"].get("flags", 0) & 64
    assert len(fakes.kie.creates[0].json["input"]["prompt"]) > 6000  # as cleaned: letters and their marks
