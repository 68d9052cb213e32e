"""A batch refused for quota is told how many images fit ("ask for count:N"): N is the fewest any limit has
room for, the member's windows and the server's limits alike, so asking for N at once is accepted. Read from
the first limit to refuse, count:3 was suggested by the daily quota and then refused by the weekly one."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.config import QuotaSettings, window_conflicts
from bot.models import GenerationRequest
from bot.quotas import Member, QuotaExceededError, Quotas
from bot.store.jobs import JobStore, NewJob
from tests.conftest import Clock
from tests.test_quota_ledger import asked, open_db, ts


def suggested(refusal: str) -> int:
    """The count a refusal tells its member to ask for (1: "ask for one image", 0: none fit)."""
    if "ask for one image" in refusal:
        return 1
    found = re.search(r"ask for count:(\d+)", refusal)
    assert found or "none fit" in refusal, refusal
    return int(found[1]) if found else 0


async def test_a_count_suggested_by_the_daily_quota_is_not_refused_by_the_weekly_one(tmp_path: Path) -> None:
    db, store = await open_db(tmp_path / "weekly.sqlite3")
    clock = Clock(ts("2026-11-24 12:00"))  # a Tuesday
    settings = QuotaSettings(daily=3, weekly=3, in_flight_per_user=None, in_flight_per_guild=None)
    quotas = Quotas(db, settings, clock=clock)
    assert await asked(quotas, store, clock, 7, units=1, count=2) is None  # 2 of the week's 3
    clock.now = ts("2026-11-25 12:00")  # Wednesday: 3 left today, 1 this week
    refusal = await asked(quotas, store, clock, 7, units=1, count=4) or ""
    assert await asked(quotas, store, clock, 7, units=1, count=suggested(refusal)) is None, refusal
    # The daily quota refuses, and names the weekly one as what holds the batch to one image.
    assert "you have used 0 of your 3 daily units" in refusal, refusal
    assert "one fits (your weekly quota has 1 unit left): ask for one image" in refusal, refusal
    await db.close()


async def ask(quotas: Quotas, store: JobStore, clock: Clock, *, count: int, cost: int = 40_000) -> str | None:
    """``count`` images of one unit and ``cost`` micro-dollars each asked for by member 7 of server 1: None if
    reserved, else the refusal they read."""
    member = Member(guild_id=1, user_id=7)
    hook = quotas.reservation(member, model="nano_banana_2", provider="seaart", size="1K", units=1, cost_micro_usd=cost)
    new = NewJob(
        provider="seaart",
        model="nano_banana_2",
        request=GenerationRequest(model="nano_banana_2", prompt="p"),
        guild_id=1,
        user_id=7,
    )
    try:
        await store.create_batch([new] * count, now=clock(), deadline_seconds=60, within=hook)
    except QuotaExceededError as exc:
        return exc.user_message
    return None


@pytest.mark.parametrize(
    ("limits", "refused_by", "binding"),
    [
        # The member's daily quota refuses count:4 (3 fit); the server's limits hold it to fewer.
        ({"daily": 3, "guild_monthly_units": 1}, "of your 3 daily units", "this server has 1 unit left this month"),
        (
            {"daily": 3, "in_flight_per_guild": 2},
            "of your 3 daily units",
            "this server has room for 2 more image(s) generating at once",
        ),
        (
            {"daily": 3, "guild_monthly_budget_usd": 0.10},
            "of your 3 daily units",
            "this server's monthly budget has $0.10 left",
        ),
        # The server's images-at-once refuses (3 fit); its monthly units allow one.
        (
            {"daily": None, "in_flight_per_guild": 3, "guild_monthly_units": 1},
            "allows 3 at once",
            "this server has 1 unit left this month",
        ),
    ],
)
async def test_a_count_suggested_by_one_limit_fits_the_server_s_limits_too(
    tmp_path: Path, limits: dict[str, Any], refused_by: str, binding: str
) -> None:
    db, store = await open_db(tmp_path / "server.sqlite3")
    clock = Clock(ts("2026-11-24 12:00"))
    # Nothing may wait its turn here (bot/waiting_requests.py): the count suggested is what starts now.
    base = {"in_flight_per_user": None, "in_flight_per_guild": None, "waiting_per_user": 0}
    settings = QuotaSettings(**{**base, **limits})
    quotas = Quotas(db, settings, clock=clock)
    refusal = await ask(quotas, store, clock, count=4) or ""
    count = suggested(refusal)
    assert count >= 1 and await ask(quotas, store, clock, count=count) is None, refusal
    assert refused_by in refusal and binding in refusal, refusal
    assert count < 3, refusal
    await db.close()


async def test_a_batch_refused_by_the_server_s_budget_is_told_how_many_fit(tmp_path: Path) -> None:
    """The budget's refusal named no count at all; it names the one that fits, as the other limits do."""
    db, store = await open_db(tmp_path / "budget.sqlite3")
    clock = Clock(ts("2026-11-24 12:00"))
    settings = QuotaSettings(
        daily=None, in_flight_per_user=None, in_flight_per_guild=None, guild_monthly_budget_usd=0.10
    )
    quotas = Quotas(db, settings, clock=clock)
    refusal = await ask(quotas, store, clock, count=4) or ""
    assert "spent $0.00 of its $0.10 monthly budget. So at most 2 fit: ask for count:2." in refusal, refusal
    assert await ask(quotas, store, clock, count=2) is None
    assert "spent $0.08 of its $0.10 monthly budget. It resets" in (await ask(quotas, store, clock, count=1) or "")
    await db.close()


async def test_an_unpriced_batch_on_a_server_past_its_budget_is_not_told_to_ask_for_itself(tmp_path: Path) -> None:
    """An image with no price is estimated at $0: refused only once the server is past its budget (the owner's
    unlimited reservations count toward it), it was told "at most 3 fit: ask for count:3", the count refused."""
    db, store = await open_db(tmp_path / "unpriced.sqlite3")
    clock = Clock(ts("2026-11-24 12:00"))
    settings = QuotaSettings(
        daily=None, in_flight_per_user=None, in_flight_per_guild=None, guild_monthly_budget_usd=Decimal("0.10")
    )
    quotas = Quotas(db, settings, clock=clock)
    owner = Member(guild_id=1, user_id=1, is_owner=True)
    hook = quotas.reservation(
        owner, model="nano_banana_2", provider="seaart", size="1K", units=1, cost_micro_usd=40_000
    )
    new = NewJob(provider="seaart", model="nano_banana_2", request=GenerationRequest(model="nano_banana_2", prompt="p"))
    await store.create_batch([new] * 3, now=clock(), deadline_seconds=60, within=hook)  # $0.12 of $0.10
    refusal = await ask(quotas, store, clock, count=3, cost=0) or ""
    assert "spent $0.12 of its $0.10 monthly budget" in refusal and "ask for count" not in refusal, refusal
    await db.close()


limit = st.one_of(st.none(), st.integers(0, 8))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    windows=st.tuples(limit, limit, limit),
    server=st.tuples(limit, limit, st.one_of(st.none(), st.integers(0, 8))),
    before=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), max_size=4),
    count=st.integers(2, 4),
)
def test_whatever_the_limits_a_suggested_count_is_accepted_at_once(
    tmp_path: Path,
    windows: tuple[int | None, int | None, int | None],
    server: tuple[int | None, int | None, int | None],
    before: list[tuple[int, int]],
    count: int,
) -> None:
    """Any member windows (a shorter one never above a longer one, as the config requires), any server
    limits (monthly units, images at once, a budget in $0.04 images), some use this week and the week
    before: a refusal of a batch that suggests a count is followed by that count's acceptance."""
    daily, weekly, monthly = windows
    assume(not any(window_conflicts({"daily": daily, "weekly": weekly, "monthly": monthly})))
    units, in_flight, budget_images = server
    settings_ = QuotaSettings(
        daily=daily,
        weekly=weekly,
        monthly=monthly,
        in_flight_per_user=None,
        in_flight_per_guild=in_flight,
        guild_monthly_units=units,
        guild_monthly_budget_usd=None if budget_images is None else Decimal("0.04") * budget_images,
    )
    asyncio.run(
        _suggested_is_accepted(
            tmp_path / f"p{abs(hash((windows, server, tuple(before), count)))}.sqlite3", settings_, before, count
        )
    )


async def _suggested_is_accepted(
    path: Path, settings_: QuotaSettings, before: list[tuple[int, int]], count: int
) -> None:
    db, store = await open_db(path)
    try:
        clock = Clock(ts("2026-11-25 12:00"))  # a Wednesday
        quotas = Quotas(db, settings_, clock=clock)
        for days_ago, asked_for in before:
            clock.now = ts("2026-11-25 12:00") - days_ago * 86_400
            await ask(quotas, store, clock, count=asked_for)
        clock.now = ts("2026-11-25 12:00")
        refusal = await ask(quotas, store, clock, count=count)
        if refusal is None or "ask for" not in refusal:
            return
        again = suggested(refusal)
        assert 1 <= again < count, refusal
        assert await ask(quotas, store, clock, count=again) is None, f"{refusal} -> count:{again} refused"
    finally:
        await db.close()
