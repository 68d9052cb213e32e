"""Which limits a member has, on a real SQLite file: the defaults, role tiers (configured and set with
/quota set role:), a member's own override, and where each limit comes from.

The precedence (README "Quotas and usage", bot/quotas.py merge_limits): the defaults apply while no tier
matches; the tiers a member holds are merged limit by limit, the most generous of each (no limit the most
generous); a member's override comes first for the limits it names, the rest as without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import QuotaSettings, TierSettings
from bot.quotas import NO_LIMIT, Member, Origin, Quotas
from bot.store import Database
from bot.store.jobs import JobStore
from tests.conftest import Clock
from tests.test_quota_ledger import asked, ts

GUILD, MEMBER, ADMIN = 1, 7, 99
SUPPORTER, MODERATOR = 11, 12  # role ids
DEFAULT = Origin("default")
# Every limit set by default, so a tier that replaces them (or a merge that loses them) shows.
DEFAULTS = {"daily": 25, "weekly": 100, "monthly": 300, "in_flight_per_user": 2, "in_flight_per_guild": None}

Limits4 = tuple[int | None, int | None, int | None, int | None]
Stored = dict[str, int | None]


def tier(
    daily: int | None = None, weekly: int | None = None, monthly: int | None = None, in_flight: int | None = None
) -> Stored:
    return {"daily": daily, "weekly": weekly, "monthly": monthly, "in_flight": in_flight}


@pytest.mark.parametrize(
    ("roles", "configured", "stored_tiers", "override", "values", "origins"),
    [
        pytest.param(
            (MODERATOR,),
            {},
            {MODERATOR: tier(daily=1, weekly=5, monthly=20)},
            None,
            (1, 5, 20, 2),
            (Origin("role", MODERATOR),) * 3 + (DEFAULT,),
            # It lost to the default, whose monthly 300 is more than 20: `role daily:1` was ignored.
            id="a stricter tier binds",
        ),
        pytest.param(
            (MODERATOR,),
            {},
            {MODERATOR: tier(daily=100, monthly=2000)},
            None,
            (100, None, 2000, 2),
            (Origin("role", MODERATOR),) * 3 + (DEFAULT,),
            # It won whole, so its in_flight left out meant any number at once.
            id="a tier's in_flight left out stays the default's",
        ),
        pytest.param(
            (SUPPORTER, MODERATOR),
            {"supporter": TierSettings(role_id=SUPPORTER, daily=100, weekly=500, monthly=1000, in_flight=4)},
            {MODERATOR: tier(daily=200, weekly=400, monthly=3000)},
            None,
            (200, 500, 3000, 4),
            (
                Origin("role", MODERATOR),
                Origin("tier", SUPPORTER, "supporter"),
                Origin("role", MODERATOR),
                Origin("tier", SUPPORTER, "supporter"),
            ),
            # The tier with the highest monthly won whole: weekly 400 and no in_flight limit.
            id="several tiers merge limit by limit",
        ),
        pytest.param(
            (SUPPORTER, MODERATOR),
            {"supporter": TierSettings(role_id=SUPPORTER, daily=100)},
            {MODERATOR: tier(daily=10, in_flight=1)},
            None,
            (100, None, None, 2),
            (Origin("tier", SUPPORTER, "supporter"),) * 3 + (DEFAULT,),
            # The supporter tier, naming no in_flight, gives the default's 2; the moderator's 1 won over it.
            id="a tier's in_flight left out counts as the default's in the merge",
        ),
        pytest.param(
            (MODERATOR,),
            {},
            {MODERATOR: tier(daily=100, monthly=2000)},
            {"daily": 10, "weekly": None, "monthly": None, "in_flight": None},
            (10, None, 2000, 2),
            (Origin("member"), Origin("role", MODERATOR), Origin("role", MODERATOR), DEFAULT),
            # The override replaced everything: no monthly limit, any number at once.
            id="an override changes only what it names, over a tier",
        ),
        pytest.param(
            (),
            {},
            {},
            # (A monthly below the default weekly 100 is refused now: weekly 100 could never be reached.)
            {"daily": None, "weekly": None, "monthly": 150, "in_flight": None},
            (25, 100, 150, 2),
            (DEFAULT, DEFAULT, Origin("member"), DEFAULT),
            id="an override changes only what it names, over the defaults",
        ),
        pytest.param(
            (MODERATOR,),
            {},
            {MODERATOR: tier(daily=1, weekly=5, monthly=20)},
            {"daily": NO_LIMIT, "weekly": None, "monthly": None, "in_flight": NO_LIMIT},
            (None, 5, 20, None),
            (Origin("member"), Origin("role", MODERATOR), Origin("role", MODERATOR), Origin("member")),
            # NULL is "leave it as the tier gives it", so no override could lift a limit.
            id="an override lifts what it names as NO_LIMIT to no limit",
        ),
    ],
)
async def test_limits_and_where_they_come_from(
    tmp_path: Path,
    roles: tuple[int, ...],
    configured: dict[str, TierSettings],
    stored_tiers: dict[int, Stored],
    override: Stored | None,
    values: Limits4,
    origins: tuple[Origin, ...],
) -> None:
    db = Database(tmp_path / "tiers.sqlite3")
    await db.connect()
    try:
        quotas = Quotas(db, QuotaSettings(**DEFAULTS, tiers=configured), clock=Clock(ts("2026-11-23 12:00")))
        for role_id, tier_limits in stored_tiers.items():
            await quotas.set_limits(GUILD, "role", role_id, **tier_limits, by=ADMIN)
        if override is not None:
            await quotas.set_limits(GUILD, "user", MEMBER, **override, by=ADMIN)
        # A tier of a role the member does not hold, and another member's override, change nothing.
        await quotas.set_limits(GUILD, "role", 404, daily=None, weekly=None, monthly=None, in_flight=None, by=ADMIN)
        await quotas.set_limits(GUILD, "user", 8, daily=0, weekly=0, monthly=0, in_flight=0, by=ADMIN)
        status = await quotas.status(Member(GUILD, MEMBER, roles))
    finally:
        await db.close()
    limits = status.limits
    assert (limits.daily, limits.weekly, limits.monthly, limits.in_flight) == values
    assert tuple(limits.origin(name) for name in ("daily", "weekly", "monthly", "in_flight")) == origins
    assert [w.limit for w in status.windows] == list(values[:3]) and status.in_flight_limit == values[3]


async def test_only_a_member_override_stores_no_limit(tmp_path: Path) -> None:
    """A tier's window left out is already no limit and its in_flight left out the default's: NO_LIMIT in a
    tier would be a third meaning, so it is refused before anything is stored."""
    db = Database(tmp_path / "tiers.sqlite3")
    await db.connect()
    try:
        quotas = Quotas(db, QuotaSettings(**DEFAULTS), clock=Clock(ts("2026-11-23 12:00")))
        with pytest.raises(ValueError, match="only a member override"):
            await quotas.set_limits(GUILD, "role", MODERATOR, **tier(daily=NO_LIMIT), by=ADMIN)
        async with db.read() as conn:
            rows = await (await conn.execute("SELECT COUNT(*) FROM quota_limits")).fetchall()
    finally:
        await db.close()
    assert [tuple(r) for r in rows] == [(0,)]


async def test_a_zero_limit_with_units_granted_promises_no_reset(tmp_path: Path) -> None:
    """With daily 0 and units granted, the refusal counted "used 2 of your 0 daily units and 2 granted" and
    pointed at the daily reset, which brings nothing back: the grant is all there is."""
    db = Database(tmp_path / "zero.sqlite3")
    await db.connect()
    try:
        store, clock = JobStore(db), Clock(ts("2026-11-23 12:00"))
        quotas = Quotas(db, QuotaSettings(daily=0, in_flight_per_user=None, in_flight_per_guild=None), clock=clock)
        alone = await asked(quotas, store, clock, MEMBER, units=1, count=1) or ""
        await quotas.grant(GUILD, MEMBER, 3, by=ADMIN, reason=None)
        assert await asked(quotas, store, clock, MEMBER, units=2, count=1) is None  # the grant is spent on this
        batch = await asked(quotas, store, clock, MEMBER, units=1, count=2) or ""
        status = await quotas.status(Member(GUILD, MEMBER))
    finally:
        await db.close()
    assert alone.startswith("An admin has set your daily quota to 0 units"), alone
    assert batch.startswith("2 images cost 2 unit(s); you have used 2 of the 3 unit(s) an admin granted you"), batch
    assert "one fits: ask for one image" in batch and "quota is 0 units, so a reset will not bring more" in batch
    for refusal in (alone, batch):
        assert "<t:" not in refusal and "resets" not in refusal
    assert (status.windows[0].limit, status.windows[0].remaining) == (0, 1)


@pytest.mark.parametrize(
    ("server", "said"),
    [
        ({"in_flight_per_guild": 0}, "This server's limit on images generating at once is 0 (set by an admin)"),
        ({"guild_monthly_units": 0}, "This server's monthly quota is 0 units (set by an admin)"),
        ({"guild_monthly_budget_usd": 0}, "This server's monthly budget is $0.00 (set by an admin)"),
    ],
)
async def test_a_server_limit_of_zero_promises_no_wait(tmp_path: Path, server: dict[str, int], said: str) -> None:
    """A server allowed 0 at once was told "already has 0 image(s) generating, its limit. Try again in a
    minute."; 0 units or $0 a month, "has used 0 of its 0 units ... resets <t:...>"."""
    db = Database(tmp_path / "server.sqlite3")
    await db.connect()
    try:
        store, clock = JobStore(db), Clock(ts("2026-11-23 12:00"))
        settings = QuotaSettings(**{"daily": None, "in_flight_per_user": None, "in_flight_per_guild": None, **server})
        refusal = await asked(Quotas(db, settings, clock=clock), store, clock, MEMBER, units=1, count=1) or ""
    finally:
        await db.close()
    assert refusal.startswith(said), refusal
    assert "waiting" in refusal and "<t:" not in refusal and "Try again" not in refusal


async def test_help_promises_no_reset_for_a_zero_limit(tmp_path: Path) -> None:
    """/help's quota line said "**0 units** left today (resets in 5 hours)" for a daily limit of 0, which no
    reset lifts; what is left is only what was granted."""
    from cogs.help import quota_line

    db = Database(tmp_path / "help.sqlite3")
    await db.connect()
    try:
        quotas = Quotas(db, QuotaSettings(daily=0), clock=Clock(ts("2026-11-23 12:00")))
        await quotas.grant(GUILD, MEMBER, 3, by=ADMIN, reason=None)
        line = quota_line(await quotas.status(Member(GUILD, MEMBER, ())))
    finally:
        await db.close()
    assert line == "**3 units** left today (limit 0, set by an admin)"
