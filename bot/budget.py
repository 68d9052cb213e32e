"""A per-provider ceiling on requests per second, shared by every job, metered on every HTTP request.

A learned schedule polls densely where jobs finish; with a thousand jobs in flight that would be a
thousand requests a second at one provider, past any rate limit. Each provider has a sliding window:
at most ``rate`` requests in any window of a little over a second (so requests that leave a hair
apart are not counted in the same second by the provider).

The budget is spent where requests really leave: an httpx request hook (``BudgetHook``) on the shared
client waits for room before every request to a provider's origin, so result fetches, the adapters'
own retries and cancels all count, not only one request per job step. Waiting requests are served
writes first (creates are POSTs; polls are GETs), so polls never starve a member's new job. The job
loop only asks ``room()`` to decide how many steps to start and which (bot/dispatch.py).

A 429 pauses the provider's budget until its Retry-After (or an exponential pause without one): one
job being told to slow down means every job on that key is about to be. After a pause one request goes
first, alone, as a probe; the others follow only once it is answered with something other than a 429,
so a storm of 429s costs about one request per Retry-After however many jobs are waiting.

The hook sees only an answer's status and headers, not its body, and not every API says "rate limited"
there: Kie answers HTTP 200 with ``code: 429`` in its body (docs/providers.md 4.1, 8.3), and Segmind's only
wait is its own ``x-rate-limit-reset-at-utc`` header (5.4). So a request whose sender reads every answer
itself (the provider adapters: bot/providers/_adapter.py) says so (``SENDER_JUDGES``), and tells the budget
what the answer was once it has read it (``RequestBudget.answer_judged``, left on the request by the hook): a
rate limit pauses the provider for the wait the adapter found (at most MAX_RETRY_AFTER_SECONDS); anything
else ends a pause, as any answer but a 429 does here.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import httpx

from bot.providers._adapter import RATE_LIMIT_VERDICT, SENDER_JUDGES
from bot.providers._http import CREATE_ATTEMPT, parse_retry_after

log = logging.getLogger(__name__)

# A request counted by the provider in the same second as one we sent a moment earlier must not
# break the ceiling: requests do not arrive exactly as far apart as they left (a busy event loop here,
# the network there), so the window is a fifth longer than a second and the ceiling holds at the
# provider with up to 0.2 s of such jitter, at the price of using 5/6 of the configured rate.
WINDOW_SECONDS = 1.2
# Without a Retry-After, successive 429s pause the provider for 1, 2, 4 ... up to this many seconds.
MAX_PAUSE_SECONDS = 30.0
# The longest wait a Retry-After (or a provider's own "retry in") is obeyed for. A provider may ask for
# hours (a daily quota spent) or, broken or hostile, for years; after this long one request (the probe)
# asks again, and each 429 pauses once more. Obeyed whole, every request to the provider, creates
# included, would wait that long inside the request, and the jobs with them.
MAX_RETRY_AFTER_SECONDS = 60.0
# A probe that never gets an answer (a timeout) stops holding the others back after this long.
PROBE_SECONDS = 10.0
_WRITE, _READ = 0, 1


class RequestBudget:
    """At most ``rate`` requests per window; ``rate`` <= 0 means no ceiling (but 429 pauses still apply)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        # Below one request a second: one request per 1/rate seconds; otherwise whole requests per window.
        self.window = WINDOW_SECONDS / rate if 0 < rate < 1 else WINDOW_SECONDS
        self._capacity = max(1, int(rate)) if rate > 0 else 0
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._pauses = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._probing = False  # after a 429: one request at a time until one is answered
        self._probe_until = 0.0  # while a probe is out, nobody else goes (until this time)
        self.sent_total = 0

    @property
    def limited(self) -> bool:
        return self.rate > 0

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def _held(self, now: float) -> bool:
        return now < self._paused_until or (self._probing and now < self._probe_until)

    def room(self) -> int:
        """Requests that could leave right now without waiting (after those already waiting)."""
        now = self.clock()
        if self._held(now):
            return 0
        if self._probing:
            return 1 if not self._waiters else 0
        if not self.limited:
            return 1_000_000
        self._trim(now)
        return max(0, self._capacity - len(self._sent) - len(self._waiters))

    def next_free(self) -> float:
        """Seconds from now until a request could leave (0 if one can now)."""
        now = self.clock()
        if now < self._paused_until:
            return self._paused_until - now
        if self._probing and now < self._probe_until:
            return self._probe_until - now
        if not self.limited:
            return 0.0
        self._trim(now)
        if len(self._sent) < self._capacity:
            return 0.0
        return max(0.0, self._sent[0] + self.window - now)

    def paused_for(self) -> float:
        """Seconds left of a 429's pause (0 when none): how long a request would wait for the provider
        to be willing at all, whatever the ceiling."""
        return max(0.0, self._paused_until - self.clock())

    def _take(self) -> bool:
        now = self.clock()
        if self._held(now):
            return False
        if self._probing:
            self._probe_until = now + PROBE_SECONDS
        if self.limited:
            self._trim(now)
            if len(self._sent) >= self._capacity:
                return False
            self._sent.append(now)
        self.sent_total += 1
        return True

    def admits_now(self) -> bool:
        """Take room for a request at once if there is some and nobody waits for it (then no acquire)."""
        return not self._waiters and self._take()

    async def acquire(self, *, write: bool = False) -> None:
        """Wait until a request may leave; writes (creates) are served before reads (polls)."""
        if self.admits_now():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (_WRITE if write else _READ, next(self._order), future))
        self._arm()
        # Cancelled while waiting: the future is cancelled too and _grant skips it.
        await future

    def _grant(self) -> None:
        self._timer = None
        while self._waiters:
            _, _, future = self._waiters[0]
            if future.done():  # its task was cancelled while waiting
                heapq.heappop(self._waiters)
                continue
            if not self._take():
                break
            heapq.heappop(self._waiters)
            future.set_result(None)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None or not self._waiters:
            return
        self._timer = asyncio.get_running_loop().call_later(self.next_free(), self._grant)

    def pause(self, retry_after: float | None) -> float:
        """A 429: hold every request to this provider for Retry-After seconds (at most
        MAX_RETRY_AFTER_SECONDS), or back off exponentially. Returns the seconds until requests may go again."""
        if retry_after is None:
            self._pauses += 1
            retry_after = min(MAX_PAUSE_SECONDS, 2.0 ** (self._pauses - 1))
        retry_after = min(retry_after, MAX_RETRY_AFTER_SECONDS)
        now = self.clock()
        self._paused_until = max(self._paused_until, now + retry_after)
        self._probing, self._probe_until = True, 0.0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiters:
            self._arm()
        return self._paused_until - now

    def judged(self, status: int, *, rate_limited: bool, wait: float | None) -> float | None:
        """What the sender made of an answer (HTTP ``status``) it has read: a rate limit pauses the provider for
        ``wait`` (None: the exponential pause); anything else ends a pause. An HTTP 429 paused already in the
        hook by its Retry-After, so only a wait the sender found beyond that (a reset header, a body's) adds to
        it. Returns the seconds of the pause it made, None if it made none."""
        if not rate_limited:
            if status != 429:
                self.recovered()
            return None
        if status == 429 and wait is None:
            return None
        return self.pause(wait)

    def answer_judged(self, response: httpx.Response, rate_limited: bool, wait: float | None) -> None:
        """The adapter's reading of an answer it sent (bot/providers/_adapter.py RateLimitVerdict)."""
        paused = self.judged(response.status_code, rate_limited=rate_limited, wait=wait)
        if paused is not None:
            log.warning(
                "%s answered a rate limit (HTTP %d): pausing its requests for %.1f s",
                response.request.url.host,
                response.status_code,
                paused,
            )

    def recovered(self) -> None:
        """An answer other than 429 came back: everyone may go again, and the next 429 without
        Retry-After starts from a short pause."""
        self._pauses = 0
        if self._probing:
            self._probing, self._probe_until = False, 0.0
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._waiters:
                self._grant()


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class BudgetHook:
    """httpx hooks: every request to a provider's origin waits for that provider's budget, and every
    429 from it pauses the budget (Retry-After wins over any schedule, for every job on that key)."""

    def __init__(self, budgets_by_origin: Mapping[str, RequestBudget]) -> None:
        self.budgets = dict(budgets_by_origin)

    def _budget(self, url: httpx.URL) -> RequestBudget | None:
        port = url.port or (443 if url.scheme == "https" else 80)
        return self.budgets.get(f"{url.scheme}://{url.host.lower()}:{port}")

    async def __call__(self, request: httpx.Request) -> None:
        budget = self._budget(request.url)
        if budget is None:
            return
        # Where the adapter gives its verdict on the answer (httpx copies the extensions into each request).
        request.extensions[RATE_LIMIT_VERDICT] = budget.answer_judged
        if budget.admits_now():
            return
        create = CREATE_ATTEMPT.get()
        if create is None:
            await budget.acquire(write=request.method != "GET")
            return
        # A create held back here has not left: its job's row must not say it may have (a crash while it
        # waits, seconds under a 429's pause, would fail the job as uncertain). Cleared for the wait, and
        # written again once it may go (bot/create_attempts.py).
        await create.settled()
        await budget.acquire(write=True)
        await create.leaving()

    async def on_response(self, response: httpx.Response) -> None:
        budget = self._budget(response.request.url)
        if budget is None:
            return
        if response.status_code == 429:
            paused = budget.pause(parse_retry_after(response.headers.get("Retry-After")))
            log.warning("%s answered 429: pausing its requests for %.1f s", response.request.url.host, paused)
        elif response.request.extensions.get(SENDER_JUDGES):
            # Its sender reads the body and says whether it was a rate limit (``answer_judged``). Ending the
            # pause here would let every waiting request go on Kie's HTTP 200 carrying code 429, and each such
            # answer would reset the backoff the next one should grow.
            return
        else:
            # Any answer but a 429 ends the pause: a 5xx is the server's trouble, not a rate limit, and
            # treating it as one would hold every other request back until the probe expired.
            budget.recovered()
