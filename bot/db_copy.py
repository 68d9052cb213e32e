"""Copies of the database, made and put back from the shell: `bananacord db backup FILE` and `db restore FILE`.

A copy is the database and the images waiting beside it. Gemini's and Segmind v1's results are written to
``<database>.results/`` until they are delivered (bot/result_files.py), and an unfinished job's row names
its file there; a copy of the database alone would restore those jobs with their images gone (failed,
"The image was lost before it could be posted", and refunded though the provider had billed them). So a
backup also copies the files its copy's rows name, to ``<FILE>.results/``, and a restore puts them back.

The database is copied with SQLite's online backup, which reads a consistent snapshot while the bot may be
writing (a plain copy of the file could catch a page half written, or miss what is still in the WAL).

A copy that fails (a damaged database, one that is not Bananacord's, a full disk) or is stopped (Ctrl-C,
SIGTERM: the caller sets ``stop``) leaves nothing half made behind, and says in one line what state it left,
and whose fault it was: a database that cannot be read (Unreadable) is not a copy that cannot be written
(CopyNotWritten), and only the first is a reason for a restore to move the database aside as it is.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.errors import BananacordError
from bot.result_files import ResultFiles
from bot.store import latest_schema_version
from bot.store.jobs import ACTIVE_STATES, JOBS_NAMING_RESULT_FILES


class CopyStopped(BananacordError):
    """A stop signal (Ctrl-C, SIGTERM) ended a backup or restore before it was done; the message says what
    state it left the database in. The CLI exits 130, as for any interrupted command."""

    exit_code = 130


class Unreadable(BananacordError):
    """The database being copied cannot be read: damaged, not a database, not Bananacord's (or not yet). The
    one failure of the backup a restore takes first that lets it move the database aside as it is."""


class CopyNotWritten(BananacordError):
    """The copy's own files could not be written (a full disk, a file size limit, a failing disk, a read-only
    file): nothing is wrong with the database copied. ``no_room``: for want of room (a full disk, a quota,
    a file size limit)."""

    def __init__(self, message: str, *, no_room: bool) -> None:
        super().__init__(message)
        self.no_room = no_room


def _not_written(to: Path, why: str, *, no_room: bool, source: Path | None = None) -> CopyNotWritten:
    blame = f"; the fault is in writing the copy, not in reading {source}" if source is not None else ""
    return CopyNotWritten(f"cannot write {to}: {why}{blame}", no_room=no_room)


# What SQLite answers when a write of the copy (its file or its journal) failed, as opposed to a read of the
# database it copies: a full disk (SQLITE_FULL: "database or disk is full"); a write, sync or truncation
# refused ("disk I/O error": a file size limit, EFBIG, or a failing disk; SQLite says SQLITE_FULL only for
# ENOSPC); a file that cannot be written at all.
_NO_ROOM_CODES = frozenset({sqlite3.SQLITE_FULL})
_WRITE_CODES = frozenset(
    {
        sqlite3.SQLITE_IOERR_WRITE,
        sqlite3.SQLITE_IOERR_FSYNC,
        sqlite3.SQLITE_IOERR_DIR_FSYNC,
        sqlite3.SQLITE_IOERR_TRUNCATE,
        sqlite3.SQLITE_IOERR_DELETE,
    }
)
_READ_ONLY_CODE = sqlite3.SQLITE_READONLY
# And what it answers when the database copied cannot be read: damaged pages, a file that is not a database,
# a disk that fails a read.
_UNREADABLE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_UNREADABLE_IOERRS = frozenset({sqlite3.SQLITE_IOERR_READ, sqlite3.SQLITE_IOERR_SHORT_READ})
# What an OSError writing a copy says when the disk (or the process's file size limit, or a quota) is full.
_NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


def _codes(exc: sqlite3.Error) -> tuple[int, int]:
    """SQLite's extended result code of ``exc`` and its primary code (-1 for an error not SQLite's own)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return -1, -1
    return code, code & 0xFF


def _write_fault(exc: sqlite3.Error) -> tuple[str, bool] | None:
    """Why writing the copy failed, and whether for want of room; None if ``exc`` is no write's fault."""
    extended, primary = _codes(exc)
    if primary in _NO_ROOM_CODES:
        return f"no room on its disk ({exc})", True
    if extended in _WRITE_CODES:
        return f"its disk refused a write ({exc}: a full disk, a file size limit or a failing disk)", False
    if primary == _READ_ONLY_CODE:
        return f"it cannot be written ({exc})", False
    return None


def _read_fault(exc: sqlite3.Error) -> bool:
    extended, primary = _codes(exc)
    return primary in _UNREADABLE_CODES or extended in _UNREADABLE_IOERRS


# A restore copies in steps of this many pages (4 MiB at SQLite's default page size) and checks for a stop
# between them: SQLite rolls a copy abandoned between steps back, so a stop leaves the database as it was
# rather than wait for the whole copy. `db backup` copies in one step instead: the bot may write meanwhile,
# and SQLite starts a stepped copy over after each write of another connection (never finishing under a
# busy bot); no database is replaced there, so waiting for that one step is harmless.
STEP_PAGES = 1024
# SQLite virtual machine instructions between two looks for a stop while a copy is checked (quick_check).
CHECK_STOP_EVERY = 100_000


@dataclass(frozen=True)
class Copied:
    files: int  # result files copied beside the copy
    # Unfinished jobs of the copy whose images are not beside the database they now serve: ended while the
    # copy was made (a job's files go as it ends), or lost before; a bot started on that database fails them.
    ended: int
    unfinished: int  # jobs the copy holds unfinished: a bot started on it resumes them


def backup(source: Path, to: Path, *, stop: threading.Event | None = None, stepwise: bool = False) -> Copied:
    """A consistent copy of the database ``source`` in the new file ``to``, and its waiting images.

    ``stop`` set meanwhile ends it with CopyStopped (between steps if ``stepwise``, else once the one step
    is done); then, as on any failure, nothing is left at ``to``."""
    files = ResultFiles.beside(to)
    if to.exists():
        raise BananacordError(f"{to} already exists: name a new file for the copy")
    if files.directory.exists():
        raise BananacordError(f"{files.directory} already exists: name a new file for the copy")
    if not to.parent.is_dir():
        raise BananacordError(f"cannot write {to}: {to.parent} is not a folder")
    if not source.is_file():
        # Checked before the copy's file is made: a folder (or a device) named as the database left an empty
        # file behind, and the next try said it "already exists".
        raise Unreadable(f"cannot read {source}: it is not a file")
    _create_like(source, to)
    try:
        _copy_database(source, to, stop=stop, stepwise=stepwise)
        _stop_point(stop, f"stopped before the copy was whole: nothing was left at {to}")
        _finish_copy(source, to, stop)
        _stop_point(stop, f"stopped before the copy was whole: nothing was left at {to}")
        return _copy_files(source, to)
    except BaseException:
        # Whatever ended it (a damaged database, a full disk, a stop, even an error of our own), a copy that
        # is not whole is not the backup asked for, and would make the next try say it "already exists".
        _remove_database(to)
        shutil.rmtree(files.directory, ignore_errors=True)
        raise


def _finish_copy(source: Path, to: Path, stop: threading.Event | None) -> None:
    """Make the fresh copy ``to`` one file and prove it whole. SQLite's backup copies pages as they are, so a
    damaged database makes a damaged copy without a word: the check finds it here, where it is still a
    failed backup, not at the restore that needed it."""
    try:
        conn = sqlite3.connect(to)
        try:
            # The copy inherits the database's WAL mode; a copy is one file to move around, without -wal and -shm.
            conn.execute("PRAGMA journal_mode=DELETE")
            _mind_stop(conn, stop)
            check = conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        _stop_point(stop, f"stopped before the copy was whole: nothing was left at {to}")
        if _read_fault(exc):  # the copy's pages are the database's: damaged there
            raise Unreadable(f"cannot copy {source}: {_unreadable(exc)}") from None
        # Only the copy is open here: anything else is the copy's own file failing (its journal, its WAL).
        why, no_room = _write_fault(exc) or (f"SQLite could not finish it ({exc})", False)
        raise _not_written(to, why, no_room=no_room, source=source) from None
    if check is None or check[0] != "ok":
        raise Unreadable(
            f"cannot copy {source}: it is damaged (SQLite's check of the copy: {check[0] if check else 'no answer'})"
        )


def _stop_point(stop: threading.Event | None, state: str) -> None:
    if stop is not None and stop.is_set():
        raise CopyStopped(state)


def _mind_stop(conn: sqlite3.Connection, stop: threading.Event | None) -> None:
    """A long statement on ``conn`` (a quick_check of a big file) is interrupted once ``stop`` is set."""
    if stop is not None:
        conn.set_progress_handler(lambda: 1 if stop.is_set() else 0, CHECK_STOP_EVERY)


def _unreadable(exc: sqlite3.Error) -> str:
    """Why SQLite could not read a database, in the operator's words."""
    text = str(exc)
    if "no such table" in text:
        return f"it is not a Bananacord database, or not one yet ({text})"
    return f"SQLite cannot read it ({text})"


def _remove_database(path: Path) -> None:
    """A database file made here, with whatever SQLite left beside it."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


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


def restore(source: Path, into: Path, *, now: datetime, stop: threading.Event | None = None) -> Restored:
    """Put the copy ``source`` in the place of the database ``into``, with its waiting images. The caller
    holds ``into``'s lock (no bot runs on it). The database replaced is kept first, as a backup beside
    it, so a restore of the wrong file can itself be undone. ``stop`` set before the copy is in place ends
    it with CopyStopped, ``into`` left as it was; once in place, the restore is finished."""
    if source.exists() and into.exists() and source.samefile(into):
        raise BananacordError(f"{source} is the database itself: name the copy to put back")
    unchanged = f"stopped before anything was changed: {into} is as it was, nothing restored"
    try:
        _check_copy(source, stop)
    except CopyStopped:
        raise CopyStopped(unchanged) from None
    _stop_point(stop, unchanged)
    # What a failure before the copy is in place leaves: the database as it was (or still none).
    as_it_was = (
        f"nothing was changed: {into} is as it was, nothing restored"
        if into.exists()
        else f"nothing was changed: there is still no database at {into}, nothing restored"
    )
    aside, unreadable = None, None
    if into.exists():
        aside = _aside_name(into, now)
        try:
            # Stepwise: nothing else writes ``into`` (its lock is ours), so the copy is never started over.
            backup(into, aside, stop=stop, stepwise=True)
        except CopyStopped:
            raise CopyStopped(unchanged) from None
        except Unreadable as exc:
            # A database SQLite cannot read (damaged: the very case for a restore) or not Bananacord's: it is
            # moved aside as it is, its journal files with it, and the copy goes into a new file.
            unreadable = exc.user_message
            _move_aside(into, aside)
        except BananacordError as exc:
            # Anything else (no room for the copy, a disk refusing writes, an image that cannot be copied) says
            # nothing against the database, and a restore without its backup could not be undone: it stays as it
            # is. Before, a full disk counted as "cannot read": the database was moved aside, the copy then failed
            # for want of the same room, and the configured path was left with no database at all.
            if isinstance(exc, CopyNotWritten) and exc.no_room:
                raise BananacordError(
                    f"no room (disk full) to keep a copy of the database it replaces; {as_it_was}"
                    f" ({exc.user_message}). Make room and restore again"
                ) from None
            raise BananacordError(
                f"cannot keep a copy of the database it replaces; {as_it_was} ({exc.user_message})"
            ) from None
    created = False
    # Written through SQLite into the database's own file, in one transaction: a failure, or a stop between
    # two steps, leaves it whole; whatever ends it, the database is then put back as it was.
    try:
        if not into.exists():
            _create_like(source, into)  # a database lost with its disk (or moved aside): as private as its copy
            created = True
        _copy_database(source, into, stop=stop, stepwise=True)
    except CopyStopped:
        _undo(into, aside, created=created, unreadable=unreadable is not None)
        raise CopyStopped(unchanged) from None
    except BananacordError as exc:
        if aside is not None and unreadable is None and into.with_name(into.name + "-journal").exists():
            # SQLite could not roll its copy back yet (its journal waits to be played back at the next open):
            # the backup of the database made first stays, in case that roll-back fails too.
            raise BananacordError(f"cannot put {source} in place of {into}: {exc.user_message}{_kept(aside)}") from None
        _undo(into, aside, created=created, unreadable=unreadable is not None)
        raise BananacordError(f"cannot put {source} in place of {into}; {as_it_was} ({exc.user_message})") from None
    # An older copy's schema is brought up to date by the bot's next start, as after any upgrade. From here
    # on a stop is not heeded: the copy is in place, and its images follow in moments.
    try:
        copied = _copy_files(source, into)
    except BananacordError as exc:
        raise BananacordError(
            f"{source} was put back as {into}, but {exc.user_message}{_kept(aside)}. Make room and restore again"
        ) from None
    overtaken = _overtaken(into, aside) if aside is not None and unreadable is None else None
    return Restored(copied, aside, unreadable, overtaken)


def _undo(into: Path, aside: Path | None, *, created: bool, unreadable: bool) -> None:
    """After a stopped or failed copy: ``into`` as it was before the restore began. SQLite rolled back what
    the copy wrote into an existing file; a file made for it goes, and a database moved aside comes back."""
    if created:
        _remove_database(into)
    if aside is None:
        return
    if unreadable:
        _move_aside(aside, into)
    else:
        # The backup of ``into`` made first: ``into`` is unchanged, so it is a second copy of the same thing.
        _remove_database(aside)
        shutil.rmtree(ResultFiles.beside(aside).directory, ignore_errors=True)


def _overtaken(restored: Path, replaced: Path) -> Overtaken | None:
    """Compare the copy just put back with the database it replaced (kept aside, one file in DELETE journal
    mode, so reading it leaves nothing beside it): a restore after a loss finds nothing newer, one of an old
    copy over a working database finds what it is about to forget. None if they cannot be compared (the
    restore is done by then: a failed comparison must not turn it into a traceback)."""
    try:
        return _compare(restored, replaced)
    except sqlite3.Error:
        return None


def _compare(restored: Path, replaced: Path) -> Overtaken:
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
    than the original, whatever the umask of whoever runs the backup. Its owner may always read and write it:
    a database put back from a read-only copy (0444) was itself read-only, and the bot refused to start on it
    ("is read-only") after the restore had said it was done."""
    mode = (source.stat().st_mode & 0o777) | 0o600
    try:
        fd = os.open(to, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise BananacordError(f"{to} already exists: name a new file for the copy") from None
    except OSError as exc:
        raise _not_written(to, exc.strerror or str(exc), no_room=exc.errno in _NO_ROOM_ERRNOS) from None
    try:
        os.fchmod(fd, mode)  # the database's, plus the owner's read and write: the umask may have taken bits
    finally:
        os.close(fd)


def _check_copy(source: Path, stop: threading.Event | None = None) -> None:
    """Make sure ``source`` is a whole Bananacord database this code can run, before anything is replaced."""
    if not source.is_file():
        raise BananacordError(f"no copy at {source}")
    try:
        conn = open_existing(source)
        try:
            _mind_stop(conn, stop)
            check = conn.execute("PRAGMA quick_check").fetchone()
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            has_jobs = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        _stop_point(stop, f"stopped while {source} was checked")
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


def _copy_database(source: Path, to: Path, *, stop: threading.Event | None, stepwise: bool) -> None:
    """SQLite's backup of ``source`` into ``to``, one transaction on ``to``: whatever ends it early (an error,
    a stop between steps) leaves ``to`` as it was. The caller removes a ``to`` it made."""
    try:
        reader = open_existing(source)
    except sqlite3.Error as exc:
        raise Unreadable(f"cannot read {source}: {exc}") from None

    def between_steps(status: int, remaining: int, total: int) -> None:
        # Not after the last step: by then SQLite has committed the whole copy, and it must be kept.
        if remaining > 0:
            _stop_point(stop, f"stopped while copying {source} to {to}")

    try:
        copy = sqlite3.connect(to)
        try:
            if stepwise:
                reader.backup(copy, pages=STEP_PAGES, progress=between_steps)
            else:
                reader.backup(copy)
        finally:
            copy.close()
    except sqlite3.Error as exc:
        # SQLite reports a fault of either file on the copy's connection: its code says which. Before, every
        # one read "SQLite cannot read it", a full disk under the copy too.
        if (fault := _write_fault(exc)) is not None:
            raise _not_written(to, fault[0], no_room=fault[1], source=source) from None
        if _read_fault(exc):
            raise Unreadable(f"cannot copy {source} to {to}: {_unreadable(exc)}") from None
        raise BananacordError(f"cannot copy {source} to {to}: {exc}") from None
    finally:
        reader.close()


def _copy_files(source: Path, to: Path) -> Copied:
    """The result files that the database ``to`` (just copied from ``source``) names, copied beside it."""
    try:
        conn = open_existing(to)
        try:
            named = [str(row[0]) for row in conn.execute(JOBS_NAMING_RESULT_FILES, ACTIVE_STATES)]
            marks = ",".join("?" * len(ACTIVE_STATES))
            count = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})", ACTIVE_STATES).fetchone()
            unfinished = int(count[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        # An empty file or one never migrated has no jobs table: copied, it is no backup of the bot's.
        raise Unreadable(f"cannot copy {source}: {_unreadable(exc)}") from None
    folder = ResultFiles.beside(to)
    try:
        copied = ResultFiles.beside(source).copy_to(folder, named)
    except OSError as exc:
        message = f"cannot copy the images waiting beside {source}: {exc.strerror or exc}"
        if exc.errno in _NO_ROOM_ERRNOS:
            raise CopyNotWritten(message, no_room=True) from None
        raise BananacordError(message) from None
    # Judged where the images now are: a restore's folder may hold some already (the database it replaced
    # was waiting on the same jobs), and the bot will find them there.
    return Copied(files=copied, ended=len(folder.lacking(named)), unfinished=unfinished)
