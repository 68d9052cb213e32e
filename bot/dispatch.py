"""Which due jobs the loop starts now, when there are more than slots or the provider budget allows.

Order, for each pass of the loop:
1. deliveries (the image exists; no request to the provider's API),
2. creates (a member is waiting for the first answer; polls must never starve them),
3. polls a callback says are finished (the provider told us; one confirming request),
4. the other polls, the likeliest to have finished since their last poll first.

Creates and polls of a provider are started only as far as its budget has room right now (the
requests themselves wait for the budget in an httpx hook, bot/budget.py); a job whose provider has no
room stays due, and the loop is told how long until that provider has room again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from bot.budget import RequestBudget
from bot.models import JobState
from bot.schedule import PollSchedule
from bot.store.agenda import DueJob

_NEEDS_PROVIDER = frozenset({JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING})


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What to start now, and for each provider out of budget, when (on the loop's clock) it has room."""

    start: list[str]
    waiting: dict[str, float]


PROVIDER_LANE = "provider"  # creates and polls
# Creates on an API that answers with the image itself (Gemini, Segmind v1): each waits for the whole
# drawing, ten seconds to minutes, so in the provider lane a few of them kept every other job's create
# and polls waiting (tests/e2e/test_lanes.py).
CALL_LANE = "call"
DELIVERY_LANE = "delivery"  # downloads, re-encodes, uploads


def lane_of(job: DueJob, calls: Collection[str] = ()) -> str:
    """The lane of a due job's step; ``calls`` names the providers whose create is such a call."""
    if job.state is JobState.SUCCEEDED:
        return DELIVERY_LANE
    if job.state is JobState.QUEUED and job.provider in calls:
        return CALL_LANE
    return PROVIDER_LANE


def choose(
    due: list[DueJob],
    *,
    slots: int | Mapping[str, int],
    now: float,
    schedule: PollSchedule,
    budgets: Mapping[str, RequestBudget],
    confirmed: Collection[str] = (),
    leaving: Collection[str] = (),
    calls: Collection[str] = (),
) -> Dispatch:
    """Pick what to start from ``due``: up to ``slots`` per lane (or in all, given one number), and
    creates and polls only as far as their provider's budget has room. Jobs in ``leaving`` (creates
    that will move to another provider, bot/jobs.py) need no room at the provider they leave; creates at
    providers in ``calls`` go in the call lane (``lane_of``)."""
    free = dict(slots) if isinstance(slots, Mapping) else None
    total = slots if isinstance(slots, int) else sum(slots.values())

    def rank(job: DueJob) -> tuple[int, float]:
        if job.state is JobState.SUCCEEDED:
            return (0, 0.0)
        if job.state is JobState.QUEUED:
            return (1, job.next_poll_at or 0.0)  # oldest create first
        if job.id in confirmed:
            return (2, 0.0)
        return (3, -_done_chance(job, now, schedule))

    start: list[str] = []
    waiting: dict[str, float] = {}
    room: dict[str, int] = {}
    for job in sorted(due, key=rank):
        if len(start) >= total:
            break
        lane = lane_of(job, calls)
        if free is not None and free.get(lane, 0) <= 0:
            continue
        if job.state in _NEEDS_PROVIDER and job.id not in leaving:
            budget = budgets.get(job.provider)
            if budget is not None:
                left = room.setdefault(job.provider, budget.room())
                if left <= 0:
                    waiting.setdefault(job.provider, now + max(budget.next_free(), 0.01))
                    continue
                room[job.provider] = left - 1
        if free is not None:
            free[lane] -= 1
        start.append(job.id)
    return Dispatch(start, waiting)


def _done_chance(job: DueJob, now: float, schedule: PollSchedule) -> float:
    if job.schedule_kind is None or job.clock_started_at is None:
        return 0.0
    last = job.last_poll_at if job.last_poll_at is not None else job.clock_started_at
    return schedule.done_chance(
        job.schedule_kind,
        last_elapsed=max(0.0, last - job.clock_started_at),
        now_elapsed=max(0.0, now - job.clock_started_at),
    )
