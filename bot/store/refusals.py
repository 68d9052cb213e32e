"""SQLite refusing a write for a while, told apart from a mistake in the bot.

Two kinds pass: the storage does not take writes (the disk full, or a file grown past the process's size
limit, an I/O error, a file made read-only or no longer openable), or another program holds the write
lock longer than the connection's ``busy_timeout`` (an operator's DB browser with an edit not yet
written, a ``VACUUM`` run by hand). Either way the write can succeed later, unchanged; an SQL mistake or
a broken constraint never will. SQLite's own result code decides, not the message's text.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

# Waits between tries of a write that must not be dropped: doubling from the first to the last.
FIRST_WAIT_SECONDS = 0.5
LAST_WAIT_SECONDS = 15.0

_NOT_TAKING_WRITES = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN}
)
_HELD_BY_ANOTHER = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def _primary_code(exc: BaseException) -> int | None:
    # Extended result codes carry the primary one in their low byte (SQLITE_IOERR_WRITE & 0xFF == IOERR).
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(exc, sqlite3.Error) and isinstance(code, int) else None


def storage_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is the storage not taking writes (full, failing, read-only)."""
    return _primary_code(exc) in _NOT_TAKING_WRITES


def storage_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's write lock held elsewhere for longer than the bot waits."""
    return _primary_code(exc) in _HELD_BY_ANOTHER


def write_can_wait(exc: BaseException) -> bool:
    """Whether the same write may well succeed later: the storage refused it or was busy."""
    return storage_refused(exc) or storage_busy(exc)


async def write_until_taken(write: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``write`` until the database takes it. For a write that records what was done outside and cannot
    be done again: a task a provider made (and bills), whose answer is in hand. While the database refuses
    (``write_can_wait``), the answer stays in memory and the write is tried again, from half a second to
    every 15 s, for as long as it takes or until the caller is cancelled (a stop: the next start then finds
    the create unrecorded, as after a crash). Any other error is raised at once. ``what`` names the write in
    the log ("job 1a2b: the created task mmsu_...")."""
    wait = FIRST_WAIT_SECONDS
    refusals = 0
    while True:
        try:
            written = await write()
        except Exception as exc:
            if not write_can_wait(exc):
                raise
            refusals += 1
            if refusals == 1:
                log.warning("%s cannot be written yet (%s); kept in memory, trying again", what, exc)
            await asyncio.sleep(wait)
            wait = min(wait * 2, LAST_WAIT_SECONDS)
            continue
        if refusals:
            log.info("%s written after %d refusal(s)", what, refusals)
        return written


def log_refused_or_error(logger: logging.Logger, exc: BaseException, message: str, *args: object) -> None:
    """Log a failed bookkeeping write: a WARNING line when the database refused it (another program's lock, a
    full disk: no fault of the bot's, and it passes), else an ERROR with the traceback."""
    if write_can_wait(exc):
        logger.warning(message + ": the database refused the write (%s)", *args, exc)
    else:
        logger.error(message, *args, exc_info=exc)
