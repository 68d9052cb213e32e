"""One process per database: an exclusive flock on ``<database>.lock``, held while the process runs.

Two bots on one SQLite file would each resume the other's jobs and send their creates twice. The
kernel drops a flock when its process ends, however it ends, so a crash never leaves a stale lock;
the file itself stays and only tells the next process who held it last.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from bot.errors import BananacordError
from bot.store import DatabaseUnusableError, make_parent

log = logging.getLogger(__name__)


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
        stamp = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(stamp) + "\n").encode(), 0)
        self._fd = fd
        log.debug("holding %s", self.path)

    def release(self) -> None:
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


def _describe_holder(fd: int) -> str:
    try:
        stamp = json.loads(os.pread(fd, 4096, 0) or b"{}")
        pid, host, since = stamp["pid"], stamp["host"], stamp["started_at"]
    except (OSError, ValueError, KeyError, TypeError):
        # The holder is between taking the lock and writing its stamp.
        return "another bananacord process"
    return f"another bananacord process (pid {pid} on host {host}, running since {since})"
