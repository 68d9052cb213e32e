"""Copies of the database, made and put back from the shell: `bananacord db backup FILE` and `db restore FILE`.

A copy is the database and the images waiting beside it. Gemini's and Segmind v1's results are written to
``<database>.results/`` until they are delivered (bot/result_files.py), and an unfinished job's row names
its file there; a copy of the database alone would restore those jobs with their images gone (failed,
"The image was lost before it could be posted", and refunded though the provider had billed them). So a
backup also copies the files its copy's rows name, to ``<FILE>.results/``, and a restore puts them back.

The database is copied with SQLite's online backup, which reads a consistent snapshot while the bot may be
writing (a plain copy of the file could catch a page half written, or miss what is still in the WAL).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.errors import BananacordError
from bot.result_files import ResultFiles
from bot.store import latest_schema_version
from bot.store.jobs import ACTIVE_STATES, JOBS_NAMING_RESULT_FILES


@dataclass(frozen=True)
class Copied:
    files: int  # result files copied beside the copy
    # Unfinished jobs of the copy whose images are not beside the database they now serve: ended while the
    # copy was made (a job's files go as it ends), or lost before; a bot started on that database fails them.
    ended: int
    unfinished: int  # jobs the copy holds unfinished: a bot started on it resumes them


def backup(source: Path, to: Path) -> Copied:
    """A consistent copy of the database ``source`` in the new file ``to``, and its waiting images."""
    files = ResultFiles.beside(to)
    if to.exists():
        raise BananacordError(f"{to} already exists: name a new file for the copy")
    if files.directory.exists():
        raise BananacordError(f"{files.directory} already exists: name a new file for the copy")
    if not to.parent.is_dir():
        raise BananacordError(f"cannot write {to}: {to.parent} is not a folder")
    _create_like(source, to)
    _copy_database(source, to, remove_on_failure=True)
    # The copy inherits the database's WAL mode; a copy is one file to move around, without -wal and -shm.
    conn = sqlite3.connect(to)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    try:
        return _copy_files(source, to)
    except BananacordError:
        # A copy without the images its jobs wait on is not the backup asked for (a full disk, say).
        to.unlink(missing_ok=True)
        shutil.rmtree(files.directory, ignore_errors=True)
        raise


@dataclass(frozen=True)
class Overtaken:
    """How far the database a restore replaced had moved on from the copy: what the copy cannot know."""

    # Jobs the copy holds unfinished that had ended there since: a bot started on the copy runs them again,
    # from where the copy has them.
    ended_since: int
    # Jobs unfinished there that the copy does not hold (made after it): nothing will settle them, and their
    # members' messages stay as they are.
    not_in_copy: int


@dataclass(frozen=True)
class Restored:
    copied: Copied
    aside: Path | None  # where the database it replaced is kept (None: there was none)
    unreadable: str | None  # why that database could not be copied, so was moved aside as it was
    overtaken: Overtaken | None = None  # None: no readable database was replaced


def restore(source: Path, into: Path, *, now: datetime) -> Restored:
    """Put the copy ``source`` in the place of the database ``into``, with its waiting images. The caller
    holds ``into``'s lock (no bot runs on it). The database replaced is kept first, as a backup beside
    it, so a restore of the wrong file can itself be undone."""
    if source.exists() and into.exists() and source.samefile(into):
        raise BananacordError(f"{source} is the database itself: name the copy to put back")
    _check_copy(source)
    aside, unreadable = None, None
    if into.exists():
        aside = _aside_name(into, now)
        try:
            backup(into, aside)
        except BananacordError as exc:
            # A database SQLite cannot read (damaged: the very case for a restore), or no room for a copy: it
            # is moved aside as it is, its journal files with it, and the copy goes into a new file.
            unreadable = exc.user_message
            _move_aside(into, aside)
    created = not into.exists()
    if created:
        _create_like(source, into)  # a database lost with its disk (or moved aside): as private as its copy
    # Written through SQLite into the database's own file, in one transaction: a failure leaves it whole.
    try:
        _copy_database(source, into, remove_on_failure=created)
    except BananacordError as exc:
        raise BananacordError(exc.user_message + _kept(aside)) from None
    # An older copy's schema is brought up to date by the bot's next start, as after any upgrade.
    try:
        copied = _copy_files(source, into)
    except BananacordError as exc:
        raise BananacordError(
            f"{source} was put back as {into}, but {exc.user_message}{_kept(aside)}. Make room and restore again"
        ) from None
    overtaken = _overtaken(into, aside) if aside is not None and unreadable is None else None
    return Restored(copied, aside, unreadable, overtaken)


def _overtaken(restored: Path, replaced: Path) -> Overtaken:
    """Compare the copy just put back with the database it replaced (kept aside, one file in DELETE journal
    mode, so reading it leaves nothing beside it): a restore after a loss finds nothing newer, one of an old
    copy over a working database finds what it is about to forget."""
    marks = ",".join("?" * len(ACTIVE_STATES))
    conn = open_existing(restored)
    try:
        conn.execute("ATTACH DATABASE ? AS replaced", (str(replaced),))
        ended = conn.execute(
            f"SELECT COUNT(*) FROM main.jobs AS c JOIN replaced.jobs AS r ON r.id = c.id"
            f" WHERE c.state IN ({marks}) AND r.state NOT IN ({marks})",
            ACTIVE_STATES * 2,
        ).fetchone()
        missing = conn.execute(
            f"SELECT COUNT(*) FROM replaced.jobs AS r WHERE r.state IN ({marks})"
            " AND NOT EXISTS (SELECT 1 FROM main.jobs AS c WHERE c.id = r.id)",
            ACTIVE_STATES,
        ).fetchone()
        conn.execute("DETACH DATABASE replaced")
    finally:
        conn.close()
    return Overtaken(ended_since=int(ended[0]), not_in_copy=int(missing[0]))


def _kept(aside: Path | None) -> str:
    return f"; the database it replaced is kept as {aside}" if aside is not None else ""


def _move_aside(database: Path, aside: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        moved = database.with_name(database.name + suffix)
        if moved.exists():
            os.replace(moved, aside.with_name(aside.name + suffix))


def _aside_name(into: Path, now: datetime) -> Path:
    """``<database>.before-restore-<UTC time>``, numbered should a restore of the same second have taken it."""
    stem = f"{into.name}.before-restore-{now.strftime('%Y%m%dT%H%M%SZ')}"
    aside, n = into.with_name(stem), 1
    while aside.exists() or ResultFiles.beside(aside).directory.exists():
        n += 1
        aside = into.with_name(f"{stem}-{n}")
    return aside


def _create_like(source: Path, to: Path) -> None:
    """Create ``to`` empty (SQLite fills an empty file as a new database) with ``source``'s permissions: the
    database holds members' prompts and Discord's interaction tokens, and a copy must be no easier to read
    than the original, whatever the umask of whoever runs the backup."""
    mode = source.stat().st_mode & 0o777
    try:
        fd = os.open(to, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise BananacordError(f"{to} already exists: name a new file for the copy") from None
    except OSError as exc:
        raise BananacordError(f"cannot write {to}: {exc.strerror}") from None
    try:
        os.fchmod(fd, mode)  # exactly the database's: the umask may have taken bits away from os.open's
    finally:
        os.close(fd)


def _check_copy(source: Path) -> None:
    """Make sure ``source`` is a whole Bananacord database this code can run, before anything is replaced."""
    if not source.is_file():
        raise BananacordError(f"no copy at {source}")
    try:
        conn = open_existing(source)
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            has_jobs = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BananacordError(f"{source} is not a database this bot can restore: {exc}") from None
    if check is None or check[0] != "ok":
        raise BananacordError(f"{source} is damaged (SQLite's check: {check[0] if check else 'no answer'})")
    if version == 0 or has_jobs is None:
        raise BananacordError(f"{source} is not a Bananacord database")
    if version > latest_schema_version():
        raise BananacordError(
            f"{source} was made by a newer bananacord (schema version {version}; this one knows "
            f"{latest_schema_version()}): restore it with that version"
        )


def open_existing(path: Path) -> sqlite3.Connection:
    """A connection to a database that must exist (a typo names no new empty one). Not read-only: a read-only
    connection to a WAL database (the bot's, and copies made before they left WAL mode) leaves its -wal and
    -shm behind; this one only reads, and as the last one open it tidies them away as it closes."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)


def _copy_database(source: Path, to: Path, *, remove_on_failure: bool) -> None:
    try:
        reader = open_existing(source)
    except sqlite3.Error as exc:
        raise BananacordError(f"cannot read {source}: {exc}") from None
    try:
        copy = sqlite3.connect(to)
        try:
            reader.backup(copy)
        finally:
            copy.close()
    except sqlite3.Error as exc:
        if remove_on_failure:
            to.unlink(missing_ok=True)
        raise BananacordError(f"cannot copy {source} to {to}: {exc}") from None
    finally:
        reader.close()


def _copy_files(source: Path, to: Path) -> Copied:
    """The result files that the database ``to`` (just copied from ``source``) names, copied beside it."""
    conn = open_existing(to)
    try:
        named = [str(row[0]) for row in conn.execute(JOBS_NAMING_RESULT_FILES, ACTIVE_STATES)]
        marks = ",".join("?" * len(ACTIVE_STATES))
        count = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})", ACTIVE_STATES).fetchone()
        unfinished = int(count[0])
    finally:
        conn.close()
    folder = ResultFiles.beside(to)
    try:
        copied = ResultFiles.beside(source).copy_to(folder, named)
    except OSError as exc:
        raise BananacordError(f"cannot copy the images waiting beside {source}: {exc.strerror or exc}") from None
    # Judged where the images now are: a restore's folder may hold some already (the database it replaced
    # was waiting on the same jobs), and the bot will find them there.
    return Copied(files=copied, ended=len(folder.lacking(named)), unfinished=unfinished)
