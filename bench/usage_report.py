"""How fast usage reports and the quota check run on a large ledger, with and without the proposed indexes.

Builds (or reuses, --db PATH) a SQLite file with ~1,000,000 ledger rows over three months: ~50 servers of
very different sizes, ~5,000 members, reserve + commit or refund per job, failovers, grants, bypass rows,
a few jobs in flight, and the matching jobs rows. Then, for three index set-ups, times through the real
aiosqlite connection:

  * a month ``guild_report`` for the busiest server and a month ``user_report`` for its busiest member;
  * the quota check (one member's SUM(units) over the day / week / month window) and the server budget check;
  * the month CSV export query, and one ledger insert (what the extra indexes cost each write);

printing median and p95 in ms and EXPLAIN QUERY PLAN for each query. Figures, not a pass/fail test.
Targets: quota check < 5 ms, month report < 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path

from bot.store import Database
from bot.store import usage as usage_sql
from bot.store.usage import UsageReports, period_bounds

# What the report asks the lead to add as migration 0004 (the bench creates them itself to measure).
PROPOSED = {
    # Guild reports: kind then window_at make every report query a range seek, and the trailing columns
    # make it index-only. Also serves the server budget check (three seeks, covering units and cost).
    "ledger_guild_kind_window": "CREATE INDEX ledger_guild_kind_window ON ledger "
    "(guild_id, kind, window_at, user_id, units, cost_micro_usd, bypass, model, provider)",
    # The quota check and member reports: (guild, member, kind, window) seeks, index-only. Covering every
    # reported column also keeps the planner (no ANALYZE) from preferring a scan of the guild index.
    "ledger_user_kind_window": "CREATE INDEX ledger_user_kind_window ON ledger "
    "(guild_id, user_id, kind, window_at, units, cost_micro_usd, bypass, model, provider)",
    # Failed / blocked / cancelled counts without reading the (wide) jobs rows.
    "jobs_guild_state": "CREATE INDEX jobs_guild_state ON jobs (guild_id, state, created_at, user_id)",
}
# 0003's ledger indexes, which the proposed ones make redundant (dropping them keeps inserts as cheap as now).
SUPERSEDED = {
    "ledger_user_window": "CREATE INDEX ledger_user_window ON ledger (guild_id, user_id, window_at)",
    "ledger_guild_window": "CREATE INDEX ledger_guild_window ON ledger (guild_id, window_at)",
}
SETUPS = (
    ("0003 indexes only", (), ()),
    ("0003 + proposed", tuple(PROPOSED), ()),
    ("proposed, superseded 0003 ledger indexes dropped", tuple(PROPOSED), tuple(SUPERSEDED)),
)

QUOTA_SQL = (
    "SELECT COALESCE(SUM(units), 0) FROM ledger WHERE guild_id = ? AND user_id = ? AND window_at >= ? "
    "AND kind IN ('reserve', 'refund', 'grant')"
)
# bot.quotas._check_guild: runs inside every accepted job's transaction when a server budget is set.
BUDGET_SQL = (
    "SELECT COALESCE(SUM(units), 0), COALESCE(SUM(cost_micro_usd), 0) FROM ledger "
    "WHERE guild_id = ? AND window_at >= ? AND kind IN ('reserve', 'refund', 'grant')"
)

START = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
NOW = datetime(2024, 5, 31, 23, 0, tzinfo=UTC).timestamp()  # so "month" is the whole of May
MODELS = (  # model, size, units, micro-dollars, share
    ("nano_banana", "1K", 1, 39_000, 0.6),
    ("nano_banana_pro", "2K", 3, 134_000, 0.3),
    ("nano_banana_pro", "4K", 5, 240_000, 0.1),
)
PROVIDERS = ("seaart", "kie", "segmind")
OUTCOMES = ("delivered", "failed", "blocked", "cancelled", "expired")
OUTCOME_SHARES = (0.88, 0.05, 0.04, 0.02, 0.01)
GRANT_SHARE = 0.002
IN_FLIGHT = 40


# ---- seeding -------------------------------------------------------------------------------------


def _seed(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    guilds = [100_000_000_000_000_000 + i for i in range(50)]
    guild_weight = [1 / (rank + 1) for rank in range(len(guilds))]  # Zipf: a few busy servers, a long tail
    members = [(rng.choices(guilds, guild_weight)[0], 200_000_000_000_000_000 + i) for i in range(5_000)]
    # Activity per member is heavy-tailed too; a member's share of all jobs = server weight x own weight.
    activity = [rng.paretovariate(1.2) for _ in members]
    per_guild: dict[int, float] = {}
    for (guild, _), a in zip(members, activity, strict=True):
        per_guild[guild] = per_guild.get(guild, 0.0) + a
    weights = [guild_weight[guilds.index(g)] * a / per_guild[g] for (g, _), a in zip(members, activity, strict=True)]
    grants = int(rows * GRANT_SHARE)
    jobs = (rows - grants + IN_FLIGHT) // 2
    times = sorted(rng.uniform(START, NOW - 900) for _ in range(jobs - IN_FLIGHT))
    times += sorted(rng.uniform(NOW - 600, NOW) for _ in range(IN_FLIGHT))
    who = rng.choices(members, weights, k=jobs)

    def generate() -> Iterator[tuple[tuple[object, ...], list[tuple[object, ...]]]]:
        for i, (t, (guild, user)) in enumerate(zip(times, who, strict=True)):
            model, size, units, cost, _ = rng.choices(MODELS, [m[4] for m in MODELS])[0]
            provider = rng.choices(PROVIDERS, (0.5, 0.3, 0.2))[0]
            state = "running" if i >= jobs - IN_FLIGHT else rng.choices(OUTCOMES, OUTCOME_SHARES)[0]
            bypass = int(user % 97 == 0)
            job_id = f"{rng.getrandbits(64):016x}"
            served = provider
            if state == "delivered" and rng.random() < 0.04:  # failover: charged to the provider that served
                served = rng.choice([p for p in PROVIDERS if p != provider])
            done = t + rng.uniform(20, 120)
            charge = {"delivered": "committed", "running": "reserved"}.get(state, "refunded")
            request = json.dumps({"model": model, "prompt": f"a banana number {i} in a {size} studio shot"})
            job = (
                job_id,
                state,
                served,
                model,
                request,
                t + 600,
                t,
                done,
                None if state == "running" else done,
                guild,
                guild + 1,
                user,
                units,
                cost,
                charge,
                units,
                {"failed": "provider", "blocked": "content", "expired": "timeout"}.get(state),
            )
            head = (guild, user, job_id)
            ledger: list[tuple[object, ...]] = [
                (*head, "reserve", units, cost, model, provider, size, t, t, "job accepted", bypass)
            ]
            if state == "delivered":
                ledger.append((*head, "commit", units, cost, model, served, size, t, done, "image delivered", bypass))
            elif state != "running":
                why = f"job ended: {state}"
                ledger.append((*head, "refund", -units, -cost, model, provider, size, t, done, why, bypass))
            yield job, ledger

    jobs_rows: list[tuple[object, ...]] = []
    ledger_rows: list[tuple[object, ...]] = []
    for job, ledger in generate():
        jobs_rows.append(job)
        ledger_rows.extend(ledger)
    grant_times = sorted(rng.uniform(START, NOW) for _ in range(grants))
    grant_rows: list[tuple[object, ...]] = [
        (g, u, None, "grant", -rng.choice((5, 10, 25)), 0, None, None, None, t, t, "event prize", 0)
        for (g, u), t in zip(rng.choices(members, weights, k=grants), grant_times, strict=True)
    ]
    # Appended in created_at order, as the bot appends them.
    ledger_rows = sorted(ledger_rows + grant_rows, key=itemgetter(10))

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # A bench file only: no fsync while seeding, and a page cache big enough for the index inserts.
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-400000")
        conn.execute("BEGIN")
        conn.executemany(
            """INSERT INTO jobs (id, state, provider, model, request_json, deadline_at, created_at, updated_at,
                   finished_at, guild_id, channel_id, user_id, cost_units, cost_micro_usd, charge_state,
                   charge_units, error_category)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            jobs_rows,
        )
        conn.executemany(
            """INSERT INTO ledger (guild_id, user_id, job_id, kind, units, cost_micro_usd, model, provider, size,
                   window_at, created_at, reason, bypass)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            ledger_rows,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


async def _prepare(path: Path, rows: int, seed: int) -> None:
    db = Database(path)
    await db.connect()  # creates the schema through the real migrations
    async with db.read() as conn, conn.execute("SELECT COUNT(*) FROM ledger") as cur:
        found = (await cur.fetchone() or (0,))[0]
    await db.close()
    if found:
        print(f"reusing {path}: {found:,} ledger rows")
        return
    started = time.perf_counter()
    _seed(path, rows, seed)
    print(f"seeded {path} in {time.perf_counter() - started:.1f} s")


# ---- timing --------------------------------------------------------------------------------------


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:8.2f} ms   p95 {p95 * 1000:8.2f} ms   (n={len(ordered)})"


async def _time(runs: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    await call()  # the first run warms the page cache; every figure below is a warm one
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def _plan(path: Path, sql: str, params: tuple[object, ...]) -> list[str]:
    # A fresh connection: a cached EXPLAIN statement is not re-prepared after an index is dropped.
    with sqlite3.connect(path) as conn:
        return [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


async def _setup(db: Database, proposed: tuple[str, ...], dropped: tuple[str, ...]) -> float:
    started = time.perf_counter()
    async with db.transaction() as conn:
        for name, sql in PROPOSED.items():
            await conn.execute(
                sql.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS")
                if name in proposed
                else f"DROP INDEX IF EXISTS {name}"
            )
        for name, sql in SUPERSEDED.items():
            await conn.execute(
                f"DROP INDEX IF EXISTS {name}"
                if name in dropped
                else sql.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS")
            )
    return time.perf_counter() - started


async def _index_sizes(db: Database) -> str:
    try:
        async with (
            db.read() as conn,
            conn.execute(
                "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master "
                "WHERE type = 'index' AND tbl_name IN ('ledger', 'jobs')) OR name IN ('ledger', 'jobs') "
                "GROUP BY name ORDER BY name"
            ) as cur,
        ):
            return ", ".join(f"{name} {size / 1_048_576:.0f} MiB" for name, size in await cur.fetchall())
    except Exception:  # dbstat is an optional SQLite build feature
        return "(dbstat not available)"


async def _inserts(db: Database, members: list[tuple[int, int]]) -> list[float]:
    """What more indexes cost each write: one reservation row per transaction, as the bot writes them.
    The rows are deleted afterwards, so the file stays as seeded."""
    async with db.read() as conn, conn.execute("SELECT MAX(id) FROM ledger") as cur:
        last = int((await cur.fetchone() or (0,))[0])
    samples = []
    try:
        for n, (guild, user) in enumerate(members):
            started = time.perf_counter()
            async with db.transaction() as conn:
                await conn.execute(
                    """INSERT INTO ledger (guild_id, user_id, job_id, kind, units, cost_micro_usd, model, provider,
                           size, window_at, created_at, reason)
                       VALUES (?, ?, ?, 'reserve', 1, 39000, 'nano_banana', 'seaart', '1K', ?, ?, 'bench')""",
                    (guild, user, f"bench-{n}", NOW + n, NOW + n),
                )
            samples.append(time.perf_counter() - started)
    finally:
        async with db.transaction() as conn:
            await conn.execute("DELETE FROM ledger WHERE id > ?", (last,))
    return samples


async def _bench(path: Path, runs: int, keep_indexes: bool) -> None:
    db = Database(path)
    await db.connect()
    try:
        async with db.read() as conn:
            async with conn.execute("SELECT guild_id FROM ledger GROUP BY guild_id ORDER BY COUNT(*) DESC") as cur:
                guilds = [int(r[0]) for r in await cur.fetchall()]
            busy = guilds[0]
            async with conn.execute("SELECT MAX(window_at) FROM ledger") as cur:
                now = float((await cur.fetchone() or (NOW,))[0])
            async with conn.execute(
                "SELECT guild_id, user_id FROM ledger WHERE kind = 'commit' GROUP BY guild_id, user_id "
                "ORDER BY COUNT(*) DESC"
            ) as cur:
                active = [(int(g), int(u)) for g, u in await cur.fetchall()]
        top_user = next(u for g, u in active if g == busy)
        since, until = period_bounds("month", now)
        windows = {w: period_bounds(w, now)[0] for w in ("day", "week", "month")}
        async with (
            db.read() as conn,
            conn.execute(
                "SELECT COUNT(*) FROM ledger WHERE guild_id = ? AND window_at >= ? AND window_at < ?",
                (busy, since, until),
            ) as cur,
        ):
            in_month = (await cur.fetchone() or (0,))[0]
        print(f"busiest guild {busy}: {in_month:,} ledger rows in the month; busiest member {top_user}")
        # Members picked as traffic picks them: the busy ones more often (the order of `active`).
        rng = random.Random(1)
        sample = [active[min(int(rng.paretovariate(0.6)) - 1, len(active) - 1)] for _ in range(runs * 10)]

        reports = UsageReports(db)
        for title, proposed, dropped in SETUPS:
            took = await _setup(db, proposed, dropped)
            print(f"\n=== {title} (index changes took {took:.1f} s)")
            print(f"sizes: {await _index_sizes(db)}")
            plans: dict[str, tuple[str, tuple[object, ...]]] = {
                "guild totals": (usage_sql.GUILD_TOTALS_SQL, (busy, since, until)),
                "guild top users": (usage_sql.TOP_USERS_SQL, (busy, since, until, 10)),
                "guild by model": (usage_sql.GUILD_BY_MODEL_SQL, (busy, since, until)),
                "guild outcomes": (usage_sql.GUILD_OUTCOMES_SQL, (busy, since, until)),
                "guild in flight": (usage_sql.GUILD_IN_FLIGHT_SQL, (busy,)),
                "user totals": (usage_sql.USER_TOTALS_SQL, (busy, top_user, since, until)),
                "user by day": (usage_sql.USER_CHARGES_SQL, (busy, top_user, since, until)),
                "user outcomes": (usage_sql.USER_OUTCOMES_SQL, (busy, top_user, since, until)),
                "quota check": (QUOTA_SQL, (busy, top_user, windows["month"])),
                "budget check": (BUDGET_SQL, (busy, windows["month"])),
                "export": (usage_sql.EXPORT_SQL, (busy, since, until)),
            }
            for name, (sql, params) in plans.items():
                print(f"  plan {name:<16} " + " | ".join(_plan(path, sql, params)))

            async def guild() -> object:
                return await reports.guild_report(busy, since, until)

            async def member() -> object:
                return await reports.user_report(busy, top_user, since, until)

            async def export() -> object:
                return await reports.export_rows(busy, since, until)

            print(f"guild_report, month       {_ms(await _time(runs, guild))}")
            print(f"user_report, month        {_ms(await _time(runs, member))}")
            print(f"export_rows, month        {_ms(await _time(max(3, runs // 4), export))}")
            for window, start in windows.items():
                picks = iter(sample)

                async def quota(start: float = start, picks: Iterator[tuple[int, int]] = picks) -> object:
                    g, u = next(picks)
                    async with db.read() as conn, conn.execute(QUOTA_SQL, (g, u, start)) as cur:
                        return await cur.fetchone()

                print(f"quota check, {window:<5}        {_ms(await _time(runs * 10 - 1, quota))}")

            async def heaviest() -> object:
                async with db.read() as conn, conn.execute(QUOTA_SQL, (busy, top_user, windows["month"])) as cur:
                    return await cur.fetchone()

            print(f"quota check, busiest member, month {_ms(await _time(runs * 10, heaviest))}")

            async def budget() -> object:
                async with db.read() as conn, conn.execute(BUDGET_SQL, (busy, windows["month"])) as cur:
                    return await cur.fetchone()

            print(f"budget check, month       {_ms(await _time(runs, budget))}")
            print(f"ledger insert (1 row/txn) {_ms(await _inserts(db, sample[: runs * 10]))}")
        if not keep_indexes:
            await _setup(db, (), ())  # leave the file with 0003's schema, as the migrations made it
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file to build, or reuse when it has rows")
    parser.add_argument("--rows", type=int, default=1_000_000, help="ledger rows to seed (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per report (quota checks: 10x)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-indexes", action="store_true", help="leave the proposed indexes in the file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "usage.sqlite3"
        asyncio.run(_prepare(path, args.rows, args.seed))
        asyncio.run(_bench(path, args.runs, args.keep_indexes))


if __name__ == "__main__":
    main()
