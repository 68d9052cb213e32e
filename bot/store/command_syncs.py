"""The digest of the slash commands last synced with Discord, per application and scope (bot/command_sync.py)."""

from __future__ import annotations

from bot.store import Database

GLOBAL_SCOPE = 0  # the scope of the global commands; a guild's is its id


class CommandSyncs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def last(self, application_id: int, scope: int) -> str | None:
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT digest FROM command_syncs WHERE application_id = ? AND scope = ?", (application_id, scope)
            ) as cur,
        ):
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def record(self, application_id: int, scope: int, digest: str, *, now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO command_syncs (application_id, scope, digest, synced_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (application_id, scope) DO UPDATE SET digest = excluded.digest,
                       synced_at = excluded.synced_at""",
                (application_id, scope, digest, now),
            )
