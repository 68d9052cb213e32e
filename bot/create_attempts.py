"""A job's create between its attempts: whether one may be in flight, kept true in its row.

``submit_started_at`` is written before a create leaves, and a queued job found with it at the next start
is failed as "uncertain" rather than sent again: the create may have reached the provider, which bills it,
and no provider here takes an idempotency key. But a create answered 429 or 5xx is tried again after a
wait (bot/providers/_http.py ``request_with_retry``), and during that wait nothing is outstanding: every
attempt so far was answered "not done" or never left. A stop or crash then used to fail every such job
(a provider's outage and one SIGKILL in bench/soak.py: 36 members told "the bot restarted while sending
this request", though the provider had refused each of them). So the mark is cleared while the create
waits, and written again before its next attempt leaves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.providers._http import BETWEEN_ATTEMPTS
from bot.store.jobs import Job, JobStore
from bot.store.refusals import write_can_wait, write_until_taken

log = logging.getLogger(__name__)


class CreateAttempts:
    """``BetweenAttempts`` for one job's create (its step holds the job's lock meanwhile)."""

    def __init__(self, store: JobStore, job: Job, clock: Callable[[], float]) -> None:
        self.store = store
        self.job = job
        self.clock = clock
        self._cleared = False

    async def settled(self) -> None:
        try:
            await self.store.update(self.job, now=self.clock(), submit_started_at=None)
        except Exception as exc:
            if not write_can_wait(exc):
                raise
            # The mark stays: a stop now fails the job as uncertain, as it did before; nothing is lost.
            log.debug("job %s: could not clear its create's mark between attempts (%s)", self.job.id, exc)
            return
        self._cleared = True

    async def leaving(self) -> None:
        if not self._cleared:
            return
        # No attempt leaves unmarked: it waits for the database rather than go without.
        await write_until_taken(
            lambda: self.store.update(self.job, now=self.clock(), submit_started_at=self.clock()),
            f"job {self.job.id}: the mark before its create's next attempt",
        )
        self._cleared = False


@contextmanager
def create_attempts(store: JobStore, job: Job, clock: Callable[[], float]) -> Iterator[None]:
    """Inside: the create sent for ``job`` keeps its row's mark true between attempts."""
    token = BETWEEN_ATTEMPTS.set(CreateAttempts(store, job, clock))
    try:
        yield
    finally:
        BETWEEN_ATTEMPTS.reset(token)
