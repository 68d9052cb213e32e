"""Midjourney's Remix mode (cogs/remix_vary.py), through the fake Discord and the fake SeaArt: off, a Vary goes at
once as it always has; on (the panel's switch, or `/preferences remix:True`), a Vary button first opens a form holding
the words the image was made from, and the variation is drawn from the words submitted; a Re-roll opens Change
prompt's form, a Zoom out the Edit form with its frame chosen; a form opened before a restart is answered by the next
process; empty words are refused, nothing made."""

from __future__ import annotations

from pathlib import Path

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, make_settings, start_bot
from tests.e2e.edits import states
from tests.e2e.test_batches import refusal
from tests.e2e.test_change_prompt import opened_form
from tests.e2e.test_help import help_fields
from tests.e2e.test_preference_panel import fields, items, panel
from tests.e2e.test_rework import delivered, imagine, press, shape_select
from tests.e2e.test_typed_back import refusal_of


async def test_remix_mode_asks_for_the_words_of_a_vary_and_draws_it_from_them(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, clock)
    try:
        original = await imagine(discord_fake, {"prompt": "a harbour at dawn"})
        # Off (the default): the Vary goes at once.
        await delivered(discord_fake, await press(discord_fake, original, "Vary (Strong)"))
        assert seaart.creates[-1].json["prompt"].startswith("Make a new take on this image:")
        assert "a harbour at dawn" in seaart.creates[-1].json["prompt"]

        message = await panel(discord_fake)
        click = await discord_fake.click(message.id, "bananacord:prefs:remix:on")
        await discord_fake.wait_for(lambda: click.callbacks and fields(message)["Remix (Vary asks for words)"] != "off")
        assert items(message)["bananacord:prefs:remix:off"]["label"] == "Remix: on"
        assert "Remix mode is on" in (await help_fields(discord_fake))["Yours"]

        opened = await press(discord_fake, original, "Vary (Subtle)")
        form = await opened_form(discord_fake, opened)
        assert form["title"] == "Vary (Subtle) with these words" and form["value"] == "a harbour at dawn"
        assert len(seaart.creates) == 2  # nothing made until the words are given
        varied = await delivered(
            discord_fake, await discord_fake.submit_modal(opened, {"prompt": "a harbour at night"})
        )
        sent = seaart.creates[-1].json["prompt"]
        assert sent.startswith("Make a subtle variation of this image:") and "a harbour at night" in sent
        assert "a harbour at dawn" not in sent and "a harbour at night" in str(varied.embeds)

        # A Re-roll asks too: Change prompt's form, the request again with the words submitted.
        opened = await press(discord_fake, original, "Re-roll")
        form = await opened_form(discord_fake, opened)
        assert form["title"] == "Change the prompt" and form["value"] == "a harbour at dawn"
        await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "a harbour at noon"}))
        assert seaart.creates[-1].json["prompt"] == "a harbour at noon"

        # Zoom out opens the Edit form with its frame chosen, for words to add, as Midjourney's Custom Zoom.
        opened = await press(discord_fake, original, "Zoom out")
        await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
        chosen = [o["value"] for o in shape_select(opened.callbacks[0])["options"] if o.get("default")]
        assert opened.callbacks[0]["type"] == 9 and chosen == ["zoom-out"]
        await delivered(discord_fake, await discord_fake.submit_modal(opened, {"instruction": "add a lighthouse"}))
        sent = seaart.creates[-1].json["prompt"]
        assert sent.startswith("Zoom out from this image") and sent.endswith("add a lighthouse")

        opened = await press(discord_fake, original, "Vary (Strong)")
        await opened_form(discord_fake, opened)
        refused = await discord_fake.submit_modal(opened, {"prompt": "   "})
        await discord_fake.wait_for(lambda: bool(refused.callbacks), timeout=10)
        assert "the new prompt is empty" in refusal_of(refusal(discord_fake, refused.id))

        opened = await press(discord_fake, original, "Vary (Strong)")
        await opened_form(discord_fake, opened)
    finally:
        await running.close()
    running = await start_bot(settings, discord_fake, clock)  # the form answered by the next process
    try:
        await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "a harbour in fog"}))
        sent = seaart.creates[-1].json["prompt"]
        assert sent.startswith("Make a new take on this image:") and "a harbour in fog" in sent
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 6, timeout=20)
    finally:
        await running.close()
