"""The loop's agenda: every unfinished job's next poll time, kept in a heap so a pass costs the due jobs.

The job loop reads the agenda on every pass, and a pass follows finished steps. Scanning every unfinished job
each time grew with the jobs in flight: with 10,000 of them it was 8.5% of the bot's CPU in a profile
(bench/load.py --resume 10000, then the jobs left in flight), the heap 2.6%. The heap orders entries by next
poll time; an entry replaced by a newer one for the same job stays in the heap until it reaches the top and is
then dropped (checked by identity with the current entry), and the heap is rebuilt when such leftovers
outnumber the live entries. A due job whose step is running (``exclude``) is set aside until it is not: the
loop may pass many times during one step, and taking a hundred such entries out of the heap and putting them
back at every pass cost more than the scan did at 1,000 jobs in flight.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Collection, Iterable, ValuesView
from dataclasses import dataclass

from bot.models import JobState


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


# (next poll time, insertion number: ties in arrival order and never compares entries, the entry)
_Slot = tuple[float, int, DueJob]


class AgendaIndex:
    """The current ``DueJob`` of every unfinished job, by id, and a heap of them by next poll time."""

    def __init__(self, entries: Iterable[DueJob] = ()) -> None:
        self._entries: dict[str, DueJob] = {}
        self._heap: list[_Slot] = []
        # Due entries of jobs whose step is running, out of the heap until it is not (see agenda()).
        self._aside: dict[str, _Slot] = {}
        self._counter = itertools.count()
        for entry in entries:
            self.put(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> ValuesView[DueJob]:
        return self._entries.values()

    def put(self, entry: DueJob) -> None:
        """Add a job, or replace its entry (its old slot in the heap becomes a leftover)."""
        if self._entries.get(entry.id) is entry:
            return  # already in: a second slot would list it twice
        self._entries[entry.id] = entry
        heapq.heappush(self._heap, (due_order(entry), next(self._counter), entry))
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._rebuild()

    def discard(self, job_id: str) -> None:
        self._entries.pop(job_id, None)

    def agenda(self, now: float, *, exclude: Collection[str], limit: int) -> Agenda:
        """Up to ``limit`` due entries not in ``exclude``, oldest due first, and when the next falls due
        (``now`` when more are due than the limit). Costs the due entries and leftovers, not every job."""
        heap, entries, aside = self._heap, self._entries, self._aside
        if aside:
            # Jobs whose step has ended go back in (a slot the step replaced is dropped as any leftover).
            for job_id in [job_id for job_id in aside if job_id not in exclude]:
                heapq.heappush(heap, aside.pop(job_id))
        taken: list[_Slot] = []
        due: list[DueJob] = []
        next_at: float | None = None
        while heap:
            at, _, entry = heap[0]
            if entries.get(entry.id) is not entry:
                heapq.heappop(heap)  # a leftover: the job was updated or has finished
                continue
            if at > now:
                next_at = at
                break
            if entry.id in exclude:
                aside[entry.id] = heapq.heappop(heap)
                continue
            if len(due) == limit:
                next_at = now  # more due than the limit: the next one is due now
                break
            due.append(entry)
            taken.append(heapq.heappop(heap))
        for slot in taken:
            heapq.heappush(heap, slot)
        return Agenda(due, next_at)

    def _rebuild(self) -> None:
        self._aside.clear()  # every live entry is in the new heap
        self._heap = [(due_order(entry), next(self._counter), entry) for entry in self._entries.values()]
        heapq.heapify(self._heap)
