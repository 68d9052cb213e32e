"""A reply to the bot's message of an image still being made (cogs/early_replies.py): it waits, marked ⏳, and is
carried out once the image shows; deleted meanwhile, let go; with no image made, its member told privately; through
a restart too. Before, it was left alone with no answer at all."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from cogs import early_replies, replies
from cogs.early_replies import NOT_MADE, WAITING_MARK
from tests.conftest import Clock, RunningBot, answered, start_bot
from tests.e2e.edits import bot_replies_to, jobs, states
from tests.e2e.test_batches import batch_message, custom_id
from tests.e2e.test_replies import answer_to


async def generating(discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, prompt: str) -> FakeMessage:
    """The message of an image held at the provider, still saying so."""
    seaart.hold(True)
    asked = await discord_fake.slash_command("imagine", {"prompt": prompt})
    await discord_fake.wait_for(lambda: "running" in states(settings), timeout=10)
    return discord_fake.messages[asked.original_message_id or -1]


def marked(discord_fake: FakeDiscord, reply: FakeMessage) -> bool:
    return WAITING_MARK in reply.reactions  # the bot's own reactions


def dispatch_as_sent(running_bot: RunningBot, discord_fake: FakeDiscord, payload: dict[str, Any]) -> None:
    """A reply's MESSAGE_CREATE as Discord sent it (``payload``, taken when it was posted) reaching the bot now: an
    event read late, its replied message as it was then."""
    bot = running_bot.bot
    channel = bot.get_channel(discord_fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    bot.dispatch("message", discord.Message(state=bot._connection, channel=channel, data=payload))


async def settled(discord_fake: FakeDiscord) -> None:
    """A command answered: what the fake sent before it has been handled by the bot."""
    later = await answered(discord_fake, "help", {})
    assert later.callbacks


async def test_a_reply_to_an_image_still_being_made_is_carried_out_once_it_shows(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message = await generating(discord_fake, seaart, settings, "a lighthouse")
    reply = await discord_fake.post_message("make it night", reply_to=message.id)
    await discord_fake.wait_for(lambda: marked(discord_fake, reply), timeout=10)
    assert bot_replies_to(discord_fake, reply.id) == [] and len(jobs(settings)) == 1, "nothing started yet"

    seaart.release()
    seaart.hold(False)
    answer = await answer_to(discord_fake, settings, reply)
    assert states(settings) == ["delivered", "delivered"]
    assert seaart.creates[1].json["prompt"] == "make it night"
    assert seaart.creates[1].json["image_urls"] == [message.attachments[0]["url"]], "the image it waited for"
    assert jobs(settings)[1]["reply_to_message_id"] == reply.id and jobs(settings)[1]["message_id"] == answer.id
    await discord_fake.wait_for(lambda: not marked(discord_fake, reply), timeout=10)
    assert discord_fake.dms_to(discord_fake.member_id) == []


async def test_a_waiting_reply_deleted_is_let_go_and_one_whose_image_never_came_is_told(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message = await generating(discord_fake, seaart, settings, "a lighthouse")
    taken_back = await discord_fake.post_message("make it night", reply_to=message.id)
    kept = await discord_fake.post_message("make it snow", reply_to=message.id, user_id=discord_fake.admin_id)
    await discord_fake.wait_for(lambda: marked(discord_fake, taken_back) and marked(discord_fake, kept), timeout=10)
    await discord_fake.delete_messages(taken_back.id)
    await settled(discord_fake)
    # The image is cancelled: nothing to edit.
    cancel = await discord_fake.click(message.id, custom_id(message, "Cancel"))
    await discord_fake.wait_for(lambda: bool(cancel.callbacks), timeout=10)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)

    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.admin_id)), timeout=10)
    (note,) = discord_fake.dms_to(discord_fake.admin_id)
    assert NOT_MADE in (note.content or "")
    await settled(discord_fake)
    await asyncio.sleep(0.2)
    assert len(jobs(settings)) == 1, "nothing made from either reply"
    assert discord_fake.dms_to(discord_fake.member_id) == [] and bot_replies_to(discord_fake, taken_back.id) == []
    assert not marked(discord_fake, kept)


async def test_a_reply_naming_an_image_of_a_batch_still_being_made_edits_that_one_once_all_show(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    seaart.hold(True)
    message = await batch_message(discord_fake, {"prompt": "a {red, blue} kite"})
    await discord_fake.wait_for(lambda: states(settings) == ["running"] * 2, timeout=10)
    reply = await discord_fake.post_message("#2 give it a long tail", reply_to=message.id)
    await discord_fake.wait_for(lambda: marked(discord_fake, reply), timeout=10)
    seaart.release()
    seaart.hold(False)
    await answer_to(discord_fake, settings, reply)
    blue = next(job for job in jobs(settings) if job["batch_index"] == 2)
    edit = next(job for job in jobs(settings) if job["reply_to_message_id"] == reply.id)
    assert edit["state"] == "delivered" and seaart.creates[-1].json["prompt"] == "give it a long tail"
    shown = [a for a in message.attachments if str(blue["id"]) in a["filename"]]
    assert seaart.creates[-1].json["image_urls"] == [shown[0]["url"]], "image #2, the blue kite"


async def test_a_reply_waiting_for_its_image_is_carried_out_after_a_restart(
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The next start reads the channel's history from when this run was last alive: the reply, older, is not in
    # it, and comes back only as the note owed about it.
    monkeypatch.setattr(replies, "CATCH_UP_MARGIN_SECONDS", 0.0)
    first = await start_bot(settings, discord_fake, clock)
    try:
        message = await generating(discord_fake, seaart, settings, "a lighthouse")
        reply = await discord_fake.post_message("make it night", reply_to=message.id)
        await discord_fake.wait_for(lambda: marked(discord_fake, reply), timeout=10)
        await asyncio.sleep(1.5)  # the run lives on after the reply
    finally:
        await first.close()
    # Twice: the start that takes it up again, still waiting, keeps it owed.
    second = await start_bot(settings, discord_fake, clock)
    try:
        await settled(discord_fake)
        await asyncio.sleep(1.5)  # the start's catch-up has taken the reply up again by now
    finally:
        await second.close()
    third = await start_bot(settings, discord_fake, clock)
    try:
        await settled(discord_fake)
        await asyncio.sleep(0.5)
        seaart.release()
        seaart.hold(False)
        await answer_to(discord_fake, settings, reply)
        await asyncio.sleep(0.3)  # a second answer, were one coming
        assert len(bot_replies_to(discord_fake, reply.id)) == 1
        assert [job["state"] for job in jobs(settings)] == ["delivered", "delivered"]
    finally:
        await third.close()


async def test_a_reply_read_after_its_image_came_though_it_was_posted_before_is_carried_out(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A reply comes with the message it answers as that was when the reply was posted. Posted while the image was
    being made and read once the image had come (a busy bot, events waiting behind others), it was found with no
    image and no image still to wait for, and left with no answer. Here its event, as Discord sent it then, reaches
    the bot after the image showed."""
    message = await generating(discord_fake, seaart, settings, "a lighthouse")
    reply = await discord_fake.post_message("make it night", reply_to=message.id, live=False)
    sent_then = discord_fake.message_payload(reply)  # what MESSAGE_CREATE carried: the message still generating
    assert not sent_then["referenced_message"]["attachments"]
    seaart.release()
    seaart.hold(False)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] and bool(message.files), timeout=10)

    dispatch_as_sent(running_bot, discord_fake, sent_then)
    answer = await answer_to(discord_fake, settings, reply)
    assert seaart.creates[1].json["image_urls"] == [message.attachments[0]["url"]]
    assert jobs(settings)[1]["message_id"] == answer.id


async def test_each_waiting_reply_whose_image_never_came_is_told_not_only_the_first(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The note is about each reply's own image: the same words to the same member minutes apart were taken for a
    repeat and left out, and the second reply got no word at all (found by bench/soak.py)."""
    first = await generating(discord_fake, seaart, settings, "a lighthouse")
    second_asked = await discord_fake.slash_command("imagine", {"prompt": "a windmill"})
    await discord_fake.wait_for(lambda: states(settings) == ["running", "running"], timeout=10)
    second = discord_fake.messages[second_asked.original_message_id or -1]
    replies = [await discord_fake.post_message("make it night", reply_to=m.id) for m in (first, second)]
    await discord_fake.wait_for(lambda: all(marked(discord_fake, r) for r in replies), timeout=10)
    for message in (first, second):
        cancel = await discord_fake.click(message.id, custom_id(message, "Cancel"))
        await discord_fake.wait_for(lambda c=cancel: bool(c.callbacks), timeout=10)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled", "cancelled"], timeout=10)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(discord_fake.member_id)) == 2, timeout=10)
    notes = discord_fake.dms_to(discord_fake.member_id)
    assert all(NOT_MADE in (n.content or "") for n in notes)
    assert sorted(r.id for r in replies) == sorted(
        r.id for r in replies if any(f"/{r.id}" in (n.content or "") for n in notes)
    )


async def test_a_reply_posted_while_its_image_was_made_and_read_once_it_had_failed_is_told(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The reply of a member whose image then ended without one, read only after (the bot stopped while it waited,
    and the image was cancelled before the next start read it again; or its event came late), was let go in
    silence and its owed note settled (found by bench/soak.py). It is told as a waiting reply is."""
    message = await generating(discord_fake, seaart, settings, "a lighthouse")
    reply = await discord_fake.post_message("make it night", reply_to=message.id, live=False)
    sent_then = discord_fake.message_payload(reply)
    cancel = await discord_fake.click(message.id, custom_id(message, "Cancel"))
    await discord_fake.wait_for(lambda: bool(cancel.callbacks), timeout=10)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)

    dispatch_as_sent(running_bot, discord_fake, sent_then)
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    (note,) = discord_fake.dms_to(discord_fake.member_id)
    assert NOT_MADE in (note.content or "") and f"/{reply.id}" in (note.content or "")
    assert len(jobs(settings)) == 1, "nothing made from the reply"


async def test_a_reply_posted_long_after_its_image_failed_is_left_alone(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """A reply to the message of an image that had failed long before is not one that waited: no note (as before)."""
    message = await generating(discord_fake, seaart, settings, "a lighthouse")
    clock.offset = -60.0  # the image ends a minute before the reply, by the bot's clock
    cancel = await discord_fake.click(message.id, custom_id(message, "Cancel"))
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    assert cancel.callbacks
    reply = await discord_fake.post_message("make it night", reply_to=message.id)
    await settled(discord_fake)
    await asyncio.sleep(0.3)
    assert discord_fake.dms_to(discord_fake.member_id) == [] and bot_replies_to(discord_fake, reply.id) == []
    assert not marked(discord_fake, reply) and len(jobs(settings)) == 1


async def test_a_reply_marked_waiting_is_told_whatever_the_clocks_say(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reply the bot marked ⏳ (a run before a stop: the mark is Discord's to keep) waited, though by the clocks
    (Discord's and the bot's an hour apart here) it came after its image ended: read once the image was cancelled,
    its member is told and the mark taken off."""
    monkeypatch.setattr(early_replies, "TYPED_WHILE_MADE_SECONDS", -3600.0)
    message = await generating(discord_fake, seaart, settings, "a lighthouse")
    reply = await discord_fake.post_message("make it night", reply_to=message.id, live=False)
    reply.reactions.append(WAITING_MARK)  # as the run that saw it left it
    sent_then = discord_fake.message_payload(reply)
    cancel = await discord_fake.click(message.id, custom_id(message, "Cancel"))
    await discord_fake.wait_for(lambda: bool(cancel.callbacks) and states(settings) == ["cancelled"], timeout=10)

    dispatch_as_sent(running_bot, discord_fake, sent_then)
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    (note,) = discord_fake.dms_to(discord_fake.member_id)
    assert NOT_MADE in (note.content or "") and f"/{reply.id}" in (note.content or "")
    await discord_fake.wait_for(lambda: not marked(discord_fake, reply), timeout=10)


async def test_a_reply_waiting_in_a_thread_archived_while_the_bot_was_away_is_carried_out(
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The next start takes up the waiting reply by its note owed; its thread, archived meanwhile, is in no cache
    of discord.py's (archived threads are not listed at a start), and the reply was let go as if its channel were
    gone. It is asked of Discord now."""
    monkeypatch.setattr(replies, "CATCH_UP_MARGIN_SECONDS", 0.0)
    thread = discord_fake.add_thread(discord_fake.channel_id, "ideas")
    first = await start_bot(settings, discord_fake, clock)
    try:
        seaart.hold(True)
        asked = await discord_fake.slash_command("imagine", {"prompt": "a lighthouse"}, channel_id=thread)
        await discord_fake.wait_for(lambda: "running" in states(settings), timeout=10)
        message = discord_fake.messages[asked.original_message_id or -1]
        reply = await discord_fake.post_message("make it night", reply_to=message.id, channel_id=thread)
        await discord_fake.wait_for(lambda: marked(discord_fake, reply), timeout=10)
        await asyncio.sleep(1.5)  # the run lives on after the reply
    finally:
        await first.close()
    discord_fake.archive_thread(thread)
    second = await start_bot(settings, discord_fake, clock)
    try:
        assert second.bot.get_channel(thread) is None
        await settled(discord_fake)
        seaart.release()
        seaart.hold(False)
        answer = await answer_to(discord_fake, settings, reply)
        assert answer.channel_id == thread
        assert [job["state"] for job in jobs(settings)] == ["delivered", "delivered"]
        await discord_fake.wait_for(lambda: not marked(discord_fake, reply), timeout=10)
    finally:
        await second.close()
