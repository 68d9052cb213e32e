"""A member @mentions the bot with words: it offers to make them an image (cogs/mention_prompts.py).

The real bot against the fake Discord: the member's message (its content reaches the bot because it mentions it,
without the message-content intent), the offer's reply and button, the form it opens, the /imagine its submit makes
(what SeaArt is sent, the charge, the message), and what gets no offer.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, heartbeat_path
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import FakeSeaArt
from cogs import mention_prompts, replies
from cogs.mention_prompts import LATE
from tests.conftest import Clock, answer_data, answer_given, make_settings, png_bytes, start_bot
from tests.e2e.edits import states
from tests.e2e.test_missed_replies import image_of_a_stopped_bot, start_reading_again, to_delete
from tests.e2e.test_rework import charges, delivered, fetch, imagine, jobs, settled

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
    assert to_delete(settings) == [offer.id], "kept, to delete in time whatever stops"
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
    assert to_delete(settings) == [], "taken: nothing left for the next start to delete"


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


def _offers_posted(discord_fake: FakeDiscord) -> list[str]:
    """The offers the bot asked Discord to post, in order (a deleted one included)."""
    return [
        str((r.json or {}).get("content"))
        for r in discord_fake.requests
        if r.method == "POST" and "**Imagine this**" in str((r.json or {}).get("content"))
    ]


async def test_mentions_posted_while_the_bot_was_away_are_offered_when_it_is_back_once(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """Discord does not send a bot what was posted while it was away: a member who asked "@Bananacord a lighthouse"
    then got silence for good. Back, the bot reads the channel's history (cogs/replies.py) and offers each member's
    latest mention there, saying it was away; chatter gets none. Read again at the next start, none is offered twice,
    and the late offer's button works as any other."""
    bot, other = discord_fake.bot_user_id, discord_fake.other_member_id
    await image_of_a_stopped_bot(discord_fake, settings, clock)
    before = time.time() - 1
    await discord_fake.post_message(f"<@{bot}> a lighthouse", live=False)
    latest = await discord_fake.post_message(f"<@{bot}> a lighthouse at night, please", live=False)
    await discord_fake.post_message(f"thanks <@{bot}>", user_id=other, live=False)
    theirs = await discord_fake.post_message(f"<@{bot}> a castle on a hill", user_id=other, live=False)

    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: len(_offers_posted(discord_fake)) == 2, timeout=10)
        (offer,) = discord_fake.bot_replies_to(latest.id)
        pressed = await _press(discord_fake, offer, discord_fake.member_id)
    finally:
        await running.close()
    assert [m.reference["message_id"] for m in discord_fake.bot_replies_to(theirs.id) if m.reference] == [
        str(theirs.id)
    ]
    assert offer.content == f"{LATE}\n{OFFER}" and offer.allowed_mentions == {"parse": [], "replied_user": False}
    (text,) = [c["component"] for c in pressed.callbacks[0]["data"]["components"] if c["component"]["type"] == 4]
    assert text["value"] == "a lighthouse at night, please"

    running = await start_reading_again(discord_fake, settings, clock, since=before)
    try:
        await asyncio.sleep(1.5)  # time enough to have offered again, had it not kept what it offered
    finally:
        await running.close()
    assert len(_offers_posted(discord_fake)) == 2 and not seaart.creates[1:]


async def test_a_mention_answered_before_the_bot_stopped_is_not_offered_when_history_is_read_again(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """Read again at a start (the last run's heartbeat before them, as when a loop stalls): a mention the last run
    offered but stopped before keeping that it had (its offer is in the history, a reply to it), and one whose member
    used /imagine after it, are offered nothing; a third, unanswered, is."""
    bot = discord_fake.bot_user_id
    first = await start_bot(settings, discord_fake, clock)
    try:
        before = time.time() - 1
        offered = await discord_fake.post_message(f"<@{bot}> a harbour at dawn", user_id=discord_fake.other_member_id)
        await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(offered.id)))
        unseen = await discord_fake.post_message(f"<@{bot}> a fox", live=False)  # an event the run never got
        await imagine(discord_fake, {"prompt": "a fox"})  # the member asked by command instead
        unanswered = await discord_fake.post_message(f"<@{bot}> a heron", user_id=discord_fake.admin_id, live=False)
    finally:
        await first.close()
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("DELETE FROM reply_notes")  # as a kill between the offer and its record leaves it
    os.utime(heartbeat_path(settings), (before, before))

    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(unanswered.id)), timeout=10)
        await asyncio.sleep(0.5)
    finally:
        await running.close()
    assert len(discord_fake.bot_replies_to(offered.id)) == 1 and discord_fake.bot_replies_to(unseen.id) == []
    assert len(_offers_posted(discord_fake)) == 2


async def test_an_offer_a_stop_left_in_the_channel_is_deleted_by_the_next_start(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """An offer nobody took is deleted after ten minutes; discord.py's delete_after is a timer in the process, so a
    stop (a deploy, a kill) left it in the channel for good. Kept with its message's row, the next start deletes it
    when its time is up, and does not offer that message again, however often it reads it (a start reading from
    before it, as when a loop stalled, finds it with no offer of the bot's replying to it any more)."""
    await image_of_a_stopped_bot(discord_fake, settings, clock)  # a channel whose history a start reads
    running = await start_bot(settings, discord_fake, clock)
    try:
        before = time.time() - 1
        said = await discord_fake.post_message(f"<@{discord_fake.bot_user_id}> a fox")
        await discord_fake.wait_for(lambda: len(_offers(discord_fake)) == 1)
        (offer,) = _offers(discord_fake)
        await discord_fake.wait_for(lambda: to_delete(settings) == [offer.id])
    finally:
        await running.close()
    assert not offer.deleted
    due_at = time.monotonic() + 1.0
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("UPDATE reply_notes SET delete_at = ?", (time.time() + 1.0,))
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: offer.deleted, timeout=10)
        await discord_fake.wait_for(lambda: to_delete(settings) == [], timeout=10)
    finally:
        await running.close()
    (deleted,) = [r for r in discord_fake.requests if r.method == "DELETE" and r.path.endswith(f"/{offer.id}")]
    assert deleted.at >= due_at - 0.05, f"deleted {due_at - deleted.at:.2f} s before its time"
    assert offer.reference is not None and offer.reference["message_id"] == str(said.id)

    running = await start_reading_again(discord_fake, settings, clock, since=before)
    try:
        await asyncio.sleep(1.5)  # time enough to have offered again, had it not kept what it offered
    finally:
        await running.close()
    assert len(_offers_posted(discord_fake)) == 1


async def test_a_mention_with_a_picture_and_no_words_is_offered_the_words_left_to_the_form(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """ "@Bananacord" and a photo, no words: the member wants something made of it, and got silence (no words is
    chatter). Now the offer asks what to make of it; the form opens empty, and its words go with the photo. A bare
    mention with no picture, and one with a picture and chatter ("lol @Bananacord"), still get none."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    bot = discord_fake.bot_user_id
    photo = png_bytes((80, 80))
    running = await start_bot(settings, discord_fake)
    try:
        await discord_fake.post_message(f"<@{bot}>")
        chatter = discord_fake.add_attachment(png_bytes(), "meme.png", "image/png")
        await discord_fake.post_message(f"lol <@{bot}>", attachments=[chatter], user_id=discord_fake.admin_id)
        attachment = discord_fake.add_attachment(photo, "dog.png", "image/png")
        said = await discord_fake.post_message(f"<@{bot}>", attachments=[attachment])
        await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(said.id)))
        (offer,) = discord_fake.bot_replies_to(said.id)
        pressed = await _press(discord_fake, offer, discord_fake.member_id)
        submit = await discord_fake.submit_modal(pressed, {"prompt": "this dog as an astronaut"})
        await delivered(discord_fake, submit)
        await settled(discord_fake, settings)
    finally:
        await running.close()
    assert offer.content == (
        "🎨 To make an image from that, press **Imagine this** and say what to make of it, or use `/imagine` with the "
        "image attached (type `/`)."
    )
    (text,) = [c["component"] for c in pressed.callbacks[0]["data"]["components"] if c["component"]["type"] == 4]
    assert not text.get("value"), "nothing to fill in: the words are the member's to give"
    assert len(_offers_posted(discord_fake)) == 1, "none for the bare mention nor the chatter"
    (create,) = seaart.creates
    assert create.json["prompt"] == "this dog as an astronaut"
    (url,) = create.json["image_urls"]
    assert await fetch(url) == (200, photo)


async def test_a_member_replying_to_their_offer_with_other_words_gets_a_new_one_in_its_place(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """ "@Bananacord a fox", the offer, then the member replies to it: "no, a wolf in the snow". The bot's own message
    is no image to edit, and the words are the member's answer to the bot: a new offer of them at once (no half-minute
    wait), the old one deleted. Another member's reply to that offer is none of theirs: nothing. A member banned from
    the bot (/mod ban) is offered nothing (the form would only be refused)."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    bot, other = discord_fake.bot_user_id, discord_fake.other_member_id
    running = await start_bot(settings, discord_fake)
    try:
        first = await discord_fake.post_message(f"<@{bot}> a fox")
        await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(first.id)))
        (offer,) = discord_fake.bot_replies_to(first.id)
        stranger = await discord_fake.post_message(f"<@{bot}> a cat instead", reply_to=offer.id, user_id=other)
        again = await discord_fake.post_message(f"<@{bot}> no, a wolf in the snow", reply_to=offer.id)
        await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(again.id)))
        await discord_fake.wait_for(lambda: offer.deleted)
        (second,) = discord_fake.bot_replies_to(again.id)
        pressed = await _press(discord_fake, second, discord_fake.member_id)
        banned = await discord_fake.slash_command(
            "mod ban", {"member": str(other), "reason": "spam"}, user_id=discord_fake.moderator_id
        )
        await answer_given(discord_fake, banned)
        await discord_fake.post_message(f"<@{bot}> a lighthouse at dusk", user_id=other)
        await answer_given(discord_fake, await discord_fake.slash_command("help", {}))
        await asyncio.sleep(0.5)
    finally:
        await running.close()
    assert second.content == OFFER, "the member's own words: no line about editing another's image"
    (text,) = [c["component"] for c in pressed.callbacks[0]["data"]["components"] if c["component"]["type"] == 4]
    assert text["value"] == "no, a wolf in the snow"
    assert discord_fake.bot_replies_to(stranger.id) == []
    assert len(_offers_posted(discord_fake)) == 2, "none for the stranger's reply, none for the banned member"
    assert to_delete(settings) == [second.id], "the first let go: no timer and no next start deletes it again"


async def test_a_raid_of_mentions_draws_a_few_offers_a_minute_in_a_channel(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Twenty members mention the bot with words at once (a raid, or an event's crowd): each offer is a post in the
    channel, behind Discord's limit on its posts with the images members wait for there. Six a minute are made; the
    rest get none, and another channel keeps its own six (one of them offered there: none was its turn used)."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    bot = discord_fake.bot_user_id
    crowd = [discord_fake.snowflakes.next() for _ in range(20)]
    running = await start_bot(settings, discord_fake)
    try:
        for n, member in enumerate(crowd):
            await discord_fake.post_message(f"<@{bot}> a lighthouse number {n}", user_id=member)
        elsewhere = await discord_fake.post_message(
            f"<@{bot}> a harbour", user_id=crowd[-1], channel_id=discord_fake.nsfw_channel_id
        )
        await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(elsewhere.id)))
        await answer_given(discord_fake, await discord_fake.slash_command("help", {}))
        await asyncio.sleep(0.5)
    finally:
        await running.close()
    assert len(_offers(discord_fake)) == 6
    assert len(_offers_posted(discord_fake)) == 7


async def test_a_mention_met_live_while_the_catch_up_is_held_up_is_not_offered_again_as_missed(
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The catch-up after a start reads each channel on into what comes live meanwhile. Held up (a note about a reply
    posted while away, whose DM Discord fails, tried again for seconds), it handed the mention reader a mention met
    live and passed over for its member's turn, which was then offered as missed, "I was offline" (found by
    bench/soak.py). It reads only what was posted while the bot was away."""
    monkeypatch.setattr(mention_prompts, "OFFER_EVERY_SECONDS", 2.0)
    monkeypatch.setattr(replies, "NOTE_RETRY_SECONDS", (1.5, 1.5))
    bot = discord_fake.bot_user_id
    # A reply waiting for an image still being made when the bot stops (kept as a note owed, which the next start
    # takes up before it reads the channels); the image is deleted meanwhile, and the note saying so is held up:
    # Discord fails its DM every time.
    seaart.hold(True)
    first = await start_bot(settings, discord_fake, clock)
    try:
        asked = await discord_fake.slash_command("imagine", {"prompt": "a lighthouse"})
        await discord_fake.wait_for(lambda: "running" in states(settings), timeout=10)
        image = discord_fake.messages[asked.original_message_id or -1]
        reply = await discord_fake.post_message("make it night", reply_to=image.id)
        await discord_fake.wait_for(lambda: "⏳" in reply.reactions, timeout=10)
    finally:
        await first.close()
    discord_fake.remove_message(image)
    discord_fake.fail_next(
        "POST", r"/channels/\d+/messages$", status=503, times=100, match=lambda r: "About your reply" in str(r.json)
    )
    running = await start_bot(settings, discord_fake, clock)
    try:
        offered = await discord_fake.post_message(f"<@{bot}> a lighthouse")
        await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(offered.id)), timeout=10)
        passed_over = await discord_fake.post_message(f"<@{bot}> a lighthouse at night")  # within the member's turn
        # The catch-up ends once the note has gone to the channel instead (its last try).
        await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(reply.id)), timeout=15)
        await asyncio.sleep(0.5)
    finally:
        await running.close()
    assert [m.content for m in discord_fake.bot_replies_to(offered.id)] == [OFFER]
    assert discord_fake.bot_replies_to(passed_over.id) == []


async def test_an_offer_discord_fails_with_a_503_is_made_again(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """discord.py does not retry a 503: the offer was dropped, and the member who asked got nothing. Made again a
    second later, once (its nonce), also where Discord made it and lost its answer."""
    bot = discord_fake.bot_user_id
    running = await start_bot(settings, discord_fake, clock)
    try:
        # Two members: a member is offered once in a while.
        for carried_out, who in ((False, discord_fake.admin_id), (True, discord_fake.other_member_id)):
            discord_fake.fail_next(
                "POST", r"/channels/\d+/messages$", status=503, match=lambda r: OFFER in str(r.json), after=carried_out
            )
            asked = await discord_fake.post_message(f"<@{bot}> a lighthouse", user_id=who)
            await discord_fake.wait_for(lambda a=asked: bool(discord_fake.bot_replies_to(a.id)), timeout=10)
            await asyncio.sleep(1.5)  # a second offer, were one coming
            assert [m.content for m in discord_fake.bot_replies_to(asked.id)] == [OFFER]
    finally:
        await running.close()
