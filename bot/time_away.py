"""Since when the bot has been away from Discord's gateway, and the reading back of what it missed.

Discord replays to a resumed session what it missed, and nothing to a new one (a start, or a resume it refused): the
replies and reactions posted meanwhile are lost unless read back from the channels (cogs/replies.py,
cogs/missed_reactions.py). Each keeps one of these, told of the gateway's disconnects, resumes and new sessions, and
runs its readings through it: one at a time, a session lost during one read right after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any


class TimeAway:
    def __init__(self, since: float | None, name: str) -> None:
        # Wall clock; None: connected. A start's is when the previous run was last alive (None on a first start).
        self.since = since
        self._name = name
        self._reading: asyncio.Task[Any] | None = None  # the latest reading back

    def disconnected(self) -> None:
        if self.since is None:
            self.since = time.time()

    def resumed(self) -> None:
        self.since = None  # Discord replays what the session missed

    def new_session(self) -> float | None:
        """Since when the time away that a new session ends began (None: none was missed); connected from now."""
        since, self.since = self.since, None
        return since

    def read_back(self, reading: Coroutine[Any, Any, object]) -> None:
        """Run ``reading``, in the background, once the reading before it (if still running) is over."""
        before = self._reading if self._reading is not None and not self._reading.done() else None
        self._reading = asyncio.create_task(self._after(before, reading), name=self._name)

    @staticmethod
    async def _after(before: asyncio.Task[Any] | None, reading: Coroutine[Any, Any, object]) -> object:
        try:
            if before is not None:
                with contextlib.suppress(Exception):  # its own end, told by its own log
                    await before
        except BaseException:
            reading.close()  # cancelled before it began: never begun, rather than "never awaited"
            raise
        return await reading

    def latest(self) -> bool:
        """Whether the reading running now is the latest (no session lost since has queued another after it)."""
        return self._reading is not None and self._reading is asyncio.current_task()

    async def stop(self) -> BaseException | None:
        """Cancel the readings and wait for their end (a write one had begun rolled back while the database is still
        open); what the latest raised, if it ended so before. One still running before the latest is cancelled with
        it: the latest is awaiting it."""
        latest = self._reading
        if latest is None:
            return None
        latest.cancel()
        await asyncio.wait({latest})
        return None if latest.cancelled() else latest.exception()
