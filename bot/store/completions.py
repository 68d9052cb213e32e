"""Completion times the poll schedule learns from (bot/schedule.py), kept so a restart keeps them."""

from __future__ import annotations

from collections import Counter

from bot.store import Database

BATCH = 32  # completions written together (4 values each: far below SQLite's 32,766 parameters)
MAX_WAIT = 5.0  # seconds the oldest unwritten completion may wait for others
TRIM_EVERY = 50  # rows of a kind written between trims of its history


class CompletionStore:
    """Rows of (kind, earliest, latest); only the most recent ``history`` per kind are read back."""

    def __init__(self, db: Database, *, history: int) -> None:
        self.db = db
        self.history = history
        self._pending: list[tuple[str, float, float, float]] = []  # (kind, earliest, latest, recorded_at)
        self._since_trim: Counter[str] = Counter()  # rows written per kind since its last trim

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
        """Record one completion: kept in memory and written with others (``flush``), once ``BATCH`` have
        gathered or the oldest has waited ``MAX_WAIT`` seconds. A row per job was one statement of about
        eighteen per job (bench/load.py); a crash loses at most those few seconds of samples, which only
        tune the schedule and are learned again."""
        self._pending.append((kind, earliest, latest, now))
        if len(self._pending) >= BATCH or now - self._pending[0][3] >= MAX_WAIT:
            await self.flush()

    async def flush(self) -> None:
        """Write what ``add`` kept, in one statement; trim each kind's rows now and then."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        async with self.db.read() as conn:  # one statement: atomic without BEGIN/COMMIT
            try:
                await conn.execute(
                    "INSERT INTO completion_times (kind, earliest, latest, recorded_at) VALUES "
                    + ", ".join(["(?, ?, ?, ?)"] * len(pending)),
                    [value for row in pending for value in row],
                )
            except BaseException:
                self._pending = pending + self._pending  # not written: the next flush writes them
                raise
            # Trim each kind now and then, not on every write: older rows than the window are never read.
            self._since_trim.update(row[0] for row in pending)
            for kind, count in list(self._since_trim.items()):
                if count >= TRIM_EVERY:
                    del self._since_trim[kind]
                    await conn.execute(
                        """DELETE FROM completion_times WHERE kind = ? AND id <= (
                               SELECT id FROM completion_times WHERE kind = ? ORDER BY id DESC LIMIT 1 OFFSET ?)""",
                        (kind, kind, self.history),
                    )
