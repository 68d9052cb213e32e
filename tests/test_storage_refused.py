"""Which SQLite failures mean a write may succeed later (bot/store/refusals.py): the storage refusing it
(the member is told so, cogs/errors.py) or another program holding the write lock; read from errors real
SQLite raises."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

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
