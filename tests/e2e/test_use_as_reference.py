"""The "Use as reference" button through the fake Discord: a new prompt with the image as a reference, charged to
whoever pressed it, made with their own model and defaults; refusals before the form and after it; a form
opened before a restart (cogs/reference_form.py)."""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, answer_given, make_settings, start_bot
from tests.e2e.test_buttons import ephemeral_reply, labels
from tests.e2e.test_rework import (
    STRANGER,
    WIDE,
    charges,
    delivered,
    fetch,
    garden_with_a_blocked_term,
    imagine,
    jobs,
    nothing_but_the_original,
    press,
    query,
    settled,
)


def fields(message: Any) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0]["fields"]}


async def test_a_strangers_prompt_with_the_image_as_reference_is_their_own_request_charged_to_them(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Where Edit changes the image with what it was made with, this is a new /imagine: the presser's words and
    saved model, the image first among the references, a new message, the presser charged."""
    original = await imagine(discord_fake, {"prompt": "a robot mascot @everyone", "aspect_ratio": "3:2"})
    assert labels(discord_fake, original.id) == WIDE and "Use as reference" in WIDE
    saved = await discord_fake.slash_command(
        "preferences", {"model": "nano_banana_pro"}, user_id=STRANGER, permissions=PLAIN_MEMBER_PERMISSIONS
    )
    await answer_given(discord_fake, saved)

    opened = await press(
        discord_fake, original, "Use as reference", user_id=STRANGER, permissions=PLAIN_MEMBER_PERMISSIONS
    )
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    form = opened.callbacks[0]
    job_id = query(settings, "SELECT id FROM jobs")[0][0]
    assert form["type"] == 9 and form["data"]["custom_id"] == f"bananacord:reference:{job_id}"
    assert form["data"]["title"] == "New image with this one"
    (text,) = [c["component"] for c in form["data"]["components"] if c["component"]["type"] == 4]
    assert text["required"] is True and text["max_length"] == 4000
    assert len(seaart.creates) == 1  # nothing made until the form is sent

    submit = await discord_fake.submit_modal(opened, {"prompt": "the same robot surfing a wave --ar 16:9"})
    result = await delivered(discord_fake, submit)

    assert result.id != original.id  # a new message; the original keeps its image
    create = seaart.creates[1]
    # The presser's saved model; their words, with `--ar` read as /imagine reads it; the image as the reference.
    assert create.path == "/model/v1/queue/nano_banana_pro"
    assert create.json["prompt"] == "the same robot surfing a wave" and create.json["aspect_ratio"] == "16:9"
    (url,) = create.json["image_urls"]
    assert await fetch(url) == (200, original.files[0].data)
    assert result.embeds[0]["description"] == "the same robot surfing a wave"
    assert "1 reference image" in fields(result)["Model"]
    # The image it came from, named and linked (the original's message), as a Vary's is.
    source = f"[job {job_id}](https://discord.com/channels/{discord_fake.guild_id}/{original.channel_id}/{original.id})"
    assert fields(result)["Made from"] == f"📎 The image of {source}, used as a reference for a new prompt."
    assert fields(result)["Requested by"] == f"<@{STRANGER}>" and result.allowed_mentions == {"parse": []}
    await settled(discord_fake, settings)
    assert jobs(settings) == [(discord_fake.member_id, "delivered"), (STRANGER, "delivered")]
    assert charges(settings, STRANGER) == [("reserve", 3), ("commit", 3)]  # Nano Banana Pro: 3 units
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1)]


async def test_a_blocked_prompt_a_ban_and_a_missing_image_are_refused_privately_and_nothing_is_charged(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await garden_with_a_blocked_term(discord_fake, settings)
    for prompt, refusal in (("a forbidden statue", "not allow"), ("   ", "prompt")):
        opened = await press(discord_fake, original, "Use as reference")
        await discord_fake.wait_for(lambda opened=opened: bool(opened.callbacks), timeout=10)
        submit = await discord_fake.submit_modal(opened, {"prompt": prompt})
        assert refusal in await ephemeral_reply(discord_fake, submit), prompt

    # The image gone from the message: refused on the press, before the member types anything.
    attachments, original.attachments = original.attachments, []
    refused = await press(discord_fake, original, "Use as reference")
    assert "no longer on this message" in await ephemeral_reply(discord_fake, refused)
    assert refused.callbacks[0]["type"] != 9
    original.attachments = attachments

    ban = await discord_fake.slash_command(
        "mod ban", {"member": discord_fake.member_id, "reason": "spam"}, user_id=discord_fake.moderator_id
    )
    await answer_given(discord_fake, ban)
    refused = await press(discord_fake, original, "Use as reference")
    text = await ephemeral_reply(discord_fake, refused)
    assert "banned" in text and "spam" in text and refused.callbacks[0]["type"] != 9
    await nothing_but_the_original(discord_fake, seaart, settings)


async def test_a_form_opened_before_a_restart_is_answered_after_it(
    tmp_path: Any, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        original = await imagine(discord_fake, {"prompt": "a paper boat"})
        opened = await press(discord_fake, original, "Use as reference")
        await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    finally:
        await running.close()
    running = await start_bot(settings, discord_fake, Clock())
    try:
        # Its own link pasted in the words too (Copy Link on the image): it goes once.
        words = f"a paper plane {original.attachments[0]['url']}"
        result = await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": words}))
        create = seaart.creates[1].json
        assert create["prompt"] == "a paper plane"
        (url,) = create["image_urls"]
        assert await fetch(url) == (200, original.files[0].data)
        assert result.id != original.id
    finally:
        await running.close()
