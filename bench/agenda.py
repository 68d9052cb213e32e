"""What one pass of the job loop pays to find the due jobs: the heap (bot/store/agenda.py) against a scan
of every unfinished job (how the agenda was read before), side by side on the same entries.

Each case holds N unfinished jobs with next poll times spread over a minute, of which K are due but have a
step running (the loop excludes them) and the rest fall due later: the common pass, between two finished
steps. Printed: microseconds per pass for each, and that both answered the same.

Then what the loop does with the due jobs it found (bot/dispatch.py ``choose``): D due polls of jobs 20-60 s
into a schedule learned on 15-45 s jobs, once with lanes and budget room for all of them (the common pass)
and once with room for a quarter (the busy one): microseconds per ``choose``, and for scale the ranking of
every poll by how likely it is to have finished alone (which ``choose`` did on every pass before ca3ec13,
and now only when some poll finds no room), and whether ``choose`` started the top-ranked jobs.
On 2026-12-03, against 5bae863's ``choose`` timed apart: 43 against 116 us (16 due, all fit), 542 against
1,755 (256), and 1,680 against 1,661 us with room for 64 of 256.

Run from the project root with the venv active: `python bench/agenda.py` (a few seconds).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Mapping

from bot.budget import RequestBudget
from bot.dispatch import PROVIDER_LANE, _done_chance, choose
from bot.models import JobState
from bot.schedule import CompletionTimes, PollSchedule, ScheduleSettings, job_kind
from bot.store.agenda import Agenda, AgendaIndex, DueJob, due_order

KIND = job_kind("seaart", "nano_banana_2", "1K", 0)


def scan(entries: Mapping[str, DueJob], now: float, exclude: set[str], limit: int) -> Agenda:
    """The agenda as JobStore computed it before the heap: every entry looked at, the due ones sorted."""
    due: list[DueJob] = []
    next_at: float | None = None
    for entry in entries.values():
        at = entry.next_poll_at
        if at is None or at <= now:
            if entry.id not in exclude:
                due.append(entry)
        elif next_at is None or at < next_at:
            next_at = at
    due.sort(key=due_order)
    return Agenda(due[:limit], now if len(due) > limit else next_at)


def case(jobs: int, in_flight: int, passes: int, rng: random.Random) -> tuple[float, float, bool]:
    now = 30.0
    entries: dict[str, DueJob] = {}
    for i in range(jobs):
        at = now - rng.uniform(0, 5) if i < in_flight else now + rng.uniform(0.1, 30)
        entries[f"j{i}"] = DueJob(f"j{i}", JobState.RUNNING, "seaart", None, at, None, None)
    exclude = {f"j{i}" for i in range(in_flight)}
    index = AgendaIndex(entries.values())
    started = time.perf_counter()
    for _ in range(passes):
        scanned = scan(entries, now, exclude, 256)
    scan_us = (time.perf_counter() - started) / passes * 1e6
    started = time.perf_counter()
    for _ in range(passes):
        heaped = index.agenda(now, exclude=exclude, limit=256)
    heap_us = (time.perf_counter() - started) / passes * 1e6
    return scan_us, heap_us, scanned == heaped


def ranked_first(due: list[DueJob], slots: int, now: float, schedule: PollSchedule) -> list[str]:
    """The ``slots`` polls likeliest to have finished: every one ranked (the ranking alone)."""
    order = sorted(due, key=lambda job: -_done_chance(job, now, schedule))
    return [job.id for job in order[:slots]]


def choice(due_count: int, room: int, passes: int, rng: random.Random) -> tuple[float, float, bool]:
    times = CompletionTimes()
    for i in range(200):
        times.add(KIND, 15 + 30 * i / 199)
    schedule = PollSchedule(ScheduleSettings(), times)
    now = 100.0
    due = []
    for i in range(due_count):
        started = now - rng.uniform(20, 60)
        due.append(DueJob(f"j{i}", JobState.RUNNING, "seaart", KIND, now, started, now - rng.uniform(1, 3)))
    bounds = {PROVIDER_LANE: room}
    budgets: dict[str, RequestBudget] = {}
    started_at = time.perf_counter()
    for _ in range(passes):
        picked = choose(due, slots=bounds, now=now, schedule=schedule, budgets=budgets)
    choose_us = (time.perf_counter() - started_at) / passes * 1e6
    started_at = time.perf_counter()
    for _ in range(passes):
        before = ranked_first(due, room, now, schedule)
    ranked_us = (time.perf_counter() - started_at) / passes * 1e6
    return choose_us, ranked_us, sorted(picked.start) == sorted(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=2000, help="passes timed per case (2000)")
    args = parser.parse_args()
    rng = random.Random(1)
    print(f"{'jobs':>7} {'in flight':>9} {'scan us/pass':>13} {'heap us/pass':>13}  same answer")
    for jobs, in_flight in ((1_000, 20), (1_000, 100), (10_000, 100), (10_000, 1_000)):
        scan_us, heap_us, same = case(jobs, in_flight, args.passes, rng)
        print(f"{jobs:>7} {in_flight:>9} {scan_us:>13.1f} {heap_us:>13.1f}  {'yes' if same else 'NO'}")
    print()
    print(f"{'due polls':>9} {'room':>5} {'choose us':>10} {'ranking alone us':>17}  the top-ranked started")
    for due_count in (16, 64, 256):
        for room in (due_count, due_count // 4):
            choose_us, ranked_us, same = choice(due_count, room, max(args.passes // 10, 20), rng)
            print(f"{due_count:>9} {room:>5} {choose_us:>10.1f} {ranked_us:>17.1f}  {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
