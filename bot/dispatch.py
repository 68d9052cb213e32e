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
from bot.store.agenda import DueJob, Shelf

_NEEDS_PROVIDER = frozenset({JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING})


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What to start now (and in which lane each goes), and for each provider out of budget, when (on the
    loop's clock) it has room."""

    start: list[str]
    waiting: dict[str, float]
    lanes: dict[str, Lane]


PROVIDER_LANE = "provider"  # creates and polls
# Creates on an API that answers with the image itself (Gemini, Segmind v1): each waits for the whole
# drawing, ten seconds to minutes, so in the provider lane a few of them kept every other job's create
# and polls waiting (tests/e2e/test_lanes.py).
CALL_LANE = "call"
DELIVERY_LANE = "delivery"  # downloads, re-encodes, uploads
LANES = (PROVIDER_LANE, CALL_LANE, DELIVERY_LANE)
# Every provider has each lane to itself: when one provider's requests hang (or its result host drips),
# its steps fill its own lanes, and other providers' jobs go on (tests/e2e/test_lanes.py).
Lane = tuple[str, str]  # (one of LANES, provider)


def lane_of(state: JobState, provider: str, calls: Collection[str] = ()) -> Lane:
    """The lane of a step for a job in ``state`` at ``provider``; ``calls`` names the providers whose create
    waits for the image itself."""
    if state is JobState.SUCCEEDED:
        return (DELIVERY_LANE, provider)
    if state is JobState.QUEUED and provider in calls:
        return (CALL_LANE, provider)
    return (PROVIDER_LANE, provider)


def full_shelves(full: Collection[Lane], providers: Collection[str], calls: Collection[str] = ()) -> set[Shelf]:
    """The agenda's shelves (provider, state: bot/store/agenda.py) whose steps go in a lane in ``full``:
    the loop need not look at their due jobs, none of which could start."""
    if not full:
        return set()
    return {
        (provider, state) for provider in providers for state in _STEPPED if lane_of(state, provider, calls) in full
    }


_STEPPED = tuple(state for state in JobState if not state.terminal)  # the states a job's steps run in


def choose(
    due: list[DueJob],
    *,
    slots: int | Mapping[str, int],
    now: float,
    schedule: PollSchedule,
    budgets: Mapping[str, RequestBudget],
    busy: Mapping[Lane, int] | None = None,
    confirmed: Collection[str] = (),
    leaving: Collection[str] = (),
    calls: Collection[str] = (),
) -> Dispatch:
    """Pick what to start from ``due``: given a number, up to that many in all; given a bound per lane
    (by name), up to it in each provider's lane of that name, less its steps running (``busy``); and
    creates and polls only as far as their provider's budget has room. Jobs in ``leaving`` (creates that
    will move to another provider, bot/jobs.py) need no room at the provider they leave; creates at
    providers in ``calls`` go in the call lane (``lane_of``)."""
    bounds = slots if isinstance(slots, Mapping) else None
    total = slots if isinstance(slots, int) else len(due)
    used: dict[Lane, int] = dict(busy or {})
    start: list[str] = []
    lanes: dict[str, Lane] = {}
    waiting: dict[str, float] = {}
    room: dict[str, int] = {}

    def take(jobs: list[DueJob], *, all_or_stop: bool = False) -> bool:
        """Start each of ``jobs`` that has room; ``all_or_stop``: stop at the first that has none. False
        if one was passed over."""
        for job in jobs:
            if len(start) >= total:
                return False
            lane = lane_of(job.state, job.provider, calls)
            if bounds is not None and used.get(lane, 0) >= bounds.get(lane[0], 0):
                if all_or_stop:
                    return False
                continue
            budget = budgets.get(job.provider) if job.state in _NEEDS_PROVIDER and job.id not in leaving else None
            if budget is not None:
                left = room.setdefault(job.provider, budget.room())
                if left <= 0:
                    waiting.setdefault(job.provider, now + max(budget.next_free(), 0.01))
                    if all_or_stop:
                        return False
                    continue
                room[job.provider] = left - 1
            used[lane] = used.get(lane, 0) + 1
            start.append(job.id)
            lanes[job.id] = lane
        return True

    # Deliveries, then creates (oldest first), then polls a callback says are finished, then the rest.
    head: tuple[list[DueJob], list[DueJob], list[DueJob]] = ([], [], [])
    polls: list[DueJob] = []
    for job in due:
        if job.state is JobState.SUCCEEDED:
            head[0].append(job)
        elif job.state is JobState.QUEUED:
            head[1].append(job)
        elif job.id in confirmed:
            head[2].append(job)
        else:
            polls.append(job)
    head[1].sort(key=lambda job: job.next_poll_at or 0.0)
    for jobs in head:
        take(jobs)
    # Which polls are likeliest to have finished matters only when some of them cannot start: ranking them
    # asks the schedule about each one (most of a loop pass's own CPU with hundreds due). So they are taken
    # as they come, and only if one finds no room is that undone and they are taken again, ranked.
    before = (len(start), dict(used), dict(room), dict(waiting))
    if not take(polls, all_or_stop=True):
        for job_id in start[before[0] :]:
            del lanes[job_id]
        del start[before[0] :]
        used, room, waiting = before[1], before[2], before[3]
        polls.sort(key=lambda job: -_done_chance(job, now, schedule))
        take(polls)
    return Dispatch(start, waiting, lanes)


def _done_chance(job: DueJob, now: float, schedule: PollSchedule) -> float:
    if job.schedule_kind is None or job.clock_started_at is None:
        return 0.0
    last = job.last_poll_at if job.last_poll_at is not None else job.clock_started_at
    return schedule.done_chance(
        job.schedule_kind,
        last_elapsed=max(0.0, last - job.clock_started_at),
        now_elapsed=max(0.0, now - job.clock_started_at),
    )
