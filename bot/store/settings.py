"""Per-server defaults and provider health, as small repositories over SQLite."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store import Database
from bot.store.kept import Kept


@dataclass(frozen=True, slots=True)
class GuildDefaults:
    guild_id: int
    default_model: str | None = None
    default_provider: str | None = None
    updated_by: int | None = None
    updated_at: float | None = None
    # The most images a member may ask for with one /imagine (count); None: the bot's maximum.
    max_count: int | None = None
    # Whether a slow request pings its member when it ends (cogs/ready_pings.py); None: as the bot's config.
    pings: bool | None = None


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    provider: str
    healthy: bool
    category: str | None
    detail: str | None
    updated_at: float


class SettingsStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Read by every /imagine (its model, then the cap on ``count``): kept after the first read.
        self._defaults: Kept[int, GuildDefaults] = Kept()

    async def guild_defaults(self, guild_id: int) -> GuildDefaults:
        return await self._defaults.get(guild_id, lambda: self._read_defaults(guild_id))

    def kept_defaults(self, guild_id: int) -> GuildDefaults | None:
        """The server's defaults if a recent ``guild_defaults`` kept them (None: not in memory now)."""
        return self._defaults.peek(guild_id)

    async def _read_defaults(self, guild_id: int) -> GuildDefaults:
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT default_model, default_provider, updated_by, updated_at, max_count, pings FROM guild_settings "
                "WHERE guild_id = ?",
                (guild_id,),
            ) as cur,
        ):
            row = await cur.fetchone()
        if row is None:
            return GuildDefaults(guild_id)
        return GuildDefaults(guild_id, row[0], row[1], row[2], row[3], row[4], None if row[5] is None else bool(row[5]))

    async def set_guild_defaults(
        self,
        guild_id: int,
        *,
        model: str | None,
        provider: str | None,
        by: int,
        now: float,
        max_count: int | None = None,
        pings: bool | None = None,
    ) -> GuildDefaults:
        """Set (or with None, clear) the server's default model and provider, its cap on ``count`` and whether
        slow requests ping their members."""
        async with self.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO guild_settings (guild_id, default_model, default_provider, updated_by, updated_at,
                       max_count, pings)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (guild_id) DO UPDATE SET default_model = excluded.default_model,
                       default_provider = excluded.default_provider, updated_by = excluded.updated_by,
                       updated_at = excluded.updated_at, max_count = excluded.max_count, pings = excluded.pings""",
                (guild_id, model, provider, by, now, max_count, None if pings is None else int(pings)),
            )
        self._defaults.wrote(guild_id)
        return GuildDefaults(guild_id, model, provider, by, now, max_count, pings)

    async def mark_provider(
        self, provider: str, *, healthy: bool, category: str | None, detail: str | None, now: float
    ) -> bool:
        """Record a provider's health; returns True if that changed it (so alerts go out once)."""
        async with self.db.transaction() as conn:
            async with conn.execute("SELECT healthy FROM provider_health WHERE provider = ?", (provider,)) as cur:
                row = await cur.fetchone()
            await conn.execute(
                """INSERT INTO provider_health (provider, healthy, category, detail, updated_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (provider) DO UPDATE SET healthy = excluded.healthy, category = excluded.category,
                       detail = excluded.detail, updated_at = excluded.updated_at""",
                (provider, int(healthy), category, detail, now),
            )
        previous = bool(row[0]) if row is not None else True
        return previous != healthy

    async def provider_health(self) -> dict[str, ProviderHealth]:
        async with (
            self.db.read() as conn,
            conn.execute("SELECT provider, healthy, category, detail, updated_at FROM provider_health") as cur,
        ):
            rows = await cur.fetchall()
        return {r[0]: ProviderHealth(r[0], bool(r[1]), r[2], r[3], r[4]) for r in rows}
