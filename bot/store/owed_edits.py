"""Final edits still owed to members: jobs whose end is not yet shown to them (bot/job_messages.py retries them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import aiosqlite

from bot.store import Database

_OWE = "INSERT OR IGNORE INTO owed_edits (job_id, since) VALUES (?, ?)"
# Finished jobs leave the job store's memory (bot/store/jobs.py): the row is the only copy to clear.
_FORGET_TOKEN = (
    "UPDATE jobs SET interaction_token = NULL WHERE id = ? AND interaction_token IS NOT NULL "
    "AND message_id IS NOT NULL AND finished_at IS NOT NULL"
)


class OwedEdits:
    """Rows of job ids. A delivery is shown before its row is written, so it never needs one; a failure
    is written first, with its debt in the same transaction, which is cleared once the member sees it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def within(now: float) -> Callable[[aiosqlite.Connection, Sequence[str]], Awaitable[None]]:
        """The debt for a job's end, written in the transaction that ends it (``JobStore.update(within=)``):
        a crash after that commit and before the edit lands leaves the debt for the next start."""

        async def owe(conn: aiosqlite.Connection, job_ids: Sequence[str]) -> None:
            await conn.executemany(_OWE, [(job_id, now) for job_id in job_ids])

        return owe

    async def paid(self, job_id: str) -> None:
        """Shown at last, or given up on. The ended job's interaction token, kept so its end could be drawn
        through the interaction (bot/job_messages.py ``end``), goes in the same write: a credential nothing needs
        any more. Not while the job has no message yet (held, its lost answer looked for): its end was drawn
        nowhere, and is drawn with the token once the message is found (bot/held_jobs.py)."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM owed_edits WHERE job_id = ?", (job_id,))
            await conn.execute(_FORGET_TOKEN, (job_id,))

    async def all(self) -> list[str]:
        """Every job still owed an edit, oldest debt first."""
        async with self.db.read() as conn, conn.execute("SELECT job_id FROM owed_edits ORDER BY since") as cur:
            rows = await cur.fetchall()
        return [str(row[0]) for row in rows]
