"""Replies to the bot's images, fixed after a review (cogs/replies.py, bot/derive.py): reactions are not
charged as edits, another member's reply does not send the requester's private references to Gemini, and
a reply that names the bot by its role is an edit."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeGemini, FakeSeaArt
from tests.conftest import Clock, RunningBot, png_bytes, start_bot
from tests.e2e.edits import bot_image, bot_replies_to, jobs, ledger
from tests.e2e.test_remix import MENU, form_of, submitted
from tests.e2e.test_replies import GEMINI_KEY, answer_to, gemini_settings
from tests.e2e.test_rework import delivered, press

TENOR = "https://tenor.com/view/cat-dance-happy-gif-25766012"


def gif_embed(url: str) -> dict[str, Any]:
    """The embed Discord adds under a GIF picked from its picker: a video, no image to edit."""
    still = {"url": "https://media.tenor.com/cat-dance.png", "width": 498, "height": 498}
    video = {"url": "https://media.tenor.com/cat-dance.mp4", "width": 498, "height": 498}
    return {"type": "gifv", "url": url, "provider": {"name": "Tenor"}, "thumbnail": still, "video": video}


async def test_reactions_under_an_image_start_nothing_and_charge_nothing(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A server's emoji, a GIF from Discord's picker, a rating or slang under an image each started an
    edit with that as its prompt, charged to the member who was only reacting. Short instructions still
    are edits."""
    image = await bot_image(discord_fake, settings)
    member = discord_fake.admin_id
    reactions = [
        await discord_fake.post_message(text, reply_to=image.id, user_id=member)
        for text in (
            "<:kekw:1234567890123456789>",
            "lol <a:catjam:1234567890123456789>",
            "10/10",
            "W",
            "bruh",
            "lmaooo",
            "fr fr",
        )
    ]
    reactions.append(
        await discord_fake.post_message(TENOR, reply_to=image.id, user_id=member, embeds=[gif_embed(TENOR)])
    )
    await asyncio.sleep(1.0)  # time to start an edit for each, as it did
    assert len(jobs(settings)) == 1, [json.loads(row["request_json"])["prompt"] for row in jobs(settings)[1:]]
    for text in ("bigger", "no hat", "4k"):
        await answer_to(
            discord_fake, settings, await discord_fake.post_message(text, reply_to=image.id, user_id=member)
        )

    rows = jobs(settings)
    assert [c.json["prompt"] for c in seaart.creates] == ["a cat on a sofa", "bigger", "no hat", "4k"]
    assert len(rows) == 4 and [ledger(settings, row["id"])[-1] for row in rows[1:]] == [("commit", member)] * 3
    # Nothing said to the reactions either, in the channel or privately.
    assert all(bot_replies_to(discord_fake, reaction.id) == [] for reaction in reactions)
    assert discord_fake.dms_to(member) == []


def inline_images(body: dict[str, Any]) -> list[bytes]:
    return [
        base64.b64decode(part["inlineData"]["data"])
        for content in body["contents"]
        for part in content["parts"]
        if "inlineData" in part
    ]


async def test_another_members_reply_sends_gemini_the_conversation_without_the_requesters_references(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    """The conversation a reply carries on held the requester's /imagine attachments, which no one else saw:
    another member's reply sent them to Gemini inline. Now that member's reply sends what the channel shows
    (the prompts and the images made) and the member's own attachment; the requester's own replies still
    carry their references along."""
    secret = png_bytes(colour=(1, 2, 3))
    hat = png_bytes(colour=(10, 90, 200))
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        running = await start_bot(settings, discord_fake, clock)
        try:
            private = discord_fake.add_attachment(secret, "my_face.png", "image/png")
            image = await bot_image(discord_fake, settings, image1=private)  # the member's /imagine
            night = await discord_fake.post_message("make it night", reply_to=image.id)
            answer = await answer_to(discord_fake, settings, night)
            stranger = await discord_fake.post_message(
                "put this hat on",
                reply_to=answer.id,
                attachments=[discord_fake.add_attachment(hat, "hat.png", "image/png")],
                user_id=discord_fake.other_member_id,
            )
            await answer_to(discord_fake, settings, stranger)
        finally:
            await running.close()

    # The requester's own reply: the conversation with the reference they gave.
    assert secret in inline_images(gemini.creates[1].json)
    by_stranger = gemini.creates[2].json
    sent = inline_images(by_stranger)
    assert secret not in sent
    # Still the whole conversation: each prompt, and each image made as the channel shows it.
    assert [c["role"] for c in by_stranger["contents"]] == ["user", "model", "user", "model", "user"]
    assert [c["parts"][0]["text"] for c in by_stranger["contents"][::2]] == [
        "a cat on a sofa",
        "make it night",
        "put this hat on",
    ]
    assert image.files[0].data in sent and answer.files[0].data in sent and hat in sent


async def test_a_reply_naming_the_bots_role_is_an_edit(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The @ menu offers the bot's integration role beside the bot: a reply naming that role was taken
    for one talking to other members and left alone. Another role still is."""
    image = await bot_image(discord_fake, settings)
    aside = await discord_fake.post_message(f"<@&{discord_fake.helper_role_id}> make it night", reply_to=image.id)
    reply = await discord_fake.post_message(f"<@&{discord_fake.bot_role_id}> make it night", reply_to=image.id)
    await answer_to(discord_fake, settings, reply)

    assert [c.json["prompt"] for c in seaart.creates] == ["a cat on a sofa", "make it night"]
    assert bot_replies_to(discord_fake, aside.id) == [] and len(jobs(settings)) == 2


@pytest.mark.parametrize(
    "way", ["another member's Edit button", "another member's edit menu", "the requester's Edit button"]
)
async def test_an_edit_by_another_member_sends_gemini_the_conversation_without_the_requesters_references(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock, way: str
) -> None:
    """The Edit button and the "Edit with Nano Banana" menu carried the requester's private reference (attached to
    their /imagine, never shown in the channel) into another member's Gemini request, as a reply did."""
    secret = png_bytes(colour=(1, 2, 3))
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        running = await start_bot(settings, discord_fake, clock)
        try:
            private = discord_fake.add_attachment(secret, "my_face.png", "image/png")
            image = await bot_image(discord_fake, settings, image1=private)
            who = discord_fake.member_id if way.startswith("the requester") else discord_fake.other_member_id
            if way.endswith("Edit button"):
                edit = await press(discord_fake, image, "Edit", user_id=who)
                await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
                await delivered(discord_fake, await discord_fake.submit_modal(edit, {"instruction": "make it night"}))
            else:
                used = await discord_fake.message_command(MENU, image.id, user_id=who)
                await form_of(discord_fake, used)
                await submitted(discord_fake, settings, used, "make it night")
        finally:
            await running.close()
    sent = inline_images(gemini.creates[1].json)
    assert image.files[0].data in sent  # the image being edited always goes
    assert (secret in sent) == way.startswith("the requester"), way


SECRET = png_bytes(colour=(1, 2, 3))  # a member's private reference: attached to their /imagine, never shown


@contextlib.asynccontextmanager
async def a_requesters_gemini_edit(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> AsyncIterator[tuple[FakeGemini, FakeMessage, FakeMessage]]:
    """A bot on Gemini; its member's image made with ``SECRET`` as a reference, and their own edit of it ("at night"),
    whose conversation holds that reference: (Gemini, the image, the edit's message)."""
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        running = await start_bot(settings, discord_fake, clock)
        try:
            private = discord_fake.add_attachment(SECRET, "my_face.png", "image/png")
            image = await bot_image(discord_fake, settings, image1=private)
            edit = await press(discord_fake, image, "Edit", user_id=discord_fake.member_id)
            await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
            edited = await delivered(discord_fake, await discord_fake.submit_modal(edit, {"instruction": "at night"}))
            yield gemini, image, edited
        finally:
            await running.close()


async def test_another_members_re_roll_of_an_edit_sends_the_conversation_without_the_requesters_references(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    """A Re-roll sends the request as it was, its conversation included, and the conversation of the requester's
    own edit holds their private reference: another member's Re-roll sent it to Gemini, which their reply or
    Edit of the same image no longer did. The requester's own Re-roll still sends it."""
    async with a_requesters_gemini_edit(tmp_path, discord_fake, clock) as (gemini, image, edited):
        await delivered(discord_fake, await press(discord_fake, edited, "Re-roll", user_id=discord_fake.member_id))
        theirs = await press(discord_fake, edited, "Re-roll", user_id=discord_fake.other_member_id)
        await delivered(discord_fake, theirs)
    requesters_edit, requesters_reroll, strangers_reroll = (inline_images(c.json) for c in gemini.creates[1:4])
    assert SECRET in requesters_edit and SECRET in requesters_reroll
    assert SECRET not in strangers_reroll, "another member's Re-roll sent the requester's private reference"
    assert image.files[0].data in strangers_reroll, "the image the conversation edited still goes"


async def test_another_members_change_prompt_of_an_edit_sends_the_conversation_without_the_requesters_references(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    """Change prompt under an edit takes the edit again with other words, its conversation included: another
    member's, as their Re-roll, sends it without the requester's private reference; the requester's own keeps it."""
    async with a_requesters_gemini_edit(tmp_path, discord_fake, clock) as (gemini, image, edited):
        for who, words in ((discord_fake.member_id, "at dawn"), (discord_fake.other_member_id, "in fog")):
            opened = await press(discord_fake, edited, "Change prompt", user_id=who)
            await discord_fake.wait_for(lambda opened=opened: bool(opened.callbacks), timeout=10)
            await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": words}))
    requesters, strangers = (inline_images(c.json) for c in gemini.creates[2:4])
    assert "at dawn" in str(gemini.creates[2].json) and "in fog" in str(gemini.creates[3].json)
    assert SECRET in requesters
    assert SECRET not in strangers, "another member's Change prompt sent the requester's private reference"
    assert image.files[0].data in strangers, "the image the conversation edited still goes"
