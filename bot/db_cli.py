"""`bananacord db migrate|status|backup|restore`: the database's upkeep from the shell.

``status`` and ``backup`` only read, so they run beside a running bot (SQLite's WAL lets a reader work
while the bot writes); ``migrate`` and ``restore`` do not: a newer schema could change tables the running
code uses (and the bot migrates at its own start anyway), and a database replaced under a running bot
would be overwritten by its next writes. How copies are made: bot/db_copy.py. Errors arrive as
``BananacordError`` (the CLI prints the message and exits 1).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Settings
from bot.db_copy import Copied, backup, restore
from bot.errors import BananacordError
from bot.store import Database, latest_schema_version
from bot.store.jobs import JobStore
from bot.store.lock import DatabaseLock


async def run_db(settings: Settings, action: str, to: Path | None = None) -> int:
    """Carry out ``action``; print what the operator asked to see; return the exit code."""
    if to is not None and action not in ("backup", "restore"):
        raise BananacordError(f"db {action} takes no file (only db backup and db restore do)")
    if action == "migrate":
        return await _migrate(settings)
    if action == "restore":
        if to is None:
            raise BananacordError("db restore needs the copy to put back: bananacord db restore FILE")
        return await _restore(settings, to)
    path = settings.database.path
    # A typo in the path must not read as an empty database, nor leave one behind.
    if not path.exists():
        raise BananacordError(f"no database at {path} (set database.path in the config the bot runs with)")
    if action == "backup":
        if to is None:
            raise BananacordError("db backup needs a file to write: bananacord db backup FILE")
        copied = await asyncio.to_thread(backup, path, to)
        print(f"{path} copied to {to}{_files_line(copied, to)}")
        if copied.ended:
            print(
                f"  {copied.ended} of its unfinished jobs name images that were not there to copy (they ended "
                "while it was made, or the images were lost before); restored, this copy fails them, refunded"
            )
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


async def _restore(settings: Settings, source: Path) -> int:
    path = settings.database.path
    with DatabaseLock(path):  # no bot may run on the database it replaces
        copied, aside = await asyncio.to_thread(restore, source, path, now=datetime.now(UTC))
    print(f"{source} restored to {path}{_files_line(copied, path)}")
    if aside is not None:
        print(f"  the database it replaced is kept as {aside} (restore that to undo this)")
    print(f"  {copied.unfinished} unfinished job(s) in it will be resumed at the bot's next start")
    if copied.ended:
        print(f"  {copied.ended} of them name images the copy does not have: they will fail, refunded")
    return 0


def _files_line(copied: Copied, database: Path) -> str:
    if not copied.files:
        return ""
    return f", with the {copied.files} image(s) waiting for delivery in {database.name}.results/"


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
