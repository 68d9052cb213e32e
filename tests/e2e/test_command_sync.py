"""The slash commands go to Discord at a start only when they differ from what was last sent (bot/command_sync.py).

The bot replaced its whole command list at every start. Discord limits that request tightly, so a bot restarted
in a loop met 429s. A restart with the same commands now sends nothing, and its commands still answer, since
Discord keeps them. A changed list is sent, per scope (global, or each configured guild), and so is one Discord no
longer holds (deleted in the Developer Portal). A failed send is not recorded, a failed record or read does not
stop the start, and `sync_commands = "always"` sends the list at every start.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.app import Bananacord, point_discord_at
from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import BOT_TOKEN, Clock, final_message, make_settings, start_bot


def sends(discord_fake: FakeDiscord) -> list[tuple[str, int]]:
    """The command lists Discord took: (the route's scope, its status)."""
    return [
        ("global" if "/guilds/" not in r.path else r.path.split("/guilds/")[1].split("/")[0], r.status or 0)
        for r in discord_fake.requests
        if r.method == "PUT" and r.path.endswith("/commands")
    ]


def synced(settings: Settings) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT application_id, scope, digest FROM command_syncs ORDER BY scope").fetchall()


async def restart(settings: Settings, discord_fake: FakeDiscord, clock: Clock, *, imagine: str | None = None) -> None:
    """Start the bot and close it; ``imagine``: first send that prompt and wait until its image is delivered."""
    running = await start_bot(settings, discord_fake, clock)
    try:
        if imagine is not None:
            command = await discord_fake.slash_command("imagine", {"prompt": imagine})
            await discord_fake.wait_for(
                lambda: "Done" in str(getattr(final_message(discord_fake, command.id), "embeds", "")), 20
            )
    finally:
        await running.close()


async def test_a_restart_with_the_same_commands_sends_nothing_and_they_still_answer(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    await restart(settings, discord_fake, clock)
    ((app, scope, digest),) = synced(settings)
    assert (app, scope, len(digest)) == (discord_fake.application_id, 0, 64)
    await restart(settings, discord_fake, clock, imagine="a banana that was synced once")
    assert sends(discord_fake) == [("global", 200)]
    assert synced(settings) == [(app, 0, digest)]


async def test_changed_commands_are_sent_again(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    """An earlier version's list (another digest on record) is replaced at the next start."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    await restart(settings, discord_fake, clock)
    ((app, _, digest),) = synced(settings)
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("UPDATE command_syncs SET digest = ?", ("0" * 64,))
    await restart(settings, discord_fake, clock)
    assert sends(discord_fake) == [("global", 200), ("global", 200)]
    assert synced(settings) == [(app, 0, digest)]


async def test_always_sends_the_commands_at_every_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, discord={"sync_commands": "always"})
    for _ in range(2):
        await restart(settings, discord_fake, clock)
    assert sends(discord_fake) == [("global", 200), ("global", 200)]


async def test_each_scope_keeps_its_own_record(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    """Commands registered in the configured guild, then the guild left out of the config: the global list has
    never been sent, so it is; back in the guild, whose list is unchanged, nothing is sent."""
    guild = make_settings(tmp_path, discord_fake, seaart, discord={"guild_ids": [discord_fake.guild_id]})
    everywhere = make_settings(tmp_path, discord_fake, seaart)
    for settings in (guild, guild, everywhere, guild):
        await restart(settings, discord_fake, clock)
    assert sends(discord_fake) == [(str(discord_fake.guild_id), 200), ("global", 200)]
    assert [(scope, digest == synced(guild)[0][2]) for _, scope, digest in synced(guild)] == [
        (0, True),  # the same commands either way
        (discord_fake.guild_id, True),
    ]


async def test_a_list_discord_refused_is_not_recorded_and_goes_at_the_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    discord_fake.fail_next("PUT", r"/commands$", status=400, body={"code": 50035, "message": "Invalid Form Body"})
    point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)
    bot = Bananacord(settings, guild_ready_timeout=0.1)
    try:
        with pytest.raises(discord.HTTPException):
            await bot.login(BOT_TOKEN)
    finally:
        await bot.close()
    assert synced(settings) == []
    await restart(settings, discord_fake, clock)
    assert sends(discord_fake) == [("global", 400), ("global", 200)]
    assert len(synced(settings)) == 1


async def test_a_list_sent_but_not_recorded_does_not_stop_the_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The database refuses the record (here a trigger; a disk error would do the same): the commands went,
    the bot starts and answers, a warning says the next start sends them again, and it does."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    await restart(settings, discord_fake, clock)
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("UPDATE command_syncs SET digest = ?", ("0" * 64,))
        conn.execute("CREATE TRIGGER refuse BEFORE UPDATE ON command_syncs BEGIN SELECT RAISE(ABORT, 'refused'); END")
    await restart(settings, discord_fake, clock, imagine="a banana sent but not noted")
    assert "sent to Discord, but not recorded" in caplog.text
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("DROP TRIGGER refuse")
    await restart(settings, discord_fake, clock)
    assert sends(discord_fake) == [("global", 200)] * 3


async def test_commands_deleted_at_discord_come_back_at_the_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleted outside the bot (the Developer Portal, another program with the token): the record says they
    were sent, but the names Discord holds differ, so the list goes again and /imagine answers."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    await restart(settings, discord_fake, clock)
    discord_fake.commands.clear()
    await restart(settings, discord_fake, clock, imagine="a banana whose command was deleted")
    assert sends(discord_fake) == [("global", 200), ("global", 200)]
    assert "the slash commands Discord holds (global) are not those last sent" in caplog.text


async def test_a_list_discord_will_not_show_is_taken_as_recorded(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Discord refusing to show its list is no reason to send it (nor to fail the start): the record stands."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    await restart(settings, discord_fake, clock)
    discord_fake.fail_next("GET", r"/commands$", status=403, body={"code": 50001, "message": "Missing Access"})
    await restart(settings, discord_fake, clock, imagine="a banana Discord would not list")
    assert sends(discord_fake) == [("global", 200)]
    assert "could not read the slash commands Discord holds" in caplog.text
