"""``Database.transaction()`` when its task is cancelled while BEGIN IMMEDIATE waits (bot/store/__init__.py).

The statement cannot be called back: it runs on in the connection's thread until it is taken or gives up.
A task is cancelled there when the bot stops (steps past the grace), when a member's request is answered
"busy" and the bot stops before its write ends (cogs/in_time.py), or whenever anything gives up on a
write. Each test holds the write lock from another connection, as another program would, so the BEGIN
waits long enough to be cancelled; then it lets go, and the bot's next writes must work and be kept.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "bot.sqlite3")
    await database.connect()
    async with database.transaction() as conn:
        await conn.execute("CREATE TABLE notes (text TEXT)")
    yield database
    await database.close()


async def _add(db: Database, text: str) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO notes VALUES (?)", (text,))


def _seen_by_another_program(db: Database) -> list[str]:
    with sqlite3.connect(db.path) as other:
        return [row[0] for row in other.execute("SELECT text FROM notes ORDER BY rowid")]


@pytest.mark.parametrize("cancels", [1, 3])
async def test_a_write_cancelled_while_it_waits_for_the_lock_leaves_the_next_writes_working(
    db: Database, cancels: int
) -> None:
    """Before, the BEGIN was taken once the lock went, after its task had gone: the connection stayed
    inside that transaction, every later write failed "cannot start a transaction within a transaction",
    and nothing the bot wrote reached the file. ``cancels`` 3: cancelled again while it cleans up."""
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    cancelled = asyncio.ensure_future(_add(db, "never"))
    try:
        await asyncio.sleep(0.3)
        for _ in range(cancels):
            cancelled.cancel()
            await asyncio.sleep(0.1)
        assert not cancelled.done()  # the cancel waits for the BEGIN's outcome, holding the connection
    finally:
        other.execute("ROLLBACK")
        other.close()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert not db.conn.in_transaction
    await _add(db, "after")
    async with db.read() as conn:  # a single-statement write, committed by itself
        await conn.execute("INSERT INTO notes VALUES ('and a single statement')")
    assert _seen_by_another_program(db) == ["after", "and a single statement"]


async def test_a_cancelled_write_whose_lock_outlasts_the_wait_is_simply_not_made(db: Database) -> None:
    """The BEGIN gives up (busy_timeout, shortened here): there is nothing to end, and the cancel goes on."""
    await db.conn.execute("PRAGMA busy_timeout=300")
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        cancelled = asyncio.ensure_future(_add(db, "never"))
        await asyncio.sleep(0.1)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not db.conn.in_transaction
    await _add(db, "after")
    assert _seen_by_another_program(db) == ["after"]


@pytest.mark.parametrize("busy_timeout", [0.3, 1.5])
async def test_a_write_waits_the_configured_busy_timeout_for_another_program_s_lock(
    tmp_path: Path, busy_timeout: float
) -> None:
    """``[database] busy_timeout_seconds`` is how long one write waits for another program's lock before
    "database is locked"; once the bot is stopping (``impatient``) it waits a moment at most."""
    database = Database(tmp_path / "bot.sqlite3", busy_timeout=busy_timeout)
    await database.connect()
    async with database.transaction() as conn:
        await conn.execute("CREATE TABLE notes (text TEXT)")
    other = sqlite3.connect(database.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        waited = []
        for _ in range(2):
            began = asyncio.get_running_loop().time()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                await _add(database, "never")
            waited.append(asyncio.get_running_loop().time() - began)
            await database.impatient()
    finally:
        other.execute("ROLLBACK")
        other.close()
        await database.close()
    assert busy_timeout * 0.9 <= waited[0] < busy_timeout + 1.0, waited
    assert waited[1] < 0.3 + 0.2, waited
