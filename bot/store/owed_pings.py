"""Pings owed (cogs/ready_pings.py): a row before a ping is sent, gone once Discord has it or has refused it for
good, so that a Discord failure or a stop in between leaves it to a later try or the next start."""

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


class OwedPings:
    def __init__(self, db: Database) -> None:
        self.db = db

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

    async def paid(self, request_key: str) -> None:
        """Nothing is owed for that request any more: sent, refused for good, or too late."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM owed_pings WHERE request_key = ?", (request_key,))

    async def all(self) -> list[OwedPing]:
        """Every ping owed, the oldest first."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT request_key, guild_id, channel_id, user_id, message_id, said, owed_at FROM owed_pings "
                "ORDER BY owed_at"
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [OwedPing(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), str(r[5]), float(r[6])) for r in rows]
