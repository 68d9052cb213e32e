"""Slow regex terms, through the real bot and the fake Discord: one prompt's check is bounded as a whole and
runs off the event loop, a prompt it could not finish is refused (never let through), the moderators are told
which pattern was slow once, and a slow pattern is refused when a moderator adds it."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot
from tests.e2e.test_moderation import command, query

# Sixty patterns that backtrack without end on a run of "a"s, none of which matches it: each took its whole
# 50 ms on the prompt below, one after another, on the event loop (3 s in all).
SLOW = [f"(a|aa)+x{{0,{i}}}$" for i in range(1, 61)]
PROMPT = "a " + "a" * 40 + "!"


def slow_reports(discord_fake: FakeDiscord) -> list[str]:
    return [
        m.content
        for m in discord_fake.messages_in(discord_fake.channel_id)
        if m.content and "took too long to check a prompt" in m.content
    ]


async def test_slow_stored_patterns_neither_freeze_the_bot_nor_let_the_prompt_through(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings, seaart: FakeSeaArt
) -> None:
    mod = discord_fake.moderator_id
    await command(discord_fake, "mod logchannel", {"channel": discord_fake.channel_id}, user_id=mod)
    # Stored as before a pattern was tried when added: the bot no longer takes them (the test below).
    with sqlite3.connect(settings.database.path) as conn:
        conn.executemany(
            "INSERT INTO blocked_terms (guild_id, term, is_regex, added_by, added_at) VALUES (?, ?, 1, ?, ?)",
            [(discord_fake.guild_id, pattern, mod, n) for n, pattern in enumerate(SLOW)],
        )

    gaps: list[float] = []

    async def tick() -> None:  # the bot runs on this loop: a check on it shows as one long gap
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    refused = await command(discord_fake, "imagine", {"prompt": PROMPT})
    took = time.monotonic() - started
    ticker.cancel()
    assert max(gaps) < 0.5, f"the event loop stood still {max(gaps):.2f} s"
    assert took < 2.0, took  # one budget for every pattern: a quarter of a second, not 60 x 50 ms

    # Not checked in full, so not sent: a slow pattern must not let the prompt through unseen.
    assert refused["type"] == 4 and refused["flags"] & 64
    assert "could not be checked against this server's blocked terms in time" in refused["content"]
    assert "not charged" in refused["content"] and refused.get("allowed_mentions", {}).get("parse") == []
    assert seaart.creates == [] and query(settings, "SELECT COUNT(*) FROM jobs") == [(0,)]

    # The moderators read which patterns were slow, in the log channel, each once.
    await discord_fake.wait_for(lambda: bool(slow_reports(discord_fake)), timeout=10)
    told = slow_reports(discord_fake)
    assert all("/mod blockterm remove" in t and "Prompt: " in t for t in told)
    named = [p for p in SLOW if any(f"`{p}`" in t for t in told)]
    assert named and len(named) == len(told)
    audited = query(settings, "SELECT reason FROM audit_log WHERE action = 'slow_pattern' ORDER BY id")
    assert [r[0] for r in audited] == named

    # The same prompt again: refused again, but the moderators are not told again within the hour.
    again = await command(discord_fake, "imagine", {"prompt": PROMPT})
    assert "could not be checked" in again["content"]
    await asyncio.sleep(0.3)
    assert slow_reports(discord_fake) == told
    assert seaart.creates == []


async def test_a_slow_pattern_is_refused_when_added(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Before, every one of SLOW was taken ("Blocked ... It applies from the next prompt.")."""
    mod = discord_fake.moderator_id
    for pattern in ("(a|aa)+$", "(\\w+\\s?)+$", "k+i+l+l+"):
        reply = await command(discord_fake, "mod blockterm add", {"term": pattern, "regex": True}, user_id=mod)
        assert reply["flags"] & 64 and reply["content"].startswith("That term cannot be used: it takes over 50 ms")
        assert "(a+)+" in reply["content"] and len(reply["content"]) < 2000
    assert query(settings, "SELECT COUNT(*) FROM blocked_terms") == [(0,)]
    # A pattern that does not backtrack is taken as before.
    fine = await command(discord_fake, "mod blockterm add", {"term": "\\bgore\\w*", "regex": True}, user_id=mod)
    assert fine["content"].startswith("Blocked `\\bgore\\w*`")
    assert query(settings, "SELECT term, is_regex FROM blocked_terms") == [("\\bgore\\w*", 1)]
