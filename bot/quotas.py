"""Quota policy: units per model and size, limits per window from config, role tiers and per-user
overrides, server budgets, jobs in flight; reserve/commit/refund over the ledger.

The check and the reservation run in one SQLite transaction (BEGIN IMMEDIATE, taken by
``JobStore.create``), so no burst of requests, in one process or several, can overspend a limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import aiosqlite

from bot.config import QuotaSettings, window_conflicts
from bot.errors import InvalidRequestError
from bot.server_alerts import ServerAlert, claim, crossed, to_tell, untold
from bot.server_limits import NO_LIMIT as NO_LIMIT
from bot.server_limits import ServerLimits, ServerStatus, configured, usd
from bot.store import Database
from bot.store import ledger as ledger_sql
from bot.store.jobs import InTransaction, Job
from bot.store.usage import quota_window
from bot.wording import counted

if TYPE_CHECKING:
    from bot.models import GenerationRequest
    from bot.providers.base import Capabilities

log = logging.getLogger(__name__)

WINDOWS = ("daily", "weekly", "monthly")
# Each window by the report period (bot/store/usage.py) that covers the same time.
_PERIODS = {"daily": "day", "weekly": "week", "monthly": "month"}
_BALANCE_KINDS = "('reserve', 'refund', 'grant')"
# A server's images generating (reserved, not waiting their turn), and those waiting for its room alone
# (bot/waiting_requests.py: ``waits_for`` 0), which a new request waits behind.
SERVER_GENERATING_SQL = (
    "SELECT COUNT(*) - COUNT(waits_for), COUNT(CASE WHEN waits_for = 0 THEN 1 END) FROM jobs "
    "WHERE guild_id = ? AND charge_state = 'reserved'"
)


# A server's limits (monthly units, images at once, budget), read once per reservation: its check, a batch's room and
# its alerts each want them, in one transaction where they cannot change. Set by ``Quotas.reservation`` for its length.
_SERVER_LIMITS_READ: ContextVar[dict[int, tuple[int | None, int | None, int | None]] | None] = ContextVar(
    "server_limits_read", default=None
)


class QuotaExceededError(InvalidRequestError):
    """A limit would be passed; the message says which and when it resets. ``room``: for a batch, the limit
    with room for the fewest of its images, which a count lowered to fit is told of (None: not a batch, or
    no limit counts images)."""

    room: Room | None = None


@dataclass(frozen=True, slots=True)
class WindowConflict:
    """Two window limits where the shorter window allows more than the longer one, which then always binds
    first (daily 100 with weekly 3): the config refuses such limits at load, and /quota set refuses them."""

    short: str
    short_limit: int
    long: str
    long_limit: int


class ConflictingLimitsError(InvalidRequestError):
    """Limits /quota set was asked to store contradict each other (or the member's other limits); nothing was
    stored. ``limits`` are those the member or role would have had, ``conflict`` the pair at fault."""

    def __init__(self, conflict: WindowConflict, limits: Limits) -> None:
        self.conflict, self.limits = conflict, limits
        c = conflict
        super().__init__(
            f"Not saved: {c.short} {c.short_limit} is more than {c.long} {c.long_limit}. A {c.short} limit above "
            f"the {c.long} one can never be reached: lower {c.short} or raise {c.long}."
        )


@dataclass(frozen=True, slots=True)
class Member:
    """Who asks, as far as quotas care."""

    guild_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()
    is_owner: bool = False


# The limits a member has, each taken on its own from the sources below.
LIMIT_NAMES = (*WINDOWS, "in_flight")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one of a member's limits comes from.

    ``default``: the configured [quotas] defaults; ``tier``: a [quotas.tiers] section of the config
    (``tier`` its name); ``role``: a tier set with /quota set role:; ``member``: the member's own override
    (/quota set member:). ``role_id`` names the role of a tier."""

    kind: Literal["default", "tier", "role", "member"]
    role_id: int | None = None
    tier: str | None = None


DEFAULT = Origin("default")


@dataclass(frozen=True, slots=True)
class Limits:
    daily: int | None
    weekly: int | None
    monthly: int | None
    in_flight: int | None
    # Where each of the four comes from, by name (LIMIT_NAMES); a limit not named came from the default.
    origins: Mapping[str, Origin] = field(default_factory=dict)

    def for_window(self, window: str) -> int | None:
        value: int | None = getattr(self, window)
        return value

    def origin(self, name: str) -> Origin:
        return self.origins.get(name, DEFAULT)


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """One window as a member reads it: units used (jobs delivered or in flight) and units granted.

    Grants are negative ledger rows, so the net sum alone ("-4 used") reads wrong after a grant;
    they are shown apart and add to the allowance instead.
    """

    window: str
    used: int
    limit: int | None
    resets_at: float
    granted: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit + self.granted - self.used)


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    windows: list[WindowUsage]
    in_flight: int
    in_flight_limit: int | None
    limits: Limits
    unlimited: bool
    # False while [quotas] enabled = false: nothing is limited, whatever limits are configured.
    enforced: bool = True
    # Requests waiting to start, taken past ``in_flight_limit`` or the server's room (bot/waiting_requests.py).
    waiting: int = 0

    def first_to_reset(self) -> WindowUsage | None:
        """The member's limited window that resets first (None: no window is limited).

        A grant is a ledger row at the time it is given, and each window counts the rows inside it, so units
        granted now add to this window's limit until it resets, and no longer: the next day (or week, or
        month) starts without them, while a longer window still counts them until it ends. Tied (the last
        day of a week or month), the shorter window is named."""
        limited = [w for w in self.windows if w.limit is not None]
        return min(limited, key=lambda w: w.resets_at, default=None)


# Each window as a member reads "left ..." of it.
_LEFT_IN = {"daily": "today", "weekly": "this week", "monthly": "this month"}


def running_low_note(status: QuotaStatus) -> str | None:
    """A private word to a member whose quota is nearly spent, once a request of theirs has started (its units are
    counted as used from then): the limited window with the fewest units left, when a tenth of its allowance or less
    is (at least the last one); None while there is room, or no limit applies. Told with each request while low,
    so the member knows before a request is refused rather than after."""
    if not status.enforced or status.unlimited:
        return None
    limited = [w for w in status.windows if w.limit and w.remaining is not None]
    if not limited:
        return None
    tightest = min(limited, key=lambda w: (w.remaining or 0, w.resets_at))
    allowance = (tightest.limit or 0) + tightest.granted
    left = tightest.remaining or 0
    if left > max(1, allowance // 10):
        return None
    units = "no units" if left == 0 else counted(left, "unit")
    return (
        f"You have {units} left {_LEFT_IN[tightest.window]} (of {allowance}); that resets "
        f"<t:{int(tightest.resets_at)}:R>. `/quota show` has the rest."
    )


def window_bounds(window: str, now: float, *, tz: str = "UTC", reset_hour: int = 0) -> tuple[float, float]:
    """[start, end) of the daily/weekly/monthly window containing ``now``; weeks start on Monday.

    The same windows as the reports' (bot/store/usage.py ``quota_window``, one implementation), so a month's
    report adds up to what the monthly quota counted; they tile time, ``start <= now < end``, across any change
    of the clocks."""
    period = _PERIODS.get(window)
    if period is None:
        raise ValueError(f"unknown window {window!r}")
    return quota_window(period, now, ZoneInfo(tz), reset_hour)


def window_conflict(limits: Limits, named: Sequence[str] = WINDOWS) -> WindowConflict | None:
    """The first pair of limited windows in ``limits`` where the shorter allows more than the longer, among
    the pairs with a window in ``named`` (None: the limits agree).

    Every pair, not only neighbours as the config checks them: a member's override of daily 100 beside a
    weekly 200 and a monthly 50 that already disagreed, which it did not set, still contradicts the monthly."""
    by_window = {name: limits.for_window(name) for name in WINDOWS}
    for short, short_limit, long, long_limit in window_conflicts(by_window):
        if short in named or long in named:
            return WindowConflict(short, short_limit, long, long_limit)
    return None


def _more_generous(a: int | None, b: int | None) -> bool:
    """Whether limit ``a`` allows more than ``b`` (None: no limit, which allows the most)."""
    return b is not None and (a is None or a > b)


def merge_limits(
    default: Mapping[str, int | None],
    tiers: Sequence[tuple[Origin, Mapping[str, int | None]]],
    override: Mapping[str, int | None] | None,
) -> Limits:
    """A member's limits from the defaults, the role tiers they hold and their own override.

    * With no tier, the defaults apply. A tier takes the defaults' place: its daily, weekly and monthly
      limits are its own, one left out meaning no limit in that window (as /quota set role: answers it and
      the config's [quotas.tiers] read). Its in_flight, if it names none, stays the default's: that limit
      guards the providers' load, not a member's allowance, and setting a tier's daily cap should not lift it.
    * Holding several tiers, each limit is the most generous the tiers give, one by one: a tier with a high
      daily cap and one with no monthly limit give both (the highest tier by (monthly, weekly, daily) used to
      win whole, and the default, with no weekly or monthly limit, was always that one).
    * A member's override comes first, up or down (the admin's word about this member), for the limits it
      names; those it leaves out are what applied without it, not "no limit". One it names as ``NO_LIMIT``
      is no limit, whatever the tiers or defaults say."""
    values: dict[str, int | None] = {}
    origins: dict[str, Origin] = {}
    for name in LIMIT_NAMES:
        value, origin = default[name], DEFAULT
        # A tier that names no in_flight gives the default's: it counts at that value in the merge (left out of
        # it, a second tier's lower in_flight would have won over the first's default).
        setting = [
            (DEFAULT, default[name]) if name == "in_flight" and limits[name] is None else (o, limits[name])
            for o, limits in tiers
        ]
        if setting:
            value, origin = setting[0][1], setting[0][0]
            for candidate_origin, candidate in setting[1:]:
                if _more_generous(candidate, value):
                    value, origin = candidate, candidate_origin
        if override is not None and (own := override[name]) is not None:
            value, origin = (None if own == NO_LIMIT else own), Origin("member")
        values[name], origins[name] = value, origin
    return Limits(values["daily"], values["weekly"], values["monthly"], values["in_flight"], origins)


@dataclass(frozen=True, slots=True)
class Room:
    """How many more images one limit has room for, and that limit as a refusal names it."""

    images: int
    limit: str


class Quotas:
    """Reads limits and balances; builds the in-transaction reservation for a new job."""

    def __init__(self, db: Database, settings: QuotaSettings, *, clock: Callable[[], float]) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        # Members whose last reservation left a window nearly spent (guild, user): the word after their request
        # (``running_low_note``) reads their status only then, not after every request.
        self._nearly_spent: set[tuple[int, int]] = set()
        # Tells a server's moderators that its monthly units or budget are mostly used or spent (cogs/quota.py sets
        # it; bot/server_alerts.py); the tellings under way, kept from the collector.
        self.on_server_alert: Callable[[ServerAlert], Awaitable[None]] | None = None
        self._telling: set[asyncio.Task[None]] = set()

    def nearly_spent(self, member: Member) -> bool:
        """Whether the member's last reservation left one of their windows nearly spent (a tenth of its limit or
        less left), as its check found it; asked once, after the request has started."""
        key = (member.guild_id, member.user_id)
        found = key in self._nearly_spent
        self._nearly_spent.discard(key)
        return found

    # ---- prices in units ---------------------------------------------------------------------

    def units_for(self, model: str, resolution: str | None, default_resolution: str = "1K") -> int:
        table = self.settings.units.get(model, {})
        size = resolution or default_resolution
        return int(table.get(size, max(table.values(), default=1)))

    def bounds(self, window: str, now: float) -> tuple[float, float]:
        return window_bounds(window, now, tz=self.settings.timezone, reset_hour=self.settings.reset_hour)

    # ---- limits ---------------------------------------------------------------------------------

    async def _limits(self, conn: aiosqlite.Connection, member: Member) -> Limits:
        return merge_limits(*await self._sources(conn, member))

    async def _sources(
        self, conn: aiosqlite.Connection, member: Member
    ) -> tuple[
        Mapping[str, int | None], list[tuple[Origin, Mapping[str, int | None]]], Mapping[str, int | None] | None
    ]:
        """What ``member``'s limits are merged from: the defaults, the tiers they hold, their override."""
        s = self.settings
        default = {"daily": s.daily, "weekly": s.weekly, "monthly": s.monthly, "in_flight": s.in_flight_per_user}
        tiers: list[tuple[Origin, Mapping[str, int | None]]] = [
            (Origin("tier", tier.role_id, name), _named(tier.daily, tier.weekly, tier.monthly, tier.in_flight))
            for name, tier in s.tiers.items()
            if tier.role_id in member.role_ids
        ]
        rows = await _fetchall(
            conn,
            "SELECT scope, target_id, daily, weekly, monthly, in_flight FROM quota_limits "
            "WHERE guild_id = ? AND scope IN ('role', 'user') ORDER BY scope, target_id",
            (member.guild_id,),
        )
        override: Mapping[str, int | None] | None = None
        for scope, target, daily, weekly, monthly, in_flight in rows:
            if scope == "role" and target in member.role_ids:
                tiers.append((Origin("role", target), _named(daily, weekly, monthly, in_flight)))
            elif scope == "user" and target == member.user_id:
                override = _named(daily, weekly, monthly, in_flight)
        return default, tiers, override

    async def limits(self, member: Member) -> Limits:
        """The limits that apply to ``member`` now, and where each comes from."""
        async with self.db.read() as conn:
            return await self._limits(conn, member)

    async def _usage_start(self, conn: aiosqlite.Connection, member: Member, since: float) -> float:
        """``since``, or the member's last reset if that is later: where their usage starts counting."""
        reset = await _fetchone(
            conn,
            "SELECT reset_at FROM quota_resets WHERE guild_id = ? AND user_id = ?",
            (member.guild_id, member.user_id),
        )
        return max(since, reset[0]) if reset else since

    async def _used(self, conn: aiosqlite.Connection, member: Member, since: float) -> int:
        """Units used less units granted in the window from ``since``: what counts against its limit."""
        used, granted = await self._used_and_granted(conn, member, since)
        return used - granted

    async def _used_and_granted(self, conn: aiosqlite.Connection, member: Member, since: float) -> tuple[int, int]:
        """(units used, units granted) in the window from ``since``.

        A reset (/quota reset) forgets usage: reservations and their refunds before it. Grants in the window
        still count: a reset promises that what was used no longer counts, and cut at the reset, it took the
        units an admin had granted with it (granted 10, reset: 0 left of 10 extra)."""
        usage_start = await self._usage_start(conn, member, since)
        row = await _fetchone(
            conn,
            "SELECT COALESCE(SUM(CASE WHEN kind = 'grant' THEN 0 ELSE units END), 0), "
            "COALESCE(SUM(CASE WHEN kind = 'grant' THEN -units ELSE 0 END), 0) "
            f"FROM ledger WHERE guild_id = ? AND user_id = ? AND kind IN {_BALANCE_KINDS} AND window_at >= ? "
            "AND (kind = 'grant' OR window_at >= ?)",
            (member.guild_id, member.user_id, since, usage_start),
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def _in_flight(self, conn: aiosqlite.Connection, guild_id: int) -> tuple[int, int]:
        """Images generating in the server (each candidate of a batch adds to the load), and images waiting for its
        room alone. Not those waiting for their member's turn: they start only when the server has room for them
        too (bot/waiting_requests.py), and counted here one member's queue kept every other member out of a
        server with room."""
        row = await _fetchone(conn, SERVER_GENERATING_SQL, (guild_id,))
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def server_at_once(self, guild_id: int) -> int | None:
        """The server's limit on images generating at once (its own, else the config's; None: none), or None
        while quotas are off: what a waiting request's start is held to (bot/waiting_requests.py)."""
        if not self.settings.enabled:
            return None
        async with self.db.read() as conn:
            _, in_flight, _ = await self._guild_limits(conn, guild_id)
        return in_flight

    async def _requests(self, conn: aiosqlite.Connection, guild_id: int, user_id: int) -> tuple[int, int]:
        """A member's requests generating, and waiting for their turn (bot/waiting_requests.py): the candidates
        of one /imagine count are one request, as a grid is one job to Midjourney. One statement for both."""
        row = await _fetchone(
            conn,
            "SELECT COUNT(DISTINCT CASE WHEN waits_for IS NULL THEN COALESCE(batch_id, id) END), "
            "COUNT(DISTINCT CASE WHEN waits_for IS NOT NULL THEN COALESCE(batch_id, id) END) FROM jobs "
            "WHERE guild_id = ? AND user_id = ? AND charge_state = 'reserved'",
            (guild_id, user_id),
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def _unlimited(self, member: Member) -> bool:
        role = self.settings.unlimited_role_id
        return member.is_owner or (role is not None and role in member.role_ids)

    # ---- the reservation --------------------------------------------------------------------

    def reservation(
        self, member: Member, *, model: str, provider: str, size: str, units: int, cost_micro_usd: int
    ) -> InTransaction:
        """The check + ledger rows, to run inside JobStore.create's transaction (refusal rolls it back).

        ``units`` and ``cost_micro_usd`` are per image; the jobs of a batch are reserved together, one
        ledger row each, so a member who cannot afford them all gets none (and is told how many fit).
        """

        async def reserve(conn: aiosqlite.Connection, job_ids: Sequence[str]) -> None:
            read = _SERVER_LIMITS_READ.set({})
            try:
                await reserving(conn, job_ids)
            finally:
                _SERVER_LIMITS_READ.reset(read)

        async def reserving(conn: aiosqlite.Connection, job_ids: Sequence[str]) -> None:
            now = self.clock()
            bypass = self._unlimited(member) or not self.settings.enabled
            waits_for = (
                None if bypass else await self._check(conn, member, units, cost_micro_usd, now, count=len(job_ids))
            )
            if waits_for is not None:
                marks = ", ".join("?" * len(job_ids))
                await conn.execute(f"UPDATE jobs SET waits_for = ? WHERE id IN ({marks})", (waits_for, *job_ids))
            for job_id in job_ids:
                await ledger_sql.reserve(
                    conn,
                    job_id=job_id,
                    guild_id=member.guild_id,
                    user_id=member.user_id,
                    units=units,
                    cost_micro_usd=cost_micro_usd,
                    model=model,
                    provider=provider,
                    size=size,
                    now=now,
                    bypass=bypass,
                )
            if self.settings.enabled:
                # The unlimited role's and the owner's images count toward the server's month too.
                await self._server_alerts(conn, member.guild_id, units, cost_micro_usd, len(job_ids), now)

        return reserve

    async def _server_alerts(
        self, conn: aiosqlite.Connection, guild_id: int, units: int, cost: int, count: int, now: float
    ) -> None:
        """Claim, in the reservation's transaction, the alerts it crossed (bot/server_alerts.py), and tell them once
        it has committed. The server's limits are the check's (read once per reservation); two reads more, only where
        the server has a monthly limit."""
        monthly_units, _, budget = await self._guild_limits(conn, guild_id)
        if not monthly_units and not budget:
            return
        used_units, spent = await self._guild_month(conn, guild_id, now)
        bounds = self.bounds("monthly", now)
        alerts = crossed(
            guild_id,
            bounds,
            "units",
            before=used_units - units * count,
            after=used_units,
            limit=monthly_units,
            each=units,
        )
        alerts += crossed(guild_id, bounds, "budget", before=spent - cost * count, after=spent, limit=budget, each=cost)
        for alert in alerts:
            if await claim(conn, alert, now) and self.on_server_alert is not None:
                task = asyncio.get_running_loop().create_task(self._tell(alert))
                self._telling.add(task)
                task.add_done_callback(self._telling.discard)

    async def tell_untold(self) -> int:
        """Tell this quota month's alerts a stop cut short (claimed by a committed reservation, the bot gone before
        its post); at a start. Returns how many."""
        start, _ = self.bounds("monthly", self.clock())
        async with self.db.read() as conn:
            alerts = await untold(conn, start)
        for alert in alerts:
            await self._tell(alert)
        return len(alerts)

    async def _tell(self, alert: ServerAlert) -> None:
        """Tell ``alert`` once its reservation has committed (the statement waits for its transaction to end; one
        rolled back took the row with it, and nothing is told), marked told as it is taken to be told."""
        try:
            if self.on_server_alert is None:
                return
            async with self.db.read() as conn:
                if not await to_tell(conn, alert, self.clock()):
                    return
            await self.on_server_alert(alert)
        except Exception as exc:
            log.warning("guild %s: could not tell its %s alert (%s): %s", alert.guild_id, alert.what, alert.level, exc)

    def repricing(self, job: Job, request: GenerationRequest, caps: Capabilities) -> InTransaction:
        """A failover's terms on the job's reservation, in the move's transaction (bot/failover.py): the price,
        units and size of ``request`` (the job's own, or without the preferences ``caps``'s provider does not
        offer) as that provider makes it, so the commit charges what is delivered.

        The server's monthly budget counts reservations at their price; left at the first provider's, a job
        moved to a dearer one was charged past the budget (two $0.04 reservations admitted under $0.10,
        both committed at $0.08). A move that would take the server over its budget is refused
        (QuotaExceededError, rolling the move back); a cheaper one lowers what the job holds.

        Units likewise: a move that drops a preferred 4K lowers them (before, the member paid the 4K's 3 units
        for the 1K image delivered). The member's limits depend on roles Discord knows and the runner does not,
        so a move that would hold more units than reserved is refused unless nothing limits the reservation
        (the unlimited role, the owner, quotas off): no member is charged past what their quota admitted."""
        cost = caps.price_of(request)
        units = self.units_for(request.model, request.resolution, caps.default_resolution)
        size = request.resolution or caps.default_resolution

        async def reprice(conn: aiosqlite.Connection, _job_ids: Sequence[str]) -> None:
            row = await _fetchone(
                conn,
                "SELECT units, cost_micro_usd, size, bypass FROM ledger WHERE job_id = ? AND kind = 'reserve'",
                (job.id,),
            )
            if row is None:
                return  # a job with no reservation (the command line's): nothing holds a price
            held_units, held_cost, held_size, bypass = int(row[0]), int(row[1]), str(row[2]), bool(row[3])
            new_cost = held_cost if cost is None else cost
            if not bypass:
                if units > held_units:
                    raise QuotaExceededError(
                        f"{size} costs {units} unit(s) where {held_size} was reserved at {held_units}; the member's "
                        "quota cannot be checked from here"
                    )
                extra = new_cost - held_cost
                if extra > 0 and job.guild_id is not None:
                    _, _, budget = await self._guild_limits(conn, job.guild_id)
                    await self._check_month(conn, job.guild_id, None, budget, None, extra, self.clock())
            if (units, new_cost, size) != (held_units, held_cost, held_size):
                await ledger_sql.rebook(conn, job.id, units=units, cost_micro_usd=new_cost, size=size)

        return reprice

    async def _check(
        self, conn: aiosqlite.Connection, member: Member, units: int, cost: int, now: float, *, count: int = 1
    ) -> int | None:
        """``_check_limits``, its refusal told how many images fit."""
        limits = await self._limits(conn, member)
        # A batch refused by one limit is told how many images fit: the fewest any limit has room for, the
        # member's windows and the server's alike, so the count it suggests is taken when asked for at once
        # (read from the first limit to refuse, count:3 was suggested by the daily quota and refused by the
        # weekly one).
        room = await self._least_room(conn, member, limits, units, cost, now, count=count) if count > 1 else None
        try:
            return await self._check_limits(conn, member, limits, units, cost, now, count=count, room=room)
        except QuotaExceededError as refusal:
            refusal.room = room
            raise

    async def _check_limits(
        self,
        conn: aiosqlite.Connection,
        member: Member,
        limits: Limits,
        units: int,
        cost: int,
        now: float,
        *,
        count: int,
        room: Room | None,
    ) -> int | None:
        """Refuses (QuotaExceededError) a request over a limit; returns, for one to be taken waiting its turn
        (bot/waiting_requests.py), the member's limit of requests at once if that is what it waits for, or 0 if
        it waits only for room among the server's images at once. None: it starts at once."""
        waits_for: int | None = None
        waiting: int | None = None  # the member's requests waiting, once read
        if limits.in_flight is not None:
            # The new job rows are already inserted (not yet reserved), so they are not in this count.
            running, waiting = await self._requests(conn, member.guild_id, member.user_id)
            if limits.in_flight == 0:
                # Nothing to wait for: "You already have 0 request(s) generating (limit 0). Wait for one to
                # finish" sent the member waiting on nothing.
                raise QuotaExceededError(
                    "An admin has set your quota of requests generating at once to 0, so you cannot start any; "
                    "waiting will not change that. Ask an admin if you think it is a mistake."
                )
            # Those waiting go first: a request taken while any wait, waits too (behind them, by its time).
            if running + waiting >= limits.in_flight:
                may_wait = self.settings.waiting_per_user
                if waiting >= may_wait:
                    queue = f" and {waiting} waiting to start (the most you may have waiting)" if may_wait else ""
                    raise QuotaExceededError(
                        f"You already have {running} request(s) generating (limit {limits.in_flight}){queue}. "
                        "Wait for one to finish, or cancel one."
                    )
                waits_for = limits.in_flight
        for window in WINDOWS:
            limit = limits.for_window(window)
            if limit is None:
                continue
            start, end = self.bounds(window, now)
            used = await self._used(conn, member, start)
            if limit - used - units * count <= max(1, limit // 10):
                self._nearly_spent.add((member.guild_id, member.user_id))
            if used + units * count > limit:
                resets = f"Your {window} quota resets <t:{int(end)}:R> (<t:{int(end)}:f>)."
                # As /quota show says it: a grant is extra allowance, not negative use ("used -10 of 5").
                spent, granted = await self._used_and_granted(conn, member, start)
                if limit == 0:
                    raise QuotaExceededError(_zero_window(window, units, count, spent, granted, max(0, -used), room))
                allowance = f"{limit} {window} units" + (f" and {granted} granted" if granted else "")
                if count == 1:
                    raise QuotaExceededError(
                        f"This image costs {units} unit(s); you have used {spent} of your {allowance}. " + resets
                    )
                fit = max(0, limit - used) // units if units else count
                raise QuotaExceededError(
                    f"{count} images cost {units * count} unit(s) ({units} each); you have used {spent} of your "
                    f"{allowance}, so {_fit_in(fit, room)}. Nothing was started or charged. " + resets
                )
        if waiting is None and self.settings.waiting_per_user > 0:
            _, waiting = await self._requests(conn, member.guild_id, member.user_id)
        may_wait = waiting is not None and waiting < self.settings.waiting_per_user
        server_full = await self._check_guild(
            conn, member.guild_id, units, cost, now, count=count, room=room, may_wait=may_wait
        )
        return 0 if waits_for is None and server_full else waits_for

    async def _least_room(
        self,
        conn: aiosqlite.Connection,
        member: Member,
        limits: Limits,
        units: int,
        cost: int,
        now: float,
        *,
        count: int,
    ) -> Room | None:
        """The limit with room for the fewest images of ``units`` units and ``cost`` micro-dollars each, among
        the member's windows, the server's images generating at once, its monthly units and its budget (None:
        nothing limits the count). The member's own in-flight limit is not among them: a batch is one request
        to it, whatever its count."""
        rooms: list[Room] = []
        for window in WINDOWS:
            limit = limits.for_window(window)
            if limit is None or units <= 0:
                continue
            start, _ = self.bounds(window, now)
            left = max(0, limit - await self._used(conn, member, start))
            rooms.append(Room(left // units, f"your {window} quota has {counted(left, 'unit')} left"))
        monthly_units, in_flight, budget = await self._guild_limits(conn, member.guild_id)
        if in_flight is not None:
            free = max(0, in_flight - sum(await self._in_flight(conn, member.guild_id)))
            room = Room(free, f"this server has room for {free} more image(s) generating at once")
            if free < count and self.settings.waiting_per_user > 0:
                # Images past the server's room now wait for it (bot/waiting_requests.py), if the member may have
                # one more request waiting: then only the limit itself holds the count.
                _, waiting = await self._requests(conn, member.guild_id, member.user_id)
                if waiting < self.settings.waiting_per_user:
                    room = Room(in_flight, f"this server allows {in_flight} image(s) generating at once")
            rooms.append(room)
        if (monthly_units is not None and units > 0) or (budget is not None and cost > 0):
            used_units, used_cost = await self._guild_month(conn, member.guild_id, now)
            if monthly_units is not None and units > 0:
                left = max(0, monthly_units - used_units)
                rooms.append(Room(left // units, f"this server has {counted(left, 'unit')} left this month"))
            if budget is not None and cost > 0:
                left = max(0, budget - used_cost)
                rooms.append(Room(left // cost, f"this server's monthly budget has {usd(left)} left"))
        return min(rooms, key=lambda r: r.images, default=None)

    async def _guild_limits(
        self, conn: aiosqlite.Connection, guild_id: int
    ) -> tuple[int | None, int | None, int | None]:
        """The server's monthly units, images generating at once and monthly budget in micro-dollars: its own
        (``/quota server``: bot/server_limits.py), else the configured ones; within a reservation, read once."""
        read = _SERVER_LIMITS_READ.get()
        if read is not None and guild_id in read:
            return read[guild_id]
        limits = ((await self._server_own(conn, guild_id)) or ServerLimits()).over(configured(self.settings))
        found = (limits.monthly_units, limits.in_flight, limits.budget)
        if read is not None:
            read[guild_id] = found
        return found

    async def _server_own(self, conn: aiosqlite.Connection, guild_id: int) -> ServerLimits | None:
        row = await _fetchone(
            conn,
            "SELECT in_flight, monthly, budget_micro_usd FROM quota_limits "
            "WHERE guild_id = ? AND scope = 'guild' AND target_id = ?",
            (guild_id, guild_id),
        )
        return None if row is None else ServerLimits(row[0], row[1], row[2])

    async def _check_guild(
        self,
        conn: aiosqlite.Connection,
        guild_id: int,
        units: int,
        cost: int,
        now: float,
        *,
        count: int = 1,
        room: Room | None = None,
        may_wait: bool = False,
    ) -> bool:
        """Refuses a request over the server's limits; True if it has no room among the server's images at once
        now and ``may_wait`` for it (its member may have another request waiting: bot/waiting_requests.py)."""
        monthly_units, in_flight, budget = await self._guild_limits(conn, guild_id)
        full = False
        if in_flight is not None:
            generating, queued = await self._in_flight(conn, guild_id)
            if in_flight == 0:
                raise QuotaExceededError(
                    "This server's limit on images generating at once is 0 (set by an admin), so no image can "
                    "be started here; waiting will not change that."
                )
            # A request that can fit once others end waits for them, if its member may have one more waiting,
            # behind the images already waiting for the server's room (it goes by the order requests were asked
            # in); one larger than the limit never fits, and is told how many would (then waiting their turn).
            taken = generating + queued
            full = taken + count > in_flight and may_wait
            if full and count > in_flight:
                raise QuotaExceededError(
                    f"This server allows {in_flight} image(s) generating at once, so {count} cannot start together: "
                    f"{_fit_in(in_flight, room)}. Nothing was started or charged."
                )
            waiting = f" and {queued} waiting for room" if queued else ""
            if taken >= in_flight and not full:
                raise QuotaExceededError(
                    f"This server already has {generating} image(s) generating{waiting}, and allows {in_flight} at "
                    "once. Try again in a minute."
                    if queued
                    else f"This server already has {in_flight} image(s) generating, its limit. Try again in a minute."
                )
            if taken + count > in_flight and not full:
                raise QuotaExceededError(
                    f"This server has {generating} image(s) generating{waiting} and allows {in_flight} at once, so "
                    f"{_fit_in(in_flight - taken, room)}. Nothing was started or charged."
                )
        await self._check_month(
            conn, guild_id, monthly_units, budget, units * count, cost * count, now, count=count, room=room
        )
        return full

    async def _check_month(
        self,
        conn: aiosqlite.Connection,
        guild_id: int,
        monthly_units: int | None,
        budget: int | None,
        units_added: int | None,
        cost_added: int,
        now: float,
        *,
        count: int = 1,
        room: Room | None = None,
    ) -> None:
        """Refuse ``units_added`` (None: no units) and ``cost_added`` more this month if they take the server
        past its monthly units or its budget in dollars (``count``: the images they are for, to say how
        many fit; ``room``: the limit with room for the fewest, when it is not this one)."""
        if monthly_units is None and budget is None:
            return
        _, end = self.bounds("monthly", now)
        used_units, used_cost = await self._guild_month(conn, guild_id, now)
        if monthly_units == 0 and units_added is not None and units_added > 0:
            raise QuotaExceededError(
                "This server's monthly quota is 0 units (set by an admin), so no image can be made here; "
                "waiting for the month to end will not change that."
            )
        if budget == 0 and cost_added > 0:
            raise QuotaExceededError(
                "This server's monthly budget is $0.00 (set by an admin), so no paid image can be made here; "
                "waiting for the month to end will not change that."
            )
        if monthly_units is not None and units_added is not None and used_units + units_added > monthly_units:
            units = units_added // count
            own = max(0, monthly_units - used_units) // units if units else 0
            fits = "" if count == 1 else f" So {_fit_in(own, room)}."
            raise QuotaExceededError(
                f"This server has used {used_units} of its {monthly_units} units this month.{fits} "
                f"The server budget resets <t:{int(end)}:R>."
            )
        if budget is not None and used_cost + cost_added > budget:
            each = cost_added // count
            # An image with no price (0) is refused here only when the server is over budget already: none
            # fits then (counting "count" fit told the member to ask for the count just refused).
            own = max(0, budget - used_cost) // each if each else 0
            fits = "" if count == 1 else f" So {_fit_in(own, room)}."
            raise QuotaExceededError(
                f"This server has spent {usd(used_cost)} of its {usd(budget)} monthly budget.{fits} "
                f"It resets <t:{int(end)}:R>."
            )

    async def _guild_month(self, conn: aiosqlite.Connection, guild_id: int, now: float) -> tuple[int, int]:
        """The units and micro-dollars the server's members have reserved this month (less refunds)."""
        start, _ = self.bounds("monthly", now)
        row = await _fetchone(
            conn,
            # Reservations and refunds only: a grant is one member's extra allowance, not the server's (as a
            # negative row it raised the server's cap for everyone).
            "SELECT COALESCE(SUM(units), 0), COALESCE(SUM(cost_micro_usd), 0) FROM ledger "
            "WHERE guild_id = ? AND window_at >= ? AND kind IN ('reserve', 'refund')",
            (guild_id, start),
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    # ---- what /quota shows -------------------------------------------------------------------

    async def status(self, member: Member) -> QuotaStatus:
        now = self.clock()
        async with self.db.read() as conn:
            limits = await self._limits(conn, member)
            windows = []
            enforced = self.settings.enabled  # off: the limits are shown as none, as the reservation applies none
            for window in WINDOWS:
                start, end = self.bounds(window, now)
                used, granted = await self._used_and_granted(conn, member, start)
                limit = limits.for_window(window) if enforced else None
                windows.append(WindowUsage(window, used, limit, end, granted))
            running, waiting = await self._requests(conn, member.guild_id, member.user_id)
        in_flight_limit = limits.in_flight if enforced else None
        return QuotaStatus(windows, running, in_flight_limit, limits, self._unlimited(member), enforced, waiting)

    async def server_status(self, guild_id: int) -> ServerStatus:
        """The server's limits, its own and the config's, and how much of each is in use (``/quota server``)."""
        now = self.clock()
        async with self.db.read() as conn:
            own = await self._server_own(conn, guild_id)
            used_units, spent = await self._guild_month(conn, guild_id, now)
            generating, waiting = await self._in_flight(conn, guild_id)
        _, end = self.bounds("monthly", now)
        config = configured(self.settings)
        return ServerStatus(own, config, used_units, spent, generating, waiting, end, self.settings.enabled)

    # ---- admin changes ------------------------------------------------------------------------

    async def grant(self, guild_id: int, user_id: int, units: int, *, by: int, reason: str | None) -> None:
        now = self.clock()
        async with self.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO ledger (guild_id, user_id, kind, units, window_at, created_at, reason, actor_id)
                   VALUES (?, ?, 'grant', ?, ?, ?, ?, ?)""",
                (guild_id, user_id, -units, now, now, reason or "granted by an admin", by),
            )

    async def reset(self, guild_id: int, user_id: int, *, by: int) -> None:
        now = self.clock()
        async with self.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO quota_resets (guild_id, user_id, reset_at) VALUES (?, ?, ?)
                   ON CONFLICT (guild_id, user_id) DO UPDATE SET reset_at = excluded.reset_at""",
                (guild_id, user_id, now),
            )
        log.info("quota of user %s in guild %s reset by %s", user_id, guild_id, by)

    async def set_limits(
        self,
        guild_id: int,
        scope: str,
        target_id: int,
        *,
        daily: int | None,
        weekly: int | None,
        monthly: int | None,
        in_flight: int | None,
        budget_micro_usd: int | None = None,
        by: int,
        member: Member | None = None,
    ) -> dict[str, int | None] | None:
        """Store a member's override or a role's tier (replacing any before it); returns the one replaced, by
        limit name (None: there was none), for the audit trail.

        Refused with ConflictingLimitsError, nothing stored, when a shorter window would allow more than a
        longer one, as the config is at load: for a role, among the tier's own limits; for a member
        (``member``, with their roles: the tiers the override merges with), among the limits they would have,
        where the pair involves a window the override names (one it leaves out keeps its value)."""
        given = _named(daily, weekly, monthly, in_flight)
        if scope != "user" and NO_LIMIT in given.values():
            # A tier's window left out is already no limit; its in_flight left out is the default's by design.
            raise ValueError("only a member override stores NO_LIMIT")
        async with self.db.transaction() as conn:
            if scope == "user":
                who = member if member is not None else Member(guild_id, target_id)
                default, tiers, _ = await self._sources(conn, who)
                limits = merge_limits(default, tiers, given)
                named = [name for name in WINDOWS if given[name] is not None]
            else:
                limits, named = Limits(daily, weekly, monthly, in_flight), list(WINDOWS)
            conflict = window_conflict(limits, named)
            if conflict is not None:
                raise ConflictingLimitsError(conflict, limits)
            before = await self._stored(conn, guild_id, scope, target_id)
            await conn.execute(
                """INSERT INTO quota_limits (guild_id, scope, target_id, daily, weekly, monthly, in_flight,
                       budget_micro_usd, updated_by, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (guild_id, scope, target_id) DO UPDATE SET daily = excluded.daily,
                       weekly = excluded.weekly, monthly = excluded.monthly, in_flight = excluded.in_flight,
                       budget_micro_usd = excluded.budget_micro_usd, updated_by = excluded.updated_by,
                       updated_at = excluded.updated_at""",
                (guild_id, scope, target_id, daily, weekly, monthly, in_flight, budget_micro_usd, by, self.clock()),
            )
        return before

    async def set_server_limits(
        self, guild_id: int, given: dict[str, int | None], back: set[str], *, by: int
    ) -> tuple[ServerLimits | None, ServerLimits | None]:
        """Set the server's own limits ``given`` (by bot/server_limits.py's names; None: unchanged) and return those
        in ``back`` to the config's; the others it has stay. Returns its own before and after (None: none)."""
        async with self.db.transaction() as conn:
            before = await self._server_own(conn, guild_id)
            after = (before or ServerLimits()).changed(given, back)
            if after is None:
                await conn.execute(
                    "DELETE FROM quota_limits WHERE guild_id = ? AND scope = 'guild' AND target_id = ?",
                    (guild_id, guild_id),
                )
            else:
                await conn.execute(
                    """INSERT INTO quota_limits (guild_id, scope, target_id, monthly, in_flight, budget_micro_usd,
                           updated_by, updated_at)
                       VALUES (?, 'guild', ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (guild_id, scope, target_id) DO UPDATE SET monthly = excluded.monthly,
                           in_flight = excluded.in_flight, budget_micro_usd = excluded.budget_micro_usd,
                           updated_by = excluded.updated_by, updated_at = excluded.updated_at""",
                    (guild_id, guild_id, after.monthly_units, after.in_flight, after.budget, by, self.clock()),
                )
        return before, after

    async def clear_limits(self, guild_id: int, scope: str, target_id: int) -> dict[str, int | None] | None:
        """Remove a member's override or a role's tier; returns what it was (None: there was none), since the
        row that named who set it goes with it and the audit trail keeps the rest."""
        async with self.db.transaction() as conn:
            before = await self._stored(conn, guild_id, scope, target_id)
            await conn.execute(
                "DELETE FROM quota_limits WHERE guild_id = ? AND scope = ? AND target_id = ?",
                (guild_id, scope, target_id),
            )
        return before

    async def _stored(
        self, conn: aiosqlite.Connection, guild_id: int, scope: str, target_id: int
    ) -> dict[str, int | None] | None:
        row = await _fetchone(
            conn,
            "SELECT daily, weekly, monthly, in_flight FROM quota_limits WHERE guild_id = ? AND scope = ? "
            "AND target_id = ?",
            (guild_id, scope, target_id),
        )
        return None if row is None else _named(row[0], row[1], row[2], row[3])

    async def settle_orphans(self) -> int:
        """Settle reservations of jobs that ended without one (defence in depth; should find none)."""
        from bot.store.jobs import _row_to_job

        async with self.db.transaction() as conn:
            rows = await _fetchall(
                conn,
                "SELECT * FROM jobs WHERE charge_state = 'reserved' AND state IN "
                "('delivered', 'failed', 'blocked', 'cancelled', 'expired')",
                (),
            )
            for row in rows:
                job = _row_to_job(row)
                delivered = str(job.state) == "delivered"
                await ledger_sql.settle(conn, job, delivered=delivered, now=self.clock(), why="settled at start")
                await conn.execute(
                    "UPDATE jobs SET charge_state = ? WHERE id = ?", (ledger_sql.settled_state(delivered), job.id)
                )
        if rows:
            log.warning("settled %d reservation(s) left over from a crash", len(rows))
        return len(rows)


def _zero_window(
    window: str, units: int, count: int, spent: int, granted: int, left: int, room: Room | None = None
) -> str:
    """The refusal when a window's limit is 0: no reset brings units back, so none is promised (it said
    "you have used 0 of your 0 daily units ... resets in 5 hours"). Units granted still count; ``left``
    of them remain (``room``: the limit with room for the fewest images of a batch)."""
    if not granted:
        return (
            f"An admin has set your {window} quota to 0 units, so you cannot make images; waiting for a reset "
            "will not change that. Ask an admin if you think it is a mistake."
        )
    asked = f"This image costs {units} unit(s)" if count == 1 else f"{count} images cost {units * count} unit(s)"
    fits = "" if count == 1 else f" ({_fit_in(left // units if units else count, room)})"
    return (
        f"{asked}; you have used {spent} of the {granted} unit(s) an admin granted you{fits}, and your {window} "
        "quota is 0 units, so a reset will not bring more. Nothing was started or charged. Ask an admin for more."
    )


def _named(daily: int | None, weekly: int | None, monthly: int | None, in_flight: int | None) -> dict[str, int | None]:
    return {"daily": daily, "weekly": weekly, "monthly": monthly, "in_flight": in_flight}


def _fit(images: int, because: str | None = None) -> str:
    """How many images of a refused batch would fit, as the member can act on it (``because``: the limit
    that holds them to that, when it is not the one the refusal names)."""
    why = f" ({because})" if because else ""
    if images <= 0:
        return f"none fit{why}"
    return f"at most {images} fit{why}: ask for count:{images}" if images > 1 else f"one fits{why}: ask for one image"


def _fit_in(own: int, room: Room | None) -> str:
    """``_fit`` for a refusal whose own limit has room for ``own`` images, when ``room`` (the limit with room for
    the fewest) may allow fewer still: the count suggested is then that one's, which it names."""
    if room is None or room.images >= own:
        return _fit(own)
    return _fit(room.images, room.limit)


async def _fetchone(conn: aiosqlite.Connection, sql: str, params: tuple[object, ...]) -> aiosqlite.Row | None:
    async with conn.execute(sql, params) as cur:
        return await cur.fetchone()


async def _fetchall(conn: aiosqlite.Connection, sql: str, params: tuple[object, ...]) -> list[aiosqlite.Row]:
    async with conn.execute(sql, params) as cur:
        return list(await cur.fetchall())
