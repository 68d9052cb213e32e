"""bot/store/owed_pings.py on a real SQLite file: a ping owed once per request; paid, its row kept a while (so a
start's sweep tells a ping paid from one never owed, cogs/ready_pings.py) and then deleted; ends from before the
sweep existed not swept (their pings left no row)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Database
from bot.store.owed_pings import KEEP_PAID_SECONDS, PRUNE_EVERY, OwedPing, OwedPings


@pytest.fixture
async def owed(tmp_path: Path) -> AsyncIterator[OwedPings]:
    database = Database(tmp_path / "bot.sqlite3")
    await database.connect()
    yield OwedPings(database)
    await database.close()


def ping(key: str, owed_at: float = 0.0) -> OwedPing:
    return OwedPing(key, 1, 2, 3, 4, "your image is ready.", owed_at)


async def test_a_paid_ping_is_kept_a_while_owed_no_more_and_not_owed_again(owed: OwedPings) -> None:
    assert await owed.owe(ping("a")) and not await owed.owe(ping("a"))  # once per request
    assert await owed.owe(ping("b", 1.0))
    assert [p.request_key for p in await owed.all()] == ["a", "b"]
    await owed.paid("a", now=10.0)
    # Paid: no longer owed, but known, and never owed a second time (a sweep finds it).
    assert [p.request_key for p in await owed.all()] == ["b"]
    assert await owed.known("a") and not await owed.owe(ping("a"))
    assert not await owed.known("c")

    await owed.prune(now=10.0 + KEEP_PAID_SECONDS - 1)
    assert await owed.known("a")
    await owed.prune(now=10.0 + KEEP_PAID_SECONDS + 1)
    assert not await owed.known("a") and await owed.known("b")  # the unpaid one stays, however old


async def test_paid_rows_are_deleted_as_pings_are_paid_not_only_at_a_start(owed: OwedPings) -> None:
    """A bot that runs for weeks pays thousands of pings: their rows go at one payment in PRUNE_EVERY."""
    for n in range(PRUNE_EVERY - 1):
        await owed.owe(ping(f"old-{n}"))
        await owed.paid(f"old-{n}", now=0.0)
    assert await owed.known("old-0")
    await owed.owe(ping("new"))
    await owed.paid("new", now=KEEP_PAID_SECONDS + 1)  # the PRUNE_EVERY-th payment
    assert not any([await owed.known(f"old-{n}") for n in range(PRUNE_EVERY - 1)])
    assert await owed.known("new")


async def test_the_sweep_starts_at_the_migration_that_began_keeping_paid_rows(tmp_path: Path) -> None:
    """Before it, a paid ping's row was deleted: an end of then with no row may well have been pinged. A database
    at schema 22 (as the code before left it), migrated now, sweeps from now on; a new one from its making."""
    path = tmp_path / "bot.sqlite3"
    database = Database(path)
    await database.connect()
    await database.close()
    made = await since_of(path)
    assert made <= time.time()
    # Back to schema 22: what migrations 23 to 30 add taken away.
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "DROP TABLE ping_sweep; DROP INDEX owed_pings_paid; DROP INDEX jobs_finished; DROP TABLE starred;"
            "ALTER TABLE owed_pings DROP COLUMN paid_at; ALTER TABLE member_preferences DROP COLUMN suffix;"
            "ALTER TABLE member_preferences DROP COLUMN remix; ALTER TABLE member_preferences DROP COLUMN option_sets;"
            "ALTER TABLE jobs DROP COLUMN waits_for; DROP TABLE server_alerts; DROP INDEX jobs_words_kept;"
            "DROP INDEX jobs_erasure_unshown; ALTER TABLE jobs DROP COLUMN erasure_shown_at;"
            "ALTER TABLE jobs DROP COLUMN erased_at; DROP TABLE dm_copies; DROP TABLE dm_copies_since;"
            "DROP TABLE member_erasures; DROP TABLE guild_welcomes; DROP TABLE welcomes_since; DROP TABLE pauses;"
            "DROP TABLE gallery_posts; DROP TABLE galleries;"
            "PRAGMA user_version = 22;"
        )
    before = time.time()
    assert int(before) <= await since_of(path) <= time.time()


async def since_of(path: Path) -> float:
    database = Database(path)
    await database.connect()
    try:
        return await OwedPings(database).sweep_since()
    finally:
        await database.close()
