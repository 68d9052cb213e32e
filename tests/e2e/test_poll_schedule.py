"""The poll schedule and the request budget through the real bot, fake Discord and a timed fake SeaArt.

Times are short (jobs take 1.5-2 s) so the tests run in seconds; the figures that matter for members
(notice delay, polls per job at 15-45 s jobs) come from bench/poll_schedule.py, not from here.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import SEAART_KEY, make_settings, png_bytes, start_bot
from tests.e2e.proxy import FaultProxy

FAST_SCHEDULE = {
    "poll_interval_seconds": 0.3,
    "max_poll_interval_seconds": 1.0,
    "dense_poll_seconds": 0.1,
    "schedule_min_samples": 5,
}


def rows(settings: Settings, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute(sql, params).fetchall()


def delivered(settings: Settings) -> int:
    return int(rows(settings, "SELECT COUNT(*) FROM jobs WHERE state = 'delivered'")[0][0])


def status_times(seaart: FakeSeaArt, request_id: str) -> list[float]:
    return [r.at for r in seaart.requests if r.path.endswith(f"/requests/{request_id}/status")]


async def run_jobs(discord_fake: FakeDiscord, settings: Settings, count: int, *, total: int) -> None:
    for i in range(count):
        await discord_fake.slash_command("imagine", {"prompt": f"job {i}"})
    await discord_fake.wait_for(lambda: delivered(settings) == total, timeout=60)


async def test_the_learned_times_survive_a_restart(tmp_path: Path, discord_fake: FakeDiscord) -> None:
    rng = random.Random(5)
    # Jobs of 2.5-3 s: the learned window opens well past the early poll plus the 1 s ceiling, so the
    # wait after that poll is the full second even when a loaded machine sends the poll late.
    async with FakeSeaArt(api_key=SEAART_KEY, provider_time=lambda: rng.uniform(2.5, 3.0)) as seaart:
        settings = make_settings(tmp_path, discord_fake, seaart, jobs=FAST_SCHEDULE, quotas={"enabled": False})
        first = await start_bot(settings, discord_fake)
        try:
            await run_jobs(discord_fake, settings, 6, total=6)
        finally:
            await first.close()
        learned = rows(settings, "SELECT kind, earliest, latest FROM completion_times")
        assert len(learned) == 6 and {kind for kind, _, _ in learned} == {"seaart/nano_banana_2/1K/0"}
        # Each completion is bracketed by the polls around it: running at `earliest`, done by `latest`.
        for _, earliest, latest in learned:
            assert earliest < latest and earliest <= 3.0 and 2.5 <= latest <= 5.0, learned
        opens = min(earliest for _, earliest, _ in learned)

        second = await start_bot(settings, discord_fake)
        try:
            await run_jobs(discord_fake, settings, 1, total=7)
            # A kind never seen (one reference image) borrows the window of its siblings (no reference).
            reference = discord_fake.add_attachment(png_bytes(), "ref.png", "image/png")
            await discord_fake.slash_command("imagine", {"prompt": "with a reference", "image1": reference})
            await discord_fake.wait_for(lambda: delivered(settings) == 8, timeout=60)
        finally:
            await second.close()
    plain, edit = sorted(seaart.jobs.values(), key=lambda job: job.created_at)[-2:]
    assert len(edit.body.get("image_urls", [])) == 1, edit.body
    for job in (plain, edit):
        polls = [round(t - job.created_at, 2) for t in status_times(seaart, job.request_id)]
        # Learned after the restart: one early poll (0.3 s), then nothing until the window opens (where
        # the earliest stored job may have finished, 1.7 s or later), or for at most the ceiling (1 s).
        # Without the stored times, or for the edit without its siblings', it would be the backoff:
        # 0.3 s, then 0.15-0.3 s later, ... A loaded machine can make the first poll late, which shortens
        # the way to the window; hence the wait is judged from where the first poll really was.
        wait = min(opens - polls[0], FAST_SCHEDULE["max_poll_interval_seconds"])
        assert len(polls) >= 2 and polls[1] - polls[0] >= wait - 0.1, (opens, polls)
    assert rows(settings, "SELECT kind FROM completion_times ORDER BY id DESC LIMIT 1") == [
        ("seaart/nano_banana_2/1K/1",)
    ]


def usually_takes(interaction: FakeInteraction) -> str | None:
    """The "Usually takes" the member saw in the job's first message (the command's answer)."""
    embed = interaction.callbacks[0]["data"]["embeds"][0]
    return next((f["value"] for f in embed.get("fields", []) if f["name"] == "Usually takes"), None)


async def test_a_job_of_a_learned_kind_says_how_long_it_usually_takes(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    rng = random.Random(8)
    async with FakeSeaArt(api_key=SEAART_KEY, provider_time=lambda: rng.uniform(1.5, 2.0)) as seaart:
        settings = make_settings(tmp_path, discord_fake, seaart, jobs=FAST_SCHEDULE, quotas={"enabled": False})
        running = await start_bot(settings, discord_fake)
        try:
            first = await discord_fake.slash_command("imagine", {"prompt": "the first of its kind"})
            await discord_fake.wait_for(lambda: delivered(settings) == 1, timeout=30)
            await run_jobs(discord_fake, settings, 4, total=5)
            learned = await discord_fake.slash_command("imagine", {"prompt": "the sixth"})
            batch = await discord_fake.slash_command("imagine", {"prompt": "two more", "count": 2})
            await discord_fake.wait_for(lambda: delivered(settings) == 8, timeout=30)
        finally:
            await running.close()
    assert usually_takes(first) is None  # nothing learned yet: no guess shown
    # Five jobs of 1.5-2 s, each known to within a poll (0.1 s dense, up to 1 s before): about 2 s.
    assert usually_takes(learned) in {"about 2 s", "1-2 s", "2-3 s"}, usually_takes(learned)
    assert usually_takes(batch) == usually_takes(learned)  # a batch's message says it too


async def test_jobs_in_flight_are_planned_again_once_their_kind_is_learned(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """Five jobs of 3 s teach the kind; a sixth, sent 1.3 s later and planned blind (the backoff, its
    next poll 1.5 s away), is planned again by the window at that moment instead of waiting it out."""
    times = iter([3.0] * 5 + [8.0])
    async with FakeSeaArt(api_key=SEAART_KEY, provider_time=lambda: next(times)) as seaart:
        jobs = {**FAST_SCHEDULE, "max_poll_interval_seconds": 4.0}
        settings = make_settings(tmp_path, discord_fake, seaart, jobs=jobs, quotas={"enabled": False})
        running = await start_bot(settings, discord_fake)
        try:
            for i in range(5):
                await discord_fake.slash_command("imagine", {"prompt": f"teacher {i}"})
            # The provider times go out in the order the creates arrive: the five teachers' first, on a
            # loaded machine too, before the 1.3 s that the sixth comes after.
            await discord_fake.wait_for(lambda: len(seaart.creates) == 5, timeout=10)
            await asyncio.sleep(1.3)
            await discord_fake.slash_command("imagine", {"prompt": "in flight"})
            await discord_fake.wait_for(lambda: delivered(settings) == 6, timeout=60)
        finally:
            await running.close()
    by_age = sorted(seaart.jobs.values(), key=lambda job: job.created_at)
    teachers, late = by_age[:5], by_age[5]
    # The moment the kind was learned: the poll that found the fifth teacher done.
    learned_at = max(status_times(seaart, job.request_id)[-1] for job in teachers)
    polls = status_times(seaart, late.request_id)
    before = [t for t in polls if t <= learned_at]
    after = [t for t in polls if t > learned_at]
    # Planned blind, its next poll was ~1.3 s after that moment (0.3 s x1.5 per poll); planned again,
    # it is polled within the window's dense pace.
    assert before and after[0] - learned_at <= 0.8, [round(t - late.created_at, 2) for t in polls]


async def test_a_burst_of_a_new_kind_is_seen_finishing_as_it_finishes(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """Sixty jobs of a kind nobody has run, sent at once, taking 4.5-7.5 s; the backoff's ceiling is 3 s here
    (15 s by default). At one pace every job would be asked about 4.3 s and 6.5 s after its start and not
    between, so the first to finish would be seen ~2 s late, the kind learned that late, and every job
    that finished meanwhile found at once. Each at its own pace (bot/schedule.py backoff_pace), the
    first to finish are seen within about a second, and the rest are polled by the window they teach."""
    rng = random.Random(9)
    async with FakeSeaArt(api_key=SEAART_KEY, provider_time=lambda: rng.uniform(4.5, 7.5)) as seaart:
        jobs = {**FAST_SCHEDULE, "max_poll_interval_seconds": 3.0, "concurrency": 64}
        # No request budget: at 20 requests/s (the default) sixty jobs could not be polled at this scale.
        providers = {"seaart": {"base_url": seaart.base_url, "request_timeout": 2.0, "requests_per_second": 0}}
        settings = make_settings(
            tmp_path, discord_fake, seaart, jobs=jobs, providers=providers, quotas={"enabled": False}
        )
        running = await start_bot(settings, discord_fake)
        try:
            await asyncio.gather(*(discord_fake.slash_command("imagine", {"prompt": f"burst {i}"}) for i in range(60)))
            await discord_fake.wait_for(lambda: delivered(settings) == 60, timeout=90)
        finally:
            await running.close()
    ready, seen = [], []
    for job in seaart.jobs.values():
        assert job.ready_at is not None
        ready.append(job.ready_at)
        # The first status request that could see the image: at or after the moment it existed. On a loaded
        # machine a request that arrived a moment before can be answered after it, and saw it (fresh-ci
        # found a job with no request after its ready_at): then that last one before.
        times = status_times(seaart, job.request_id)
        after = [t for t in times if t >= job.ready_at]
        seen.append(min(after) if after else max(times))
    unseen = sorted(s - r for s, r in zip(seen, ready, strict=True))
    figures = f"fifth seen {sorted(seen)[4] - sorted(ready)[4]:.2f} s after the fifth finished; unseen " + " ".join(
        f"{t:.2f}" for t in unseen
    )
    # At one pace: ~1.9 s and a p95 of 2.2-2.6 s (measured on the code before backoff_pace); each at its
    # own: 0.5-1.0 s and 0.5-1.4 s.
    assert sorted(seen)[4] - sorted(ready)[4] <= 1.4, figures
    # 1.93 s was seen once in a whole-suite run on a busy machine (1.9 failed it); 2.1 still fails the old pace.
    assert unseen[int(0.95 * (len(unseen) - 1))] <= 2.1, figures


# The provider budget in the test below: low enough that 24 jobs at once have to wait for it.
RPS = 14


async def test_the_provider_budget_is_never_exceeded(tmp_path: Path, discord_fake: FakeDiscord) -> None:
    rng = random.Random(6)
    async with FakeSeaArt(api_key=SEAART_KEY, provider_time=lambda: rng.uniform(1.0, 2.0)) as seaart:
        settings = make_settings(
            tmp_path,
            discord_fake,
            seaart,
            jobs={**FAST_SCHEDULE, "concurrency": 32},
            providers={"seaart": {"base_url": seaart.base_url, "request_timeout": 5.0, "requests_per_second": RPS}},
            quotas={"enabled": False},
        )
        running = await start_bot(settings, discord_fake)
        try:
            await asyncio.gather(*(discord_fake.slash_command("imagine", {"prompt": f"burst {i}"}) for i in range(24)))
            await discord_fake.wait_for(lambda: delivered(settings) == 24, timeout=90)
        finally:
            await running.close()
    # Every request the fake saw, creates, polls, result fetches and downloads (same origin), per second.
    start = min(r.at for r in seaart.requests)
    per_second = Counter(int(r.at - start) for r in seaart.requests)
    assert max(per_second.values()) <= RPS, per_second
    assert max(per_second.values()) >= RPS // 2, per_second  # not vacuous: the burst pressed on the budget
    assert len(seaart.creates) == 24


async def test_a_429_storm_makes_every_job_back_off(tmp_path: Path, discord_fake: FakeDiscord) -> None:
    storm = {"on": True}

    async def rate_limit_polls(request: web.Request) -> web.StreamResponse | None:
        if storm["on"] and request.method == "GET" and request.path.endswith("/status"):
            body = {"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}}
            return web.json_response(body, status=429, headers={"Retry-After": "1"})
        return None

    rng = random.Random(7)
    async with (
        FakeSeaArt(api_key=SEAART_KEY, provider_time=lambda: rng.uniform(0.5, 1.0)) as seaart,
        FaultProxy(seaart.origin, rate_limit_polls) as proxy,
    ):
        settings = make_settings(
            tmp_path,
            discord_fake,
            seaart,
            jobs={**FAST_SCHEDULE, "concurrency": 16},
            providers={"seaart": {"base_url": f"{proxy.origin}/model", "request_timeout": 5.0}},
            quotas={"enabled": False},
        )
        running = await start_bot(settings, discord_fake)
        try:
            for i in range(10):
                await discord_fake.slash_command("imagine", {"prompt": f"storm {i}"})
            await asyncio.sleep(4.0)  # four seconds of 429s with Retry-After: 1
            storm["on"] = False
            during = sum(1 for method, path in proxy.seen if method == "GET" and path.endswith("/status"))
            await discord_fake.wait_for(lambda: delivered(settings) == 10, timeout=60)
        finally:
            await running.close()
    # Ten jobs each waiting out their own Retry-After would still send ten requests a second (40 in
    # the storm); paused as one, with one probe per Retry-After, the provider sees about one a second.
    assert during <= 10, during
    assert len(seaart.creates) == 10
