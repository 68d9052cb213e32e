"""Unfinished jobs by when they fall due: what the job loop reads on every pass (bot/jobs.py).

A pass wants the few oldest due jobs, not every job: with 10,000 jobs waiting after a restart, scanning
and sorting all of them took about 1.5 ms a pass, many times a second. Here jobs not yet due wait in a
heap ordered by due time; a pass moves those whose time has come onto a list kept in due order, and reads
that list from the front only as far as it needs (past the jobs already running, which it skips).

Entries change in place when a job is written (a poll sets its next time); neither the heap nor the list
is searched for the old item. Each entry carries a token, and an item whose token is not its entry's
current one is stale: skipped, and dropped when the heap's top or when the list is tidied.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from bot.models import JobState

# Rebuild the heap when stale items outnumber live ones by this factor (plus a floor, so a small heap
# is never rebuilt on every write).
_STALE_FACTOR = 2
_STALE_FLOOR = 1024
# Tidy the due list when a pass skipped more stale items than this.
_STALE_SKIPPED = 64


@dataclass(frozen=True, slots=True)
class DueJob:
    """What the loop needs to choose among due jobs, without reading whole rows."""

    id: str
    state: JobState
    provider: str
    schedule_kind: str | None
    next_poll_at: float | None
    clock_started_at: float | None
    last_poll_at: float | None


@dataclass(frozen=True, slots=True)
class Agenda:
    """What the loop reads per pass: the due jobs, and when the next one falls due (None: nothing)."""

    due: list[DueJob]
    next_at: float | None


def due_order(entry: DueJob) -> float:
    # Oldest due first; a job with no time set (none is written so today) goes first, as NULL sorts in SQL.
    return entry.next_poll_at if entry.next_poll_at is not None else float("-inf")


# A heap item: (due time, rank, token, job id). The rank (the order jobs were first added) breaks ties,
# so jobs due at the same moment come in the order they were created.
_Item = tuple[float, int, int, str]


def _due_time(item: _Item) -> float:
    return item[0]


class DueIndex:
    """Every unfinished job's DueJob, ordered by when it falls due."""

    def __init__(self, entries: Iterable[DueJob] = ()) -> None:
        self._entries: dict[str, tuple[DueJob, int, int]] = {}  # id -> (entry, rank, token)
        self._later: list[_Item] = []  # a heap: jobs not due at the last pass
        self._ready: list[_Item] = []  # sorted: jobs due at the last pass (or written as due since)
        self._now = float("-inf")  # the last pass's time: what is in _later is due after it
        self._counter = itertools.count()
        for entry in entries:
            self.put(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._entries

    def put(self, entry: DueJob) -> None:
        """Add a job or replace what is known of it."""
        key = due_order(entry)
        known = self._entries.get(entry.id)
        if known is not None and due_order(known[0]) == key:
            self._entries[entry.id] = (entry, known[1], known[2])  # the same place in the order
            return
        rank = known[1] if known is not None else next(self._counter)
        token = next(self._counter)
        self._entries[entry.id] = (entry, rank, token)
        item = (key, rank, token, entry.id)
        if key <= self._now:
            bisect.insort(self._ready, item)
        else:
            heapq.heappush(self._later, item)
            if len(self._later) > _STALE_FACTOR * len(self._entries) + _STALE_FLOOR:
                self._rebuild()

    def remove(self, job_id: str) -> None:
        self._entries.pop(job_id, None)

    def due(self, now: float, *, exclude: Collection[str], limit: int) -> Agenda:
        """Up to ``limit`` jobs due at ``now`` and not in ``exclude``, oldest due first, and when the next
        one falls due: ``now`` if more are due than were returned."""
        self._move_due(now)
        due: list[DueJob] = []
        more = False
        stale = 0
        for item in self._ready:
            if item[0] > now:
                break  # a clock set back (tests): the rest is not due yet
            entry = self._live(item)
            if entry is None:
                stale += 1
                continue
            if entry.id in exclude:
                continue
            if len(due) == limit:
                more = True
                break
            due.append(entry)
        if stale > _STALE_SKIPPED or len(self._ready) > _STALE_FACTOR * len(self._entries) + _STALE_FLOOR:
            self._ready = [item for item in self._ready if self._live(item) is not None]
        return Agenda(due, now if more else self._next_at(now))

    def _move_due(self, now: float) -> None:
        """Move what has fallen due from the heap to the end of the list. The list stays sorted: items come
        off the heap in order, and everything on the heap is due after ``_now`` (``put`` sends the rest to
        the list, and ``_now`` never goes back), so after everything on the list."""
        later, ready = self._later, self._ready
        while later and later[0][0] <= now:
            item = heapq.heappop(later)
            if self._live(item) is not None:
                ready.append(item)
        self._now = max(self._now, now)

    def _live(self, item: _Item) -> DueJob | None:
        known = self._entries.get(item[3])
        return known[0] if known is not None and known[2] == item[2] else None

    def _next_at(self, now: float) -> float | None:
        """The earliest due time after ``now``: on the list only if the clock went back, else the heap's top
        once stale items are off it."""
        ready = self._ready
        for item in ready[bisect.bisect_right(ready, now, key=_due_time) :]:
            if self._live(item) is not None:
                return item[0]
        later = self._later
        while later and self._live(later[0]) is None:
            heapq.heappop(later)
        return later[0][0] if later else None

    def _rebuild(self) -> None:
        self._later = [
            (key, rank, token, job_id)
            for job_id, (entry, rank, token) in self._entries.items()
            if (key := due_order(entry)) > self._now
        ]
        heapq.heapify(self._later)
