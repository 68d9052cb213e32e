"""A slow request pings its member when it has ended (cogs/ready_pings.py): a short reply to its message mentioning
them and nobody else, once per request, whether its image is ready or nothing could be made; never for an image the
member was watching arrive, nor for a cancel, nor for a member who turned it off, nor where the bot may not post."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.discord.protocol import READ_MESSAGE_HISTORY
from bot.testing.providers import FakeSeaArt
from cogs.ready_pings import PING_FRESH_SECONDS
from tests.conftest import Clock, RunningBot, answer_data, answer_given, make_settings, start_bot
from tests.e2e.edits import states
from tests.e2e.test_batch_ends import hide
from tests.e2e.test_buttons import ephemeral_reply
from tests.e2e.test_rework import press

# SeaArt's first status poll of a job scripted "status_hang" never answers: the job waits out the adapter's
# request timeout (2 s in the tests' settings) and is then polled to its end, taking more than this.
# A quick job (a few tenths of a second) stays well under it on a loaded machine too.
AFTER = 1.8
READY = "your image is ready."


def pings(discord_fake: FakeDiscord, channel_id: int | None = None) -> list[FakeMessage]:
    """The bot's messages in the channel that are no job's own: its pings, oldest first."""
    channel = discord_fake.channel_id if channel_id is None else channel_id
    return [
        m
        for m in discord_fake.messages_in(channel)
        if m.author_id is None and m.interaction_id is None and m.reference is not None
    ]


async def screen(discord_fake: FakeDiscord, interaction: Any) -> dict[str, str]:
    """The /preferences screen's fields, by name."""
    await answer_given(discord_fake, interaction)
    return {f["name"]: f["value"] for f in answer_data(discord_fake, interaction)["embeds"][0]["fields"]}


async def imagine(discord_fake: FakeDiscord, settings: Any, options: dict[str, Any], done: int) -> FakeMessage:
    """/imagine run until ``done`` jobs are delivered; the request's message."""
    interaction = await discord_fake.slash_command("imagine", options)
    await discord_fake.wait_for(lambda: states(settings).count("delivered") == done, timeout=30)
    assert interaction.original_message_id is not None
    return discord_fake.messages[interaction.original_message_id]


async def test_a_slow_image_pings_its_member_once_and_a_quick_one_or_a_member_who_said_no_does_not(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"ping_after_seconds": AFTER})
    member = discord_fake.member_id
    bot = await start_bot(settings, discord_fake)
    try:
        # Quick: the member was watching it arrive.
        await imagine(discord_fake, settings, {"prompt": "a quick cat"}, done=1)
        await asyncio.sleep(0.3)
        assert pings(discord_fake) == []

        seaart.script("status_hang")
        slow = await imagine(discord_fake, settings, {"prompt": "a slow cat @everyone"}, done=2)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 1, timeout=10)
        (ping,) = pings(discord_fake)
        # A reply to the image's message, pinging the member alone; the prompt (and its @everyone) is not in it.
        assert ping.content == f"<@{member}> {READY}"
        assert ping.reference is not None and int(ping.reference["message_id"]) == slow.id
        assert ping.pinged == []  # the reply pings not its replied message's author (the bot): only the member
        sent = [r.json for r in discord_fake.requests if r.method == "POST" and (r.json or {}).get("message_reference")]
        assert sent[-1]["allowed_mentions"] == {"parse": [], "users": [member], "replied_user": False}
        assert sent[-1]["nonce"]  # a send Discord took twice is one message

        # Two images at once: one ping, for the first; the second follows in the same message.
        seaart.script("status_hang", "status_hang")
        batch = await imagine(discord_fake, settings, {"prompt": "two slow cats", "count": 2}, done=4)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 2, timeout=10)
        await asyncio.sleep(0.3)
        (first,) = pings(discord_fake)[1:]
        # As the batch stands when it is sent: the second may have come by then.
        assert first.content in (
            f"<@{member}> your first image is ready; the others follow in the same message.",
            f"<@{member}> your 2 images are ready.",
        )
        assert first.reference is not None and int(first.reference["message_id"]) == batch.id

        # The member turns it off; the screen says so.
        interaction = await discord_fake.slash_command("preferences", {"ping": False})
        fields = await screen(discord_fake, interaction)
        assert fields["Ping when done"] == "off"
        seaart.script("status_hang")
        await imagine(discord_fake, settings, {"prompt": "another slow cat"}, done=5)
        await asyncio.sleep(0.5)
        assert len(pings(discord_fake)) == 2

        # Where the bot may not post (a slash command needs no such right), the image is delivered, unpinged.
        hidden = hide(discord_fake)
        interaction = await discord_fake.slash_command("preferences", {"ping": True})
        fields = await screen(discord_fake, interaction)
        assert fields["Ping when done"] == f"on (requests that take {AFTER:g} s or more)"
        seaart.script("status_hang")
        with caplog.at_level(logging.INFO, logger="cogs.ready_pings"):
            hidden_job = await discord_fake.slash_command("imagine", {"prompt": "a hidden cat"}, channel_id=hidden)
            await discord_fake.wait_for(lambda: states(settings).count("delivered") == 6, timeout=30)
            await discord_fake.wait_for(lambda: "was not pinged" in caplog.text, timeout=10)
        assert hidden_job.original_message_id is not None
        assert pings(discord_fake, hidden) == [] and "(HTTP 403)" in caplog.text
        assert states(settings) == ["delivered"] * 6
    finally:
        await bot.close()


async def test_a_server_s_admins_turn_pings_off_or_on_whatever_the_bot_s_default(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The pings are messages in the server's channels: its admins say whether there are any
    (`/admin defaults pings:`), ahead of the bot's configuration; a member may turn them off for themselves, not
    on where the server has them off. ``ping_after_seconds = 0``: every request counts as slow here."""
    settings = make_settings(
        tmp_path, discord_fake, seaart, imagine={"ping_after_seconds": 0, "ping_when_ready": False}
    )
    admin = discord_fake.admin_id
    bot = await start_bot(settings, discord_fake)
    try:
        # Off in the bot's configuration: a member's "on" changes nothing, and the screen says so.
        fields = await screen(discord_fake, await discord_fake.slash_command("preferences", {"ping": True}))
        assert fields["Ping when done"] == "off (this server pings nobody)"
        await imagine(discord_fake, settings, {"prompt": "a cat"}, done=1)
        await asyncio.sleep(0.5)
        assert pings(discord_fake) == []

        # The server's admins turn them on: the member is pinged.
        shown = await screen(
            discord_fake, await discord_fake.slash_command("admin defaults", {"pings": True}, user_id=admin)
        )
        assert shown["Pings"] == "on for every request; each member may turn it off (`/preferences ping`)"
        await imagine(discord_fake, settings, {"prompt": "a second cat"}, done=2)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 1, timeout=10)

        # And off again; a reset goes back to the bot's configuration (off), said as such.
        shown = await screen(
            discord_fake, await discord_fake.slash_command("admin defaults", {"pings": False}, user_id=admin)
        )
        assert shown["Pings"] == "off: nobody here is pinged"
        await imagine(discord_fake, settings, {"prompt": "a third cat"}, done=3)
        await asyncio.sleep(0.5)
        assert len(pings(discord_fake)) == 1
        shown = await screen(
            discord_fake, await discord_fake.slash_command("admin defaults", {"reset": True}, user_id=admin)
        )
        assert shown["Pings"] == "off: nobody here is pinged (bot default)"
    finally:
        await bot.close()


async def test_a_request_that_made_nothing_pings_once_and_a_cancelled_one_not_at_all(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A request that ended without an image is news as much as one that brought it: its member may send it
    again. Once per request (a batch's last end, when none of its images came); never for a cancel, which its
    member knows of. ``ping_after_seconds = 0``: every request counts as slow here."""
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"ping_after_seconds": 0})
    member = discord_fake.member_id
    bot = await start_bot(settings, discord_fake)

    def ended() -> list[str]:
        return [s for s in states(settings) if s != "running" and s != "queued" and s != "submitted"]

    try:
        seaart.script("error:INFERENCE_FAILURE")
        failed = await discord_fake.slash_command("imagine", {"prompt": "a failing cat"})
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 1, timeout=20)
        (ping,) = pings(discord_fake)
        # Why, in the ping itself: its message says so too, but that edit may be the one Discord failed.
        failure = "The image model failed while generating the image (a temporary problem at SeaArt)."
        assert ping.content == f"<@{member}> your image could not be made. {failure} Try again in a minute."
        assert ping.reference is not None and int(ping.reference["message_id"]) == failed.original_message_id

        # Two images, neither made: one ping, once both have ended.
        seaart.script("error:INFERENCE_FAILURE", "error:INFERENCE_FAILURE")
        batch = await discord_fake.slash_command("imagine", {"prompt": "two failing cats", "count": 2})
        await discord_fake.wait_for(lambda: len(ended()) == 3, timeout=20)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 2, timeout=10)
        await asyncio.sleep(0.3)
        last = pings(discord_fake)[-1]
        assert last.content == f"<@{member}> none of your 2 images could be made. {failure} Try again in a minute."
        assert last.reference is not None and int(last.reference["message_id"]) == batch.original_message_id

        # Each for its own reason: each named with what became of it.
        seaart.script("error:INFERENCE_FAILURE", "error:CONTENT_BLOCKED")
        await discord_fake.slash_command("imagine", {"prompt": "two more failing cats", "count": 2})
        await discord_fake.wait_for(lambda: len(ended()) == 5, timeout=20)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 3, timeout=10)
        assert pings(discord_fake)[-1].content == (
            f"<@{member}> none of your 2 images could be made: #1 failed at the provider; "
            "#2 was blocked by the provider's safety filter."
        )

        # One made, one not, the image coming after the failure (its first poll hangs): one ping, for the image,
        # saying the other will not follow (it said "the others follow in the same message").
        seaart.script("error:INFERENCE_FAILURE", "status_hang")
        await discord_fake.slash_command("imagine", {"prompt": "one of two cats", "count": 2})
        await discord_fake.wait_for(lambda: len(ended()) == 7, timeout=20)
        await asyncio.sleep(0.5)
        (one,) = [p.content for p in pings(discord_fake)[3:]]
        # Which candidate SeaArt's first create was depends on which the bot sent first.
        assert re.fullmatch(rf"<@{member}> 1 of your 2 images is ready; #[12] failed at the provider\.", one), one

        # Cancelled by its member: no ping.
        seaart.script("never_finish")
        cancelled = await discord_fake.slash_command("imagine", {"prompt": "a cat never finished"})
        await discord_fake.wait_for(lambda: states(settings)[-1] == "running", timeout=20)
        assert cancelled.original_message_id is not None
        await press(discord_fake, discord_fake.messages[cancelled.original_message_id], "Cancel")
        await discord_fake.wait_for(lambda: states(settings)[-1] == "cancelled", timeout=20)
        await asyncio.sleep(0.5)
        assert len(pings(discord_fake)) == 4
    finally:
        await bot.close()


async def test_stop_these_pings_under_a_ping_turns_them_off_for_its_member_alone_after_a_restart_too(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"ping_after_seconds": AFTER})
    member, other = discord_fake.member_id, discord_fake.other_member_id
    bot = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("preferences", {"model": "nano_banana_pro"})
        await answer_given(discord_fake, interaction)
        seaart.script("status_hang")
        await imagine(discord_fake, settings, {"prompt": "a slow cat"}, done=1)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 1, timeout=10)
    finally:
        await bot.close()
    (ping,) = pings(discord_fake)
    (button,) = [c for row in ping.components for c in row["components"]]
    assert button["label"] == "Stop these pings" and button["custom_id"] == f"bananacord:pings-off:{member}"

    bot = await start_bot(settings, discord_fake)  # a button under an older ping still works
    try:
        # Another member's click changes nothing of anyone's.
        stranger = await discord_fake.click(ping.id, button["custom_id"], user_id=other)
        assert "the member it is for" in await ephemeral_reply(discord_fake, stranger)
        fields = await screen(discord_fake, await discord_fake.slash_command("preferences", {}))
        assert fields["Ping when done"].startswith("on")

        mine = await discord_fake.click(ping.id, button["custom_id"])
        assert "You will not be pinged here" in await ephemeral_reply(discord_fake, mine)
        fields = await screen(discord_fake, await discord_fake.slash_command("preferences", {}))
        # Off, and the member's other preferences kept.
        assert fields["Ping when done"] == "off" and "Nano Banana Pro" in fields["Model"]
        seaart.script("status_hang")
        await imagine(discord_fake, settings, {"prompt": "another slow cat"}, done=2)
        await asyncio.sleep(0.5)
        assert len(pings(discord_fake)) == 1
    finally:
        await bot.close()


def is_ping(request: Any) -> bool:
    return bool((request.json or {}).get("message_reference"))


def ping_posts(discord_fake: FakeDiscord) -> int:
    """How many times the bot has sent a ping, whatever Discord answered."""
    return len([r for r in discord_fake.requests if r.method == "POST" and is_ping(r)])


async def slow_with_a_ping_failing_once(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, *, retry_after: float
) -> tuple[Any, RunningBot]:
    """The bot started with pings after AFTER s and a failed ping tried again after ``retry_after`` s; its next job
    slow (its first poll hangs) and its ping's first send answered 503."""
    settings = make_settings(
        tmp_path,
        discord_fake,
        seaart,
        imagine={"ping_after_seconds": AFTER},
        jobs={"final_edit_retry_seconds": [retry_after]},
    )
    bot = await start_bot(settings, discord_fake)
    discord_fake.fail_next("POST", r"/channels/\d+/messages$", status=503, match=is_ping)
    seaart.script("status_hang")
    return settings, bot


def owed(settings: Any) -> list[tuple[Any, ...]]:
    """The pings owed and not paid (a paid one's row is kept a while, for the start's sweep)."""
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT request_key, said FROM owed_pings WHERE paid_at IS NULL").fetchall()


async def test_a_ping_discord_fails_is_sent_on_a_later_try_and_one_it_made_but_lost_is_not_made_twice(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """discord.py does not retry a 503 on a message: the ping was lost. Now it stays owed and goes again after the
    final edits' waits; Discord having made it (its answer lost on the way back), the same nonce makes no second."""
    settings, bot = await slow_with_a_ping_failing_once(tmp_path, discord_fake, seaart, retry_after=0.3)
    try:
        await imagine(discord_fake, settings, {"prompt": "a slow cat"}, done=1)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 1, timeout=10)
        assert pings(discord_fake)[0].content == f"<@{discord_fake.member_id}> {READY}"

        discord_fake.fail_next("POST", r"/channels/\d+/messages$", status=503, match=is_ping, after=True)
        seaart.script("status_hang")
        await imagine(discord_fake, settings, {"prompt": "another slow cat"}, done=2)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 2, timeout=10)
        await discord_fake.wait_for(lambda: owed(settings) == [], timeout=10)
        await asyncio.sleep(0.5)  # the second try has gone: Discord answered it with the ping it had made
    finally:
        await bot.close()
    assert len(pings(discord_fake)) == 2
    assert ping_posts(discord_fake) == 4


async def test_a_ping_whose_message_was_deleted_meanwhile_is_not_sent(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    """The member deleted the image before its ping went (Discord failed the first send): "your image is ready"
    would point at nothing. Discord refuses a reply to a deleted message when asked to, so no ping is made, and
    none is owed any more. Before, the ping went as a plain message."""
    settings, bot = await slow_with_a_ping_failing_once(tmp_path, discord_fake, seaart, retry_after=1.0)
    try:
        message = await imagine(discord_fake, settings, {"prompt": "a slow cat"}, done=1)
        await discord_fake.wait_for(lambda: ping_posts(discord_fake) == 1, timeout=10)
        with caplog.at_level(logging.INFO, logger="cogs.ready_pings"):
            await discord_fake.delete_messages(message.id)
            await discord_fake.wait_for(lambda: ping_posts(discord_fake) == 2, timeout=10)
            await discord_fake.wait_for(lambda: owed(settings) == [], timeout=10)
        assert "its member was not pinged that it ended (its message was deleted)" in caplog.text
    finally:
        await bot.close()
    said = [
        m
        for m in discord_fake.messages_in(discord_fake.channel_id)
        if m.author_id is None and READY in (m.content or "")
    ]
    assert said == []


async def test_a_ping_a_stop_left_owed_is_sent_by_the_next_start_while_fresh_and_dropped_after(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    settings = make_settings(
        tmp_path, discord_fake, seaart, imagine={"ping_after_seconds": AFTER}, jobs={"final_edit_retry_seconds": [60]}
    )
    for late, sent in ((0.0, 1), (PING_FRESH_SECONDS + 10, 0)):
        bot = await start_bot(settings, discord_fake, clock)
        try:
            done = states(settings).count("delivered") + 1
            tried = ping_posts(discord_fake) + 1
            discord_fake.fail_next("POST", r"/channels/\d+/messages$", status=503, match=is_ping)
            seaart.script("status_hang")
            message = await imagine(discord_fake, settings, {"prompt": "a slow cat"}, done=done)
            # Its first send refused (not merely owed, which comes before the send), the next try 60 s away.
            await discord_fake.wait_for(lambda tried=tried: ping_posts(discord_fake) == tried, timeout=10)
            await asyncio.sleep(0.2)  # the refusal back at the bot
            assert len(owed(settings)) == 1
        finally:
            await bot.close()  # while the next try waits its 60 s
        before = len(pings(discord_fake))
        with sqlite3.connect(settings.database.path) as conn:
            (latest,) = conn.execute("SELECT id FROM jobs ORDER BY created_at DESC LIMIT 1").fetchone()
        assert owed(settings) == [(latest, READY)]  # one row, named by its request
        clock.offset += late
        bot = await start_bot(settings, discord_fake, clock)
        try:
            await discord_fake.wait_for(lambda: owed(settings) == [], timeout=10)
            await asyncio.sleep(0.3)
        finally:
            await bot.close()
        assert len(pings(discord_fake)) == before + sent, late
        if sent:
            assert pings(discord_fake)[-1].reference is not None
            assert int(pings(discord_fake)[-1].reference["message_id"]) == message.id


def move_owed_pings(settings: Any, away: bool) -> None:
    """Take the table of owed pings away (its row cannot be written: as if the bot had stopped between an end and
    the row owing its ping), or put it back."""
    names = ("owed_pings", "owed_pings_away")
    old, new = names if away else names[::-1]
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute(f"ALTER TABLE {old} RENAME TO {new}")


async def test_an_end_whose_ping_was_never_owed_is_pinged_by_the_next_start_once_while_fresh(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    """A stop between a job's end (written) and the row owing its ping left its member unpinged, and no later start
    knew of it. The next start sweeps the last 180 s of ends: one with no row is owed its ping and sent it, once;
    one pinged already, one quick, and one older than 180 s are not."""
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"ping_after_seconds": AFTER})
    member = discord_fake.member_id
    bot = await start_bot(settings, discord_fake, clock)
    try:
        seaart.script("status_hang")
        await imagine(discord_fake, settings, {"prompt": "a slow cat"}, done=1)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 1, timeout=10)
        await imagine(discord_fake, settings, {"prompt": "a quick cat"}, done=2)
        move_owed_pings(settings, away=True)
        seaart.script("status_hang")
        missed = await imagine(discord_fake, settings, {"prompt": "a slow dog"}, done=3)
        await asyncio.sleep(0.5)
        assert len(pings(discord_fake)) == 1  # its ping could not be owed, so it was not sent
    finally:
        await bot.close()
    move_owed_pings(settings, away=False)

    for _ in range(2):  # the second start finds it paid: no second ping
        bot = await start_bot(settings, discord_fake, clock)
        try:
            await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 2, timeout=10)
            await asyncio.sleep(0.5)
        finally:
            await bot.close()
        assert len(pings(discord_fake)) == 2
        ping = pings(discord_fake)[-1]
        assert ping.content == f"<@{member}> {READY}"
        assert ping.reference is not None and int(ping.reference["message_id"]) == missed.id

    # One that ended more than 180 s before the start: its member has most likely seen it by now.
    bot = await start_bot(settings, discord_fake, clock)
    try:
        move_owed_pings(settings, away=True)
        seaart.script("status_hang")
        await imagine(discord_fake, settings, {"prompt": "a slow bird"}, done=4)
        await asyncio.sleep(0.3)
    finally:
        await bot.close()
    move_owed_pings(settings, away=False)
    clock.offset += PING_FRESH_SECONDS + 10
    bot = await start_bot(settings, discord_fake, clock)
    try:
        await asyncio.sleep(1.0)
    finally:
        await bot.close()
    assert len(pings(discord_fake)) == 2


def promised(data: dict[str, Any]) -> str | None:
    """The progress message's word on a ping to come (its "Ping" field), None where it has none."""
    (embed,) = data["embeds"]  # a progress message, not a refusal
    return next((f["value"] for f in embed.get("fields", []) if f["name"] == "Ping"), None)


async def opening(discord_fake: FakeDiscord, options: dict[str, Any], channel_id: int | None = None) -> dict[str, Any]:
    """An /imagine's first answer (its progress message), as the member reads it."""
    interaction = await discord_fake.slash_command("imagine", options, channel_id=channel_id)
    await answer_given(discord_fake, interaction)
    return answer_data(discord_fake, interaction)


async def test_the_progress_message_says_a_ping_is_coming_while_it_runs(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A member who sees "Generating" for a minute should know they may go elsewhere: the bot will ping them. Said
    in the first answer and in the redraws while it runs, gone once the image is in; not once such requests are
    known to end sooner than a ping's wait."""
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"ping_after_seconds": AFTER})
    bot = await start_bot(settings, discord_fake)
    slow = f"when it ends, if it takes {AFTER:g} s or more"
    try:
        seaart.script("status_hang")
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a slow cat"})
        await answer_given(discord_fake, interaction)
        assert promised(answer_data(discord_fake, interaction)) == slow
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=30)
        message_id = interaction.original_message_id
        drawn = [
            r.json["embeds"][0]
            for r in discord_fake.requests
            if r.method == "PATCH" and r.path.endswith(f"/messages/{message_id}") and (r.json or {}).get("embeds")
        ]
        # Redrawn while it runs (its create gone, its status poll hanging): still said; gone from the image's message.
        assert drawn[0]["title"].endswith("…") and promised({"embeds": drawn[:1]}) == slow
        assert "Done" in drawn[-1]["title"] and promised({"embeds": drawn[-1:]}) is None
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 1, timeout=10)  # and the ping came

        # Several images: the ping comes with the first.
        batch = await opening(discord_fake, {"prompt": "two cats", "count": 2})
        assert promised(batch) == f"when the first image is ready, if it takes {AFTER:g} s or more"
        await discord_fake.wait_for(lambda: states(settings).count("delivered") == 3, timeout=30)

        # Once the bot has learned that such requests end within a second or so, it promises nothing.
        for done in (4, 5, 6):
            await opening(discord_fake, {"prompt": f"quick cat {done}"})
            await discord_fake.wait_for(lambda done=done: states(settings).count("delivered") == done, timeout=30)
        learned = await opening(discord_fake, {"prompt": "one more quick cat"})
        shown = {f["name"] for f in learned["embeds"][0]["fields"]}
        assert "Usually takes" in shown and promised(learned) is None
        await discord_fake.wait_for(lambda: states(settings).count("delivered") == 7, timeout=30)
    finally:
        await bot.close()


async def test_the_progress_message_promises_no_ping_where_none_will_come(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Said only where a ping will come: not for a member who turned pings off, not in a server whose admins did, not
    in a channel the bot may not post in (one it knows of, or one Discord never showed it) or reply in.
    ``ping_after_seconds = 0``: every request pings, so nothing learned of their times takes the word away."""
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"ping_after_seconds": 0})
    known = hide(discord_fake)  # a channel the bot knows from its start, where it may not post
    # One where it may post but not read the history, which a reply needs (Discord refuses it: 160002).
    deny = [{"id": str(discord_fake.guild_id), "type": 0, "allow": "0", "deny": str(READ_MESSAGE_HISTORY)}]
    no_history = discord_fake.add_text_channel("no-history", overwrites=deny)
    bot = await start_bot(settings, discord_fake)
    done = 0

    async def said(options: dict[str, Any], channel_id: int | None = None) -> str | None:
        nonlocal done
        data = await opening(discord_fake, options, channel_id)
        done += 1
        await discord_fake.wait_for(lambda: states(settings).count("delivered") == done, timeout=30)
        return promised(data)

    try:
        assert await said({"prompt": "a cat"}) == "when it ends"
        await answer_given(discord_fake, await discord_fake.slash_command("preferences", {"ping": False}))
        assert await said({"prompt": "a cat, unpinged"}) is None
        await answer_given(discord_fake, await discord_fake.slash_command("preferences", {"ping": True}))
        assert await said({"prompt": "a cat again"}) == "when it ends"
        assert await said({"prompt": "a barred cat"}, channel_id=known) is None
        assert await said({"prompt": "a forgetful cat"}, channel_id=no_history) is None
        unseen = hide(discord_fake)  # made after the bot started: it was never shown this channel
        assert await said({"prompt": "a hidden cat"}, channel_id=unseen) is None
        admin = discord_fake.admin_id
        await answer_given(
            discord_fake, await discord_fake.slash_command("admin defaults", {"pings": False}, user_id=admin)
        )
        assert await said({"prompt": "a cat in a quiet server"}) is None
    finally:
        await bot.close()
