"""The Edit form's "Where" choice (cogs/region_field.py, bot/regions.py: Midjourney's Vary (Region), by area), through
the fake Discord and the fake SeaArt: the words and the part alone to change go to the provider, the message shows
the member's words and says which part was edited, Change prompt asks for the same part with new words; a part with
a reframe, with no words, or not offered (a modified client) is refused, nothing made. Edit with Nano Banana's form
has the same choice, for a member's image (the first of its images) and the bot's."""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, png_bytes
from tests.e2e.edits import states
from tests.e2e.test_batches import fields, refusal
from tests.e2e.test_change_prompt import opened_form
from tests.e2e.test_permutations import shown_text
from tests.e2e.test_remix import INSTRUCTION, MENU, form_of
from tests.e2e.test_rework import delivered, imagine, press
from tests.e2e.test_typed_back import refusal_of

KEPT = "keep everything else in it exactly as it is."
REGION = "bananacord:remix:region"  # Edit with Nano Banana's Where (cogs/remix.py)
SHAPE = "bananacord:remix:shape"


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
    # The image's row is written delivered just after its message shows it: waited for, not raced.
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=10)
    assert len(seaart.creates) == 1


async def test_edit_with_nano_banana_changes_one_part_of_a_members_image_or_the_bots(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    # A member's message of two photos: the part is the first one's, and the form says so.
    photos = [discord_fake.add_attachment(png_bytes(), f"p{i}.png", "image/png") for i in range(2)]
    post = await discord_fake.post_message("my cat and a hat", attachments=photos, user_id=discord_fake.admin_id)
    used = await discord_fake.message_command(MENU, post.id)
    form: Any = await form_of(discord_fake, used)
    (where,) = [c for c in form["components"] if c["component"]["custom_id"] == REGION]
    assert where["description"].startswith("Of the first image, only that part changes")
    assert len(where["component"]["options"]) == 10
    submit = await discord_fake.submit_modal(used, {INSTRUCTION: "put the hat on the cat", REGION: "top"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    create = seaart.creates[-1].json
    assert create["prompt"] == f"put the hat on the cat. Change only the top half of the first image, and {KEPT}"
    assert create["image_urls"] == [p["url"] for p in photos]
    # No image of the bot's, so no "Made from" to name the part: the message shows the prompt as sent.
    shown = discord_fake.messages[submit.original_message_id or 0]
    assert shown_text(shown.embeds[0]["description"]) == create["prompt"]

    # The bot's own image: its message names the part, and Change prompt asks for the same part with new words.
    original = await imagine(discord_fake, {"prompt": "a knight in a courtyard"})
    used = await discord_fake.message_command(MENU, original.id)
    form = await form_of(discord_fake, used)
    (where,) = [c for c in form["components"] if c["component"]["custom_id"] == REGION]
    assert where["description"].startswith("Only that part changes")
    edited = await delivered(
        discord_fake, await discord_fake.submit_modal(used, {INSTRUCTION: "a red hat", REGION: "bottom-right"})
    )
    assert (
        seaart.creates[-1].json["prompt"]
        == f"a red hat. Change only the bottom-right quarter of this image, and {KEPT}"
    )
    assert "An edit of the bottom-right quarter of the image of" in shown_text(fields(edited)["Made from"])
    again = await press(discord_fake, edited, "Change prompt")
    assert (await opened_form(discord_fake, again))["value"] == "a red hat"
    await delivered(discord_fake, await discord_fake.submit_modal(again, {"prompt": "a blue scarf"}))
    assert seaart.creates[-1].json["prompt"] == (
        f"a blue scarf. Change only the bottom-right quarter of this image, and {KEPT}"
    )

    # Refused as the Edit button's form refuses them: a part with a reframe, a part with no words, one not offered.
    made = len(seaart.creates)
    for values, refused, modified in (
        ({INSTRUCTION: "wider", SHAPE: "zoom-out", REGION: "top"}, "You picked the top half and a way to", False),
        ({INSTRUCTION: "", REGION: "centre"}, "Say what should change in the centre of the image.", False),
        ({INSTRUCTION: "a hat", REGION: "middle-ish"}, "Pick one part of the image from the list", True),
    ):
        used = await discord_fake.message_command(MENU, original.id)
        await form_of(discord_fake, used)
        refused_submit = await discord_fake.submit_modal(used, values, modified_client=modified)
        await discord_fake.wait_for(lambda s=refused_submit: bool(s.callbacks), timeout=10)
        assert refused in refusal_of(refusal(discord_fake, refused_submit.id)), values
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=10)
    assert len(seaart.creates) == made
