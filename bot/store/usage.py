"""Usage reports over the ledger: what a server or a member was charged in a period, and the raw export.

Read-only. Every figure comes from SQL sums over the ledger (see ``bot.store.ledger``):
  * charged = the ``commit`` rows: units, the provider and model that finally served the job (after any
    failover) and the estimated cost in integer micro-dollars;
  * refunded = the ``refund`` rows, shown as positive figures; grants = ``-SUM(units)`` of ``grant`` rows.

A row belongs to a period by its ``window_at``, the instant the quota windows count it at (a commit or refund
carries its reservation's time), so a month report adds up to exactly what the monthly quota counted.
Job outcomes (failed, blocked, cancelled) come from the jobs table by ``created_at``.

Money is never a float: integer micro-dollars in the dataclasses, ``Decimal`` when formatted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiosqlite

from bot.store import Database

PERIODS = ("day", "week", "month", "custom")

# Job states that count as a failure in reports: the provider failed, or the job ran out of time.
FAILED_STATES = ("failed", "expired")


# ---- what the reports return -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """Images, units and estimated cost (micro-dollars) over a set of ledger rows."""

    images: int
    units: int
    cost_micro_usd: int


@dataclass(frozen=True, slots=True)
class UserUsage:
    user_id: int
    images: int
    units: int
    cost_micro_usd: int


@dataclass(frozen=True, slots=True)
class GroupUsage:
    """Charges for one model or one provider; ``name`` is None for rows that carry none."""

    name: str | None
    images: int
    units: int
    cost_micro_usd: int


@dataclass(frozen=True, slots=True)
class DayUsage:
    """Charges on one quota day (starting at the reset hour in the report's time zone)."""

    day: date
    images: int
    units: int
    cost_micro_usd: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What a server's report and a member's share: a period's charges, refunds, outcomes and what is in flight
    now, for one server (and, in ``UserReport``, one member of it)."""

    guild_id: int
    since: float
    until: float
    charged: Usage
    # The part of ``charged`` recorded for owners and the unlimited role (never refused, still counted).
    bypass: Usage
    # Refund rows as positive figures: reservations given back because the job ended without an image.
    refunded: Usage
    grants_units: int
    failed: int
    blocked: int
    cancelled: int
    in_flight: int  # images generating now
    waiting: int  # images waiting their turn now (bot/waiting_requests.py)
    by_model: tuple[GroupUsage, ...]
    by_provider: tuple[GroupUsage, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GuildReport(Report):
    members_charged: int
    top_users: tuple[UserUsage, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class UserReport(Report):
    user_id: int
    by_day: tuple[DayUsage, ...]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger row, every column."""

    id: int
    guild_id: int
    user_id: int
    job_id: str | None
    kind: str
    units: int
    cost_micro_usd: int
    model: str | None
    provider: str | None
    size: str | None
    window_at: float
    created_at: float
    reason: str | None
    bypass: bool
    actor_id: int | None


# ---- SQL ---------------------------------------------------------------------------------------
# Every ledger query filters on guild_id, kind (an equality or a short IN list) and a window_at range, in
# that order, so an index on (guild_id, kind, window_at, ...) answers it with range seeks; the member
# variants add user_id. Parameters: guild_id, [user_id], since, until.

_PERIOD = "window_at >= ? AND window_at < ?"


def _scope(member: bool) -> str:
    return "guild_id = ? AND user_id = ?" if member else "guild_id = ?"


def _totals_sql(member: bool) -> str:
    # Reserve rows are left out: a reservation is either committed (charged) or refunded, or still in flight.
    return (
        "SELECT kind, COUNT(*), COALESCE(SUM(units), 0), COALESCE(SUM(cost_micro_usd), 0), "
        "COALESCE(SUM(bypass != 0), 0), COALESCE(SUM(CASE WHEN bypass != 0 THEN units ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN bypass != 0 THEN cost_micro_usd ELSE 0 END), 0), COUNT(DISTINCT user_id) "
        f"FROM ledger WHERE {_scope(member)} AND kind IN ('commit', 'refund', 'grant') AND {_PERIOD} "
        "GROUP BY kind"
    )


def _group_sql(column: str, member: bool) -> str:
    # GROUP BY +column: the unary plus stops the planner from walking an index that starts
    # (guild_id, user_id, ...) just to get the groups in order; that reads the guild's whole history,
    # where seeking (guild_id, kind, window_at) reads only the period. Ties are broken by the key so the
    # order (and so the top N) is the same on every run.
    return (
        f"SELECT {column}, COUNT(*), SUM(units), SUM(cost_micro_usd) FROM ledger "
        f"WHERE {_scope(member)} AND kind = 'commit' AND {_PERIOD} "
        f"GROUP BY +{column} ORDER BY SUM(units) DESC, COUNT(*) DESC, {column}"
    )


GUILD_TOTALS_SQL = _totals_sql(member=False)
USER_TOTALS_SQL = _totals_sql(member=True)
TOP_USERS_SQL = _group_sql("user_id", member=False) + " LIMIT ?"
GUILD_BY_MODEL_SQL = _group_sql("model", member=False)
GUILD_BY_PROVIDER_SQL = _group_sql("provider", member=False)
USER_BY_MODEL_SQL = _group_sql("model", member=True)
USER_BY_PROVIDER_SQL = _group_sql("provider", member=True)
USER_CHARGES_SQL = (
    "SELECT window_at, units, cost_micro_usd FROM ledger "
    f"WHERE guild_id = ? AND user_id = ? AND kind = 'commit' AND {_PERIOD}"
)

_STATES = ", ".join(f"'{s}'" for s in (*FAILED_STATES, "blocked", "cancelled"))
GUILD_OUTCOMES_SQL = (
    f"SELECT state, COUNT(*) FROM jobs WHERE guild_id = ? AND state IN ({_STATES}) "
    "AND created_at >= ? AND created_at < ? GROUP BY state"
)
USER_OUTCOMES_SQL = (
    f"SELECT state, COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? AND state IN ({_STATES}) "
    "AND created_at >= ? AND created_at < ? GROUP BY state"
)
# Served by the partial index jobs_in_flight (0003): images generating, and those waiting their turn
# (bot/waiting_requests.py), which hold their units but have not started.
_IN_FLIGHT = "SELECT COUNT(*) - COUNT(waits_for), COUNT(waits_for) FROM jobs WHERE charge_state = 'reserved' "
GUILD_IN_FLIGHT_SQL = _IN_FLIGHT + "AND guild_id = ?"
USER_IN_FLIGHT_SQL = _IN_FLIGHT + "AND guild_id = ? AND user_id = ?"

LEDGER_COLUMNS = (
    "id",
    "guild_id",
    "user_id",
    "job_id",
    "kind",
    "units",
    "cost_micro_usd",
    "model",
    "provider",
    "size",
    "window_at",
    "created_at",
    "reason",
    "bypass",
    "actor_id",
)
# Every kind is listed (the CHECK constraint allows no other) so an index led by (guild_id, kind, window_at)
# can seek the period instead of scanning the guild.
_ALL_KINDS = "kind IN ('reserve', 'commit', 'refund', 'grant')"
EXPORT_SQL = (
    f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger WHERE guild_id = ? AND {_ALL_KINDS} AND {_PERIOD} "
    "ORDER BY window_at, id"
)
USER_EXPORT_SQL = (
    f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger WHERE guild_id = ? AND user_id = ? AND {_ALL_KINDS} "
    f"AND {_PERIOD} ORDER BY window_at, id"
)


# ---- the repository ----------------------------------------------------------------------------


class UsageReports:
    """Read-only reports over the ledger and jobs tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[aiosqlite.Connection]:
        """One read transaction, so the totals and the breakdowns see the same rows even while the bot
        (another process, in WAL mode) keeps writing: the per-model sums always add up to the total."""
        async with self.db.read() as conn:
            await conn.execute("BEGIN")
            try:
                yield conn
            finally:
                await conn.execute("ROLLBACK")  # nothing was written; this only ends the snapshot

    async def guild_report(self, guild_id: int, since: float, until: float, *, top: int = 10) -> GuildReport:
        period = (guild_id, since, until)
        async with self._snapshot() as conn:
            totals = await _totals(conn, GUILD_TOTALS_SQL, period)
            top_users = await _fetchall(conn, TOP_USERS_SQL, (*period, max(top, 0)))
            by_model = await _fetchall(conn, GUILD_BY_MODEL_SQL, period)
            by_provider = await _fetchall(conn, GUILD_BY_PROVIDER_SQL, period)
            outcomes = await _outcomes(conn, GUILD_OUTCOMES_SQL, period)
            in_flight, waiting = await _in_flight(conn, GUILD_IN_FLIGHT_SQL, (guild_id,))
        return GuildReport(
            guild_id=guild_id,
            since=since,
            until=until,
            charged=totals.charged,
            bypass=totals.bypass,
            refunded=totals.refunded,
            grants_units=totals.grants_units,
            members_charged=totals.members_charged,
            failed=outcomes[0],
            blocked=outcomes[1],
            cancelled=outcomes[2],
            in_flight=in_flight,
            waiting=waiting,
            top_users=tuple(UserUsage(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in top_users),
            by_model=_groups(by_model),
            by_provider=_groups(by_provider),
        )

    async def user_report(
        self, guild_id: int, user_id: int, since: float, until: float, *, tz: str = "UTC", reset_hour: int = 0
    ) -> UserReport:
        """One member's figures; ``by_day`` buckets charges into quota days (reset_hour in tz)."""
        zone = _zone(tz)
        _check_reset_hour(reset_hour)
        period = (guild_id, user_id, since, until)
        async with self._snapshot() as conn:
            totals = await _totals(conn, USER_TOTALS_SQL, period)
            by_model = await _fetchall(conn, USER_BY_MODEL_SQL, period)
            by_provider = await _fetchall(conn, USER_BY_PROVIDER_SQL, period)
            charges = await _fetchall(conn, USER_CHARGES_SQL, period)
            outcomes = await _outcomes(conn, USER_OUTCOMES_SQL, period)
            in_flight, waiting = await _in_flight(conn, USER_IN_FLIGHT_SQL, (guild_id, user_id))
        # Days are bucketed here, not in SQL: SQLite knows no time zones, and one member's rows are few.
        days: dict[date, tuple[int, int, int]] = {}
        for window_at, units, cost in charges:
            day = quota_day(float(window_at), zone, reset_hour)
            images, total_units, total_cost = days.get(day, (0, 0, 0))
            days[day] = (images + 1, total_units + int(units), total_cost + int(cost))
        return UserReport(
            guild_id=guild_id,
            user_id=user_id,
            since=since,
            until=until,
            charged=totals.charged,
            bypass=totals.bypass,
            refunded=totals.refunded,
            grants_units=totals.grants_units,
            failed=outcomes[0],
            blocked=outcomes[1],
            cancelled=outcomes[2],
            in_flight=in_flight,
            waiting=waiting,
            by_model=_groups(by_model),
            by_provider=_groups(by_provider),
            by_day=tuple(DayUsage(day, *figures) for day, figures in sorted(days.items())),
        )

    async def export_rows(
        self, guild_id: int, since: float, until: float, *, user_id: int | None = None
    ) -> list[LedgerEntry]:
        """Every ledger row of the guild (or of one member) whose window_at is in [since, until)."""
        async with self._snapshot() as conn:
            if user_id is None:
                rows = await _fetchall(conn, EXPORT_SQL, (guild_id, since, until))
            else:
                rows = await _fetchall(conn, USER_EXPORT_SQL, (guild_id, user_id, since, until))
        return [_entry(row) for row in rows]


# ---- row helpers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Totals:
    charged: Usage
    bypass: Usage
    refunded: Usage
    grants_units: int
    members_charged: int


_NONE = Usage(0, 0, 0)


async def _fetchall(conn: aiosqlite.Connection, sql: str, params: Sequence[object]) -> list[aiosqlite.Row]:
    async with conn.execute(sql, tuple(params)) as cur:
        return list(await cur.fetchall())


async def _in_flight(conn: aiosqlite.Connection, sql: str, params: Sequence[object]) -> tuple[int, int]:
    rows = await _fetchall(conn, sql, params)
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


async def _totals(conn: aiosqlite.Connection, sql: str, params: Sequence[object]) -> _Totals:
    by_kind = {row[0]: row for row in await _fetchall(conn, sql, params)}
    commit, refund, grant = by_kind.get("commit"), by_kind.get("refund"), by_kind.get("grant")
    return _Totals(
        charged=Usage(int(commit[1]), int(commit[2]), int(commit[3])) if commit else _NONE,
        bypass=Usage(int(commit[4]), int(commit[5]), int(commit[6])) if commit else _NONE,
        # Refund rows hold negative units and cost; a report shows what was given back as positive figures.
        refunded=Usage(int(refund[1]), -int(refund[2]), -int(refund[3])) if refund else _NONE,
        grants_units=-int(grant[2]) if grant else 0,
        members_charged=int(commit[7]) if commit else 0,
    )


async def _outcomes(conn: aiosqlite.Connection, sql: str, params: Sequence[object]) -> tuple[int, int, int]:
    """(failed incl. expired, blocked, cancelled) jobs created in the period."""
    counts = {str(row[0]): int(row[1]) for row in await _fetchall(conn, sql, params)}
    return sum(counts.get(s, 0) for s in FAILED_STATES), counts.get("blocked", 0), counts.get("cancelled", 0)


def _groups(rows: Iterable[aiosqlite.Row]) -> tuple[GroupUsage, ...]:
    return tuple(GroupUsage(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows)


def _entry(row: aiosqlite.Row) -> LedgerEntry:
    values: dict[str, Any] = dict(zip(LEDGER_COLUMNS, row, strict=True))
    values["bypass"] = bool(values["bypass"])
    return LedgerEntry(**values)


# ---- CSV -----------------------------------------------------------------------------------------

CSV_COLUMNS = tuple("cost_usd" if c == "cost_micro_usd" else c for c in LEDGER_COLUMNS)
# Text cells starting with these would run as formulas when the export is opened in a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def format_usd(micro_usd: int) -> str:
    """Integer micro-dollars as a dollar amount with 6 places: 67000 -> '0.067000' (exact, no float)."""
    return f"{Decimal(micro_usd).scaleb(-6):.6f}"


def iso_utc(timestamp: float) -> str:
    """A Unix time as ISO-8601 in UTC, to the microsecond: '2024-03-01T00:00:00.000000+00:00'."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")


def csv_text(value: str | None) -> str:
    """A free-text CSV field, never read by a spreadsheet as a formula; None as empty."""
    if value is None:
        return ""
    # A leading apostrophe is the usual guard against CSV formula injection (a grant reason is free text).
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_csv(rows: Iterable[LedgerEntry]) -> str:
    """Header plus one line per row; money in dollars (6 places), times ISO-8601 UTC, NULL as empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.id,
                r.guild_id,
                r.user_id,
                csv_text(r.job_id),
                r.kind,
                r.units,
                format_usd(r.cost_micro_usd),
                csv_text(r.model),
                csv_text(r.provider),
                csv_text(r.size),
                iso_utc(r.window_at),
                iso_utc(r.created_at),
                csv_text(r.reason),
                int(r.bypass),
                "" if r.actor_id is None else r.actor_id,
            ]
        )
    return out.getvalue()


# ---- periods -------------------------------------------------------------------------------------


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r} (use an IANA name such as UTC or Europe/Berlin)") from None


def _check_reset_hour(reset_hour: int) -> None:
    if not 0 <= reset_hour <= 23:
        raise ValueError(f"reset_hour must be between 0 and 23, not {reset_hour}")


def _at_reset(day: date, zone: ZoneInfo, reset_hour: int) -> float:
    """The instant quota day ``day`` starts: the first at which the zone's clocks read ``reset_hour``:00 on
    that date or later.

    Built from the wall-clock date, so a window containing a DST change still starts at the reset hour (a day
    may last 23 or 25 hours). In an hour the clocks repeat, the first pass. In time they skip, the moment of
    the jump: resolved with fold=0, a skipped reset hour fell as far after the jump as it is into the gap (no
    time for the usual hour-long gap on the hour; an hour at Antarctica/Troll, whose clocks jump from 01:00 to
    03:00, with the reset at 02:00; 15 minutes at Pacific/Chatham, 02:45 to 03:45, reset at 03:00), and the
    instants between, on the day's date and past its reset hour, belonged to no day: nothing reserved then
    counted against a daily limit.
    """
    wall = datetime(day.year, day.month, day.day, reset_hour)
    first = wall.replace(tzinfo=zone, fold=0).timestamp()
    second = wall.replace(tzinfo=zone, fold=1).timestamp()
    if first <= second:  # the time exists: once, or twice (first < second) when the clocks go back
        return first
    # Skipped: fold=1 resolves it with the offset after the jump, to an instant before it, and fold=0 with the
    # offset before, to one after it. Search between the two for the jump (offsets change on a whole second).
    before, after = int(second), int(first)
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return float(after)


def quota_day(timestamp: float, zone: ZoneInfo, reset_hour: int) -> date:
    """The quota day an instant belongs to: the latest day that has started by then (days start at
    reset_hour local time, where :func:`_at_reset` places it).

    Read as the inverse of ``_at_reset``, not from the local hour: with a reset hour the clocks skip or repeat,
    the local hour left instants in no day or took them back into the day before (Troll's clocks go back
    from 03:00 to 01:00: with the reset at 02:00, the second 01:30 fell into the day that had ended).
    """
    local = datetime.fromtimestamp(timestamp, zone).date()
    # The clocks read a time on ``local``, so the day before it has started; the next day has started only
    # if the clocks were turned back across midnight since it began. No date follows 31 Dec 9999 or comes
    # before 1 Jan 0001: ``local + 1 day`` there was an OverflowError (/usage report until:9999-12-31).
    for day in (local,) if local == date.max else (local + timedelta(days=1), local):
        if _at_reset(day, zone, reset_hour) <= timestamp:
            return day
    if local == date.min:
        raise ValueError(f"Unix time {timestamp} is before the first quota day a date can name (1 Jan 0001)")
    return local - timedelta(days=1)


def quota_window(period: str, now: float, zone: ZoneInfo, reset_hour: int) -> tuple[float, float]:
    """[start, end) of the quota day, week (from Monday) or month containing ``now`` (``period``: day, week,
    month): the windows the quota check counts (bot/quotas.py ``window_bounds``) and the reports cover.

    Each starts where its first quota day starts and ends where the next window's first day starts, so the
    windows of one kind tile time: every instant is in exactly one, ``start <= now < end``."""
    today = quota_day(now, zone, reset_hour)
    if period == "day":
        first, after = today, today + timedelta(days=1)
    elif period == "week":
        first = today - timedelta(days=today.weekday())
        after = first + timedelta(days=7)
    elif period == "month":
        first = today.replace(day=1)
        after = _first_of_next_month(first)
    else:
        raise ValueError(f"unknown period {period!r}: use one of day, week, month")
    return _at_reset(first, zone, reset_hour), _at_reset(after, zone, reset_hour)


def _first_of_next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def _parse_instant(text: str, name: str, zone: ZoneInfo, reset_hour: int) -> float:
    value = text.strip()
    try:
        # A bare date means that quota day, which starts at the reset hour: --since 2024-03-01
        # --until 2024-04-01 then gives exactly the March month report.
        return _at_reset(date.fromisoformat(value), zone, reset_hour)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{name}: {text!r} is not an ISO date or date-time (e.g. 2024-03-01 or 2024-03-01T18:00)"
        ) from None
    # A date-time without an offset is wall-clock time in the report's zone.
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)).timestamp()


def instant(text: str, name: str, *, tz: str = "UTC", reset_hour: int = 0) -> float:
    """One moment as a report's since/until reads it: an ISO date (that quota day's start, at the reset hour
    in ``tz``) or date-time (wall-clock in ``tz`` without an offset); ValueError, in words for the member who
    typed it (``name``: the option), for text that is neither or a moment no report can show."""
    zone = _zone(tz)
    _check_reset_hour(reset_hour)
    moment = _parse_instant(text, name, zone, reset_hour)
    _check_shown(text, moment, zone, tz, name, "moment")
    return moment


def period_bounds(
    period: str,
    now: float,
    *,
    tz: str = "UTC",
    reset_hour: int = 0,
    since: str | None = None,
    until: str | None = None,
) -> tuple[float, float]:
    """[start, end) of a report period as Unix times.

    day / week / month: the current quota window containing ``now`` (the same windows the quota check uses:
    they start at ``reset_hour`` in ``tz``; weeks start on Monday). custom: from ``since`` to ``until``
    (exclusive; default now), each an ISO date (the quota day starting at the reset hour) or date-time.
    """
    zone = _zone(tz)
    _check_reset_hour(reset_hour)
    if period == "custom":
        if since is None:
            raise ValueError("a custom period needs a start (since), e.g. 2024-03-01")
        start = _parse_instant(since, "since", zone, reset_hour)
        _check_shown(since, start, zone, tz, "since", "start")
        end = now
        if until is not None:
            end = _parse_instant(until, "until", zone, reset_hour)
            _check_shown(until, end, zone, tz, "until", "end")
        if end <= start:
            raise ValueError(f"since ({since}) must be before until ({until or 'now'})")
        return start, end
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")
    if since is not None or until is not None:
        # Two periods named at once: one of them would be ignored (before, silently the period).
        raise ValueError(
            f"since and until only go with the custom period, not {period!r}: give either the period or "
            "since/until, not both"
        )
    return quota_window(period, now, zone, reset_hour)


def report_period(period: str | None, since: str | None, until: str | None) -> str:
    """The period a report was asked for: the one named; none named, custom when since or until is given
    (they make the period), else month. A period named together with since/until is passed on as named, and
    :func:`period_bounds` refuses the pair."""
    if period is not None:
        return period
    return "custom" if since is not None or until is not None else "month"


def _check_shown(text: str, moment: float, zone: ZoneInfo, tz: str, name: str, bound: str) -> None:
    """Refuse a bound a report cannot show: a date-time within the years 1 to 9999 where it was written can
    fall outside them in UTC (the JSON's since/until) or in the quota zone (the period's days), and the end of
    9999-12-31T23:59:59.999999 rounds, as a Unix time, into the year 10000. Checked here for the CLI and
    /usage alike: before, the CLI refused these and /usage answered "something went wrong" (ValueError: year
    10000 is out of range, once the report had been read)."""
    try:
        datetime.fromtimestamp(moment, UTC)
        datetime.fromtimestamp(moment, zone)
    except (ValueError, OverflowError, OSError):
        edge, fix = ("past the last", "an earlier") if moment > 0 else ("before the first", "a later")
        zones = "UTC" if tz == "UTC" else f"UTC and in {tz}"
        raise ValueError(
            f"{name}: {text!r} is {edge} moment a report can show (years 1 to 9999, in {zones}): give {fix} {bound}"
        ) from None


def period_words(start: float, end: float, now: float, *, tz: str = "UTC", reset_hour: int = 0) -> str:
    """A report period as a member reads it in Discord: the quota days it covers, last day included.

    period_bounds gives [start, end), and a month ends where the next begins; shown as two dates, November
    read "Nov 1 - Dec 1". Whole quota days are named in the quota's own time zone (Discord's <t:..:d>
    would show each viewer's zone, another date near midnight); a period that starts or ends mid-day is
    shown as exact instants instead, which Discord renders in the reader's own zone.
    """
    zone = _zone(tz)
    _check_reset_hour(reset_hour)

    def whole_day(moment: float) -> date | None:
        try:
            day = quota_day(moment, zone, reset_hour)
        except ValueError:  # before 1 Jan 0001's reset hour: not the start of a day a date can name
            return None
        return day if _at_reset(day, zone, reset_hour) == moment else None

    first, after = whole_day(start), whole_day(end)
    if first is not None and after is not None:
        last = after - timedelta(days=1)
        days = f"{_day(first)}" if last == first else f"{_day(first)} – {_day(last)}"
        return f"{days} (quota days start at {reset_hour:02d}:00 {tz})"
    until = "now" if end == now else f"<t:{int(end)}:f> (end excluded)"
    return f"<t:{int(start)}:f> – {until}"


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"
