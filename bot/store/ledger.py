"""The usage ledger: every reservation, charge, refund and grant is a row; balances are sums of rows.

Two sums answer two questions:
  * what counts against a limit: ``SUM(units)`` over reserve, refund and grant rows (a job in flight
    counts from the moment it is accepted; a refund gives it back; a grant adds allowance);
  * what was charged, for reports: the commit rows, which carry the units, the provider and model that
    finally served the job (after any failover) and its estimated cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiosqlite

if TYPE_CHECKING:
    from bot.store.jobs import Job


async def reserve(
    conn: aiosqlite.Connection,
    *,
    job_id: str,
    guild_id: int,
    user_id: int,
    units: int,
    cost_micro_usd: int,
    model: str,
    provider: str,
    size: str,
    now: float,
    bypass: bool,
) -> None:
    """Record a reservation and mark the job as holding one (inside the caller's transaction)."""
    await conn.execute(
        """INSERT INTO ledger (guild_id, user_id, job_id, kind, units, cost_micro_usd, model, provider, size,
               window_at, created_at, reason, bypass)
           VALUES (?, ?, ?, 'reserve', ?, ?, ?, ?, ?, ?, ?, 'job accepted', ?)""",
        (guild_id, user_id, job_id, units, cost_micro_usd, model, provider, size, now, now, int(bypass)),
    )
    await conn.execute("UPDATE jobs SET charge_state = 'reserved', charge_units = ? WHERE id = ?", (units, job_id))


async def rebook(conn: aiosqlite.Connection, job_id: str, *, units: int, cost_micro_usd: int, size: str) -> None:
    """A failover's new terms on a job's reservation (inside the move's transaction): the units, price and size
    of the request as it now goes (bot/quotas.py ``repricing``), so the commit charges what is delivered and a
    refund gives back what is held. The job's ``charge_units`` follows its reservation's."""
    await conn.execute(
        "UPDATE ledger SET units = ?, cost_micro_usd = ?, size = ? WHERE job_id = ? AND kind = 'reserve'",
        (units, cost_micro_usd, size, job_id),
    )
    await conn.execute("UPDATE jobs SET charge_units = ? WHERE id = ?", (units, job_id))


async def settle(conn: aiosqlite.Connection, job: Job, *, delivered: bool, now: float, why: str = "") -> None:
    """Turn a job's reservation into a charge (delivered) or give it back (anything else).

    Idempotent: the unique index on (job_id) for commit/refund rows makes a second settlement a no-op.
    The new row is made from the reservation's in one statement (a job without one gets none). The caller
    sets the job's ``charge_state`` (``settled_state``) in the same transaction.
    """
    # A charge is as served (the provider may differ from the reservation's after a failover); a refund
    # gives back the reservation's own (None: the reservation row's value).
    cost: int | None = job.cost_micro_usd if delivered else None
    model: str | None = job.model if delivered else None
    provider: str | None = job.provider if delivered else None
    kind, reason, sign = ("commit", "image delivered", 1) if delivered else ("refund", f"job ended: {why}", -1)
    await conn.execute(
        """INSERT OR IGNORE INTO ledger (guild_id, user_id, job_id, kind, units, cost_micro_usd, model, provider,
               size, window_at, created_at, reason, bypass)
           SELECT guild_id, user_id, job_id, ?, units * ?, COALESCE(?, cost_micro_usd) * ?, COALESCE(?, model),
               COALESCE(?, provider), size, window_at, ?, ?, bypass
           FROM ledger WHERE job_id = ? AND kind = 'reserve'""",
        (kind, sign, cost, sign, model, provider, now, reason, job.id),
    )


def settled_state(delivered: bool) -> str:
    """A job's ``charge_state`` once settled."""
    return "committed" if delivered else "refunded"
