"""A member @mentions the bot with words: it offers to make them an image (cogs/mention_prompts.py).

The real bot against the fake Discord: the member's message (its content reaches the bot because it mentions it,
without the message-content intent), the offer's reply and button, the form it opens, the /imagine its submit makes
(what SeaArt is sent, the charge, the message), and what gets no offer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import answer_data, answer_given, make_settings, png_bytes, start_bot
from tests.e2e.test_rework import charges, delivered, fetch, jobs, settled

OFFER = (
    "🎨 To make an image of that, press **Imagine this** (you can change the words first), or use `/imagine` "
    "(type `/`). To change one of my images, reply to it."
)


def _offers(discord_fake: FakeDiscord) -> list[FakeMessage]:
    return [m for m in discord_fake.messages_in(discord_fake.channel_id) if m.author_id is None and m.content == OFFER]


def _button(message: FakeMessage) -> dict[str, Any]:
    (row,) = message.components
    (button,) = row["components"]
    return dict(button)


async def _press(discord_fake: FakeDiscord, offer: FakeMessage, user_id: int) -> FakeInteraction:
    pressed = await discord_fake.click(
        offer.id, _button(offer)["custom_id"], user_id=user_id, permissions=PLAIN_MEMBER_PERMISSIONS
    )
    await discord_fake.wait_for(lambda: bool(pressed.callbacks), timeout=10)
    return pressed


async def test_a_member_who_mentions_the_bot_with_words_is_offered_an_image_of_them_and_gets_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The offer is a reply pinging nobody, with a button only its member may press; it works across a restart. The
    form holds the words as written (to change); its submit is the member's /imagine, charged to them, with the
    message's image as a reference; the offer is deleted then."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    bot = discord_fake.bot_user_id
    photo = png_bytes((96, 64))
    attachment = discord_fake.add_attachment(photo, "fox.png", "image/png")
    running = await start_bot(settings, discord_fake)
    try:
        said = await discord_fake.post_message(
            f"<@{bot}> a fox in the snow like this one @everyone --ar 16:9", attachments=[attachment]
        )
        await discord_fake.wait_for(lambda: bool(_offers(discord_fake)))
    finally:
        await running.close()
    (offer,) = _offers(discord_fake)
    assert offer.reference is not None and offer.reference["message_id"] == str(said.id)
    assert offer.allowed_mentions == {"parse": [], "replied_user": False}
    assert _button(offer)["label"] == "Imagine this"
    assert not seaart.creates and not jobs(settings), "an offer makes nothing"

    running = await start_bot(settings, discord_fake)  # the offer's button works in the next process
    try:
        stranger = await _press(discord_fake, offer, discord_fake.other_member_id)
        pressed = await _press(discord_fake, offer, discord_fake.member_id)
        form = pressed.callbacks[0]
        submit = await discord_fake.submit_modal(pressed, {"prompt": "a fox in the snow at dawn @everyone --ar 16:9"})
        result = await delivered(discord_fake, submit)
        await settled(discord_fake, settings)
        await discord_fake.wait_for(lambda: discord_fake.messages[offer.id].deleted)
    finally:
        await running.close()
    assert "This is <@" in str(answer_data(discord_fake, stranger)) and "`/imagine`" in str(
        answer_data(discord_fake, stranger)
    )
    assert form["type"] == 9 and form["data"]["title"] == "Imagine this"
    (text,) = [c["component"] for c in form["data"]["components"] if c["component"]["type"] == 4]
    assert text["value"] == "a fox in the snow like this one @everyone --ar 16:9", "the words without the mention"
    (create,) = seaart.creates
    assert create.json["prompt"] == "a fox in the snow at dawn @everyone" and create.json["aspect_ratio"] == "16:9"
    (url,) = create.json["image_urls"]
    assert await fetch(url) == (200, photo), "the message's image is the reference"
    assert result.allowed_mentions == {"parse": []}
    assert jobs(settings) == [(discord_fake.member_id, "delivered")]
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1)]


async def test_what_gets_no_offer(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> None:
    """Chatter, a message speaking to other members too, a reply to the bot's own message (an edit's domain), a
    message not mentioning the bot, a second mention of the same member's within half a minute, and a mention of the
    bot's role (whose words Discord withholds from a bot without the message-content intent) get none."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    bot, other = discord_fake.bot_user_id, discord_fake.other_member_id
    running = await start_bot(settings, discord_fake)
    try:
        first = await discord_fake.post_message(f"<@{bot}> a lighthouse at dusk")
        await discord_fake.wait_for(lambda: len(_offers(discord_fake)) == 1)
        await discord_fake.post_message(f"<@{bot}> and another, a harbour")  # the same member, at once
        await discord_fake.post_message(f"thanks <@{bot}>!", user_id=other)
        await discord_fake.post_message(f"<@{bot}> <@{discord_fake.admin_id}> look at this", user_id=other)
        first_offer = _offers(discord_fake)[0]  # a reply to the bot's own message is an edit's, or chatter
        await discord_fake.post_message(f"<@{bot}> make it night", user_id=other, reply_to=first_offer.id)
        await discord_fake.post_message("a castle on a hill", user_id=other)
        await discord_fake.post_message(f"<@&{discord_fake.bot_role_id}> a castle on a hill", user_id=other)
        last = await discord_fake.post_message(f"<@{bot}> a castle on a hill", user_id=discord_fake.admin_id)
        await discord_fake.wait_for(lambda: len(_offers(discord_fake)) == 2)
        await answer_given(discord_fake, await discord_fake.slash_command("help", {}))
    finally:
        await running.close()
    offers = _offers(discord_fake)
    assert [o.reference["message_id"] for o in offers if o.reference] == [str(first.id), str(last.id)]
    assert not seaart.creates


async def test_a_form_refused_keeps_the_offer_and_a_deleted_message_is_said_to_be_gone(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The form's words refused (a shape the model does not come in): told privately, nothing made or charged, and
    the offer stays for another try. The member's message deleted while a form was open, or before the press: told
    it is gone (its images with it), nothing made."""
    bot = discord_fake.bot_user_id
    running = await start_bot(settings, discord_fake)
    try:
        said = await discord_fake.post_message(f"<@{bot}> a fox")
        await discord_fake.wait_for(lambda: len(_offers(discord_fake)) == 1)
        (offer,) = _offers(discord_fake)
        pressed = await _press(discord_fake, offer, discord_fake.member_id)
        refused = await discord_fake.submit_modal(pressed, {"prompt": "a fox --ar 7:3"})
        await answer_given(discord_fake, refused)
        reopened = await _press(discord_fake, offer, discord_fake.member_id)
        await discord_fake.delete_messages(said.id)
        late = await discord_fake.submit_modal(reopened, {"prompt": "a fox"})
        await answer_given(discord_fake, late)
        gone = await _press(discord_fake, offer, discord_fake.member_id)
    finally:
        await running.close()
    refusal = answer_data(discord_fake, refused)
    assert refusal["flags"] & 64 and "7:3" in refusal["content"]
    assert not discord_fake.messages[offer.id].deleted
    assert "Your message is gone" in str(answer_data(discord_fake, gone))
    assert "Your message was deleted" in str(answer_data(discord_fake, late)), "a form sent after the delete"
    assert not seaart.creates and not jobs(settings)


async def test_a_mention_replying_to_another_members_picture_is_offered_with_how_to_edit_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """ "@Bananacord make this a watercolour" in reply to a friend's photo: a reply edits only the bot's images, so the
    offer says how to edit that one (its Edit with Nano Banana menu) besides Imagine this."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    photo = discord_fake.add_attachment(png_bytes(), "cat.png", "image/png")
    running = await start_bot(settings, discord_fake)
    try:
        friend = await discord_fake.post_message("my cat", attachments=[photo], user_id=discord_fake.admin_id)
        asked = await discord_fake.post_message(
            f"<@{discord_fake.bot_user_id}> make this a watercolour", reply_to=friend.id
        )
        await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(asked.id)))
    finally:
        await running.close()
    (offer,) = discord_fake.bot_replies_to(asked.id)
    assert offer.content == (
        f"{OFFER}\nTo edit an image of the message you replied to, use its menu instead: right-click it (long-press "
        "on a phone) → **Apps** → **Edit with Nano Banana**."
    )
    assert offer.allowed_mentions == {"parse": [], "replied_user": False}, "neither the member nor their friend pinged"
    assert _button(offer)["label"] == "Imagine this"
    assert not seaart.creates
