"""Reply to edit, through the fake Discord: a member's reply to the bot's image is an edit, answered with
the bot's own reply; refusals are private; what is not an edit is left alone; restarts lose nothing."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.config import Settings, load_settings
from bot.models import ReferenceImage
from bot.render import REFUSED_MARK
from bot.testing.discord import FakeDiscord, FakeMessage, RecordedRequest
from bot.testing.providers import FakeGemini, FakeSeaArt
from cogs.link_pictures import PICTURE_WAIT_SECONDS
from cogs.replies import PUBLIC_REFUSAL
from tests.conftest import BOT_TOKEN, Clock, RunningBot, answer_given, make_settings, png_bytes, start_bot
from tests.discord_markdown import as_read, live_markdown
from tests.e2e.edits import bot_channel_messages, bot_image, bot_replies_to, held_reply_jobs, jobs, ledger, states
from tests.e2e.test_rework import delivered, press

GEMINI_KEY = "test-gemini-key-77aa"


async def command(discord_fake: FakeDiscord, name: str, options: dict[str, Any], user_id: int) -> None:
    interaction = await discord_fake.slash_command(name, options, user_id=user_id)
    await answer_given(discord_fake, interaction)  # after a "thinking…", its follow-up: the command is done


async def answer_to(discord_fake: FakeDiscord, settings: Settings, reply: FakeMessage) -> FakeMessage:
    """The bot's reply to ``reply``, once it shows a finished image and its job is delivered."""
    await discord_fake.wait_for(lambda: len(bot_replies_to(discord_fake, reply.id)) == 1, timeout=20)
    (answer,) = bot_replies_to(discord_fake, reply.id)

    def delivered() -> bool:
        return any(row["message_id"] == answer.id and row["state"] == "delivered" for row in jobs(settings))

    await discord_fake.wait_for(delivered, timeout=20)
    assert answer.files and "Done" in answer.embeds[0]["title"]
    return answer


async def test_a_reply_to_the_bots_image_is_an_edit_answered_by_a_reply_that_can_be_replied_to(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    image = await bot_image(discord_fake, settings, aspect_ratio="3:2")
    await command(
        discord_fake, "mod safety set", {"level": 1, "channel": discord_fake.channel_id}, discord_fake.moderator_id
    )
    hat = discord_fake.add_attachment(png_bytes(colour=(10, 90, 200)), "hat.png", "image/png")
    # Someone else than the image's author replies, with an image of their own, and the default ping.
    reply = await discord_fake.post_message(
        "put this hat on the cat", reply_to=image.id, attachments=[hat], user_id=discord_fake.admin_id
    )

    answer = await answer_to(discord_fake, settings, reply)
    assert states(settings) == ["delivered", "delivered"]
    # The provider got the replied image and the reply's image as references, with the original's options.
    create = seaart.creates[1].json
    assert create["prompt"] == "put this hat on the cat"
    assert create["image_urls"] == [image.attachments[0]["url"], hat["url"]]
    assert create["aspect_ratio"] == "3:2"
    edit = jobs(settings)[1]
    assert edit["user_id"] == discord_fake.admin_id and edit["reply_to_message_id"] == reply.id
    assert edit["message_id"] == answer.id and edit["interaction_token"] is None
    assert edit["safety_level"] == 1  # the channel's level, as for /imagine
    # The member sees a reply to their message: the result, pinging nobody.
    assert answer.type == 19 and answer.channel_id == discord_fake.channel_id
    (sent,) = [r.json for r in discord_fake.requests if r.method == "POST" and (r.json or {}).get("message_reference")]
    assert sent["message_reference"]["message_id"] == reply.id
    assert sent["allowed_mentions"] == {"parse": [], "replied_user": False} and answer.pinged == []
    embed = answer.embeds[0]
    assert embed["description"] == "put this hat on the cat" and "2 reference images" in str(embed["fields"])
    assert answer.edits >= 1  # the reply itself shows the job queued; it is edited in place to the result
    # Charged to whoever replied.
    assert ledger(settings, edit["id"]) == [("reserve", discord_fake.admin_id), ("commit", discord_fake.admin_id)]

    # The answer is one of the bot's images too: replying to it edits the new image.
    again = await discord_fake.post_message("now make it night", reply_to=answer.id)
    second = await answer_to(discord_fake, settings, again)
    assert seaart.creates[2].json["image_urls"] == [answer.attachments[0]["url"]]
    assert seaart.creates[2].json["aspect_ratio"] == "3:2"
    third = jobs(settings)[2]
    assert third["message_id"] == second.id and third["user_id"] == discord_fake.member_id
    assert ledger(settings, third["id"]) == [("reserve", discord_fake.member_id), ("commit", discord_fake.member_id)]


async def test_a_reply_asks_for_a_new_shape_as_midjourney_members_would(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    member = discord_fake.member_id
    image = await bot_image(discord_fake, settings, aspect_ratio="1:1")
    both = await discord_fake.post_message("make it night --ar 9:16", reply_to=image.id)
    await answer_to(discord_fake, settings, both)
    create = seaart.creates[1].json
    assert (create["prompt"], create["aspect_ratio"]) == ("make it night", "9:16")

    # The shape alone: the image reframed to it.
    alone = await discord_fake.post_message("--ar 16:9", reply_to=image.id)
    answer = await answer_to(discord_fake, settings, alone)
    create = seaart.creates[2].json
    assert create["aspect_ratio"] == "16:9" and "16:9 (landscape) frame" in create["prompt"]
    assert create["image_urls"] == [image.attachments[0]["url"]]
    assert create["prompt"].startswith("Show this same image in a 16:9 (landscape) frame")
    # What was asked of the model is what the member reads (the thread shows what it started from).
    assert as_read(answer.embeds[0]["description"]).startswith("Show this same image in a 16:9 (landscape) frame")
    assert (answer.attachments[0]["width"], answer.attachments[0]["height"]) == (1024, 576)

    # With an image of the member's own beside it, the frame says which image it means.
    hat = discord_fake.add_attachment(png_bytes(colour=(10, 90, 200)), "hat.png", "image/png")
    with_hat = await discord_fake.post_message("--ar 21:9", reply_to=image.id, attachments=[hat])
    await answer_to(discord_fake, settings, with_hat)
    create = seaart.creates[3].json
    assert create["prompt"].startswith("Show the first image as it is in a 21:9 (landscape) frame")
    assert create["image_urls"] == [image.attachments[0]["url"], hat["url"]]

    # Midjourney's --zoom: a zoom out, in the image's own shape.
    zoom = await discord_fake.post_message("add a moon --zoom 2", reply_to=image.id)
    await answer_to(discord_fake, settings, zoom)
    create = seaart.creates[4].json
    assert create["prompt"].startswith("Zoom out from this image into the same frame")
    assert create["prompt"].endswith("Also: add a moon") and create["aspect_ratio"] == "1:1"

    async def refused(text: str) -> str:
        before = len(discord_fake.dms_to(member))
        await discord_fake.post_message(text, reply_to=image.id)
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == before + 1, timeout=10)
        return discord_fake.dms_to(member)[-1].content or ""

    assert "cannot be given the shape `3:7` here. Choose one of: 1:1, 16:9" in await refused("wider --ar 3:7")
    # The shape the image has is no new shape; an image asked in none has the one Discord measures (the fake
    # draws a square by default). (The same refusal twice in ten minutes would be a 🚫 reaction, not a DM.)
    unasked = await bot_image(discord_fake, settings)
    before = len(discord_fake.dms_to(member))
    await discord_fake.post_message("--ar 1:1", reply_to=unasked.id)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == before + 1, timeout=10)
    assert "has that shape already" in (discord_fake.dms_to(member)[-1].content or "")
    assert len(seaart.creates) == 6 and states(settings) == ["delivered"] * 6


async def test_a_reply_s_other_midjourney_parameters_are_taken_out_and_named_privately(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """ "make it night --v 6 --no stars" sent "--v 6 --no stars" to the model as words: only --ar and --zoom were
    read. Now --no is said in words, and the parameters an edit has no use for (a seed too: an edit keeps its
    image's options) are taken out and named to the member in a private note (a DM here)."""
    member = discord_fake.member_id
    image = await bot_image(discord_fake, settings, aspect_ratio="1:1")
    reply = await discord_fake.post_message("make it night --ar 16:9 --v 6 --no stars --seed 3", reply_to=image.id)
    answer = await answer_to(discord_fake, settings, reply)
    create = seaart.creates[1].json
    assert (create["prompt"], create["aspect_ratio"]) == ("make it night, without stars", "16:9")
    assert "make it night, without stars" in as_read(answer.embeds[0]["description"])
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(member)), timeout=10)
    [note] = [m.content or "" for m in discord_fake.dms_to(member)]
    assert "Left out `--v 6 --seed 3`: Midjourney's parameters, which mean nothing to Nano Banana." in note, note
    assert str(reply.id) in note, "the note links the reply it is about"


async def test_a_reply_with_an_image_no_provider_takes_is_refused_naming_it(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The reply's own images are the member's choice: a GIF among them is named (it is not silently left out),
    and nothing is sent or charged."""
    image = await bot_image(discord_fake, settings)
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, "GIF")
    gif = discord_fake.add_attachment(out.getvalue(), "dance.gif", "image/gif")
    member = discord_fake.member_id
    await discord_fake.post_message("put this on the cat", reply_to=image.id, attachments=[gif])
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=10)
    assert "`dance.gif` is not a supported image (image/gif)" in (discord_fake.dms_to(member)[0].content or "")
    assert len(seaart.creates) == 1 and states(settings) == ["delivered"]


async def test_a_reply_that_arrives_without_its_text_gets_one_private_hint(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    image = await bot_image(discord_fake, settings)
    # The ping turned off: Discord gives the bot (no message-content intent) the reply without its text.
    await discord_fake.post_message("make it night", reply_to=image.id, ping=False)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(discord_fake.member_id)) == 1, timeout=10)
    (hint,) = discord_fake.dms_to(discord_fake.member_id)
    assert hint.content is not None and "leave the @ping on" in hint.content
    assert hint.allowed_mentions is not None and hint.allowed_mentions["parse"] == []

    await discord_fake.post_message("make it night, please", reply_to=image.id, ping=False)
    # With the ping, the same reply is an edit; the second quiet reply got no second hint meanwhile.
    reply = await discord_fake.post_message("make it night", reply_to=image.id)
    await answer_to(discord_fake, settings, reply)
    assert len(discord_fake.dms_to(discord_fake.member_id)) == 1
    assert states(settings) == ["delivered", "delivered"]


async def test_a_banned_members_reply_is_refused_privately_and_charges_nothing(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    image = await bot_image(discord_fake, settings)
    member, admin = discord_fake.member_id, discord_fake.other_member_id  # admins cannot be banned: another member
    for banned in (member, admin):
        await command(discord_fake, "mod ban", {"member": banned, "reason": "spam"}, discord_fake.moderator_id)

    reply = await discord_fake.post_message("make it night", reply_to=image.id)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=10)
    text = discord_fake.dms_to(member)[0].content or ""
    assert "banned from using this bot" in text and "Reason: spam" in text and str(reply.id) in text

    # A member who takes no DMs gets a reply that soon deletes itself, saying the edit was not made and
    # where to learn why; the reason itself (the ban's) is theirs, not the channel's.
    replies = running_bot.bot.get_cog("Replies")
    assert replies is not None
    replies.note_seconds = 0.3  # type: ignore[attr-defined]
    discord_fake.close_dms(admin)
    closed = await discord_fake.post_message("make it day", reply_to=image.id, user_id=admin)
    await discord_fake.wait_for(lambda: len(bot_replies_to(discord_fake, closed.id)) == 1, timeout=10)
    (note,) = bot_replies_to(discord_fake, closed.id)
    assert note.content == PUBLIC_REFUSAL and note.pinged == []
    assert "banned" not in note.content and "spam" not in note.content
    await discord_fake.wait_for(lambda: note.deleted, timeout=10)

    # The same refusal again within minutes is not repeated (the member was told), but the reply is marked
    # refused, so the member sees it was not carried out (before: nothing at all happened to it).
    again = await discord_fake.post_message("make it dusk", reply_to=image.id)
    again_closed = await discord_fake.post_message("make it dusk", reply_to=image.id, user_id=admin)
    await discord_fake.wait_for(lambda: REFUSED_MARK in again.reactions and REFUSED_MARK in again_closed.reactions, 10)
    assert len(discord_fake.dms_to(member)) == 1 and bot_replies_to(discord_fake, again.id) == []
    assert bot_replies_to(discord_fake, again_closed.id) == [] and reply.reactions == []

    assert len(jobs(settings)) == 1 and bot_replies_to(discord_fake, reply.id) == []
    assert ledger(settings, jobs(settings)[0]["id"]) == [("reserve", member), ("commit", member)]


async def image_for_a_banned_member(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> FakeMessage:
    """An image of the bot's, its member then banned (so a reply of theirs is refused with a private note), and the
    notes' tries again shortened."""
    image = await bot_image(discord_fake, settings)
    await command(
        discord_fake, "mod ban", {"member": discord_fake.member_id, "reason": "spam"}, discord_fake.moderator_id
    )
    replies = running_bot.bot.get_cog("Replies")
    assert replies is not None
    replies.note_retries = (0.2, 0.5, 1.0)  # type: ignore[attr-defined]  # 2, 5 and 10 s, shortened
    return image


async def test_a_refusal_discord_takes_neither_way_is_tried_again_then_marked_on_the_reply(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Discord answers 503 to the refusal's DM (discord.py does not retry it): the note is tried again a
    moment later, by DM (not yet as a reply the whole channel sees). Discord failing it every time, the
    channel reply on the last try included, the reply is marked refused instead, the mark too tried again
    after a 503. Before, the member was told nothing (bench/soak.py --seed 132)."""
    image = await image_for_a_banned_member(running_bot, discord_fake, settings)
    member = discord_fake.member_id

    notes = r"/users/@me/channels|/channels/\d+/messages$"
    discord_fake.fail_next("POST", notes, status=503, times=2)  # the DM's first two tries (opening its channel)
    first = await discord_fake.post_message("make it night", reply_to=image.id)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=15)
    assert str(first.id) in (discord_fake.dms_to(member)[0].content or "") and first.reactions == []

    other = discord_fake.other_member_id
    await command(discord_fake, "mod ban", {"member": other}, discord_fake.moderator_id)
    discord_fake.fail_next("POST", notes, status=503, times=100)  # down for the note's every try
    discord_fake.fail_next("PUT", r"/reactions/", status=503)  # and the mark's first try
    second = await discord_fake.post_message("make it dusk", reply_to=image.id, user_id=other)
    await discord_fake.wait_for(lambda: REFUSED_MARK in second.reactions, timeout=10)
    assert discord_fake.dms_to(other) == [] and bot_replies_to(discord_fake, second.id) == []
    assert len(jobs(settings)) == 1


async def test_a_note_whose_dm_discord_made_but_answered_a_failure_each_try_goes_nowhere_else(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Discord makes the refusal's DM and answers every try with a 503 (its answer lost on the way back; the nonce
    keeps it one DM). The last try then posted the note in the channel too: the member got it twice (found by
    bench/soak.py). The DM is read first."""
    image = await image_for_a_banned_member(running_bot, discord_fake, settings)
    member = discord_fake.member_id

    def the_dm(request: RecordedRequest) -> bool:
        return "About your reply" in json.dumps(request.json)

    discord_fake.fail_next("POST", r"/channels/\d+/messages$", status=503, times=100, match=the_dm, after=True)
    reply = await discord_fake.post_message("make it night", reply_to=image.id)
    await discord_fake.wait_for(lambda: len([r for r in discord_fake.requests if the_dm(r)]) == 4, timeout=15)
    await asyncio.sleep(1.0)  # a note in the channel, were one coming
    (dm,) = discord_fake.dms_to(member)
    assert str(reply.id) in (dm.content or "")
    assert bot_replies_to(discord_fake, reply.id) == [] and reply.reactions == []


async def test_refusals_of_a_reply_are_private_and_charge_nothing(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 2})
    running = await start_bot(settings, discord_fake, clock)
    member = discord_fake.member_id
    try:
        image = await bot_image(discord_fake, settings)  # 1 of the member's 2 daily units
        await command(discord_fake, "mod blockterm add", {"term": "dragon"}, discord_fake.moderator_id)
        refs = [discord_fake.add_attachment(png_bytes(), f"r{i}.png", "image/png") for i in range(3)]

        async def refused(text: str, **kwargs: Any) -> str:
            before = len(discord_fake.dms_to(member))
            await discord_fake.post_message(text, reply_to=image.id, **kwargs)
            await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == before + 1, timeout=10)
            return discord_fake.dms_to(member)[-1].content or ""

        # Nano Banana 2 on SeaArt takes 3 references: the replied image and 2 of the member's own.
        too_many = await refused("use these", attachments=refs)
        assert "takes at most 3 reference image(s)" in too_many and "Your reply attached 3" in too_many
        assert "does not allow" in await refused("add a dragon")
        reply = await discord_fake.post_message("make it night", reply_to=image.id)
        await answer_to(discord_fake, settings, reply)  # the 2nd unit
        over = await refused("make it day")
        assert "used 2 of your 2 daily units" in over

        assert states(settings) == ["delivered", "delivered"] and len(seaart.creates) == 2
        assert [ledger(settings, row["id"])[-1] for row in jobs(settings)] == [("commit", member)] * 2
    finally:
        await running.close()


async def test_replies_that_are_not_edits_are_left_alone(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    image = await bot_image(discord_fake, settings)
    seaart.hold(True)
    running = await discord_fake.slash_command("imagine", {"prompt": "still drawing"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered", "running"], timeout=10)
    in_progress = running.original_message_id
    assert in_progress is not None
    photo = discord_fake.add_attachment(png_bytes(), "photo.png", "image/png")
    friend = await discord_fake.post_message("my cat", attachments=[photo], user_id=discord_fake.admin_id)
    bot = f"<@{discord_fake.bot_user_id}>"
    shown = bot_channel_messages(discord_fake)

    with caplog.at_level(logging.INFO):
        await discord_fake.post_message("make it night")  # not a reply
        # Not a reply: no edit, though it names the bot (it gets the Imagine this offer: cogs/mention_prompts.py).
        named = await discord_fake.post_message(f"{bot} make it night")
        await discord_fake.post_message(f"{bot} make it night", reply_to=friend.id)  # a member's image
        # No image yet, and no text to wait with (cogs/early_replies.py waits with words): no hint either.
        await discord_fake.post_message("make it night", reply_to=in_progress, ping=False)
        await discord_fake.post_message("lol", reply_to=in_progress)
        for chat in ("lol", "nice!! 😂", "👍", "so cool, thanks", f"<@{discord_fake.admin_id}> look at this"):
            await discord_fake.post_message(chat, reply_to=image.id)
        await discord_fake.post_message(attachments=[photo], reply_to=image.id)  # no text
        # The listener is alive: a real edit after all of them is answered.
        edit = await discord_fake.post_message("make it night", reply_to=image.id)
        seaart.hold(False)
        await answer_to(discord_fake, settings, edit)

    assert len(jobs(settings)) == 3 and [c.json["prompt"] for c in seaart.creates][-1] == "make it night"
    (offer,) = bot_replies_to(discord_fake, named.id)
    assert "**Imagine this**" in (offer.content or "")
    posted = bot_channel_messages(discord_fake)
    assert posted[: len(shown)] == shown
    assert sorted(posted[len(shown) :]) == sorted([offer.id, bot_replies_to(discord_fake, edit.id)[0].id])
    assert discord_fake.dms_to(discord_fake.member_id) == [] and discord_fake.dms_to(discord_fake.admin_id) == []
    # A message that starts with the bot's mention is not a failed prefix command.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_reply_job_in_flight_survives_a_restart(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    first = await start_bot(settings, discord_fake, clock)
    try:
        image = await bot_image(discord_fake, settings)
        seaart.hold(True)
        reply = await discord_fake.post_message("make it night", reply_to=image.id)
        await discord_fake.wait_for(lambda: states(settings) == ["delivered", "running"], timeout=10)
    finally:
        await first.close()
    (answer,) = bot_replies_to(discord_fake, reply.id)
    assert not answer.files

    second = await start_bot(settings, discord_fake, clock)
    try:
        seaart.release()
        await discord_fake.wait_for(lambda: states(settings) == ["delivered", "delivered"], timeout=20)
        await discord_fake.wait_for(lambda: bool(answer.files), timeout=10)
        assert "Done" in answer.embeds[0]["title"] and bot_replies_to(discord_fake, reply.id) == [answer]
        assert len(seaart.creates) == 2
        member = discord_fake.member_id
        assert ledger(settings, jobs(settings)[1]["id"]) == [("reserve", member), ("commit", member)]
    finally:
        await second.close()


async def held_replies(discord_fake: FakeDiscord, settings: Settings, clock: Clock, *texts: str) -> list[FakeMessage]:
    """The member's replies (``texts``, pinging the bot) and the held jobs a bot that died before answering
    them left (tests/e2e/edits.py held_reply_jobs), each editing the same picture of a cat."""
    reference = ReferenceImage(
        url=discord_fake.add_attachment(png_bytes(), "cat.png", "image/png")["url"],
        content_type="image/png",
        size=100,
        filename="cat.png",
    )
    asked = [
        discord_fake.post_member_message(
            author_id=discord_fake.member_id,
            channel_id=discord_fake.channel_id,
            content=text,
            attachments=[],
            embeds=[],
            reference=None,
            ping=True,
        )
        for text in texts
    ]
    await held_reply_jobs(settings, discord_fake, clock(), asked, reference)
    return asked


@pytest.mark.parametrize(
    ("first_look_fails", "chat_before_answer"),
    [(False, 0), (True, 0), (False, 120)],
    ids=["looked-up", "first-look-503", "busy-channel"],
)
async def test_a_reply_job_held_when_the_bot_died_is_found_by_its_answer_or_ends_uncharged(
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    clock: Clock,
    first_look_fails: bool,
    chat_before_answer: int,
) -> None:
    """The bot died between recording a reply job (held, with its reservation) and recording the id of
    its answer. If the answer was sent, the restarted bot finds it and finishes the job in it; if not,
    nobody saw the job and it ends uncharged. ``first_look_fails``: Discord answers the restart's first
    look (the channel's history) with a 503, which discord.py does not retry: the bot looks again and
    ends the same way (before, that job stayed held for an hour, its reply showing "Queued").
    ``chat_before_answer``: a busy channel posted that many messages between the member's reply and the
    bot's answer (which Discord made only on a retry, seconds later); the bot looked at the 50 messages
    after the reply and no further, so it ended the job as never shown while its answer said "Queued…"
    (found by `bench/soak.py --seed 91`: a reply answered twice, once by a job cancelled)."""
    member = discord_fake.member_id
    asked = await held_replies(discord_fake, settings, clock, "make it night", "make it day")
    for n in range(chat_before_answer):
        discord_fake.post_member_message(
            author_id=member,
            channel_id=discord_fake.channel_id,
            content=f"chat {n}",
            attachments=[],
            embeds=[],
            reference=None,
            ping=False,
        )
    # The answer to the first was sent before the bot died.
    answer = discord_fake.create_message(
        channel_id=discord_fake.channel_id,
        payload={"embeds": [{"title": "🍌 Queued…"}], "allowed_mentions": {"parse": [], "replied_user": False}},
        files={},
        reference=discord_fake.reply_reference(discord_fake.channel_id, {"message_id": asked[0].id}),
    )
    if first_look_fails:
        discord_fake.fail_next("GET", rf"^/channels/{discord_fake.channel_id}/messages$", status=503)

    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: sorted(states(settings)) == ["cancelled", "delivered"], timeout=20)
        found, unseen = sorted(jobs(settings), key=lambda row: row["state"] != "delivered")
        assert found["message_id"] == answer.id and answer.files and "Done" in answer.embeds[0]["title"]
        assert unseen["reply_to_message_id"] == asked[1].id and unseen["charge_state"] == "refunded"
        assert [c.json["prompt"] for c in seaart.creates] == ["make it night"]
        assert ledger(settings, found["id"]) == [("reserve", member), ("commit", member)]
    finally:
        await running.close()


async def test_a_held_job_whose_message_discord_never_lets_the_bot_look_for_ends_uncharged(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """The restart's look for a held job's answer goes on in the background while Discord fails every
    read of the channel (`[jobs] held_look_retry_seconds`, minutes by default, tenths of a second here);
    when the last look fails too, nothing says the member saw the job, so it ends cancelled and uncharged,
    and its provider is never asked to make it. Meanwhile the bot is not held up: it answers commands."""
    member = discord_fake.member_id
    (asked,) = await held_replies(discord_fake, settings, clock, "make it night")
    history = rf"^/channels/{discord_fake.channel_id}/messages$"
    discord_fake.fail_next("GET", history, status=503, times=1000)
    # Long enough in all (3.5 s) that the looks are still going on when the start has been waited for, on a
    # loaded machine too: the first check below reads the job still waiting.
    pauses = (0.5, 1.0, 2.0)
    impatient = settings.model_copy(
        update={"jobs": settings.jobs.model_copy(update={"held_look_retry_seconds": pauses})}
    )

    running = await start_bot(impatient, discord_fake, clock)
    try:
        # Still looking: the job waits, and the bot answers a command meanwhile.
        assert states(impatient) == ["queued"]
        image = await bot_image(discord_fake, impatient)
        assert image.files
        await discord_fake.wait_for(lambda: "cancelled" in states(impatient), timeout=20)
        (held,) = [row for row in jobs(impatient) if row["reply_to_message_id"] == asked.id]
        assert held["state"] == "cancelled" and held["charge_state"] == "refunded"
        assert ledger(impatient, held["id"]) == [("reserve", member), ("refund", member)]
        assert [c.json["prompt"] for c in seaart.creates] == ["a cat on a sofa"]  # the command's, not the reply's
        looks = [
            r
            for r in discord_fake.requests
            if r.method == "GET" and r.path.endswith(f"/{discord_fake.channel_id}/messages")
        ]
        assert len(looks) >= 1 + 1 + len(pauses)  # the start's look, then one after each pause and a last one
    finally:
        await running.close()


def gemini_settings(tmp_path: Path, discord_fake: FakeDiscord, gemini: FakeGemini) -> Settings:
    """Nano Banana 2 served by Gemini alone: the provider that takes a reply thread as a conversation."""
    return load_settings(
        None,
        environment=False,
        discord_token=BOT_TOKEN,
        gemini_api_key=GEMINI_KEY,
        discord={"api_base_url": discord_fake.api_base_url, "gateway_url": discord_fake.gateway_url},
        database={"path": str(tmp_path / "bot.sqlite3")},
        providers={"seaart": {"enabled": False}, "gemini": {"enabled": True, "base_url": gemini.base_url}},
        models={"routes": {"nano_banana_2": ["gemini"]}},
        jobs={"poll_interval_seconds": 0.05, "max_poll_interval_seconds": 0.2, "progress_interval_seconds": 0},
    )


@pytest.mark.parametrize("a_day_later", [False, True], ids=["at-once", "a-day-later"])
async def test_on_gemini_a_thread_of_replies_is_sent_as_a_conversation(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock, a_day_later: bool
) -> None:
    """A day later every CDN link in the thread has expired: the earlier turns' images are fetched through
    links renewed with refresh-urls, and the whole conversation still goes along."""
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        running = await start_bot(settings, discord_fake, clock)
        try:
            image = await bot_image(discord_fake, settings)
            night = await discord_fake.post_message("make it night", reply_to=image.id)
            answer = await answer_to(discord_fake, settings, night)
            if a_day_later:
                clock.now += discord_fake.expire_attachment_urls()
            hat = png_bytes(colour=(10, 90, 200))
            with_hat = await discord_fake.post_message(
                "add this hat",
                reply_to=answer.id,
                attachments=[discord_fake.add_attachment(hat, "hat.png", "image/png")],
            )
            await answer_to(discord_fake, settings, with_hat)
        finally:
            await running.close()

    contents = gemini.creates[2].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert [c["parts"][0]["text"] for c in contents[::2]] == ["a cat on a sofa", "make it night", "add this hat"]
    # The model's turns are the images as the members saw them, with the signatures Gemini gave them.
    signatures = [json.loads(row["result_json"])["images"][0]["thought_signature"] for row in jobs(settings)[:2]]
    for model_turn, shown, signature in zip(contents[1::2], (image, answer), signatures, strict=True):
        (part,) = model_turn["parts"]
        assert base64.b64decode(part["inlineData"]["data"]) == shown.files[0].data
        assert part["thoughtSignature"] == signature and signature
    # The image being edited is the last answer already: the new turn adds only the member's hat.
    assert len(contents[2]["parts"]) == 1
    assert [base64.b64decode(p["inlineData"]["data"]) for p in contents[4]["parts"][1:]] == [hat]


async def test_on_gemini_the_edit_button_continues_the_image_s_conversation(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    """The Edit button edits the same image a reply does, so Gemini gets the same conversation: the
    prompt that made it and the image as shown, with its signature, before the new instruction (before,
    the button started a conversation of its own and the model did not know what "it" was)."""
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        running = await start_bot(settings, discord_fake, clock)
        try:
            image = await bot_image(discord_fake, settings)
            edit = await press(discord_fake, image, "Edit")
            await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
            await delivered(discord_fake, await discord_fake.submit_modal(edit, {"instruction": "make it night"}))
            # A new shape alone goes the same way: the same conversation, the reframe as its new turn.
            reframe = await press(discord_fake, image, "Edit")
            await discord_fake.wait_for(lambda: bool(reframe.callbacks), timeout=10)
            await delivered(discord_fake, await discord_fake.submit_modal(reframe, {"shape": "16:9"}))
        finally:
            await running.close()

    reframed = gemini.creates[2].json
    assert reframed["generationConfig"]["imageConfig"]["aspectRatio"] == "16:9"
    assert [c["role"] for c in reframed["contents"]] == ["user", "model", "user"]
    assert reframed["contents"][2]["parts"][0]["text"].startswith("Show this same image in a 16:9 (landscape) frame")
    contents = gemini.creates[1].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert [c["parts"][0]["text"] for c in contents[::2]] == ["a cat on a sofa", "make it night"]
    (part,) = contents[1]["parts"]
    assert base64.b64decode(part["inlineData"]["data"]) == image.files[0].data
    signature = json.loads(jobs(settings)[0]["result_json"])["images"][0]["thought_signature"]
    assert part["thoughtSignature"] == signature and signature
    # The image being edited is the model's last turn already: the new turn is the instruction alone.
    assert len(contents[2]["parts"]) == 1


async def test_a_refusal_quoting_a_file_name_in_the_channel_writes_no_markdown(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """A member who takes no DMs gets a refusal as a reply in the channel, for all to see. It quoted an
    attachment too large by its name, in a code span, which a backtick in the name ended; now the channel
    reads only that the reply was not carried out (the reason is the member's), so no name at all."""
    image = await bot_image(discord_fake, settings)
    admin = discord_fake.admin_id
    discord_fake.close_dms(admin)
    name = "a`**[Free nitro](https://e.example)**`.png"
    big = discord_fake.add_attachment(png_bytes(), name, "image/png", size=50 * 1024 * 1024)
    reply = await discord_fake.post_message("put this on", reply_to=image.id, attachments=[big], user_id=admin)
    await discord_fake.wait_for(lambda: len(bot_replies_to(discord_fake, reply.id)) == 1, timeout=10)
    (note,) = bot_replies_to(discord_fake, reply.id)
    assert note.content == PUBLIC_REFUSAL and "Free nitro" not in note.content
    assert live_markdown(note.content) == [], note.content


async def test_a_ban_s_long_reason_still_reaches_a_member_who_replies(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """A ban stored before reasons were bounded (up to Discord's 6,000 characters) made the refusal longer
    than a message may be: Discord refused the DM and the reply in the channel, and the member never
    learnt why their reply did nothing."""
    image = await bot_image(discord_fake, settings)
    member = discord_fake.member_id
    moderation = running_bot.bot.services.moderation
    await moderation.ban(
        discord_fake.guild_id, member, reason="r" * 1950, expires_at=None, by=discord_fake.moderator_id
    )
    await discord_fake.post_message("make it night", reply_to=image.id)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=10)
    (dm,) = discord_fake.dms_to(member)
    assert "banned" in dm.content and len(dm.content) <= 2000 and "About your reply" in dm.content


async def test_an_image_linked_in_a_reply_is_a_reference_once_though_discord_embeds_it_too(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The link went to the model as words; Discord shows it as an embed of the image too, which the bot reads
    as the reply's image: one reference, not two, and the words without the link."""
    image = await bot_image(discord_fake, settings, aspect_ratio="1:1")
    hat = discord_fake.add_attachment(png_bytes(colour=(10, 90, 200)), "hat.png", "image/png")
    reply = await discord_fake.post_message(f"put {hat['url']} on the cat", reply_to=image.id, image_links=[hat["url"]])
    await answer_to(discord_fake, settings, reply)
    create = seaart.creates[1].json
    assert create["prompt"] == "put on the cat"
    assert create["image_urls"] == [image.attachments[0]["url"], hat["url"]]


async def test_a_reply_s_link_to_an_image_elsewhere_waits_for_discord_s_picture_or_is_refused_without_one(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Discord adds its picture of a link after the message (MESSAGE_UPDATE): an edit started at once went
    without the image, charged. Now the reply waits for the picture, or reads the message again for one added
    before it listened; a link Discord shows no picture of is refused, nothing made or charged: at once for one
    in < >, after the wait for one Discord never pictured."""
    member = discord_fake.member_id
    image = await bot_image(discord_fake, settings, aspect_ratio="1:1")
    hat, scarf = "https://pictures.example/hat.png", "https://pictures.example/scarf.png"
    hat_copy = discord_fake.add_external_image(hat, png_bytes(colour=(10, 90, 200)))
    scarf_copy = discord_fake.add_external_image(scarf, png_bytes(colour=(200, 90, 10)))

    late = await discord_fake.post_message(f"put {hat} on the cat", reply_to=image.id)
    await asyncio.sleep(1.5)
    await discord_fake.show_link_pictures(late, [hat])
    await answer_to(discord_fake, settings, late)
    assert seaart.creates[1].json["image_urls"] == [image.attachments[0]["url"], hat_copy]
    # Meanwhile the member saw the bot typing in their channel: their reply was taken up.
    typing = f"/channels/{late.channel_id}/typing"
    assert [r for r in discord_fake.requests if r.method == "POST" and r.path.endswith(typing)]
    # The update came before the bot listened (or was missed): the message read again has the picture.
    missed = await discord_fake.post_message(f"put {scarf} on the cat", reply_to=image.id)
    await discord_fake.show_link_pictures(missed, [scarf], announce=False)
    await answer_to(discord_fake, settings, missed)
    assert seaart.creates[2].json["image_urls"] == [image.attachments[0]["url"], scarf_copy]

    async def refused(text: str) -> tuple[str, float]:
        before, began = len(discord_fake.dms_to(member)), time.monotonic()
        await discord_fake.post_message(text, reply_to=image.id)
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == before + 1, timeout=20)
        return discord_fake.dms_to(member)[-1].content or "", time.monotonic() - began

    note, took = await refused(f"put <{hat}> on the cat")
    assert "no picture of your link to the image on `pictures.example` (a link in < >" in note, note
    assert "Post the link without < >, or attach the image" in note and took < PICTURE_WAIT_SECONDS
    note, took = await refused("put https://pictures.example/gone.png on the cat")
    assert "Discord showed no picture of your link to the image on `pictures.example`" in note, note
    assert "Attach the image to your reply instead." in note and took >= PICTURE_WAIT_SECONDS
    assert len(seaart.creates) == 3 and states(settings) == ["delivered"] * 3  # no job for either refusal


async def test_a_reply_s_link_to_an_image_elsewhere_is_discord_s_copy_not_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Discord shows a reply's link to an image on another site as its copy: that is the reply's image, and the
    link leaves the words (it is neither refused as an image from elsewhere nor fetched from the site)."""
    image = await bot_image(discord_fake, settings, aspect_ratio="1:1")
    outside = "https://pictures.example/hat.png"
    copy = discord_fake.add_external_image(outside, png_bytes(colour=(10, 90, 200)))
    reply = await discord_fake.post_message(f"put {outside} on the cat", reply_to=image.id, image_links=[outside])
    await answer_to(discord_fake, settings, reply)
    create = seaart.creates[1].json
    assert create["prompt"] == "put on the cat"
    assert create["image_urls"] == [image.attachments[0]["url"], copy]
