"""What every fake server shares: ``async with`` starts it and stops it; and a free port to listen on."""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Self


def free_port() -> int:
    """A TCP port on 127.0.0.1 free a moment ago, for a server started next (a bot's callback endpoint)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class StartsAndStops:
    """``async with fake:`` is ``await fake.start()`` ... ``await fake.stop()``, for the fake Discord and
    every fake provider alike."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
