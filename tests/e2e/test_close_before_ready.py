"""A bot stopped while discord.py waits to announce "ready" (guild_ready_timeout after a READY) stops cleanly:
the announcement came after close() had let go of the loop, an AttributeError in a task nobody awaited."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from pathlib import Path
from typing import Any

from bot.app import Bananacord, point_discord_at
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import BOT_TOKEN, Clock, make_settings


async def test_a_bot_closed_before_it_announces_ready_leaves_no_failed_task(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)
    loop = asyncio.get_running_loop()
    failures: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: failures.append(context))
    try:
        bot = Bananacord(settings, clock=Clock(), guild_ready_timeout=0.5)
        await bot.login(BOT_TOKEN)
        task = asyncio.create_task(bot.connect())
        await discord_fake.wait_until_ready(timeout=15)
        await bot.close()  # inside the 0.5 s wait
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)
        await asyncio.sleep(1.0)  # past the wait: an announcement would have been made by now
        gc.collect()  # a failed task nobody awaited is reported when it is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not bot.is_ready()
    assert failures == [], [str(f.get("exception") or f.get("message")) for f in failures]
