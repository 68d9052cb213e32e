"""An erasure reaches the bot's DMs that quoted the words (bot/dm_copies.py): a ✉️ copy (the member's own, or another
member's copy of the member's image) and an end notice are drawn again without them. A member cannot delete the
bot's messages in their DMs, so these were the one copy of their words they could do nothing about."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, make_settings, start_bot
from tests.discord_markdown import as_read
from tests.e2e.test_batches import batch_message
from tests.e2e.test_final_edits import final_edit, short_retry_settings, told_by_dm
from tests.e2e.test_privacy import erase_mine, fields, stored
from tests.e2e.test_rework import imagine


def kept(settings: Settings) -> list[tuple[str, int]]:
    """The DMs still recorded: (kind, whether a redraw is owed)."""
    return [(str(kind), int(due)) for kind, due in stored(settings, "SELECT kind, owed_at IS NOT NULL FROM dm_copies")]


def shows(message: FakeMessage) -> str:
    return json.dumps([message.content, message.embeds, message.attachments])


async def envelope(discord_fake: FakeDiscord, message: FakeMessage, user_id: int) -> FakeMessage:
    """``user_id``'s ✉️ on ``message``, and the copy it brought to their DMs."""
    before = len(discord_fake.dms_to(user_id))
    assert await discord_fake.react(message.id, "✉️", user_id=user_id)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(user_id)) == before + 1, timeout=10)
    return discord_fake.dms_to(user_id)[-1]


async def test_the_envelope_copies_of_erased_requests_are_drawn_again_without_their_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    member, other = discord_fake.member_id, discord_fake.other_member_id
    single = await imagine(discord_fake, {"prompt": "my secretword garden at night"})
    pair = await batch_message(discord_fake, {"prompt": "our secretword holiday {at dawn, at dusk}"})
    await discord_fake.wait_for(
        lambda: stored(settings, "SELECT COUNT(*) FROM jobs WHERE finished_at IS NULL") == [(0,)], timeout=20
    )
    await discord_fake.wait_for(lambda: len(discord_fake.messages[pair.id].attachments) == 2, timeout=10)
    theirs = await imagine(discord_fake, {"prompt": "the other member's secretword kite"}, user_id=other)
    # Another member's copy of the member's image, the member's own of their batch, and a copy of another's image.
    copy_of_single = await envelope(discord_fake, single, other)
    copy_of_pair = await envelope(discord_fake, pair, member)
    copy_of_theirs = await envelope(discord_fake, theirs, member)
    assert "secretword" in shows(copy_of_single) and "secretword" in shows(copy_of_pair)
    files_before = [a["id"] for a in copy_of_pair.attachments]
    assert len(files_before) == 2
    footer_before = copy_of_pair.embeds[0]["footer"]
    await discord_fake.wait_for(lambda: kept(settings) == [("copy", 0)] * 3, timeout=10)  # recorded once sent
    theirs_before = shows(copy_of_theirs)

    await erase_mine(discord_fake)
    await discord_fake.wait_for(lambda: kept(settings) == [("copy", 0)] * 3, timeout=20)  # drawn again, kept

    for copied in (copy_of_single, copy_of_pair):
        redrawn = discord_fake.messages[copied.id]
        assert "secretword" not in shows(redrawn) and "at dawn" not in shows(redrawn), redrawn.id
        assert redrawn.embeds[0]["title"] == "🍌 Your copy"
        assert as_read(redrawn.embeds[0]["description"]) == "(its words were erased)"
    pair_now = discord_fake.messages[copy_of_pair.id]
    # The images as they were, each with its candidate's erased alt text; the card still names the jobs and links
    # the message.
    assert [a["id"] for a in pair_now.attachments] == files_before
    assert [a["description"] for a in pair_now.attachments] == [
        "(its words were erased) (#1)",
        "(its words were erased) (#2)",
    ]
    assert pair_now.embeds[0]["footer"] == footer_before
    assert str(pair.id) in fields(pair_now)["From"]
    assert [a["description"] for a in discord_fake.messages[copy_of_single.id].attachments] == [
        "(its words were erased)"
    ]
    # The other member's words are theirs: their image's copy is as it was.
    assert shows(discord_fake.messages[copy_of_theirs.id]) == theirs_before
    # Nothing sent anew: the DMs were edited.
    assert len(discord_fake.dms_to(member)) == 2 and len(discord_fake.dms_to(other)) == 1


async def test_an_end_notice_is_drawn_again_without_the_erased_words(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A job whose end Discord never let the bot show is told by DM, with its prompt: the member's erasure, in a
    later run, redraws that DM too."""
    settings = short_retry_settings(tmp_path, discord_fake, seaart)
    discord_fake.fail_next("PATCH", r"/messages/", status=403, times=4, match=final_edit)
    interaction = await told_by_dm(settings, discord_fake, seaart)
    [notice] = discord_fake.dms_to(interaction.user_id)
    assert "refused every time" in shows(notice)
    text_before = notice.content
    await discord_fake.wait_for(lambda: kept(settings) == [("end_notice", 0)], timeout=10)

    running = await start_bot(settings, discord_fake)
    try:
        await erase_mine(discord_fake)
        await discord_fake.wait_for(lambda: kept(settings) == [("end_notice", 0)], timeout=20)
        await discord_fake.wait_for(lambda: "refused every time" not in shows(discord_fake.messages[notice.id]))
    finally:
        await running.close()
    redrawn = discord_fake.messages[notice.id]
    assert "refused every time" not in shows(redrawn)
    assert as_read(redrawn.embeds[0]["description"]) == "(its words were erased)"
    assert redrawn.embeds[0]["title"] == notice.embeds[0]["title"]  # how it ended, as it said
    assert redrawn.content == text_before
    assert len(discord_fake.dms_to(interaction.user_id)) == 1


async def test_a_copy_redraw_discord_fails_stays_owed_and_is_done_at_the_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        image = await imagine(discord_fake, {"prompt": "the secretword treehouse"})
        copy = await envelope(discord_fake, image, discord_fake.member_id)
        discord_fake.fail_next("PATCH", rf"/messages/{copy.id}$", status=503)
        await erase_mine(discord_fake)
        edit = f"/messages/{copy.id}"
        await discord_fake.wait_for(
            lambda: any(r.method == "PATCH" and r.path.endswith(edit) for r in discord_fake.requests), timeout=10
        )
        await asyncio.sleep(0.3)
        assert kept(settings) == [("copy", 1)]
        assert "secretword" in shows(discord_fake.messages[copy.id])
    finally:
        await running.close()
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: kept(settings) == [("copy", 0)], timeout=10)
    finally:
        await running.close()
    assert "secretword" not in shows(discord_fake.messages[copy.id])
