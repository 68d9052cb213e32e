"""A succeeded job's step: prepare its images and show them to the member (bot/delivery.py, the sink).

Part of the job runner (bot/jobs.py). A failed upload is tried again a few times; a message deleted while
its image was on the way ends the job as a silent, uncharged cancel.
"""

from __future__ import annotations

import logging

from bot.errors import DeliveryError, ErrorCategory, MessageGoneError, UploadTooLargeError
from bot.events import ImageReady
from bot.images import PreparedImage
from bot.job_sink import Delivering
from bot.models import JobState
from bot.result_images import DEFAULT_UPLOAD_LIMIT
from bot.runner_part import RunnerPart
from bot.store.jobs import InvalidTransitionError, Job
from bot.store.refusals import write_can_wait

log = logging.getLogger(__name__)

# A succeeded job gets this long past its deadline to be delivered (Discord outages, slow downloads).
DELIVERY_GRACE_SECONDS = 600.0
MAX_DELIVERY_ATTEMPTS = 6


class Deliverer(RunnerPart):
    """Delivers succeeded jobs, alone or as a batch's candidate."""

    async def deliver(self, job: Job) -> None:
        now = self.clock()
        if now >= job.deadline_at + DELIVERY_GRACE_SECONDS and job.delivery_attempts > 0:
            await self.runner.fail(job, ErrorCategory.DELIVERY, DeliveryError.user_message, to=JobState.FAILED)
            return
        try:
            try:
                images = await self.runner.images.prepare(job)
                if job.batch_id is None:
                    await self.runner.sink.deliver(job, images)
                else:
                    job = await self._deliver_candidate(job, images)
                    log.info("job %s delivered (%d image(s)) as #%s of its batch", job.id, len(images), job.batch_index)
                    return
            except (DeliveryError, InvalidTransitionError):
                raise  # a transition lost to another task is the step's to report (_guarded_step)
            except Exception as unexpected:
                if write_can_wait(unexpected):
                    # The database refused the row (another program's lock, a full disk): not the upload's
                    # fault, nor an attempt spent. The step is put off (_guarded_step) and shown again then,
                    # which replaces its own upload.
                    raise
                # An error nobody mapped (a library's own exception, a bug) still counts as a failed
                # attempt, so the job ends settled instead of being retried every few seconds forever.
                self.runner.errors += 1
                log.exception("job %s: unexpected error while delivering", job.id)
                raise DeliveryError(detail=f"unexpected {type(unexpected).__name__}", retryable=True) from None
        except MessageGoneError as exc:
            # Deleted while the image was on its way (or while the bot was down, so it never heard): it
            # is what the member's deletion of a running job's message does, a silent uncharged cancel.
            log.info("job %s: its message is gone; the image is not shown (%s)", job.id, exc.detail)
            await self.runner.fail(job, ErrorCategory.CANCELLED, exc.user_message, to=JobState.CANCELLED, show=False)
            await self.runner.messages.message_gone(job)
            return
        except DeliveryError as exc:
            attempts = job.delivery_attempts + 1
            lower = _lower_limit(job, exc)
            if lower is not None and attempts < MAX_DELIVERY_ATTEMPTS:
                # The server's upload limit fell since the job began (a boost lost): the image, made and paid
                # for, is prepared again to fit (re-encoded, bot/result_images.py) rather than thrown away.
                log.warning("job %s: upload refused as too large; preparing it again for %d bytes", job.id, lower)
                now = self.clock()
                await self.store.update(job, now=now, delivery_attempts=attempts, upload_limit=lower, next_poll_at=now)
                return
            if exc.retryable and attempts < MAX_DELIVERY_ATTEMPTS:
                log.warning("job %s: delivery attempt %d failed, will retry: %s", job.id, attempts, exc.detail)
                now = self.clock()
                delay = self.runner.backoff(attempts)
                await self.store.update(job, now=now, delivery_attempts=attempts, next_poll_at=now + delay)
                return
            log.warning("job %s: delivery failed: %s", job.id, exc.detail)
            await self.runner.fail(job, ErrorCategory.DELIVERY, exc.user_message, detail=exc.detail)
            return
        # Delivered: the image is on Discord now; drop inline bytes so the database stays small.
        await self.store.update(
            job,
            now=self.clock(),
            state=JobState.DELIVERED,
            delivery_attempts=job.delivery_attempts + 1,
            result=job.result.without_inline_bytes(),
        )
        await self.runner.images.discard(job)
        log.info("job %s delivered (%d image(s))", job.id, len(images))
        self.runner.notify(ImageReady(job))

    async def _deliver_candidate(self, job: Job, images: list[PreparedImage]) -> Job:
        """Add a batch candidate's images to the batch's message and record it delivered, as one step
        under the batch's lock: the next edit of that message, whichever candidate makes it, then lists
        these attachments to keep. A crash between the edit and the row leaves the job succeeded; its
        delivery runs again and replaces its own upload (an edit keeps only the attachments it lists)."""
        assert job.batch_id is not None
        async with self.runner.messages.batch_lock(job.batch_id):
            batch = await self.store.batch(job.batch_id)
            self.runner.messages.redrawn(job.batch_id)
            attachment_ids = await self.runner.sink.show_batch(batch, Delivering(job, images))
            job = await self.store.update(
                job,
                now=self.clock(),
                state=JobState.DELIVERED,
                delivery_attempts=job.delivery_attempts + 1,
                result=job.result.without_inline_bytes(),
                attachment_ids=attachment_ids,
            )
        await self.runner.images.discard(job)
        self.runner.messages.forget_if_ended([job if j.id == job.id else j for j in batch])
        if not any(j.state is JobState.DELIVERED for j in batch if j.id != job.id):
            self.runner.notify(ImageReady(job))  # the batch's first image: its member may come and look
        return job


def _lower_limit(job: Job, exc: DeliveryError) -> int | None:
    """The server's upload limit now, where Discord refused the upload as too large and that limit is lower than
    the one the job's images were prepared for; else None."""
    if not isinstance(exc, UploadTooLargeError) or exc.limit_now is None:
        return None
    prepared_for = job.upload_limit or DEFAULT_UPLOAD_LIMIT
    return exc.limit_now if exc.limit_now < prepared_for else None
