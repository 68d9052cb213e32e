"""An aiohttp TCP site that keeps at most a number of connections open: for the bot's HTTP endpoints (provider
callbacks, bot/callbacks.py; metrics, bot/metrics.py), which anyone who can reach them can open sockets to by the
hundred. Each socket is a file descriptor the rest of the bot needs too (members' commands failed with "Too many
open files" before the callbacks' endpoint had a bound)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web


class _Closing(asyncio.Protocol):
    """A connection past the limit, while every open one is being answered: closed at once, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class BoundedSite(web.TCPSite):
    """aiohttp's TCP site, keeping at most ``limit`` connections open at once: a new one past the limit closes
    the oldest open connection not being answered (``busy`` says which are), or, with none, is closed itself."""

    def __init__(
        self, runner: web.AppRunner, host: str, port: int, *, limit: int, busy: Callable[[object], bool]
    ) -> None:
        super().__init__(runner, host, port)
        self._limit = limit
        self._busy = busy

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; TCPSite.start would open its own server
        server = self._runner.server
        assert server is not None

        def protocol() -> asyncio.BaseProtocol:
            # Oldest first (aiohttp keeps them in the order they came); one already closed (its transport
            # gone) holds no socket, and is left out.
            live = [handler for handler in server.connections if handler.transport is not None]
            if len(live) >= self._limit:
                idle = next((handler for handler in live if not self._busy(handler)), None)
                if idle is None:
                    return _Closing()
                idle.force_close()
            return server()

        self._server = await asyncio.get_running_loop().create_server(protocol, self._host, self._port)
