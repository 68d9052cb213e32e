"""Completion times the poll schedule learns from (bot/schedule.py), kept so a restart keeps them."""

from __future__ import annotations

from bot.store import Database


class CompletionStore:
    """Rows of (kind, earliest, latest); only the most recent ``history`` per kind are read back."""

    def __init__(self, db: Database, *, history: int) -> None:
        self.db = db
        self.history = history

    async def recent(self) -> list[tuple[str, float, float]]:
        """Up to ``history`` per kind, oldest first, ready to replay into CompletionTimes."""
        async with (
            self.db.read() as conn,
            conn.execute(
                """SELECT kind, earliest, latest FROM (
                       SELECT kind, earliest, latest, id,
                              ROW_NUMBER() OVER (PARTITION BY kind ORDER BY id DESC) AS newest
                       FROM completion_times)
                   WHERE newest <= ? ORDER BY id""",
                (self.history,),
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [(str(kind), float(earliest), float(latest)) for kind, earliest, latest in rows]

    async def add(self, kind: str, earliest: float, latest: float, *, now: float) -> None:
        async with self.db.read() as conn:  # one statement: atomic without BEGIN/COMMIT
            cur = await conn.execute(
                "INSERT INTO completion_times (kind, earliest, latest, recorded_at) VALUES (?, ?, ?, ?)",
                (kind, earliest, latest, now),
            )
            newest = cur.lastrowid
            if newest is not None and newest % 50 == 0:
                # Trim now and then, not on every insert: older rows than the window are never read.
                await conn.execute(
                    """DELETE FROM completion_times WHERE kind = ? AND id <= (
                           SELECT id FROM completion_times WHERE kind = ? ORDER BY id DESC LIMIT 1 OFFSET ?)""",
                    (kind, kind, self.history),
                )
