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

from aiohttp import web

log = logging.getLogger(__name__)

PATH = "/callbacks/kie"
# Kie's own retries arrive within minutes; older signed requests are replays.
MAX_SKEW_SECONDS = 300
SEEN_LIMIT = 10_000
MAX_BODY_BYTES = 1_048_576
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
    ) -> None:
        self.host = host
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

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(PATH, self._kie)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
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
        try:
            body = json.loads(await request.read())
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
