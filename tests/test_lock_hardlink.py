"""One bot per database, whatever name the database is reached by: a hard link (the same file under another
name, here in another folder) meets the lock too. Before, the lock was ``<resolved path>.lock``, which a
symlink shares and a hard link does not: a second bot on the same file went ahead, read the database without
the first one's WAL (SQLite names it after the path) and sent a create the first had sent already."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store.lock import DatabaseInUseError, DatabaseLock
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.e2e.bot_process import bot_processes, write_config
from tests.e2e.test_back_after_deadline import one_in_flight_and_one_taken_during_a_stop
from tests.e2e.test_failing_disk import states
from tests.e2e.test_process import HeldCreates, held_creates  # noqa: F401 (the fixture)


def linked_config(tmp_path: Path, config: Path, db: Path) -> tuple[Path, Path]:
    """A second config whose [database] path is a hard link to ``db`` in another folder."""
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    link = other_dir / "bot.sqlite3"
    os.link(db, link)
    other = other_dir / "config.toml"
    other.write_text(config.read_text().replace(str(db), str(link)))
    return other, link


async def test_a_second_bot_through_a_hard_link_is_refused_and_sends_nothing(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    held_creates: HeldCreates,  # noqa: F811 (the fixture imported above)
) -> None:
    """The reviewer's case: a job taken during a stop waits in the database; the bot comes back and sends its
    create; a second bot on a hard link to the database starts too."""
    config = write_config(tmp_path, discord_fake, held_creates.base_url, request_timeout=10.0)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        proc = start()
        await one_in_flight_and_one_taken_during_a_stop(discord_fake, held_creates, proc, log)
        held_creates.release()
        await discord_fake.wait_for(lambda: proc.poll() is not None, timeout=40)
    other, _ = linked_config(tmp_path, config, db)
    other_log = tmp_path / "other.log"

    def creates_of(prompt: str) -> int:
        return sum(1 for c in seaart.creates if c.json and c.json.get("prompt") == prompt)

    with bot_processes(config, log) as start_a, bot_processes(other, other_log) as start_b:
        a = start_a()
        await discord_fake.wait_for(lambda: creates_of("during the stop") == 1, timeout=30)
        b = start_b()
        await discord_fake.wait_for(lambda: b.poll() is not None, timeout=30)
        assert b.returncode == 1
        refusal = other_log.read_text(errors="replace")
        assert "is in use by another bananacord process" in refusal and f"pid {a.pid}" in refusal, refusal
        assert "Stop that process first" in refusal
        await discord_fake.wait_for(lambda: states(db) == ["delivered", "delivered"], timeout=30)
        assert a.poll() is None
    assert creates_of("during the stop") == 1 and creates_of("in flight") == 1
    assert discord_fake.identify_count == 2, "the second bot never reached Discord"


async def test_a_hard_link_to_the_database_a_bot_made_at_its_first_start_is_refused(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """No database before the bot's first start: it made the file after taking its lock, and locks the file
    itself once it exists, before resuming anything."""
    config = write_config(tmp_path, discord_fake, seaart)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    assert not db.exists()
    with bot_processes(config, log) as start_a:
        a = start_a()
        await discord_fake.wait_until_ready(timeout=30)
        await discord_fake.wait_for(lambda: "connected as" in log.read_text(errors="replace"), timeout=20)
        other, _ = linked_config(tmp_path, config, db)
        other_log = tmp_path / "other.log"
        with bot_processes(other, other_log) as start_b:
            b = start_b()
            await discord_fake.wait_for(lambda: b.poll() is not None, timeout=30)
        refusal = other_log.read_text(errors="replace")
        assert b.returncode == 1 and f"is in use by another bananacord process (pid {a.pid}" in refusal, refusal
        inter = await discord_fake.slash_command("imagine", {"prompt": "one bot"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=30)
        assert inter.original_message_id is not None and a.poll() is None
    assert len(seaart.creates) == 1


def sqlite_write_refused(db: Path) -> bool:
    """Whether another process is refused SQLite's write lock on ``db`` right now."""
    probe = "import sqlite3, sys; sqlite3.connect(sys.argv[1], timeout=0).execute('BEGIN IMMEDIATE')"
    result = subprocess.run([sys.executable, "-c", probe, str(db)], capture_output=True, text=True, check=False)
    return result.returncode != 0 and "database is locked" in result.stderr


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="reads the kernel's lock table (Linux)")
def test_the_lock_follows_the_file_and_leaves_sqlite_s_own_locks_alone(tmp_path: Path) -> None:
    """The lock is taken on the database file itself; letting it go never closes a descriptor of the file
    while SQLite in this process holds a lock on it (closing one would drop every fcntl lock of the process on
    the file: another process could then write in the middle of this one's transaction)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    db, link = tmp_path / "a" / "bot.sqlite3", tmp_path / "b" / "bot.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    os.link(db, link)
    with DatabaseLock(db):
        with pytest.raises(DatabaseInUseError) as info, DatabaseLock(link):
            pass
        message = info.value.user_message
        assert f"the database {link} is in use by another bananacord process (pid {os.getpid()}" in message
        assert "Stop that process first" in message
    with DatabaseLock(link):  # released: free again, by either name
        pass

    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO t VALUES (1)")
        assert sqlite_write_refused(db)
        with DatabaseLock(db):
            pass
        assert sqlite_write_refused(db), "letting the lock go dropped SQLite's write lock"
        writer.execute("COMMIT")
    finally:
        writer.close()
    with DatabaseLock(link):  # SQLite done with the file: nothing of the lock is left behind
        pass
    assert not sqlite_write_refused(db)
