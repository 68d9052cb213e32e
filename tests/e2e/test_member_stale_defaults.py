"""Stored defaults that went stale: a server default model no enabled provider serves, and member
preferences the server's default model no longer takes."""

from __future__ import annotations

import sqlite3

from bot.config import Settings
from bot.testing.discord import ADMIN_PERMISSIONS, FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, answer_data, answered
from tests.e2e.edits import jobs, states
from tests.e2e.test_preferences import shown


def content(discord_fake: FakeDiscord, interaction: FakeInteraction) -> str:
    return str(answer_data(discord_fake, interaction).get("content") or "")


def stale_model(running_bot: RunningBot, settings: Settings, discord_fake: FakeDiscord, sql: str) -> None:
    """The operator stopped serving a stored model (simulated: the row names one the catalogue lacks);
    the stores' caches are told of the write, as after their own."""
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute(sql)
    services = running_bot.bot.services
    services.settings_store._defaults.wrote(discord_fake.guild_id)
    services.preferences._kept.wrote((discord_fake.guild_id, discord_fake.member_id))


async def test_a_server_default_model_no_provider_serves_falls_back_to_the_configured_one(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    admin = {"user_id": discord_fake.admin_id, "permissions": ADMIN_PERMISSIONS}
    await answered(discord_fake, "admin defaults", {"model": "nano_banana_pro"}, **admin)
    stale_model(running_bot, settings, discord_fake, "UPDATE guild_settings SET default_model='nano_banana_3'")

    asked = await answered(discord_fake, "imagine", {"prompt": "a fox"})
    assert "not available" not in content(discord_fake, asked), content(discord_fake, asked)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=30)
    assert jobs(settings)[0]["model"] == settings.imagine.default_model
    # /preferences shows what is used, as the server's default, not the stale id.
    assert (
        shown(discord_fake, await answered(discord_fake, "preferences", {}))["Model"]
        == "Nano Banana 2 (server default)"
    )


async def test_preferences_check_only_what_changes(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    admin = {"user_id": discord_fake.admin_id, "permissions": ADMIN_PERMISSIONS}
    shown(discord_fake, await answered(discord_fake, "preferences", {"aspect_ratio": "8:1", "count": 4}))
    await answered(discord_fake, "admin defaults", {"model": "nano_banana_pro"}, **admin)

    # The stored 8:1 is one Pro does not offer: changing or forgetting something else still works.
    assert shown(discord_fake, await answered(discord_fake, "preferences", {"count": 2}))["Images per prompt"] == "2"
    assert (
        shown(discord_fake, await answered(discord_fake, "preferences", {"forget": "count"}))["Images per prompt"]
        == "1"
    )
    # What is being set is still checked.
    refused = await answered(discord_fake, "preferences", {"aspect_ratio": "8:1"})
    assert content(discord_fake, refused).startswith("Not saved: Nano Banana Pro does not offer aspect ratio 8:1"), (
        content(discord_fake, refused)
    )

    # A preferred model no provider serves any more is said to be unavailable, not shown by its raw id.
    stale_model(running_bot, settings, discord_fake, "UPDATE member_preferences SET model='nano_banana_3'")
    after = shown(discord_fake, await answered(discord_fake, "preferences", {"resolution": "2K"}))
    assert after["Resolution"] == "2K"
    assert after["Model"] == "Your chosen model is not available now; Nano Banana Pro is used", after
    assert "nano_banana_3" not in str(after)
