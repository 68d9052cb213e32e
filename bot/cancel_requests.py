"""A member's Cancel, written down before they are told it was taken.

A click acknowledged and then lost to a crash would be a cancel the member saw accepted and that never
happened, so the click only writes the request (``cancel_requested`` on the job's row, the job made due at
once) and the job runner (bot/jobs.py) carries it out: at once for a Cancel that waits for it, or at the
job's next step, here or after a restart. Three things are kept in memory meanwhile, each for a race seen
in bench/soak.py: a batch's cancels being written (its first end then draws them all cancelled, in one
edit), a click's answer on its way (an end drawn meanwhile waits for it rather than be drawn over by
"Cancelling…", and is drawn again if the answer lands later still), and a step waiting on a call that is
the drawing itself (Gemini: let go of at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from bot.models import JobState
from bot.store.jobs import InvalidTransitionError, Job, JobStore

log = logging.getLogger(__name__)

# What a member reads on a job they (or a moderator) cancelled.
CANCELLED_MESSAGE = "Cancelled. You were not charged."
# How long an end waits for a Cancel click's answer on its way (``answering``): Discord's window.
CANCEL_ANSWER_WAIT = 3.0
# How long an end drawn before a click's answer went waits for it to go, to be drawn again after it
# (``answered``): an interaction's token lives 15 minutes (cogs/imagine.py TOKEN_LIFETIME), so no answer
# lands after that; only a bug leaves the answer's context open so long.
LATE_ANSWER_WAIT = 900.0


class CancelRequests:
    """Writes cancels down, and tells the runner's ends what is being written or answered meanwhile."""

    def __init__(self, store: JobStore, clock: Callable[[], float], wake: Callable[[], None]) -> None:
        self.store = store
        self.clock = clock
        self.wake = wake  # the job loop's: a cancel written makes its job due at once
        # Batches whose Cancel is being written (``request_batch``): set once every candidate's is.
        self._being_written: dict[str, asyncio.Event] = {}
        # A Cancel click whose answer (the message drawn as it was when read: "Cancelling…") is on its way,
        # by the batch's id or the job's: an end waits for it (see ``answering``).
        self._answers: dict[str, asyncio.Event] = {}
        # Answers an end has already waited its CANCEL_ANSWER_WAIT for in vain: the ends after it (a batch's
        # other candidates) need not wait again, as the end is drawn again once the answer has gone.
        self._overdue: set[asyncio.Event] = set()
        # The steps waiting for a call answered with the image (bot/dispatch.py CALL_LANE), by job.
        self._calling: dict[str, asyncio.Task[Any]] = {}

    async def request(
        self, job_id: str, *, by_user: int | None, message_gone: bool = False, message_id: int | None = None
    ) -> Job | None:
        """Write down that the job is to be cancelled, without waiting for a step in flight to finish.
        Returns the job (None if unknown; unchanged if it has ended or has its image already, which is
        delivered rather than thrown away). ``message_gone``: cancelled because its message was deleted,
        so its end is not shown. ``message_id``: the message the click came from, recorded if the job does
        not know its message yet (Discord made it, but its answer to the command was lost and the bot is
        still finding out), so the cancel is shown there."""
        for _ in range(3):
            job = await self.store.get(job_id)
            if job is None or job.terminal or job.state is JobState.SUCCEEDED or job.cancel_requested is not None:
                return job
            now = self.clock()
            learnt: dict[str, Any] = {}
            if message_id is not None and job.message_id is None:
                learnt["message_id"] = message_id
            try:
                # Only these columns are written, compared on the state: a step in flight keeps its own.
                job = await self.store.update(
                    job,
                    now=now,
                    cancel_requested="silent" if message_gone else "show",
                    cancelled_by=by_user,
                    next_poll_at=now,  # due at once: the next step (here or after a restart) ends it
                    **learnt,
                )
            except InvalidTransitionError:
                continue  # a step moved the job meanwhile: look again
            self._let_go_of_call(job_id)
            self.wake()
            return job
        return await self.store.get(job_id)

    async def request_batch(
        self, job_ids: Sequence[str], *, batch_id: str | None, by_user: int | None, message_id: int | None = None
    ) -> list[Job | None]:
        """``request`` for each of a batch's candidates, all written before any of their ends is drawn: the
        first end then draws them all cancelled, in one edit, rather than each end showing one more (the
        job loop may start one as soon as its cancel is written). An end waits for these writes (SQLite
        only); the click does not wait for the batch's lock, which an upload may hold for seconds, longer
        than Discord gives the click's answer."""
        written = asyncio.Event()
        if batch_id is not None:
            self._being_written[batch_id] = written
        try:
            return [await self.request(i, by_user=by_user, message_id=message_id) for i in job_ids]
        finally:
            written.set()
            if batch_id is not None and self._being_written.get(batch_id) is written:
                del self._being_written[batch_id]

    async def written(self, batch_id: str) -> None:
        """Wait until a Cancel on the batch being written (if any) is, so an end draws what it will end."""
        writing = self._being_written.get(batch_id)
        if writing is not None:
            await writing.wait()

    @contextlib.asynccontextmanager
    async def answering(self, key: str) -> AsyncIterator[None]:
        """Around a Cancel click's writes and answer (``key``: the batch's id, or the job's). The answer
        edits the message to the job as read before it is sent ("Cancelling…"), while the loop may carry
        the cancel out meanwhile (the write makes the job due at once) and draw its end: the answer then
        landed over the end, and the message said "Cancelling…" for good (bench/soak.py --seed 136, a
        batch). So an end drawn meanwhile waits for the answer to have gone (``answered``)."""
        sent = asyncio.Event()
        self._answers[key] = sent
        try:
            yield
        finally:
            sent.set()
            self._overdue.discard(sent)
            if self._answers.get(key) is sent:
                del self._answers[key]

    async def answered(self, key: str) -> asyncio.Event | None:
        """Wait for a Cancel click's answer on its way (at most CANCEL_ANSWER_WAIT s). Returns None once it
        has gone (or if none was on its way); else the answer, still on its way: Discord may yet apply it
        over the end drawn now, as it did when it took longer than the wait (tests/e2e/
        test_cancel_and_fetch_fixes.py), and the member read "Cancelling…" for good. Whoever draws the end
        then draws it again once the answer is set (bot/job_messages.py ``_redraw_once_answered``)."""
        answer = self._answers.get(key)
        if answer is None:
            return None
        if answer not in self._overdue:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answer.wait(), CANCEL_ANSWER_WAIT)
        if answer.is_set():
            return None
        self._overdue.add(answer)
        return answer

    @staticmethod
    async def gone(answer: asyncio.Event) -> None:
        """Wait for an answer ``answered`` found still on its way to have gone (at most LATE_ANSWER_WAIT s)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(answer.wait(), LATE_ANSWER_WAIT)

    @contextlib.contextmanager
    def during_call(self, job_id: str) -> Iterator[None]:
        """Around a create whose call is the drawing itself (Gemini: a minute or more): a Cancel meanwhile
        cancels the step waiting on it, so the cancel is carried out now (the step's next run sees it
        written) rather than when the provider answers; nothing was shown or charged, and an answer would be
        thrown away anyway. Only while the step waits for the call itself: once the answer is in, it finishes."""
        step = asyncio.current_task()
        if step is not None:
            self._calling[job_id] = step
        try:
            yield
        finally:
            self._calling.pop(job_id, None)

    def _let_go_of_call(self, job_id: str) -> None:
        step = self._calling.pop(job_id, None)
        if step is not None:
            log.info("job %s: cancelled during its call; not waiting for the provider's answer", job_id)
            step.cancel()
