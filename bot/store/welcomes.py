"""The servers the bot has welcomed (migration 0032), so each gets one welcome, through restarts and rejoins."""

from __future__ import annotations

from bot.store import Database


async def since(db: Database, *, now: float) -> float:
    """Since when servers are welcomed: ``now`` at the first call on this database, the same ever after."""
    async with db.transaction() as conn:
        await conn.execute("INSERT OR IGNORE INTO welcomes_since (id, since) VALUES (1, ?)", (now,))
        async with conn.execute("SELECT since FROM welcomes_since WHERE id = 1") as cursor:
            row = await cursor.fetchone()
    assert row is not None
    return float(row[0])


async def claim(db: Database, guild_id: int, *, now: float) -> bool:
    """Whether the welcome of ``guild_id`` is this caller's to post: True once per server. Claimed before it is
    posted: a stop between the two loses a welcome rather than posting it twice."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT OR IGNORE INTO guild_welcomes (guild_id, welcomed_at) VALUES (?, ?)", (guild_id, now)
        )
        return cursor.rowcount == 1


async def posted_in(db: Database, guild_id: int, channel_id: int) -> None:
    """The welcome of ``guild_id`` went to ``channel_id``."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE guild_welcomes SET channel_id = ? WHERE guild_id = ?", (channel_id, guild_id))
