"""Usage reports on a real SQLite file: every figure equals a sum computed here from the rows inserted."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Settings, load_settings
from bot.quotas import window_bounds
from bot.store import Database
from bot.store.usage import (
    CSV_COLUMNS,
    GroupUsage,
    GuildReport,
    LedgerEntry,
    Usage,
    UsageReports,
    UserUsage,
    format_usd,
    period_bounds,
    period_words,
    to_csv,
)
from bot.usage_cli import UsageInputError, run_usage

GUILD, OTHER_GUILD = 111, 222


def ts(text: str) -> float:
    """'2024-03-10 12:00' (UTC unless an offset is given) as a Unix time."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


# ---- seeding -------------------------------------------------------------------------------------


class Ledger:
    """Inserts jobs and ledger rows with plain SQL and keeps a copy to compute the expected figures."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.rows: list[dict[str, Any]] = []
        self.jobs: list[dict[str, Any]] = []
        self._n = 0

    async def row(self, **values: Any) -> dict[str, Any]:
        row: dict[str, Any] = {
            "guild_id": GUILD,
            "job_id": None,
            "cost_micro_usd": 0,
            "model": None,
            "provider": None,
            "size": None,
            "reason": None,
            "bypass": 0,
            "actor_id": None,
            **values,
        }
        row.setdefault("created_at", row["window_at"])
        columns = ", ".join(row)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"INSERT INTO ledger ({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
            )
            row["id"] = cur.lastrowid
        self.rows.append(row)
        return row

    async def job(
        self,
        *,
        user_id: int,
        at: float,
        state: str = "delivered",
        guild_id: int = GUILD,
        model: str = "nano_banana",
        provider: str = "seaart",
        served_by: str | None = None,
        size: str = "1K",
        units: int = 1,
        cost: int = 39_000,
        charged_cost: int | None = None,
        bypass: bool = False,
        settled_at: float | None = None,
    ) -> str:
        """A job as the bot records it: the jobs row, its reservation, and the commit or refund for its end."""
        self._n += 1
        job_id = f"job{self._n:04d}"
        charge_state = {"delivered": "committed", "running": "reserved", "queued": "reserved"}.get(state, "refunded")
        job = {"id": job_id, "state": state, "guild_id": guild_id, "user_id": user_id, "created_at": at}
        async with self.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO jobs (id, state, provider, model, request_json, deadline_at, created_at, updated_at,
                       guild_id, user_id, charge_state, charge_units)
                   VALUES (?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, ?)""",
                (job_id, state, served_by or provider, model, at + 600, at, at, guild_id, user_id, charge_state, units),
            )
        self.jobs.append(job)
        common = {"guild_id": guild_id, "user_id": user_id, "job_id": job_id, "size": size, "bypass": int(bypass)}
        await self.row(
            **common, kind="reserve", units=units, cost_micro_usd=cost, model=model, provider=provider, window_at=at
        )
        done = settled_at if settled_at is not None else at + 60
        if state == "delivered":
            # The charge names the provider that served the job (after a failover) and its own estimate.
            await self.row(
                **common,
                kind="commit",
                units=units,
                cost_micro_usd=cost if charged_cost is None else charged_cost,
                model=model,
                provider=served_by or provider,
                window_at=at,
                created_at=done,
                reason="image delivered",
            )
        elif charge_state == "refunded":
            await self.row(
                **common,
                kind="refund",
                units=-units,
                cost_micro_usd=-cost,
                model=model,
                provider=provider,
                window_at=at,
                created_at=done,
                reason=f"job ended: {state}",
            )
        return job_id

    async def grant(self, *, user_id: int, units: int, at: float, guild_id: int = GUILD, reason: str = "prize") -> None:
        await self.row(
            guild_id=guild_id, user_id=user_id, kind="grant", units=-units, window_at=at, reason=reason, actor_id=9
        )


# ---- the expected figures, computed in Python from the inserted rows ----------------------------


def _usage(rows: Iterable[dict[str, Any]], sign: int = 1) -> Usage:
    picked = list(rows)
    return Usage(len(picked), sign * sum(r["units"] for r in picked), sign * sum(r["cost_micro_usd"] for r in picked))


def _grouped(rows: list[dict[str, Any]], key: str) -> dict[Any, Usage]:
    return {k: _usage(r for r in rows if r[key] == k) for k in {r[key] for r in rows}}


def expected(ledger: Ledger, guild_id: int, since: float, until: float, user_id: int | None = None) -> dict[str, Any]:
    rows = [
        r
        for r in ledger.rows
        if r["guild_id"] == guild_id and since <= r["window_at"] < until and user_id in (None, r["user_id"])
    ]
    commits = [r for r in rows if r["kind"] == "commit"]
    jobs = [
        j
        for j in ledger.jobs
        if j["guild_id"] == guild_id and since <= j["created_at"] < until and user_id in (None, j["user_id"])
    ]
    return {
        "charged": _usage(commits),
        "bypass": _usage(r for r in commits if r["bypass"]),
        "refunded": _usage((r for r in rows if r["kind"] == "refund"), sign=-1),
        "grants_units": -sum(r["units"] for r in rows if r["kind"] == "grant"),
        "by_user": _grouped(commits, "user_id"),
        "by_model": _grouped(commits, "model"),
        "by_provider": _grouped(commits, "provider"),
        "failed": sum(j["state"] in ("failed", "expired") for j in jobs),
        "blocked": sum(j["state"] == "blocked" for j in jobs),
        "cancelled": sum(j["state"] == "cancelled" for j in jobs),
        "rows": rows,
    }


def as_dict(groups: Iterable[GroupUsage]) -> dict[str | None, Usage]:
    return {g.name: Usage(g.images, g.units, g.cost_micro_usd) for g in groups}


def assert_matches(report: GuildReport, want: dict[str, Any]) -> None:
    assert report.charged == want["charged"]
    assert report.bypass == want["bypass"]
    assert report.refunded == want["refunded"]
    assert report.grants_units == want["grants_units"]
    assert report.members_charged == len(want["by_user"])
    assert as_dict(report.by_model) == want["by_model"]
    assert as_dict(report.by_provider) == want["by_provider"]
    assert (report.failed, report.blocked, report.cancelled) == (want["failed"], want["blocked"], want["cancelled"])


# ---- a hand-built month --------------------------------------------------------------------------

MARCH = (ts("2024-03-01 00:00"), ts("2024-04-01 00:00"))


async def seed_march(ledger: Ledger) -> None:
    since, until = MARCH
    # Member 1: three images, one served by kie after seaart failed over (charged to kie, at kie's price).
    await ledger.job(user_id=1, at=ts("2024-03-02 10:00"))
    await ledger.job(
        user_id=1, at=ts("2024-03-03 10:00"), model="nano_banana_pro", size="4K", units=5, cost=240_000, provider="kie"
    )
    await ledger.job(
        user_id=1,
        at=ts("2024-03-04 10:00"),
        model="nano_banana_pro",
        units=3,
        cost=134_000,
        provider="seaart",
        served_by="kie",
        charged_cost=150_000,
    )
    # Member 2: one image, one failure and one block (both refunded), a grant, one expiry.
    await ledger.job(user_id=2, at=ts("2024-03-05 10:00"), provider="segmind", cost=40_000)
    await ledger.job(user_id=2, at=ts("2024-03-06 10:00"), state="failed")
    await ledger.job(user_id=2, at=ts("2024-03-07 10:00"), state="blocked", units=3, cost=134_000)
    await ledger.job(user_id=2, at=ts("2024-03-08 10:00"), state="expired")
    await ledger.grant(user_id=2, units=10, at=ts("2024-03-09 10:00"))
    # Member 3 is the owner: never refused, still charged (bypass).
    await ledger.job(user_id=3, at=ts("2024-03-10 10:00"), bypass=True, units=3, cost=134_000, model="nano_banana_pro")
    await ledger.job(user_id=3, at=ts("2024-03-11 10:00"), state="cancelled", bypass=True)
    # Member 4 has one image generating right now.
    await ledger.job(user_id=4, at=ts("2024-03-31 23:50"), state="running")
    # Edges: reserved at the very start counts; reserved a millisecond before the end and delivered after
    # it counts (the charge carries its reservation's time); reserved at the end, or before the start, does not.
    await ledger.job(user_id=4, at=since)
    await ledger.job(user_id=4, at=until - 0.001, settled_at=until + 120)
    await ledger.job(user_id=4, at=until)
    await ledger.job(user_id=4, at=since - 1, settled_at=since + 60)
    await ledger.job(user_id=1, at=since - 3600, state="failed", settled_at=since + 60)
    # The same members in another guild never show up here.
    await ledger.job(user_id=1, at=ts("2024-03-12 10:00"), guild_id=OTHER_GUILD, units=5, cost=240_000)
    await ledger.grant(user_id=1, units=3, at=ts("2024-03-12 11:00"), guild_id=OTHER_GUILD)


async def test_guild_report_matches_the_ledger(db: Database) -> None:
    ledger = Ledger(db)
    await seed_march(ledger)
    report = await UsageReports(db).guild_report(GUILD, *MARCH)
    # Hand-counted: images 1+1+1 (member 1), 1 (member 2), 1 (member 3), 2 (member 4's edge jobs).
    assert report.charged == Usage(7, 1 + 5 + 3 + 1 + 3 + 1 + 1, 39_000 + 240_000 + 150_000 + 40_000 + 134_000 + 78_000)
    assert report.bypass == Usage(1, 3, 134_000)
    assert report.refunded == Usage(4, 1 + 3 + 1 + 1, 39_000 + 134_000 + 39_000 + 39_000)
    assert report.grants_units == 10
    assert (report.failed, report.blocked, report.cancelled, report.in_flight) == (2, 1, 1, 1)
    assert report.members_charged == 4
    # The failed-over job is charged to kie, at kie's estimate, not to the reserving seaart.
    assert as_dict(report.by_provider) == {
        "seaart": Usage(4, 1 + 3 + 1 + 1, 39_000 * 3 + 134_000),
        "kie": Usage(2, 8, 390_000),
        "segmind": Usage(1, 1, 40_000),
    }
    assert report.top_users[0] == UserUsage(1, 3, 9, 429_000)
    assert_matches(report, expected(ledger, GUILD, *MARCH))
    # The breakdowns add up to the totals.
    for groups in (report.by_model, report.by_provider, report.top_users):
        assert sum(g.images for g in groups) == report.charged.images
        assert sum(g.units for g in groups) == report.charged.units
        assert sum(g.cost_micro_usd for g in groups) == report.charged.cost_micro_usd


async def test_top_users_are_ordered_and_limited(db: Database) -> None:
    ledger = Ledger(db)
    at = ts("2024-03-02 10:00")
    for user, images in ((5, 1), (6, 3), (4, 3), (8, 2)):
        for i in range(images):
            await ledger.job(user_id=user, at=at + i)
    await ledger.job(user_id=7, at=at, units=3, cost=134_000)
    # Units first; on a tie more images first (4 and 6 have 3 images, 7 one), then the lower id.
    report = await UsageReports(db).guild_report(GUILD, *MARCH, top=3)
    assert [u.user_id for u in report.top_users] == [4, 6, 7]
    assert report.members_charged == 5
    assert (await UsageReports(db).guild_report(GUILD, *MARCH, top=0)).top_users == ()


async def test_empty_period_is_all_zero(db: Database) -> None:
    report = await UsageReports(db).guild_report(GUILD, *MARCH)
    assert report.charged == report.bypass == report.refunded == Usage(0, 0, 0)
    assert (report.grants_units, report.members_charged, report.failed, report.in_flight) == (0, 0, 0, 0)
    assert report.top_users == ()
    assert report.by_model == report.by_provider == ()


async def test_user_report_matches_the_ledger(db: Database) -> None:
    ledger = Ledger(db)
    await seed_march(ledger)
    reports = UsageReports(db)
    for user in (1, 2, 3, 4, 99):
        report = await reports.user_report(GUILD, user, *MARCH)
        want = expected(ledger, GUILD, *MARCH, user_id=user)
        assert report.charged == want["charged"]
        assert report.bypass == want["bypass"]
        assert report.refunded == want["refunded"]
        assert report.grants_units == want["grants_units"]
        assert as_dict(report.by_model) == want["by_model"]
        assert as_dict(report.by_provider) == want["by_provider"]
        assert (report.failed, report.blocked, report.cancelled) == (want["failed"], want["blocked"], want["cancelled"])
        assert sum(d.images for d in report.by_day) == report.charged.images
        assert sum(d.cost_micro_usd for d in report.by_day) == report.charged.cost_micro_usd
    member2 = await reports.user_report(GUILD, 2, *MARCH)
    assert (member2.failed, member2.blocked, member2.grants_units, member2.in_flight) == (2, 1, 10, 0)
    assert (await reports.user_report(GUILD, 4, *MARCH)).in_flight == 1


async def test_user_days_follow_the_time_zone_and_reset_hour(db: Database) -> None:
    ledger = Ledger(db)
    await ledger.job(user_id=1, at=ts("2024-03-10 22:30"))  # 23:30 in Berlin (CET)
    await ledger.job(user_id=1, at=ts("2024-03-10 23:30"), units=3, cost=134_000)  # 00:30 on the 11th in Berlin
    await ledger.job(user_id=1, at=ts("2024-03-11 04:00"))  # 05:00 in Berlin
    reports = UsageReports(db)
    utc = await reports.user_report(GUILD, 1, *MARCH)
    assert [(d.day, d.images, d.units) for d in utc.by_day] == [(date(2024, 3, 10), 2, 4), (date(2024, 3, 11), 1, 1)]
    berlin = await reports.user_report(GUILD, 1, *MARCH, tz="Europe/Berlin")
    assert [(d.day, d.images) for d in berlin.by_day] == [(date(2024, 3, 10), 1), (date(2024, 3, 11), 2)]
    # With days starting at 06:00 Berlin time, all three fall on the quota day of the 10th.
    shifted = await reports.user_report(GUILD, 1, *MARCH, tz="Europe/Berlin", reset_hour=6)
    assert [(d.day, d.images, d.units, d.cost_micro_usd) for d in shifted.by_day] == [
        (date(2024, 3, 10), 3, 5, 212_000)
    ]
    with pytest.raises(ValueError, match="time zone"):
        await reports.user_report(GUILD, 1, *MARCH, tz="Mars/Olympus")


async def test_reports_are_frozen(db: Database) -> None:
    report = await UsageReports(db).guild_report(GUILD, *MARCH)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.guild_id = 5  # type: ignore[misc]


# ---- export and CSV ------------------------------------------------------------------------------


async def test_export_has_every_row_of_the_period(db: Database) -> None:
    ledger = Ledger(db)
    await seed_march(ledger)
    rows = await UsageReports(db).export_rows(GUILD, *MARCH)
    want = sorted(expected(ledger, GUILD, *MARCH)["rows"], key=lambda r: (r["window_at"], r["id"]))
    assert [dataclasses.asdict(r) for r in rows] == [{**w, "bypass": bool(w["bypass"])} for w in want]
    assert {r.kind for r in rows} == {"reserve", "commit", "refund", "grant"}
    only = await UsageReports(db).export_rows(GUILD, *MARCH, user_id=2)
    assert [r.id for r in only] == [r.id for r in rows if r.user_id == 2]


async def test_csv_round_trips(db: Database) -> None:
    ledger = Ledger(db)
    await seed_march(ledger)
    await ledger.grant(user_id=2, units=1, at=ts("2024-03-20 08:15:30.25"), reason='said "thanks", twice\nok')
    entries = await UsageReports(db).export_rows(GUILD, *MARCH)
    parsed = list(csv.DictReader(io.StringIO(to_csv(entries))))
    assert tuple(parsed[0]) == CSV_COLUMNS
    assert len(parsed) == len(entries)
    for line, entry in zip(parsed, entries, strict=True):
        assert int(line["id"]) == entry.id
        assert (int(line["guild_id"]), int(line["user_id"]), int(line["units"])) == (
            entry.guild_id,
            entry.user_id,
            entry.units,
        )
        assert line["kind"] == entry.kind
        assert Decimal(line["cost_usd"]) * 1_000_000 == entry.cost_micro_usd
        assert len(line["cost_usd"].split(".")[1]) == 6
        for column in ("window_at", "created_at"):
            moment = datetime.fromisoformat(line[column])
            assert moment.utcoffset() == timedelta(0)
            assert moment.timestamp() == pytest.approx(getattr(entry, column), abs=1e-6)
        for column in ("job_id", "model", "provider", "size", "reason"):
            assert line[column] == (getattr(entry, column) or "")
        assert line["bypass"] == str(int(entry.bypass))
        assert line["actor_id"] == ("" if entry.actor_id is None else str(entry.actor_id))
    grant = next(line for line in parsed if line["reason"].startswith("said"))
    assert grant["cost_usd"] == "0.000000"
    assert grant["window_at"] == "2024-03-20T08:15:30.250000+00:00"


def test_csv_money_and_formula_guard() -> None:
    assert format_usd(67_000) == "0.067000"
    assert format_usd(0) == "0.000000"
    assert format_usd(-134_000) == "-0.134000"
    assert format_usd(12_345_678_901) == "12345.678901"
    entry = LedgerEntry(1, GUILD, 2, None, "grant", -5, 0, None, None, None, 0.0, 0.0, "=HYPERLINK(1)", False, 9)
    line = next(csv.DictReader(io.StringIO(to_csv([entry]))))
    # A spreadsheet must show the text, not run it.
    assert line["reason"] == "'=HYPERLINK(1)"
    assert line["window_at"] == "1970-01-01T00:00:00.000000+00:00"
    assert to_csv([]) == ",".join(CSV_COLUMNS) + "\n"


# ---- periods -------------------------------------------------------------------------------------


def bounds(period: str, now: str, **kw: Any) -> tuple[str, str]:
    """period_bounds with both ends shown as UTC text, for readable asserts."""
    start, end = period_bounds(period, ts(now), **kw)
    return tuple(datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M") for t in (start, end))  # type: ignore[return-value]


def test_utc_windows() -> None:
    now = "2024-03-13 15:00"  # a Wednesday
    assert bounds("day", now) == ("2024-03-13 00:00", "2024-03-14 00:00")
    assert bounds("week", now) == ("2024-03-11 00:00", "2024-03-18 00:00")
    assert bounds("month", now) == ("2024-03-01 00:00", "2024-04-01 00:00")


def test_month_boundaries() -> None:
    assert bounds("month", "2024-01-31 23:59:59") == ("2024-01-01 00:00", "2024-02-01 00:00")
    assert bounds("month", "2024-02-01 00:00") == ("2024-02-01 00:00", "2024-03-01 00:00")  # a leap February
    assert bounds("month", "2023-12-31 12:00") == ("2023-12-01 00:00", "2024-01-01 00:00")
    assert bounds("month", "2024-01-01 00:00") == ("2024-01-01 00:00", "2024-02-01 00:00")
    assert bounds("day", "2023-12-31 23:59:59") == ("2023-12-31 00:00", "2024-01-01 00:00")
    assert bounds("week", "2023-12-31 12:00") == ("2023-12-25 00:00", "2024-01-01 00:00")  # a Sunday
    assert bounds("week", "2024-01-01 00:00") == ("2024-01-01 00:00", "2024-01-08 00:00")  # a Monday


def test_reset_hour_moves_every_window() -> None:
    # 05:00 on 1 March is still 29 February's quota day when days start at 06:00, so still February.
    assert bounds("day", "2024-03-01 05:00", reset_hour=6) == ("2024-02-29 06:00", "2024-03-01 06:00")
    assert bounds("month", "2024-03-01 05:00", reset_hour=6) == ("2024-02-01 06:00", "2024-03-01 06:00")
    assert bounds("month", "2024-03-01 06:00", reset_hour=6) == ("2024-03-01 06:00", "2024-04-01 06:00")
    assert bounds("week", "2024-03-11 05:59", reset_hour=6) == ("2024-03-04 06:00", "2024-03-11 06:00")


def test_berlin_windows_across_daylight_saving() -> None:
    berlin = {"tz": "Europe/Berlin"}
    assert bounds("day", "2024-01-15 12:00", **berlin) == ("2024-01-14 23:00", "2024-01-15 23:00")
    assert bounds("day", "2024-07-15 12:00", **berlin) == ("2024-07-14 22:00", "2024-07-15 22:00")
    # 31 March 2024 has 23 hours in Berlin; 27 October has 25.
    assert bounds("day", "2024-03-31 12:00", **berlin) == ("2024-03-30 23:00", "2024-03-31 22:00")
    assert bounds("day", "2024-10-27 12:00", **berlin) == ("2024-10-26 22:00", "2024-10-27 23:00")
    assert bounds("week", "2024-03-31 12:00", **berlin) == ("2024-03-24 23:00", "2024-03-31 22:00")
    assert bounds("month", "2024-03-15 12:00", **berlin) == ("2024-02-29 23:00", "2024-03-31 22:00")
    # 23:30 UTC on 31 January is already February in Berlin.
    assert bounds("month", "2024-01-31 23:30", **berlin) == ("2024-01-31 23:00", "2024-02-29 23:00")
    assert bounds("month", "2023-12-31 23:30", **berlin) == ("2023-12-31 23:00", "2024-01-31 23:00")


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize("reset_hour", [0, 6, 23])
def test_windows_are_the_quota_windows(tz: str, reset_hour: int) -> None:
    """A day/week/month report covers exactly what the quota check counted for that window."""
    now = ts("2023-12-20 00:00")
    while now < ts("2025-01-10 00:00"):
        for period, window in (("day", "daily"), ("week", "weekly"), ("month", "monthly")):
            got = period_bounds(period, now, tz=tz, reset_hour=reset_hour)
            assert got == window_bounds(window, now, tz=tz, reset_hour=reset_hour), (period, now)
        now += 7 * 3600 + 13 * 60 + 17


def test_custom_ranges() -> None:
    assert bounds("custom", "2024-06-01 00:00", since="2024-03-01", until="2024-04-01") == bounds(
        "month", "2024-03-15 00:00"
    )
    # A date is the quota day: it starts at the reset hour in the zone; until is exclusive.
    assert bounds(
        "custom", "2024-06-01 00:00", since="2024-03-01", until="2024-03-02", tz="Europe/Berlin", reset_hour=6
    ) == ("2024-03-01 05:00", "2024-03-02 05:00")
    # Date-times: with an offset as given, without one in the report's zone.
    assert bounds(
        "custom", "2024-06-01 00:00", since="2024-03-01T12:00+02:00", until="2024-03-01T18:30", tz="Europe/Berlin"
    ) == ("2024-03-01 10:00", "2024-03-01 17:30")
    # No until: up to now.
    assert bounds("custom", "2024-03-05 07:00", since="2024-03-01") == ("2024-03-01 00:00", "2024-03-05 07:00")


@pytest.mark.parametrize(
    ("period", "kw", "message"),
    [
        ("year", {}, "unknown period 'year'"),
        ("custom", {}, "needs a start"),
        ("custom", {"since": "2024-02-30"}, "since: '2024-02-30' is not an ISO date"),
        ("custom", {"since": "yesterday"}, "not an ISO date or date-time"),
        ("custom", {"since": "2024-03-01", "until": "31/03/2024"}, "until: '31/03/2024'"),
        ("custom", {"since": "2024-03-02", "until": "2024-03-01"}, "must be before until"),
        ("custom", {"since": "2024-03-01", "until": "2024-03-01"}, "must be before until"),
        ("month", {"since": "2024-03-01"}, "only go with the custom period"),
        ("day", {"tz": "Europe/Nowhere"}, "unknown time zone 'Europe/Nowhere'"),
        ("day", {"reset_hour": 24}, "between 0 and 23"),
    ],
)
def test_bad_periods_say_what_is_wrong(period: str, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        period_bounds(period, ts("2024-06-01 00:00"), **kw)


def words(period: str, now: str, **kw: Any) -> str:
    zone = {k: kw.pop(k) for k in ("tz", "reset_hour") if k in kw}
    start, end = period_bounds(period, ts(now), **zone, **kw)
    return period_words(start, end, ts(now), **zone)


def test_a_period_is_shown_as_the_days_it_covers() -> None:
    # November is 1 to 30 November: the end period_bounds gives (1 December) is not part of it.
    assert words("month", "2026-11-20 10:00") == "1 Nov 2026 – 30 Nov 2026 (quota days start at 00:00 UTC)"
    assert words("day", "2026-11-20 10:00") == "20 Nov 2026 (quota days start at 00:00 UTC)"
    assert words("week", "2026-11-20 10:00") == "16 Nov 2026 – 22 Nov 2026 (quota days start at 00:00 UTC)"
    # Dates are the quota's own, not UTC's: Berlin's November starts at 23:00 UTC on 31 October.
    assert (
        words("month", "2026-11-20 10:00", tz="Europe/Berlin", reset_hour=6)
        == "1 Nov 2026 – 30 Nov 2026 (quota days start at 06:00 Europe/Berlin)"
    )
    # Across the change of clocks (25 October 2026 has 25 hours in Berlin).
    assert words("day", "2026-10-25 12:00", tz="Europe/Berlin") == (
        "25 Oct 2026 (quota days start at 00:00 Europe/Berlin)"
    )
    assert words("custom", "2026-12-05 00:00", since="2026-03-01", until="2026-04-01") == (
        "1 Mar 2026 – 31 Mar 2026 (quota days start at 00:00 UTC)"
    )


def test_a_period_that_is_not_whole_days_is_shown_as_instants() -> None:
    assert words("custom", "2026-03-05 07:00", since="2026-03-01") == f"<t:{int(ts('2026-03-01 00:00'))}:f> – now"
    assert words("custom", "2026-06-01 00:00", since="2026-03-01T12:00", until="2026-03-02") == (
        f"<t:{int(ts('2026-03-01 12:00'))}:f> – <t:{int(ts('2026-03-02 00:00'))}:f> (end excluded)"
    )


# ---- property: random ledgers --------------------------------------------------------------------

SINCE, UNTIL = ts("2024-03-01 00:00"), ts("2024-03-08 00:00")
row_strategy = st.fixed_dictionaries(
    {
        "guild_id": st.sampled_from([GUILD, OTHER_GUILD]),
        "user_id": st.integers(1, 4),
        "kind": st.sampled_from(["reserve", "commit", "refund", "grant"]),
        "units": st.integers(1, 5),
        "cost_micro_usd": st.integers(0, 400_000),
        "model": st.sampled_from(["nano_banana", "nano_banana_pro", None]),
        "provider": st.sampled_from(["seaart", "kie", "segmind", None]),
        "bypass": st.integers(0, 1),
        # Around the period and on its edges.
        "window_at": st.one_of(
            st.sampled_from([SINCE, UNTIL, SINCE - 0.001, UNTIL - 0.001]),
            st.floats(SINCE - 2 * 86400, UNTIL + 2 * 86400, allow_nan=False),
        ),
    }
)
job_strategy = st.tuples(
    st.sampled_from([GUILD, OTHER_GUILD]),
    st.integers(1, 4),
    st.sampled_from(["delivered", "failed", "blocked", "cancelled", "expired", "running"]),
    st.floats(SINCE - 86400, UNTIL + 86400, allow_nan=False),
)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with every migration applied and nothing in it, made once: each example starts from a copy
    of it, the same file a fresh connect() makes, without running every migration again."""
    path = tmp_path_factory.mktemp("migrated") / "empty.sqlite3"

    async def make() -> None:
        db = Database(path)
        await db.connect()
        await db.close()  # the last connection closed: the WAL is checkpointed into the file and removed

    asyncio.run(make())
    assert not path.with_name(path.name + "-wal").exists()
    return path


async def _check_random_ledger(
    migrated: Path, rows: list[dict[str, Any]], jobs: list[tuple[int, int, str, float]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "p.sqlite3")
        shutil.copyfile(migrated, db.path)
        await db.connect()
        try:
            ledger = Ledger(db)
            for row in rows:
                sign = -1 if row["kind"] in ("refund", "grant") else 1
                cost = 0 if row["kind"] == "grant" else sign * row["cost_micro_usd"]
                await ledger.row(**{**row, "units": sign * row["units"], "cost_micro_usd": cost})
            for n, (guild, user, state, at) in enumerate(jobs):
                async with db.transaction() as conn:
                    await conn.execute(
                        """INSERT INTO jobs (id, state, provider, model, request_json, deadline_at, created_at,
                               updated_at, guild_id, user_id, charge_state)
                           VALUES (?, ?, 'seaart', 'nano_banana', '{}', 0, ?, ?, ?, ?, ?)""",
                        (f"p{n}", state, at, at, guild, user, "reserved" if state == "running" else None),
                    )
                ledger.jobs.append({"guild_id": guild, "user_id": user, "state": state, "created_at": at})
            reports = UsageReports(db)
            report = await reports.guild_report(GUILD, SINCE, UNTIL, top=100)
            want = expected(ledger, GUILD, SINCE, UNTIL)
            assert_matches(report, want)
            assert {u.user_id: Usage(u.images, u.units, u.cost_micro_usd) for u in report.top_users} == want["by_user"]
            keys = [(-u.units, -u.images, u.user_id) for u in report.top_users]
            assert keys == sorted(keys)
            assert report.in_flight == sum(g == GUILD and s == "running" for g, _, s, _ in jobs)
            for user in range(1, 5):
                member = await reports.user_report(GUILD, user, SINCE, UNTIL, tz="Europe/Berlin")
                mine = expected(ledger, GUILD, SINCE, UNTIL, user_id=user)
                assert member.charged == mine["charged"] == want["by_user"].get(user, Usage(0, 0, 0))
                assert (member.refunded, member.grants_units) == (mine["refunded"], mine["grants_units"])
                assert (
                    Usage(
                        sum(d.images for d in member.by_day),
                        sum(d.units for d in member.by_day),
                        sum(d.cost_micro_usd for d in member.by_day),
                    )
                    == member.charged
                )
            assert len(await reports.export_rows(GUILD, SINCE, UNTIL)) == len(want["rows"])
        finally:
            await db.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row_strategy, max_size=30), jobs=st.lists(job_strategy, max_size=8))
def test_random_ledgers_add_up(
    migrated: Path, rows: list[dict[str, Any]], jobs: list[tuple[int, int, str, float]]
) -> None:
    asyncio.run(_check_random_ledger(migrated, rows, jobs))


# ---- the CLI text --------------------------------------------------------------------------------


async def _cli_db(tmp_path: Path) -> Path:
    path = tmp_path / "cli.sqlite3"
    database = Database(path)
    await database.connect()
    try:
        await seed_march(Ledger(database))
    finally:
        await database.close()
    return path


def _settings(path: Path, tz: str = "UTC") -> Settings:
    return load_settings(None, database={"path": str(path)}, quotas={"timezone": tz})


async def test_cli_json_has_dollar_strings(tmp_path: Path) -> None:
    settings = _settings(await _cli_db(tmp_path))
    text = await run_usage(
        settings,
        guild_id=GUILD,
        since=None,
        until=None,
        period="month",
        user_id=None,
        fmt="json",
        now=ts("2024-03-20 12:00"),
    )
    data = json.loads(text)
    assert data["charged"] == {"images": 7, "units": 15, "cost_usd": "0.681000"}
    assert data["since"] == "2024-03-01T00:00:00.000000+00:00"
    assert data["by_provider"][0] == {"name": "kie", "images": 2, "units": 8, "cost_usd": "0.390000"}
    assert data["top_users"][0]["user_id"] == 1
    assert "micro" not in text

    member = json.loads(
        await run_usage(
            settings, guild_id=GUILD, since="2024-03-01", until="2024-04-01", period=None, user_id=1, fmt="json"
        )
    )
    assert member["charged"]["cost_usd"] == "0.429000"
    assert [d["day"] for d in member["by_day"]] == ["2024-03-02", "2024-03-03", "2024-03-04"]


async def test_cli_table_and_csv(tmp_path: Path) -> None:
    settings = _settings(await _cli_db(tmp_path), tz="Europe/Berlin")
    args: dict[str, Any] = {"guild_id": GUILD, "since": "2024-03-01", "until": "2024-04-01", "period": "custom"}
    table = await run_usage(settings, **args, user_id=None, fmt="table")
    assert "Usage of guild 111" in table
    assert "2024-03-01 00:00 CET to 2024-04-01 00:00 CEST" in table
    charged = next(line for line in table.splitlines() if line.strip().startswith("charged"))
    assert charged.split()[1:] == ["7", "15", "$0.681000"]
    assert "Top members by units" in table and "By provider" in table and "segmind" in table
    member = await run_usage(settings, **args, user_id=2, fmt="table")
    assert "member 2 in guild 111" in member and "By day" in member and "2 failed, 1 blocked" in member
    exported = list(csv.DictReader(io.StringIO(await run_usage(settings, **args, user_id=None, fmt="csv"))))
    assert {int(line["user_id"]) for line in exported} == {1, 2, 3, 4}
    assert all(line["guild_id"] == str(GUILD) for line in exported)


async def test_cli_table_shows_the_servers_limits_now_and_who_set_each(tmp_path: Path) -> None:
    """The guild's table says, beside its usage, the server's three limits, what of each is in use this quota month
    and whether each is the server's own (``/quota server``) or the configuration's."""
    path = await _cli_db(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO quota_limits (guild_id, scope, target_id, monthly, budget_micro_usd, updated_at) "
            "VALUES (?, 'guild', ?, 40, 5000000, 0)",
            (GUILD, GUILD),
        )
    settings = load_settings(None, database={"path": str(path)}, quotas={"in_flight_per_guild": 6})
    table = await run_usage(
        settings,
        guild_id=GUILD,
        since=None,
        until=None,
        period="month",
        user_id=None,
        fmt="table",
        now=ts("2024-03-20 12:00"),
    )
    block = table[table.index("Server limits now") : table.index("Top members")].splitlines()
    assert block[0] == "Server limits now (the quota month ends 2024-04-01 00:00 UTC)", table
    rows = [" ".join(line.split()) for line in block[2:] if line.strip()]
    # One job still reserved: one image generating, its units and price held this month.
    assert rows == [
        "images at once 1 6 config",
        "units this month 17 40 this server",
        "spent this month $0.743000 $5.000000 this server",
    ], table


async def test_cli_input_errors(tmp_path: Path) -> None:
    settings = _settings(await _cli_db(tmp_path))
    base: dict[str, Any] = {"guild_id": GUILD, "period": None, "user_id": None}
    with pytest.raises(UsageInputError, match="not an ISO date"):
        await run_usage(settings, **base, since="March", until=None, fmt="table")
    with pytest.raises(UsageInputError, match="unknown format"):
        await run_usage(settings, **base, since=None, until=None, fmt="xml")  # type: ignore[arg-type]
    missing = _settings(tmp_path / "nope" / "missing.sqlite3")
    with pytest.raises(UsageInputError, match="no database at"):
        await run_usage(missing, **base, since=None, until=None, fmt="table")
    assert not (tmp_path / "nope").exists()
