"""The "Change prompt" button through the fake Discord: the request again with the member's words changed, its
model, chosen options and references kept, charged to whoever pressed it; under an image, under a request the
provider's filter blocked (cogs/prompt_form.py). Under an image made from another: test_change_prompt_steps.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import derive
from bot.config import Settings
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt, FakeSegmind
from tests.conftest import Clock, RunningBot, answer_given, make_settings, png_bytes, start_bot
from tests.e2e.test_buttons import ephemeral_reply, finished_labels, labels
from tests.e2e.test_rework import (
    KEY,
    STRANGER,
    charges,
    delivered,
    garden_with_a_blocked_term,
    imagine,
    jobs,
    nothing_but_the_original,
    press,
    query,
    routed,
    settled,
)


@pytest.fixture
async def segmind() -> AsyncIterator[FakeSegmind]:
    async with FakeSegmind(api_key=KEY) as fake:
        yield fake


STRANGER_KW: dict[str, Any] = {"user_id": STRANGER, "permissions": PLAIN_MEMBER_PERMISSIONS}


def jobs_ids(settings: Settings) -> list[str]:
    return [str(row[0]) for row in query(settings, "SELECT id FROM jobs ORDER BY created_at")]


async def opened_form(discord_fake: FakeDiscord, click: FakeInteraction) -> dict[str, Any]:
    """The form Discord's client shows for ``click``: its custom_id, title, its prompt box as filled in and the
    description above it."""
    await discord_fake.wait_for(lambda: bool(click.callbacks), timeout=10)
    form = click.callbacks[0]
    assert form["type"] == 9, form
    (label,) = [c for c in form["data"]["components"] if c["component"]["type"] == 4]
    told = {"form_id": form["data"]["custom_id"], "title": form["data"]["title"], "description": label["description"]}
    return {**label["component"], **told}


async def test_change_prompt_makes_the_request_again_with_the_new_words_charged_to_the_presser(
    tmp_path: Path, discord_fake: FakeDiscord, segmind: FakeSegmind
) -> None:
    """The form opens with the words as typed (Midjourney's parameters out: the options hold them); its submit
    keeps the model, the seed (Segmind takes one), the reference and the options, and reads a new `--ar` in the
    words."""
    settings = routed(tmp_path, discord_fake, ("segmind", {"base_url": segmind.base_url}))
    running = await start_bot(settings, discord_fake, Clock())
    try:
        ref = discord_fake.add_attachment(png_bytes(colour=(10, 120, 200)), "fox.png", "image/png")
        options = {"prompt": "a red fox in snow --ar 3:2", "seed": 7, "resolution": "2K", "image1": ref}
        original = await imagine(discord_fake, options)
        assert labels(discord_fake, original.id) == finished_labels("Re-render 4K", square=False)  # 3:2
        sent = segmind.creates[0].json

        opened = await press(discord_fake, original, "Change prompt", **STRANGER_KW)
        form = await opened_form(discord_fake, opened)
        job_id = jobs_ids(settings)[0]
        assert form["form_id"] == f"bananacord:reprompt:{job_id}" and form["title"] == "Change the prompt"
        assert form["value"] == "a red fox in snow" and form["required"] is True and form["max_length"] == 4000
        assert len(segmind.creates) == 1  # nothing made until the form is sent

        submit = await discord_fake.submit_modal(opened, {"prompt": "a red fox in snow at night --ar 16:9"})
        result = await delivered(discord_fake, submit)
        assert result.id != original.id  # a new message; the original keeps its image
        again = segmind.creates[1].json
        assert again["prompt"] == "a red fox in snow at night" and again["aspect_ratio"] == "16:9"
        assert (again["seed"], again["output_resolution"]) == (7, sent["output_resolution"])
        assert again["image_urls"] == sent["image_urls"] and len(sent["image_urls"]) == 1
        assert segmind.creates[1].path == segmind.creates[0].path  # the same model
        assert result.embeds[0]["description"] == "a red fox in snow at night"
        link = f"https://discord.com/channels/{discord_fake.guild_id}/{original.channel_id}/{original.id}"
        made_from = {f["name"]: f["value"] for f in result.embeds[0]["fields"]}["Made from"]
        assert made_from == f"📝 The request of [job {job_id}]({link}), with other words."
        await settled(discord_fake, settings)
        assert charges(settings, STRANGER) == [("reserve", 2), ("commit", 2)]  # a 2K image: 2 units
        assert charges(settings, discord_fake.member_id) == [("reserve", 2), ("commit", 2)]

        # The new image offers it again, filled in with its own words; `--seed` typed takes the seed's place.
        opened = await press(discord_fake, result, "Change prompt")
        assert (await opened_form(discord_fake, opened))["value"] == "a red fox in snow at night"
        await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "a fox cub --seed 99"}))
        assert (segmind.creates[2].json["seed"], segmind.creates[2].json["aspect_ratio"]) == (99, "16:9")
    finally:
        await running.close()


async def test_a_request_the_filter_blocked_can_be_reworded_where_re_roll_would_meet_it_again(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    seaart.script("content_blocked")
    blocked = await discord_fake.slash_command("imagine", {"prompt": "a knight in battle"})
    await discord_fake.wait_for(lambda: jobs(settings) == [(discord_fake.member_id, "blocked")], timeout=20)
    message = discord_fake.messages[blocked.original_message_id or 0]
    await discord_fake.wait_for(lambda: labels(discord_fake, message.id) == ["Change prompt"], timeout=10)

    opened = await press(discord_fake, message, "Change prompt")
    assert (await opened_form(discord_fake, opened))["value"] == "a knight in battle"
    result = await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "a knight at rest"}))
    assert seaart.creates[1].json["prompt"] == "a knight at rest"
    assert "Done" in result.embeds[0]["title"]
    # Charged for the image received only.
    paid = [("reserve", 1), ("refund", -1), ("reserve", 1), ("commit", 1)]
    await discord_fake.wait_for(lambda: charges(settings, discord_fake.member_id) == paid, timeout=10)


async def test_a_blend_is_changed_by_its_words_and_keeps_its_images(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    one = discord_fake.add_attachment(png_bytes(colour=(200, 30, 30)), "cat.png", "image/png")
    two = discord_fake.add_attachment(png_bytes(colour=(30, 30, 200)), "sea.png", "image/png")
    blend = await discord_fake.slash_command("blend", {"image1": one, "image2": two, "prompt": "as a watercolour"})
    message = await delivered(discord_fake, blend)

    opened = await press(discord_fake, message, "Change prompt")
    assert (await opened_form(discord_fake, opened))["value"] == "as a watercolour"
    result = await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "as an oil painting"}))
    again = seaart.creates[1].json
    assert again["prompt"] == derive.blend_prompt("as an oil painting")
    assert again["image_urls"] == seaart.creates[0].json["image_urls"]
    assert result.embeds[0]["description"] == "as an oil painting"


async def test_a_ban_is_refused_on_the_press(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a quiet harbour"})
    ban = await discord_fake.slash_command(
        "mod ban", {"member": STRANGER, "reason": "spam"}, user_id=discord_fake.moderator_id
    )
    await answer_given(discord_fake, ban)
    refused = await press(discord_fake, original, "Change prompt", **STRANGER_KW)
    text = await ephemeral_reply(discord_fake, refused)
    assert "banned" in text and "spam" in text
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 1 and charges(settings, STRANGER) == []


async def test_an_empty_or_blocked_new_prompt_is_refused_privately_and_nothing_is_charged(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await garden_with_a_blocked_term(discord_fake, settings)
    for words, refusal in (("a forbidden statue", "not allow"), ("   ", "prompt"), ("--ar 16:9", "nothing but")):
        opened = await press(discord_fake, original, "Change prompt")
        await opened_form(discord_fake, opened)
        submit = await discord_fake.submit_modal(opened, {"prompt": words}, modified_client=not words.strip())
        assert refusal in await ephemeral_reply(discord_fake, submit), words
    await nothing_but_the_original(discord_fake, seaart, settings)


async def test_a_batch_is_asked_again_whole_with_the_new_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Under a batch's message, once all its images have ended, beside Re-roll: the batch again, other words."""
    batch = await discord_fake.slash_command("imagine", {"prompt": "two paper boats", "count": 2})
    await discord_fake.wait_for(lambda: jobs(settings) == [(discord_fake.member_id, "delivered")] * 2, timeout=20)
    message = discord_fake.messages[batch.original_message_id or 0]
    await discord_fake.wait_for(lambda: "Change prompt" in labels(discord_fake, message.id), timeout=10)

    opened = await press(discord_fake, message, "Change prompt")
    assert (await opened_form(discord_fake, opened))["value"] == "two paper boats"
    await discord_fake.submit_modal(opened, {"prompt": "two paper boats on a pond"})
    await discord_fake.wait_for(lambda: jobs(settings) == [(discord_fake.member_id, "delivered")] * 4, timeout=20)
    assert [c.json["prompt"] for c in seaart.creates[2:]] == ["two paper boats on a pond"] * 2
    await settled(discord_fake, settings)
    paid = charges(settings, discord_fake.member_id)
    assert sorted(paid) == [("commit", 1)] * 4 + [("reserve", 1)] * 4  # each candidate reserved and committed


async def test_a_form_opened_before_a_restart_is_answered_after_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        original = await imagine(discord_fake, {"prompt": "a paper boat", "aspect_ratio": "4:3"})
        opened = await press(discord_fake, original, "Change prompt")
        await opened_form(discord_fake, opened)
    finally:
        await running.close()
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "a paper plane"}))
        again = seaart.creates[1].json
        assert (again["prompt"], again["aspect_ratio"]) == ("a paper plane", "4:3")
    finally:
        await running.close()


async def test_a_job_of_another_channel_named_by_a_modified_client_is_refused_and_shows_nothing(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A moderator's image in a staff channel members may not see; a member's client names its job on a button of
    a message in the open channel: its prompt is not shown in a form, nor its request made again."""
    staff = discord_fake.add_channel("staff", hidden=True)
    secret = await discord_fake.slash_command(
        "imagine", {"prompt": "the secret launch poster"}, user_id=discord_fake.moderator_id, channel_id=staff
    )
    await delivered(discord_fake, secret)
    open_one = await imagine(discord_fake, {"prompt": "a kite"})
    secret_id = jobs_ids(settings)[0]
    for action in ("reprompt", "reroll"):
        crafted_id = f"bananacord:job:{action}:{secret_id}"
        open_one.components.append({"type": 1, "components": [{"type": 2, "style": 2, "custom_id": crafted_id}]})
        crafted = await discord_fake.click(open_one.id, crafted_id, **STRANGER_KW)
        text = await ephemeral_reply(discord_fake, crafted)
        assert text == "That job no longer exists." and "secret" not in json.dumps(crafted.callbacks), action
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 2 and charges(settings, STRANGER) == []
