"""The mark that a job's create may be in flight, between the create's attempts (bot/create_attempts.py),
on a real SQLite file; another program's lock taken from a second connection."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.budget import BudgetHook, RequestBudget, origin_of
from bot.create_attempts import CreateAttempts, create_attempts
from bot.models import GenerationRequest
from bot.providers._http import RetryPolicy, request_with_retry
from bot.store import Database
from bot.store.jobs import Job, JobStore, NewJob
from bot.testing.providers import FakeSeaArt


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[JobStore]:
    db = Database(tmp_path / "jobs.sqlite3", busy_timeout=0.2)
    await db.connect()
    yield JobStore(db)
    await db.close()


async def sending(store: JobStore) -> Job:
    """A queued job whose create is about to leave: its mark written, as bot/job_submit.py writes it."""
    request = GenerationRequest(model="nano_banana_2", prompt="a banana")
    job = await store.create(
        NewJob(provider="seaart", model="nano_banana_2", request=request, user_id=7), now=1.0, deadline_seconds=600
    )
    return await store.update(job, now=2.0, submit_started_at=2.0)


def mark(store: JobStore, job: Job) -> float | None:
    """What another program reads in the job's row."""
    with sqlite3.connect(store.db.path) as conn:
        (value,) = conn.execute("SELECT submit_started_at FROM jobs WHERE id = ?", (job.id,)).fetchone()
    return None if value is None else float(value)


async def test_the_mark_is_cleared_while_the_create_waits_and_written_before_the_next_attempt(
    store: JobStore,
) -> None:
    job = await sending(store)
    attempts = CreateAttempts(store, job, clock=lambda: 5.0)
    await attempts.settled()
    assert mark(store, job) is None
    await attempts.leaving()
    assert mark(store, job) == 5.0


async def test_a_mark_the_database_will_not_clear_stays_and_the_next_attempt_leaves_at_once(
    store: JobStore,
) -> None:
    """Another program holds the lock as the wait begins: the mark stays (a stop then fails the job as
    uncertain, as it always did), and the next attempt does not wait for the database it need not write."""
    job = await sending(store)
    attempts = CreateAttempts(store, job, clock=lambda: 5.0)
    other = sqlite3.connect(store.db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        await attempts.settled()
        await asyncio.wait_for(attempts.leaving(), timeout=0.1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert mark(store, job) == 2.0


async def test_no_attempt_leaves_before_its_mark_is_written_again(store: JobStore) -> None:
    """Cleared during the wait, then another program holds the lock: the next attempt waits until the mark
    is in the row, so a crash can never find a create in flight unmarked."""
    job = await sending(store)
    attempts = CreateAttempts(store, job, clock=lambda: 5.0)
    await attempts.settled()
    other = sqlite3.connect(store.db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    leaving = asyncio.ensure_future(attempts.leaving())
    try:
        await asyncio.sleep(0.6)  # past busy_timeout (0.2 s): refused at least once, still waiting
        assert not leaving.done() and mark(store, job) is None
    finally:
        other.execute("ROLLBACK")
        other.close()
    await asyncio.wait_for(leaving, timeout=10)
    assert mark(store, job) == 5.0


async def test_a_create_held_back_by_the_provider_s_budget_is_marked_only_once_it_leaves(
    store: JobStore, seaart: FakeSeaArt
) -> None:
    """The provider's requests per second are spent: the create waits in the budget's request hook
    (bot/budget.py) before anything leaves. Its row says no create is in flight meanwhile (a crash now
    sends it again at the next start, rather than fail it as uncertain), and says so again by the time
    SeaArt sees the request. Before, the mark written before the create stood through the wait."""
    job = await sending(store)
    budget = RequestBudget(rate=0.5)  # one request every two seconds
    await budget.acquire()  # that one spent by another request
    hook = BudgetHook({origin_of(seaart.base_url): budget})
    async with httpx.AsyncClient(event_hooks={"request": [hook]}) as client:
        with create_attempts(store, job, clock=time.time):
            create = asyncio.ensure_future(
                request_with_retry(
                    client,
                    "POST",
                    f"{seaart.base_url}/v1/queue/held-back",
                    idempotent=False,
                    policy=RetryPolicy(max_attempts=1),
                    map_error=lambda response: None,
                    json={},
                )
            )
            await asyncio.sleep(0.8)
            assert mark(store, job) is None and seaart.creates == []
            while not seaart.creates and not create.done():  # noqa: ASYNC110 - sampling the fake's record
                await asyncio.sleep(0.005)
            on_arrival = mark(store, job)
            await asyncio.wait_for(create, timeout=10)
    assert len(seaart.creates) == 1
    assert on_arrival is not None and on_arrival > 2.0
