"""/admin defaults when what a server stored is no longer in use: a provider the operator has since turned
off, a model no enabled provider serves. Through the real bot and the fake Discord, the bot restarted on
the same database with a different configuration, as an operator would."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction
from tests.conftest import Clock, answer_data, answered, start_bot
from tests.e2e.test_failover import Fakes, rows


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    f = Fakes()
    async with f.seaart, f.kie, f.segmind, f.gemini:
        yield f


def shown(discord_fake: FakeDiscord, interaction: FakeInteraction) -> dict[str, str]:
    data = answer_data(discord_fake, interaction)
    assert data["flags"] & 64, "answered privately"
    assert "embeds" in data, data.get("content")
    return {field["name"]: field["value"] for field in data["embeds"][0]["fields"]}


def stored(settings: Settings) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT default_model, default_provider, max_count FROM guild_settings").fetchall()


async def test_a_stored_provider_no_longer_enabled_blocks_no_change_and_shows_as_not_in_use(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """With "segmind" stored and then turned off, max_count:2, model:nano_banana_pro and model:nano_banana_2
    were each refused with "segmind does not serve Nano Banana 2; it will still be used as failover where it
    can" (it serves it, and is not enabled, so used for nothing); only reset:true got out, losing max_count."""
    admin = {"user_id": discord_fake.admin_id}
    both = fakes.settings(tmp_path, discord_fake, ["seaart", "segmind"])
    running = await start_bot(both, discord_fake, Clock())
    try:
        await answered(discord_fake, "admin defaults", {"provider": "segmind"}, **admin)
    finally:
        await running.close()
    assert stored(both) == [(None, "segmind", None)]

    settings = fakes.settings(tmp_path, discord_fake, ["seaart"])  # the operator turned segmind off
    running = await start_bot(settings, discord_fake, Clock())
    try:
        count = shown(discord_fake, await answered(discord_fake, "admin defaults", {"max_count": 2}, **admin))
        pro = shown(discord_fake, await answered(discord_fake, "admin defaults", {"model": "nano_banana_pro"}, **admin))
        nb2 = shown(discord_fake, await answered(discord_fake, "admin defaults", {"model": "nano_banana_2"}, **admin))
        named = await answered(discord_fake, "admin defaults", {"provider": "segmind"}, **admin)
        await answered(discord_fake, "imagine", {"prompt": "a fox"})
        await discord_fake.wait_for(lambda: [r["state"] for r in rows(settings)] == ["delivered"], timeout=30)
    finally:
        await running.close()
    not_in_use = "This server's provider `segmind` is not in use: it is not enabled on this bot."
    for answer in (count, pro, nb2):
        assert answer["Provider order"].startswith(f"seaart\n{not_in_use}"), answer
    assert count["Images per /imagine"] == "up to 2 (`count`)"
    assert pro["Model"] == "Nano Banana Pro" and nb2["Model"] == "Nano Banana 2"
    # Naming a provider that is not enabled is refused as that.
    refusal = str(answer_data(discord_fake, named)["content"])
    assert refusal.startswith("`segmind` is not enabled on this bot. Enabled: seaart."), refusal
    assert "does not serve" not in refusal
    # The choice is kept for when segmind is back; meanwhile /imagine goes to an enabled provider.
    assert stored(settings) == [("nano_banana_2", "segmind", 2)]
    assert [(r["provider"], r["model"]) for r in rows(settings)] == [("seaart", "nano_banana_2")]


async def test_a_stored_model_no_provider_serves_shows_the_model_in_use(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """A stored model no enabled provider serves showed as the server's model, "Model: nano_banana_3 ·
    Provider order: none enabled", though /imagine uses the bot's default model (bot/preferences.py
    model_for)."""
    admin = {"user_id": discord_fake.admin_id}
    settings = fakes.settings(tmp_path, discord_fake, ["seaart"])
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await answered(discord_fake, "admin defaults", {"model": "nano_banana_pro"}, **admin)
        # A model the catalogue no longer has (every provider serves both of today's), as
        # tests/e2e/test_member_stale_defaults.py simulates it, with the store's cache told of the write.
        with sqlite3.connect(settings.database.path) as conn:
            conn.execute("UPDATE guild_settings SET default_model = 'nano_banana_3'")
        running.bot.services.settings_store._defaults.wrote(discord_fake.guild_id)
        show = shown(discord_fake, await answered(discord_fake, "admin defaults", {}, **admin))
        count = shown(discord_fake, await answered(discord_fake, "admin defaults", {"max_count": 3}, **admin))
        await answered(discord_fake, "imagine", {"prompt": "a fox"})
        await discord_fake.wait_for(lambda: [r["state"] for r in rows(settings)] == ["delivered"], timeout=30)
    finally:
        await running.close()
    for answer in (show, count):
        assert answer["Model"] == (
            "Nano Banana 2 (bot default)\nThis server's `nano_banana_3` is not in use: no enabled provider "
            "serves it. Set `model` to choose another."
        ), answer
        assert answer["Provider order"] == "seaart"
    assert count["Images per /imagine"] == "up to 3 (`count`)"
    assert rows(settings)[0]["model"] == settings.imagine.default_model == "nano_banana_2"


async def test_a_stored_provider_no_longer_enabled_leaves_the_configured_default_first(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """The stored provider, turned off, was still passed on as the one to try first; not being served, it was
    dropped, and with it the configured `[imagine] default_provider`: /imagine went by the bare route order."""
    both = fakes.settings(tmp_path, discord_fake, ["seaart", "kie", "segmind"])
    running = await start_bot(both, discord_fake, Clock())
    try:
        await answered(discord_fake, "admin defaults", {"provider": "segmind"}, user_id=discord_fake.admin_id)
    finally:
        await running.close()
    # segmind turned off; kie is the configured default; the route puts seaart first.
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"], imagine={"default_provider": "kie"})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await answered(discord_fake, "imagine", {"prompt": "a fox"})
        await discord_fake.wait_for(lambda: [r["state"] for r in rows(settings)] == ["delivered"], timeout=30)
    finally:
        await running.close()
    assert [r["provider"] for r in rows(settings)] == ["kie"]
