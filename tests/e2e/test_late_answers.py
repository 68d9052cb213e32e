"""Requests that must ask Discord for something before they can answer, when Discord is slow to give it:
the member is answered within Discord's 3 s all the same (cogs/slow_answers.py, bot/asking_discord.py).

Each fault here is one a real Discord gives: a 502 that discord.py retries after 1 s and then 3 s, a rate
limit of 4 s. Before, each answer came 4 s after the request, and Discord refused it (10062): the member read
"This interaction failed" and nothing more. The fake holds the bot to Discord's window (``answer_window``).
"""

from __future__ import annotations

import sqlite3

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from cogs.slow_answers import DISCORD_SLOW
from tests.conftest import Clock, RunningBot, answer_data, answer_given, png_bytes
from tests.e2e.test_references import link, post_images
from tests.e2e.test_rework import delivered, press


def jobs(settings: Settings) -> int:
    with sqlite3.connect(settings.database.path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])


async def test_a_re_roll_whose_links_discord_is_slow_to_renew_is_called_off_in_time(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    reference = discord_fake.add_attachment(png_bytes(colour=(1, 2, 3)), "sketch.png", "image/png")
    interaction = await discord_fake.slash_command("imagine", {"prompt": "a castle", "image1": reference})
    original = await delivered(discord_fake, interaction)
    clock.offset += discord_fake.expire_attachment_urls()  # a day later: its links must be renewed first
    discord_fake.fail_next("POST", r"/attachments/refresh-urls", status=502, times=2)
    discord_fake.answer_window = 3.0
    click = await press(discord_fake, original, "Re-roll")
    await discord_fake.wait_for(lambda: bool(click.callbacks) or click.late_answers > 0, timeout=20)
    assert click.late_answers == 0
    assert click.callbacks[0]["data"]["flags"] & 64 and click.callbacks[0]["data"]["content"] == DISCORD_SLOW
    assert jobs(settings) == 1 and len(seaart.creates) == 1  # nothing started, nothing charged
    # Pressed again once Discord answers, it goes ahead.
    again = await press(discord_fake, original, "Re-roll")
    await discord_fake.wait_for(lambda: jobs(settings) == 2, timeout=10)
    assert again.late_answers == 0 and not again.callbacks[0]["data"].get("flags", 0) & 64


async def test_imagine_with_a_linked_message_discord_is_slow_to_give_is_called_off_in_time(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    posted = await post_images(discord_fake, 1)
    discord_fake.fail_next("GET", rf"/channels/\d+/messages/{posted.id}", status=502, times=2)
    discord_fake.answer_window = 3.0
    interaction = await discord_fake.slash_command(
        "imagine", {"prompt": "the same, at night", "references": link(discord_fake, posted)}
    )
    await discord_fake.wait_for(lambda: bool(interaction.callbacks) or interaction.late_answers > 0, timeout=20)
    assert interaction.late_answers == 0
    assert interaction.callbacks[0]["data"]["content"] == DISCORD_SLOW
    assert jobs(settings) == 0 and seaart.creates == []


async def test_mod_logchannel_whose_test_post_is_rate_limited_is_answered_thinking_then_taken(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    log_channel = discord_fake.add_channel("mod-log")
    limited = {"message": "You are being rate limited.", "retry_after": 4.0, "global": False}
    discord_fake.fail_next("POST", rf"^/channels/{log_channel}/messages$", status=429, body=limited)
    discord_fake.answer_window = 3.0
    interaction = await discord_fake.slash_command(
        "mod logchannel", {"channel": log_channel}, user_id=discord_fake.moderator_id
    )
    await answer_given(discord_fake, interaction, timeout=20)
    answer = answer_data(discord_fake, interaction)
    assert interaction.late_answers == 0
    assert interaction.callbacks[0]["type"] == 5  # "thinking…", then the answer as its follow-up
    assert str(log_channel) in answer["content"]
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT log_channel_id FROM mod_settings").fetchall() == [(log_channel,)]


async def test_a_bot_whose_clock_runs_ahead_of_discord_s_does_not_call_off_a_quick_read(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """With the bot's clock 2.5 s ahead of Discord's, every interaction looks 2.5 s old as it arrives: the
    watcher fired at once, and `/imagine references:` was called off "Discord is slow" at its first read of a
    linked message, answered in milliseconds. It waits at least LEAST_WAIT, as record_in_time does."""
    posted = await post_images(discord_fake, 1)
    discord_fake.interaction_clock_behind = 2.5
    interaction = await discord_fake.slash_command(
        "imagine", {"prompt": "the same, at night", "references": link(discord_fake, posted)}
    )
    await discord_fake.wait_for(lambda: bool(interaction.callbacks), timeout=20)
    data = interaction.callbacks[0]["data"]
    assert not data.get("flags", 0) & 64, data.get("content")
    await discord_fake.wait_for(lambda: jobs(settings) == 1, timeout=10)
