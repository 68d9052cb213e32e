"""A server that adds the bot gets one welcome saying how to start (cogs/welcome.py).

The real bot against the fake Discord, whose owner removes the bot and adds it back (GUILD_DELETE, then
GUILD_CREATE: discord.py's ``on_guild_join``), or does so while the bot is stopped (the next READY lists the
server: ``on_guild_available``). The welcome is read as the server reads it; its claim from the database file.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeMessage, overwrite
from bot.testing.discord.protocol import EMBED_LINKS, SEND_MESSAGES, VIEW_CHANNEL
from bot.testing.providers import FakeSeaArt
from tests.conftest import answered, make_settings, start_bot

TITLE = "🍌 Bananacord is here"


def _welcomes(discord_fake: FakeDiscord) -> list[FakeMessage]:
    return [
        m
        for cid in discord_fake.channels
        for m in discord_fake.messages_in(cid)
        if m.author_id is None and any(e.get("title") == TITLE for e in m.embeds)
    ]


def _claims(settings: Settings) -> list[tuple[int, Any]]:
    with sqlite3.connect(settings.database.path) as conn:
        return [(int(g), c) for g, c in conn.execute("SELECT guild_id, channel_id FROM guild_welcomes")]


def _logged(caplog: pytest.LogCaptureFixture, words: str) -> int:
    return sum(words in r.getMessage() for r in caplog.records)


async def test_a_server_that_adds_the_bot_is_welcomed_once_in_its_system_channel(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    """The server the bot was in before its first start is not greeted (an upgrade, or a database made after the
    bot was added, must not greet every server); added back live it is, once; removed and added again, and
    restarted, not again. The welcome pings nobody."""
    caplog.set_level(logging.DEBUG, logger="cogs.welcome")
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake)
    try:
        await discord_fake.wait_for(lambda: _logged(caplog, "before welcomes began") == 1)
        assert not _welcomes(discord_fake) and not _claims(settings)
        await discord_fake.remove_bot()
        await discord_fake.add_bot()
        await discord_fake.wait_for(lambda: _claims(settings) == [(discord_fake.guild_id, discord_fake.channel_id)])
        await discord_fake.remove_bot()
        await discord_fake.add_bot()
        await discord_fake.wait_for(lambda: _logged(caplog, "welcomed already") == 1)
    finally:
        await running.close()
    running = await start_bot(settings, discord_fake)
    try:
        await discord_fake.wait_for(lambda: _logged(caplog, "welcomed already") == 2)
    finally:
        await running.close()
    (welcome,) = _welcomes(discord_fake)
    assert welcome.channel_id == discord_fake.channel_id, "the system channel"
    assert welcome.allowed_mentions == {"parse": []}
    (embed,) = welcome.embeds
    assert "`/imagine` a prompt" in embed["description"] and "`/help`" in embed["description"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "`/mod safety set`" in fields["Moderators"] and "`/mod logchannel`" in fields["Moderators"]
    assert "`/admin check`" in fields["Admins"] and "⚠️" not in fields["Admins"], "every channel takes the bot"


async def test_a_server_added_while_the_bot_was_stopped_is_welcomed_where_the_bot_may_post(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Added while the bot is down (no event reaches it; the next READY lists the server), in a server whose system
    channel refuses the bot's posts: the welcome goes to the first channel that takes them, and says that some
    channels refuse the bot a permission it uses."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake)
    await running.close()
    bot_role = discord_fake.bot_role_id
    welcome_channel = discord_fake.add_text_channel("welcome", overwrites=[overwrite(bot_role, deny=SEND_MESSAGES)])
    discord_fake.system_channel_id = welcome_channel
    await discord_fake.set_overwrites(discord_fake.channel_id, [overwrite(bot_role, deny=EMBED_LINKS)])
    await discord_fake.remove_bot(seen=False)
    await discord_fake.add_bot(seen=False)
    running = await start_bot(settings, discord_fake)
    try:
        await discord_fake.wait_for(lambda: bool(_welcomes(discord_fake)))
    finally:
        await running.close()
    (welcome,) = _welcomes(discord_fake)
    assert welcome.channel_id == discord_fake.nsfw_channel_id, "not the system channel, nor #general (no embeds)"
    admins = next(f["value"] for f in welcome.embeds[0]["fields"] if f["name"] == "Admins")
    assert "⚠️ 2 channel(s) refuse the bot a permission it uses" in admins
    assert _claims(settings) == [(discord_fake.guild_id, discord_fake.nsfw_channel_id)]


async def test_no_welcome_where_no_channel_takes_it_nor_when_the_operator_turned_them_off(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    """A server where the bot may post nowhere is claimed (not tried at every start) with no channel, and says so
    in the log; with ``welcome_new_servers = false`` nothing is claimed or posted."""
    caplog.set_level(logging.INFO, logger="cogs.welcome")
    off = make_settings(tmp_path / "off", discord_fake, seaart, admin={"welcome_new_servers": False})
    running = await start_bot(off, discord_fake)
    try:
        await discord_fake.remove_bot()
        await discord_fake.add_bot()
        await answered(discord_fake, "help", {})  # the server is back: commands work there again
    finally:
        await running.close()
    assert not _claims(off) and not _welcomes(discord_fake)

    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake)
    await running.close()
    for channel_id in (discord_fake.channel_id, discord_fake.nsfw_channel_id):
        await discord_fake.set_overwrites(channel_id, [overwrite(discord_fake.bot_role_id, deny=VIEW_CHANNEL)])
    await discord_fake.remove_bot(seen=False)
    await discord_fake.add_bot(seen=False)
    running = await start_bot(settings, discord_fake)
    try:
        await discord_fake.wait_for(lambda: _logged(caplog, "no channel takes the bot's posts") == 1)
    finally:
        await running.close()
    assert _claims(settings) == [(discord_fake.guild_id, None)] and not _welcomes(discord_fake)
