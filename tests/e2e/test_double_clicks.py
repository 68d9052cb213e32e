"""A double click on a button that starts a job is one press (cogs/double_clicks.py).

Discord sends each click as its own interaction, a few hundred milliseconds apart: each started a job, so a
double click on Re-roll made two images, both charged. The second press of the same button on the same job
by the same member within the moment is answered privately; another member's press, or the member's own a
moment later, starts a job as before.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from cogs.double_clicks import TAKEN_ONCE, WINDOW_SECONDS
from tests.conftest import Clock, RunningBot, make_settings, start_bot
from tests.e2e.test_buttons import button, ephemeral_reply
from tests.e2e.test_rework import imagine


def jobs_by_member(settings: Settings) -> list[tuple[int, int]]:
    with sqlite3.connect(settings.database.path) as conn:
        rows = conn.execute("SELECT user_id, COUNT(*) FROM jobs GROUP BY user_id ORDER BY user_id").fetchall()
    return [(int(user), int(count)) for user, count in rows]


async def test_a_double_click_on_re_roll_makes_one_image_and_a_later_press_another(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a lighthouse"})
    reroll = button(discord_fake, original.id, "Re-roll")
    first, second = await asyncio.gather(
        discord_fake.click(original.id, reroll), discord_fake.click(original.id, reroll)
    )
    await discord_fake.wait_for(lambda: bool(first.callbacks) and bool(second.callbacks), timeout=10)
    answers = sorted([first, second], key=lambda click: bool(click.callbacks[0]["data"].get("flags", 0) & 64))
    started, refused = answers
    assert not started.callbacks[0]["data"].get("flags", 0) & 64  # the new job's own message
    assert refused.callbacks[0]["data"]["flags"] & 64 and refused.callbacks[0]["data"]["content"] == TAKEN_ONCE
    member = discord_fake.member_id
    await discord_fake.wait_for(lambda: jobs_by_member(settings) == [(member, 2)], timeout=10)
    # Another member pressing in the same moment is their own press.
    other = await discord_fake.click(original.id, reroll, user_id=discord_fake.other_member_id)
    await discord_fake.wait_for(lambda: bool(other.callbacks), timeout=10)
    assert not other.callbacks[0]["data"].get("flags", 0) & 64
    # The member's own press a moment later is meant: another image.
    await asyncio.sleep(WINDOW_SECONDS + 0.2)
    again = await discord_fake.click(original.id, reroll)
    await discord_fake.wait_for(lambda: bool(again.callbacks), timeout=10)
    assert not again.callbacks[0]["data"].get("flags", 0) & 64
    await discord_fake.wait_for(
        lambda: jobs_by_member(settings) == sorted([(member, 3), (discord_fake.other_member_id, 1)]), timeout=10
    )
    await discord_fake.wait_for(lambda: len(seaart.creates) == 4, timeout=20)


async def test_a_double_click_whose_first_press_was_refused_claims_no_image(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The second press's answer said "one image, charged once" when the first was refused (the day's quota
    spent) and no image was made."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 1})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        original = await imagine(discord_fake, {"prompt": "a lighthouse"})  # the day's one unit
        reroll = button(discord_fake, original.id, "Re-roll")
        first, second = await asyncio.gather(
            discord_fake.click(original.id, reroll), discord_fake.click(original.id, reroll)
        )
        told = sorted([await ephemeral_reply(discord_fake, first), await ephemeral_reply(discord_fake, second)])
    finally:
        await running.close()
    assert jobs_by_member(settings) == [(discord_fake.member_id, 1)], "the refused press made nothing"
    assert TAKEN_ONCE in told and any("quota" in t.lower() for t in told if t != TAKEN_ONCE), told
    assert not any("charged once" in t for t in told), told
