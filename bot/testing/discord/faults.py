"""Fault injection: scripted failures (``fail_next``) and seeded random ones (``chaos``).

Both answer a REST call in place of the route; an injected 429 looks like Discord's own (a ``Via``
header and a JSON ``retry_after``), because discord.py retries only that kind and treats any other
429 as a proxy ban.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from .protocol import JSON, ApiError, json_response
from .records import ChaosFault, RecordedRequest

# Message edits and webhook calls (follow-ups, edits of @original): where a bot delivers its results.
CHAOS_PATHS = r"^/webhooks/\d+/[^/]+(/messages/[^/]+)?$|^/channels/\d+/messages(/\d+)?$"
# Interaction callbacks: a bot's first answer to a command or a button.
CALLBACK_PATHS = r"^/interactions/\d+/[^/]+/callback$"


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: JSON | None
    remaining: int
    match: Callable[[RecordedRequest], bool] | None = None
    after: bool = False  # carried out first, then answered with the failure (the answer lost)


@dataclass(frozen=True)
class _Chaos:
    rate: float
    pattern: re.Pattern[str]
    methods: frozenset[str]
    statuses: tuple[int, ...]
    retry_after: tuple[float, float]
    draw: random.Random


def _rate_limited(retry_after: float, headers: dict[str, str], body: JSON | None = None) -> web.Response:
    """A 429 discord.py honours: the body's retry_after (seconds, fractional) is what clients wait; the Via
    header is what tells discord.py it came from Discord, not a proxy ban."""
    body = body or {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    return json_response(429, body, {"Via": "1.1 google", **headers})


class Faults:
    """The failures a test scripted and the chaos it switched on; :meth:`answer` applies them."""

    def __init__(self, chaos_faults: list[ChaosFault]) -> None:
        self._failures: list[_Failure] = []
        self._chaos: _Chaos | None = None
        self._lost: _Chaos | None = None  # lose_answers(): carried out, then answered with a failure
        self._chaos_faults = chaos_faults  # where chaos() records each fault it injects

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        body: JSON | None,
        times: int,
        match: Callable[[RecordedRequest], bool] | None,
        after: bool = False,
    ) -> None:
        self._failures.append(
            _Failure(
                method=method.upper(),
                pattern=re.compile(path_regex),
                status=status,
                body=body,
                remaining=times,
                match=match,
                after=after,
            )
        )

    def chaos(
        self,
        rate: float,
        *,
        seed: int,
        statuses: tuple[int, ...],
        path_regex: str,
        methods: tuple[str, ...],
        retry_after: tuple[float, float],
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"chaos rate {rate} is not between 0 and 1")
        if rate == 0:
            self._chaos = None
            return
        self._chaos = _Chaos(
            rate=rate,
            pattern=re.compile(path_regex),
            methods=frozenset(m.upper() for m in methods),
            statuses=tuple(statuses),
            retry_after=retry_after,
            draw=random.Random(seed),
        )

    def answer(self, record: RecordedRequest, full_path: str, *, api: bool) -> web.Response | None:
        """The injected answer for this call, or None to let the route handle it."""
        failure = self._next_failure(record, full_path, after=False)
        if failure is not None:
            return self._scripted(failure)
        return self._chaos_answer(record) if api else None

    def lose_answers(self, rate: float, *, seed: int, statuses: tuple[int, ...], path_regex: str) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"lost-answer rate {rate} is not between 0 and 1")
        self._lost = None
        if rate > 0:
            pattern, draw = re.compile(path_regex), random.Random(seed)
            self._lost = _Chaos(rate, pattern, frozenset({"POST"}), statuses, (0.0, 0.0), draw)

    def answer_after(self, record: RecordedRequest, full_path: str) -> web.Response | None:
        """The answer that replaces the route's own for a call it has carried out (``fail_next(after=True)``,
        ``lose_answers``), or None to send the route's."""
        failure = self._next_failure(record, full_path, after=True)
        if failure is not None:
            return self._scripted(failure)
        status = self._draw(self._lost, record, carried_out=True)
        return None if status is None else ApiError(status, 0, f"{status}: the answer was lost").response()

    def _draw(self, chaos: _Chaos | None, record: RecordedRequest, *, carried_out: bool = False) -> int | None:
        """The status ``chaos`` gives this call (recorded as a fault), or None if it leaves it alone."""
        if chaos is None or record.method not in chaos.methods or not chaos.pattern.search(record.path):
            return None
        if chaos.draw.random() >= chaos.rate:
            return None
        status = chaos.draw.choice(chaos.statuses)
        self._chaos_faults.append(ChaosFault(record.at, record.method, record.path, status, carried_out))
        return status

    def _next_failure(self, record: RecordedRequest, full_path: str, *, after: bool) -> _Failure | None:
        for failure in self._failures:
            method_ok = failure.remaining > 0 and failure.after == after and failure.method in ("*", record.method)
            if method_ok and (failure.pattern.search(record.path) or failure.pattern.search(full_path)):
                if failure.match is not None and not failure.match(record):
                    continue
                failure.remaining -= 1
                return failure
        return None

    @staticmethod
    def _scripted(failure: _Failure) -> web.Response:
        if failure.status == 429:
            return _rate_limited(0.05, {"Retry-After": "1"}, failure.body)
        body = failure.body or {"code": 0, "message": f"{failure.status}: injected failure"}
        return json_response(failure.status, body)

    def _chaos_answer(self, record: RecordedRequest) -> web.Response | None:
        chaos = self._chaos
        status = self._draw(chaos, record)
        if status is None or chaos is None:
            return None
        if status != 429:
            return ApiError(status, 0, f"{status}: chaos").response()
        retry_after = round(chaos.draw.uniform(*chaos.retry_after), 3)
        # What Discord sends on a per-route limit.
        headers = {"Retry-After": str(max(1, round(retry_after))), "X-RateLimit-Scope": "user"}
        return _rate_limited(retry_after, headers)
