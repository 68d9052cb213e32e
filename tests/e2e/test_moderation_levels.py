"""/mod safety set through the real bot and the fake Discord: what a moderator reads is the level in force,
a level can be cleared back to the default, and every kind of place a level is read for can be given one."""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from tests.conftest import RunningBot
from tests.e2e.test_moderation import command, finished, query


def levels_of_jobs(settings: Settings) -> list[int]:
    return [row[0] for row in query(settings, "SELECT safety_level FROM jobs ORDER BY created_at")]


async def test_a_server_level_above_the_ceiling_is_said_to_run_at_the_ceiling(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Before: "The server's safety level is now 6." while every normal channel ran at 4."""
    mod = discord_fake.moderator_id
    said = (await command(discord_fake, "mod safety set", {"level": 6}, user_id=mod))["content"]
    assert said.startswith("The server's safety level is now 6.")
    assert "run at 4 (normal) and 6 (age-restricted)" in said
    assert "ceiling (4) caps the server's level (6)" in said and "`/mod safety set level:6 ceiling:True`" in said
    shown = await command(discord_fake, "mod settings", {}, user_id=mod)
    fields = {f["name"]: f["value"] for f in shown["embeds"][0]["fields"]}
    assert fields["Server level"] == "6 (normal channels run at 4, their ceiling)"
    await command(discord_fake, "imagine", {"prompt": "a harbour"})
    await finished(settings, 1, discord_fake)
    assert levels_of_jobs(settings) == [4]


async def test_levels_and_ceilings_can_be_cleared_back_to_the_default(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Nothing called set_channel_level(..., None): a level once set could only be changed, never cleared."""
    mod = discord_fake.moderator_id
    channel = discord_fake.channel_id
    await command(discord_fake, "mod safety set", {"level": 2}, user_id=mod)
    await command(discord_fake, "mod safety set", {"level": 1, "channel": channel}, user_id=mod)
    await command(discord_fake, "mod safety set", {"level": 2, "ceiling": True}, user_id=mod)
    await command(discord_fake, "imagine", {"prompt": "strict"})
    await finished(settings, 1, discord_fake)

    cleared = await command(discord_fake, "mod safety set", {"clear": True, "channel": channel}, user_id=mod)
    assert cleared["flags"] & 64
    assert cleared["content"].startswith(f"<#{channel}> has no level of its own now: it follows the server's level, 2")
    assert query(settings, "SELECT COUNT(*) FROM channel_safety") == [(0,)]
    await command(discord_fake, "imagine", {"prompt": "the server's level"})
    await finished(settings, 2, discord_fake)

    server = await command(discord_fake, "mod safety set", {"clear": True}, user_id=mod)
    assert server["content"].startswith("The server's safety level is back to the default, 3.")
    ceiling = await command(discord_fake, "mod safety set", {"clear": True, "ceiling": True}, user_id=mod)
    assert ceiling["content"].startswith("The normal channels' ceiling is back to the default, 4.")
    assert query(settings, "SELECT safety_level, normal_ceiling FROM mod_settings") == [(None, None)]
    await command(discord_fake, "imagine", {"prompt": "the default"})
    await finished(settings, 3, discord_fake)
    assert levels_of_jobs(settings) == [1, 2, 3]
    actions = query(settings, "SELECT action FROM audit_log ORDER BY id")
    assert actions == [("setting",)] * 6

    # A level or clear:True, not both, not neither.
    for options in ({}, {"level": 3, "clear": True}):
        refused = await command(discord_fake, "mod safety set", options, user_id=mod)
        assert refused["flags"] & 64 and "`clear:True`" in refused["content"]
    assert len(query(settings, "SELECT action FROM audit_log")) == 6


async def test_every_place_a_level_is_read_for_can_be_given_one(
    running_bot: RunningBot, discord_fake: FakeDiscord
) -> None:
    """cogs/places.py reads a level for the channel a job is made in (a text or announcement channel, a voice
    or stage channel's chat, a thread) and, in a thread, for its parent (a forum's or media channel's posts are
    threads): the option offered text and announcement channels only. A category is never read: not offered."""
    (mod,) = [c for c in discord_fake.commands if c["name"] == "mod"]
    safety = next(o for o in mod["options"] if o["name"] == "safety")
    set_ = next(o for o in safety["options"] if o["name"] == "set")
    options: dict[str, Any] = {o["name"]: o for o in set_["options"]}
    text, voice, category, news, stage, forum, media = 0, 2, 4, 5, 13, 15, 16
    news_thread, public_thread, private_thread = 10, 11, 12
    offered = set(options["channel"]["channel_types"])
    assert offered == {text, news, voice, stage, forum, media, news_thread, public_thread, private_thread}
    assert category not in offered
    assert not options["level"].get("required") and options["clear"]["type"] == 5
