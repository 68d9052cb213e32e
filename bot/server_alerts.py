"""A server's monthly units or budget nearly spent, told to its moderators before members are refused.

A server with a monthly limit (``[quotas] guild_monthly_units`` / ``guild_monthly_budget_usd``, or its own set with
``/quota server``) refuses every request past it, and members learn it one refusal at a time. So the reservation
that takes the server past ``MOST`` of a limit, and the one after which an image like it no longer fits, are told
to the moderation log channel (cogs/quota.py posts them), each once per quota month and limit (one an admin raised
is told again when it too is reached): a row of ``server_alerts``
(bot/store/migrations/0029_server_alerts.sql), written in the reservation's own transaction, claims it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import aiosqlite

from bot.server_limits import usd

# The share of a monthly limit past which its server's moderators are told.
MOST = 0.8

What = Literal["units", "budget"]
Level = Literal["most", "spent"]


@dataclass(frozen=True, slots=True)
class ServerAlert:
    guild_id: int
    month_start: float
    resets_at: float
    what: What
    level: Level
    used: int  # units, or micro-dollars, reserved this quota month after the reservation
    limit: int

    def words(self) -> str:
        """The moderation log's post."""
        if self.what == "units":
            amount, spent, option = f"{self.used:,} of its {self.limit:,} units", "monthly units are", "monthly_units"
        else:
            amount, spent, option = f"{usd(self.used)} of its {usd(self.limit)}", "monthly budget is", "budget_usd"
        resets, raise_it = f"<t:{int(self.resets_at)}:R>", f"`/quota server {option}:`"
        if self.level == "most":
            used = f"{amount} this month ({self.used / self.limit:.0%})"
            return f"This server has used {used}. It resets {resets}; an admin may raise it with {raise_it}."
        return (
            f"This server's {spent} spent ({amount} used): members' requests are refused until it resets {resets}, or "
            f"an admin raises it with {raise_it}."
        )


def crossed(
    guild_id: int,
    bounds: tuple[float, float],
    what: What,
    *,
    before: int,
    after: int,
    limit: int | None,
    each: int,
) -> list[ServerAlert]:
    """The alerts a reservation that took the server's use of a monthly ``limit`` from ``before`` to ``after``
    crossed: past ``MOST`` of it, and (``each``: what one more image like it takes) the point where another no longer
    fits. None where nothing limits it (or a limit of 0: set by an admin, nothing ever fits)."""
    if not limit:
        return []
    start, end = bounds
    found: list[ServerAlert] = []
    if before < MOST * limit <= after:
        found.append(ServerAlert(guild_id, start, end, what, "most", after, limit))
    if each > 0 and limit - before >= each > limit - after:
        found.append(ServerAlert(guild_id, start, end, what, "spent", after, limit))
    return found


async def claim(conn: aiosqlite.Connection, alert: ServerAlert, now: float) -> bool:
    """Whether ``alert`` is this reservation's to tell: its row written now, in the reservation's transaction (False:
    told already this month)."""
    cursor = await conn.execute(
        "INSERT OR IGNORE INTO server_alerts (guild_id, month_start, what, level, limit_value, used, resets_at, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (alert.guild_id, alert.month_start, alert.what, alert.level, alert.limit, alert.used, alert.resets_at, now),
    )
    return cursor.rowcount == 1


_KEY = "guild_id = ? AND month_start = ? AND what = ? AND level = ? AND limit_value = ?"


def _key(alert: ServerAlert) -> tuple[object, ...]:
    return (alert.guild_id, alert.month_start, alert.what, alert.level, alert.limit)


async def to_tell(conn: aiosqlite.Connection, alert: ServerAlert, now: float) -> bool:
    """Whether this telling of ``alert`` is the one: its row is in the database (its reservation committed; a refused
    one took it back) and not told yet, and is marked told now, in one statement, so two tellings of one claim (a
    reservation's, and a start's of what a stop cut short) post it once."""
    cursor = await conn.execute(
        f"UPDATE server_alerts SET told_at = ? WHERE {_KEY} AND told_at IS NULL", (now, *_key(alert))
    )
    return cursor.rowcount == 1


async def untold(conn: aiosqlite.Connection, since: float) -> list[ServerAlert]:
    """Alerts of quota months from ``since`` claimed but never told: the bot stopped between a reservation's commit
    and its post."""
    async with conn.execute(
        "SELECT guild_id, month_start, resets_at, what, level, used, limit_value FROM server_alerts "
        "WHERE told_at IS NULL AND month_start >= ? ORDER BY created_at",
        (since,),
    ) as cursor:
        rows = await cursor.fetchall()
    return [
        ServerAlert(int(r[0]), float(r[1]), float(r[2]), cast(What, r[3]), cast(Level, r[4]), int(r[5]), int(r[6]))
        for r in rows
    ]
