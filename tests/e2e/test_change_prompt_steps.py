"""Change prompt under an image made from another (a Vary, an edit, a reply, a zoom out, a pan), through the fake
Discord: the same step again, from the same image, with the member's words changed (Midjourney's Remix), charged to
whoever pressed it; not under a re-render (bot/derive.py ``reworded``, cogs/imagine.py ``Imagine._rework_with``)."""

from __future__ import annotations

from typing import Any

from bot import derive
from bot.config import Settings
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, answer_given, png_bytes
from tests.e2e.edits import told_privately
from tests.e2e.test_buttons import ephemeral_reply, finished_labels, labels
from tests.e2e.test_change_prompt import opened_form
from tests.e2e.test_replies import answer_to
from tests.e2e.test_rework import (
    STRANGER,
    charges,
    delivered,
    fetch,
    garden_with_a_blocked_term,
    imagine,
    jobs,
    made_from,
    press,
    query,
    settled,
)

STRANGER_KW: dict[str, Any] = {"user_id": STRANGER, "permissions": PLAIN_MEMBER_PERMISSIONS}


def job_ids(settings: Settings) -> list[str]:
    return [str(row[0]) for row in query(settings, "SELECT id FROM jobs ORDER BY created_at")]


async def reworded(discord_fake: FakeDiscord, message: FakeMessage, shown: str, words: str, **kw: Any) -> FakeMessage:
    """Change prompt pressed under ``message``: its form holds ``shown``; sent with ``words``, the new image."""
    opened = await press(discord_fake, message, "Change prompt", **kw)
    assert (await opened_form(discord_fake, opened)).get("value", "") == shown  # an empty box has no value
    return await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": words}))


async def test_a_vary_is_varied_again_from_the_same_image_by_the_new_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The form holds the prompt the image was made from; its submit is the same Vary of the same image (and the
    request's references), by the new words, in the same shape; `--ar` is left out and said so privately."""
    ref = discord_fake.add_attachment(png_bytes(colour=(200, 90, 10)), "boat.png", "image/png")
    original = await imagine(discord_fake, {"prompt": "a quiet harbour", "aspect_ratio": "3:2", "image1": ref})
    varied = await delivered(discord_fake, await press(discord_fake, original, "Vary (Subtle)"))
    assert labels(discord_fake, varied.id) == finished_labels("Re-render 2K", "Re-render 4K", square=False)
    opened = await press(discord_fake, varied, "Change prompt", **STRANGER_KW)
    form = await opened_form(discord_fake, opened)
    assert form["value"] == "a quiet harbour" and "varied again" in form["description"]

    submit = await discord_fake.submit_modal(opened, {"prompt": "a quiet harbour at night --ar 16:9"})
    again = await delivered(discord_fake, submit)
    vary, sent = seaart.creates[1].json, seaart.creates[2].json
    assert sent["prompt"] == derive.varied("a quiet harbour at night", "vary_subtle", references=2)
    assert sent["image_urls"] == vary["image_urls"] and sent["aspect_ratio"] == "3:2"
    assert (await fetch(sent["image_urls"][0]))[1] == original.files[0].data  # the image varied, not the Vary's
    assert again.embeds[0]["description"] == "a quiet harbour at night"
    link = f"/{original.channel_id}/{original.id})"
    assert "A subtle variation" in made_from(again) and link in made_from(again)
    assert await told_privately(discord_fake, submit) == [
        (
            "Left out `--ar 16:9`: this keeps the image's shape and options. For another shape, press **Edit** and "
            "pick it under *Reframe*.",
            64,
        )
    ]
    await settled(discord_fake, settings)
    assert charges(settings, STRANGER) == [("reserve", 1), ("commit", 1)]
    # Its own Change prompt holds the new words, and a Vary of it words it from them.
    await reworded(discord_fake, again, "a quiet harbour at night", "a quiet harbour in fog")
    assert seaart.creates[3].json["prompt"] == derive.varied("a quiet harbour in fog", "vary_subtle", references=2)


async def test_an_edit_or_a_reply_is_made_again_from_the_same_image_with_the_new_instruction(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a cat on a sofa", "resolution": "2K"})
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    edited = await delivered(discord_fake, await discord_fake.submit_modal(edit, {"instruction": "make it night"}))

    again = await reworded(discord_fake, edited, "make it night", "make it dawn", **STRANGER_KW)
    sent = seaart.creates[2].json
    assert (sent["prompt"], sent["resolution"], len(sent["image_urls"])) == ("make it dawn", "2K", 1)
    assert (await fetch(sent["image_urls"][0]))[1] == original.files[0].data
    assert again.embeds[0]["description"] == "make it dawn"
    assert "An edit" in made_from(again) and f"/{original.id})" in made_from(again)

    # A reply's answer offers it too: the reply's edit again, with other words.
    reply = await discord_fake.post_message("now in snow", reply_to=original.id)
    answer = await answer_to(discord_fake, settings, reply)
    assert "Change prompt" in labels(discord_fake, answer.id)
    await reworded(discord_fake, answer, "now in snow", "now in rain")
    sent = seaart.creates[4].json
    assert sent["prompt"] == "now in rain" and (await fetch(sent["image_urls"][0]))[1] == original.files[0].data

    # No words left to edit with (a modified client sends the required box empty): refused, nothing made.
    opened = await press(discord_fake, edited, "Change prompt")
    await opened_form(discord_fake, opened)
    refused = await discord_fake.submit_modal(opened, {"prompt": "  "}, modified_client=True)
    assert "the new prompt is empty" in await ephemeral_reply(discord_fake, refused)
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 5
    assert charges(settings, STRANGER) == [("reserve", 2), ("commit", 2)]


async def test_a_zoom_out_or_a_pan_is_taken_again_with_words_added_once(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A one-click zoom out has no words: the form opens empty, and the words sent are added to the same zoom out
    (Midjourney's Custom Zoom); changed again, they take the place of those added, not another "Also"."""
    original = await imagine(discord_fake, {"prompt": "a lighthouse on a rock", "aspect_ratio": "3:2"})
    zoomed = await delivered(discord_fake, await press(discord_fake, original, "Zoom out"))
    lake = await reworded(discord_fake, zoomed, "", "add a lake")
    zoom = derive.Frame(zoom_out=True)
    sent = seaart.creates[2].json
    assert (sent["prompt"], sent["aspect_ratio"]) == (derive.framed("add a lake", zoom)[0], "3:2")
    assert (await fetch(sent["image_urls"][0]))[1] == original.files[0].data
    assert lake.embeds[0]["description"] == "a lighthouse on a rock\n\nAlso asked: add a lake"
    await reworded(discord_fake, lake, "add a lake", "add a boat")
    assert seaart.creates[3].json["prompt"] == derive.framed("add a boat", zoom)[0]

    # A pan to the right of the 3:2 image (into 21:9), again with a bridge.
    panned = await delivered(discord_fake, await press(discord_fake, original, "Pan right"))
    bridged = await reworded(discord_fake, panned, "", "add a bridge")
    sent = seaart.creates[5].json
    assert sent["prompt"] == derive.framed("add a bridge", derive.Frame(ratio="21:9", pan="right"))[0]
    assert sent["aspect_ratio"] == "21:9" and (await fetch(sent["image_urls"][0]))[1] == original.files[0].data
    assert "extended to the right" in made_from(bridged)
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 6


async def test_a_blocked_edit_can_be_reworded_and_a_rerender_offers_nothing_to_change(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a knight in a field"})
    seaart.script("content_blocked")
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    submit = await discord_fake.submit_modal(edit, {"instruction": "add a battle"})
    await discord_fake.wait_for(lambda: [state for _, state in jobs(settings)] == ["delivered", "blocked"], timeout=20)
    blocked = discord_fake.messages[submit.original_message_id or 0]
    await discord_fake.wait_for(lambda: labels(discord_fake, blocked.id) == ["Change prompt"], timeout=10)
    await reworded(discord_fake, blocked, "add a battle", "add a tent")
    sent = seaart.creates[2].json
    assert sent["prompt"] == "add a tent" and (await fetch(sent["image_urls"][0]))[1] == original.files[0].data

    rerender = await delivered(discord_fake, await press(discord_fake, original, "Re-render 4K"))
    assert "Change prompt" not in labels(discord_fake, rerender.id)
    crafted_id = f"bananacord:job:reprompt:{job_ids(settings)[-1]}"
    rerender.components.append({"type": 1, "components": [{"type": 2, "style": 2, "custom_id": crafted_id}]})
    crafted = await discord_fake.click(rerender.id, crafted_id)
    assert "no words of its own to change" in await ephemeral_reply(discord_fake, crafted)
    # Charged for the images received only: the blocked edit was refunded.
    paid = [("reserve", 1), ("commit", 1), ("reserve", 1), ("refund", -1), ("reserve", 1), ("commit", 1)]
    paid += [("reserve", 3), ("commit", 3)]  # a 4K re-render: 3 units
    await discord_fake.wait_for(lambda: charges(settings, discord_fake.member_id) == paid, timeout=10)
    assert len(seaart.creates) == 4


async def test_a_blend_s_vary_is_reworded_by_the_member_s_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    one = discord_fake.add_attachment(png_bytes(colour=(200, 30, 30)), "cat.png", "image/png")
    two = discord_fake.add_attachment(png_bytes(colour=(30, 30, 200)), "sea.png", "image/png")
    blend = await delivered(
        discord_fake, await discord_fake.slash_command("blend", {"image1": one, "image2": two, "prompt": "as ink"})
    )
    varied = await delivered(discord_fake, await press(discord_fake, blend, "Vary (Strong)"))
    again = await reworded(discord_fake, varied, "as ink", "as pastel")
    assert seaart.creates[2].json["prompt"] == derive.varied(derive.blend_prompt("as pastel"), "vary", references=3)
    assert again.embeds[0]["description"] == "as pastel"


async def test_blocked_words_and_a_ban_refuse_a_step_reworded_and_nothing_is_made(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await garden_with_a_blocked_term(discord_fake, settings)
    for step in ("Vary (Strong)", "Zoom out"):
        made = await delivered(discord_fake, await press(discord_fake, original, step))
        opened = await press(discord_fake, made, "Change prompt")
        await opened_form(discord_fake, opened)
        submit = await discord_fake.submit_modal(opened, {"prompt": "a forbidden statue"})
        assert "not allow" in await ephemeral_reply(discord_fake, submit), step
    ban = await discord_fake.slash_command(
        "mod ban", {"member": STRANGER, "reason": "spam"}, user_id=discord_fake.moderator_id
    )
    await answer_given(discord_fake, ban)
    refused = await press(discord_fake, made, "Change prompt", **STRANGER_KW)
    assert "banned" in await ephemeral_reply(discord_fake, refused)
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 3 and charges(settings, STRANGER) == []
