"""SQLite access: one aiosqlite connection in WAL mode, numbered migrations, serialised transactions."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import sqlite3
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import BananacordError, ConfigError
from bot.gate import light_form
from bot.store.refusals import storage_busy
from bot.store.turns import TwoLineLock

log = logging.getLogger(__name__)

# How long a write waits for another program's lock on the database: a few seconds while the bot runs
# (sqlite's busy_timeout; `[database] busy_timeout_seconds`), a moment once it is stopping
# (Database.impatient).
BUSY_TIMEOUT_SECONDS = 5.0
IMPATIENT_MS = 200
# Between tries to open a database another program holds locked, at start.
BUSY_START_PAUSE = 1.0
# Statements that kept the connection's thread this long (or half the busy_timeout, if that is less) are
# remembered for held_up_since(); ours take milliseconds.
LONG_STATEMENT_SECONDS = 0.5
# The SQL function that writes a text as words are compared in (JobStore.matching, /jobs search:).
SEARCH_FORM = "bananacord_search_form"


class DatabaseBusyError(BananacordError):
    """Another program held the database's write lock for longer than the bot waits at start."""

    def __init__(self, path: Path, waited: float) -> None:
        self.path = path
        super().__init__(
            f"the database {path} stayed locked by another program for {waited:.0f} s (a DB browser with "
            "changes not yet written? a VACUUM?). Let it finish or close it, then start again."
        )


class DatabaseTooNewError(BananacordError):
    """The database was migrated by a newer bananacord than this one: its tables may not be what this code
    reads and writes (a downgrade, or an old image started on a new volume)."""

    def __init__(self, path: Path, version: int, known: int) -> None:
        self.path = path
        super().__init__(
            f"the database {path} has schema version {version}, written by a newer bananacord (this one knows "
            f"up to {known}). Run the newer version, or restore a copy of the database made before it."
        )


class DatabaseUnusableError(ConfigError):
    """The database file cannot be opened, is not SQLite, or cannot be written."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(
            "[database] path",
            f"{path} {reason}",
            "Point it at a SQLite file in a folder the bot can write to (it is created if missing).",
        )


_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@functools.cache
def _migrations() -> tuple[tuple[int, str, tuple[str, ...]], ...]:
    """Each migration's number, file name and statements. Read once per process: the files ship with the
    code, and reading and splitting all of them took 5 ms at every open of a database (every bot start, and
    ``latest_schema_version()`` read them all again)."""
    folder = resources.files("bot.store") / "migrations"
    found: list[tuple[int, str, tuple[str, ...]]] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, tuple(_split_sql(entry.read_text(encoding="utf-8")))))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {numbers}")
    return tuple(found)


def latest_schema_version() -> int:
    """The schema version this code migrates a database to."""
    return len(_migrations())


class Database:
    """The bot's SQLite file. Use ``transaction()`` for every write so concurrent tasks never interleave."""

    def __init__(self, path: Path | str, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        # A statement refused after a short busy_timeout (``[database] busy_timeout_seconds``) is as much a
        # sign of another program's lock as a long one: it must be remembered too.
        self._long_statement = min(LONG_STATEMENT_SECONDS, busy_timeout / 2)
        self._conn: aiosqlite.Connection | None = None
        # One connection is shared by every task; the lock keeps each transaction whole. A request a member
        # waits on goes ahead of the job loop's writes (bot/store/turns.py).
        self._lock = TwoLineLock()
        self.statements = 0  # SQL statements executed since connect()
        # When the connection's thread began its latest statement (set in that thread: one float, written
        # whole), and the latest statements that kept it a while, as (began, next began); see held_up_since().
        self.statement_began = time.monotonic()
        self._long_statements: deque[tuple[float, float]] = deque(maxlen=16)
        # Tasks inside read() or transaction(), waiting for the database or using it; see in_use_by().
        self._users: set[asyncio.Task[Any]] = set()
        # When the latest of them came after none was left: the connection idle before that moment.
        self._busy_from = time.monotonic()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("Database.connect() has not been called")
        return self._conn

    async def connect(self, *, busy_wait: float = 30.0, migrate: bool = True) -> None:
        """Open, migrate and prove the file writable; a file that cannot serve raises DatabaseUnusableError,
        one a newer bananacord migrated DatabaseTooNewError. ``migrate=False`` opens it to be read as it is
        (`bananacord db status`), neither migrated nor written. While another program holds the database's
        write lock, wait for it up to ``busy_wait`` seconds (``[database] busy_wait_seconds``), then raise
        DatabaseBusyError: a lock is not a bad path."""
        make_parent(self.path)
        if migrate:
            _create_private(self.path)
        began = time.monotonic()
        told = False
        while True:
            try:
                await self._open(migrate)
                return
            except DatabaseTooNewError:
                await self.close()
                raise
            except sqlite3.Error as exc:
                await self.close()
                if not storage_busy(exc):
                    raise DatabaseUnusableError(self.path, _reason(exc)) from None
                if time.monotonic() - began + BUSY_START_PAUSE > busy_wait:
                    raise DatabaseBusyError(self.path, time.monotonic() - began) from None
                if not told:
                    log.warning("%s is locked by another program; waiting up to %g s for it", self.path, busy_wait)
                    told = True
                await asyncio.sleep(BUSY_START_PAUSE)

    async def _open(self, migrate: bool) -> None:
        # Opened once in a thread we wait for: when the open itself fails, aiosqlite leaves its worker
        # thread reporting to an event loop that may be closed by then (a traceback on exit).
        await asyncio.to_thread(_try_open, self.path)
        # isolation_level=None: we issue BEGIN ourselves (BEGIN IMMEDIATE takes the write lock up front).
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._conn.row_factory = aiosqlite.Row
        # First: every statement after it waits for another program's lock rather than failing at once.
        await self._conn.execute(f"PRAGMA busy_timeout={round(self.busy_timeout * 1000)}")
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute("PRAGMA foreign_keys=ON")
        await self._conn.execute("PRAGMA synchronous=NORMAL")
        await self._conn.create_function(SEARCH_FORM, 1, _search_form, deterministic=True)
        if migrate:
            await self.migrate()
            await self._check_writable()
        # Counted for the load benchmark's "statements per job" (bench/load.py); a callback per
        # statement costs well under a microsecond.
        await self._conn.set_trace_callback(self._count)

    async def impatient(self) -> None:
        """From now on a write waits for another program's lock for a moment only (the process is stopping:
        what is left to write is worth less than a prompt exit)."""
        if self._conn is not None:
            async with self._lock:
                await self._conn.execute(f"PRAGMA busy_timeout={min(IMPATIENT_MS, round(self.busy_timeout * 1000))}")

    def _count(self, _statement: str) -> None:
        now = time.monotonic()
        self.statements += 1
        # From the previous statement's start, but not across a time nothing asked the connection for work.
        began = max(self.statement_began, self._busy_from)
        if now - began >= self._long_statement:
            # deque.append is atomic: this runs in the connection's thread, held_up_since() in the loop's.
            # Sixteen cover far more than the few seconds held_up_since() is asked about.
            self._long_statements.append((began, now))
        self.statement_began = now

    def held_up_since(self, since: float) -> float:
        """The longest time one statement has kept the connection's thread since ``since``
        (``time.monotonic()``), the running one included. While a write of ours waits, a second or more
        means the database held up (another program's lock, a stalled disk), not a queue of our own
        statements, which take milliseconds each. Every statement counts, not only the latest: under a lock
        longer than ``busy_timeout``, one write gives up after 5 s and the next starts its own wait; just
        then the latest is young, yet the database was held up throughout. (Timed from one statement's start
        to the next's, leaving out any time no task was using or waiting for the connection: idle time is
        not held up.)"""
        now = time.monotonic()
        longest = now - max(self.statement_began, self._busy_from, since) if self._users else 0.0
        for began, ended in tuple(self._long_statements):
            longest = max(longest, ended - max(began, since))
        return longest

    async def _check_writable(self) -> None:
        # SQLite opens a write-protected file read-only without complaint, and an up-to-date schema
        # needs no write, so only a real (rolled back) write proves jobs can be recorded.
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                await self.conn.execute("CREATE TABLE _bananacord_write_check (x INTEGER)")
            finally:
                await self.conn.execute("ROLLBACK")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> int:
        """Apply every migration newer than PRAGMA user_version, each in its own transaction."""
        current = await self.schema_version()
        known = latest_schema_version()
        if current > known:
            raise DatabaseTooNewError(self.path, current, known)
        applied = current
        for number, name, statements in _migrations():
            if number <= current:
                continue
            async with self.transaction():
                for statement in statements:
                    await self.conn.execute(statement)
                await self.conn.execute(f"PRAGMA user_version={number}")
            log.info("applied migration %s", name)
            applied = number
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any exception."""
        async with self._used(), self._lock:
            await self._begin()
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read, or a single-statement write (atomic by itself in autocommit mode), that must not
        interleave with another task's open transaction."""
        async with self._used(), self._lock:
            yield self.conn

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE, which a cancel cannot call back: the statement runs on in the connection's
        thread (waiting up to ``busy_timeout`` for another program's lock). Taken after its task was
        cancelled, it would leave the connection inside a transaction nobody ends: every later BEGIN would
        fail ("cannot start a transaction within a transaction") and every single-statement write would
        wait in it, never committed, until the process ended. So a cancelled BEGIN is waited for, and what
        it began is rolled back, before the cancel goes on (and the lock is let go)."""
        begin = asyncio.ensure_future(self.conn.execute("BEGIN IMMEDIATE"))
        try:
            await asyncio.shield(begin)
        except asyncio.CancelledError:
            await _ride_out(asyncio.ensure_future(self._end_begun(begin)))
            raise

    async def _end_begun(self, begin: asyncio.Future[Any]) -> None:
        try:
            await begin
        except sqlite3.Error:
            return  # not taken (another program's lock outlasted the wait): nothing to end
        try:
            await self.conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.warning("could not end a transaction begun for a cancelled write: %s", exc)

    def in_use_by(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task`` is inside ``read()`` or ``transaction()`` now: waiting for the database or
        using it, and so not, say, halfway through sending a Discord answer (cogs/slow_answers.py)."""
        return task in self._users

    @asynccontextmanager
    async def _used(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is None or task in self._users:  # no task (never, under asyncio), or nested: nothing to add
            yield
            return
        if not self._users:
            self._busy_from = time.monotonic()
        self._users.add(task)
        try:
            yield
        finally:
            self._users.discard(task)


async def _ride_out(task: asyncio.Future[None]) -> None:
    """Wait for ``task`` to end, whatever cancels the waiter meanwhile (the caller re-raises its own cancel)."""
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("cleaning up after a cancelled write failed: %r", task.exception())


def make_parent(path: Path) -> None:
    """Create the database's folder if needed; refuse a path that is a folder itself."""
    if path.is_dir():
        raise DatabaseUnusableError(path, "is a folder, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnusableError(path, f"cannot be created: its folder cannot be made ({exc.strerror})") from None


def _create_private(path: Path) -> None:
    """A new database file, readable by its owner only: it holds members' prompts and Discord's interaction
    tokens (each lets whoever reads it edit the bot's answer for 15 minutes). SQLite gives the database's
    -wal and -shm files the database's own permissions. An existing file is left as its operator set it.

    The new file is already migrated (``_migrated_image``): written whole beside it, then linked into place,
    so no other process can open it half written, and one that made the file first keeps its own. Applying
    every migration to an empty file took 20-30 ms of SQLite's CPU (each ALTER TABLE parses the whole schema
    again), at every bot's first start and in every test that starts one."""
    # It exists, or cannot be made: opening it says which, in the words the operator reads.
    try:
        if path.exists():
            return
        _place_migrated(path)
    except FileExistsError:
        return  # made meanwhile, by another process
    except OSError:
        # No hard links on this file system (some network or FUSE ones), or no room for the image: an empty
        # file, private all the same, which opening it migrates.
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _place_migrated(path: Path) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(_migrated_image())
        os.link(name, path)  # refused if the path was made meanwhile
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


@functools.cache
def _migrated_image() -> bytes:
    """An empty database with every migration applied, as the bytes of its file: made once per process, by
    the same statements ``Database.migrate`` runs (tests/store/test_jobs_store.py compares the two)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        for number, _name, statements in _migrations():
            conn.execute("BEGIN IMMEDIATE")
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        return conn.serialize()
    finally:
        conn.close()


def _search_form(value: object) -> str | None:
    """A text as searched: any letter in either case ("CAFÉ" finds "café", "ДОМ" finds "дом"), compatibility forms
    as their plain letters (a full-width "ｃａｔ" is "cat"), invisible characters left out; the form a blocked
    term's pattern reads a prompt as typed in (bot/gate.py ``light_form``). SQLite's own ``lower`` folds A to Z
    only. Accents stay: "cafe" is another word than "café" in more languages than not. SQLite calls this in the
    connection's thread, and an exception would fail the whole read, so a value that is no text is NULL."""
    return light_form(value) if isinstance(value, str) else None


def _try_open(path: Path) -> None:
    sqlite3.connect(path).close()


def _reason(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "not a database" in text:
        return "is not a SQLite database"
    if "readonly" in text:
        return "is read-only (the bot needs to write to it and to its folder)"
    if "unable to open" in text:
        return "cannot be opened (check it and its folder are readable and writable)"
    return f"cannot be used ({text})"


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (our migrations use no semicolons inside literals or triggers)."""
    # Drop comments first: a ";" inside a comment would otherwise split a statement. (Our migrations
    # keep "--" out of string literals.)
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
