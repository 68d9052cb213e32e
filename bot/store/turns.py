"""The database's one lock, with a line of its own for requests a member is waiting on.

The bot has one SQLite connection and one lock around it (bot/store/__init__.py): a transaction holds it
from BEGIN to COMMIT, one event-loop turn per statement. Under load (bench/load.py: 1,000 commands over
10 s) the job loop's own writes (a create sent, a state, a delivery) stand in that line too, and the loop's
turns are long, so a command's one write waited 0.5 s at the median and 0.94 s at p95 for the lock: nearly
all of its time to answer, which Discord cuts at 3 s. The gateway, the checks and the answer itself took
a few milliseconds together.

So a task marked ``MEMBER_WAITING`` (a command, a click or a form being answered: cogs/slow_answers.py
marks each) goes ahead of the others. Not for ever: after ``IN_A_ROW`` turns in a row went to that line
while others waited, one of the others goes, so a storm of commands slows the jobs already running
rather than stopping them. Within each line, first come first served; the lock is handed straight to the
next waiter when let go, so no task can slip in between.
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextvars import ContextVar
from types import TracebackType

# Set in the task answering a member's request (cogs/slow_answers.py ``watch``); tasks it starts inherit it.
MEMBER_WAITING: ContextVar[bool] = ContextVar("member_waiting", default=False)

IN_A_ROW = 4


class TwoLineLock:
    """An asyncio lock (``async with``) whose waiters marked MEMBER_WAITING go first (see the module)."""

    def __init__(self, *, in_a_row: int = IN_A_ROW) -> None:
        self._held = False
        self._first: deque[asyncio.Future[None]] = deque()
        self._second: deque[asyncio.Future[None]] = deque()
        self._in_a_row = in_a_row
        self._run = 0  # turns given to the first line in a row while the second waited

    def locked(self) -> bool:
        return self._held

    async def __aenter__(self) -> None:
        await self.acquire(first=MEMBER_WAITING.get())

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def acquire(self, *, first: bool = False) -> None:
        if not self._held and not self._first and not self._second:
            self._held = True
            return
        turn = asyncio.get_running_loop().create_future()
        line = self._first if first else self._second
        line.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed over just as the waiter was cancelled: hand it on
            elif turn in line:  # (a release meanwhile may have dropped it from the line already)
                line.remove(turn)
            raise

    def release(self) -> None:
        if not self._held:
            raise RuntimeError("release of a lock not held")
        turn = self._next()
        if turn is None:
            self._held = False
        else:
            turn.set_result(None)  # still held: now by that waiter

    def _next(self) -> asyncio.Future[None] | None:
        for line in (self._first, self._second):
            while line and line[0].done():  # cancelled while waiting, not yet taken out
                line.popleft()
        if self._first and (not self._second or self._run < self._in_a_row):
            self._run = self._run + 1 if self._second else 0
            return self._first.popleft()
        self._run = 0
        return self._second.popleft() if self._second else None
