"""The endpoint providers call when a job ends (kie.ai's ``callBackUrl``), so the member is not kept
waiting for the next poll.

A callback is only a wake-up call: it never changes a job by itself. A valid one makes the runner
poll that job at once, and the poll's answer is what counts, so a forged, replayed or mistaken
callback can at most cause one extra status request, and a lost one costs time (the slow fallback
polling finds the job), never the image.

Kie signs callbacks (its "webhook security verification"): ``X-Webhook-Timestamp`` is Unix seconds,
``X-Webhook-Signature`` is base64(HMAC-SHA256(taskId + "." + timestamp, webhookHmacKey)). Refused
here: no or bad signature (401), a timestamp more than five minutes off (401), a body that names no
task (400), a task this bot is not waiting for (404), or, while the bot is stopping, not one it can take
up now (503: try again later). A task the bot does not know, while some create's answer was lost, is accepted
and traced to its job (bot/lost_tasks.py): by Kie's own record of it, never by what the callback says. A
replay of a request already seen is answered 200 and ignored. Refusals are logged as counts by reason, at most
once a minute: the endpoint is public, and a flood of requests must not become a flood of log lines. That
holds for whatever a request does: a header or body the handler or aiohttp's parser cannot read is one more
refusal in the count (400), never a traceback.
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

from bot.bounded_site import BoundedSite
from bot.store.refusals import log_refused_or_error

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
# The longest a body may take to arrive.
BODY_SECONDS = 10.0
# The longest a connection may take to send a complete request line and headers, from when it opened or from
# its previous answer (half-sent headers too: aiohttp's own default kept those open for an hour, each holding
# a file descriptor). Kie, or the reverse proxy in front, sends its headers at once; at 15 s, 200 sockets that
# never sent a byte, opened again as they were closed, kept every callback out.
IDLE_SECONDS = 3.0
# Connections open at once. Each holds a file descriptor, which the rest of the bot needs too: 300 half-sent
# requests left none, and members' commands failed ("Too many open files") while asyncio logged each refused
# accept (a 206 MB log in 90 s). One more closes the oldest connection that is not in the middle of a request
# (silent, half-sent headers, or idle between requests), so sockets that send nothing cannot shut a callback
# out; it is itself closed as it arrives only when every one is being answered.
MAX_CONNECTIONS = 200
# At stop, how long requests being answered get before they are cut. A callback is only a wake-up (a restart
# polls every unfinished job), and with aiohttp's default of 60 s, senders dripping bodies held every stop for
# their whole BODY_SECONDS.
SHUTDOWN_SECONDS = 1.0
# A timestamp is Unix seconds in ASCII digits; 12 of them reach the year 33658. int() also takes "1_7", "²",
# Arabic-Indic digits and 400 of them (then an OverflowError against the clock, a 500 with a traceback).
MAX_STAMP_DIGITS = 12
# While the bot is stopping, a callback it cannot take up now is answered 503 with this Retry-After.
RETRY_AFTER_SECONDS = 60
# The endpoint is public: anyone can send it requests by the thousand. Refusals are logged the first
# time, then summed up at most this often (and at stop), so a flood cannot fill the log.
REFUSAL_REPORT_SECONDS = 60.0

# (provider, provider job id) -> whether this bot knows that job and woke it, or may (a job whose create's
# answer was lost may have made it: bot/lost_tasks.py).
OnCallback = Callable[[str, str], Awaitable[bool]]


def kie_signature(task_id: str, timestamp: str, key: str) -> str:
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _encodable(text: str) -> bool:
    """JSON may carry a lone surrogate (``"\\ud800"``), which no bytes encode: it cannot be signed or stored."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def task_id_of(body: Any) -> str | None:
    """Kie's callback body is the task record: ``data.taskId`` (``task_id`` in some of its examples). A value
    that is no text, blank or cannot be encoded is no task id."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    for holder in (data, body):
        if isinstance(holder, dict):
            for key in ("taskId", "task_id"):
                value = holder.get(key)
                if isinstance(value, str) and value.strip() and _encodable(value):
                    return value.strip()
    return None


def stamp_seconds(stamp: str) -> int | None:
    """``X-Webhook-Timestamp`` as Unix seconds: ASCII digits only, at most MAX_STAMP_DIGITS; else None."""
    if 0 < len(stamp) <= MAX_STAMP_DIGITS and stamp.isascii() and stamp.isdigit():
        return int(stamp)
    return None


class _ServerLog(logging.Logger):
    """The logger aiohttp's server writes to: what it would log at ERROR with a traceback (a request it cannot
    parse: a header line without a colon, a header over 8 KB, a bad method; or anything else a request made it
    fail) is a refusal counted into the endpoint's summary instead. The endpoint is public, and before, each
    such request wrote a traceback (2,000 of them, 1.36 MB of log)."""

    def __init__(self, refuse: Callable[[str], object]) -> None:
        super().__init__(f"{__name__}.server")
        self.parent = log  # what is not a refusal (aiohttp's debug lines) goes where this module's lines go
        self._refuse = refuse

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._count(msg, kwargs.get("exc_info"))

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._count(msg, kwargs.get("exc_info"))

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        # A bad method in a connection's first request (TLS or other non-HTTP bytes) is logged at debug.
        if isinstance(kwargs.get("exc_info"), BaseException) and str(msg).startswith("Error handling request"):
            self._count(msg, kwargs["exc_info"])
        else:
            super().debug(msg, *args, **kwargs)

    def _count(self, msg: object, exc_info: object) -> None:
        what = type(exc_info).__name__ if isinstance(exc_info, BaseException) else "no exception"
        why = "unreadable request" if str(msg).startswith("Error handling request") else "request the server failed"
        self._refuse(f"{why} ({what})")


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
        stopping: Callable[[], bool] = lambda: False,
        idle_seconds: float = IDLE_SECONDS,
        body_seconds: float = BODY_SECONDS,
        max_reading: int = MAX_READING,
        max_connections: int = MAX_CONNECTIONS,
        shutdown_seconds: float = SHUTDOWN_SECONDS,
    ) -> None:
        self.host = host
        self.max_connections = max_connections
        self.idle_seconds = idle_seconds
        self.body_seconds = body_seconds
        self.max_reading = max_reading
        self.shutdown_seconds = shutdown_seconds
        self.port = port
        self._key = hmac_key
        self._on_callback = on_callback
        self._clock = clock
        # Whether the bot is stopping (its job runner takes up no lost task then): a callback it does not
        # claim is answered 503, not 404.
        self._stopping = stopping
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._runner: web.AppRunner | None = None
        self.accepted = 0
        self.refused = 0
        self._unreported: Counter[str] = Counter()
        self._reported_at = -math.inf
        self._reading = 0  # bodies being read now
        self._answering: set[object] = set()  # the connections (aiohttp's protocols) whose request is handled now

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(PATH, self._kie)
        runner = web.AppRunner(
            app,
            access_log=None,
            keepalive_timeout=self.idle_seconds,
            shutdown_timeout=self.shutdown_seconds,
            logger=_ServerLog(self._count_refusal),
        )
        await runner.setup()
        site = BoundedSite(
            runner, self.host, self.port, limit=self.max_connections, busy=lambda handler: handler in self._answering
        )
        try:
            await site.start()
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

    def _count_refusal(self, why: str) -> None:
        self.refused += 1
        self._unreported[why] += 1
        if self._clock() - self._reported_at >= REFUSAL_REPORT_SECONDS:
            self._report_refusals()

    def _refuse(self, status: int, why: str, headers: dict[str, str] | None = None) -> web.Response:
        self._count_refusal(why)
        return web.json_response({"status": "refused", "reason": why}, status=status, headers=headers)

    def _report_refusals(self) -> None:
        if self._unreported:
            reasons = ", ".join(f"{why} {count}" for why, count in self._unreported.most_common())
            log.warning("refused %d provider callback(s): %s", self._unreported.total(), reasons)
            self._unreported.clear()
            self._reported_at = self._clock()

    async def _kie(self, request: web.Request) -> web.StreamResponse:
        self._answering.add(request.protocol)
        try:
            return await self._answer(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            # Anything a request made the handler fail on, unforeseen: counted, never a traceback per request.
            return self._refuse(400, f"unreadable request ({type(exc).__name__})")
        finally:
            self._answering.discard(request.protocol)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        stamp = request.headers.get("X-Webhook-Timestamp", "").strip()
        signature = request.headers.get("X-Webhook-Signature", "").strip()
        if not stamp or not signature:
            return self._refuse(401, "unsigned")
        sent_at = stamp_seconds(stamp)
        if sent_at is None:
            return self._refuse(401, "bad timestamp")
        if abs(self._clock() - sent_at) > MAX_SKEW_SECONDS:
            return self._refuse(401, "timestamp too far from now")
        if not signature.isascii():  # base64 is ASCII; compare_digest refuses other text with a TypeError
            return self._refuse(401, "bad signature")
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
            self._count_refusal("body cut short")
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
        expected = kie_signature(task_id, stamp, self._key)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
            return self._refuse(401, "bad signature")
        seen_key = (task_id, stamp, signature)
        if seen_key in self._seen:
            log.info("kie callback for %s seen before; ignored", task_id)
            return web.json_response({"status": "duplicate"})
        self._seen[seen_key] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        try:
            ours = await self._on_callback("kie", task_id)
        except Exception as exc:
            # Signed: Kie's own (or the key's holder's), so no flood. A database that refused (another program's
            # lock) is a WARNING, anything else a fault of the bot, with its traceback; 503 either way, and the
            # same request sent again is not a replay.
            self._seen.pop(seen_key, None)
            log_refused_or_error(log, exc, "kie callback for %s: waking its job failed", task_id)
            return web.json_response({"status": "error"}, status=503)
        if not ours:
            if self._stopping():
                # The job runner takes up no lost task while it stops (the task is kept for the next start to
                # trace: bot/lost_tasks.py), so this is no "not ours": 503 says try again later, and the same
                # request sent again is not a replay. Whether and when Kie sends a callback again is not
                # documented (docs/providers.md 4.1 says nothing of it; Kie's callback pages give only a 15 s
                # timeout), so nothing relies on it; a 404 would tell a sender that does retry not to.
                self._seen.pop(seen_key, None)
                log.info("kie callback for %s while the bot is stopping: answered 503, try again later", task_id)
                return self._refuse(503, "bot stopping", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            return self._refuse(404, "not a job this bot is waiting for")
        self.accepted += 1
        log.info("kie callback for %s accepted", task_id)
        return web.json_response({"status": "ok"})
