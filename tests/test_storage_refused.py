"""Which SQLite failures mean a write may succeed later (bot/store/refusals.py): the storage refusing it
(the member is told so, cogs/errors.py) or another program holding the write lock; read from errors real
SQLite raises."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from bot.store import Database
from bot.store.refusals import storage_busy, storage_refused, write_can_wait


def test_a_write_to_a_read_only_database_is_the_storage_refusing(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE jobs (id TEXT)")
    conn.close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as refused:
            read_only.execute("INSERT INTO jobs VALUES ('a')")
    finally:
        read_only.close()
    assert storage_refused(refused.value)


def test_a_full_database_is_the_storage_refusing(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "bot.sqlite3")
    try:
        conn.execute("CREATE TABLE jobs (body BLOB)")
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0] + 1}")
        with pytest.raises(sqlite3.OperationalError) as full:
            conn.execute("INSERT INTO jobs VALUES (?)", (b"\0" * 1_000_000,))
    finally:
        conn.close()
    assert "full" in str(full.value) and storage_refused(full.value)


def test_a_write_lock_held_by_another_program_is_the_storage_busy(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    other = sqlite3.connect(path, isolation_level=None)
    ours = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    try:
        other.execute("PRAGMA journal_mode=WAL")
        other.execute("CREATE TABLE jobs (id TEXT)")
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as locked:
            ours.execute("INSERT INTO jobs VALUES ('a')")
        assert ours.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)  # reads go on (WAL)
    finally:
        ours.close()
        other.close()
    assert "locked" in str(locked.value)
    assert storage_busy(locked.value) and not storage_refused(locked.value) and write_can_wait(locked.value)


def test_a_mistake_in_sql_or_any_other_error_is_not(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "bot.sqlite3")
    try:
        with pytest.raises(sqlite3.OperationalError) as mistake:
            conn.execute("SELECT nothing FROM nowhere")
        conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO jobs VALUES ('a')")
        with pytest.raises(sqlite3.IntegrityError) as twice:
            conn.execute("INSERT INTO jobs VALUES ('a')")
    finally:
        conn.close()
    assert not write_can_wait(mistake.value) and not write_can_wait(twice.value)
    assert not write_can_wait(OSError(28, "No space left on device"))  # not SQLite's: the caller's to map


async def test_a_write_held_up_by_another_program_is_told_apart_from_a_queue_of_our_own(tmp_path: Path) -> None:
    """``Database.held_up_since``: the seconds its one thread has spent on slow statements since a moment. A
    burst of the bot's own statements keeps it near zero however long the burst, and the idle time before
    the burst does not count; a write waiting for another program's lock makes it grow (cogs/in_time.py
    answers "busy" only then)."""
    db = Database(tmp_path / "bot.sqlite3")
    await db.connect()
    try:
        await asyncio.sleep(1.2)  # idle: the next statement starts 1.2 s after the last
        burst = time.monotonic()
        for _ in range(300):  # a queue of our own: each statement starts the clock again
            async with db.read() as conn:
                await conn.execute("SELECT 1")
        assert db.held_up_since(burst) < 0.5
        assert db.held_up_since(burst - 2.0) < 0.5  # looking back over the idle time: idle is not held up
        other = sqlite3.connect(db.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            asked = time.monotonic()
            waiting = asyncio.ensure_future(_write(db))
            await asyncio.sleep(1.2)
            assert not waiting.done() and db.held_up_since(asked) >= 1.0
            other.execute("ROLLBACK")
            await waiting  # taken once the lock is gone
            assert db.held_up_since(time.monotonic()) < 0.5
        finally:
            other.close()
    finally:
        await db.close()


async def test_a_lock_longer_than_one_write_s_wait_holds_the_database_up_throughout(tmp_path: Path) -> None:
    """Under a lock that outlasts ``busy_timeout``, one write gives up and the next starts its own wait. Just
    after that, the latest statement is young, yet the database has been held up all along: a request
    asked for before the first write gave up is "held up" (bench/soak.py --db-locks, seed 126, found a
    Cancel waited for, and answered after Discord's 3 s, when only the latest statement counted)."""
    db = Database(tmp_path / "bot.sqlite3")
    await db.connect()
    await db.conn.execute("PRAGMA busy_timeout=1500")  # the 5 s wait, shortened
    other = sqlite3.connect(db.path, isolation_level=None)
    second: asyncio.Future[None] | None = None
    try:
        other.execute("BEGIN IMMEDIATE")
        first = asyncio.ensure_future(_write(db))
        await asyncio.sleep(0.2)
        asked = time.monotonic()
        second = asyncio.ensure_future(_write(db))
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await first  # gave up after 1.5 s; the second's wait has begun
        await asyncio.sleep(0.3)
        assert not second.done()
        assert time.monotonic() - db.statement_began < 0.5  # the latest statement alone looks young
        assert db.held_up_since(asked) >= 1.0  # the first's wait since ``asked`` (1.3 s), and the second's
        assert db.held_up_since(time.monotonic() - 0.2) < 0.5  # a moment ago: only the young wait counts
        other.execute("ROLLBACK")
        await second
    finally:
        other.close()
        if second is not None and not second.done():
            second.cancel()
        await db.close()


async def _write(db: Database) -> None:
    async with db.transaction():
        await db.conn.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
