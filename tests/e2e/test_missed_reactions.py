"""⭐ and ✉️ given while the bot was away, which Discord never delivers, taken up once it is back
(cogs/missed_reactions.py): the stars made what the ⭐ say, a copy for each ✉️ that had none, nothing twice."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeMessage, RecordedRequest
from bot.testing.providers import FakeSeaArt
from cogs.dm_reaction import NOT_READY
from cogs.missed_reactions import RECENT, MissedReactions
from tests.conftest import Clock, make_settings, start_bot
from tests.e2e.test_privacy import erase_mine, stored
from tests.e2e.test_rework import imagine
from tests.e2e.test_star_reaction import stars


def job_of(settings: Settings, prompt: str) -> str:
    with sqlite3.connect(settings.database.path) as conn:
        (found,) = conn.execute("SELECT id FROM jobs WHERE request_json LIKE ?", (f"%{prompt}%",)).fetchall()
    return str(found[0])


def copy_of_row(settings: Settings, job_id: str, **changes: object) -> None:
    """A copy of a job's row with ``changes`` (another id, message or server): a row as the bot writes them."""
    with sqlite3.connect(settings.database.path) as conn:
        cursor = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
        row = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True)) | changes
        conn.execute(f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))


async def shown_then_away(settings: Settings, discord_fake: FakeDiscord, clock: Clock, prompt: str) -> FakeMessage:
    """An image of ``prompt`` made, and the bot stopped."""
    running = await start_bot(settings, discord_fake, clock)
    try:
        return await imagine(discord_fake, {"prompt": prompt})
    finally:
        await running.close()


def reads_of(discord_fake: FakeDiscord, message_id: int) -> int:
    return sum(1 for r in discord_fake.requests if r.method == "GET" and r.path.endswith(f"/messages/{message_id}"))


@pytest.fixture(autouse=True)
def readings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="cogs.missed_reactions")
    return caplog


async def back(settings: Settings, discord_fake: FakeDiscord, clock: Clock, readings: pytest.LogCaptureFixture) -> str:
    """The bot started again until its reading of the reactions is done, and stopped; what it said it did."""
    readings.clear()
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: bool(said(readings)), timeout=20)
        await asyncio.sleep(0.3)  # a copy or a star the reading would still make, or a second one
    finally:
        await running.close()
    (line,) = said(readings)
    return line


def said(readings: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in readings.records if "image message(s) read" in r.getMessage()]


async def test_stars_and_envelopes_given_while_the_bot_was_away_are_taken_up_once_it_is_back(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    member, other = discord_fake.member_id, discord_fake.other_member_id
    running = await start_bot(settings, discord_fake, clock)
    try:
        mine = await imagine(discord_fake, {"prompt": "a paper lantern"})
        theirs = await imagine(discord_fake, {"prompt": "a red kite"}, user_id=other)
        gone = await imagine(discord_fake, {"prompt": "a sandcastle"})
        assert await discord_fake.react(mine.id, "⭐")
        assert await discord_fake.react(gone.id, "⭐", user_id=other)
        assert await discord_fake.react(theirs.id, "✉️")  # answered live: a copy
        await discord_fake.wait_for(lambda: len(stars(settings)) == 2 and len(discord_fake.dms_to(member)) == 1)
        await asyncio.sleep(0.3)  # the copy recorded
    finally:
        await running.close()

    # While the bot is away: the other member stars the member's image, the member takes their star back, and
    # asks for copies; a message is deleted (its stars must go, as a live delete's do).
    await discord_fake.react(mine.id, "⭐", user_id=other, seen=False)
    await discord_fake.unreact(mine.id, "⭐", seen=False)
    await discord_fake.react(mine.id, "✉️", seen=False)
    await discord_fake.react(theirs.id, "✉️", user_id=other, seen=False)
    discord_fake.remove_message(gone)
    assert len(discord_fake.dms_to(member)) == 1 and discord_fake.dms_to(other) == []

    assert await back(settings, discord_fake, clock, readings) == (
        "reactions given while the bot was away: 3 of 3 image message(s) read; 1 starred, 2 unstarred, 2 ✉️ copies "
        "sent for, 0 deleted by their member's ❌"
    )
    assert stars(settings) == [(other, job_of(settings, "a paper lantern"))]
    copies = discord_fake.dms_to(member)
    assert len(copies) == 2  # the live one, and the one for the ✉️ given while away; not a second of theirs
    assert copies[1].embeds[0]["footer"]["text"] == f"Job {job_of(settings, 'a paper lantern')}"
    assert [f.data for f in copies[1].files] == [f.data for f in mine.files]
    (copy,) = discord_fake.dms_to(other)
    assert copy.embeds[0]["footer"]["text"] == f"Job {job_of(settings, 'a red kite')}"

    # The message deleted while away is marked so: /jobs no longer links it, and it is not read again.
    assert stored(settings, f"SELECT deleted_by FROM jobs WHERE id = '{job_of(settings, 'a sandcastle')}'") == [(0,)]
    # Back once more: nothing sent or starred twice.
    assert await back(settings, discord_fake, clock, readings) == (
        "reactions given while the bot was away: 2 of 2 image message(s) read; 0 starred, 0 unstarred, 0 ✉️ copies "
        "sent for, 0 deleted by their member's ❌"
    )
    assert len(discord_fake.dms_to(member)) == 2 and len(discord_fake.dms_to(other)) == 1
    assert stars(settings) == [(other, job_of(settings, "a paper lantern"))]


async def test_a_banned_member_s_envelope_and_images_from_before_copies_were_kept_are_left(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    """A member banned from the bot gets nothing, as live. An image shown before this version kept which copies it
    sent (migration 0031) may have had its copy sent already: a second is worse than none, so none is sent."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        older = await imagine(discord_fake, {"prompt": "an old lighthouse"})
        with sqlite3.connect(settings.database.path) as conn:  # as if shown before the upgrade
            conn.execute("UPDATE dm_copies_since SET at = ?", (time.time() + 60,))
        await discord_fake.slash_command(
            "mod ban", {"member": discord_fake.other_member_id, "reason": "spam"}, user_id=discord_fake.moderator_id
        )
        await discord_fake.wait_for(lambda: bool(stored_bans(settings)), timeout=10)
    finally:
        await running.close()
    await discord_fake.react(older.id, "✉️", seen=False)
    await discord_fake.react(older.id, "✉️", user_id=discord_fake.other_member_id, seen=False)
    await back(settings, discord_fake, clock, readings)
    assert discord_fake.dms_to(discord_fake.member_id) == [] and discord_fake.dms_to(discord_fake.other_member_id) == []
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("UPDATE dm_copies_since SET at = 0")
    await back(settings, discord_fake, clock, readings)
    assert len(discord_fake.dms_to(discord_fake.member_id)) == 1  # once copies are known: the member's
    assert discord_fake.dms_to(discord_fake.other_member_id) == []  # banned


def stored_bans(settings: Settings) -> list[tuple[int]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT user_id FROM bans").fetchall()


async def test_only_the_latest_images_are_read_again_and_a_first_start_reads_none(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        first = await imagine(discord_fake, {"prompt": "the first image"})
        await asyncio.sleep(0.5)
        assert reads_of(discord_fake, first.id) == 0  # a first start: nothing was missed
        later = await imagine(discord_fake, {"prompt": "a later image"})
    finally:
        await running.close()
    with sqlite3.connect(settings.database.path) as conn:  # the first shown longer before the time away than is read
        conn.execute("UPDATE jobs SET finished_at = finished_at - 2 * 86400 WHERE id = ?", (job_of(settings, "first"),))
    await back(settings, discord_fake, clock, readings)
    assert reads_of(discord_fake, first.id) == 0 and reads_of(discord_fake, later.id) == 1


async def test_no_more_than_the_latest_images_are_read(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    oldest = await shown_then_away(settings, discord_fake, clock, "one image")
    ((job_id, finished),) = stored(settings, "SELECT id, finished_at FROM jobs")
    for n in range(RECENT + 5):  # as many more shown since, each its own message
        copy_of_row(settings, job_id, id=f"copy{n:012d}", message_id=10**15 + n, finished_at=finished + 1 + n)
    assert await back(settings, discord_fake, clock, readings) == (
        f"reactions given while the bot was away: {RECENT} of {RECENT} image message(s) read; 0 starred, 0 unstarred, "
        "0 ✉️ copies sent for, 0 deleted by their member's ❌"
    )
    assert reads_of(discord_fake, oldest.id) == 0


async def test_a_crowd_s_stars_given_while_away_are_read_page_by_page_and_kept_at_once(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    """Discord lists who reacted 100 at a time: 150 members' ⭐ take two pages, and are kept in one write."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    image = await shown_then_away(settings, discord_fake, clock, "a crowd favourite")
    crowd = [10**17 + n for n in range(150)]
    for member in crowd:
        await discord_fake.react(image.id, "⭐", user_id=member, seen=False)
    assert await back(settings, discord_fake, clock, readings) == (
        "reactions given while the bot was away: 1 of 1 image message(s) read; 150 starred, 0 unstarred, 0 ✉️ "
        "copies sent for, 0 deleted by their member's ❌"
    )
    assert sorted(member for member, _ in stars(settings)) == crowd
    pages = [r for r in discord_fake.requests if r.method == "GET" and "/reactions/" in r.path]
    assert len(pages) == 2


async def test_a_star_an_erasure_took_away_is_not_given_back_by_the_reaction_still_on_the_image(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    """/privacy's erasure deletes the member's stars; their ⭐ stays on the images in Discord (the bot cannot take a
    member's reaction away without Manage Messages). Read again once the bot is back, that ⭐ gives nothing back; a ⭐
    on an image shown after the erasure, given while the bot was away, is kept."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        before = await imagine(discord_fake, {"prompt": "starred before the erasure"})
        assert await discord_fake.react(before.id, "⭐")
        await discord_fake.wait_for(lambda: len(stars(settings)) == 1, timeout=10)
        await erase_mine(discord_fake)
        assert stars(settings) == []
        after = await imagine(discord_fake, {"prompt": "shown after the erasure"})
    finally:
        await running.close()
    await discord_fake.react(after.id, "⭐", seen=False)
    assert await back(settings, discord_fake, clock, readings) == (
        "reactions given while the bot was away: 2 of 2 image message(s) read; 1 starred, 0 unstarred, 0 ✉️ "
        "copies sent for, 0 deleted by their member's ❌"
    )
    assert stars(settings) == [(discord_fake.member_id, job_of(settings, "shown after the erasure"))]


async def test_a_super_reaction_star_is_kept_when_the_reactions_are_read_again(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    """Discord lists super reactions apart from the others: a ⭐ given as one (starred live, its event the same) is
    not read as taken back, and one given while the bot was away stars too."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        image = await imagine(discord_fake, {"prompt": "super"})
        assert await discord_fake.react(image.id, "⭐", burst=True)
        await discord_fake.wait_for(lambda: len(stars(settings)) == 1, timeout=10)
    finally:
        await running.close()
    await discord_fake.react(image.id, "⭐", user_id=discord_fake.other_member_id, seen=False, burst=True)
    assert await back(settings, discord_fake, clock, readings) == (
        "reactions given while the bot was away: 1 of 1 image message(s) read; 1 starred, 0 unstarred, 0 ✉️ "
        "copies sent for, 0 deleted by their member's ❌"
    )
    assert sorted(member for member, _ in stars(settings)) == sorted(
        [discord_fake.member_id, discord_fake.other_member_id]
    )


async def test_a_member_s_cross_given_while_away_deletes_their_image_and_another_s_does_not(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    """As live: the ❌ of the member who asked for the image deletes its message (its stars go with it); another
    member's ❌ is only a reaction."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        mine = await imagine(discord_fake, {"prompt": "unwanted"})
        kept = await imagine(discord_fake, {"prompt": "wanted"})
        assert await discord_fake.react(mine.id, "⭐", user_id=discord_fake.other_member_id)
        await discord_fake.wait_for(lambda: len(stars(settings)) == 1, timeout=10)
    finally:
        await running.close()
    await discord_fake.react(mine.id, "❌", seen=False)
    await discord_fake.react(kept.id, "❌", user_id=discord_fake.other_member_id, seen=False)
    assert await back(settings, discord_fake, clock, readings) == (
        "reactions given while the bot was away: 2 of 2 image message(s) read; 0 starred, 0 unstarred, 0 ✉️ "
        "copies sent for, 1 deleted by their member's ❌"
    )
    assert discord_fake.messages[mine.id].deleted and not discord_fake.messages[kept.id].deleted
    deleted = dict(stored(settings, "SELECT json_extract(request_json, '$.prompt'), deleted_by FROM jobs"))
    assert deleted == {"unwanted": discord_fake.member_id, "wanted": None}
    assert stars(settings) == []


async def test_an_envelope_on_an_image_a_stop_caught_being_delivered_is_taken_up_once_it_is_delivered_again(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    """The bot edits the image into its message, and stops before it marks the row delivered (here: Discord made the
    edit and its answer was lost, so the delivery waits to be tried again). A ✉️ given on the image while the bot is
    away was passed over for good: the reading at the next start reads delivered images, and this one was delivered
    again only after it. The reading now waits for such images first, and the member gets their copy."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        lost = [True]  # each upload's answer lost until the bot is stopped
        discord_fake.fail_next(
            "PATCH", r"/messages/", status=503, times=1000, match=lambda r: lost[0] and bool(r.files), after=True
        )
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a glass lighthouse"})
        await discord_fake.wait_for(lambda: interaction.original_message_id is not None, timeout=10)
        message = discord_fake.messages[interaction.original_message_id or -1]
        await discord_fake.wait_for(lambda: bool(message.files), timeout=20)  # shown, as far as members see
        await asyncio.sleep(0.3)
        assert stored(settings, "SELECT state FROM jobs") == [("succeeded",)]
    finally:
        await running.close()
    lost[0] = False
    # Once more after the start, so that the delivery is tried again only after the reading has begun, as when many
    # jobs resume at once; then Discord answers again.
    discord_fake.fail_next("PATCH", r"/messages/", status=503, match=lambda r: bool(r.files), after=True)
    await discord_fake.react(message.id, "✉️", user_id=discord_fake.other_member_id, seen=False)

    line = await back(settings, discord_fake, clock, readings)
    assert stored(settings, "SELECT state FROM jobs") == [("delivered",)]
    assert line.startswith("reactions given while the bot was away: 1 of 1 image message(s) read") and (
        "1 ✉️ copies sent for" in line
    )
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.other_member_id)), timeout=10)
    (copy,) = discord_fake.dms_to(discord_fake.other_member_id)
    assert [f.data for f in copy.files] == [f.data for f in message.files]


async def test_envelopes_and_stars_on_an_image_still_being_made_across_a_restart_count_once_it_shows(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    """A ✉️ on an image still being made waits for it in the bot's memory: a stop lost it, although the member had
    been told the copy would come, and a ✉️ given on it while the bot was away was never read (the reading read
    images shown). The reading now finds both on the messages of unfinished images, and the copies come once the
    image shows, each once, with no second "not ready"."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    member, other = discord_fake.member_id, discord_fake.other_member_id
    readings.set_level(logging.INFO, logger="cogs.missed_reactions")
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, clock)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a slow lighthouse"})
        await discord_fake.wait_for(lambda: stored(settings, "SELECT state FROM jobs") == [("running",)], timeout=10)
        message_id = interaction.original_message_id or -1
        assert await discord_fake.react(message_id, "✉️")
        await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(member)), timeout=10)
    finally:
        await running.close()
    await discord_fake.react(message_id, "✉️", user_id=other, seen=False)
    await discord_fake.react(message_id, "⭐", user_id=other, seen=False)

    readings.clear()
    running = await start_bot(settings, discord_fake, clock)
    try:
        waiting = (
            "⭐, ✉️ and ❌ on 1 message(s) of images still being made: 3 wait for their images, 0 deleted by their "
            "member's ❌"
        )
        await discord_fake.wait_for(lambda: waiting in [r.getMessage() for r in readings.records], timeout=20)
        assert stored(settings, "SELECT state FROM jobs") == [("running",)], "read while the image is being made"
        seaart.release()
        seaart.hold(False)
        await discord_fake.wait_for(lambda: stored(settings, "SELECT state FROM jobs") == [("delivered",)], timeout=20)
        await discord_fake.wait_for(
            lambda: len(discord_fake.dms_to(member)) == 2 and len(discord_fake.dms_to(other)) == 1, timeout=20
        )
        await asyncio.sleep(0.3)  # a second copy, were one coming
    finally:
        await running.close()
    shown = discord_fake.messages[message_id]
    not_ready, copy = discord_fake.dms_to(member)
    assert not_ready.content == NOT_READY and [f.data for f in copy.files] == [f.data for f in shown.files]
    (theirs,) = discord_fake.dms_to(other)
    assert [f.data for f in theirs.files] == [f.data for f in shown.files]
    assert stars(settings) == [(other, job_of(settings, "a slow lighthouse"))], "the ⭐ given while away, once shown"


async def test_a_member_s_cross_given_while_away_on_their_image_still_being_made_deletes_it_and_cancels_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    """A ❌ given while the bot was away was read only on images shown: the member's image still being made went on,
    was shown and charged. Now, as a live ❌ does, the message is deleted and the image cancelled, uncharged."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, clock)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "an unwanted lighthouse"})
        await discord_fake.wait_for(lambda: stored(settings, "SELECT state FROM jobs") == [("running",)], timeout=10)
    finally:
        await running.close()
    message_id = interaction.original_message_id or -1
    await discord_fake.react(message_id, "👍", user_id=discord_fake.other_member_id, seen=False)
    await discord_fake.react(message_id, "❌", user_id=discord_fake.other_member_id, seen=False)  # not theirs: kept
    await discord_fake.react(message_id, "❌", seen=False)

    readings.clear()
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(
            lambda: "1 deleted by their member's ❌" in " ".join(said_all(readings)), timeout=20
        )
        await discord_fake.wait_for(lambda: stored(settings, "SELECT state FROM jobs") == [("cancelled",)], timeout=20)
    finally:
        await running.close()
    assert message_id not in discord_fake.messages or discord_fake.messages[message_id].deleted
    assert stored(settings, "SELECT kind FROM ledger ORDER BY id") == [("reserve",), ("refund",)]


def said_all(readings: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in readings.records]


async def test_an_envelope_both_read_back_and_met_live_brings_one_copy(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    """A ✉️ given as the bot came back is both in the message the reading reads and in an event of its own. Met
    both ways, it brought two copies (found by bench/soak.py): the event after the reading took it, and (below) the
    reading while the event's copy was on its way, not yet recorded."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    other = discord_fake.other_member_id

    def a_copy(request: RecordedRequest) -> bool:
        return "Your copy" in json.dumps(request.json)

    image = await shown_then_away(settings, discord_fake, clock, "a paper lantern")
    await discord_fake.react(image.id, "✉️", user_id=other, seen=False)
    readings.clear()
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: bool(said(readings)) and len(discord_fake.dms_to(other)) == 1, timeout=20)
        assert await discord_fake.react(image.id, "✉️", user_id=other)  # its event, come late
        await asyncio.sleep(1.0)  # a second copy, were one coming
        assert len(discord_fake.dms_to(other)) == 1

        # Given live, its copy held up by Discord (a 503, sent again a second later), and read back meanwhile.
        second = await imagine(discord_fake, {"prompt": "a red kite"})
        discord_fake.fail_next("POST", r"^/channels/\d+/messages$", status=503, match=a_copy)
        assert await discord_fake.react(second.id, "✉️", user_id=other)
        await discord_fake.wait_for(lambda: any(r.status == 503 for r in discord_fake.requests), timeout=10)
        cog = running.bot.get_cog("MissedReactions")
        assert isinstance(cog, MissedReactions)
        await cog.read(time.time() - 60)
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(other)) >= 2, timeout=10)
        await asyncio.sleep(1.5)  # a second copy, were one coming
        assert len(discord_fake.dms_to(other)) == 2
        footers = [dm.embeds[0]["footer"]["text"] for dm in discord_fake.dms_to(other)]
        assert footers == [f"Job {job_of(settings, 'a paper lantern')}", f"Job {job_of(settings, 'a red kite')}"]
    finally:
        await running.close()


async def test_a_copy_sent_but_not_recorded_before_a_stop_is_not_sent_again(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, readings: pytest.LogCaptureFixture
) -> None:
    """A kill between a copy's sending and its record (or a database refusing the record) left the ✉️ looking
    unanswered, and the next start's reading sent a second copy (found by bench/soak.py). The member's DM says."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    other = discord_fake.other_member_id
    running = await start_bot(settings, discord_fake, clock)
    try:
        image = await imagine(discord_fake, {"prompt": "a paper lantern"})
        assert await discord_fake.react(image.id, "✉️", user_id=other)
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(other)) == 1, timeout=10)
        await discord_fake.wait_for(lambda: bool(stored(settings, "SELECT 1 FROM dm_copies")), timeout=10)
    finally:
        await running.close()
    (copy,) = discord_fake.dms_to(other)
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("DELETE FROM dm_copies")  # the record the stop cut off

    await back(settings, discord_fake, clock, readings)
    assert len(discord_fake.dms_to(other)) == 1
    assert stored(settings, "SELECT message_id, user_id FROM dm_copies") == [(copy.id, other)], "recorded now"
