"""One process per database: an exclusive flock on ``<database>.lock`` and on the database file itself, held
while the process runs.

Two bots on one SQLite file would each resume the other's jobs and send their creates twice. The
kernel drops a flock when its process ends, however it ends, so a crash never leaves a stale lock;
the ``.lock`` file itself stays and only tells the next process who held it last.

``<database>.lock`` is named after the file the path leads to, so a symlink meets it; a hard link (the same
file under another name, in any folder, or the same folder mounted at two places) does not, so the database
file is locked too, by its own inode, which every name of it shares. On Linux a flock and SQLite's own
(fcntl) locks on that file are independent, but closing *any* descriptor of the file drops every fcntl lock
the process holds on it (SQLite's, including the shared lock a WAL connection keeps while it is open). So the
descriptor opened here is closed only when this process holds no fcntl lock on the file (``_close_file``):
opened before the bot's database and let go after it closes, as ``bananacord run`` and ``db`` do, it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import stat
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from bot.errors import BananacordError
from bot.store import DatabaseUnusableError, make_parent

log = logging.getLogger(__name__)

# This process's locks, by their ``.lock`` file: ``hold_database_file`` finds the one that covers a database
# created after its lock was taken.
_HELD: dict[Path, DatabaseLock] = {}
# Descriptors of database files whose flock was let go while this process held fcntl locks on the file
# (SQLite's): closing them would drop those. Closed once that is safe (``_close_file``), or at exit.
_PARKED: list[tuple[int, int, int]] = []


def lock_path(database: Path) -> Path:
    """Beside the file the path leads to, not the name it is reached by: a second bot reaching the same
    database through a symlink (or a linked folder, or a relative path from elsewhere) meets the same lock.
    Locked by the name alone, each took a lock of its own and both ran on one database."""
    try:
        real = database.resolve()
    except (OSError, RuntimeError):
        # A loop of links: nothing can open the database through it either (SQLite says so, in one line).
        real = database.absolute()
    return real.with_name(real.name + ".lock")


class DatabaseInUseError(BananacordError):
    """Another process holds the database's lock."""

    def __init__(self, database: Path, holder: str) -> None:
        self.database = database
        self.holder = holder
        super().__init__(
            f"the database {database} is in use by {holder}. "
            "Stop that process first, or give this one its own [database] path."
        )


class DatabaseLock:
    """``with DatabaseLock(path):`` holds the lock, or raises DatabaseInUseError naming the holder."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = lock_path(database)
        self._fd: int | None = None
        self._file: int | None = None  # the database file's own descriptor, flocked

    def acquire(self) -> None:
        make_parent(self.database)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DatabaseUnusableError(
                self.database, f"cannot be locked: {self.path} cannot be created ({exc.strerror})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(fd)
            os.close(fd)
            raise DatabaseInUseError(self.database, holder) from None
        except OSError as exc:
            os.close(fd)
            raise DatabaseUnusableError(self.database, f"cannot be locked ({exc.strerror})") from None
        try:
            self.hold_file()
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        stamp = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(stamp) + "\n").encode(), 0)
        self._fd = fd
        _HELD[self.path] = self
        log.debug("holding %s", self.path)

    def hold_file(self) -> None:
        """Lock the database file itself, if it exists and is not locked here yet (a database the bot is about
        to create is locked once it exists: ``hold_database_file``). Raises DatabaseInUseError if another
        process holds it: a bot on the same file reached by another name (a hard link, a second mount)."""
        if self._file is not None:
            return
        fd = _open_database(self.database)
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_file_holder(fd)
            _close_file(fd)
            raise DatabaseInUseError(self.database, holder) from None
        except OSError as exc:
            _close_file(fd)
            raise DatabaseUnusableError(self.database, f"cannot be locked ({exc.strerror})") from None
        self._file = fd

    def release(self) -> None:
        if _HELD.get(self.path) is self:
            del _HELD[self.path]
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            _close_file(self._file)
            self._file = None
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def hold_database_file(database: Path) -> None:
    """The database this process locked by name now exists (SQLite made it after the lock was taken, at a
    first start): lock the file itself too, before any job is resumed. Nothing if this process holds no lock
    for it (a test's runner, `bananacord generate`). Raises DatabaseInUseError if another process got there
    first through another name of the file."""
    held = _HELD.get(lock_path(database))
    if held is not None:
        held.hold_file()


def _open_database(database: Path) -> int | None:
    """A read-only descriptor of the database file, or None: no such file yet, or none SQLite could use either
    (unreadable, not a regular file), which its own checks report in their words."""
    try:
        fd = os.open(database, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        regular = False
    if not regular:
        os.close(fd)  # not a file SQLite keeps locks on
        return None
    return fd


def _file_id(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _proc_locks() -> list[list[str]] | None:
    """The kernel's table of file locks (Linux), each line split; None where there is none to read."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            return [line.split() for line in table]
    except OSError:
        return None


def _on_file(fields: list[str], dev: int, ino: int) -> bool:
    """Whether a /proc/locks line (``N: KIND MODE TYPE PID MAJ:MIN:INODE START END``, a waiter's with ``->``
    after ``N:``) is a lock held on the file ``dev``/``ino``."""
    if len(fields) < 6 or fields[1] == "->":
        return False
    try:
        major, minor, inode = fields[5].split(":")
        return (int(major, 16), int(minor, 16), int(inode)) == (os.major(dev), os.minor(dev), ino)
    except ValueError:
        return False


def _holds_fcntl_locks(dev: int, ino: int) -> bool | None:
    """Whether this process holds fcntl (POSIX) locks on the file (None: cannot tell)."""
    table = _proc_locks()
    if table is None:
        return None
    me = str(os.getpid())
    return any(f[1] == "POSIX" and f[4] == me and _on_file(f, dev, ino) for f in table)


def _close_file(fd: int) -> None:
    """Close a descriptor of the database file, unless that would drop fcntl locks this process holds on the
    file (SQLite's: a database still open in this process); then it is kept open, unlocked, and closed by a
    later call once that is safe, or at exit."""
    try:
        dev, ino = _file_id(fd)
    except OSError:
        os.close(fd)  # no file to speak of: nothing of SQLite's rides on it
        return
    _PARKED.append((fd, dev, ino))
    for parked in list(_PARKED):
        parked_fd, dev, ino = parked
        if _holds_fcntl_locks(dev, ino) is False:
            _PARKED.remove(parked)
            with contextlib.suppress(OSError):
                os.close(parked_fd)


def _describe_file_holder(fd: int) -> str:
    """Who holds the flock on the database file: the process /proc/locks names (a bot that reached the same
    file by another name, whose ``.lock`` file is beside that name)."""
    by = "through another name of the same file"
    try:
        dev, ino = _file_id(fd)
    except OSError:
        return f"another bananacord process ({by})"
    pids = {f[4] for f in _proc_locks() or [] if f[1] == "FLOCK" and _on_file(f, dev, ino)}
    pid = next(iter(pids)) if len(pids) == 1 else None
    if pid is None or not pid.isdigit() or int(pid) <= 0:
        return f"another bananacord process ({by})"
    return f"another bananacord process (pid {pid} on host {socket.gethostname()}, {by})"


def _describe_holder(fd: int) -> str:
    try:
        stamp = json.loads(os.pread(fd, 4096, 0) or b"{}")
        pid, host, since = stamp["pid"], stamp["host"], stamp["started_at"]
    except (OSError, ValueError, KeyError, TypeError):
        # The holder is between taking the lock and writing its stamp.
        return "another bananacord process"
    return f"another bananacord process (pid {pid} on host {host}, running since {since})"
