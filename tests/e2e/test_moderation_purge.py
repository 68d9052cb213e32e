"""/mod purge through the real bot and the fake Discord: a member's images of the last hours deleted at once (those
still being made cancelled, uncharged), nobody else's and nothing older; a message the bot cannot delete said."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from cogs import purge
from tests.conftest import Clock, RunningBot, answered
from tests.e2e.edits import bot_image
from tests.e2e.test_moderation import command, query


async def test_a_purge_deletes_the_member_s_recent_images_and_cancels_those_being_made(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings, seaart: FakeSeaArt, clock: Clock
) -> None:
    """An old image of theirs, then a batch of two and a single one, another member's image, and one of theirs still
    being made: the purge of the last 2 hours deletes their three recent messages (four images), cancels the one being
    made uncharged, and leaves the old one and the other member's; the delivered ones stay charged."""
    member, other, mod = discord_fake.member_id, discord_fake.other_member_id, discord_fake.moderator_id
    old = await bot_image(discord_fake, settings)
    clock.offset += 3 * 3600  # three hours later
    batch = await bot_image(discord_fake, settings, count=2)
    single = await bot_image(discord_fake, settings)
    others = await discord_fake.slash_command("imagine", {"prompt": "a dog"}, user_id=other)
    await discord_fake.wait_for(
        lambda: query(settings, "SELECT COUNT(*) FROM jobs WHERE state = 'delivered'") == [(5,)]
    )
    seaart.hold(True)
    running = await discord_fake.slash_command("imagine", {"prompt": "a fox"})
    await discord_fake.wait_for(lambda: len(seaart.creates) == 6, timeout=10)

    said = await command(discord_fake, "mod purge", {"member": member, "hours": 2}, user_id=mod)
    assert said["flags"] & 64 and said["allowed_mentions"] == {"parse": []}
    assert said["content"] == (
        f"Deleted 3 messages of <@{member}>'s images from the last 2 hours (4 images). 1 request still being made "
        "was cancelled (not charged)."
    )
    running_message = discord_fake.messages[running.original_message_id or 0]
    assert batch.deleted and single.deleted and running_message.deleted
    assert not old.deleted and not discord_fake.messages[others.original_message_id or 0].deleted
    await discord_fake.wait_for(
        lambda: query(settings, "SELECT charge_state FROM jobs WHERE state = 'cancelled'") == [("refunded",)]
    )
    seaart.hold(False)
    rows = query(settings, "SELECT user_id, state, charge_state, deleted_by FROM jobs ORDER BY created_at")
    assert rows == [
        (member, "delivered", "committed", None),  # the old one
        (member, "delivered", "committed", mod),
        (member, "delivered", "committed", mod),
        (member, "delivered", "committed", mod),
        (other, "delivered", "committed", None),
        (member, "cancelled", "refunded", mod),  # its message gone: cancelled as a deleted message's is
    ]
    assert query(settings, "SELECT action, actor_id, target_id, summary FROM audit_log") == [
        ("purge", mod, member, f"<@{mod}> purged: d{said['content'][1:]}")
    ]
    again = await command(discord_fake, "mod purge", {"member": member, "hours": 2}, user_id=mod)
    assert again["content"] == f"<@{member}> has no image of mine shown in this server from the last 2 hours."
    assert len(query(settings, "SELECT id FROM audit_log")) == 1, "nothing done, nothing logged"


async def test_a_message_the_bot_cannot_delete_is_said_and_its_request_still_cancelled(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings, seaart: FakeSeaArt
) -> None:
    """Discord refuses the deletion of one message (the bot lost its channel): the answer says so, and the request
    being made there is cancelled all the same, its message saying so; the member who is no moderator may not
    purge."""
    member, mod = discord_fake.member_id, discord_fake.moderator_id
    refused = await discord_fake.slash_command("mod purge", {"member": member})
    await discord_fake.wait_for(lambda: bool(refused.callbacks))
    assert query(settings, "SELECT COUNT(*) FROM audit_log") == [(0,)]
    seaart.hold(True)
    running = await discord_fake.slash_command("imagine", {"prompt": "a fox"})
    await discord_fake.wait_for(lambda: len(seaart.creates) == 1, timeout=10)
    message = discord_fake.messages[running.original_message_id or 0]
    lacks = {"code": 50013, "message": "Missing Permissions"}
    discord_fake.fail_next("DELETE", rf"/messages/{message.id}$", status=403, body=lacks)
    said = await command(discord_fake, "mod purge", {"member": member}, user_id=mod)
    assert said["content"] == (
        f"Deleted 0 messages of <@{member}>'s images from the last 24 hours. 1 request still being made was cancelled "
        "(not charged). 1 message could not be deleted: the bot can no longer reach its channel (`/admin check` says "
        "where)."
    )
    await discord_fake.wait_for(lambda: bool(message.embeds) and message.embeds[0]["title"] == "🍌 Cancelled", 10)
    seaart.hold(False)
    assert query(settings, "SELECT state, charge_state, cancelled_by FROM jobs") == [("cancelled", "refunded", mod)]
    await answered(discord_fake, "help", {})
    await asyncio.sleep(0.3)
    assert not message.deleted


async def test_a_long_purge_shows_how_far_it_has_got_and_says_when_more_are_left(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A purge shows its progress in its answer as it goes (here at every message: Discord takes a few deletions a
    second, and a big purge takes minutes), and one that reached the most a run reads says to run it again."""
    monkeypatch.setattr(purge, "PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(purge, "MOST", 2)
    member, mod = discord_fake.member_id, discord_fake.moderator_id
    images = [await bot_image(discord_fake, settings) for _ in range(3)]
    asked = await discord_fake.slash_command("mod purge", {"member": member}, user_id=mod)
    await discord_fake.wait_for(lambda: bool(asked.followup_ids))
    note = discord_fake.messages[asked.followup_ids[0]]
    await discord_fake.wait_for(lambda: (note.content or "").startswith("Deleted"))
    assert note.content == (
        f"Deleted 2 messages of <@{member}>'s images from the last 24 hours. These were the latest 2 requests: run it "
        "again for older ones."
    )
    shown = [
        r.json["content"]
        for r in discord_fake.requests
        if r.json and "content" in r.json and "Deleting" in str(r.json["content"])
    ]
    assert shown[0] == f"Deleting <@{member}>'s images: 0 of 2 messages so far…"
    assert [m.deleted for m in images] == [False, True, True], "the latest first"


async def test_a_ban_can_delete_the_member_s_recent_images_too(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings, seaart: FakeSeaArt
) -> None:
    """As Discord's ban deletes a member's messages: `/mod ban delete_images:24` bans them and purges their images of
    the last day, the one being made cancelled; both are in the audit log."""
    member, mod = discord_fake.member_id, discord_fake.moderator_id
    image = await bot_image(discord_fake, settings)
    seaart.hold(True)
    running = await discord_fake.slash_command("imagine", {"prompt": "a fox"})
    await discord_fake.wait_for(lambda: len(seaart.creates) == 2, timeout=10)
    said = await command(discord_fake, "mod ban", {"member": member, "delete_images": 24}, user_id=mod)
    assert said["content"] == (
        f"<@{member}> can no longer use the bot. Deleted 2 messages of <@{member}>'s images from the last 24 hours. "
        "1 request still being made was cancelled (not charged)."
    )
    assert image.deleted and discord_fake.messages[running.original_message_id or 0].deleted
    await discord_fake.wait_for(
        lambda: (
            query(settings, "SELECT state, charge_state FROM jobs ORDER BY created_at")
            == [("delivered", "committed"), ("cancelled", "refunded")]
        )
    )
    seaart.hold(False)
    assert [a for (a,) in query(settings, "SELECT action FROM audit_log ORDER BY id")] == ["purge", "ban"]
    assert query(settings, "SELECT user_id FROM bans") == [(member,)]


async def test_a_purge_deletes_the_copies_members_had_by_dm_too(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Another member had a copy of the image by DM (✉️): the purge deletes it with the image; the bot's own DMs are
    its to delete, and the image is gone from the server."""
    member, other, mod = discord_fake.member_id, discord_fake.other_member_id, discord_fake.moderator_id
    image = await bot_image(discord_fake, settings)
    assert await discord_fake.react(image.id, "✉️", user_id=other)
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(other)), timeout=10)
    (copy,) = discord_fake.dms_to(other)
    said = await command(discord_fake, "mod purge", {"member": member}, user_id=mod)
    assert said["content"] == (
        f"Deleted 1 message of <@{member}>'s images from the last 24 hours. With them, 1 copy the bot had sent by DM."
    )
    assert image.deleted and copy.deleted
    assert query(settings, "SELECT COUNT(*) FROM dm_copies") == [(0,)]
