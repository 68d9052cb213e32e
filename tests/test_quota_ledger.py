"""Quota arithmetic on a real SQLite file: properties of the ledger, window boundaries, restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli_sink import FileSink
from bot.config import QuotaSettings, load_settings
from bot.jobs import JobRunner
from bot.models import GenerationRequest, JobState
from bot.providers.seaart import SeaArtProvider
from bot.quotas import Member, QuotaExceededError, Quotas, window_bounds
from bot.store import Database
from bot.store.jobs import JobStore, NewJob
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock

KEY = "ledger-test-key"


def ts(text: str) -> float:
    return (
        datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
        if "+" not in text
        else datetime.fromisoformat(text).timestamp()
    )


@pytest.mark.parametrize(
    ("window", "now", "start", "end"),
    [
        ("daily", "2026-11-23 10:00", "2026-11-23 00:00", "2026-11-24 00:00"),
        ("daily", "2026-11-23 23:59:59", "2026-11-23 00:00", "2026-11-24 00:00"),
        ("weekly", "2026-11-23 10:00", "2026-11-23 00:00", "2026-11-30 00:00"),  # a Monday
        ("weekly", "2026-11-29 23:00", "2026-11-23 00:00", "2026-11-30 00:00"),
        ("monthly", "2026-12-31 23:59", "2026-12-01 00:00", "2027-01-01 00:00"),
        ("monthly", "2027-02-01 00:00", "2027-02-01 00:00", "2027-03-01 00:00"),
    ],
)
def test_utc_windows_are_exact(window: str, now: str, start: str, end: str) -> None:
    assert window_bounds(window, ts(now)) == (ts(start), ts(end))


def test_reset_hour_and_time_zone() -> None:
    # 05:00 UTC on the 1st is still the previous month when windows reset at 06:00 UTC.
    start, end = window_bounds("monthly", ts("2026-12-01 05:00"), reset_hour=6)
    assert (start, end) == (ts("2026-11-01 06:00"), ts("2026-12-01 06:00"))
    # Berlin: midnight local is 23:00 UTC in winter.
    start, _ = window_bounds("daily", ts("2026-11-23 22:30"), tz="Europe/Berlin")
    assert start == ts("2026-11-22 23:00")
    # Across the DST change (2026-03-29) a Berlin day still starts at local midnight.
    start, end = window_bounds("daily", ts("2026-03-29 12:00"), tz="Europe/Berlin")
    assert (start, end) == (ts("2026-03-28 23:00"), ts("2026-03-29 22:00"))


def test_a_reset_hour_the_clocks_repeat_starts_the_day_once() -> None:
    """The night clocks go back, 01:00-02:00 comes twice. With the reset at 01:00, 01:10 in the second pass
    (PST) belongs to the day that began at 01:00 PDT, as 01:50 in the first pass does: the day's start kept
    the second pass's fold and began an hour later, so an hour of use dropped out of the day."""
    zone = "America/Los_Angeles"
    first_pass = ts("2026-11-01 08:50")  # 01:50 PDT
    second_pass = ts("2026-11-01 09:10")  # 01:10 PST
    assert window_bounds("daily", first_pass, tz=zone, reset_hour=1) == window_bounds(
        "daily", second_pass, tz=zone, reset_hour=1
    )
    assert window_bounds("daily", second_pass, tz=zone, reset_hour=1)[0] == ts("2026-11-01 08:00")


async def open_db(path: Path) -> tuple[Database, JobStore]:
    db = Database(path)
    await db.connect()
    return db, JobStore(db)


def balance(path: Path, user: int) -> int:
    with sqlite3.connect(path) as conn:
        return int(
            conn.execute(
                "SELECT COALESCE(SUM(units),0) FROM ledger WHERE user_id=? AND kind IN ('reserve','refund','grant')",
                (user,),
            ).fetchone()[0]
        )


actions = st.lists(
    st.tuples(st.sampled_from(["reserve", "batch", "deliver", "fail", "grant"]), st.integers(1, 4), st.integers(0, 2)),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=actions)
def test_ledger_properties(tmp_path: Path, steps: list[tuple[str, int, int]]) -> None:
    """Whatever happens, usage is what the model says, never exceeds the limit, and refunds restore exactly;
    a batch (2-4 candidates of one request) is reserved whole or not at all."""
    asyncio.run(_ledger_properties(tmp_path / f"p{abs(hash(str(steps)))}.sqlite3", steps))


async def _ledger_properties(path: Path, steps: list[tuple[str, int, int]]) -> None:
    db, store = await open_db(path)
    clock = Clock(ts("2026-11-23 12:00"))
    quotas = Quotas(db, QuotaSettings(daily=6, in_flight_per_user=None, in_flight_per_guild=None), clock=clock)
    member = Member(guild_id=1, user_id=7)
    open_jobs: list[str] = []
    expected_used, granted = 0, 0
    for action, units, pick in steps:
        if action in ("reserve", "batch"):
            count = pick + 2 if action == "batch" else 1
            hook = quotas.reservation(
                member, model="nano_banana_2", provider="seaart", size="1K", units=units, cost_micro_usd=units * 40_000
            )
            request = GenerationRequest(model="nano_banana_2", prompt="p")
            new = NewJob(provider="seaart", model="nano_banana_2", request=request, guild_id=1, user_id=7)
            try:
                jobs = await store.create_batch([new] * count, now=clock(), deadline_seconds=60, within=hook)
            except QuotaExceededError:
                assert expected_used - granted + units * count > 6
                continue
            assert len({job.batch_id for job in jobs}) == 1 and (jobs[0].batch_id is None) == (count == 1)
            open_jobs.extend(job.id for job in jobs)
            expected_used += units * count
        elif action in ("deliver", "fail") and open_jobs:
            job_id = open_jobs.pop(pick % len(open_jobs))
            job = await store.get(job_id)
            assert job is not None
            job = await store.update(job, now=clock(), state=JobState.SUBMITTED)
            if action == "deliver":
                job = await store.update(job, now=clock(), state=JobState.RUNNING)
                job = await store.update(job, now=clock(), state=JobState.SUCCEEDED)
                await store.update(job, now=clock(), state=JobState.DELIVERED)
            else:
                await store.update(job, now=clock(), state=JobState.FAILED)
                expected_used -= job.charge_units  # a refund gives back exactly what was reserved
        elif action == "grant":
            await quotas.grant(1, 7, units, by=99, reason=None)
            granted += units
        used = balance(path, 7)
        assert used == expected_used - granted
        assert expected_used <= 6 + granted  # never past the limit (grants raise it)
        status = await quotas.status(member)
        daily = status.windows[0]
        assert daily.remaining is not None and daily.remaining >= 0
    await db.close()


async def test_restart_with_jobs_in_every_state_settles_every_reservation(tmp_path: Path) -> None:
    """Jobs left queued, submitted, running and succeeded by a dead process all end charged or refunded."""
    async with FakeSeaArt(api_key=KEY) as fake, httpx.AsyncClient() as http:
        path = tmp_path / "restart.sqlite3"
        cfg = load_settings(
            None,
            environment=False,
            database={"path": str(path)},
            jobs={"deadline_seconds": 120},
            quotas={"in_flight_per_user": None},
        )
        clock = Clock(ts("2026-11-23 12:00"))
        db, store = await open_db(path)
        quotas = Quotas(db, cfg.quotas, clock=clock)
        member = Member(guild_id=1, user_id=5)
        provider = SeaArtProvider(api_key=KEY, base_url=fake.base_url, client=http, timeout=httpx.Timeout(2.0))

        def runner(sink: FileSink) -> JobRunner:
            return JobRunner(store, {"seaart": provider}, sink, cfg.jobs, cfg.imagine, http=http, clock=clock)

        first = runner(FileSink(tmp_path / "a"))
        fake.hold(True)
        ids = []
        for _ in range(4):
            hook = quotas.reservation(
                member, model="nano_banana_2", provider="seaart", size="1K", units=1, cost_micro_usd=40_000
            )
            request = GenerationRequest(model="nano_banana_2", prompt="r")
            job = await first.create(
                NewJob(provider="seaart", model="nano_banana_2", request=request, guild_id=1, user_id=5), within=hook
            )
            ids.append(job.id)
        # Walk three of them forward: one stays queued, one submitted, one running, one succeeded.
        await first.store.update((await store.get(ids[1])), now=clock(), next_poll_at=clock() + 1000)  # type: ignore[arg-type]
        await first.run_once()  # submits 0, 2, 3
        job0 = await store.get(ids[0])
        assert job0 is not None
        await store.update(job0, now=clock(), next_poll_at=clock() + 1000)
        clock.now += 5
        await first.run_once()  # polls 2 and 3: IN_QUEUE
        clock.now += 5
        await first.run_once()  # polls 2 and 3 -> running
        job3 = await store.get(ids[3])
        fake.release(job3.provider_job_id if job3 else None)
        states = {}
        for job_id in ids:
            current = await store.get(job_id)
            assert current is not None
            states[job_id] = current.state
        assert {JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING} <= set(states.values())
        del first  # the process dies

        fake.hold(False)
        second = runner(FileSink(tmp_path / "b"))
        await quotas.settle_orphans()
        for _ in range(100):
            clock.now += 15  # past the postponed polls and, for some, the deadline
            await second.run_once()
            jobs = [await store.get(i) for i in ids]
            if all(j is not None and j.terminal for j in jobs):
                break
        await db.close()
    with sqlite3.connect(path) as conn:
        reserves = conn.execute("SELECT COUNT(*) FROM ledger WHERE kind='reserve'").fetchone()[0]
        settled = conn.execute("SELECT COUNT(*) FROM ledger WHERE kind IN ('commit','refund')").fetchone()[0]
        hanging = conn.execute("SELECT COUNT(*) FROM jobs WHERE charge_state='reserved'").fetchone()[0]
        delivered = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE state='delivered' AND charge_state='committed'"
        ).fetchone()[0]
        refunded = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE state!='delivered' AND charge_state='refunded'"
        ).fetchone()[0]
        submitted = conn.execute("SELECT COUNT(*) FROM jobs WHERE provider_job_id IS NOT NULL").fetchone()[0]
    assert (reserves, settled, hanging) == (4, 4, 0)
    # Every job ended; whatever the end, its reservation was settled exactly once, the right way.
    assert delivered + refunded == 4 and delivered >= 2
    assert len(fake.creates) == submitted  # nothing was sent twice across the restart


async def test_two_connections_cannot_overspend_together(tmp_path: Path) -> None:
    """Two bot processes on one database file (two connections): BEGIN IMMEDIATE serialises the checks."""
    path = tmp_path / "shared.sqlite3"
    clock = Clock(ts("2026-11-23 12:00"))
    limits = QuotaSettings(daily=5, in_flight_per_user=None, in_flight_per_guild=None)
    opened = [await open_db(path), await open_db(path)]
    member = Member(guild_id=3, user_id=9)

    async def attempt(index: int) -> bool:
        db, store = opened[index % 2]
        quotas = Quotas(db, limits, clock=clock)
        hook = quotas.reservation(
            member, model="nano_banana_2", provider="seaart", size="1K", units=1, cost_micro_usd=1
        )
        request = GenerationRequest(model="nano_banana_2", prompt="race")
        try:
            await store.create(
                NewJob(provider="seaart", model="nano_banana_2", request=request, guild_id=3, user_id=9),
                now=clock(),
                deadline_seconds=60,
                within=hook,
            )
        except QuotaExceededError:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(200)))
    for db, _ in opened:
        await db.close()
    assert sum(results) == 5
    assert balance(path, 9) == 5
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 5


async def asked(quotas: Quotas, store: JobStore, clock: Clock, user: int, *, units: int, count: int) -> str | None:
    """``count`` images of ``units`` each asked for by ``user`` of server 1: None if reserved, else the
    refusal the member reads."""
    member = Member(guild_id=1, user_id=user)
    hook = quotas.reservation(
        member, model="nano_banana_2", provider="seaart", size="1K", units=units, cost_micro_usd=1
    )
    request = GenerationRequest(model="nano_banana_2", prompt="p")
    new = NewJob(provider="seaart", model="nano_banana_2", request=request, guild_id=1, user_id=user)
    try:
        await store.create_batch([new] * count, now=clock(), deadline_seconds=60, within=hook)
    except QuotaExceededError as exc:
        return exc.user_message
    return None


async def test_a_batch_is_one_request_to_its_member_and_each_image_counts_for_the_server(tmp_path: Path) -> None:
    path = tmp_path / "flight.sqlite3"
    db, store = await open_db(path)
    clock = Clock(ts("2026-11-23 12:00"))
    quotas = Quotas(
        db, QuotaSettings(daily=None, in_flight_per_user=1, in_flight_per_guild=5, waiting_per_user=0), clock=clock
    )

    async def ask(user: int, count: int) -> str | None:
        return await asked(quotas, store, clock, user, units=1, count=count)

    assert await ask(7, 4) is None  # four images, one request: within the member's one at a time
    assert "You already have 1 request(s) generating (limit 1)" in (await ask(7, 1) or "")
    refusal = await ask(8, 2) or ""  # the server has 4 of its 5 images generating
    assert "has 4 image(s) generating and allows 5 at once, so one fits: ask for one image" in refusal
    assert await ask(8, 1) is None
    status = await quotas.status(Member(guild_id=1, user_id=7))
    assert (status.in_flight, status.in_flight_limit) == (1, 1)
    await db.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT batch_id) FROM jobs").fetchone() == (5, 1)
        assert conn.execute("SELECT COUNT(*) FROM ledger WHERE kind = 'reserve'").fetchone()[0] == 5


async def test_a_grant_to_one_member_is_not_the_server_s_allowance(tmp_path: Path) -> None:
    """Grants are negative ledger rows; summed into the server's month, a grant to one member raised the
    server's cap for everyone. And a member refused after a grant read that they had used -10 units."""
    path = tmp_path / "grants.sqlite3"
    db, store = await open_db(path)
    clock = Clock(ts("2026-11-23 12:00"))
    settings = QuotaSettings(daily=5, guild_monthly_units=4, in_flight_per_user=None, in_flight_per_guild=None)
    quotas = Quotas(db, settings, clock=clock)

    async def ask(user: int, units: int, count: int = 1) -> str | None:
        return await asked(quotas, store, clock, user, units=units, count=count)

    assert await ask(7, 4) is None
    assert "This server has used 4 of its 4 units this month" in (await ask(8, 1) or "")
    await quotas.grant(1, 7, 100, by=99, reason=None)
    assert "This server has used 4 of its 4 units this month" in (await ask(8, 1) or "")
    # The member's own refusal counts the grant as allowance, not as negative use.
    member_settings = QuotaSettings(daily=5, in_flight_per_user=None, in_flight_per_guild=None)
    quotas = Quotas(db, member_settings, clock=clock)
    await quotas.grant(1, 9, 10, by=99, reason=None)
    refusal = await ask(9, 4, count=4) or ""
    assert "you have used 0 of your 5 daily units and 10 granted, so at most 3 fit" in refusal, refusal
    await db.close()


async def test_a_reset_forgets_usage_but_keeps_the_units_granted(tmp_path: Path) -> None:
    """/quota reset promises that usage so far no longer counts. Cut at the reset, the windows dropped the
    grants before it too: granted 10 on a daily 2, then reset, the member had 2 units left, not 12."""
    db, store = await open_db(tmp_path / "reset.sqlite3")
    clock = Clock(ts("2026-11-23 12:00"))
    quotas = Quotas(db, QuotaSettings(daily=2, in_flight_per_user=None, in_flight_per_guild=None), clock=clock)
    member = Member(guild_id=1, user_id=7)
    assert await asked(quotas, store, clock, 7, units=1, count=2) is None
    await quotas.grant(1, 7, 10, by=99, reason=None)
    clock.now += 60
    await quotas.reset(1, 7, by=99)
    clock.now += 60
    today = (await quotas.status(member)).windows[0]
    assert (today.used, today.granted, today.remaining) == (0, 10, 12)
    # The daily limit and the grant, all of it: 12 units, and not one more.
    assert await asked(quotas, store, clock, 7, units=4, count=3) is None
    refusal = await asked(quotas, store, clock, 7, units=1, count=1) or ""
    assert "you have used 12 of your 2 daily units and 10 granted" in refusal, refusal
    await db.close()


async def test_past_the_limit_at_once_a_request_waits_its_turn_up_to_the_waiting_allowed(tmp_path: Path) -> None:
    """At one request generating of one allowed, the next two are taken waiting (bot/waiting_requests.py), a
    batch as one; the third is refused, saying both counts. A request taken while others wait waits too, even
    with room (none jumps the line), and each one's turn counts those generating and those taken before it."""
    db, store = await open_db(tmp_path / "turns.sqlite3")
    clock = Clock(ts("2026-11-23 12:00"))
    settings = QuotaSettings(daily=None, in_flight_per_user=1, in_flight_per_guild=None, waiting_per_user=2)
    quotas = Quotas(db, settings, clock=clock)

    async def ask(count: int = 1) -> str | None:
        clock.now += 1  # each taken a second after the last: their turns go by it
        return await asked(quotas, store, clock, 7, units=1, count=count)

    assert await ask() is None and await ask(2) is None and await ask() is None
    refusal = await ask() or ""
    assert refusal.startswith("You already have 1 request(s) generating (limit 1) and 2 waiting to start"), refusal
    rows = query(db.path, "SELECT id, waits_for, created_at FROM jobs ORDER BY created_at, id")
    assert [waits for _, waits, _ in rows] == [None, 1, 1, 1]
    status = await quotas.status(Member(guild_id=1, user_id=7))
    assert (status.in_flight, status.in_flight_limit, status.waiting) == (1, 1, 2)
    jobs = {job_id: await store.get(job_id) for job_id, _, _ in rows}
    turns = [astuple(await store.turn_of(job)) for job in jobs.values() if job is not None]
    # The first generates; the batch has only it before it; the last has the batch before it too. The server has
    # one image generating, none waiting for its room alone; the batch has two waiting, the last one.
    assert turns == [(0, 0, 1, 0, 0), (1, 0, 1, 0, 2), (1, 0, 1, 0, 2), (1, 1, 1, 0, 1)]
    await db.close()


async def test_a_request_the_server_has_no_room_for_waits_while_its_member_may_have_one_waiting(tmp_path: Path) -> None:
    """Waiting requests are not the server's images generating: another member's request is taken while a queue
    waits. One the server has no room for waits (``waits_for`` 0: for the server alone) while its member may
    have one more waiting; past that, or larger than the server's limit, it is refused as before."""
    db, store = await open_db(tmp_path / "server.sqlite3")
    clock = Clock(ts("2026-11-23 12:00"))
    settings = QuotaSettings(daily=None, in_flight_per_user=1, in_flight_per_guild=2, waiting_per_user=1)
    quotas = Quotas(db, settings, clock=clock)

    async def ask(user: int, count: int = 1) -> str | None:
        clock.now += 1
        return await asked(quotas, store, clock, user, units=1, count=count)

    assert await ask(7) is None and await ask(7) is None  # one generating, one waiting its member's turn
    assert await ask(8) is None  # the server's second image: the waiting one is not counted
    assert await ask(9) is None  # no room in the server: it waits for it
    refusal = await ask(9) or ""
    assert refusal.startswith("You already have 0 request(s) generating (limit 1) and 1 waiting to start"), refusal
    too_big = await ask(10, 3) or ""
    assert too_big.startswith(
        "This server allows 2 image(s) generating at once, so 3 cannot start together: at most 2 fit: ask for count:2"
    ), too_big
    rows = query(db.path, "SELECT user_id, waits_for FROM jobs WHERE charge_state = 'reserved' ORDER BY created_at")
    assert rows == [(7, None), (7, 1), (8, None), (9, 0)]
    await db.close()


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql).fetchall())


async def test_a_reservation_reads_its_servers_limits_once(tmp_path: Path) -> None:
    """The check, a batch's room and the server's alerts each want the server's limits; in one reservation's
    transaction they cannot change, so the server's row is read once (before, three times for a batch)."""
    path = tmp_path / "once.sqlite3"
    db, store = await open_db(path)
    clock = Clock(ts("2026-11-23 12:00"))
    quotas = Quotas(db, QuotaSettings(daily=100, guild_monthly_units=50, waiting_per_user=0), clock=clock)
    read: list[str] = []
    await db.conn.set_trace_callback(lambda sql: read.append(sql) if "FROM quota_limits" in sql else None)
    try:
        assert await asked(quotas, store, clock, 7, units=1, count=3) is None
        server_reads = [sql for sql in read if "scope = 'guild'" in sql]
        assert len(server_reads) == 1, server_reads
        # Outside a reservation each read is its own (nothing holds a stale copy).
        assert (await quotas.server_status(1)).limits.monthly_units == 50
        assert (await quotas.server_at_once(1)) == 10
    finally:
        await db.close()
