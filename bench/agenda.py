"""What one pass of the job loop pays to find the due jobs: the heap (bot/store/agenda.py) against a scan
of every unfinished job (how the agenda was read before), side by side on the same entries.

Each case holds N unfinished jobs with next poll times spread over a minute, of which K are due but have a
step running (the loop excludes them) and the rest fall due later: the common pass, between two finished
steps. Printed: microseconds per pass for each, and that both answered the same.

Run from the project root with the venv active: `python bench/agenda.py` (a few seconds).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Mapping

from bot.models import JobState
from bot.store.agenda import Agenda, AgendaIndex, DueJob, due_order


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=2000, help="passes timed per case (2000)")
    args = parser.parse_args()
    rng = random.Random(1)
    print(f"{'jobs':>7} {'in flight':>9} {'scan us/pass':>13} {'heap us/pass':>13}  same answer")
    for jobs, in_flight in ((1_000, 20), (1_000, 100), (10_000, 100), (10_000, 1_000)):
        scan_us, heap_us, same = case(jobs, in_flight, args.passes, rng)
        print(f"{jobs:>7} {in_flight:>9} {scan_us:>13.1f} {heap_us:>13.1f}  {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
