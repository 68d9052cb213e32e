"""Server settings, channel levels and bans kept in memory (bot/store/kept.py): read once per server, never
stale after this process writes them, and a ban's expiry still judged at every read."""

from __future__ import annotations

import asyncio

from bot.moderation import ModerationStore
from bot.preferences import Preferences
from bot.store import Database
from bot.store.kept import Kept
from bot.store.preferences import PreferenceStore
from bot.store.settings import SettingsStore
from tests.conftest import Clock

GUILD, OTHER, CHANNEL, MEMBER = 10, 11, 20, 30


async def test_what_imagine_reads_costs_no_statement_after_the_first_time(db: Database) -> None:
    moderation = ModerationStore(db, clock=Clock())
    settings = SettingsStore(db)

    async def reads() -> None:
        await moderation.active_ban(GUILD, MEMBER)
        await moderation.guild(GUILD)
        await moderation.channel_level(GUILD, CHANNEL)
        await settings.guild_defaults(GUILD)

    await reads()
    before = db.statements
    for _ in range(5):
        await reads()
    assert db.statements == before
    await reads()  # and a second server is read for itself
    await moderation.guild(OTHER)
    assert db.statements == before + 1


async def test_writes_are_seen_at_once(db: Database) -> None:
    clock = Clock()
    moderation = ModerationStore(db, clock=clock)
    settings = SettingsStore(db)
    assert await moderation.active_ban(GUILD, MEMBER) is None
    assert await moderation.channel_level(GUILD, CHANNEL) is None
    assert (await moderation.guild(GUILD)).safety_level is None
    assert (await settings.guild_defaults(GUILD)).max_count is None

    await moderation.ban(GUILD, MEMBER, reason="spam", expires_at=clock() + 60, by=1, kind="cooldown")
    await moderation.set_channel_level(GUILD, CHANNEL, 2, by=1)
    await moderation.update_guild(GUILD, by=1, safety_level=5)
    await settings.set_guild_defaults(GUILD, model=None, provider=None, by=1, now=clock(), max_count=2)

    ban = await moderation.active_ban(GUILD, MEMBER)
    assert ban is not None and ban.reason == "spam"
    assert await moderation.channel_level(GUILD, CHANNEL) == 2
    assert await moderation.channel_levels(GUILD) == {CHANNEL: 2}
    assert (await moderation.guild(GUILD)).safety_level == 5
    assert (await settings.guild_defaults(GUILD)).max_count == 2

    clock.offset += 61  # the cooldown ends with no write at all
    assert await moderation.active_ban(GUILD, MEMBER) is None
    await moderation.ban(GUILD, MEMBER, reason=None, expires_at=None, by=1)
    assert await moderation.active_ban(GUILD, MEMBER) is not None
    assert await moderation.unban(GUILD, MEMBER)
    assert await moderation.active_ban(GUILD, MEMBER) is None
    await moderation.set_channel_level(GUILD, CHANNEL, None, by=1)
    assert await moderation.channel_level(GUILD, CHANNEL) is None

    # What was kept is what the file says: a fresh store (a restart) reads the same.
    fresh = ModerationStore(db, clock=clock)
    assert (await fresh.guild(GUILD)).safety_level == 5 and await fresh.active_ban(GUILD, MEMBER) is None


async def test_a_read_that_a_write_overtook_is_used_once_but_not_kept() -> None:
    kept: Kept[str, int] = Kept()
    value = {"row": 1}
    reading = asyncio.Event()
    release = asyncio.Event()

    async def slow_read() -> int:
        seen = value["row"]
        reading.set()
        await release.wait()
        return seen

    async def read() -> int:
        return value["row"]

    pending = asyncio.create_task(kept.get("k", slow_read))
    await reading.wait()
    value["row"] = 2  # a write commits while the read is under way
    kept.wrote("k")
    release.set()
    assert await pending == 1  # what that read saw, for that caller
    assert await kept.get("k", read) == 2  # the next caller reads again
    value["row"] = 3
    assert await kept.get("k", read) == 2, "kept until the next write"


async def test_a_limited_kept_reads_again_what_it_let_go() -> None:
    kept: Kept[int, str] = Kept(limit=2)
    reads: list[int] = []

    async def read(key: int) -> str:
        reads.append(key)
        return str(key)

    for key in (1, 2, 1, 3, 2, 1):
        assert await kept.get(key, lambda key=key: read(key)) == str(key)  # type: ignore[misc]
    # 1 and 2 kept; 3 pushed out the first kept (1), which is then read again.
    assert reads == [1, 2, 3, 1]


async def test_member_preferences_are_per_server_and_survive_a_new_store(db: Database) -> None:
    saved = Preferences(aspect_ratio="16:9", web_search=False, count=3)
    await PreferenceStore(db).save(GUILD, MEMBER, saved, now=1.0)
    fresh = PreferenceStore(db)
    assert await fresh.get(GUILD, MEMBER) == saved  # web_search False stays False, not "unset"
    assert await fresh.get(OTHER, MEMBER) == Preferences()
    await fresh.save(GUILD, MEMBER, Preferences(), now=2.0)  # none left: the row goes
    assert await fresh.get(GUILD, MEMBER) == Preferences()
    async with db.read() as conn, conn.execute("SELECT COUNT(*) FROM member_preferences") as cur:
        assert tuple(await cur.fetchone() or ()) == (0,)
