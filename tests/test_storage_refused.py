"""Which SQLite failures mean the storage refused a write (the member is told so, cogs/errors.py), read from
errors real SQLite raises."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cogs.errors import storage_refused


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
    assert not storage_refused(mistake.value) and not storage_refused(twice.value)
    assert not storage_refused(OSError(28, "No space left on device"))  # not SQLite's: the caller's to map
