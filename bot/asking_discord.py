"""Which tasks are waiting on Discord's REST API for something they need before they can answer.

A button or command whose answer is a promise (a Re-roll's is its new job's message) may first have to ask
Discord for something: fresh links for a day-old image (``POST /attachments/refresh-urls``), the messages a
member linked as references. Discord answers those in milliseconds as a rule, but a 502 that discord.py
retries after 1 s and then 3 s, or a rate limit, outlasts the 3 s Discord gives the interaction, and the
member read "This interaction failed" with nothing said. The request is then called off and the member told
so in time (cogs/slow_answers.py); this module marks the wait, so the watcher knows that is what it sees.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

_ASKING: weakref.WeakSet[asyncio.Task[object]] = weakref.WeakSet()


@contextmanager
def asking_discord() -> Iterator[None]:
    """Mark the running task as waiting on Discord for the length of the block (nested blocks are one)."""
    task = asyncio.current_task()
    if task is None or task in _ASKING:
        yield
        return
    _ASKING.add(task)
    try:
        yield
    finally:
        _ASKING.discard(task)


def is_asking_discord(task: asyncio.Task[object]) -> bool:
    return task in _ASKING
