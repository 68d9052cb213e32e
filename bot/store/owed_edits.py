"""Final edits still owed to members: jobs whose end Discord refused to show (bot/jobs.py retries them)."""

from __future__ import annotations

from bot.store import Database


class OwedEdits:
    """Rows of job ids, written only when a final edit fails, so the happy path costs no statement."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def owe(self, job_id: str, *, now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO owed_edits (job_id, since) VALUES (?, ?)", (job_id, now))

    async def paid(self, job_id: str) -> None:
        """Shown at last, or given up on."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM owed_edits WHERE job_id = ?", (job_id,))

    async def all(self) -> list[str]:
        """Every job still owed an edit, oldest debt first."""
        async with self.db.read() as conn, conn.execute("SELECT job_id FROM owed_edits ORDER BY since") as cur:
            rows = await cur.fetchall()
        return [str(row[0]) for row in rows]
