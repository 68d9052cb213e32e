"""A member's suffix (bot/prompt_suffix.py, Midjourney's /prefer suffix), through the fake Discord and the fake SeaArt:
set with `/preferences suffix:` or the panel's Suffix form, shown in the answer, added to each new prompt of /imagine
(each choice of a prompt in braces, the member's own --ar kept) and of the Use as reference form, not again to a
Change prompt of its image; a suffix that would fail every prompt later is refused when saved, nothing stored; one
that takes a prompt past the limit is refused for the suffix, nothing made; empty in the form, it is dropped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.config import Settings
from bot.derive import BLEND
from bot.prompts import PROMPT_MAX_CHARS
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, answered, make_settings, png_bytes, start_bot
from tests.e2e.edits import states
from tests.e2e.test_batches import refusal
from tests.e2e.test_change_prompt import opened_form
from tests.e2e.test_help import help_fields
from tests.e2e.test_moderation import command
from tests.e2e.test_preference_panel import fields, items, panel
from tests.e2e.test_preferences import imagine
from tests.e2e.test_rework import delivered, press
from tests.e2e.test_typed_back import refusal_of


def stored_suffix(settings: Settings) -> list[tuple[str | None]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT suffix FROM member_preferences").fetchall()


async def test_a_suffix_is_added_to_each_new_prompt_and_not_again_to_a_change_of_its_image(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    set_it = await answered(discord_fake, "preferences", {"suffix": "in watercolour --no text"})
    shown = discord_fake.messages[set_it.original_message_id or 0]
    assert fields(shown)["Suffix"] == "`in watercolour --no text`"
    assert stored_suffix(settings) == [("in watercolour --no text",)]

    # /help says it, where a member looks for what applies to them.
    assert (
        "Your suffix, added to each new prompt: `in watercolour --no text`"
        in (await help_fields(discord_fake))["Yours"]
    )

    (create,) = await imagine(discord_fake, seaart, settings, {"prompt": "a fox --ar 16:9"})
    assert create["prompt"] == "a fox, in watercolour, without text" and create["aspect_ratio"] == "16:9"
    creates = await imagine(discord_fake, seaart, settings, {"prompt": "a {red, blue} fox"})
    assert sorted(c["prompt"] for c in creates) == [
        "a blue fox, in watercolour, without text",
        "a red fox, in watercolour, without text",
    ]

    # Change prompt holds the words the image was made with, the suffix's among them: not added twice.
    first = next(m for m in discord_fake.messages.values() if m.embeds and "a fox, in watercolour" in str(m.embeds))
    opened = await press(discord_fake, first, "Change prompt")
    form = await opened_form(discord_fake, opened)
    assert form["value"] == "a fox, in watercolour, without text"
    await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "a wolf, in watercolour"}))
    assert seaart.creates[-1].json["prompt"] == "a wolf, in watercolour"

    # A /blend's words are a new prompt too.
    cat = discord_fake.add_attachment(png_bytes(colour=(200, 120, 40)), "cat.png", "image/png")
    hat = discord_fake.add_attachment(png_bytes(colour=(40, 120, 200)), "hat.png", "image/png")
    await discord_fake.slash_command("blend", {"image1": cat, "image2": hat, "prompt": "a cat"})
    await discord_fake.wait_for(lambda: len(seaart.creates) == 5, timeout=20)
    assert seaart.creates[-1].json["prompt"] == f"{BLEND}: a cat, in watercolour, without text"

    # The Use as reference form's prompt is a new one: the suffix goes on it.
    opened = await press(discord_fake, first, "Use as reference")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "the fox asleep"}))
    assert seaart.creates[-1].json["prompt"] == "the fox asleep, in watercolour, without text"
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 6, timeout=20)


async def test_a_suffix_that_would_fail_later_is_refused_now_and_one_too_long_with_the_prompt_makes_nothing(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    for suffix, refused in (
        ("cinematic --ar 16:9", "`--ar` in a suffix would fight the command's shape: set `aspect_ratio` instead"),
        ("cinematic --v 6", "`--v 6` means nothing to Nano Banana"),
        ("like https://example.com/a.png", "not links or custom emojis"),
    ):
        command = await discord_fake.slash_command("preferences", {"suffix": suffix})
        await discord_fake.wait_for(lambda command=command: bool(command.callbacks), timeout=10)
        assert refused in refusal_of(refusal(discord_fake, command.id))
    assert stored_suffix(settings) == []

    await answered(discord_fake, "preferences", {"suffix": "x" * 200})
    command = await discord_fake.slash_command("imagine", {"prompt": "a" * PROMPT_MAX_CHARS})
    await discord_fake.wait_for(lambda: bool(command.callbacks), timeout=10)
    assert "Your prompt with your /preferences suffix has 6,202 characters" in refusal(discord_fake, command.id)
    assert seaart.creates == [] and states(settings) == []


async def test_the_panel_s_suffix_form_sets_it_and_an_empty_one_drops_it(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message = await panel(discord_fake)
    assert "bananacord:prefs:suffix" in items(message) and fields(message)["Suffix"] == "none"

    click = await discord_fake.click(message.id, "bananacord:prefs:suffix")
    form = await opened_form(discord_fake, click)
    assert form["form_id"] == "bananacord:prefs:suffix-form" and form.get("value") is None
    submitted = await discord_fake.submit_modal(click, {"suffix": "in ink, soft light --tile"})
    await discord_fake.wait_for(lambda: bool(submitted.callbacks), timeout=10)
    assert submitted.callbacks[0]["type"] == 7, submitted.callbacks  # the panel redrawn in place
    await discord_fake.wait_for(lambda: fields(message)["Suffix"] == "`in ink, soft light --tile`", timeout=10)
    (create,) = await imagine(discord_fake, seaart, settings, {"prompt": "a fox"})
    assert create["prompt"] == "a fox, in ink, soft light, as a seamless, tileable pattern whose edges wrap around"

    click = await discord_fake.click(message.id, "bananacord:prefs:suffix")
    assert (await opened_form(discord_fake, click))["value"] == "in ink, soft light --tile"  # filled with the one set
    refused = await discord_fake.submit_modal(click, {"suffix": "in ink --seed 3"})
    await discord_fake.wait_for(lambda: bool(refused.callbacks), timeout=10)
    assert "`--seed` in a suffix" in refusal_of(refusal(discord_fake, refused.id))
    assert stored_suffix(settings) == [("in ink, soft light --tile",)]

    click = await discord_fake.click(message.id, "bananacord:prefs:suffix")
    await opened_form(discord_fake, click)
    emptied = await discord_fake.submit_modal(click, {"suffix": ""})
    await discord_fake.wait_for(lambda: bool(emptied.callbacks), timeout=10)
    await discord_fake.wait_for(lambda: fields(message)["Suffix"] == "none", timeout=10)
    assert stored_suffix(settings) == []
    (create,) = await imagine(discord_fake, seaart, settings, {"prompt": "a fox"})
    assert create["prompt"] == "a fox"


async def test_a_suffix_with_a_blocked_term_is_refused_when_saved_and_named_when_a_term_blocked_since_hits_it(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A suffix holding a blocked term would have every /imagine of its member refused for words they no longer see:
    refused when saved (logged for the moderators as a blocked prompt is); a term blocked after it was saved refuses
    the prompt saying the suffix was added, and how to drop it. Nothing made, nothing stored."""
    mod = discord_fake.moderator_id
    await command(discord_fake, "mod blockterm add", {"term": "gore"}, user_id=mod)
    refused = await command(discord_fake, "preferences", {"suffix": "lots of gore"})
    assert (
        refused["flags"] & 64
        and "Not saved: your suffix contains something this server does not allow" in (refused["content"])
    )
    assert stored_suffix(settings) == []
    with sqlite3.connect(settings.database.path) as conn:
        logged = conn.execute("SELECT prompt FROM audit_log WHERE action = 'blocked_prompt'").fetchall()
    assert logged == [("lots of gore",)]

    await answered(discord_fake, "preferences", {"suffix": "in neon"})
    await command(discord_fake, "mod blockterm add", {"term": "neon"}, user_id=mod)
    blocked = await command(discord_fake, "imagine", {"prompt": "a fox"})
    assert blocked["flags"] & 64 and "does not allow" in blocked["content"]
    assert (
        "Your /preferences suffix was added to it (`in neon`); `/preferences forget:Suffix` drops it."
        in (blocked["content"])
    )
    assert seaart.creates == [] and states(settings) == []


async def test_a_suffix_form_opened_before_a_restart_is_saved_by_the_next_process(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    """The form's submit is answered by the cog's listener, not by the form object: a form a member kept open while
    the bot restarted is saved, and its panel drawn again, by the next process."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, clock)
    try:
        message = await panel(discord_fake)
        click = await discord_fake.click(message.id, "bananacord:prefs:suffix")
        await opened_form(discord_fake, click)
    finally:
        await running.close()
    running = await start_bot(settings, discord_fake, clock)
    try:
        submitted = await discord_fake.submit_modal(click, {"suffix": "in pencil"})
        await discord_fake.wait_for(lambda: bool(submitted.callbacks), timeout=10)
        await discord_fake.wait_for(lambda: fields(message)["Suffix"] == "`in pencil`", timeout=10)
        assert stored_suffix(settings) == [("in pencil",)]
    finally:
        await running.close()
