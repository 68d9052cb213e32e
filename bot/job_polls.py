"""A submitted job's step: ask its provider how it is going, and act on the answer.

Part of the job runner (bot/jobs.py). A poll that changes nothing is kept in memory (``note_poll``) until
the job's next write; a finished image is recorded and left to the delivery lane (bot/dispatch.py), so a
download never holds up the polls of other jobs.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.budget import MAX_RETRY_AFTER_SECONDS
from bot.errors import ErrorCategory, ProviderError, RateLimitedError, TransientError
from bot.models import JobResult, JobState, JobUpdate, UpdateStatus
from bot.providers._http import redact, shown
from bot.runner_part import RunnerPart
from bot.schedule_learning import clock_start
from bot.store.jobs import Job

log = logging.getLogger(__name__)

# Consecutive failed polls (5xx, garbage, timeouts) before we stop trusting the provider with this job.
MAX_POLL_ERRORS = 10


class Poller(RunnerPart):
    """Polls submitted jobs and applies what their provider says (a create's own answer too)."""

    async def poll(self, job: Job, *, last: bool = False) -> None:
        """``last``: the job's deadline has passed; it ends expired unless this poll finds it ended (an image
        made meanwhile is delivered). A poll that fails is tried again as any is, up to MAX_POLL_ERRORS: the
        provider's not answering does not say the image was not made. A job whose provider is no longer
        enabled ends at once (``JobRunner.provider_gone``)."""
        assert job.handle is not None, "a submitted job always has a handle"
        provider = self.runner.providers.get(job.provider)
        if provider is None:
            # Turned off since it took the job (a restart with it disabled): nothing can ask it, now or later
            # in this run. Before, provider_of's error escaped the step: "step failed; will retry" with a
            # traceback every max_poll_interval, and past the deadline the job never ended, its units held.
            await self.runner.provider_gone(job, past_deadline=last)
            return
        try:
            update = await provider.poll(job.handle)
        except ProviderError as exc:
            await self._failed(job, exc)
            return
        except Exception as exc:
            await self._failed(job, self._unreadable(job, exc))
            return
        if last and update.status in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            log.info("job %s: still %s at the provider past its deadline; expiring it", job.id, update.status.value)
            await self.runner.expire(job)
            return
        await self.apply(job, update)

    @staticmethod
    def _unreadable(job: Job, exc: Exception) -> TransientError:
        """An exception no adapter meant (an answer it did not expect, or its bug) as a failed poll: counted
        toward MAX_POLL_ERRORS like any other, so the job ends, and its traceback logged once, at the first.
        Before, it escaped the step: a traceback at every poll, and the job polled until its deadline."""
        log.warning(
            "job %s: poll of %s raised %s", job.id, job.provider, type(exc).__name__, exc_info=job.poll_errors == 0
        )
        return TransientError(
            "The image provider sent answers about this job that the bot could not read. Try again in a few minutes.",
            detail=redact(f"{job.provider} poll raised {type(exc).__name__}: {shown(str(exc))}"),
            provider=job.provider,
        )

    async def _failed(self, job: Job, exc: ProviderError) -> None:
        """A poll that failed: asked again after a backoff while that is worth it, else the job ends."""
        if exc.retryable and job.poll_errors + 1 < MAX_POLL_ERRORS:
            log.warning("job %s: poll failed (%s), will retry: %s", job.id, exc.category, exc.detail)
            errors = job.poll_errors + 1
            now = self.clock()
            delay = self.runner.backoff(errors)
            if isinstance(exc, RateLimitedError):
                # The budget hook has paused every request to this provider already; this job also
                # waits as long as the provider asked, up to the most any such wait is obeyed.
                delay = max(delay, min(exc.retry_after or 0.0, MAX_RETRY_AFTER_SECONDS))
            await self.store.update(job, now=now, poll_errors=errors, next_poll_at=now + delay)
            return
        # We give up on this job; ask the provider to stop so nobody pays for an image never shown.
        await self.runner.canceller.at_provider(job)
        await self.runner.fail(job, exc.category, exc.user_message, detail=exc.detail)

    async def apply(self, job: Job, update: JobUpdate) -> None:
        now = self.clock()
        if update.status in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            new_state = JobState.RUNNING if update.status is UpdateStatus.RUNNING else job.state
            changed = new_state != job.state
            queued = update.status is UpdateStatus.QUEUED
            clock = clock_start(job, queued=queued, now=now)
            delay = self.runner.learner.next_delay(job, update, clock=clock, now=now)
            self.runner.called_back_jobs.discard(job.id)  # a callback that came early: back to the schedule
            bookkeeping: dict[str, Any] = {
                "attempts": job.attempts + 1,
                "poll_errors": 0,
                "next_poll_at": now + delay,
                "last_poll_at": now,
                "last_queued_at": now if queued else job.last_queued_at,
            }
            if changed or clock != job.clock_started_at:
                # A new state or a restarted clock is worth a write: a restart should not forget them.
                job = await self.store.update(job, now=now, state=new_state, clock_started_at=clock, **bookkeeping)
            else:
                job = await self.store.note_poll(job, **bookkeeping)
            # A state change is shown at once; otherwise the elapsed time refreshes every few seconds.
            await self.runner.messages.progress(job, force=changed)
            return
        if update.status is UpdateStatus.SUCCEEDED:
            called_back = job.id in self.runner.called_back_jobs
            if await self.runner.learner.learn(job, now, called_back=called_back, in_flight=self.runner.in_flight):
                self.runner.wake()
            current = await self.store.get(job.id)
            if current is not None and current.cancel_requested is not None:
                # The member called it off before the bot knew the image existed (a poll in flight when
                # they pressed Cancel): their word stands, as the acknowledged click promised. Nothing to
                # stop at the provider any more; they are not charged for it.
                log.info("job %s: finished at the provider after its member cancelled it; not delivered", job.id)
                await self.runner.canceller.carry_out(current, ask_provider=False)
                return
            if not update.images:
                await self.runner.fail(job, ErrorCategory.NO_IMAGE, "The model answered without an image. Try again.")
                return
            images = await self.runner.images.keep_inline(job, update.images)
            result = JobResult(images=images, text=update.text, usage=update.usage)
            changes: dict[str, Any] = {"result": result, "next_poll_at": now}
            if job.handle is not None and job.handle.ready is not None:
                # The result now lives in result_json; keep one copy of the image bytes, not two.
                changes["handle"] = job.handle.model_copy(update={"ready": None})
            # Not if a Cancel click was written meanwhile (it does not wait for this step): that click has
            # been, or is being, told it was taken. The job's next step carries the cancel out instead.
            job = await self.store.update(job, now=now, state=JobState.SUCCEEDED, unless_cancelled=True, **changes)
            # Delivery is the other lane's work (bot/dispatch.py): this step ends, and the loop starts the
            # download and upload when the delivery lane has room, never holding up the polls of others.
            self.runner.wake()
            return
        category = update.error_category or (
            ErrorCategory.CANCELLED if update.status is UpdateStatus.CANCELLED else ErrorCategory.TRANSIENT
        )
        if update.text or update.usage:
            # What the model said instead of an image is worth showing ("I can't draw that because...").
            job = await self.store.update(job, now=now, result=JobResult(text=update.text, usage=update.usage))
        message = update.error_message or "The provider could not make this image."
        await self.runner.fail(job, category, message, detail=update.error_detail)
