"""`bananacord db backup` and `db restore` when a copy cannot be written (a full disk, a file size limit), and
what they make of a read-only copy and of a mistyped `[database] path` (bot/db_copy.py, bot/db_cli.py).

A full disk is simulated with RLIMIT_FSIZE on the CLI's process (every write past the limit fails, EFBIG:
SQLite says "disk I/O error"), and, where the tests may mount, with a small tmpfs in a mount namespace of
the CLI's own (ENOSPC: "database or disk is full"), as the reviewer reproduced it."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store import latest_schema_version
from tests.test_cli import cli, config, one_line
from tests.test_db_copies import _asides, _disk_full_past, _ids, _open, new_database

# A file size limit below the database and its copy: neither can be written whole.
LIMIT = 1_000_000


def _fill(db: Path, *, jobs: int, prompt_bytes: int = 10_000) -> None:
    """Unfinished jobs with long requests: a database of about ``jobs * prompt_bytes`` bytes."""
    with _open(db) as conn:
        conn.executemany(
            "INSERT INTO jobs (id, state, provider, model, request_json, deadline_at, created_at, updated_at)"
            " VALUES (?, 'queued', 'seaart', 'nano_banana_2', ?, 0, 0, 0)",
            [(f"job{n:05d}", '{"prompt":"' + "x" * prompt_bytes + '"}') for n in range(jobs)],
        )


def _big_database_and_copy(tmp_path: Path) -> tuple[Path, Path, str]:
    """A database of about 2 MB (pending jobs: what a lost database loses) and a copy of it, each past
    LIMIT; returns them and the config's path."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    new_database(tmp_path, db)
    _fill(db, jobs=200)
    cfg = str(tmp_path / "config.toml")
    assert cli(tmp_path, "db", "backup", str(copy), "--config", cfg).returncode == 0
    assert db.stat().st_size > 2 * LIMIT and copy.stat().st_size > 2 * LIMIT
    return db, copy, cfg


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _database_files(tmp_path: Path) -> list[str]:
    """The files of the database at tmp_path/bot.sqlite3 (its lock file aside: any `db` command makes it)."""
    return sorted(p.name for p in tmp_path.glob("bot.sqlite3*") if p.name != "bot.sqlite3.lock")


# ---- a restore that cannot write: the database stays where it is --------------------------------------


def test_a_restore_with_no_room_to_keep_the_database_it_replaces_changes_nothing(tmp_path: Path) -> None:
    """The backup of the database that a restore takes first does not fit. Before, that counted as "SQLite
    cannot read it": the database was renamed to ``.before-restore-<time>``, the copy then did not fit either,
    and `[database] path` was left empty (the next `run` made a new, empty database)."""
    db, copy, cfg = _big_database_and_copy(tmp_path)
    before, jobs = _digest(db), _ids(db)
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg, preexec=_disk_full_past(LIMIT))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith("bananacord: cannot keep a copy of the database it replaces; nothing was changed: "), line
    assert f"{db} is as it was, nothing restored" in line
    assert "disk I/O error" in line and "SQLite cannot read it" not in line
    assert f"the fault is in writing the copy, not in reading {db}" in line
    assert _digest(db) == before and _ids(db) == jobs
    assert _asides(tmp_path) == [] and _database_files(tmp_path) == ["bot.sqlite3"]
    status = cli(tmp_path, "db", "status", "--config", cfg)
    assert status.returncode == 0 and "queued     200" in status.stdout, status.stdout + status.stderr


def test_a_damaged_database_moved_aside_comes_back_when_the_copy_cannot_take_its_place(tmp_path: Path) -> None:
    """A database SQLite cannot read is moved aside as it is; when the copy then cannot be written in its
    place, it is moved back. Before, the restore failed with it still aside: no database at the path."""
    db, copy, cfg = _big_database_and_copy(tmp_path)
    damaged = b"garbage where the header was" + db.read_bytes()[28 : LIMIT // 2]
    db.write_bytes(damaged)
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg, preexec=_disk_full_past(LIMIT))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith(f"bananacord: cannot put {copy} in place of {db}; nothing was changed: "), line
    assert f"{db} is as it was, nothing restored" in line and "disk I/O error" in line
    assert db.read_bytes() == damaged
    assert _asides(tmp_path) == [] and _database_files(tmp_path) == ["bot.sqlite3"]
    # Room again: the restore goes through, and moves the damaged database aside as before.
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg)
    assert result.returncode == 0, result.stderr
    assert "the database it replaced could not be copied" in result.stdout
    (aside,) = _asides(tmp_path)
    assert aside.read_bytes() == damaged and len(_ids(db)) == 200


def test_a_restore_whose_copy_does_not_fit_keeps_the_database_and_no_second_copy_of_it(tmp_path: Path) -> None:
    """The backup of a small database fits, the copy put in its place does not: SQLite rolls the copy back,
    and the backup (a second copy of an unchanged database) goes. Before: "cannot copy <copy> to <db>: SQLite
    cannot read it (disk I/O error)", and the backup left beside the database."""
    _, copy, cfg = _big_database_and_copy(tmp_path)
    small = tmp_path / "small.sqlite3"
    new_database(tmp_path, small)
    _fill(small, jobs=3)
    before, jobs = _digest(small), _ids(small)
    cfg = str(config(tmp_path, db=small))
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg, preexec=_disk_full_past(LIMIT))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith(f"bananacord: cannot put {copy} in place of {small}; nothing was changed: "), line
    assert f"cannot write {small}: its disk refused a write (disk I/O error" in line
    assert "SQLite cannot read it" not in line
    assert _digest(small) == before and _ids(small) == jobs
    assert not list(tmp_path.glob("small.sqlite3.before-restore-*"))
    assert not list(tmp_path.glob("small.sqlite3-*"))  # no journal left to play back


# ---- a backup that cannot write: the database is not blamed ----------------------------------------------


def test_a_backup_onto_a_disk_that_refuses_writes_blames_the_copy_not_the_database(tmp_path: Path) -> None:
    """Before: "cannot copy <db> to <copy>: SQLite cannot read it (disk I/O error)": the operator was told
    their live database could not be read."""
    db, _, cfg = _big_database_and_copy(tmp_path)
    target = tmp_path / "bk.sqlite3"
    result = cli(tmp_path, "db", "backup", str(target), "--config", cfg, preexec=_disk_full_past(LIMIT))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line == (
        f"bananacord: cannot write {target}: its disk refused a write (disk I/O error: a full disk, a file size"
        f" limit or a failing disk); the fault is in writing the copy, not in reading {db}"
    )
    assert not list(tmp_path.glob("bk.sqlite3*"))


# ---- the same on a full disk (ENOSPC), where mounts are allowed ------------------------------------------


def _on_a_small_disk(tmp_path: Path, size: str, script: str) -> str:
    """Run ``script`` (bash) with $DISK a tmpfs of ``size`` mounted in a mount namespace of its own (gone
    with it: nothing to unmount) and $CLI the CLI; returns its output. Skips where no mount can be made."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to make a mount namespace")
    disk = tmp_path / "disk"
    disk.mkdir()
    setup = (
        f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(disk))} || exit 97\n"
        f"DISK={shlex.quote(str(disk))}\nCLI='{shlex.quote(sys.executable)} -m bot'\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BANANACORD_") and not k.endswith("_API_KEY")}
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", setup + script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**clean, "DISCORD_TOKEN": "cli-token", "SEAART_API_KEY": "cli-key"},
        timeout=120,
    )
    if result.returncode == 97 or "unshare failed" in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_restore_on_a_full_disk_says_no_room_and_leaves_the_database(tmp_path: Path) -> None:
    """The reviewer's case: a database of 2 MB on a 3 MB disk, restored from a copy elsewhere."""
    db, copy, _ = _big_database_and_copy(tmp_path)
    on_disk = tmp_path / "disk" / "bot.sqlite3"
    cfg = config(tmp_path, db=on_disk)
    out = _on_a_small_disk(
        tmp_path,
        "3m",
        f"cp {shlex.quote(str(db))} $DISK/bot.sqlite3 && sha256sum $DISK/bot.sqlite3 | cut -c1-64\n"
        f"$CLI db restore {shlex.quote(str(copy))} --config {shlex.quote(str(cfg))} 2>&1; echo rc=$?\n"
        f"sha256sum $DISK/bot.sqlite3 | cut -c1-64; ls $DISK\n"
        f"$CLI db status --config {shlex.quote(str(cfg))} 2>&1; echo rc=$?\n",
    )
    lines = out.splitlines()
    before, said, rc, after = lines[:4]
    assert said.startswith(
        "bananacord: no room (disk full) to keep a copy of the database it replaces; nothing was changed: "
        f"{on_disk} is as it was, nothing restored"
    ), said
    assert "database or disk is full" in said and said.endswith("Make room and restore again")
    assert rc == "rc=1" and after == before
    assert lines[4:6] == ["bot.sqlite3", "bot.sqlite3.lock"], out  # no before-restore file
    assert f"{on_disk}: schema version {latest_schema_version()}" in out and "queued     200" in out
    assert lines[-1] == "rc=0", out


def test_a_backup_onto_a_full_disk_says_no_room_there(tmp_path: Path) -> None:
    db, _, cfg = _big_database_and_copy(tmp_path)
    out = _on_a_small_disk(
        tmp_path, "1m", f"$CLI db backup $DISK/bk.sqlite3 --config {shlex.quote(cfg)} 2>&1; echo rc=$?\nls -A $DISK\n"
    )
    target = tmp_path / "disk" / "bk.sqlite3"
    assert out.splitlines() == [
        f"bananacord: cannot write {target}: no room on its disk (database or disk is full); the fault is in"
        f" writing the copy, not in reading {db}",
        "rc=1",
    ]


# ---- a read-only copy ------------------------------------------------------------------------------------


def test_a_database_put_back_from_a_read_only_copy_can_be_written_by_its_owner(tmp_path: Path) -> None:
    """A copy kept read-only (0444) restored after the database was lost: the database keeps the copy's read
    bits and its owner may write it. Before, it was made 0444 too: the restore said it was done, then the bot
    refused to start on it ("is read-only") for any user but root."""
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    new_database(tmp_path, db)
    _fill(db, jobs=2, prompt_bytes=10)
    cfg = str(tmp_path / "config.toml")
    assert cli(tmp_path, "db", "backup", str(copy), "--config", cfg).returncode == 0
    copy.chmod(0o444)
    for lost in tmp_path.glob("bot.sqlite3*"):
        shutil.rmtree(lost) if lost.is_dir() else lost.unlink()
    result = cli(tmp_path, "db", "restore", str(copy), "--config", cfg)
    assert result.returncode == 0, result.stderr
    assert db.stat().st_mode & 0o777 == 0o644
    assert copy.stat().st_mode & 0o777 == 0o444  # the copy itself is left as it was
    assert _ids(db) == ["job00000", "job00001"]
    # A backup of a read-only database, too, is a file its owner can write (and remove the journal of).
    again = tmp_path / "again.sqlite3"
    db.chmod(0o440)
    assert cli(tmp_path, "db", "backup", str(again), "--config", cfg).returncode == 0
    assert again.stat().st_mode & 0o777 == 0o640


# ---- `db migrate` on a mistyped path ---------------------------------------------------------------------


def test_db_migrate_makes_no_database_where_there_is_none(tmp_path: Path) -> None:
    """A mistyped `[database] path`: `status`, `audit` and `backup` said "no database at ..."; `migrate` made a
    new, empty one there ("schema version N (up to date)"), with its lock file, and exited 0. The bot makes
    its database at its first start; `migrate` only brings an existing one up to date."""
    typo = tmp_path / "typo.sqlite3"
    result = cli(tmp_path, "db", "migrate", "--config", str(config(tmp_path, db=typo)))
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"bananacord: no database at {typo} (set database.path in the config the bot runs with; the bot creates"
        " its database itself, at its first start)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]
    # A file that is there is migrated as before (here an empty one: SQLite reads it as a new database).
    typo.touch()
    migrated = cli(tmp_path, "db", "migrate", "--config", str(config(tmp_path, db=typo)))
    assert migrated.returncode == 0, migrated.stderr
    assert f"{typo}: schema version {latest_schema_version()} (up to date)" in migrated.stdout
