"""The bot's DMs that show a request's words (migration 0031): kept so that an erasure reaches them.

A ✉️ copy (cogs/dm_reaction.py) and an end notice (cogs/end_notices.py) quote the request's words in a member's DMs,
where the member cannot delete the bot's messages. Each is recorded as it is sent, with the member it went to;
erasing the request's words (bot/store/erasure.py ``owe_redraws``) makes its redraw owed, done in the background by
bot/erased_messages.py. A ✉️ the bot finds given while it was away is answered unless a copy of that image went to
that member (``copied_to``, cogs/missed_reactions.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import aiosqlite

from bot.store import Database

Kind = Literal["copy", "end_notice"]


@dataclass(frozen=True, slots=True)
class DmCopy:
    message_id: int
    channel_id: int
    job_id: str
    user_id: int
    kind: Kind


async def record(
    db: Database, message_id: int, channel_id: int, job_id: str, user_id: int, kind: Kind, *, now: float
) -> None:
    """A DM sent showing ``job_id``'s request. Owed a redraw at once when that request's words are erased already:
    erased between the read the DM was drawn from and now, the DM may show them."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT OR IGNORE INTO dm_copies (message_id, channel_id, job_id, user_id, kind, sent_at, owed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, (SELECT erased_at FROM jobs WHERE id = ?))",
            (message_id, channel_id, job_id, user_id, kind, now, job_id),
        )


async def owe_redraws(conn: aiosqlite.Connection, job_ids: Sequence[str], *, now: float) -> None:
    """In the erasure's transaction: the DMs showing these requests' words owe a redraw."""
    await conn.executemany(
        "UPDATE dm_copies SET owed_at = ? WHERE job_id = ? AND owed_at IS NULL", [(now, job_id) for job_id in job_ids]
    )


async def owed(db: Database, *, limit: int) -> list[DmCopy]:
    """DMs still showing erased words, the longest owed first."""
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT message_id, channel_id, job_id, user_id, kind FROM dm_copies WHERE owed_at IS NOT NULL "
            "ORDER BY owed_at, message_id LIMIT ?",
            (limit,),
        )
    return [DmCopy(int(row[0]), int(row[1]), str(row[2]), int(row[3]), row[4]) for row in rows]


async def redrawn(db: Database, message_id: int) -> None:
    """Drawn again without the words, or found gone: nothing more is owed (the row stays: the member has the copy)."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE dm_copies SET owed_at = NULL WHERE message_id = ?", (message_id,))


async def of_jobs(db: Database, job_ids: Sequence[str]) -> list[DmCopy]:
    """Every DM recorded as showing any of these jobs' requests (``/mod purge`` deletes them: cogs/purge.py)."""
    marks = ", ".join("?" * len(job_ids))
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            f"SELECT message_id, channel_id, job_id, user_id, kind FROM dm_copies WHERE job_id IN ({marks})",
            tuple(job_ids),
        )
    return [DmCopy(int(row[0]), int(row[1]), str(row[2]), int(row[3]), row[4]) for row in rows]


async def forget(db: Database, message_ids: Sequence[int]) -> None:
    """These DMs were deleted: nothing is left of them to redraw."""
    async with db.transaction() as conn:
        await conn.executemany("DELETE FROM dm_copies WHERE message_id = ?", [(m,) for m in message_ids])


async def copied_to(db: Database, job_ids: Sequence[str]) -> set[int]:
    """The members who were sent a ✉️ copy of any of these jobs' images."""
    marks = ", ".join("?" * len(job_ids))
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            f"SELECT DISTINCT user_id FROM dm_copies WHERE kind = 'copy' AND job_id IN ({marks})", tuple(job_ids)
        )
    return {int(row[0]) for row in rows}


async def recorded_since(db: Database) -> float:
    """Since when copies are recorded (migration 0031): none sent before is known."""
    async with db.read() as conn, conn.execute("SELECT MIN(at) FROM dm_copies_since") as cursor:
        row = await cursor.fetchone()
    return float(row[0]) if row is not None and row[0] is not None else 0.0
