"""A reply in a thread discord.py has not cached: the fake Discord announces no THREAD_CREATE for a thread
made after the bot connected (bot/testing/discord/world.py add_thread), so the bot gets the reply with a
PartialMessageable for its channel. The reply runs at the thread's parent channel's level, as /imagine in
the thread does (cogs/places.py place_of_message), or, Discord refusing to describe the thread, is refused
privately and charges nothing."""

from __future__ import annotations

from pathlib import Path

from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt, FakeSegmind
from tests.conftest import Clock, RunningBot, start_bot
from tests.e2e.edits import jobs
from tests.e2e.test_moderation import bot_for, command, fakes, finished, settings_for  # noqa: F401 (the fixtures)


async def image_in_a_late_thread(
    tmp_path: Path, discord_fake: FakeDiscord, providers: tuple[FakeSeaArt, FakeSegmind], started: list[RunningBot]
) -> tuple[int, int]:
    """Server level 4, the general channel 1, a thread in it made after the bot connected, and the bot's
    image from /imagine there. Returns the thread's id and the image's message id."""
    settings = settings_for(tmp_path, discord_fake, providers, ["seaart"])
    started.append(await start_bot(settings, discord_fake, Clock()))
    thread = discord_fake.add_thread(discord_fake.channel_id, "late")
    assert started[0].bot.get_channel(thread) is None  # not cached: its messages come with a PartialMessageable
    mod = discord_fake.moderator_id
    await command(discord_fake, "mod safety set", {"level": 4}, user_id=mod)
    await command(discord_fake, "mod safety set", {"level": 1, "channel": discord_fake.channel_id}, user_id=mod)
    interaction = await discord_fake.slash_command("imagine", {"prompt": "a cat"}, channel_id=thread)
    await finished(settings, 1, discord_fake)
    image = interaction.original_message_id
    assert image is not None
    await discord_fake.wait_for(lambda: bool(discord_fake.messages[image].attachments), timeout=10)
    return thread, image


async def test_a_reply_in_an_uncached_thread_runs_at_its_channel_s_level(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: tuple[FakeSeaArt, FakeSegmind],  # noqa: F811 (the fixture imported above)
    bot_for: list[RunningBot],  # noqa: F811 (the fixture imported above)
) -> None:
    thread, image = await image_in_a_late_thread(tmp_path, discord_fake, fakes, bot_for)
    reply = await discord_fake.post_message("make it night", reply_to=image)
    assert reply.channel_id == thread
    settings = bot_for[0].bot.settings
    await finished(settings, 2, discord_fake)
    rows = jobs(settings)
    assert [row["channel_id"] for row in rows] == [thread, thread]
    assert [row["safety_level"] for row in rows] == [1, 1]  # before: [1, 4], the server's level


async def test_a_reply_in_a_thread_discord_will_not_describe_is_refused_and_charges_nothing(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: tuple[FakeSeaArt, FakeSegmind],  # noqa: F811 (the fixture imported above)
    bot_for: list[RunningBot],  # noqa: F811 (the fixture imported above)
) -> None:
    thread, image = await image_in_a_late_thread(tmp_path, discord_fake, fakes, bot_for)
    discord_fake.fail_next(
        "GET", rf"/channels/{thread}$", status=403, body={"code": 50001, "message": "Missing Access"}
    )
    reply: FakeMessage = await discord_fake.post_message("make it night", reply_to=image)
    member = discord_fake.member_id
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=10)
    note = discord_fake.dms_to(member)[0].content or ""
    # cogs/places.py UNKNOWN_PLACE, matched by its words so the test also runs against code without it.
    assert "Discord would not tell me about the channel or thread" in note and str(reply.id) in note
    assert "not charged" in note
    assert len(jobs(bot_for[0].bot.settings)) == 1  # the image's job only: the reply made, and charged, nothing
