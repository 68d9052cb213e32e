"""The bot's DMs that show a request's words (migration 0031): kept so that an erasure reaches them.

A ✉️ copy (cogs/dm_reaction.py) and an end notice (cogs/end_notices.py) quote the request's words in a member's DMs,
where the member cannot delete the bot's messages. Each is recorded as it is sent; erasing the request's words
(bot/store/erasure.py ``owe_redraws``) makes its redraw owed, done in the background by bot/erased_messages.py,
after which the row goes: nothing more is kept of it.
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
    kind: Kind


async def record(db: Database, message_id: int, channel_id: int, job_id: str, kind: Kind, *, now: float) -> None:
    """A DM sent showing ``job_id``'s request. Owed a redraw at once when that request's words are erased already:
    erased between the read the DM was drawn from and now, the DM may show them."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT OR IGNORE INTO dm_copies (message_id, channel_id, job_id, kind, sent_at, owed_at) "
            "VALUES (?, ?, ?, ?, ?, (SELECT erased_at FROM jobs WHERE id = ?))",
            (message_id, channel_id, job_id, kind, now, job_id),
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
            "SELECT message_id, channel_id, job_id, kind FROM dm_copies WHERE owed_at IS NOT NULL "
            "ORDER BY owed_at, message_id LIMIT ?",
            (limit,),
        )
    return [DmCopy(int(row[0]), int(row[1]), str(row[2]), row[3]) for row in rows]


async def redrawn(db: Database, message_id: int) -> None:
    """Drawn again without the words, or found gone: nothing more is owed, nor kept."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM dm_copies WHERE message_id = ?", (message_id,))
