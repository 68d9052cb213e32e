"""`bananacord db backup FILE` and `db restore FILE` from the shell (bot/db_copy.py): a copy is the database and
the images waiting beside it in ``<database>.results/``; a restore refuses a running bot and anything that is
not a whole copy this version can run, and keeps the database it replaces."""

from __future__ import annotations

import fcntl
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.store import latest_schema_version
from bot.store.lock import DatabaseLock
from tests.test_cli import acli, cli, config, last_line, one_line

WAITING, DELIVERED = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"


@contextmanager
def _open(db: Path) -> Iterator[sqlite3.Connection]:
    """Committed and closed at the end (sqlite3's own ``with`` commits but leaves the connection open)."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def _job(conn: sqlite3.Connection, job_id: str, state: str, *, named_file: bool) -> None:
    result = f'{{"images":[{{"url":null,"file":"{job_id}-1"}}]}}' if named_file else None
    conn.execute(
        "INSERT INTO jobs (id, state, provider, model, request_json, result_json, deadline_at, created_at, updated_at)"
        " VALUES (?, ?, 'gemini', 'nano_banana_pro', '{}', ?, 0, 0, 0)",
        (job_id, state, result),
    )


def new_database(tmp_path: Path, db: Path) -> None:
    """A database at ``db``, migrated, and ``tmp_path/config.toml`` naming it. `db migrate` makes no database
    where there is none (the bot makes its own at its first start): it migrates the empty file made here,
    which SQLite reads as a new database."""
    cfg = str(config(tmp_path, db=db))
    db.touch(mode=0o600)
    migrated = cli(tmp_path, "db", "migrate", "--config", cfg)
    assert migrated.returncode == 0, migrated.stderr


def _database_with_a_waiting_image(tmp_path: Path, db: Path) -> dict[str, bytes]:
    """A migrated database with a job whose image waits in the results folder, a delivered job, a stray file
    and a write never finished; returns the folder's files."""
    new_database(tmp_path, db)
    with _open(db) as conn:
        _job(conn, WAITING, "succeeded", named_file=True)
        _job(conn, DELIVERED, "delivered", named_file=False)
    folder = db.with_name(db.name + ".results")
    folder.mkdir()
    files = {
        f"{WAITING}-1": b"\x89PNG the waiting image",
        f"{DELIVERED}-1": b"posted already",
        f"{WAITING}-2.part": b"a write never finished",
        "notes.txt": b"not ours",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def _jobs(db: Path) -> list[tuple[str, str, str | None]]:
    with _open(db) as conn:
        return list(conn.execute("SELECT id, state, result_json FROM jobs ORDER BY id"))


def _ids(db: Path) -> list[str]:
    with _open(db) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM jobs ORDER BY id")]


def test_a_backup_copies_the_images_its_unfinished_jobs_wait_to_post(tmp_path: Path) -> None:
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    files = _database_with_a_waiting_image(tmp_path, db)
    result = cli(tmp_path, "db", "backup", str(copy), "--config", str(tmp_path / "config.toml"))
    assert result.returncode == 0, result.stderr
    assert "with the 1 image(s) waiting for delivery in copy.sqlite3.results/" in result.stdout
    assert _ids(copy) == [WAITING, DELIVERED]
    copied = tmp_path / "copy.sqlite3.results"
    assert {p.name: p.read_bytes() for p in copied.iterdir()} == {f"{WAITING}-1": files[f"{WAITING}-1"]}
    assert copied.stat().st_mode & 0o077 == 0  # as private as the bot's own folder
    assert sorted(p.name for p in tmp_path.glob("copy.sqlite3*")) == ["copy.sqlite3", "copy.sqlite3.results"]
    # The copy's folder is new too: a backup never mixes its images with another's.
    (tmp_path / "copy.sqlite3").unlink()
    again = cli(tmp_path, "db", "backup", str(copy), "--config", str(tmp_path / "config.toml"))
    assert again.returncode == 1 and "copy.sqlite3.results already exists" in one_line(again.stderr)
    assert not copy.exists()


def test_a_restore_copies_images_not_links_planted_among_them(tmp_path: Path) -> None:
    """A link named like a waiting image, in the copy's folder, is not followed to the file it names."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    _database_with_a_waiting_image(tmp_path, db)
    cfg = str(tmp_path / "config.toml")
    assert cli(tmp_path, "db", "backup", str(copy), "--config", cfg).returncode == 0
    secret = tmp_path / "secret.txt"
    secret.write_text("not an image of this bot's")
    planted = tmp_path / "copy.sqlite3.results" / f"{WAITING}-1"
    planted.unlink()
    planted.symlink_to(secret)
    shutil.rmtree(tmp_path / "bot.sqlite3.results")
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg)
    assert result.returncode == 0, result.stderr
    assert "1 of them name images the copy does not have" in result.stdout
    assert not (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").exists()


def test_a_backup_says_which_waiting_images_were_gone(tmp_path: Path) -> None:
    """A job that ended between the database's copy and the files' (its file removed as it ended)."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    _database_with_a_waiting_image(tmp_path, db)
    (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").unlink()
    result = cli(tmp_path, "db", "backup", str(copy), "--config", str(tmp_path / "config.toml"))
    assert result.returncode == 0, result.stderr
    assert "1 of its unfinished jobs name images that were not there to copy" in result.stdout
    assert _ids(copy) == [WAITING, DELIVERED]


async def test_a_restore_puts_the_copy_and_its_images_back_and_keeps_what_it_replaced(tmp_path: Path) -> None:
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    files = _database_with_a_waiting_image(tmp_path, db)
    cfg = str(tmp_path / "config.toml")
    assert cli(tmp_path, "db", "backup", str(copy), "--config", cfg).returncode == 0
    # Since the copy: the waiting job was delivered (its file gone) and a new one is waiting.
    later = "cccccccccccccccc"
    with _open(db) as conn:
        conn.execute("UPDATE jobs SET state = 'delivered', result_json = NULL WHERE id = ?", (WAITING,))
        _job(conn, later, "succeeded", named_file=True)
    (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").unlink()
    (tmp_path / "bot.sqlite3.results" / f"{later}-1").write_bytes(b"the later image")

    # Never under a running bot: its next writes would land in the database put back.
    with DatabaseLock(db):
        code, stderr = await acli(tmp_path, "db", "restore", str(copy), "--config", cfg)
    assert code == 1 and "is in use by" in one_line(stderr)
    assert _ids(db) == [WAITING, DELIVERED, later]

    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg)
    assert result.returncode == 0, result.stderr
    assert _ids(db) == [WAITING, DELIVERED]
    with _open(db) as conn:
        assert conn.execute("SELECT state FROM jobs WHERE id = ?", (WAITING,)).fetchone() == ("succeeded",)
    assert (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").read_bytes() == files[f"{WAITING}-1"]
    assert "1 unfinished job(s) in it will be resumed" in result.stdout
    # What the copy cannot know is said: the waiting job was delivered since, and a later one is not in it.
    assert "1 of them had ended in the database it replaced, after this copy was made" in result.stdout
    assert "1 job(s) unfinished in the database it replaced are not in this copy" in result.stdout
    assert "its ledger: sound" in result.stdout
    # The database it replaced, with its own waiting image, is a backup beside it: the restore can be undone.
    (aside,) = tmp_path.glob("bot.sqlite3.before-restore-*[0-9]Z")
    assert f"kept as {aside}" in result.stdout
    assert _ids(aside) == [WAITING, DELIVERED, later]
    assert (tmp_path / f"{aside.name}.results" / f"{later}-1").read_bytes() == b"the later image"
    # One file each, nothing of SQLite's left beside the copies or the database (no bot has it open).
    assert not [p.name for p in tmp_path.glob("*sqlite3*-[ws][ah][lm]")]


def test_a_restore_refuses_what_is_not_a_whole_copy_it_can_run(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    _database_with_a_waiting_image(tmp_path, db)
    cfg = str(tmp_path / "config.toml")
    before = _jobs(db)

    missing = cli(tmp_path, "db", "restore", str(tmp_path / "nope.sqlite3"), "--config", cfg)
    assert missing.returncode == 1 and "no copy at" in one_line(missing.stderr)

    text = tmp_path / "notes.sqlite3"
    text.write_text("not a database at all, though named like one\n" * 100)
    refused = cli(tmp_path, "db", "restore", str(text), "--config", cfg)
    assert refused.returncode == 1 and "is not a database this bot can restore" in one_line(refused.stderr)

    other = tmp_path / "other.sqlite3"
    with _open(other) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.execute("PRAGMA user_version = 3")
    refused = cli(tmp_path, "db", "restore", str(other), "--config", cfg)
    assert refused.returncode == 1 and "is not a Bananacord database" in one_line(refused.stderr)

    newer = tmp_path / "newer.sqlite3"
    assert cli(tmp_path, "db", "backup", str(newer), "--config", cfg).returncode == 0
    with _open(newer) as conn:
        conn.execute(f"PRAGMA user_version = {latest_schema_version() + 1}")
    refused = cli(tmp_path, "db", "restore", str(newer), "--config", cfg)
    assert refused.returncode == 1 and "made by a newer bananacord" in one_line(refused.stderr)

    itself = cli(tmp_path, "db", "restore", str(db), "--config", cfg)
    assert itself.returncode == 1 and "is the database itself" in one_line(itself.stderr)

    no_file = cli(tmp_path, "db", "restore", "--config", cfg)
    assert no_file.returncode == 1 and "db restore needs the copy to put back" in one_line(no_file.stderr)
    # Nothing was replaced, nothing set aside.
    assert _jobs(db) == before
    assert not list(tmp_path.glob("*before-restore*"))


def test_a_backup_is_no_easier_to_read_than_the_database(tmp_path: Path) -> None:
    """It holds prompts and interaction tokens: made with the database's permissions, not the umask's."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    _database_with_a_waiting_image(tmp_path, db)
    db.chmod(0o600)
    result = cli(tmp_path, "db", "backup", str(copy), "--config", str(tmp_path / "config.toml"))
    assert result.returncode == 0, result.stderr
    assert copy.stat().st_mode & 0o777 == 0o600
    assert _ids(copy) == [WAITING, DELIVERED]
    # Put back after the database was lost: as private again.
    for lost in tmp_path.glob("bot.sqlite3*"):
        if lost.is_file():
            lost.unlink()
    result = cli(tmp_path, "db", "restore", str(copy), "--config", str(tmp_path / "config.toml"))
    assert result.returncode == 0, result.stderr
    assert db.stat().st_mode & 0o777 == 0o600
    assert _ids(db) == [WAITING, DELIVERED]


def test_a_new_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """Prompts and interaction tokens: the file the bot creates (at its first start, before it reaches for
    Discord, here at a closed port), and the WAL SQLite makes beside it."""
    db = tmp_path / "bot.sqlite3"
    started = cli(tmp_path, "run", "--config", str(config(tmp_path, db=db)))
    assert started.returncode == 1 and "cannot reach Discord" in last_line(started.stderr), started.stderr
    assert db.stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(db)
    try:
        conn.execute(
            "INSERT INTO jobs (id, state, provider, model, request_json, deadline_at, created_at, updated_at)"
            " VALUES ('x', 'queued', 'seaart', 'nano_banana_2', '{}', 0, 0, 0)"
        )
        conn.commit()
        wal = tmp_path / "bot.sqlite3-wal"
        assert wal.exists() and wal.stat().st_mode & 0o777 == 0o600
    finally:
        conn.close()


def test_a_restore_counts_as_missing_only_images_found_nowhere(tmp_path: Path) -> None:
    """A copy made before backups took the images (none beside it): the images still waiting beside the
    database serve the same jobs, so only the jobs with no image anywhere are said to be failing."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    files = _database_with_a_waiting_image(tmp_path, db)
    cfg = str(tmp_path / "config.toml")
    assert cli(tmp_path, "db", "backup", str(copy), "--config", cfg).returncode == 0
    for image in (tmp_path / "copy.sqlite3.results").iterdir():
        image.unlink()
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg)
    assert result.returncode == 0, result.stderr
    assert "images the copy does not have" not in result.stdout
    assert (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").read_bytes() == files[f"{WAITING}-1"]
    # With the image gone from both, the restore says so.
    (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").unlink()
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg)
    assert result.returncode == 0, result.stderr
    assert "1 of them name images the copy does not have: they will fail, refunded" in result.stdout
    # Each restore kept what it replaced, under its own name even within the same second.
    assert len([p for p in tmp_path.glob("bot.sqlite3.before-restore-*") if p.suffix != ".results"]) == 2


def _disk_full_past(limit: int) -> Callable[[], None]:
    """For the CLI's process: every write past ``limit`` bytes of a file fails (EFBIG), as on a full disk."""

    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails rather than the process being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_a_backup_that_cannot_copy_its_images_leaves_nothing_behind(tmp_path: Path) -> None:
    """The database copied and then an image refused (the disk full): not a backup, so nothing is kept."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    _database_with_a_waiting_image(tmp_path, db)
    (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").write_bytes(b"\x89PNG" + bytes(2_000_000))
    assert db.stat().st_size < 1_000_000
    args = ("db", "backup", str(copy), "--config", str(tmp_path / "config.toml"))
    result = cli(tmp_path, *args, preexec=_disk_full_past(1_000_000))
    assert result.returncode == 1
    assert "cannot copy the images waiting beside" in one_line(result.stderr)
    assert not copy.exists() and not (tmp_path / "copy.sqlite3.results").exists()
    # Room again: the same backup goes through.
    assert cli(tmp_path, *args).returncode == 0
    assert (tmp_path / "copy.sqlite3.results" / f"{WAITING}-1").stat().st_size == 2_000_004


def test_a_restore_that_cannot_put_its_images_back_says_so_and_what_it_kept(tmp_path: Path) -> None:
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    _database_with_a_waiting_image(tmp_path, db)
    (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").write_bytes(b"\x89PNG" + bytes(2_000_000))
    cfg = str(tmp_path / "config.toml")
    assert cli(tmp_path, "db", "backup", str(copy), "--config", cfg).returncode == 0
    shutil.rmtree(tmp_path / "bot.sqlite3.results")
    # The aside (a backup of the database) is made first: its images are gone, so it fits; the copy's do not.
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg, preexec=_disk_full_past(1_000_000))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"{copy} was put back as {db}, but cannot copy the images waiting beside {copy}" in line
    assert "the database it replaced is kept as" in line and "Make room and restore again" in line
    assert cli(tmp_path, "db", "restore", str(copy), "--config", cfg).returncode == 0
    assert (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").stat().st_size == 2_000_004


def test_a_damaged_database_is_moved_aside_and_the_copy_put_in_its_place(tmp_path: Path) -> None:
    """The very case for a restore: SQLite cannot read the database, so it cannot be copied aside; it is
    moved aside as it is, and the copy goes in its place."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    files = _database_with_a_waiting_image(tmp_path, db)
    cfg = str(tmp_path / "config.toml")
    assert cli(tmp_path, "db", "backup", str(copy), "--config", cfg).returncode == 0
    damaged = b"garbage where the header was" + db.read_bytes()[28:]
    db.write_bytes(damaged)
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg)
    assert result.returncode == 0, result.stderr
    assert "the database it replaced could not be copied" in result.stdout
    (aside,) = [p for p in tmp_path.glob("bot.sqlite3.before-restore-*") if p.is_file()]
    assert aside.read_bytes() == damaged
    assert _ids(db) == [WAITING, DELIVERED]
    assert (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").read_bytes() == files[f"{WAITING}-1"]
    assert cli(tmp_path, "db", "audit", "--config", cfg).returncode == 0


def test_a_restore_says_when_the_ledger_it_put_back_is_not_sound(tmp_path: Path) -> None:
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    _database_with_a_waiting_image(tmp_path, db)
    cfg = str(tmp_path / "config.toml")
    assert cli(tmp_path, "db", "backup", str(copy), "--config", cfg).returncode == 0
    with _open(copy) as conn:  # a charge with no reservation behind it
        conn.execute(
            "INSERT INTO ledger (guild_id, user_id, job_id, kind, units, window_at, created_at)"
            " VALUES (1, 2, ?, 'commit', 1, 0, 0)",
            (DELIVERED,),
        )
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg)
    assert result.returncode == 0, result.stderr  # put back all the same: it is the copy the operator chose
    assert "its ledger: 1 fault(s) or an imbalance: run `bananacord db audit` to see them" in result.stdout


# ---- databases SQLite cannot read, and copies stopped half way ------------------------------------------


def _malformed(db: Path) -> None:
    """The header and first page whole, every page after overwritten: SQLite opens the file and then finds it
    "malformed" (a disk that lost sectors). One file first, so no WAL holds the pages the damage misses."""
    with _open(db) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    data = bytearray(db.read_bytes())
    data[2 * 4096 :] = b"\x5a" * (len(data) - 2 * 4096)
    db.write_bytes(bytes(data))


def _emptied(db: Path) -> None:
    db.write_bytes(b"")  # a database file truncated (or made by a `touch`): SQLite reads it as empty


def _never_migrated(db: Path) -> None:
    for leftover in db.parent.glob(f"{db.name}*"):
        if leftover.is_file() and leftover.name != db.name:
            leftover.unlink()
    db.unlink()
    with _open(db) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")  # SQLite's, but not the bot's: no jobs table


DAMAGES = {"malformed": _malformed, "empty": _emptied, "never-migrated": _never_migrated}


def _asides(tmp_path: Path) -> list[Path]:
    return sorted(p for p in tmp_path.glob("bot.sqlite3.before-restore-*") if p.is_file())


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_restore_over_a_database_sqlite_cannot_read_moves_it_aside_and_restores(tmp_path: Path, damage: str) -> None:
    """The README's promise: a damaged database is moved aside as it is and the copy put in its place. Before,
    a malformed one ("database disk image is malformed") and an empty or unmigrated one ("no such table:
    jobs") ended the restore in a traceback, nothing restored and a stray before-restore file left each try."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    files = _database_with_a_waiting_image(tmp_path, db)
    cfg = str(tmp_path / "config.toml")
    assert cli(tmp_path, "db", "backup", str(copy), "--config", cfg).returncode == 0
    DAMAGES[damage](db)
    damaged = db.read_bytes()
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (aside,) = _asides(tmp_path)  # one, not one per try
    assert f"the database it replaced could not be copied (cannot copy {db}: " in result.stdout
    assert f"moved as it was to {aside}" in result.stdout
    assert aside.read_bytes() == damaged
    assert _ids(db) == [WAITING, DELIVERED]
    assert (tmp_path / "bot.sqlite3.results" / f"{WAITING}-1").read_bytes() == files[f"{WAITING}-1"]
    assert cli(tmp_path, "db", "audit", "--config", cfg).returncode == 0


@pytest.mark.parametrize(
    ("damage", "why"),
    [("malformed", "SQLite cannot read it (database disk image is malformed)"), ("empty", "no such table: jobs")],
)
def test_a_backup_of_a_database_sqlite_cannot_read_is_one_line_and_leaves_nothing(
    tmp_path: Path, damage: str, why: str
) -> None:
    """Before: a traceback, and the half-made copy left behind (the next try said it "already exists")."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    _database_with_a_waiting_image(tmp_path, db)
    DAMAGES[damage](db)
    for _ in range(2):  # the second try meets the same fault, not a leftover of the first
        result = cli(tmp_path, "db", "backup", str(copy), "--config", str(tmp_path / "config.toml"))
        assert result.returncode == 1
        line = one_line(result.stderr)
        assert line.startswith(f"bananacord: cannot copy {db}: ") and why in line, line
        assert sorted(p.name for p in tmp_path.glob("copy.sqlite3*")) == []


def test_a_backup_of_a_database_path_that_is_a_folder_leaves_no_empty_file(tmp_path: Path) -> None:
    """Before: "unable to open database file", and an empty copy left behind: the next try said "already
    exists"."""
    folder, copy = tmp_path / "a-folder", tmp_path / "copy.sqlite3"
    folder.mkdir()
    cfg = str(config(tmp_path, db=folder))
    for _ in range(2):
        result = cli(tmp_path, "db", "backup", str(copy), "--config", cfg)
        assert result.returncode == 1
        assert one_line(result.stderr) == f"bananacord: cannot read {folder}: it is not a file"
        assert not copy.exists()


def _lock_is_free(db: Path) -> bool:
    fd = os.open(f"{db}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing lets go of a lock taken here
    return True


def _size_of_database_files(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(f"{db.name}*") if p.is_file())


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_restore_stopped_while_it_copies_keeps_the_lock_until_the_copy_is_undone(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """Ctrl-C (or `docker stop`) while a restore writes the copy into the database: the database's lock is
    held until the copy's thread is through, the copy is rolled back, and one line says the database is as it
    was. Before, Ctrl-C let the lock go at once while the thread went on writing the database (a bot could
    start on it meanwhile), and exited 130 saying nothing; SIGTERM killed it mid-copy and left its
    before-restore file."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    _database_with_a_waiting_image(tmp_path, db)
    cfg = str(tmp_path / "config.toml")
    assert cli(tmp_path, "db", "backup", str(copy), "--config", cfg).returncode == 0
    with _open(copy) as conn:  # big enough that the copy takes a second or more
        conn.execute("CREATE TABLE ballast (b BLOB)")
        conn.executemany("INSERT INTO ballast VALUES (randomblob(1000000))", [()] * 256)
    before = _ids(db)
    size = _size_of_database_files(db)
    with subprocess.Popen(
        [sys.executable, "-m", "bot", "db", "restore", str(copy), "--config", cfg],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    ) as proc:
        deadline = time.monotonic() + 30
        # The copy is being written into the database (its WAL grows): stop it there.
        while _size_of_database_files(db) < size + 20_000_000 and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert proc.poll() is None, "the restore ended before it could be stopped"
        proc.send_signal(stop)
        while proc.poll() is None:
            if _lock_is_free(db) and proc.poll() is None:
                # Let go as the process ends (it is still tidying up): only once the copy was undone.
                assert _asides(tmp_path) == [], "the lock was let go while the restore was still running"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stdout, stderr = proc.communicate()
    assert proc.returncode == 130, stderr
    assert stdout == ""
    assert one_line(stderr) == f"bananacord: stopped before anything was changed: {db} is as it was, nothing restored"
    assert _ids(db) == before
    with _open(db) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'ballast'").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert _asides(tmp_path) == [] and not list(tmp_path.glob("*before-restore*"))
