"""Completion times for the learned schedule (bot/store/completions.py): written in batches, never lost
by an orderly stop, and each kind's history trimmed to the window that is read back."""

from __future__ import annotations

import sqlite3

import pytest

from bot.store import Database
from bot.store.completions import BATCH, MAX_WAIT, TRIM_EVERY, CompletionStore


def stored(db: Database) -> list[tuple[str, float, float]]:
    with sqlite3.connect(db.path) as conn:
        return conn.execute("SELECT kind, earliest, latest FROM completion_times ORDER BY id").fetchall()


async def test_completions_are_written_together_and_all_of_them(db: Database) -> None:
    store = CompletionStore(db, history=500)
    for n in range(BATCH - 1):
        await store.add("a", n, n + 1, now=100.0)
    assert stored(db) == [], "kept until a batch has gathered"
    before = db.statements
    await store.add("b", 7, 8, now=100.0)
    assert db.statements == before + 1, "one statement for the whole batch"
    assert stored(db) == [("a", n, n + 1) for n in range(BATCH - 1)] + [("b", 7, 8)]

    await store.add("a", 1, 2, now=200.0)
    await store.add("a", 2, 3, now=200.0 + MAX_WAIT)  # the first has waited long enough: both written
    assert stored(db)[-2:] == [("a", 1, 2), ("a", 2, 3)]

    await store.add("c", 3, 4, now=300.0)
    await store.flush()  # what the runner's stop does
    assert stored(db)[-1] == ("c", 3, 4)
    assert [row for row in await store.recent() if row[0] == "c"] == [("c", 3.0, 4.0)]


async def test_each_kinds_history_is_trimmed_to_the_window(db: Database) -> None:
    history = 10
    store = CompletionStore(db, history=history)
    for n in range(3 * TRIM_EVERY):
        await store.add("busy", n, n + 1, now=float(n))
    await store.add("rare", 0, 1, now=0.0)
    await store.flush()
    kept = [row for row in stored(db) if row[0] == "busy"]
    # Trimmed now and then: never fewer than the window, never more than a window plus a trim's worth.
    assert history <= len(kept) <= history + TRIM_EVERY + BATCH
    assert kept[-1] == ("busy", 3 * TRIM_EVERY - 1, 3 * TRIM_EVERY)
    assert [row for row in await store.recent() if row[0] == "busy"][-history:] == [
        ("busy", float(n), float(n + 1)) for n in range(3 * TRIM_EVERY - history, 3 * TRIM_EVERY)
    ]
    assert ("rare", 0, 1) in stored(db), "another kind's rows are not touched"


async def test_completions_a_busy_database_refused_are_written_by_the_next_flush(db: Database) -> None:
    """Another program holds the write lock at a flush (the stop's own, made impatient): the rows stay
    for the next flush rather than being dropped with the failed statement."""
    store = CompletionStore(db, history=500)
    await store.add("a", 1, 2, now=100.0)
    await db.impatient()  # waits 0.2 s for the lock, as a stopping bot does
    other = sqlite3.connect(db.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await store.flush()
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert stored(db) == []
    await store.add("a", 2, 3, now=100.0)
    await store.flush()
    assert stored(db) == [("a", 1, 2), ("a", 2, 3)]
