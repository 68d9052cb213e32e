"""/help names the model an /imagine without ``model`` uses when the server's stored default is one no
enabled provider serves: /imagine passes over such a default (bot/preferences.py model_for), and /help
named none at all."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.testing.discord import ADMIN_PERMISSIONS, FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, answered, make_settings, start_bot
from tests.e2e.test_failover import Fakes, boot, fakes  # noqa: F401 (the fixture)
from tests.e2e.test_help import help_fields
from tests.e2e.test_imagine_pref_fixes import level_6_with_a_saved_pro


async def test_help_names_the_model_used_when_the_server_default_is_no_longer_served(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    admin = {"user_id": discord_fake.admin_id, "permissions": ADMIN_PERMISSIONS}
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await answered(discord_fake, "admin defaults", {"model": "nano_banana_pro"}, **admin)
    finally:
        await running.close()
    # A model the catalogue no longer has (every provider serves both of today's), as
    # tests/e2e/test_member_stale_defaults.py simulates it; written while the bot is stopped, so the
    # restarted bot reads it from the database rather than from a cache.
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("UPDATE guild_settings SET default_model = 'nano_banana_3'")
    conn.close()
    running = await start_bot(settings, discord_fake, Clock())
    try:
        fields = await help_fields(discord_fake)
    finally:
        await running.close()
    assert settings.imagine.default_model == "nano_banana_2"
    # The configured model, which /imagine uses (tests/e2e/test_member_stale_defaults.py), is the one named.
    assert fields["Models here"].splitlines() == ["Nano Banana 2 (the server's default)", "Nano Banana Pro"]


async def test_help_names_the_model_used_in_a_channel_whose_level_rules_out_the_saved_one(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    """SeaArt and Segmind: at level 6 only Segmind's Nano Banana 2 runs. /imagine passes a saved Pro over there
    (bot/preferences.py model_at); /help named Pro "your default" in that channel all the same."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "segmind"])
    running = await boot(settings, discord_fake)
    adult = discord_fake.nsfw_channel_id
    try:
        await level_6_with_a_saved_pro(discord_fake)
        there = await help_fields(discord_fake, channel_id=adult)
        elsewhere = await help_fields(discord_fake)
    finally:
        await running.close()
    assert there["Models here"].splitlines() == [
        "Nano Banana 2 (used in this channel: Nano Banana Pro cannot run at its safety level)",
        "Nano Banana Pro (your default, ruled out by this channel's level)",
    ], there
    assert elsewhere["Models here"].splitlines() == ["Nano Banana 2", "Nano Banana Pro (your default)"], elsewhere
