"""A pass-through HTTP proxy in front of a fake provider, to make a provider misbehave on cue
(hold a create, answer 429 for a while) without teaching every fake every fault."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

# Looks at a request before it is forwarded: a Response answers it instead; None forwards it.
Intercept = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


async def forward_all(request: web.Request) -> web.StreamResponse | None:
    return None


class FaultProxy:
    """Forwards everything to ``upstream`` (an origin) unless ``intercept`` answers first."""

    def __init__(self, upstream: str, intercept: Intercept = forward_all) -> None:
        self.upstream = upstream
        self.intercept = intercept
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request, answered or forwarded
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path))
        body = await request.read()
        answer = await self.intercept(request)
        if answer is not None:
            return answer
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        assert self._session is not None
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            content_type = upstream.headers.get("Content-Type", "application/json")
            return web.Response(status=upstream.status, body=payload, headers={"Content-Type": content_type})

    async def __aenter__(self) -> FaultProxy:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
