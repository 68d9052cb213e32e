"""Long lists a moderator reads, through the real bot and the fake Discord: /mod bans and /mod settings' channel
levels are made of whole lines, with "… and N more", never cut in the middle of an entry."""

from __future__ import annotations

import re
import sqlite3

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from tests.conftest import RunningBot
from tests.e2e.test_moderation import command

REASON = "spamming the image channel with the same prompt over and over"


async def test_the_bans_list_is_whole_entries_page_by_page(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Forty bans were cut at 1,900 characters, the last one mid-reason, and the rest could not be seen."""
    banned = [10**17 + n for n in range(40)]
    with sqlite3.connect(settings.database.path) as conn:
        conn.executemany(
            "INSERT INTO bans (guild_id, user_id, reason, expires_at, kind, banned_by, created_at) "
            "VALUES (?, ?, ?, NULL, 'ban', 1, ?)",
            [(discord_fake.guild_id, uid, REASON, float(n)) for n, uid in enumerate(banned)],
        )
    seen: list[int] = []
    page = 1
    while True:
        listed = await command(discord_fake, "mod bans", {"page": page}, user_id=discord_fake.moderator_id)
        assert listed["flags"] & 64 and len(listed["content"]) <= 2000
        *lines, last = listed["content"].split("\n")
        for line in lines:
            entry = re.fullmatch(rf"<@(\d+)> \(ban\): {REASON}", line)
            assert entry is not None, line
            seen.append(int(entry[1]))
        if page == 1:
            assert last == f"Page 1 of 2: … and {40 - len(seen)} more, `/mod bans page:2`."
        else:
            assert last == f"Page {page} of {page}."
            break
        page += 1
    assert seen == banned


async def test_settings_show_whole_channel_levels_and_how_many_more(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Eighty channel levels were cut at the field's 1,024 characters, mid-entry and without a word of the rest."""
    channels = [discord_fake.guild_id + 1000 + n for n in range(80)]
    with sqlite3.connect(settings.database.path) as conn:
        conn.executemany(
            "INSERT INTO channel_safety (guild_id, channel_id, safety_level, updated_by, updated_at) "
            "VALUES (?, ?, ?, 1, 0)",
            [(discord_fake.guild_id, cid, 1 + n % 6) for n, cid in enumerate(channels)],
        )
    shown = await command(discord_fake, "mod settings", {}, user_id=discord_fake.moderator_id)
    (field,) = [f for f in shown["embeds"][0]["fields"] if f["name"] == "Channel levels"]
    assert len(field["value"]) <= 1024
    *lines, last = field["value"].split("\n")
    for n, line in enumerate(lines):
        assert line == f"<#{channels[n]}>: {1 + n % 6}"
    assert last == f"… and {80 - len(lines)} more."
