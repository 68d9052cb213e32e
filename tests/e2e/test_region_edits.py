"""The Edit form's "Where" choice (cogs/region_field.py, bot/regions.py: Midjourney's Vary (Region), by area), through
the fake Discord and the fake SeaArt: the words and the part alone to change go to the provider, the message shows
the member's words and says which part was edited, Change prompt asks for the same part with new words; a part with
a reframe, with no words, or not offered (a modified client) is refused, nothing made."""

from __future__ import annotations

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot
from tests.e2e.edits import states
from tests.e2e.test_batches import fields, refusal
from tests.e2e.test_change_prompt import opened_form
from tests.e2e.test_permutations import shown_text
from tests.e2e.test_rework import delivered, imagine, press
from tests.e2e.test_typed_back import refusal_of

KEPT = "keep everything else in it exactly as it is."


async def test_an_edit_of_one_part_says_which_and_change_prompt_keeps_it(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a knight in a courtyard"})
    opened = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    (where,) = [c for c in opened.callbacks[0]["data"]["components"] if c["component"]["custom_id"] == "region"]
    assert where["label"] == "Where (optional)"
    options = [o["value"] for o in where["component"]["options"]]
    assert options[0] == "anywhere" and "top-left" in options and len(options) == 10

    edited = await delivered(
        discord_fake, await discord_fake.submit_modal(opened, {"instruction": "a red hat", "region": "top-left"})
    )
    create = seaart.creates[-1].json
    assert create["prompt"] == f"a red hat. Change only the top-left quarter of this image, and {KEPT}"
    assert shown_text(edited.embeds[0]["description"]) == "a red hat"
    assert "An edit of the top-left quarter of the image of" in shown_text(fields(edited)["Made from"])

    again = await press(discord_fake, edited, "Change prompt")
    assert (await opened_form(discord_fake, again))["value"] == "a red hat"
    await delivered(discord_fake, await discord_fake.submit_modal(again, {"prompt": "a blue scarf"}))
    assert (
        seaart.creates[-1].json["prompt"] == f"a blue scarf. Change only the top-left quarter of this image, and {KEPT}"
    )
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)


async def test_a_part_with_a_reframe_or_no_words_or_not_offered_is_refused(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a knight in a courtyard"})
    for values, refused, modified in (
        ({"instruction": "wider", "shape": "zoom-out", "region": "top"}, "You picked the top half and a way to", False),
        ({"instruction": "", "region": "centre"}, "Say what should change in the centre of the image.", False),
        ({"instruction": "a hat", "region": "middle-ish"}, "Pick one part of the image from the list", True),
    ):
        opened = await press(discord_fake, original, "Edit")
        await discord_fake.wait_for(lambda opened=opened: bool(opened.callbacks), timeout=10)
        submitted = await discord_fake.submit_modal(opened, values, modified_client=modified)
        await discord_fake.wait_for(lambda submitted=submitted: bool(submitted.callbacks), timeout=10)
        assert refused in refusal_of(refusal(discord_fake, submitted.id)), values
    assert len(seaart.creates) == 1 and states(settings) == ["delivered"]
