"""The per-provider request budget and the loop's choice of due jobs.

Ceilings are checked on the times requests were granted, in real time (the budget schedules its own
wake-ups on the event loop); 429 pauses and the choice among due jobs use a clock the test moves.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.budget import MAX_RETRY_AFTER_SECONDS, WINDOW_SECONDS, BudgetHook, RequestBudget, origin_of
from bot.dispatch import CALL_LANE, DELIVERY_LANE, PROVIDER_LANE, choose, full_shelves
from bot.models import JobState
from bot.schedule import CompletionTimes, PollSchedule, ScheduleSettings, job_kind
from bot.store.agenda import DueJob
from tests.conftest import Clock


def most_in_any_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times))


async def test_never_more_than_the_rate_in_any_second() -> None:
    budget = RequestBudget(40)
    granted: list[float] = []

    async def one(write: bool) -> None:
        await budget.acquire(write=write)
        granted.append(time.monotonic())

    await asyncio.gather(*(one(i % 10 == 0) for i in range(130)))
    assert len(granted) == 130 == budget.sent_total
    assert most_in_any_window(granted, 1.0) <= 40


async def test_writes_are_served_before_waiting_reads() -> None:
    budget = RequestBudget(5)
    order: list[str] = []

    async def one(name: str, write: bool) -> None:
        await budget.acquire(write=write)
        order.append(name)

    reads = [asyncio.create_task(one(f"poll{i}", False)) for i in range(10)]
    await asyncio.sleep(0)  # the first five polls take the window; five wait
    writes = [asyncio.create_task(one(f"create{i}", True)) for i in range(2)]
    await asyncio.gather(*reads, *writes)
    assert order[:5] == [f"poll{i}" for i in range(5)]
    assert order[5:7] == ["create0", "create1"], "creates jump the queue of waiting polls"


def test_a_429_pauses_the_provider_for_retry_after() -> None:
    clock = Clock(1000.0)
    budget = RequestBudget(10, clock=clock)
    assert budget.room() == 10
    assert budget.pause(7.0) == 7.0
    assert budget.room() == 0 and budget.next_free() == 7.0
    clock.now += 7.0
    assert budget.room() == 1, "one probe first"
    assert budget._take() and budget.room() == 0, "the others wait for the probe's answer"
    budget.recovered()
    assert budget.room() == 9


def test_a_retry_after_of_a_day_pauses_the_provider_a_minute_at_most() -> None:
    clock = Clock(1000.0)
    budget = RequestBudget(10, clock=clock)
    assert budget.pause(86_400.0) == MAX_RETRY_AFTER_SECONDS
    assert budget.pause(float("1e300")) == MAX_RETRY_AFTER_SECONDS
    clock.now += MAX_RETRY_AFTER_SECONDS
    assert budget.room() == 1, "one probe asks again"


def test_repeated_429s_without_retry_after_back_off_exponentially() -> None:
    clock = Clock(1000.0)
    budget = RequestBudget(0, clock=clock)  # no ceiling, but 429s still pause it
    assert [budget.pause(None) for _ in range(3)] == [1.0, 2.0, 4.0]
    budget.recovered()
    clock.now += 10
    assert budget.pause(None) == 1.0


def test_slow_rates_are_one_request_per_period() -> None:
    clock = Clock(1000.0)
    budget = RequestBudget(0.5, clock=clock)
    assert budget.room() == 1 and budget._take()
    assert budget.room() == 0 and budget.next_free() == pytest.approx(WINDOW_SECONDS / 0.5)


async def test_the_hook_meters_requests_by_provider_origin() -> None:
    kie = RequestBudget(1000)
    hook = BudgetHook({origin_of("http://127.0.0.1:8001/api"): kie})
    await hook(httpx.Request("GET", "http://127.0.0.1:8001/api/v1/jobs/recordInfo"))
    await hook(httpx.Request("GET", "http://127.0.0.1:8002/files/x.png"))  # another origin: not Kie's
    assert kie.sent_total == 1


KIND = job_kind("seaart", "nano_banana_2", "1K", 0)


def due(job_id: str, state: JobState, *, provider: str = "seaart", started: float = 0.0, last: float = 0.0) -> DueJob:
    """A due job whose schedule clock started at ``started`` and that was last polled at ``last``."""
    return DueJob(job_id, state, provider, KIND, started, started, started + last)


def schedule() -> PollSchedule:
    times = CompletionTimes()
    for i in range(100):
        times.add(KIND, 15 + 30 * i / 99)
    return PollSchedule(ScheduleSettings(), times)


def test_the_loop_starts_deliveries_then_creates_then_the_likeliest_polls() -> None:
    clock = Clock(1000.0)
    budgets = {"seaart": RequestBudget(3, clock=clock), "kie": RequestBudget(3, clock=clock)}
    now = 100.0
    jobs = [
        # 5 s in, polled at 2 s: no earlier job finished before 15 s, so nothing to gain yet.
        due("early-poll", JobState.RUNNING, started=now - 5, last=2.0),
        # 33 s in, polled at 30 s: in the thick of the window.
        due("window-poll", JobState.RUNNING, started=now - 33, last=30.0),
        due("create", JobState.QUEUED, started=now),
        due("deliver", JobState.SUCCEEDED, started=now - 40),
        due("called-back", JobState.RUNNING, started=now - 20, last=19.0),
        due("other-provider", JobState.RUNNING, provider="kie", started=now - 33, last=30.0),
    ]
    picked = choose(jobs, slots=10, now=now, schedule=schedule(), budgets=budgets, confirmed={"called-back"})
    # seaart has room for three requests: the create, the confirming poll, then the likeliest poll.
    assert picked.start == ["deliver", "create", "called-back", "window-poll", "other-provider"]
    assert set(picked.waiting) == {"seaart"}


def test_when_the_budget_binds_the_job_likeliest_done_goes_first() -> None:
    clock = Clock(1000.0)
    budgets = {"seaart": RequestBudget(1, clock=clock)}
    now = 100.0
    jobs = [
        due("early-poll", JobState.RUNNING, started=now - 5, last=2.0),
        due("window-poll", JobState.RUNNING, started=now - 33, last=30.0),
    ]
    picked = choose(jobs, slots=10, now=now, schedule=schedule(), budgets=budgets)
    assert picked.start == ["window-poll"]


def test_slots_bound_what_starts() -> None:
    jobs = [due(f"deliver{i}", JobState.SUCCEEDED) for i in range(5)]
    assert len(choose(jobs, slots=2, now=0.0, schedule=schedule(), budgets={}).start) == 2


def test_each_provider_has_each_lane_to_itself() -> None:
    """SeaArt's two provider-lane slots are taken (its polls hang): its due polls wait, Kie's start, and a
    Gemini create goes in the call lane, a SeaArt delivery in the delivery lane, each with room of its own."""
    bounds = {PROVIDER_LANE: 2, CALL_LANE: 1, DELIVERY_LANE: 1}
    busy = {(PROVIDER_LANE, "seaart"): 2, (CALL_LANE, "gemini"): 0}
    jobs = [
        due("seaart-poll", JobState.RUNNING, started=70.0, last=20.0),
        due("kie-poll", JobState.RUNNING, provider="kie", started=70.0, last=20.0),
        due("kie-create", JobState.QUEUED, provider="kie"),
        due("kie-create-2", JobState.QUEUED, provider="kie"),
        due("gemini-call", JobState.QUEUED, provider="gemini"),
        due("gemini-call-2", JobState.QUEUED, provider="gemini"),
        due("seaart-delivery", JobState.SUCCEEDED),
    ]
    picked = choose(jobs, slots=bounds, busy=busy, now=100.0, schedule=schedule(), budgets={}, calls={"gemini"})
    assert picked.start == ["seaart-delivery", "kie-create", "kie-create-2", "gemini-call"]
    assert full_shelves([(PROVIDER_LANE, "seaart")], ["seaart", "gemini"], {"gemini"}) == {
        ("seaart", state) for state in (JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING)
    }
    assert full_shelves([(CALL_LANE, "gemini")], ["seaart", "gemini"], {"gemini"}) == {("gemini", JobState.QUEUED)}


async def test_any_answer_but_a_429_ends_the_pause_after_the_probe() -> None:
    clock = Clock(1000.0)
    budget = RequestBudget(10, clock=clock)
    hook = BudgetHook({origin_of("http://127.0.0.1:8001"): budget})
    request = httpx.Request("GET", "http://127.0.0.1:8001/status")
    await hook.on_response(httpx.Response(429, headers={"Retry-After": "1"}, request=request))
    clock.now += 1.0
    assert budget._take() and budget.room() == 0, "the probe is out; the rest wait"
    await hook.on_response(httpx.Response(500, request=request))  # the server's trouble, not a rate limit
    assert budget.room() == 9


def test_creates_leaving_a_paused_provider_start_without_its_room_and_others_still_wait() -> None:
    clock = Clock(1000.0)
    budgets = {"seaart": RequestBudget(10, clock=clock)}
    budgets["seaart"].pause(30.0)
    assert budgets["seaart"].paused_for() == 30.0
    jobs = [
        due("leaving", JobState.QUEUED),
        due("staying", JobState.QUEUED),
        due("polled", JobState.RUNNING, started=70.0, last=20.0),
    ]
    picked = choose(jobs, slots=10, now=100.0, schedule=schedule(), budgets=budgets, leaving={"leaving"})
    assert picked.start == ["leaving"]
    assert set(picked.waiting) == {"seaart"}
    clock.now += 31.0
    assert budgets["seaart"].paused_for() == 0.0


def ranked_reference(
    jobs: list[DueJob],
    bounds: dict[str, int],
    busy: dict[tuple[str, str], int],
    budgets: dict[str, RequestBudget],
    now: float,
    sched: PollSchedule,
) -> tuple[list[str], set[str]]:
    """The choice as the loop first made it: every due job ranked, polls by how likely they are to have
    finished, then taken in that order while its lane and its provider's budget have room; and the
    providers whose budget turned a job away."""
    from bot.dispatch import _done_chance, lane_of

    def rank(job: DueJob) -> tuple[int, float]:
        if job.state is JobState.SUCCEEDED:
            return (0, 0.0)
        if job.state is JobState.QUEUED:
            return (1, job.next_poll_at or 0.0)
        return (3, -_done_chance(job, now, sched))

    used, room, start, waiting = dict(busy), {name: b.room() for name, b in budgets.items()}, [], set()
    for job in sorted(jobs, key=rank):
        lane = lane_of(job.state, job.provider)
        if used.get(lane, 0) >= bounds[lane[0]]:
            continue
        if job.state is not JobState.SUCCEEDED:
            if room[job.provider] <= 0:
                waiting.add(job.provider)
                continue
            room[job.provider] -= 1
        used[lane] = used.get(lane, 0) + 1
        start.append(job.id)
    return start, waiting


@settings(max_examples=300, deadline=None)
@given(
    specs=st.lists(
        st.tuples(
            st.sampled_from([JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING, JobState.SUCCEEDED]),
            st.sampled_from(["seaart", "kie"]),
            st.floats(0, 80),
            st.floats(0, 1),
        ),
        max_size=30,
    ),
    provider_slots=st.integers(1, 12),
    delivery_slots=st.integers(1, 4),
    rate=st.integers(1, 15),
    seaart_busy=st.integers(0, 6),
)
def test_polls_are_ranked_only_when_some_cannot_start_and_the_same_jobs_start_either_way(
    specs: list[tuple[JobState, str, float, float]],
    provider_slots: int,
    delivery_slots: int,
    rate: int,
    seaart_busy: int,
) -> None:
    """Whatever is due, whatever room the lanes and budgets have: the loop starts exactly the jobs it would
    start by ranking every poll first, and says which providers made others wait."""
    now, sched = 100.0, schedule()
    jobs = [
        due(f"j{i}", state, provider=provider, started=now - age, last=age * share)
        for i, (state, provider, age, share) in enumerate(specs)
    ]
    bounds = {PROVIDER_LANE: provider_slots, CALL_LANE: 1, DELIVERY_LANE: delivery_slots}
    busy = {(PROVIDER_LANE, "seaart"): min(seaart_busy, provider_slots)}
    clock = Clock(1000.0)
    budgets = {name: RequestBudget(rate, clock=clock) for name in ("seaart", "kie")}
    picked = choose(jobs, slots=bounds, busy=busy, now=now, schedule=sched, budgets=budgets)
    start, waiting = ranked_reference(jobs, bounds, busy, budgets, now, sched)
    assert sorted(picked.start) == sorted(start)
    assert set(picked.waiting) == waiting
