"""A ⭐ reaction stars one of the bot's images for the member who reacted (cogs/star_reaction.py), as Midjourney's did
for its gallery: `/jobs starred:True` lists them, theirs or another member's, with links back; taking the ⭐ back
unstars it, as does deleting the message; a batch's message stars each image it shows; any other reaction or message
stars nothing."""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, answer_data, answered
from tests.e2e.edits import jobs, states
from tests.e2e.test_batches import batch_message
from tests.e2e.test_rework import imagine


def stars(settings: Settings) -> list[tuple[int, str]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT user_id, job_id FROM starred ORDER BY starred_at, job_id").fetchall()


async def starred_list(discord_fake: FakeDiscord, **kw: Any) -> str:
    """The member's `/jobs starred:True`, as they read it."""
    interaction = await answered(discord_fake, "jobs", {"starred": True}, **kw)
    data = answer_data(discord_fake, interaction)
    assert data["flags"] & 64  # private
    return str(data["embeds"][0]["description"])


async def test_a_star_lists_the_image_for_whoever_starred_it_until_they_take_it_back(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    assert "Nothing starred yet" in await starred_list(discord_fake)
    mine = await imagine(discord_fake, {"prompt": "a paper lantern"})
    theirs = await imagine(discord_fake, {"prompt": "a brass telescope"}, user_id=discord_fake.other_member_id)
    first, second = (row["id"] for row in jobs(settings))

    # A star on another member's image, and on one's own: both listed, the latest starred first, linked.
    assert await discord_fake.react(theirs.id, "⭐")
    await discord_fake.wait_for(lambda: stars(settings) == [(discord_fake.member_id, second)], timeout=10)
    assert await discord_fake.react(mine.id, "⭐")
    await discord_fake.wait_for(lambda: len(stars(settings)) == 2, timeout=10)
    listed = await starred_list(discord_fake)
    assert listed.index("a paper lantern") < listed.index("a brass telescope")
    link = f"https://discord.com/channels/{discord_fake.guild_id}/{theirs.channel_id}/{theirs.id}"
    assert f"[message]({link})" in listed
    # Another member's list is theirs: nothing starred there.
    assert "Nothing starred yet" in await starred_list(discord_fake, user_id=discord_fake.other_member_id)

    # Other reactions, and a member's own message, star nothing.
    assert await discord_fake.react(mine.id, "👍")
    note = await discord_fake.post_message("look at this", user_id=discord_fake.admin_id)
    assert await discord_fake.react(note.id, "⭐")
    # Taken back: unstarred.
    assert await discord_fake.unreact(theirs.id, "⭐")
    await discord_fake.wait_for(lambda: stars(settings) == [(discord_fake.member_id, first)], timeout=10)
    listed = await starred_list(discord_fake)
    assert "a paper lantern" in listed and "a brass telescope" not in listed

    # Deleted since (its requester's ❌): nothing to go back to, left out, its star forgotten.
    assert await discord_fake.react(mine.id, "❌")
    await discord_fake.wait_for(lambda: jobs(settings)[0]["deleted_by"] is not None, timeout=10)
    assert "Nothing starred yet" in await starred_list(discord_fake)
    await discord_fake.wait_for(lambda: stars(settings) == [], timeout=10)

    # Deleted by a moderator in their client (the bot records no deletion of a finished image): the star goes too.
    assert await discord_fake.react(theirs.id, "⭐")
    await discord_fake.wait_for(lambda: stars(settings) == [(discord_fake.member_id, second)], timeout=10)
    await discord_fake.delete_messages(theirs.id)
    await discord_fake.wait_for(lambda: stars(settings) == [], timeout=10)
    assert "Nothing starred yet" in await starred_list(discord_fake)


async def test_a_star_on_a_batch_s_message_stars_each_image_it_shows(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message = await batch_message(discord_fake, {"prompt": "two lanterns", "count": 2})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=20)
    assert await discord_fake.react(message.id, "⭐")
    await discord_fake.wait_for(lambda: len(stars(settings)) == 2, timeout=10)
    listed = await starred_list(discord_fake)
    assert listed.count("two lanterns") == 2
    refused = await answered(discord_fake, "jobs", {"starred": True, "search": "lantern"})
    assert "one at a time" in str(answer_data(discord_fake, refused)["content"])


async def test_a_star_on_a_batch_still_being_made_stars_every_image_once_they_show(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A ⭐ given before the images came starred nothing (there was nothing shown to star), and stayed on the message
    meaning nothing: the images missed `/jobs starred:` and the gallery's count. It now stars every image of the
    message once they have all ended, for whoever's ⭐ is still there."""
    member, other = discord_fake.member_id, discord_fake.other_member_id
    seaart.hold(True)
    message = await batch_message(discord_fake, {"prompt": "three lanterns", "count": 3})
    await discord_fake.wait_for(lambda: states(settings) == ["running"] * 3, timeout=10)
    assert await discord_fake.react(message.id, "⭐")
    assert await discord_fake.react(message.id, "⭐", user_id=other)
    assert await discord_fake.unreact(message.id, "⭐", user_id=other)  # taken back before the images came
    later = await answered(discord_fake, "help", {})  # the bot has handled the reactions by now
    assert later.callbacks and stars(settings) == []
    seaart.release()
    seaart.hold(False)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)
    ids = sorted(row["id"] for row in jobs(settings))
    await discord_fake.wait_for(lambda: sorted(stars(settings)) == [(member, i) for i in ids], timeout=10)
    assert (await starred_list(discord_fake)).count("three lanterns") == 3
    assert "Nothing starred yet" in await starred_list(discord_fake, user_id=other)
