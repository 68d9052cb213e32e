"""The images members starred (cogs/star_reaction.py): rows of member and job, listed by ``/jobs starred:True``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.store import Database


class Starred:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def star(self, guild_id: int, user_id: int, job_ids: Sequence[str], *, now: float) -> None:
        """The member starred these images (starred again: kept as first starred)."""
        await self.star_by(guild_id, [user_id], job_ids, now=now)

    async def unstar(self, guild_id: int, user_id: int, job_ids: Sequence[str]) -> None:
        await self.unstar_by(guild_id, [user_id], job_ids)

    async def star_by(self, guild_id: int, user_ids: Iterable[int], job_ids: Sequence[str], *, now: float) -> None:
        """These members starred these images, in one transaction (a message's ⭐ read again: any number)."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT OR IGNORE INTO starred (guild_id, user_id, job_id, starred_at) VALUES (?, ?, ?, ?)",
                [(guild_id, user_id, job_id, now) for user_id in user_ids for job_id in job_ids],
            )

    async def unstar_by(self, guild_id: int, user_ids: Iterable[int], job_ids: Sequence[str]) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany(
                "DELETE FROM starred WHERE guild_id = ? AND user_id = ? AND job_id = ?",
                [(guild_id, user_id, job_id) for user_id in user_ids for job_id in job_ids],
            )

    async def starrers(self, guild_id: int, job_ids: Sequence[str]) -> set[int]:
        """The members who starred any of these images."""
        marks = ", ".join("?" * len(job_ids))
        async with (
            self.db.read() as conn,
            conn.execute(
                f"SELECT DISTINCT user_id FROM starred WHERE guild_id = ? AND job_id IN ({marks})",
                (guild_id, *job_ids),
            ) as cur,
        ):
            return {int(row[0]) for row in await cur.fetchall()}

    async def forget_messages(self, message_ids: Sequence[int]) -> int:
        """The stars on the images these deleted messages showed, gone with them; how many. Read first: most
        messages deleted in a server are no image of the bot's, or one nobody starred, and cost no write."""
        marks = ", ".join("?" * len(message_ids))
        starred = f"SELECT s.job_id FROM jobs j JOIN starred s ON s.job_id = j.id WHERE j.message_id IN ({marks})"
        async with self.db.read() as conn, conn.execute(f"{starred} LIMIT 1", tuple(message_ids)) as cur:
            if await cur.fetchone() is None:
                return 0
        async with self.db.transaction() as conn:
            cur = await conn.execute(f"DELETE FROM starred WHERE job_id IN ({starred})", tuple(message_ids))
            return cur.rowcount

    async def of(self, guild_id: int, user_id: int, *, limit: int) -> list[str]:
        """The member's starred images in this server, the latest starred first."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT job_id FROM starred WHERE guild_id = ? AND user_id = ? ORDER BY starred_at DESC, job_id "
                "LIMIT ?",
                (guild_id, user_id, limit),
            ) as cur,
        ):
            return [str(row[0]) for row in await cur.fetchall()]
