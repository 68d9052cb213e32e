"""The JobRunner on a real SQLite file against the fake SeaArt over sockets, driven with run_once()."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import discord
import httpx
import pytest

from bot.cli_sink import FileSink
from bot.config import Settings, load_settings
from bot.delivery import DiscordSink
from bot.images import PreparedImage
from bot.jobs import JobRunner
from bot.models import GenerationRequest, JobState
from bot.providers.seaart import SeaArtProvider
from bot.quotas import Member, Quotas
from bot.schedule import backoff_pace
from bot.store import Database
from bot.store.jobs import Job, JobStore, NewJob
from bot.testing.providers import FakeSeaArt, make_png
from tests.conftest import Clock

KEY = "runner-test-key"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient]]:
    async with FakeSeaArt(api_key=KEY) as fake, httpx.AsyncClient() as http:
        settings = load_settings(
            None,
            environment=False,
            seaart_api_key=KEY,
            database={"path": str(tmp_path / "jobs.sqlite3")},
            providers={"seaart": {"base_url": fake.base_url}},
            jobs={"deadline_seconds": 60, "poll_interval_seconds": 2, "max_poll_interval_seconds": 10},
        )
        db = Database(settings.database.path)
        await db.connect()
        yield fake, settings, db, http
        await db.close()


def make_runner(
    fake: FakeSeaArt, settings: Settings, db: Database, http: httpx.AsyncClient, sink: object, clock: Clock
) -> JobRunner:
    provider = SeaArtProvider(api_key=KEY, base_url=fake.base_url, client=http, timeout=httpx.Timeout(2.0))
    return JobRunner(
        JobStore(db),
        {"seaart": provider},
        sink,
        settings.jobs,
        settings.imagine,
        http=http,
        clock=clock,  # type: ignore[arg-type]
    )


def new(prompt: str = "a banana") -> NewJob:
    return NewJob(
        provider="seaart",
        model="nano_banana_2",
        request=GenerationRequest(model="nano_banana_2", prompt=prompt),
    )


async def drive(runner: JobRunner, clock: Clock, job_id: str, *, step: float = 2.0, limit: int = 50) -> Job:
    """Advance fake time and run due work until the job is terminal."""
    for _ in range(limit):
        await runner.run_once()
        job = await runner.store.get(job_id)
        assert job is not None
        if job.terminal:
            return job
        clock.now += step
    raise AssertionError("job did not finish")


async def test_full_path_and_backoff(
    env: tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient], tmp_path: Path
) -> None:
    fake, settings, db, http = env
    clock = Clock(1_000_000.0)
    sink = FileSink(tmp_path / "out")
    runner = make_runner(fake, settings, db, http, sink, clock)
    fake.hold(True)
    job = await runner.create(new())
    await runner.run_once()
    job = await runner.store.get(job.id)  # type: ignore[assignment]
    assert job.state is JobState.SUBMITTED and job.provider_job_id in fake.jobs
    # The first wait is poll_interval_seconds at the job's own pace (bot/schedule.py backoff_pace).
    assert job.next_poll_at == pytest.approx(clock.now + 2 * backoff_pace(job.id))
    gaps = []
    for _ in range(5):
        clock.now = job.next_poll_at or clock.now
        before = clock.now
        await runner.run_once()
        job = await runner.store.get(job.id)  # type: ignore[assignment]
        gaps.append((job.next_poll_at or 0) - before)
    assert job.state is JobState.RUNNING
    assert gaps == sorted(gaps) and gaps[-1] <= 10 and gaps[0] < gaps[-1]  # grows, capped
    assert gaps == pytest.approx([backoff_pace(job.id) * min(2 * 1.5**n, 10) for n in range(5)])
    fake.release()
    job = await drive(runner, clock, job.id)
    assert job.state is JobState.DELIVERED
    (path,) = sink.files[job.id]
    assert path.exists() and path.stat().st_size > 0
    assert len(fake.creates) == 1


async def test_deadline_expires_and_cancels_at_provider(
    env: tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient], tmp_path: Path
) -> None:
    fake, settings, db, http = env
    clock = Clock(1_000_000.0)
    runner = make_runner(fake, settings, db, http, FileSink(tmp_path), clock)
    fake.script("never_finish")
    job = await runner.create(new())
    await runner.run_once()
    clock.now += 61
    await runner.run_once()
    job = await runner.store.get(job.id)  # type: ignore[assignment]
    assert job.state is JobState.EXPIRED and "did not finish within 1 minute" in (job.error_message or "")
    assert [r.method for r in fake.requests if r.path.endswith("/cancel")] == ["PUT"]


async def test_a_new_runner_resumes_a_submitted_job(
    env: tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient], tmp_path: Path
) -> None:
    fake, settings, db, http = env
    clock = Clock(1_000_000.0)
    first = make_runner(fake, settings, db, http, FileSink(tmp_path), clock)
    fake.hold(True)
    job = await first.create(new())
    await first.run_once()
    del first  # "crash": nothing shut down
    fake.release()
    sink = FileSink(tmp_path / "second")
    second = make_runner(fake, settings, db, http, sink, clock)
    job = await drive(second, clock, job.id)
    assert job.state is JobState.DELIVERED and sink.files[job.id]
    assert len(fake.creates) == 1


class FlakySink(FileSink):
    """A sink whose first delivery blows up with an unexpected error (a bug or a library surprise)."""

    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self.calls = 0

    async def deliver(self, job: Job, images: list[PreparedImage]) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("unexpected")
        await super().deliver(job, images)


async def test_an_unexpected_error_is_counted_and_the_job_still_finishes(
    env: tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient], tmp_path: Path
) -> None:
    fake, settings, db, http = env
    clock = Clock(1_000_000.0)
    sink = FlakySink(tmp_path)
    runner = make_runner(fake, settings, db, http, sink, clock)
    job = await runner.create(new())
    job = await drive(runner, clock, job.id, step=10)
    assert job.state is JobState.DELIVERED and sink.calls == 2
    assert runner.errors == 1


async def test_background_loop_wakes_on_create(
    env: tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient], tmp_path: Path
) -> None:
    fake, settings, db, http = env
    fast = settings.model_copy(
        update={
            "jobs": settings.jobs.model_copy(update={"poll_interval_seconds": 0.05, "max_poll_interval_seconds": 0.1})
        }
    )
    runner = make_runner(fake, fast, db, http, FileSink(tmp_path), Clock(1_000_000.0))
    runner.clock = time.time  # the real loop sleeps in real time
    await runner.start()
    try:
        job = await runner.create(new())
        done = await asyncio.wait_for(runner.wait_terminal(job.id), 10)
        assert done.state is JobState.DELIVERED
    finally:
        await runner.stop()


async def test_missing_provider_fails_the_job_cleanly(
    env: tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient], tmp_path: Path
) -> None:
    fake, settings, db, http = env
    clock = Clock(1_000_000.0)
    runner = make_runner(fake, settings, db, http, FileSink(tmp_path), clock)
    job = await runner.create(NewJob(provider="gone", model="m", request=GenerationRequest(model="m", prompt="p")))
    await runner.run_once()
    job = await runner.store.get(job.id)  # type: ignore[assignment]
    assert job.state is JobState.FAILED and "not configured" in (job.error_message or "")
    assert fake.requests == []


async def test_a_result_stored_before_results_were_typed_is_still_delivered(
    env: tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient], tmp_path: Path
) -> None:
    """An inline image an older version stored (as "data_b64") is delivered after an upgrade."""
    fake, settings, db, http = env
    image = make_png(64, 48)
    old_shape = {
        "images": [{"url": None, "data_b64": base64.b64encode(image).decode(), "content_type": "image/png"}],
        "text": "here it is",
        "usage": {"tokens": 3},
    }
    clock = Clock(1_000_000.0)
    stored = await JobStore(db).create(new(), now=clock.now, deadline_seconds=60)  # by the old version
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE jobs SET state = 'succeeded', result_json = ? WHERE id = ?", (json.dumps(old_shape), stored.id)
        )
    sink = FileSink(tmp_path)
    job = await drive(make_runner(fake, settings, db, http, sink, clock), clock, stored.id)
    assert job.state is JobState.DELIVERED and job.result.text == "here it is"
    (path,) = sink.files[job.id]
    assert path.read_bytes() == image
    assert fake.creates == []


async def test_a_member_s_job_with_no_message_is_never_delivered_into_none_nor_charged(
    env: tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient],
) -> None:
    """A job from Discord whose message the bot never learnt (it died answering, and no restart found the
    message) reached delivery: the sink had nowhere to edit and returned quietly, so the image counted as
    delivered and was charged, shown to nobody. It ends as a silent, uncharged cancel instead."""
    fake, settings, db, http = env
    clock = Clock(1_000_000.0)
    quotas = Quotas(db, settings.quotas, clock=clock)
    sink = DiscordSink(
        cast(discord.Client, None), capabilities=lambda job: None, view_for=lambda job, phase, shape: None
    )
    runner = make_runner(fake, settings, db, http, sink, clock)
    member = Member(guild_id=5, user_id=7)
    reservation = quotas.reservation(
        member, model="nano_banana_2", provider="seaart", size="1K", units=1, cost_micro_usd=1
    )
    request = GenerationRequest(model="nano_banana_2", prompt="shown nowhere")
    job = await runner.create(
        NewJob(provider="seaart", model="nano_banana_2", request=request, guild_id=5, user_id=7), within=reservation
    )
    assert job.source == "discord" and job.message_id is None
    job = await drive(runner, clock, job.id)
    assert (job.state, job.charge_state) == (JobState.CANCELLED, "refunded")
    assert len(fake.creates) == 1
    async with db.read() as conn:
        rows = await conn.execute_fetchall("SELECT kind FROM ledger WHERE job_id = ? ORDER BY id", (job.id,))
    assert [r[0] for r in rows] == ["reserve", "refund"]


async def test_an_end_draw_stopped_before_it_began_leaves_no_unawaited_edit(
    env: tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient], tmp_path: Path
) -> None:
    """A stop that cancels a job's end draw in the tick it was made: the edit never ran, the end is left owed,
    and Python has nothing to report when the edit is collected. Before, "coroutine 'DiscordSink.finished' was
    never awaited" was raised as an unraisable warning, which failed a CI run (tests/e2e/test_failover.py)."""
    fake, settings, db, http = env
    sink = FileSink(tmp_path / "out")
    runner = make_runner(fake, settings, db, http, sink, Clock(1_000_000.0))
    job = await runner.create(new())
    unraisable: list[str] = []
    hook, sys.unraisablehook = sys.unraisablehook, lambda u: unraisable.append(str(u.exc_value))
    try:
        # One tick runs the draw's owner up to its wait: the draw is made and not yet begun when the stop
        # cancels it (the ready queue is first in, first out).
        drawing = asyncio.ensure_future(runner.messages._draw_end(sink.finished(job), job))
        await asyncio.sleep(0)
        runner.messages.stop_drawing_ends()
        assert await drawing is False  # not shown: left owed for the next start
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert unraisable == [] and sink.states == []
    # A draw that runs is shown, as before.
    assert await runner.messages._draw_end(sink.finished(job), job) is True
    assert sink.states == [(job.id, str(job.state))]


async def test_matching_finds_a_member_s_ended_jobs_by_every_word_among_their_latest_only(
    env: tuple[FakeSeaArt, Settings, Database, httpx.AsyncClient],
) -> None:
    """/jobs search: (JobStore.matching) on a real SQLite file: every word, in either case, ended jobs of this
    member in this server, newest first, and only among their latest ``within`` jobs (the read holds the one
    connection)."""
    _, _, db, _ = env
    store = JobStore(db)

    async def made(prompt: str, at: float, *, user: int = 7, guild: int = 5, state: str = "delivered") -> str:
        request = GenerationRequest(model="nano_banana_2", prompt=prompt)
        job = await store.create(
            NewJob(provider="seaart", model="nano_banana_2", request=request, guild_id=guild, user_id=user),
            now=at,
            deadline_seconds=60,
        )
        async with db.transaction() as conn:
            await conn.execute("UPDATE jobs SET state = ? WHERE id = ?", (state, job.id))
        return job.id

    old = await made("An old LIGHTHOUSE at night", 1.0)
    await made("a lighthouse at dawn", 2.0)
    await made("a lighthouse at night", 3.0, user=8)
    await made("a lighthouse at night", 4.0, guild=6)
    await made("a lighthouse at night, still running", 5.0, state="running")
    new = await made("night falls on the lighthouse", 6.0)
    await made("a café", 7.0)

    found = await store.matching(5, 7, ["lighthouse", "Night"], limit=10)
    assert [job.id for job in found] == [new, old]
    assert [job.id for job in await store.matching(5, 7, ["lighthouse", "night"], limit=1)] == [new]
    # Among the member's latest three jobs in this server ("a café", the running one, the newest match).
    assert [job.id for job in await store.matching(5, 7, ["lighthouse"], limit=10, within=3)] == [new]
    await made("ДОМ у моря, ｆｕｌｌ width", 8.0)
    # Any letter in either case, compatibility forms as plain letters; accents stay.
    assert len(await store.matching(5, 7, ["CAFÉ"], limit=10)) == 1
    assert await store.matching(5, 7, ["cafe"], limit=10) == []
    assert len(await store.matching(5, 7, ["дом", "Full"], limit=10)) == 1
    assert await store.matching(5, 7, ["\u200b"], limit=10) == []  # nothing to look for is no match at all
    assert await store.matching(5, 7, ["submarine"], limit=10) == []
