"""Midjourney's ``--sref <link>`` (``--cref``, ``--oref``), through the fake Discord and the fake SeaArt: the image is a
reference, and the prompt sent says what it is for by its place among the request's references (bot/prompt_links.py,
bot/reference_roles.py), in /imagine, a Vary of its result (the result first: the place moves), a re-render (the
result alone: nothing said), the Edit form and a reply. The image's message shows the member's words and which
reference is for what. Midjourney's codes (``--sref 1234``) are left out and the member told how to give an image;
a link the bot will not fetch is refused, nothing made."""

from __future__ import annotations

from bot.config import Settings
from bot.derive import BLEND
from bot.prompt_parameters import REFERENCE_ROLE, WEIGHT_ALONE
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from cogs.prompt_form import STYLE_KEPT
from tests.conftest import RunningBot, png_bytes
from tests.e2e.edits import followups, states
from tests.e2e.test_batches import fields, refusal
from tests.e2e.test_change_prompt import opened_form
from tests.e2e.test_permutations import shown_text
from tests.e2e.test_rework import delivered, imagine, press
from tests.e2e.test_typed_back import refusal_of

STYLE_TAKEN = "Take only the style of the {} image: its colours, light, medium and texture, not what it shows."


def path(url: str) -> str:
    return url.split("?", 1)[0]


async def test_sref_sends_its_image_with_what_it_is_for_through_vary_and_re_render(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    fox = discord_fake.add_attachment(png_bytes(colour=(200, 120, 40)), "fox.png", "image/png")
    style = discord_fake.add_attachment(png_bytes(colour=(20, 60, 200)), "style.png", "image/png")
    signature = style["url"].split("hm=")[1][:16]
    command = await discord_fake.slash_command(
        "imagine", {"prompt": f"this fox in the snow --sref {style['url']} --ar 16:9", "image1": fox}
    )
    original = await delivered(discord_fake, command)
    create = seaart.creates[-1].json
    assert create["image_urls"] == [fox["url"], style["url"]]
    assert create["prompt"] == f"this fox in the snow. {STYLE_TAKEN.format('second')}"
    assert create["aspect_ratio"] == "16:9"  # the parameter after --sref's link read as ever
    # The message shows the member's words, and which reference is for what; no note was owed.
    assert shown_text(original.embeds[0]["description"]) == "this fox in the snow"
    assert "2 reference images (1 for style)" in shown_text(fields(original)["Model"])
    assert signature not in str(original.embeds)
    assert followups(discord_fake, command) == []

    # A Vary puts the result first: the style image is the third now, and the prompt says so.
    vary = await press(discord_fake, original, "Vary (Strong)")
    await delivered(discord_fake, vary)
    create = seaart.creates[-1].json
    assert [path(url) for url in create["image_urls"][1:]] == [path(fox["url"]), path(style["url"])]
    assert create["prompt"].endswith(f"this fox in the snow. {STYLE_TAKEN.format('third')}")

    # A re-render sends the result alone: nothing to say of a style image it does not send.
    render = await press(discord_fake, original, "Re-render 2K")
    await delivered(discord_fake, render)
    create = seaart.creates[-1].json
    assert len(create["image_urls"]) == 1 and create["prompt"] == "this fox in the snow"
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)


async def test_cref_in_an_edit_form_and_sref_in_a_reply_go_after_the_image_edited(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    face = discord_fake.add_attachment(png_bytes(colour=(240, 200, 180)), "face.png", "image/png")
    style = discord_fake.add_attachment(png_bytes(colour=(20, 60, 200)), "style.png", "image/png")
    original = await imagine(discord_fake, {"prompt": "a knight in a courtyard"})
    (shown,) = original.attachments

    opened = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    await discord_fake.submit_modal(opened, {"instruction": f"give him this face --cref {face['url']}"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=20)
    create = seaart.creates[-1].json
    assert [path(url) for url in create["image_urls"]] == [path(shown["url"]), path(face["url"])]
    assert create["prompt"] == (
        "give him this face. Draw the same character as in the second image, with the same face, hair and clothes."
    )

    await discord_fake.post_message(f"make it a woodcut --sref {style['url']}", reply_to=original.id)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)
    create = seaart.creates[-1].json
    assert [path(url) for url in create["image_urls"]] == [path(shown["url"]), path(style["url"])]
    assert create["prompt"] == f"make it a woodcut. {STYLE_TAKEN.format('second')}"


async def test_midjourney_s_codes_are_left_out_and_a_link_the_bot_will_not_fetch_is_refused(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    command = await discord_fake.slash_command("imagine", {"prompt": "a fox in the snow --sref 1234 random --sw 50"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    create = seaart.creates[-1].json
    assert create["prompt"] == "a fox in the snow" and "image_urls" not in create
    await discord_fake.wait_for(lambda: bool(command.followup_ids), timeout=10)
    ((note, flags),) = followups(discord_fake, command)
    assert flags & 64 and note.startswith("Left out `--sref 1234 random --sw 50`: "), note
    assert note.endswith(REFERENCE_ROLE)

    for typed, refused in (
        ("--sref https://example.com/style.png", "`--sref` takes an image on Discord, not one from `example.com`"),
        ("--cref https://discord.com/channels/1/2/3", "Link 1 in the prompt's `--cref` is not a message in this"),
    ):
        command = await discord_fake.slash_command("imagine", {"prompt": f"a fox {typed}"})
        await discord_fake.wait_for(lambda command=command: bool(command.callbacks), timeout=10)
        assert refused in refusal_of(refusal(discord_fake, command.id))
    assert states(settings) == ["delivered"] and len(seaart.creates) == 1


async def test_change_prompt_keeps_the_style_image_and_a_new_sref_takes_its_place(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    style = discord_fake.add_attachment(png_bytes(colour=(20, 60, 200)), "style.png", "image/png")
    other = discord_fake.add_attachment(png_bytes(colour=(200, 20, 60)), "other.png", "image/png")
    original = await imagine(discord_fake, {"prompt": f"a heron --sref {style['url']}"})

    opened = await press(discord_fake, original, "Change prompt")
    form = await opened_form(discord_fake, opened)
    assert form["value"] == "a heron"  # the member's words, no sentence
    assert form["description"] == STYLE_KEPT  # told the style image stays
    await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "a heron at night"}))
    create = seaart.creates[-1].json
    assert create["image_urls"] == [style["url"]]
    assert create["prompt"] == f"a heron at night. {STYLE_TAKEN.format('x').replace('the x image', 'the image')}"

    opened = await press(discord_fake, original, "Change prompt")
    await opened_form(discord_fake, opened)
    submitted = await discord_fake.submit_modal(opened, {"prompt": f"a heron at dawn --sref {other['url']}"})
    await delivered(discord_fake, submitted)
    create = seaart.creates[-1].json
    assert create["image_urls"] == [other["url"]]  # the new style in the old one's place, not beside it
    assert create["prompt"].startswith("a heron at dawn. Take only the style of the image:")
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)


async def test_sref_takes_a_message_s_link_its_images_each_for_style_and_an_edit_refuses_one(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Right-click → Copy Message Link is how many members copy one of the bot's results: after --sref it is that
    message's images, read as ``references:`` reads a message (only where the member may read it), each for its
    style. An edit takes images' own links, as it does without --sref."""
    earlier = await imagine(discord_fake, {"prompt": "a watercolour of a harbour"})
    (shown,) = earlier.attachments
    link = f"https://discord.com/channels/{discord_fake.guild_id}/{earlier.channel_id}/{earlier.id}"
    later = await imagine(discord_fake, {"prompt": f"a lighthouse --sref {link}"})
    create = seaart.creates[-1].json
    assert [path(url) for url in create["image_urls"]] == [path(shown["url"])]
    assert create["prompt"] == f"a lighthouse. {STYLE_TAKEN.format('x').replace('the x image', 'the image')}"
    assert "1 reference image (1 for style)" in shown_text(fields(later)["Model"])

    opened = await press(discord_fake, later, "Edit")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    submitted = await discord_fake.submit_modal(opened, {"instruction": f"at night --sref {link}"})
    await discord_fake.wait_for(lambda: bool(submitted.callbacks), timeout=10)
    assert "An edit takes images' own links, not messages'" in refusal_of(refusal(discord_fake, submitted.id))
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=20)  # the edit made nothing


async def test_blend_with_sref_blends_the_two_in_the_third_s_style(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """`/blend` with only `--sref <link>` as its words: the blend asked for, then what the third image is for (its
    instruction's colon not left before the sentence)."""
    cat = discord_fake.add_attachment(png_bytes(colour=(200, 120, 40)), "cat.png", "image/png")
    hat = discord_fake.add_attachment(png_bytes(colour=(40, 120, 200)), "hat.png", "image/png")
    style = discord_fake.add_attachment(png_bytes(colour=(20, 200, 60)), "style.png", "image/png")
    await discord_fake.slash_command("blend", {"image1": cat, "image2": hat, "prompt": f"--sref {style['url']}"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    create = seaart.creates[-1].json
    assert create["image_urls"] == [cat["url"], hat["url"], style["url"]]
    assert create["prompt"] == f"{BLEND}. {STYLE_TAKEN.format('third')}"


async def test_sw_and_cw_weigh_their_images_in_words_through_a_vary_and_a_weight_out_of_range_is_refused(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Midjourney's ``--sw 300`` and ``--cw 0`` (face only) with the links they weigh: said in the prompt sent, shown
    on the Model line, kept by a Vary; a message's images after ``--sref`` take its weight; ``--cw 150`` is refused,
    nothing made; a weight with no link for it is named back with where it goes."""
    style = discord_fake.add_attachment(png_bytes(colour=(20, 60, 200)), "style.png", "image/png")
    face = discord_fake.add_attachment(png_bytes(colour=(240, 200, 180)), "face.png", "image/png")
    command = await discord_fake.slash_command(
        "imagine", {"prompt": f"a knight --sref {style['url']} --sw 300 --cref {face['url']} --cw 0 --ar 3:4"}
    )
    original = await delivered(discord_fake, command)
    create = seaart.creates[-1].json
    assert create["image_urls"] == [style["url"], face["url"]] and create["aspect_ratio"] == "3:4"
    assert create["prompt"] == (
        "a knight. Follow the style of the first image closely: its colours, light, medium and texture, not what it "
        "shows. Draw the same character as in the second image, keeping only the face: the hair and clothes need "
        "not match."
    )
    assert shown_text(original.embeds[0]["description"]) == "a knight"
    assert "2 reference images (1 for style at --sw 300, 1 for its character at --cw 0)" in shown_text(
        fields(original)["Model"]
    )
    assert followups(discord_fake, command) == []  # nothing left out, no note owed

    await delivered(discord_fake, await press(discord_fake, original, "Vary (Subtle)"))
    sent = seaart.creates[-1].json["prompt"]
    assert "Follow the style of the second image closely" in sent and "third image, keeping only the face" in sent

    link = f"https://discord.com/channels/{discord_fake.guild_id}/{original.channel_id}/{original.id}"
    await imagine(discord_fake, {"prompt": f"a castle --sref {link} --sw 25"})
    assert seaart.creates[-1].json["prompt"].startswith("a castle. Take only a light touch of the style of the image")

    refused = await discord_fake.slash_command("imagine", {"prompt": f"a knight --cref {face['url']} --cw 150"})
    await discord_fake.wait_for(lambda: bool(refused.callbacks), timeout=10)
    assert "`--cw` takes a whole number from 0 to 100" in refusal_of(refusal(discord_fake, refused.id))

    alone = await discord_fake.slash_command("imagine", {"prompt": "a knight --sw 300"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=20)
    assert seaart.creates[-1].json["prompt"] == "a knight" and len(seaart.creates) == 4
    await discord_fake.wait_for(lambda: bool(alone.followup_ids), timeout=10)
    ((note, _),) = followups(discord_fake, alone)
    assert note.startswith("Left out `--sw 300`: ") and note.endswith(WEIGHT_ALONE)


async def test_style_and_character_images_attached_to_imagine_are_given_their_roles_and_weights(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """/imagine's `style_image` and `character_image`: an attached image for its style or character, as `--sref` and
    `--cref` with a link are, after the plain references; the words' `--sw` and `--cw` weigh them."""
    fox = discord_fake.add_attachment(png_bytes(colour=(200, 120, 40)), "fox.png", "image/png")
    style = discord_fake.add_attachment(png_bytes(colour=(20, 60, 200)), "style.png", "image/png")
    face = discord_fake.add_attachment(png_bytes(colour=(240, 200, 180)), "face.png", "image/png")
    command = await discord_fake.slash_command(
        "imagine",
        {
            "prompt": "this fox as a knight --sw 300 --cw 50",
            "image1": fox,
            "style_image": style,
            "character_image": face,
        },
    )
    shown = await delivered(discord_fake, command)
    create = seaart.creates[-1].json
    assert create["image_urls"] == [fox["url"], style["url"], face["url"]]
    assert create["prompt"] == (
        "this fox as a knight. Follow the style of the second image closely: its colours, light, medium and texture, "
        "not what it shows. Draw the same character as in the third image, keeping the face and hair: the clothes "
        "need not match."
    )
    assert "3 reference images (1 for style at --sw 300, 1 for its character at --cw 50)" in shown_text(
        fields(shown)["Model"]
    )
    assert followups(discord_fake, command) == []  # the weights taken: nothing left out
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)


async def test_use_as_reference_can_take_only_the_image_s_style_or_character(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Use as reference's *Use it for*, as Midjourney's image menu offers it: the image as it is (as before), or only
    its style (or character, or subject), said in the prompt sent and on the Model line; a choice the form did not
    offer is refused, nothing made."""
    original = await imagine(discord_fake, {"prompt": "a watercolour harbour"})
    opened = await press(discord_fake, original, "Use as reference")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    (role,) = [c for c in opened.callbacks[0]["data"]["components"] if c["component"]["custom_id"] == "role"]
    assert [o["value"] for o in role["component"]["options"]] == ["-", "style", "character", "subject"]

    styled = await delivered(
        discord_fake, await discord_fake.submit_modal(opened, {"prompt": "a lighthouse", "role": "style"})
    )
    create = seaart.creates[-1].json
    assert create["prompt"] == f"a lighthouse. {STYLE_TAKEN.format('x').replace('the x image', 'the image')}"
    assert "1 reference image (1 for style)" in shown_text(fields(styled)["Model"])

    # Change prompt keeps the style image, and a --sw in its words weighs it (no link needed again).
    again = await press(discord_fake, styled, "Change prompt")
    await opened_form(discord_fake, again)
    reweighed = await discord_fake.submit_modal(again, {"prompt": "a lighthouse at dusk --sw 25"})
    await delivered(discord_fake, reweighed)
    assert (
        seaart.creates[-1]
        .json["prompt"]
        .startswith("a lighthouse at dusk. Take only a light touch of the style of the image:")
    )
    assert followups(discord_fake, reweighed) == []  # taken, not left out

    opened = await press(discord_fake, original, "Use as reference")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "the harbour at night"}))
    assert seaart.creates[-1].json["prompt"] == "the harbour at night"  # as it is, as before

    # Given for its style in the form, and another style linked in the words: both go, each for its style.
    other = discord_fake.add_attachment(png_bytes(colour=(200, 20, 60)), "other.png", "image/png")
    opened = await press(discord_fake, original, "Use as reference")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    both = {"prompt": f"a lighthouse --sref {other['url']}", "role": "style"}
    await delivered(discord_fake, await discord_fake.submit_modal(opened, both))
    create = seaart.creates[-1].json
    assert len(create["image_urls"]) == 2 and create["image_urls"][1] == other["url"]
    assert "Take only the style of the first and second images" in create["prompt"]

    opened = await press(discord_fake, original, "Use as reference")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    refused = await discord_fake.submit_modal(opened, {"prompt": "x", "role": "pose"}, modified_client=True)
    await discord_fake.wait_for(lambda: bool(refused.callbacks), timeout=10)
    assert "Pick what to use the image for" in refusal_of(refusal(discord_fake, refused.id))
    assert len(seaart.creates) == 5
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 5, timeout=20)
