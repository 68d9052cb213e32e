"""`bananacord usage`: a server's (or one member's) usage as a table, JSON, or the raw ledger as CSV.

The caller (``bot.__main__``) owns the argument parsing and prints the returned text; errors in the
input arrive as ``UsageInputError`` (a ``BananacordError``, so the CLI prints its message and exits 1).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.errors import BananacordError
from bot.quotas import Quotas
from bot.server_limits import ServerStatus
from bot.store import Database, latest_schema_version
from bot.store.usage import (
    GroupUsage,
    GuildReport,
    Usage,
    UsageReports,
    UserReport,
    format_usd,
    iso_utc,
    period_bounds,
    report_period,
    to_csv,
)

Format = Literal["table", "csv", "json"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json")


class UsageInputError(BananacordError):
    """A bad period, date or format on the command line; the message says what to write instead."""


# Discord ids are 64-bit and SQLite's integers signed 64-bit: a larger number is no server or member, and
# SQLite cannot even be asked about it (Python's OverflowError, a traceback, before).
MAX_ID = 2**63 - 1


def check_id(option: str, value: int | None) -> None:
    if value is not None and not 0 < value <= MAX_ID:
        raise UsageInputError(f"{option} {value} is not a Discord id: give the server's or member's id (Copy ID)")


async def open_current(settings: Settings, *, doing: str) -> Database:
    """The bot's database, opened as it is for a command of the shell (a report, /privacy's from the shell): never
    created (a typo in the path must not look like "nothing there") and never migrated (such a command runs beside
    the bot, and a schema changed under a running bot breaks the code it runs: `db migrate` is refused there for
    that reason); refused unless at this version's schema, saying what to do, with ``doing`` ("report on it")."""
    path = settings.database.path
    if not path.exists():
        raise UsageInputError(f"no database at {path} (set database.path in the config the bot runs with)")
    db = Database(path, busy_timeout=settings.database.busy_timeout_seconds)
    await db.connect(busy_wait=settings.database.busy_wait_seconds, migrate=False)
    version, known = await db.schema_version(), latest_schema_version()
    if version != known:
        await db.close()
        raise UsageInputError(
            f"{path} is at schema version {version}, this bananacord's is {known}: "
            + (
                f"{doing} with the version that wrote it"
                if version > known
                else f"the bot brings it up to date at its next start (or `bananacord db migrate`); {doing} then"
            )
        )
    return db


async def run_usage(
    settings: Settings,
    *,
    guild_id: int,
    since: str | None,
    until: str | None,
    period: str | None,
    user_id: int | None,
    fmt: Format,
    top: int = 10,
    now: float | None = None,
) -> str:
    """The text ``bananacord usage`` prints. Giving --since or --until makes the period custom; ``period``
    None is the default (month), and a period named together with since/until is refused."""
    if fmt not in FORMATS:
        raise UsageInputError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    check_id("--guild", guild_id)
    check_id("--user", user_id)
    quotas = settings.quotas
    period = report_period(period, since, until)
    try:
        start, end = period_bounds(
            period,
            time.time() if now is None else now,
            tz=quotas.timezone,
            reset_hour=quotas.reset_hour,
            since=since,
            until=until,
        )
    except ValueError as exc:  # a bound the report cannot show too (bot/store/usage.py _check_shown)
        raise UsageInputError(str(exc)) from None
    db = await open_current(settings, doing="report on it")
    try:
        reports = UsageReports(db)
        server: ServerStatus | None = None
        if user_id is None and fmt == "table":
            # The server's limits and what of each is in use now, as /quota server shows its admins.
            clock = time.time if now is None else (lambda: now)
            server = await Quotas(db, quotas, clock=clock).server_status(guild_id)
        if fmt == "csv":
            return to_csv(await reports.export_rows(guild_id, start, end, user_id=user_id))
        report: GuildReport | UserReport
        if user_id is None:
            report = await reports.guild_report(guild_id, start, end, top=top)
        else:
            report = await reports.user_report(
                guild_id, user_id, start, end, tz=quotas.timezone, reset_hour=quotas.reset_hour
            )
    finally:
        await db.close()
    if fmt == "json":
        return json.dumps(to_jsonable(report), indent=2)
    return render_table(report, period=period, tz=quotas.timezone, server=server)


# ---- JSON ----------------------------------------------------------------------------------------


def to_jsonable(value: object) -> object:
    """Dataclasses as dicts; ``*_micro_usd`` fields become ``*_usd`` dollar strings ("0.067000"),
    ``since``/``until`` ISO-8601 UTC, dates ISO, so no consumer ever sees a float amount."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, object] = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if field.name.endswith("_micro_usd"):
                out[field.name.removesuffix("_micro_usd") + "_usd"] = format_usd(item)
            elif field.name in ("since", "until"):
                out[field.name] = iso_utc(item)
            else:
                out[field.name] = to_jsonable(item)
        return out
    if isinstance(value, tuple | list):
        return [to_jsonable(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


# ---- table ---------------------------------------------------------------------------------------


def _n(value: int) -> str:
    return f"{value:,}"


def _usd(micro_usd: int) -> str:
    # Exact to the micro-dollar, as in the CSV, with thousands separators for reading.
    return f"${Decimal(micro_usd).scaleb(-6):,.6f}"


def _local(timestamp: float, tz: str) -> str:
    return datetime.fromtimestamp(timestamp, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def _grid(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Fixed-width columns: the first left-aligned, the numbers right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        cells = [first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]
        return ("  " + "  ".join(cells)).rstrip()

    return [line(headers), *(line(r) for r in rows)] if rows else [line(headers), "  (none)"]


def _limit_rows(server: ServerStatus) -> list[list[str]]:
    """The server's three limits: what of each is in use, the limit (or none) and whether it is its own or the
    configuration's (bot/server_limits.py)."""
    limits, own = server.limits, (server.own.named() if server.own else {})
    rows = [
        ("images at once", _n(server.generating), limits.in_flight, "in_flight", _n),
        ("units this month", _n(server.used_units), limits.monthly_units, "monthly_units", _n),
        ("spent this month", _usd(server.spent), limits.budget, "budget", _usd),
    ]
    return [
        [
            label,
            used,
            "none" if limit is None else shown(limit),
            "this server" if own.get(name) is not None else "config",
        ]
        for label, used, limit, name, shown in rows
    ]


def _usage_row(label: str, usage: Usage) -> list[str]:
    return [label, _n(usage.images), _n(usage.units), _usd(usage.cost_micro_usd)]


def _group_rows(groups: Sequence[GroupUsage]) -> list[list[str]]:
    return [
        _usage_row(g.name if g.name is not None else "(none)", Usage(g.images, g.units, g.cost_micro_usd))
        for g in groups
    ]


def render_table(
    report: GuildReport | UserReport, *, period: str, tz: str = "UTC", server: ServerStatus | None = None
) -> str:
    """A readable fixed-width report (what an admin reads in a terminal); ``server``: its limits now."""
    who = f"guild {report.guild_id}"
    if isinstance(report, UserReport):
        who = f"member {report.user_id} in {who}"
    lines = [
        f"Usage of {who}",
        f"Period: {period}, {_local(report.since, tz)} to {_local(report.until, tz)} (end excluded)",
        "",
        *_grid(
            ["", "images", "units", "cost (USD)"],
            [
                _usage_row("charged", report.charged),
                _usage_row("  of which bypass", report.bypass),
                _usage_row("refunded", report.refunded),
                ["grants given", "", _n(report.grants_units), ""],
            ],
        ),
        "",
        f"Jobs: {_n(report.failed)} failed, {_n(report.blocked)} blocked, {_n(report.cancelled)} cancelled; "
        f"{_n(report.in_flight)} in flight now"
        + (f", {_n(report.waiting)} waiting their turn" if report.waiting else ""),
    ]
    if isinstance(report, GuildReport):
        lines += [f"Members charged: {_n(report.members_charged)}"]
        if server is not None:
            off = "" if server.enforced else "; quotas are off ([quotas] enabled = false): none applies"
            lines += ["", f"Server limits now (the quota month ends {_local(server.resets_at, tz)}{off})"]
            lines += _grid(["", "in use", "limit", "set by"], _limit_rows(server))
        lines += ["", "Top members by units"]
        lines += _grid(
            ["member", "images", "units", "cost (USD)"],
            [_usage_row(str(u.user_id), Usage(u.images, u.units, u.cost_micro_usd)) for u in report.top_users],
        )
    lines += ["", "By model", *_grid(["model", "images", "units", "cost (USD)"], _group_rows(report.by_model))]
    lines += ["", "By provider", *_grid(["provider", "images", "units", "cost (USD)"], _group_rows(report.by_provider))]
    if isinstance(report, UserReport):
        lines += [
            "",
            "By day",
            *_grid(
                ["day", "images", "units", "cost (USD)"],
                [_usage_row(d.day.isoformat(), Usage(d.images, d.units, d.cost_micro_usd)) for d in report.by_day],
            ),
        ]
    lines += ["", "Costs are the providers' estimated prices, not invoices."]
    return "\n".join(lines) + "\n"
