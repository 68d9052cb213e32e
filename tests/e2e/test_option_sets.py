"""A member's option sets (bot/option_sets.py, Midjourney's /prefer option set), through the fake Discord and the fake
SeaArt: set with `/preferences option_set:`, shown in the answer and in /help, a name in the words of /imagine or an
edit standing for its parameters; dropped by its name alone, or all with `forget`; a set that would fail or mislead
every prompt using it (a parameter's own name, words, a parameter Nano Banana has no use for, a term the server
blocks) is refused when saved, nothing stored; the panel's form holds them all, one a line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bot.config import Settings
from bot.option_sets import MOST_OPTION_SETS, NAME_MAX_CHARS, OPTION_SET_MAX_CHARS
from bot.prompt_suffix import SUFFIX_MAX_CHARS
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, answered, make_settings, start_bot
from tests.e2e.edits import states, told_privately
from tests.e2e.test_batches import refusal
from tests.e2e.test_change_prompt import opened_form
from tests.e2e.test_help import help_fields
from tests.e2e.test_moderation import command
from tests.e2e.test_preference_panel import fields, items, panel
from tests.e2e.test_preferences import imagine
from tests.e2e.test_rework import delivered, press
from tests.e2e.test_typed_back import refusal_of

RAW = "in a plain, photographic look, without added artistic embellishment"


def stored_sets(settings: Settings) -> dict[str, str] | None:
    with sqlite3.connect(settings.database.path) as conn:
        rows = conn.execute("SELECT option_sets FROM member_preferences").fetchall()
    return None if not rows or rows[0][0] is None else json.loads(rows[0][0])


async def sets_form(discord_fake: FakeDiscord, message: FakeMessage) -> FakeInteraction:
    """The panel turned to its More page, whose 🧩 Option sets is pressed: the press (its form opened)."""
    turned = await discord_fake.click(message.id, "bananacord:prefs:page:more")
    await discord_fake.wait_for(lambda: bool(turned.callbacks), timeout=10)
    await discord_fake.wait_for(lambda: "bananacord:prefs:sets" in items(message), timeout=10)
    return await discord_fake.click(message.id, "bananacord:prefs:sets")


async def test_a_set_s_name_stands_for_its_parameters_in_a_prompt_and_an_edit(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    set_it = await answered(discord_fake, "preferences", {"option_set": "wide --ar 16:9 --style raw"})
    shown = discord_fake.messages[set_it.original_message_id or 0]
    assert fields(shown)["Option sets"] == "`--wide` `--ar 16:9 --style raw`"
    await answered(discord_fake, "preferences", {"option_set": "clean --no text, watermark"})
    assert stored_sets(settings) == {"wide": "--ar 16:9 --style raw", "clean": "--no text, watermark"}
    assert "Your option sets: `--wide`, `--clean`" in (await help_fields(discord_fake))["Yours"]

    (create,) = await imagine(discord_fake, seaart, settings, {"prompt": "a fox in snow --wide --clean"})
    assert create["aspect_ratio"] == "16:9"
    assert create["prompt"] == f"a fox in snow, {RAW}, without text, watermark"

    # An edit's words too (the Edit form): the set's --no said in words, as typed there it would be.
    original = next(m for m in discord_fake.messages.values() if m.embeds and "a fox in snow" in str(m.embeds))
    opened = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    await delivered(discord_fake, await discord_fake.submit_modal(opened, {"instruction": "make it night --clean"}))
    assert seaart.creates[-1].json["prompt"] == "make it night, without text, watermark"
    # A name that is no set there either is named, as in /imagine; a reply's note comes by DM.
    opened = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    typo = await discord_fake.submit_modal(opened, {"instruction": "make it rain --claen"})
    await delivered(discord_fake, typo)
    ((note, flags),) = await told_privately(discord_fake, typo)
    assert flags & 64 and note.startswith("`--claen` is not one of Midjourney's parameters nor one of your option sets")
    member = discord_fake.member_id
    await discord_fake.post_message("make it snow --claen", reply_to=original.id)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=20)
    assert (discord_fake.dms_to(member)[0].content or "").startswith("`--claen` is not one of Midjourney's")
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=20)

    # The name alone drops that set; a name no set has is words, sent as typed.
    dropped = await answered(discord_fake, "preferences", {"option_set": "--wide"})
    assert fields(discord_fake.messages[dropped.original_message_id or 0])["Option sets"] == (
        "`--clean` `--no text, watermark`"
    )
    typo = await discord_fake.slash_command("imagine", {"prompt": "a fox --wide"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 5, timeout=20)
    create = seaart.creates[-1].json
    assert create["prompt"] == "a fox --wide" and create.get("aspect_ratio") != "16:9"
    # Said to the member, who expected their set: not Midjourney's, and not one of theirs.
    assert await told_privately(discord_fake, typo) == [
        (
            "`--wide` is not one of Midjourney's parameters nor one of your option sets (`--clean`), so it went to the "
            "model as words. `/preferences option_set:` gives a run of parameters a name of your own.",
            64,
        )
    ]
    await answered(discord_fake, "preferences", {"forget": "option_sets"})
    assert stored_sets(settings) is None
    assert states(settings) == ["delivered"] * 5


async def test_a_set_that_would_fail_or_mislead_every_prompt_is_refused_and_nothing_stored(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    await command(discord_fake, "mod blockterm add", {"term": "gore"}, user_id=discord_fake.moderator_id)
    for typed, refused in (
        ("ar --ar 16:9", "`--ar` is one of Midjourney's own parameters: give your set another name."),
        ("wide a fox --ar 16:9", "An option set holds parameters only"),
        ("wide --v 7 --ar 16:9", "`--v 7` means nothing to Nano Banana"),
        ("wide", "You have no option set `--wide` to drop (yours: none)."),
        ("calm --no gore", "Not saved: your option set contains something this server does not allow."),
    ):
        answer = await command(discord_fake, "preferences", {"option_set": typed})
        assert answer["flags"] & 64 and refused in answer["content"], typed
    assert stored_sets(settings) is None
    with sqlite3.connect(settings.database.path) as conn:
        logged = conn.execute("SELECT prompt FROM audit_log WHERE action = 'blocked_prompt'").fetchall()
    assert logged == [("--calm --no gore",)]  # for the moderators, as a blocked prompt or suffix is
    assert seaart.creates == []


async def test_the_panel_s_option_sets_form_holds_them_all_one_a_line(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """On the panel's second page, 🧩 Option sets opens a form of every set, one a line: what is submitted is the
    member's sets (a line taken out drops one, all empty drops them all); a line refused is named, nothing saved."""
    await answered(discord_fake, "preferences", {"option_set": "wide --ar 16:9"})
    message = await panel(discord_fake)
    assert "bananacord:prefs:sets" not in items(message)  # the first page's rows are full
    click = await sets_form(discord_fake, message)
    form = await opened_form(discord_fake, click)
    assert form["form_id"] == "bananacord:prefs:sets-form" and form["value"] == "wide --ar 16:9"
    submitted = await discord_fake.submit_modal(click, {"sets": "wide --ar 21:9\n\n--Tall  --ar 9:16 --style raw"})
    await discord_fake.wait_for(lambda: bool(submitted.callbacks), timeout=10)
    assert submitted.callbacks[0]["type"] == 7, submitted.callbacks  # the panel redrawn in place, on its page
    assert stored_sets(settings) == {"wide": "--ar 21:9", "tall": "--ar 9:16 --style raw"}
    await discord_fake.wait_for(lambda: "`--tall`" in fields(message)["Option sets"], timeout=10)
    assert "bananacord:prefs:sets" in items(message)
    (create,) = await imagine(discord_fake, seaart, settings, {"prompt": "a tower --tall"})
    assert create["aspect_ratio"] == "9:16" and create["prompt"] == f"a tower, {RAW}"

    for typed, refused in (
        ("wide --ar 21:9\nwide --ar 1:1", "Line 2: `--wide` is on two lines; keep one."),
        ("wide --ar 21:9\ntall", "Line 2: `tall` has no parameters; take the line out to drop that set."),
        ("tile --ar 1:1", "`--tile` is one of Midjourney's own parameters"),
        ("\n".join(f"set{n} --ar 1:1" for n in range(21)), "At most 20 option sets; the form has 21 lines."),
    ):
        click = await discord_fake.click(message.id, "bananacord:prefs:sets")
        await opened_form(discord_fake, click)
        refused_submit = await discord_fake.submit_modal(click, {"sets": typed})
        await discord_fake.wait_for(lambda s=refused_submit: bool(s.callbacks), timeout=10)
        assert refused in refusal_of(refusal(discord_fake, refused_submit.id)), typed
    assert stored_sets(settings) == {"wide": "--ar 21:9", "tall": "--ar 9:16 --style raw"}

    click = await discord_fake.click(message.id, "bananacord:prefs:sets")
    await opened_form(discord_fake, click)
    emptied = await discord_fake.submit_modal(click, {"sets": ""})
    await discord_fake.wait_for(lambda: bool(emptied.callbacks), timeout=10)
    await discord_fake.wait_for(lambda: fields(message)["Option sets"].startswith("none"), timeout=10)
    assert stored_sets(settings) is None


async def test_an_option_sets_form_opened_before_a_restart_is_saved_by_the_next_process(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, clock)
    try:
        message = await panel(discord_fake)
        click = await sets_form(discord_fake, message)
        await opened_form(discord_fake, click)
    finally:
        await running.close()
    running = await start_bot(settings, discord_fake, clock)
    try:
        submitted = await discord_fake.submit_modal(click, {"sets": "wide --ar 21:9"})
        await discord_fake.wait_for(lambda: bool(submitted.callbacks), timeout=10)
        await discord_fake.wait_for(lambda: "`--wide`" in fields(message)["Option sets"], timeout=10)
        assert stored_sets(settings) == {"wide": "--ar 21:9"}
    finally:
        await running.close()


async def test_the_most_sets_at_their_longest_fit_the_panel_s_form_and_its_answer(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Discord refuses a form filled with more than 4,000 characters (the fake too), and an embed field over 1,024:
    twenty sets of the longest name and parameters still open the form, and the answer lists what fits."""
    lines = [
        f"set{number:02d}{'x' * (NAME_MAX_CHARS - 5)} --no {'y' * (OPTION_SET_MAX_CHARS - 5)}" for number in range(20)
    ]
    assert len(lines) == MOST_OPTION_SETS
    message = await panel(discord_fake)
    click = await sets_form(discord_fake, message)
    await opened_form(discord_fake, click)
    submitted = await discord_fake.submit_modal(click, {"sets": "\n".join(lines)})
    await discord_fake.wait_for(lambda: bool(submitted.callbacks), timeout=10)
    assert submitted.callbacks[0]["type"] == 7, submitted.callbacks
    assert len(stored_sets(settings) or {}) == MOST_OPTION_SETS
    await discord_fake.wait_for(lambda: "`--set00" in fields(message)["Option sets"], timeout=10)
    assert len(fields(message)["Option sets"]) <= 1024

    again = await discord_fake.click(message.id, "bananacord:prefs:sets")
    assert (await opened_form(discord_fake, again))["value"] == "\n".join(lines)  # the fake took it: it fits
    one_more = await command(discord_fake, "preferences", {"option_set": "extra --ar 1:1"})
    assert f"You have {MOST_OPTION_SETS} option sets, the most one may keep" in one_more["content"]

    # With the longest suffix and remix on besides, /help's "Yours" (which names the sets, the suffix, remix, what
    # is left and the requests at once) stays within Discord's 1,024: before, it passed it, and /help failed.
    suffix = ("in soft morning light with a gentle haze " * 5)[:SUFFIX_MAX_CHARS].strip()
    await command(discord_fake, "preferences", {"suffix": suffix, "remix": True})
    yours = (await help_fields(discord_fake))["Yours"]
    assert len(yours) <= 1024, len(yours)
    assert "Your option sets: `--set00" in yours and "Remix mode is on" in yours, yours
    assert "Your suffix, added to each new prompt: `in soft morning light" in yours and "…`" in yours, yours
    assert "You may have **2** request(s) generating at once (0 now); up to 3 more wait their turn" in yours, yours
    assert yours.endswith("`/privacy` what is kept about you, and erasing your words"), yours
