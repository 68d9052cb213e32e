"""The endpoint providers call when a job ends (kie.ai's ``callBackUrl``), so the member is not kept
waiting for the next poll.

A callback is only a wake-up call: it never changes a job by itself. A valid one makes the runner
poll that job at once, and the poll's answer is what counts, so a forged, replayed or mistaken
callback can at most cause one extra status request, and a lost one costs time (the slow fallback
polling finds the job), never the image.

Kie signs callbacks (its "webhook security verification"): ``X-Webhook-Timestamp`` is Unix seconds,
``X-Webhook-Signature`` is base64(HMAC-SHA256(taskId + "." + timestamp, webhookHmacKey)). Refused
here: no or bad signature (401), a timestamp more than five minutes off (401), a body that names no
task (400), a task this bot is not waiting for (404). A task the bot does not know, while some create's
answer was lost, is accepted and traced to its job (bot/lost_tasks.py): by Kie's own record of it, never by
what the callback says. A replay of a request already seen is answered 200 and ignored. Refusals are
logged as counts by reason, at most once a minute: the endpoint is public, and a flood of requests must
not become a flood of log lines.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import aiohttp.http_exceptions
from aiohttp import web

log = logging.getLogger(__name__)

PATH = "/callbacks/kie"
# Kie's own retries arrive within minutes; older signed requests are replays.
MAX_SKEW_SECONDS = 300
SEEN_LIMIT = 10_000
# What anyone may make the bot hold before a signature can be checked (the signature signs the task id
# inside the body). A Kie task record is a few kilobytes; at 1 MiB, 300 connections sending bodies they
# never finished took the bot from 95 to 417 MB.
MAX_BODY_BYTES = 64 * 1024
# Bodies read at once; a request beyond them is answered 503 before its body is read.
MAX_READING = 32
# The longest a body may take to arrive, and a connection may sit without a complete request (half-sent
# headers too: aiohttp's own default kept those open for an hour, each holding a file descriptor).
BODY_SECONDS = 10.0
IDLE_SECONDS = 15.0
# Connections open at once; one more is closed as it arrives. Each holds a file descriptor, which the rest
# of the bot needs too: 300 half-sent requests left none, and members' commands failed ("Too many open
# files") while asyncio logged each refused accept (a 206 MB log in 90 s).
MAX_CONNECTIONS = 200
# The endpoint is public: anyone can send it requests by the thousand. Refusals are logged the first
# time, then summed up at most this often (and at stop), so a flood cannot fill the log.
REFUSAL_REPORT_SECONDS = 60.0

# (provider, provider job id) -> whether this bot knows that job and woke it, or may (a job whose create's
# answer was lost may have made it: bot/lost_tasks.py).
OnCallback = Callable[[str, str], Awaitable[bool]]


def kie_signature(task_id: str, timestamp: str, key: str) -> str:
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def task_id_of(body: Any) -> str | None:
    """Kie's callback body is the task record: ``data.taskId`` (``task_id`` in some of its examples)."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    for holder in (data, body):
        if isinstance(holder, dict):
            for key in ("taskId", "task_id"):
                value = holder.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
    return None


class _Closing(asyncio.Protocol):
    """A connection past the limit: closed at once, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class _BoundedSite(web.TCPSite):
    """aiohttp's TCP site, taking at most ``limit`` connections at once."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, limit: int) -> None:
        super().__init__(runner, host, port)
        self._limit = limit

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; TCPSite.start would open its own server
        server = self._runner.server
        assert server is not None

        def protocol() -> asyncio.BaseProtocol:
            return _Closing() if len(server.connections) >= self._limit else server()

        self._server = await asyncio.get_running_loop().create_server(protocol, self._host, self._port)


class CallbackServer:
    """Serves ``POST /callbacks/kie`` on the configured address; verifies, then wakes the job."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        hmac_key: str,
        on_callback: OnCallback,
        clock: Callable[[], float] = time.time,
        idle_seconds: float = IDLE_SECONDS,
        body_seconds: float = BODY_SECONDS,
        max_reading: int = MAX_READING,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.host = host
        self.max_connections = max_connections
        self.idle_seconds = idle_seconds
        self.body_seconds = body_seconds
        self.max_reading = max_reading
        self.port = port
        self._key = hmac_key
        self._on_callback = on_callback
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._runner: web.AppRunner | None = None
        self.accepted = 0
        self.refused = 0
        self._unreported: Counter[str] = Counter()
        self._reported_at = -math.inf
        self._reading = 0  # bodies being read now

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(PATH, self._kie)
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=self.idle_seconds)
        await runner.setup()
        try:
            await _BoundedSite(runner, self.host, self.port, limit=self.max_connections).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("listening for provider callbacks on %s:%d%s", self.host, self.port, PATH)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self._report_refusals()

    def _refuse(self, status: int, why: str) -> web.Response:
        self.refused += 1
        self._unreported[why] += 1
        if self._clock() - self._reported_at >= REFUSAL_REPORT_SECONDS:
            self._report_refusals()
        return web.json_response({"status": "refused", "reason": why}, status=status)

    def _report_refusals(self) -> None:
        if self._unreported:
            reasons = ", ".join(f"{why} {count}" for why, count in self._unreported.most_common())
            log.warning("refused %d provider callback(s): %s", self._unreported.total(), reasons)
            self._unreported.clear()
            self._reported_at = self._clock()

    async def _kie(self, request: web.Request) -> web.Response:
        stamp = request.headers.get("X-Webhook-Timestamp", "").strip()
        signature = request.headers.get("X-Webhook-Signature", "").strip()
        if not stamp or not signature:
            return self._refuse(401, "unsigned")
        try:
            sent_at = int(stamp)
        except ValueError:
            return self._refuse(401, "bad timestamp")
        if abs(self._clock() - sent_at) > MAX_SKEW_SECONDS:
            return self._refuse(401, "timestamp too far from now")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return self._refuse(413, "body too large")
        if self._reading >= self.max_reading:
            return self._refuse(503, "too many at once")
        self._reading += 1
        try:
            async with asyncio.timeout(self.body_seconds):
                raw = await request.read()
        except TimeoutError:
            return self._refuse(408, "body too slow")
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(413, "body too large")
        except (ConnectionError, aiohttp.ClientPayloadError, aiohttp.http_exceptions.HttpProcessingError):
            # The sender went away mid-body: nobody to answer, and no traceback to log for it.
            self._refuse(400, "body cut short")
            raise web.HTTPBadRequest() from None
        finally:
            self._reading -= 1
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser
            return self._refuse(400, "body is not JSON")
        task_id = task_id_of(body)
        if task_id is None:
            return self._refuse(400, "no task id")
        if not hmac.compare_digest(kie_signature(task_id, stamp, self._key), signature):
            return self._refuse(401, "bad signature")
        seen_key = (task_id, stamp, signature)
        if seen_key in self._seen:
            log.info("kie callback for %s seen before; ignored", task_id)
            return web.json_response({"status": "duplicate"})
        self._seen[seen_key] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        if not await self._on_callback("kie", task_id):
            return self._refuse(404, "not a job this bot is waiting for")
        self.accepted += 1
        log.info("kie callback for %s accepted", task_id)
        return web.json_response({"status": "ok"})
