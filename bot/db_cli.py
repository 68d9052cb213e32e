"""`bananacord db migrate|status|audit|backup|restore`: the database's upkeep from the shell.

``status``, ``audit`` and ``backup`` only read, so they run beside a running bot (SQLite's WAL lets a reader work
while the bot writes); ``migrate`` and ``restore`` do not: a newer schema could change tables the running
code uses (and the bot migrates at its own start anyway), and a database replaced under a running bot
would be overwritten by its next writes. All but ``restore`` (which may put back a database that was lost)
refuse a path with no database. How copies are made: bot/db_copy.py. Errors arrive as
``BananacordError`` (the CLI prints the message and exits 1; a stopped copy's CopyStopped exits 130).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import TypeVar

from bot.config import Settings
from bot.db_copy import Copied, backup, open_existing, restore
from bot.errors import BananacordError
from bot.ledger_audit import JobCharge, LedgerAudit, LedgerAuditor
from bot.stop_signals import stop_signals
from bot.store import Database, latest_schema_version
from bot.store.jobs import JobStore
from bot.store.lock import DatabaseLock

T = TypeVar("T")


async def run_db(settings: Settings, action: str, to: Path | None = None) -> int:
    """Carry out ``action``; print what the operator asked to see; return the exit code."""
    if to is not None and action not in ("backup", "restore"):
        raise BananacordError(f"db {action} takes no file (only db backup and db restore do)")
    if action == "restore":
        if to is None:
            raise BananacordError("db restore needs the copy to put back: bananacord db restore FILE")
        return await _restore(settings, to)
    path = settings.database.path
    # A typo in the path must not read as an empty database, nor leave one behind: `migrate` made a new one
    # there ("schema version N (up to date)") and its lock file, while the bot went on with the real one.
    # The bot makes its database at its first start (`bananacord run`), so `migrate` has none to make.
    if not path.exists():
        hint = "; the bot creates its database itself, at its first start" if action == "migrate" else ""
        raise BananacordError(f"no database at {path} (set database.path in the config the bot runs with{hint})")
    if action == "migrate":
        return await _migrate(settings)
    if action == "backup":
        if to is None:
            raise BananacordError("db backup needs a file to write: bananacord db backup FILE")
        stop = threading.Event()
        copied, _ = await _in_thread_to_its_end(lambda: backup(path, to, stop=stop), stop)
        print(f"{path} copied to {to}{_files_line(copied, to)}")
        if copied.ended:
            print(
                f"  {copied.ended} of its unfinished jobs name images that were not there to copy (they ended "
                "while it was made, or the images were lost before); restored, this copy fails them, refunded"
            )
        return 0
    if action == "audit":
        return await _audit(settings)
    return await _status(settings)


async def _in_thread_to_its_end(work: Callable[[], T], stop: threading.Event) -> tuple[T, bool]:
    """``work()`` in a thread, waited for to its end; and whether a stop signal came meanwhile.

    Ctrl-C (SIGINT) or SIGTERM sets ``stop``, which the copy heeds between its steps, instead of ending the
    wait: asyncio's own Ctrl-C cancelled the wait at once, and the database's lock was let go (and the
    command exited saying nothing) while the thread went on writing the database."""
    loop = asyncio.get_running_loop()
    signalled: list[int] = []

    def on_signal(sig: int) -> None:
        signalled.append(sig)
        stop.set()

    handled = stop_signals()  # SIGHUP too, unless ignored (nohup): bot/stop_signals.py
    for sig in handled:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await asyncio.to_thread(work), bool(signalled)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


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
    stop = threading.Event()
    with DatabaseLock(path):  # no bot may run on the database it replaces
        # Held until the copy's thread is through: a stop signal meanwhile only asks the copy to stop.
        restored, signalled = await _in_thread_to_its_end(
            lambda: restore(source, path, now=datetime.now(UTC), stop=stop), stop
        )
    copied, aside = restored.copied, restored.aside
    print(f"{source} restored to {path}{_files_line(copied, path)}")
    if signalled:
        print("  (a stop signal came once the copy was in place: the restore was finished, not left half done)")
    if restored.unreadable is not None:
        print(f"  the database it replaced could not be copied ({restored.unreadable}); moved as it was to {aside}")
    elif aside is not None:
        print(f"  the database it replaced is kept as {aside} (restore that to undo this)")
    print(f"  {copied.unfinished} unfinished job(s) in it will be resumed at the bot's next start")
    if copied.ended:
        print(f"  {copied.ended} of them name images the copy does not have: they will fail, refunded")
    if (overtaken := restored.overtaken) is not None and overtaken.ended_since:
        print(
            f"  {overtaken.ended_since} of them had ended in the database it replaced, after this copy was made:"
            " they run again from where the copy has them"
        )
    if overtaken is not None and overtaken.not_in_copy:
        print(
            f"  {overtaken.not_in_copy} job(s) unfinished in the database it replaced are not in this copy: nothing"
            f" will settle them, and their messages stay as they are (restore {aside} to undo)"
        )
    print(f"  its ledger: {await _verdict(path)}")
    return 0


async def _verdict(path: Path) -> str:
    """One line on the ledger of a database just put back (the whole of it: `bananacord db audit`)."""
    try:
        _, _, audit = await asyncio.to_thread(_read_and_audit, path)
    except BananacordError as exc:
        return f"not audited ({exc.user_message})"
    faults = len(audit.charged_twice) + len(audit.problems)
    if audit.sound:
        return "sound (`bananacord db audit` shows it in full)"
    return f"{faults} fault(s) or an imbalance: run `bananacord db audit` to see them"


# Problems listed one per line, up to this many (the rest counted): enough to see what kind of fault it is.
AUDIT_LINES = 50


async def _audit(settings: Settings) -> int:
    """The ledger checked against the jobs (bot/ledger_audit.py); exit 1 if an invariant is broken."""
    path = settings.database.path
    check, jobs, audit = await asyncio.to_thread(_read_and_audit, path)
    t = audit.totals
    print(f"{path}: SQLite's check: {check}; {jobs} job(s), {audit.jobs_charged} charged ({audit.running} running)")
    print(
        f"  units reserved {t.reserved}, committed {t.committed}, refunded {t.refunded}, held by running jobs "
        f"{t.open}: " + ("balanced" if t.adds_up else "NOT BALANCED")
    )
    problems = [f"charged twice: {line}" for line in audit.charged_twice] + audit.problems
    if not problems:
        print("  no job charged twice; every ended job settled once, as its end says; every running one holds its")
        print("  reservation")
    for line in problems[:AUDIT_LINES]:
        print(f"  PROBLEM {line}")
    if len(problems) > AUDIT_LINES:
        print(f"  ... and {len(problems) - AUDIT_LINES} more")
    return 0 if audit.sound and check == "ok" else 1


def _read_and_audit(path: Path) -> tuple[str, int, LedgerAudit]:
    try:
        return _read_and_audit_or_raise(path)
    except sqlite3.Error as exc:
        raise BananacordError(f"cannot audit {path}: {exc}") from None


def _read_and_audit_or_raise(path: Path) -> tuple[str, int, LedgerAudit]:
    auditor = LedgerAuditor()
    conn = open_existing(path)
    try:
        version, known = int(conn.execute("PRAGMA user_version").fetchone()[0]), latest_schema_version()
        if version != known:
            raise BananacordError(
                f"{path} is at schema version {version}, this bananacord's is {known}: "
                + (
                    "audit it with the version that wrote it"
                    if version > known
                    else "the bot brings it up to date at its next start (or `bananacord db migrate`); audit it then"
                )
            )
        conn.execute("BEGIN")  # both tables as of one moment, while the bot may be writing
        check = str(conn.execute("PRAGMA quick_check").fetchone()[0])
        jobs = int(conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
        # Streamed a job at a time: memory stays flat however long the ledger (a million rows: seconds).
        rows = conn.execute(
            "SELECT l.job_id, l.kind, l.units, j.state, j.charge_state FROM ledger l"
            " LEFT JOIN jobs j ON j.id = l.job_id WHERE l.job_id IS NOT NULL ORDER BY l.job_id"
        )
        for job_id, group in itertools.groupby(rows, key=itemgetter(0)):
            ledger = list(group)
            state, charge_state = ledger[0][3], ledger[0][4]
            job = JobCharge(str(state), charge_state) if state is not None else None
            auditor.job(str(job_id), job, [(str(r[1]), int(r[2])) for r in ledger])
        # The reservation's own index (ledger_job_reserve) answers each job's look.
        for job_id, state, charge_state in conn.execute(
            "SELECT id, state, charge_state FROM jobs WHERE charge_state IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM ledger WHERE ledger.job_id = jobs.id AND ledger.kind = 'reserve') ORDER BY id"
        ):
            auditor.unreserved(str(job_id), JobCharge(str(state), charge_state))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return check, jobs, auditor.result


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
