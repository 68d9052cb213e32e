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
# Entries are heaped by provider and state: the loop can leave out the ones whose lane is full (bot/dispatch.py).
Shelf = tuple[str, JobState]


def shelf_of(entry: DueJob) -> Shelf:
    return (entry.provider, entry.state)


class AgendaIndex:
    """The current ``DueJob`` of every unfinished job, by id, and heaps of them by next poll time, one per
    provider and state (a shelf).

    One heap per shelf, not one for all: when a provider's requests hang, its steps fill its lanes and its
    jobs fall due faster than they can start. In one heap those overdue jobs came first in every pass and
    filled the pass's window (``limit``), so the due jobs of other providers were never looked at. A pass
    now names the shelves whose lane is full (``skip``) and takes the due entries of the others."""

    def __init__(self, entries: Iterable[DueJob] = ()) -> None:
        self._entries: dict[str, DueJob] = {}
        self._heaps: dict[Shelf, list[_Slot]] = {}
        self._slots = 0  # in the heaps and aside, leftovers included
        # Due entries of jobs whose step is running, out of the heaps until it is not (see agenda()).
        self._aside: dict[str, _Slot] = {}
        self._counter = itertools.count()
        for entry in entries:
            self.put(entry)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def slots(self) -> int:
        """Entries held in the heaps (and set aside), leftovers of replaced entries included."""
        return self._slots

    def values(self) -> ValuesView[DueJob]:
        return self._entries.values()

    def put(self, entry: DueJob) -> None:
        """Add a job, or replace its entry (its old slot in its heap becomes a leftover)."""
        if self._entries.get(entry.id) is entry:
            return  # already in: a second slot would list it twice
        self._entries[entry.id] = entry
        heap = self._heaps.get(shelf := shelf_of(entry))
        if heap is None:
            heap = self._heaps[shelf] = []
        heapq.heappush(heap, (due_order(entry), next(self._counter), entry))
        self._slots += 1
        if self._slots > 2 * len(self._entries) + 64:
            self._rebuild()

    def discard(self, job_id: str) -> None:
        self._entries.pop(job_id, None)

    def agenda(self, now: float, *, exclude: Collection[str], limit: int, skip: Collection[Shelf] = ()) -> Agenda:
        """Up to ``limit`` due entries not in ``exclude`` nor on a shelf in ``skip``, oldest due first, and
        when the next of those falls due (``now`` when more are due than the limit). Costs the due entries
        and leftovers, not every job."""
        heaps, aside = self._heaps, self._aside
        if aside:
            # Jobs whose step has ended go back in (a slot the step replaced is dropped as any leftover).
            for job_id in [job_id for job_id in aside if job_id not in exclude]:
                back = aside.pop(job_id)
                heapq.heappush(heaps.setdefault(shelf_of(back[2]), []), back)
        # The head of every shelf looked at, in a heap of its own: (time, insertion number, shelf).
        heads: list[tuple[float, int, Shelf]] = []
        for shelf, heap in heaps.items():
            if shelf not in skip and (head := self._head(heap, now, exclude)) is not None:
                heads.append((head[0], head[1], shelf))
        heapq.heapify(heads)
        taken: list[_Slot] = []
        due: list[DueJob] = []
        next_at: float | None = None
        while heads:
            at, _, shelf = heads[0]
            if at > now:
                next_at = at
                break
            if len(due) == limit:
                next_at = now  # more due than the limit: the next one is due now
                break
            heap = heaps[shelf]
            slot = heapq.heappop(heap)
            due.append(slot[2])
            taken.append(slot)
            following = self._head(heap, now, exclude)
            if following is None:
                heapq.heappop(heads)
            else:
                heapq.heapreplace(heads, (following[0], following[1], shelf))
        for slot in taken:
            heapq.heappush(heaps[shelf_of(slot[2])], slot)
        return Agenda(due, next_at)

    def _head(self, heap: list[_Slot], now: float, exclude: Collection[str]) -> _Slot | None:
        """The first live slot of ``heap``, leftovers dropped and due jobs whose step runs set aside on the
        way (one due later stays: it still says when the loop must next look)."""
        entries = self._entries
        while heap:
            slot = heap[0]
            entry = slot[2]
            if entries.get(entry.id) is not entry:
                heapq.heappop(heap)  # a leftover: the job was updated or has finished
                self._slots -= 1
            elif entry.id in exclude and slot[0] <= now:
                self._aside[entry.id] = heapq.heappop(heap)
            else:
                return slot
        return None

    def _rebuild(self) -> None:
        self._aside.clear()  # every live entry is in the new heaps
        self._heaps = {}
        for entry in self._entries.values():
            self._heaps.setdefault(shelf_of(entry), []).append((due_order(entry), next(self._counter), entry))
        for heap in self._heaps.values():
            heapq.heapify(heap)
        self._slots = len(self._entries)
