"""Quota windows across changes of the clocks: every instant in exactly one day, week and month, the quota
check and the reports on the same windows, and a daily limit that holds in a reset hour the clocks skip."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import QuotaSettings
from bot.models import GenerationRequest
from bot.quotas import WINDOWS, Member, QuotaExceededError, Quotas, window_bounds
from bot.store.jobs import NewJob
from bot.store.usage import period_bounds
from tests.conftest import Clock
from tests.test_quota_ledger import open_db, ts

# Zones whose clocks jump or go back by more than an hour (Troll: two hours), by half an hour (Lord Howe), off
# the hour (Chatham: 02:45), at midnight (Sao Paulo until 2019) or by a whole day (Apia skipped 30 December
# 2011), and the usual hour (New York, London).
ZONES = (
    "Antarctica/Troll",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "America/New_York",
    "Europe/London",
    "America/Sao_Paulo",
    "Pacific/Apia",
)
PERIODS = {"daily": "day", "weekly": "week", "monthly": "month"}
DAY = 86_400


@cache
def transitions(tz: str) -> tuple[int, ...]:
    """The instants (whole seconds) the zone's offset from UTC changed, 2010-2030."""
    zone = ZoneInfo(tz)

    def offset(moment: int) -> object:
        return datetime.fromtimestamp(moment, zone).utcoffset()

    found = []
    moment, last = int(ts("2010-01-01 00:00")), int(ts("2031-01-01 00:00"))
    while moment < last:
        if offset(moment) != offset(moment + DAY):
            before, after = moment, moment + DAY
            while after - before > 1:
                middle = (before + after) // 2
                before, after = (middle, after) if offset(middle) == offset(moment) else (before, middle)
            found.append(after)
        moment += DAY
    return tuple(found)


def local(moment: float, tz: str) -> datetime:
    """The zone's wall clock at ``moment``, without its zone."""
    return datetime.fromtimestamp(moment, ZoneInfo(tz)).replace(tzinfo=None)


@settings(max_examples=200, deadline=None)
@given(
    tz=st.sampled_from(ZONES),
    reset_hour=st.integers(0, 23),
    pick=st.integers(0, 10_000),
    # Up to three days either side of a change of the clocks, to the second and within it.
    offset=st.integers(-3 * DAY, 3 * DAY),
    fraction=st.sampled_from((0.0, 0.25, 0.999)),
)
def test_windows_tile_time_across_changes_of_the_clocks(
    tz: str, reset_hour: int, pick: int, offset: int, fraction: float
) -> None:
    changes = transitions(tz)
    now = changes[pick % len(changes)] + offset + fraction
    spans = {}
    for window in WINDOWS:
        start, end = window_bounds(window, now, tz=tz, reset_hour=reset_hour)
        spans[window] = (start, end)
        assert start <= now < end, (window, start, end)
        # Consecutive windows meet: no instant between two, none in both.
        assert window_bounds(window, end, tz=tz, reset_hour=reset_hour)[0] == end
        assert window_bounds(window, start - 0.5, tz=tz, reset_hour=reset_hour)[1] == start
        assert window_bounds(window, start, tz=tz, reset_hour=reset_hour) == (start, end)
        # The reports cover the windows the quota check counts.
        assert period_bounds(PERIODS[window], now, tz=tz, reset_hour=reset_hour) == (start, end)
        # Every window starts where a quota day starts: weeks on a Monday, months on the 1st.
        first_day = window_bounds("daily", start, tz=tz, reset_hour=reset_hour)[0]
        assert first_day == start
        opened = local(start, tz)
        if window == "weekly":
            assert opened.weekday() == 0, opened
        if window == "monthly":
            assert opened.day == 1, opened
    # A day starts at the reset hour on its date or, if the clocks skip that time, the moment they jump past it:
    # then the clocks may read the next date already (Apia skipped 30 December 2011: that day, reset at 01:00,
    # began as the clocks jumped to 31 December 00:00).
    start, _ = spans["daily"]
    opened = local(start, tz)
    resets = [datetime.combine(opened.date() - timedelta(days=back), time(reset_hour)) for back in (0, 1)]
    reset = next(r for r in resets if local(start - 1, tz) < r <= opened)
    skipped = reset.replace(tzinfo=ZoneInfo(tz)).timestamp() > reset.replace(tzinfo=ZoneInfo(tz), fold=1).timestamp()
    assert skipped or opened == reset
    # A day is inside its week and its month.
    for longer in ("weekly", "monthly"):
        assert spans[longer][0] <= spans["daily"][0] and spans["daily"][1] <= spans[longer][1]


@pytest.mark.parametrize(
    ("tz", "reset_hour", "now", "jump"),
    [
        # Troll's clocks jump from 01:00 to 03:00 (+00 to +02) at 01:00 UTC on 28 March 2027; with the reset at
        # 02:00 the day started at 02:00 UTC, an hour after 01:30 UTC (03:30 local), which was in no day.
        ("Antarctica/Troll", 2, "2027-03-28T01:30:00+00:00", "2027-03-28T01:00:00+00:00"),
        # Chatham's clocks jump from 02:45 to 03:45 on 27 September 2026 (14:00 UTC the day before): with the
        # reset at 03:00 the day started at 14:15 UTC, so 03:50 local counted in the day before, while the
        # reports put it in the new one.
        ("Pacific/Chatham", 3, "2026-09-26T14:05:00+00:00", "2026-09-26T14:00:00+00:00"),
    ],
)
async def test_a_daily_limit_holds_in_a_reset_hour_the_clocks_skip(
    tmp_path: Path, tz: str, reset_hour: int, now: str, jump: str
) -> None:
    moment = datetime.fromisoformat(now).timestamp()
    start, end = window_bounds("daily", moment, tz=tz, reset_hour=reset_hour)
    assert start == datetime.fromisoformat(jump).timestamp(), datetime.fromtimestamp(start, UTC)
    assert start <= moment < end
    assert period_bounds("day", moment, tz=tz, reset_hour=reset_hour) == (start, end)

    db, store = await open_db(tmp_path / "gap.sqlite3")
    limits = QuotaSettings(
        daily=3, timezone=tz, reset_hour=reset_hour, in_flight_per_user=None, in_flight_per_guild=None
    )
    quotas = Quotas(db, limits, clock=Clock(moment))
    member = Member(guild_id=1, user_id=7)
    accepted = 0
    for _ in range(10):
        hook = quotas.reservation(
            member, model="nano_banana_2", provider="seaart", size="1K", units=1, cost_micro_usd=1
        )
        request = GenerationRequest(model="nano_banana_2", prompt="p")
        new = NewJob(provider="seaart", model="nano_banana_2", request=request, guild_id=1, user_id=7)
        try:
            await store.create(new, now=moment, deadline_seconds=60, within=hook)
        except QuotaExceededError:
            continue
        accepted += 1
    today = (await quotas.status(member)).windows[0]
    await db.close()
    assert accepted == 3
    assert (today.used, today.remaining) == (3, 0)
