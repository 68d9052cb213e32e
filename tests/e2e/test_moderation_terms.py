"""Blocked terms through the real bot and the fake Discord: a word term is one term whatever its case or
spelling, removing it removes every stored spelling, and the list is read page by page."""

from __future__ import annotations

import re
import sqlite3

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot
from tests.e2e.test_moderation import command, finished, query


async def test_a_word_term_is_one_term_whatever_its_case(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings, seaart: FakeSeaArt
) -> None:
    """Before, "Dragon" then "dragon" were both "Blocked" (two rows); "remove dragon" answered "Unblocked
    `dragon`" while "Dragon" went on refusing "a dragon"."""
    mod = discord_fake.moderator_id
    first = await command(discord_fake, "mod blockterm add", {"term": "Dragon"}, user_id=mod)
    assert first["flags"] & 64 and first["content"].startswith("Blocked `dragon`")
    for again in ("dragon", "DRAGON", "d.r.a.g.o.n"):
        reply = await command(discord_fake, "mod blockterm add", {"term": again}, user_id=mod)
        assert reply["content"] == "Blocked already, as `dragon`: nothing changed.", again
    assert query(settings, "SELECT term, is_regex FROM blocked_terms") == [("dragon", 0)]
    # A regex is its own text: the same letters as a pattern are another term.
    await command(discord_fake, "mod blockterm add", {"term": "Wyvern", "regex": True}, user_id=mod)
    assert query(settings, "SELECT term FROM blocked_terms WHERE is_regex = 1") == [("Wyvern",)]

    # Rows kept as typed, by the bot before word terms were kept normalised.
    with sqlite3.connect(settings.database.path) as conn:
        conn.executemany(
            "INSERT INTO blocked_terms (guild_id, term, is_regex, added_by, added_at) VALUES (?, ?, 0, ?, ?)",
            [(discord_fake.guild_id, "Dragon", mod, 1.0), (discord_fake.guild_id, "DRAGON", mod, 2.0)],
        )
    removed = await command(discord_fake, "mod blockterm remove", {"term": "dRaGoN"}, user_id=mod)
    assert removed["flags"] & 64 and removed["content"] == "Unblocked `Dragon`, `DRAGON`, `dragon`."
    assert query(settings, "SELECT term FROM blocked_terms") == [("Wyvern",)]
    accepted = await command(discord_fake, "imagine", {"prompt": "a dragon"})
    assert accepted["type"] == 4 and not accepted.get("flags", 0) & 64 and accepted["embeds"]
    await finished(settings, 1, discord_fake)
    assert [(c.json or {}).get("prompt") for c in seaart.creates] == ["a dragon"]
    gone = await command(discord_fake, "mod blockterm remove", {"term": "dragon"}, user_id=mod)
    assert gone["content"] == "`dragon` was not blocked."


async def test_every_blocked_term_can_be_read_page_by_page_and_removed_by_its_number(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Of 300 terms the list showed 111 and "… and 189 more" with no way to see them."""
    mod = discord_fake.moderator_id
    with sqlite3.connect(settings.database.path) as conn:
        conn.executemany(
            "INSERT INTO blocked_terms (guild_id, term, is_regex, added_by, added_at) VALUES (?, ?, 0, ?, ?)",
            [(discord_fake.guild_id, f"badword{n:03d}", mod, float(n)) for n in range(1, 301)],
        )
    seen: dict[int, str] = {}
    page = 1
    while True:
        listed = await command(discord_fake, "mod blockterm list", {"page": page}, user_id=mod)
        assert listed["flags"] & 64 and len(listed["content"]) <= 2000
        *lines, last = listed["content"].split("\n")
        for line in lines:
            entry = re.fullmatch(r"#(\d+) `(badword\d{3})`", line)
            assert entry is not None, line
            assert int(entry[1]) not in seen
            seen[int(entry[1])] = entry[2]
        if "page:" not in last:
            assert last.startswith(f"Page {page} of {page}.")
            break
        assert last.startswith(f"Page {page} of ") and last.endswith(f"`/mod blockterm list page:{page + 1}`.")
        assert f"… and {300 - len(seen)} more" in last
        page += 1
    assert page > 1 and seen == {n: f"badword{n:03d}" for n in range(1, 301)}
    past = await command(discord_fake, "mod blockterm list", {"page": page + 1}, user_id=mod)
    assert past["content"] == f"There are only {page} pages: `/mod blockterm list page:{page}` is the last."

    # The numbers are the whole list's, whatever page shows them.
    removed = await command(discord_fake, "mod blockterm remove", {"term": "#150"}, user_id=mod)
    assert removed["content"] == "Unblocked `badword150`."
    assert query(settings, "SELECT COUNT(*) FROM blocked_terms WHERE term = 'badword150'") == [(0,)]
