"""Which members' replies the bot has sent a private note about (cogs/replies.py): one note per reply; the
notes that went as a reply in the channel, to delete once their time is up, whatever stops between; and the
notes not sent yet, which the next start takes up again should this run stop first. A member's @mention the bot
offered to imagine (cogs/mention_prompts.py) is kept the same way: offered once, its offer deleted in time."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store import Database

# A restart reads the replies of the last hour again; rows well past that are of no use.
KEPT_SECONDS = 2 * 86400.0


@dataclass(frozen=True, slots=True)
class NoteInChannel:
    """A note posted as a reply in the channel, to be deleted at ``delete_at`` (wall clock)."""

    reply_id: int
    channel_id: int
    message_id: int
    delete_at: float


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

    async def record(self, message_id: int, *, now: float, in_channel: NoteInChannel | None = None) -> None:
        """The note about reply ``message_id`` is sent; ``in_channel``: as that reply, to delete later.
        Rows past KEPT_SECONDS go, unless their note is still to be deleted."""
        where = (in_channel.channel_id, in_channel.message_id, in_channel.delete_at) if in_channel else (None,) * 3
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO reply_notes (message_id, noted_at, note_channel_id, note_message_id, "
                "delete_at) VALUES (?, ?, ?, ?, ?)",
                (message_id, now, *where),
            )
            await conn.execute(
                "DELETE FROM reply_notes WHERE noted_at < ? AND delete_at IS NULL", (now - KEPT_SECONDS,)
            )
            await conn.execute("DELETE FROM owed_notes WHERE message_id = ?", (message_id,))

    async def owe(self, message_id: int, *, channel_id: int, now: float) -> None:
        """A note about reply ``message_id`` (in ``channel_id``) is about to be tried: until ``record`` or
        ``settle``, the next start takes that reply up again."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO owed_notes (message_id, channel_id, owed_at) VALUES (?, ?, ?)",
                (message_id, channel_id, now),
            )

    async def settle(self, message_id: int) -> None:
        """Nothing is owed about reply ``message_id`` any more: told otherwise, given up, or gone."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM owed_notes WHERE message_id = ?", (message_id,))

    async def owed(self, *, after: int) -> list[tuple[int, int]]:
        """(channel, reply) of the notes owed about replies posted after message id ``after``, oldest
        first; those about older replies (past taking up again) are let go."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM owed_notes WHERE message_id <= ?", (after,))
            async with conn.execute("SELECT channel_id, message_id FROM owed_notes ORDER BY message_id") as cur:
                return [(int(row[0]), int(row[1])) for row in await cur.fetchall()]

    async def to_delete(self) -> list[NoteInChannel]:
        """Every note in a channel not yet deleted, the soonest due first."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT message_id, note_channel_id, note_message_id, delete_at FROM reply_notes "
                "WHERE delete_at IS NOT NULL ORDER BY delete_at"
            ) as cur,
        ):
            return [NoteInChannel(int(r[0]), int(r[1]), int(r[2]), float(r[3])) for r in await cur.fetchall()]

    async def deleted(self, reply_id: int) -> None:
        """The note about message ``reply_id`` is gone from its channel (deleted, or found gone already)."""
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE reply_notes SET delete_at = NULL WHERE message_id = ?", (reply_id,))
