"""A private word when a member's quota is nearly spent (bot/quotas.py ``running_low_note``), after /imagine and after
a button's new job, through the fake Discord: none while there is room; with the last unit and with none left, how
many and when the window resets, so a member learns it before a request is refused rather than after."""

from __future__ import annotations

from pathlib import Path

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, make_settings, start_bot
from tests.e2e.edits import followups, states
from tests.e2e.test_rework import delivered, press


async def test_the_last_units_are_told_with_each_request_that_spends_them(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 3, "in_flight_per_user": None})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        first = await discord_fake.slash_command("imagine", {"prompt": "a fox"})
        await delivered(discord_fake, first)
        assert followups(discord_fake, first) == []  # 2 of 3 left: nothing said

        second = await discord_fake.slash_command("imagine", {"prompt": "a wolf"})
        shown = await delivered(discord_fake, second)
        await discord_fake.wait_for(lambda: bool(second.followup_ids), timeout=10)
        ((note, flags),) = followups(discord_fake, second)
        assert flags & 64 and note.startswith("You have 1 unit left today (of 3); that resets <t:"), note
        assert note.endswith(":R>. `/quota show` has the rest.")

        rolled = await press(discord_fake, shown, "Re-roll")
        await delivered(discord_fake, rolled)
        await discord_fake.wait_for(lambda: bool(rolled.followup_ids), timeout=10)
        ((note, _),) = followups(discord_fake, rolled)
        assert note.startswith("You have no units left today (of 3)"), note
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)
    finally:
        await running.close()
