"""/blend (cogs/blend.py): Midjourney's blend of two to five images, with no words needed, carried out as an
/imagine whose references are the images."""

from __future__ import annotations

from bot import derive
from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from cogs.blend import BLEND
from tests.conftest import RunningBot, answer_data, answer_given, png_bytes
from tests.e2e.edits import states
from tests.e2e.test_batches import custom_id as custom_id_of
from tests.e2e.test_references import link
from tests.e2e.test_rework import delivered, fetch


async def test_blend_sends_the_images_with_a_prompt_asking_for_them_blended(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    one = discord_fake.add_attachment(png_bytes(colour=(200, 30, 30)), "cat.png", "image/png")
    two = discord_fake.add_attachment(png_bytes(colour=(30, 30, 200)), "sea.png", "image/png")
    blend = await discord_fake.slash_command("blend", {"image1": one, "image2": two})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    create = seaart.creates[0].json
    assert create["prompt"] == f"{BLEND}."
    assert create["image_urls"] == [one["url"], two["url"]]
    assert blend.original_message_id is not None
    message = discord_fake.messages[blend.original_message_id]
    assert message.files and "Done" in message.embeds[0]["title"] and "2 reference images" in str(message.embeds)
    # With no words, its message says what was asked: the blend.
    assert message.embeds[0]["description"] == f"{BLEND}."

    # The member's words say how, and Midjourney's parameters at their end are read as /imagine reads them.
    three = discord_fake.add_attachment(png_bytes(colour=(30, 200, 30)), "hat.png", "image/png")
    worded = await discord_fake.slash_command(
        "blend", {"image1": one, "image2": two, "image3": three, "prompt": "as a watercolour --ar 16:9"}
    )
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=20)
    create = seaart.creates[1].json
    assert (create["prompt"], create["aspect_ratio"]) == (f"{BLEND}: as a watercolour", "16:9")
    # Its message and alt text show the member's words, not the bot's instruction before them.
    shown = discord_fake.messages[worded.original_message_id or 0]
    assert shown.embeds[0]["description"] == "as a watercolour"
    assert shown.attachments[0]["description"] == "as a watercolour"
    assert create["image_urls"] == [one["url"], two["url"], three["url"]]
    # A Vary of it is worded from the blend's prompt, its images sent again after it (as many as SeaArt's Nano Banana
    # 2 takes: three in all); its message shows the member's words.
    vary = await discord_fake.click(shown.id, custom_id_of(shown, "Vary (Subtle)"))
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)
    varied = seaart.creates[2].json
    assert varied["prompt"] == derive.varied(f"{BLEND}: as a watercolour", "vary_subtle", references=3)
    assert varied["image_urls"][1:] == [one["url"], two["url"]]
    again = discord_fake.messages[vary.original_message_id or 0]
    assert again.embeds[0]["description"] == "as a watercolour"
    assert again.attachments[0]["description"] == "as a watercolour"

    # Refused as /imagine refuses, privately, nothing made: a file no provider takes.
    gif = discord_fake.add_attachment(b"GIF89a" + b"\0" * 64, "moving.gif", "image/gif")
    refused = await discord_fake.slash_command("blend", {"image1": one, "image2": gif})
    await answer_given(discord_fake, refused)
    answer = answer_data(discord_fake, refused)
    assert answer.get("flags", 0) & 64 and "moving.gif" in str(answer.get("content"))
    assert len(seaart.creates) == 3

    # Four images on Nano Banana 2, which SeaArt takes three of: refused, naming the model that takes them all.
    four = {f"image{n}": discord_fake.add_attachment(png_bytes(), f"{n}.png", "image/png") for n in range(1, 5)}
    refused = await discord_fake.slash_command("blend", four)
    await answer_given(discord_fake, refused)
    text = str(answer_data(discord_fake, refused).get("content"))
    assert "Nano Banana 2 takes at most 3 reference image(s); you gave 4." in text
    assert "Nano Banana Pro takes up to 14: ask for `model:Nano Banana Pro`." in text
    await discord_fake.slash_command("blend", {**four, "model": "nano_banana_pro"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=20)
    assert len(seaart.creates[3].json["image_urls"]) == 4


async def test_images_already_in_the_channel_are_blended_by_their_links_and_fewer_than_two_are_refused(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Two of the bot's own results, linked in `references:` (no download and upload again), blended; one image,
    attached or linked, is refused privately, nothing made or charged."""
    first = await delivered(discord_fake, await discord_fake.slash_command("imagine", {"prompt": "a red cat"}))
    second = await delivered(discord_fake, await discord_fake.slash_command("imagine", {"prompt": "a blue sea"}))
    links = f"{link(discord_fake, first)} {link(discord_fake, second)}"
    blend = await discord_fake.slash_command("blend", {"references": links, "prompt": "as ink"})
    message = await delivered(discord_fake, blend)
    create = seaart.creates[2].json
    assert create["prompt"] == f"{BLEND}: as ink" and len(create["image_urls"]) == 2
    shown = [(await fetch(url))[1] for url in create["image_urls"]]
    assert shown == [first.files[0].data, second.files[0].data]
    assert message.embeds[0]["description"] == "as ink" and "2 reference images" in str(message.embeds)

    # An attachment and a link make two as well.
    one = discord_fake.add_attachment(png_bytes(colour=(200, 30, 30)), "cat.png", "image/png")
    both = {"image1": one, "references": link(discord_fake, second)}
    await delivered(discord_fake, await discord_fake.slash_command("blend", both))
    assert seaart.creates[3].json["image_urls"][0] == one["url"] and len(seaart.creates[3].json["image_urls"]) == 2

    for options in ({"image1": one}, {"references": link(discord_fake, first)}, {}):
        refused = await discord_fake.slash_command("blend", options)
        await answer_given(discord_fake, refused)
        answer = answer_data(discord_fake, refused)
        assert answer.get("flags", 0) & 64, options
        assert "A blend needs at least 2 images; you gave" in str(answer.get("content")), options
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=20)
    assert len(seaart.creates) == 4
