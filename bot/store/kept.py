"""Small rows every command reads, kept in memory after the first read until this process writes them.

Only the bot process writes them: it holds the database's lock (bot/store/lock.py) and the CLI only
reads, so what is kept is what the file says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Kept(Generic[K, V]):
    """Values by key, read through ``get`` and dropped by ``wrote`` after every write of that key."""

    def __init__(self, limit: int | None = None) -> None:
        self._values: dict[K, V] = {}
        self._writes = 0
        self._limit = limit  # most values kept; past it the first kept goes (None: no limit)

    async def get(self, key: K, read: Callable[[], Awaitable[V]]) -> V:
        if key in self._values:
            return self._values[key]
        seen = self._writes
        value = await read()
        # A write that finished while this read waited may have made it stale: use it, do not keep it.
        if seen == self._writes:
            self._values[key] = value
            if self._limit is not None and len(self._values) > self._limit:
                del self._values[next(iter(self._values))]
        return value

    def peek(self, key: K) -> V | None:
        """The value kept for ``key``, without reading it (None: not kept now)."""
        return self._values.get(key)

    def wrote(self, key: K) -> None:
        """Call after the write has committed."""
        self._writes += 1
        self._values.pop(key, None)
