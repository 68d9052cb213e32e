"""Replies to the bot's images posted while it was away (stopped, or between gateway sessions): Discord
never sends them to it, so once back it reads the channel's recent history and carries them out, once."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import discord
import pytest

from bot.config import Settings, heartbeat_path, unread_mark_path
from bot.models import ReferenceImage
from bot.testing.discord import FakeDiscord, FakeMessage, RecordedRequest
from bot.testing.providers import FakeSeaArt
from cogs.replies import PUBLIC_REFUSAL
from tests.conftest import Clock, RunningBot, make_settings, start_bot
from tests.e2e.edits import bot_image, bot_replies_to, held_reply_jobs, jobs, ledger, states
from tests.e2e.test_replies import answer_to, command


async def test_replies_posted_while_the_bot_was_stopped_are_carried_out_when_it_is_back(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    image = await image_of_a_stopped_bot(discord_fake, settings, clock)
    # While it is stopped: an edit, chatter, and a reply to a member's message.
    edit = await discord_fake.post_message("make it night", reply_to=image.id, live=False)
    chatter = await discord_fake.post_message("lol nice", reply_to=image.id, live=False)
    other = await discord_fake.post_message("a member's own message", live=False)
    aside = await discord_fake.post_message("make it night", reply_to=other.id, live=False)

    second = await start_bot(settings, discord_fake, clock)
    try:
        answer = await answer_to(discord_fake, settings, edit)
    finally:
        await second.close()
    assert states(settings) == ["delivered", "delivered"]
    assert [c.json["prompt"] for c in seaart.creates] == [seaart.creates[0].json["prompt"], "make it night"]
    assert seaart.creates[1].json["image_urls"] == [image.attachments[0]["url"]]
    row = jobs(settings)[1]
    assert row["reply_to_message_id"] == edit.id and row["message_id"] == answer.id
    member = discord_fake.member_id
    assert ledger(settings, row["id"]) == [("reserve", member), ("commit", member)]
    # Chatter and replies to others are left alone, as when the bot sees them live.
    assert bot_replies_to(discord_fake, chatter.id) == [] and bot_replies_to(discord_fake, aside.id) == []


async def test_a_reply_after_a_busy_stretch_of_chat_is_still_found(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """While the bot is away a busy channel posts 150 messages, then a member asks for an edit: history is
    read oldest first, so a catch-up that stopped at 100 messages (as it did) never reached the reply
    members were waiting on; it reads on, page after page."""
    image = await image_of_a_stopped_bot(discord_fake, settings, clock)
    for n in range(150):
        await discord_fake.post_message(f"chat {n}", live=False)
    reply = await discord_fake.post_message("make it night", reply_to=image.id, live=False)

    running = await start_bot(settings, discord_fake, clock)
    try:
        answer = await answer_to(discord_fake, settings, reply)
    finally:
        await running.close()
    assert bot_replies_to(discord_fake, reply.id) == [answer]
    reads = [r for r in history_requests(discord_fake) if "after" in r.query]
    assert len(reads) >= 2  # two pages of history, at least


async def test_a_reply_already_carried_out_is_not_done_again_after_a_restart(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """The previous run answered the reply and was last alive before the reply was posted (its heartbeat,
    set back here, as when a loop stalls): the restart finds it in history, and the job that answers it."""
    first = await start_bot(settings, discord_fake, clock)
    try:
        image = await bot_image(discord_fake, settings)
        before = time.time() - 30
        reply = await discord_fake.post_message("make it night", reply_to=image.id)
        await answer_to(discord_fake, settings, reply)
    finally:
        await first.close()
    os.utime(heartbeat_path(settings), (before, before))
    history_reads = len(history_requests(discord_fake))

    second = await start_bot(settings, discord_fake, clock)
    try:
        # It read the channel's history (so the reply was in view), and did nothing more with it.
        await discord_fake.wait_for(lambda: len(history_requests(discord_fake)) > history_reads, timeout=10)
        await asyncio.sleep(1.5)  # time enough to have started an edit, had it been carried out again
    finally:
        await second.close()
    assert len(seaart.creates) == 2 and len(bot_replies_to(discord_fake, reply.id)) == 1
    assert states(settings) == ["delivered", "delivered"]


async def test_a_reply_is_noted_once_however_often_the_bot_reads_it_again(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """A banned member's reply posted while the bot was away is refused by a private note at the next
    start; the start after that reads the same reply again (the run was last alive before it, as when a
    loop stalls) and sends no second note: notes are recorded per reply, not kept in one run's memory."""
    member, reply, before = await banned_members_reply_while_away(discord_fake, settings, clock)
    for run in range(2):
        running = await start_reading_again(discord_fake, settings, clock, since=before)
        try:
            if run == 0:
                await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=10)
                await discord_fake.wait_for(lambda: noted(settings) == [reply.id], timeout=10)  # recorded as sent
            else:
                await asyncio.sleep(1.5)  # time enough for a second note, had one been sent
        finally:
            await running.close()
    (note,) = discord_fake.dms_to(member)
    assert "banned from using this bot" in (note.content or "") and f"/{reply.id}" in (note.content or "")
    assert bot_replies_to(discord_fake, reply.id) == [] and len(seaart.creates) == 1


async def test_a_note_discord_posted_whose_answer_was_lost_is_not_sent_again_at_the_next_start(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """Discord posts the note's DM but its answer is lost (a 503 from a proxy on the way back, which
    discord.py does not retry): as far as the bot knows nothing reached the member, so nothing is
    recorded, and the bot stops before its own try again 2 s later, exactly as when it is killed between
    sending a note and recording it. The next start reads the reply again and sends the note again with
    the same nonce as before, so Discord hands back the DM it already made: the member has one note, not
    two (before, each send drew a new nonce). The same holds for the try again within the run."""
    member, reply, before = await banned_members_reply_while_away(discord_fake, settings, clock)

    def posts_of_the_note() -> list[object]:
        return [
            r
            for r in discord_fake.requests
            if r.method == "POST" and "banned from using this bot" in str((r.json or {}).get("content"))
        ]

    def dm(r: RecordedRequest) -> bool:
        return "About your reply" in str((r.json or {}).get("content"))

    def reply_in_channel(r: RecordedRequest) -> bool:
        return "message_reference" in (r.json or {})

    messages = r"^/channels/\d+/messages$"
    discord_fake.fail_next("POST", messages, status=503, after=True, match=dm)  # posted, its answer lost
    running = await start_reading_again(discord_fake, settings, clock, since=before)
    try:
        await discord_fake.wait_for(lambda: len(posts_of_the_note()) == 1, timeout=10)  # the DM
        await asyncio.sleep(0.5)  # stopped before the note is tried again (2 s after)
    finally:
        await running.close()
    assert noted(settings) == [] and len(discord_fake.dms_to(member)) == 1  # posted, but not known to be
    assert not any(reply_in_channel(r) for r in discord_fake.requests)  # a DM failing for now is tried again

    running = await start_reading_again(discord_fake, settings, clock, since=before)
    try:
        await discord_fake.wait_for(lambda: noted(settings) == [reply.id], timeout=10)
    finally:
        await running.close()
    assert len(posts_of_the_note()) == 2  # sent again, as nothing was recorded
    (note,) = discord_fake.dms_to(member)
    assert "banned from using this bot" in (note.content or "") and f"/{reply.id}" in (note.content or "")
    assert bot_replies_to(discord_fake, reply.id) == [] and len(seaart.creates) == 1


async def test_a_note_left_in_the_channel_by_a_stopped_run_is_deleted_by_the_next_start(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """A member who takes no DMs gets a refusal as a reply in the channel that deletes itself after 20 s;
    the bot stops before that (a deploy, a kill). discord.py's delete_after is a timer in the process, so
    the note stayed for good (bench/soak.py
    --seed 132). Which note to delete and when is kept with the reply's row: the next start deletes it
    once its time is up."""
    member, reply, before = await banned_members_reply_while_away(discord_fake, settings, clock)
    discord_fake.close_dms(member)
    running = await start_reading_again(discord_fake, settings, clock, since=before)
    try:
        await discord_fake.wait_for(lambda: noted(settings) == [reply.id], timeout=10)
    finally:
        await running.close()  # well within the note's 20 s
    (note,) = bot_replies_to(discord_fake, reply.id)
    assert note.content == PUBLIC_REFUSAL  # the reason is the member's own: not in the channel
    assert not note.deleted and to_delete(settings) == [note.id]

    # The next start comes 19 s later: the note's time is up 1 s from now. That instant on the fake's clock
    # (RecordedRequest.at, monotonic) tells whether the delete came before it, however long the start took
    # (a look at 0.5 s found it already deleted on a loaded machine, the start alone having taken longer).
    due, due_at = clock() + 1.0, time.monotonic() + 1.0
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("UPDATE reply_notes SET delete_at = ?", (due,))
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: note.deleted, timeout=10)
        await discord_fake.wait_for(lambda: to_delete(settings) == [], timeout=10)
    finally:
        await running.close()
    (deleted,) = [r for r in discord_fake.requests if r.method == "DELETE" and r.path.endswith(f"/{note.id}")]
    assert deleted.at >= due_at - 0.05, f"deleted {due_at - deleted.at:.2f} s before its time"
    assert noted(settings) == [reply.id] and len(bot_replies_to(discord_fake, reply.id)) == 1


async def test_a_note_a_stop_cut_short_is_sent_by_the_next_start(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """A banned member replies; Discord fails the refusal's DM (a 503), so the note waits to be tried again,
    and the bot stops in that wait, the run having lived on past the reply longer than the next start's
    look back (10 s before the end). Before, the next start never read that reply again and the member was
    told nothing. Now the note is kept as owed until sent: the next start takes the reply up again and the
    member gets the refusal, once, and nothing else happens to the reply."""
    member = discord_fake.member_id
    first = await start_bot(settings, discord_fake, clock)
    try:
        image = await bot_image(discord_fake, settings)
        await command(discord_fake, "mod ban", {"member": member, "reason": "spam"}, discord_fake.moderator_id)
        replies = first.bot.get_cog("Replies")
        assert replies is not None
        replies.note_retries = (60.0,)  # type: ignore[attr-defined]  # the stop comes in this wait
        discord_fake.fail_next("POST", r"/users/@me/channels$", status=503)  # the DM's first try
        reply = await discord_fake.post_message("make it night", reply_to=image.id)

        def dm_failed() -> bool:
            return any(r.path == "/users/@me/channels" and r.status == 503 for r in discord_fake.requests)

        await discord_fake.wait_for(dm_failed, timeout=10)
        await discord_fake.wait_for(lambda: owed(settings) == [reply.id], timeout=10)  # before its pause
    finally:
        await first.close()
    assert discord_fake.dms_to(member) == [] and noted(settings) == []

    # As if the run had lived 12 s past the reply (inside the note's pause) before it stopped.
    alive = discord.utils.snowflake_time(reply.id).timestamp() + 12.0
    os.utime(heartbeat_path(settings), (alive, alive))
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=10)
        await discord_fake.wait_for(lambda: owed(settings) == [] and noted(settings) == [reply.id], timeout=10)
    finally:
        await running.close()
    (note,) = discord_fake.dms_to(member)
    assert "banned from using this bot" in (note.content or "") and f"/{reply.id}" in (note.content or "")
    assert reply.reactions == [] and bot_replies_to(discord_fake, reply.id) == []
    assert len(seaart.creates) == 1 and len(jobs(settings)) == 1


@pytest.mark.parametrize(
    ("status", "code", "told"),
    [
        (403, 50013, "not allowed to post in that channel"),
        (503, 0, "Discord would not take my answer"),
        (403, 50013, None),
    ],
    ids=["channel-forbids-the-bot", "discord-unavailable", "and-the-member-takes-no-dms"],
)
async def test_a_reply_the_bot_cannot_answer_is_told_privately_once_and_left_at_restarts(
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    clock: Clock,
    status: int,
    code: int,
    told: str | None,
) -> None:
    """The bot may not post in the channel any more (403, Missing Permissions), or Discord fails every try of
    its answer (503s): the reply's job ends uncharged, and the member, who would otherwise see nothing, is
    told by DM why. Each later start reads that reply again (its run was last alive before it) and leaves it
    be: before, each one made and cancelled another job for it, and nobody was ever told. ``told`` None: the
    member takes no DMs either, so nobody can be told; that is final too, and later starts leave it be."""
    member = discord_fake.member_id
    discord_fake.close_dms(member, closed=told is None)
    channel_messages = rf"^/channels/{discord_fake.channel_id}/messages$"
    first = await start_bot(settings, discord_fake, clock)
    try:
        image = await bot_image(discord_fake, settings)
        before = time.time() - 30
        refusal = {"code": code, "message": "Missing Permissions" if status == 403 else "Service Unavailable"}
        discord_fake.fail_next("POST", channel_messages, status=status, body=refusal, times=20 if status == 403 else 4)
        reply = await discord_fake.post_message("make it night", reply_to=image.id, user_id=member)
        await discord_fake.wait_for(lambda: states(settings) == ["delivered", "cancelled"], timeout=20)
        await discord_fake.wait_for(lambda: noted(settings) == [reply.id], timeout=10)
    finally:
        await first.close()
    for _ in range(2):
        running = await start_reading_again(discord_fake, settings, clock, since=before)
        try:
            await asyncio.sleep(1.5)  # time enough to have started the edit again, had it been
        finally:
            await running.close()
    if told is None:
        assert discord_fake.dms_to(member) == []
    else:
        (note,) = discord_fake.dms_to(member)
        text = note.content or ""
        assert told in text and "not charged" in text and f"/{reply.id}" in text
    assert states(settings) == ["delivered", "cancelled"] and len(seaart.creates) == 1
    assert bot_replies_to(discord_fake, reply.id) == []
    assert ledger(settings, jobs(settings)[1]["id"]) == [("reserve", member), ("refund", member)]


@pytest.mark.parametrize("lived_on", [0.0, 30.0], ids=["died-at-once", "lived-on-30s"])
async def test_a_reply_whose_answer_the_bot_died_before_posting_is_carried_out_after_all(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock, lived_on: float
) -> None:
    """The bot took a reply, recorded its job (held, its reservation made) and died before posting its
    answer. The restart finds no answer, so nobody saw the job: it ends uncharged. Then, reading what it
    missed, the bot finds the reply unanswered and carries it out: the member gets the edit, charged once.
    ``lived_on``: that run lived on so long after taking the reply (its answer kept failing, or the loop
    was stuck) that the reply is older than the history read for the time away; its job, recorded and
    never shown, still says it is owed an answer (before, it got none)."""
    image = await image_of_a_stopped_bot(discord_fake, settings, clock)
    reply = await reply_held_by_a_dead_run(discord_fake, settings, clock, image)
    last_alive = time.time() + lived_on
    os.utime(heartbeat_path(settings), (last_alive, last_alive))
    member = discord_fake.member_id

    second = await start_bot(settings, discord_fake, clock)
    try:
        answer = await answer_to(discord_fake, settings, reply)
    finally:
        await second.close()
    held, again = jobs(settings)[1:]
    assert held["reply_to_message_id"] == again["reply_to_message_id"] == reply.id
    assert held["state"] == "cancelled" and held["charge_state"] == "refunded" and held["message_id"] is None
    assert again["state"] == "delivered" and again["message_id"] == answer.id
    assert ledger(settings, again["id"]) == [("reserve", member), ("commit", member)]
    assert [c.json["prompt"] for c in seaart.creates][1:] == ["make it night"]
    assert bot_replies_to(discord_fake, reply.id) == [answer]


async def test_a_reply_to_an_image_deleted_while_the_bot_was_away_gets_a_private_note(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """While the bot is stopped a member asks for an edit of its image and the image is then deleted: once
    back, the bot cannot edit what is gone, so it tells that member why (nothing made, nothing charged)
    instead of leaving the reply unanswered: one note per such reply. Chatter under the deleted image and
    replies to deleted messages that were never the bot's images get nothing."""
    image = await image_of_a_stopped_bot(discord_fake, settings, clock)
    edit = await discord_fake.post_message("make it night", reply_to=image.id, live=False)
    chatter = await discord_fake.post_message("lol nice", reply_to=image.id, live=False)
    hat = await discord_fake.post_message("add a hat", reply_to=image.id, live=False)
    other = await discord_fake.post_message("a member's own message", live=False)
    aside = await discord_fake.post_message(
        "make it night", reply_to=other.id, user_id=discord_fake.moderator_id, live=False
    )
    discord_fake.remove_message(discord_fake.messages[image.id])  # deleted by a member while the bot is away
    discord_fake.remove_message(discord_fake.messages[other.id])
    member = discord_fake.member_id

    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 2, timeout=20)
        await asyncio.sleep(1.0)  # time enough for an answer to the chatter or another note, had one been sent
    finally:
        await running.close()
    notes = discord_fake.dms_to(member)
    assert all("The image you replied to was deleted" in n.content for n in notes)
    assert all("nothing was charged" in n.content for n in notes)
    assert [f"/{edit.id}" in n.content for n in notes] == [True, False]  # each says which reply it is about
    assert [f"/{hat.id}" in n.content for n in notes] == [False, True]
    assert discord_fake.dms_to(discord_fake.moderator_id) == []
    assert all(bot_replies_to(discord_fake, m.id) == [] for m in (edit, chatter, hat, aside))
    assert states(settings) == ["delivered"] and len(seaart.creates) == 1


async def test_a_reply_held_when_the_bot_died_whose_image_is_then_deleted_gets_a_private_note(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """The run that took the reply recorded its job and died before answering; the member deleted the
    image before the bot was back. The held job ends uncharged, and the member is told why there is no
    edit (before, the catch-up passed over the reply in silence: it could not see which image it meant)."""
    image = await image_of_a_stopped_bot(discord_fake, settings, clock)
    reply = await reply_held_by_a_dead_run(discord_fake, settings, clock, image)
    discord_fake.remove_message(discord_fake.messages[image.id])
    member = discord_fake.member_id

    second = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=20)
    finally:
        await second.close()
    assert "The image you replied to was deleted" in discord_fake.dms_to(member)[0].content
    held = jobs(settings)[1]
    assert held["reply_to_message_id"] == reply.id and held["message_id"] is None
    assert held["state"] == "cancelled" and held["charge_state"] == "refunded"
    assert ledger(settings, held["id"]) == [("reserve", member), ("refund", member)]
    assert len(seaart.creates) == 1 and bot_replies_to(discord_fake, reply.id) == []


async def test_a_catch_up_that_could_not_read_everything_is_taken_up_by_the_next_start(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """Discord fails the history read of the catch-up (a 503, which may pass) and the run then lives on
    for half a minute: the next start reads from where that catch-up began, not from when the run was
    last alive, and the reply posted while the bot was away is carried out. A catch-up that read all
    leaves no mark behind."""
    image = await image_of_a_stopped_bot(discord_fake, settings, clock)
    reply = await discord_fake.post_message("make it night", reply_to=image.id, live=False)
    discord_fake.fail_next("GET", rf"/channels/{discord_fake.channel_id}/messages$", status=503)
    reads = len(history_requests(discord_fake))
    second = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: len(history_requests(discord_fake)) > reads, timeout=10)
        await asyncio.sleep(1.0)  # time enough to have answered, had the read worked
    finally:
        await second.close()
    assert bot_replies_to(discord_fake, reply.id) == []
    assert unread_mark_path(settings).exists()
    lived_on = time.time() + 30
    os.utime(heartbeat_path(settings), (lived_on, lived_on))

    third = await start_bot(settings, discord_fake, clock)
    try:
        answer = await answer_to(discord_fake, settings, reply)
        await discord_fake.wait_for(lambda: not unread_mark_path(settings).exists(), timeout=10)
    finally:
        await third.close()
    assert bot_replies_to(discord_fake, reply.id) == [answer]


async def test_a_reply_posted_while_the_gateway_session_was_lost_is_carried_out(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    running = await start_bot(settings, discord_fake, clock)
    try:
        image = await bot_image(discord_fake, settings)
        identified = discord_fake.identify_count
        # Discord drops the connection and will not resume the session: the client identifies afresh.
        await discord_fake.drop_gateway(forget_sessions=True)
        reply = await discord_fake.post_message("make it night", reply_to=image.id, live=False)
        await discord_fake.wait_for(lambda: discord_fake.identify_count > identified, timeout=20)
        await answer_to(discord_fake, settings, reply)
    finally:
        await running.close()
    assert len(seaart.creates) == 2 and states(settings) == ["delivered", "delivered"]


async def test_a_session_lost_during_a_catch_up_is_caught_up_after_it(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """The start's catch-up has read the first channel and is still on the second (Discord answers its
    history with 500s, which discord.py retries after 1, 3 and 5 s) when the gateway session is lost and a
    member replies in the first channel: once the first catch-up is done, another reads what was posted
    while the session was lost, and the reply is carried out (before, the new session's catch-up was
    skipped because one was running, and the reply stayed unanswered)."""
    art = discord_fake.add_channel("art")
    first = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "a dog"}, channel_id=art)
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
        image = await bot_image(discord_fake, settings)  # the newest: its channel is read first
    finally:
        await first.close()
    discord_fake.fail_next("GET", rf"/channels/{art}/messages$", status=500, times=3)

    def art_reads() -> int:
        return sum(1 for r in discord_fake.requests if r.method == "GET" and r.path == f"/channels/{art}/messages")

    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: art_reads() == 1, timeout=20)  # the first channel is read
        identified = discord_fake.identify_count
        await discord_fake.drop_gateway(forget_sessions=True)
        reply = await discord_fake.post_message("make it night", reply_to=image.id, live=False)
        await discord_fake.wait_for(lambda: discord_fake.identify_count > identified, timeout=20)
        assert art_reads() < 4, "the first catch-up ended before the new session began: no overlap tested"
        answer = await answer_to(discord_fake, settings, reply)
    finally:
        await running.close()
    assert bot_replies_to(discord_fake, reply.id) == [answer]


async def banned_members_reply_while_away(
    discord_fake: FakeDiscord, settings: Settings, clock: Clock
) -> tuple[int, FakeMessage, float]:
    """The bot shows an image, a moderator bans its member, the bot stops, and the member replies to the
    image meanwhile: (the member, the reply, a time the bot's last run was alive before the reply)."""
    first = await start_bot(settings, discord_fake, clock)
    try:
        image = await bot_image(discord_fake, settings)
        member = discord_fake.member_id
        await command(discord_fake, "mod ban", {"member": member, "reason": "spam"}, discord_fake.moderator_id)
    finally:
        await first.close()
    before = time.time() - 30
    return member, await discord_fake.post_message("make it night", reply_to=image.id, live=False), before


def history_requests(discord_fake: FakeDiscord) -> list[object]:
    path = f"/channels/{discord_fake.channel_id}/messages"
    return [r for r in discord_fake.requests if r.method == "GET" and r.path == path]


async def start_reading_again(
    discord_fake: FakeDiscord, settings: Settings, clock: Clock, *, since: float
) -> RunningBot:
    """Start the bot as if its last run was last alive at ``since`` (as when a loop stalls), so that it reads
    the channel's history from there again; returns once it has read it."""
    os.utime(heartbeat_path(settings), (since, since))
    reads = len(history_requests(discord_fake))
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: len(history_requests(discord_fake)) > reads, timeout=10)
    except BaseException:
        await running.close()
        raise
    return running


@pytest.mark.parametrize(("default_daily", "tier_daily", "carried_out"), [(25, 1, False), (1, 5, True)])
async def test_a_reply_read_at_a_restart_is_judged_by_its_authors_role_tier(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    clock: Clock,
    default_daily: int,
    tier_daily: int,
    carried_out: bool,
) -> None:
    """A reply read from history names its author without their roles (the bot has no members intent): judged
    so, a member whose role tier allows 1 a day got a second image charged, and one whose tier allows more was
    held to the default. The author's roles are asked for."""
    settings = make_settings(
        tmp_path,
        discord_fake,
        seaart,
        quotas={
            "daily": default_daily,
            "tiers": {"helpers": {"role_id": discord_fake.helper_role_id, "daily": tier_daily}},
        },
    )
    helper = discord_fake.other_member_id  # holds the Helper role
    first = await start_bot(settings, discord_fake, clock)
    try:
        made = await discord_fake.slash_command("imagine", {"prompt": "a cat on a sofa"}, user_id=helper)
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
        image = discord_fake.messages[made.original_message_id]
        await discord_fake.wait_for(lambda: bool(image.attachments), timeout=10)
    finally:
        await first.close()
    reply = await discord_fake.post_message("make it a watercolour", reply_to=image.id, user_id=helper, live=False)
    second = await start_bot(settings, discord_fake, clock)
    try:
        if carried_out:
            await answer_to(discord_fake, settings, reply)
        else:
            await discord_fake.wait_for(lambda: len(discord_fake.dms_to(helper)) == 1, timeout=20)
            assert "1 of your 1 daily" in discord_fake.dms_to(helper)[0].content
    finally:
        await second.close()
    commits = [row for row in jobs(settings) if row["charge_state"] == "committed"]
    assert len(commits) == (2 if carried_out else 1)
    assert states(settings) == ["delivered"] * len(commits)


async def test_a_reply_read_at_a_restart_whose_author_discord_will_not_show_is_told_so(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """Discord refuses the author's member record (their roles decide their quota): the member is told to reply
    again, and nothing starts or is charged."""
    image = await image_of_a_stopped_bot(discord_fake, settings, clock)
    await discord_fake.post_message("make it night", reply_to=image.id, live=False)
    discord_fake.fail_next("GET", r"^/guilds/\d+/members/\d+$", status=403, body={"code": 50001, "message": "no"})
    running = await start_bot(settings, discord_fake, clock)
    try:
        member = discord_fake.member_id
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=20)
        assert "Discord would not say which roles you have" in (discord_fake.dms_to(member)[0].content or "")
    finally:
        await running.close()
    assert states(settings) == ["delivered"] and len(seaart.creates) == 1


async def image_of_a_stopped_bot(discord_fake: FakeDiscord, settings: Settings, clock: Clock) -> FakeMessage:
    """An image the bot made before it stopped."""
    first = await start_bot(settings, discord_fake, clock)
    try:
        return await bot_image(discord_fake, settings)
    finally:
        await first.close()


async def reply_held_by_a_dead_run(
    discord_fake: FakeDiscord, settings: Settings, clock: Clock, image: FakeMessage
) -> FakeMessage:
    """A member's reply to ``image`` and what the run that took it wrote before dying: the reply's job, held
    for its answer, with its reservation; that run was alive when the reply came (its heartbeat)."""
    reply = await discord_fake.post_message("make it night", reply_to=image.id, live=False)
    url = image.attachments[0]["url"]
    reference = ReferenceImage(url=url, content_type="image/png", size=100, filename="a.png")
    await held_reply_jobs(settings, discord_fake, clock(), [reply], reference)
    os.utime(heartbeat_path(settings))
    return reply


def noted(settings: Settings) -> list[int]:
    """The replies the bot has recorded a private note about."""
    with sqlite3.connect(settings.database.path) as conn:
        return [int(row[0]) for row in conn.execute("SELECT message_id FROM reply_notes")]


def owed(settings: Settings) -> list[int]:
    """The replies whose private note the bot has yet to send."""
    with sqlite3.connect(settings.database.path) as conn:
        return [int(row[0]) for row in conn.execute("SELECT message_id FROM owed_notes")]


def to_delete(settings: Settings) -> list[int]:
    """The notes in channels the bot still has to delete."""
    with sqlite3.connect(settings.database.path) as conn:
        return [int(r[0]) for r in conn.execute("SELECT note_message_id FROM reply_notes WHERE delete_at IS NOT NULL")]


async def test_a_reply_in_a_thread_archived_while_the_bot_was_away_is_carried_out(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """A thread that goes quiet is archived by Discord (after an hour, or a day) and is then not among the
    active threads the gateway lists at a start: discord.py has it in no cache, and catch-up skipped it, so a
    reply posted there just before it was archived was never carried out. It is asked of Discord now."""
    thread = discord_fake.add_thread(discord_fake.channel_id, "ideas")
    first = await start_bot(settings, discord_fake, clock)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a cat on a sofa"}, channel_id=thread)
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
        image = discord_fake.messages[interaction.original_message_id or 0]
        assert image.channel_id == thread and image.attachments
    finally:
        await first.close()
    edit = await discord_fake.post_message("make it night", reply_to=image.id, live=False)
    discord_fake.archive_thread(thread)

    second = await start_bot(settings, discord_fake, clock)
    try:
        assert second.bot.get_channel(thread) is None  # not cached: archived threads are not listed
        answer = await answer_to(discord_fake, settings, edit)
    finally:
        await second.close()
    assert answer.channel_id == thread
    assert [c.json["prompt"] for c in seaart.creates] == ["a cat on a sofa", "make it night"]
