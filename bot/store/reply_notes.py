"""Which members' replies the bot has sent a private note about (cogs/replies.py): one note per reply."""

from __future__ import annotations

from bot.store import Database

# A restart reads the replies of the last hour again; rows well past that are of no use.
KEPT_SECONDS = 2 * 86400.0


class ReplyNotes:
    """Rows of reply message ids, written once the note is sent (a kill in between may send it again)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def sent(self, message_id: int) -> bool:
        async with (
            self.db.read() as conn,
            conn.execute("SELECT 1 FROM reply_notes WHERE message_id = ?", (message_id,)) as cur,
        ):
            return await cur.fetchone() is not None

    async def record(self, message_id: int, *, now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO reply_notes (message_id, noted_at) VALUES (?, ?)", (message_id, now)
            )
            await conn.execute("DELETE FROM reply_notes WHERE noted_at < ?", (now - KEPT_SECONDS,))
