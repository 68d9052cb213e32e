"""`bananacord db migrate|status|backup`: the database's upkeep from the shell.

``status`` and ``backup`` only read, so they run beside a running bot (SQLite's WAL lets a reader work
while the bot writes); ``migrate`` does not: a newer schema could change tables the running code uses,
and the bot migrates at its own start anyway. Errors arrive as ``BananacordError`` (the CLI prints the
message and exits 1).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.config import Settings
from bot.errors import BananacordError
from bot.store import Database, latest_schema_version
from bot.store.jobs import JobStore
from bot.store.lock import DatabaseLock


async def run_db(settings: Settings, action: str, to: Path | None = None) -> int:
    """Carry out ``action``; print what the operator asked to see; return the exit code."""
    if to is not None and action != "backup":
        raise BananacordError(f"db {action} takes no file (only db backup does)")
    if action == "migrate":
        return await _migrate(settings)
    path = settings.database.path
    # A typo in the path must not read as an empty database, nor leave one behind.
    if not path.exists():
        raise BananacordError(f"no database at {path} (set database.path in the config the bot runs with)")
    if action == "backup":
        if to is None:
            raise BananacordError("db backup needs a file to write: bananacord db backup FILE")
        await asyncio.to_thread(backup, path, to)
        print(f"{path} copied to {to}")
        return 0
    return await _status(settings)


async def _migrate(settings: Settings) -> int:
    path = settings.database.path
    with DatabaseLock(path):
        db = Database(path, busy_timeout=settings.database.busy_timeout_seconds)
        await db.connect(busy_wait=settings.database.busy_wait_seconds)
        try:
            print(f"{path}: schema version {await db.schema_version()} (up to date)")
        finally:
            await db.close()
    return 0


async def _status(settings: Settings) -> int:
    path = settings.database.path
    db = Database(path, busy_timeout=settings.database.busy_timeout_seconds)
    await db.connect(busy_wait=settings.database.busy_wait_seconds, migrate=False)
    try:
        version, known = await db.schema_version(), latest_schema_version()
        if version > known:
            print(f"{path}: schema version {version}, newer than this bananacord knows ({known})")
            return 1
        behind = f"; {known - version} migration(s) to apply at the bot's next start" if version < known else ""
        print(f"{path}: schema version {version}{behind}")
        if version > 0:
            for state, count in sorted((await JobStore(db).count_by_state()).items()):
                print(f"  {state:<10} {count}")
    finally:
        await db.close()
    return 0


def backup(source: Path, to: Path) -> None:
    """A consistent copy of ``source`` in ``to``, made with SQLite's online backup while the bot may be
    writing (a plain file copy then could catch a page half written, or miss what is still in the WAL)."""
    if to.exists():
        raise BananacordError(f"{to} already exists: name a new file for the copy")
    if not to.parent.is_dir():
        raise BananacordError(f"cannot write {to}: {to.parent} is not a folder")
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(to)
        try:
            reader.backup(copy)
        finally:
            copy.close()
    except sqlite3.Error as exc:
        to.unlink(missing_ok=True)
        raise BananacordError(f"cannot copy {source} to {to}: {exc}") from None
    finally:
        reader.close()
