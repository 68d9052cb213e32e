"""Pings owed (cogs/ready_pings.py): a row before a ping is sent, paid once Discord has it or has refused it for
good, so that a Discord failure or a stop in between leaves it to a later try or the next start. A paid row is
kept for ``KEEP_PAID_SECONDS`` (then deleted): the next start's sweep of recent ends owes a ping to each end that
has no row, one a stop came between its end and its ping's row."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store import Database


@dataclass(frozen=True, slots=True)
class OwedPing:
    """One request's ping: ``said`` after the mention of ``user_id``, as a reply to ``message_id``."""

    request_key: str  # the batch's id, else the job's
    guild_id: int
    channel_id: int
    user_id: int
    message_id: int
    said: str
    owed_at: float  # wall clock


# How long a paid ping's row is kept: longer than the sweep looks back (cogs/ready_pings.py PING_FRESH_SECONDS).
KEEP_PAID_SECONDS = 600.0
# Paid rows are deleted at one payment in this many, and at each start: not a statement more per ping.
PRUNE_EVERY = 64
_PRUNE = "DELETE FROM owed_pings WHERE paid_at < ?"


class OwedPings:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._payments = 0

    async def owe(self, ping: OwedPing) -> bool:
        """Record ``ping`` as about to be sent; False when its request's ping is owed already (one per request)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO owed_pings (request_key, guild_id, channel_id, user_id, message_id, said, "
                "owed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    ping.request_key,
                    ping.guild_id,
                    ping.channel_id,
                    ping.user_id,
                    ping.message_id,
                    ping.said,
                    ping.owed_at,
                ),
            )
            return cur.rowcount == 1

    async def paid(self, request_key: str, *, now: float) -> None:
        """Nothing is owed for that request any more: sent, refused for good, or too late."""
        self._payments += 1
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE owed_pings SET paid_at = ? WHERE request_key = ?", (now, request_key))
            if self._payments % PRUNE_EVERY == 0:
                await conn.execute(_PRUNE, (now - KEEP_PAID_SECONDS,))

    async def prune(self, *, now: float) -> None:
        """Delete the rows paid more than ``KEEP_PAID_SECONDS`` ago; looked for first, so that a start with none
        to delete (the usual one: they go as pings are paid) takes no write lock."""
        before = now - KEEP_PAID_SECONDS
        async with (
            self.db.read() as conn,
            conn.execute("SELECT 1 FROM owed_pings WHERE paid_at < ? LIMIT 1", (before,)) as cur,
        ):
            if await cur.fetchone() is None:
                return
        async with self.db.transaction() as conn:
            await conn.execute(_PRUNE, (before,))

    async def known(self, request_key: str) -> bool:
        """Whether that request's ping was ever owed (and not deleted since): owed now, or paid."""
        async with (
            self.db.read() as conn,
            conn.execute("SELECT 1 FROM owed_pings WHERE request_key = ?", (request_key,)) as cur,
        ):
            return await cur.fetchone() is not None

    async def sweep_since(self) -> float:
        """The earliest end a sweep may owe a ping to: this table's paid rows were deleted before then."""
        async with self.db.read() as conn, conn.execute("SELECT MAX(since) FROM ping_sweep") as cur:
            row = await cur.fetchone()
        return float(row[0]) if row is not None and row[0] is not None else 0.0

    async def all(self) -> list[OwedPing]:
        """Every ping owed and not paid, the oldest first."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT request_key, guild_id, channel_id, user_id, message_id, said, owed_at FROM owed_pings "
                "WHERE paid_at IS NULL ORDER BY owed_at"
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [OwedPing(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), str(r[5]), float(r[6])) for r in rows]
