"""Members' /imagine preferences per server (bot/preferences.py), read by every /imagine."""

from __future__ import annotations

from bot.preferences import PREFERENCE_FIELDS, Preferences
from bot.store import Database
from bot.store.kept import Kept

# Members whose preferences stay in memory; past this, the longest kept are read again when needed.
KEPT_MEMBERS = 10_000


class PreferenceStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._kept: Kept[tuple[int, int], Preferences] = Kept(limit=KEPT_MEMBERS)

    async def get(self, guild_id: int, user_id: int) -> Preferences:
        return await self._kept.get((guild_id, user_id), lambda: self._read(guild_id, user_id))

    def kept(self, guild_id: int, user_id: int) -> Preferences | None:
        """The member's preferences if a recent ``get`` kept them (None: not in memory now), read without waiting:
        for a message drawn where nothing may wait on the database (bot/delivery.py)."""
        return self._kept.peek((guild_id, user_id))

    async def _read(self, guild_id: int, user_id: int) -> Preferences:
        async with (
            self.db.read() as conn,
            conn.execute(
                f"SELECT {', '.join(PREFERENCE_FIELDS)} FROM member_preferences WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            ) as cur,
        ):
            row = await cur.fetchone()
        if row is None:
            return Preferences()
        values = dict(zip(PREFERENCE_FIELDS, row, strict=True))
        for flag in ("web_search", "ping", "remix"):  # stored as 0 or 1
            if values[flag] is not None:
                values[flag] = bool(values[flag])
        return Preferences(**values)

    async def save(self, guild_id: int, user_id: int, prefs: Preferences, *, now: float) -> None:
        """Replace the member's preferences; none at all removes the row."""
        async with self.db.transaction() as conn:
            if prefs.empty:
                await conn.execute(
                    "DELETE FROM member_preferences WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
                )
            else:
                values = [getattr(prefs, name) for name in PREFERENCE_FIELDS]
                await conn.execute(
                    f"""INSERT OR REPLACE INTO member_preferences (guild_id, user_id, {", ".join(PREFERENCE_FIELDS)},
                        updated_at) VALUES (?, ?, {", ".join("?" * len(values))}, ?)""",
                    (guild_id, user_id, *values, now),
                )
        self._kept.wrote((guild_id, user_id))

    def erased(self, guild_id: int, user_id: int) -> None:
        """The member's row was deleted by their erasure (bot/store/erasure.py): the copy kept in memory goes too."""
        self._kept.wrote((guild_id, user_id))
