"""A queued job's step: judge its references, send the create, record the task (or the image) it made.

Part of the job runner (bot/jobs.py). ``submit_started_at`` is written *before* the create leaves, and a
queued job that has it but no ``provider_job_id`` may have been accepted, so it is failed uncharged (or
waits for a callback naming its task: bot/lost_tasks.py) rather than sent again. A create its provider
refused asking for a long wait (a 429's, Gemini's overload) moves to another provider, or waits in the
queue until it may go again (``_wait_out``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from bot.create_attempts import create_attempts
from bot.errors import (
    ErrorCategory,
    InvalidRequestError,
    ProviderError,
    RateLimitedError,
    ReferenceFetchError,
    ReferenceUnavailableError,
    SubmitUncertainError,
)
from bot.events import ProviderProblem, ProviderRecovered
from bot.models import JobHandle, JobState
from bot.providers._http import redact, shown
from bot.providers.base import Prefetched, Provider
from bot.references import CheckedReferences, ReferencePasses, check_references, download_cap
from bot.runner_part import RunnerPart
from bot.store.jobs import InvalidTransitionError, Job
from bot.store.refusals import write_can_wait, write_until_taken

if TYPE_CHECKING:
    from bot.jobs import JobRunner

log = logging.getLogger(__name__)

# Reference downloads that time out or meet a 5xx are tried this often before the job fails.
MAX_REFERENCE_TRIES = 3
# Faults the bot's owner has to fix; reported to admins as well.
_PROVIDER_PROBLEMS = frozenset({ErrorCategory.OUT_OF_CREDIT, ErrorCategory.AUTH})


class Submitter(RunnerPart):
    """Sends each queued job's create, once."""

    def __init__(self, runner: JobRunner) -> None:
        super().__init__(runner)
        # The references that passed lately: a batch's jobs check each link once (bot/references.py).
        self.passes = ReferencePasses()

    async def submit(self, job: Job) -> None:
        if job.submit_started_at is not None:
            # The create may have left and its answer was never stored: the answer was lost, or we crashed.
            if self.runner.lost_tasks.waits(job):
                if not self.runner.lost_tasks.wait_over(job):
                    await self.runner.lost_tasks.wait(job)
                    return
                await self.runner.fail(job, ErrorCategory.UNCERTAIN, self.runner.lost_tasks.gave_up(job))
                return
            await self.runner.fail(
                job,
                ErrorCategory.UNCERTAIN,
                "The bot restarted while sending this request and cannot tell whether the provider got it, "
                "so it was not sent again (to avoid paying twice). You were not charged; try again.",
            )
            return
        try:
            provider = self.runner.provider_of(job)
        except ProviderError as exc:
            await self.runner.fail(job, ErrorCategory.AUTH, exc.user_message, detail=exc.detail)
            return
        # The member's images are checked before the first create (a job moved to another provider was
        # checked at its first); kept for an adapter that sends them inline, which reads them from there.
        checked = CheckedReferences()
        if not job.tried_providers:
            inline = not provider.provider_fetches_references
            if (found := await self._references_checked(job, keep=inline)) is None:
                return
            checked = found
        with checked:
            sent = await self._send_checked(provider, job, checked)
        if sent is None:
            return
        job, handle, drawing = sent
        try:
            job = await self.record_created(job, handle)
        except BaseException:
            if drawing is not None:
                drawing.cancel()
            raise
        if drawing is not None:
            # The "Generating" edit drawn beside the call ends before anything shows the call's answer, so it
            # never lands over it. Awaited only now: the answer (an image, paid for) is in the row first, so a
            # stop that gives up on this wait (Discord refusing the edit, retried for up to ~25 s by
            # discord.py) leaves a job the next start delivers, not one it must call uncertain.
            try:
                await drawing
            except asyncio.CancelledError:
                drawing.cancel()
                raise
        log.info("job %s submitted to %s as %s", job.id, job.provider, handle.provider_job_id)
        # ``marked``, not ``in``: once a mark lapses (bot/catalogue.py Unhealthy) the provider is tried in turn
        # again, and the first job it takes is the news that it works again, for /admin providers too.
        if self.runner.catalogue is not None and self.runner.catalogue.unhealthy.marked(job.provider):
            self._provider_health(job.provider, None)
        # As written: its images now name their files (bot/result_files.py) rather than carry their bytes.
        handle = job.handle or handle
        if handle.ready is not None:
            # A synchronous API answered with the result itself: nothing to poll.
            await self.runner.poller.apply(job, handle.ready)
            return
        await self.runner.messages.progress(job, force=True)

    async def _send_checked(
        self, provider: Provider, job: Job, checked: CheckedReferences
    ) -> tuple[Job, JobHandle, asyncio.Task[None] | None] | None:
        """The create of a job whose references passed (``checked``: their files, if kept), once its provider
        takes requests and no Cancel came meanwhile; None where the job ended or waits instead."""
        if await self.runner.failover.leave_paused_provider(job):
            return None
        # A create that waited out its provider's request (``_wait_out``) waits no more: its message stops saying so.
        waited: dict[str, Any] = {"error_category": None, "error_message": None} if job.error_message else {}
        try:
            # Not over a Cancel taken while the references were read or a paused provider waited (written
            # without this job's lock): the create would leave for a task the member called off, made and
            # billed at the provider. The canceller waiting for this step, or the job's next one, carries it out.
            job = await self.store.update(
                job, now=self.clock(), unless_cancelled=True, submit_started_at=self.clock(), **waited
            )
        except InvalidTransitionError:
            return None
        try:
            handle, drawing = await self._send(provider, job, checked.files)
        except ReferenceFetchError as exc:
            # An adapter that downloads the references itself (Gemini sends them inline) could not: no
            # provider saw the request, so it is not titled as the provider's refusal.
            await self.runner.fail(job, ErrorCategory.REFERENCE, exc.user_message, detail=exc.detail)
            return None
        except ReferenceUnavailableError as exc:
            # Its download failed where a later one may not (a CDN 503 right after the bot's own check of the
            # link): no provider saw the request, so it may go again. It ended the job before.
            await self._reference_again(job, exc)
            return None
        except InvalidRequestError as exc:
            # Found only by the adapter (e.g. a reference image that is not what it claims to be).
            await self.runner.fail(job, ErrorCategory.BAD_INPUT, exc.user_message, detail=exc.detail)
            return None
        except ProviderError as exc:
            await self._refused(job, exc)
            return None
        except Exception as exc:
            if write_can_wait(exc):
                raise  # the database, not the provider: the runner logs it and the job's next step decides
            await self._refused(job, self._unreadable(job, exc))
            return None
        return job, handle, drawing

    async def _refused(self, job: Job, exc: ProviderError) -> None:
        """A create that failed: moved to another provider where that can help, else the job ends (or, its
        answer lost, waits for a callback naming its task: bot/lost_tasks.py; or, its provider having asked
        for a long wait, waits that out in the queue: ``_wait_out``)."""
        log.warning("job %s: submit to %s failed (%s): %s", job.id, job.provider, exc.category, exc.detail)
        if exc.category in _PROVIDER_PROBLEMS:
            self._provider_health(job.provider, exc)
        limited = exc if isinstance(exc, RateLimitedError) else None
        wait = None if limited is None else self.runner.failover.hold_off(job.provider, limited)
        if await self.runner.failover.move(job, exc):
            return
        if limited is not None and wait is not None and await self._wait_out(job, limited, wait):
            return
        if exc.category is ErrorCategory.UNCERTAIN and self.runner.lost_tasks.waits(job):
            await self.runner.lost_tasks.wait(job, shown=True)
            return
        await self.runner.fail(job, exc.category, exc.user_message, detail=exc.detail)

    async def _wait_out(self, job: Job, exc: RateLimitedError, wait: float) -> bool:
        """A create refused with a long wait asked for (bot/failover.py ``asked_wait``) that no other provider
        can take: back in the queue, due when the wait is over, if that is before its deadline (False: it is
        not, and the job ends as before). Before, the job ended at once, and one Gemini overload ("come back
        in 30 s") failed every job with nowhere else to go. Nothing was made (a 429 or an overload is the
        provider's answer, not a lost one), so the create may go again; its mark is cleared, so a restart
        meanwhile sends it again too. Its message says what it waits for and until when, from the row (the
        queued job's ``error_message``, cleared when the create leaves again: bot/delivery.py ``waiting_out``).
        """
        now = self.clock()
        if not now + wait < job.deadline_at:
            return False
        try:
            job = await self.store.update(
                job,
                now=now,
                # Not over a Cancel written meanwhile (it does not wait for this step): that job is due at once,
                # and its next step carries the cancel out, not in ``wait`` seconds.
                unless_cancelled=True,
                submit_started_at=None,
                next_poll_at=now + wait,
                error_category=exc.category,
                error_message=exc.what,
            )
        except InvalidTransitionError:
            return True
        log.info("job %s: %s asked for %.0f s; sending it again then", job.id, job.provider, wait)
        # Drawn once the gap since the message's last edit allows (``progress`` would leave it for the next
        # step, the create ``wait`` seconds away, which draws "Generating" instead).
        await self.runner.messages.show_call(job, asyncio.Event())
        return True

    @staticmethod
    def _unreadable(job: Job, exc: Exception) -> SubmitUncertainError:
        """A create that raised what no adapter meant to (an answer it did not expect, or its bug): it may have
        been accepted, so it counts as uncertain (uncharged, never sent again) and its member reads that the
        answer could not be read. Before, the exception escaped the step and the job's next step told its
        member "the bot restarted while sending this request", which was not so."""
        log.warning("job %s: create at %s raised %s", job.id, job.provider, type(exc).__name__, exc_info=True)
        return SubmitUncertainError(
            "The image provider's answer to this request could not be read, so the bot cannot tell whether it "
            "started the image; it was not sent again (to avoid paying twice). You were not charged; try again.",
            detail=redact(f"create at {job.provider} raised {type(exc).__name__}: {shown(redact(str(exc)))}"),
            provider=job.provider,
        )

    async def record_created(self, job: Job, handle: JobHandle, *, started_at: float | None = None) -> Job:
        """Write what the create's answer says (the provider's task, or the image itself); kept in memory and
        tried again while the database refuses the write: the task exists and is billed. ``started_at``: when
        the task began, if not now (one taken up after its create's answer was lost)."""
        if handle.ready is not None and handle.ready.images:
            # Before the row: it then names files, and a restart finds them (bot/result_files.py).
            ready = handle.ready.model_copy(
                update={"images": await self.runner.images.keep_inline(job, handle.ready.images)}
            )
            handle = handle.model_copy(update={"ready": ready})
        now = self.clock()
        began = now if started_at is None else min(started_at, now)
        kind = self.runner.learner.kind(job)
        first = self.runner.learner.first_delay(job, kind, handle, elapsed=now - began)
        created = job
        return await write_until_taken(
            lambda: self.store.update(
                created,
                now=now,
                state=JobState.SUBMITTED,
                handle=handle,
                provider_job_id=handle.provider_job_id,
                started_at=began,
                next_poll_at=now + first,
                schedule_kind=kind,
                clock_started_at=began,
                last_poll_at=None,
                last_queued_at=None,
            ),
            f"job {job.id}: the task {job.provider} created ({handle.provider_job_id})",
        )

    async def _send(
        self, provider: Provider, job: Job, prefetched: Prefetched
    ) -> tuple[JobHandle, asyncio.Task[None] | None]:
        """The create. Where the call is the drawing itself (the call lane: Gemini, Segmind v1) the job stays
        queued in its row until the image comes, so its message would say "Queued" all the while: it is
        redrawn ("Generating", bot/render.py) beside the call. That edit, if it is still in flight when the
        answer comes, is returned with it: the caller records the answer, then waits for the edit before
        anything shows the answer. A failed call waits for it before the failure is shown."""
        if job.provider not in self.runner.call_providers:
            return await self._create(provider, job, prefetched), None
        editing = asyncio.Event()
        shown = asyncio.create_task(self.runner.messages.show_call(job, editing))
        try:
            with self.runner.cancels.during_call(job.id):  # a Cancel lets go of the call
                handle = await self._create(provider, job, prefetched)
        except BaseException as exc:
            stopped = isinstance(exc, asyncio.CancelledError) and self.runner.stopping
            if editing.is_set() and not stopped:
                # Before the failure is shown, or the "Cancelled" of a Cancel that let go of the call: drawn
                # after this step, so over this edit. (_progress logs and swallows its own failures.)
                await shown
            else:
                shown.cancel()  # not begun; or a stop: the next start draws the job again
            raise
        if not editing.is_set():
            shown.cancel()  # a call answered within the edit gap: its answer is shown instead
            return handle, None
        return handle, shown

    async def _create(self, provider: Provider, job: Job, prefetched: Prefetched) -> JobHandle:
        """``provider.submit``, the row saying whether a create may be in flight while it retries
        (bot/create_attempts.py)."""
        with create_attempts(self.store, job, self.clock):
            return await provider.submit(job.request, job_id=job.id, prefetched=prefetched)

    async def _references_checked(self, job: Job, *, keep: bool) -> CheckedReferences | None:
        """Judge the member's reference images by their bytes before any provider sees (and bills) them: their
        files if ``keep`` (else none), or None where the job ended or goes back to the queue.

        A bad file ends the job uncharged with a message naming it; a download that may work later
        (timeout, 5xx) is tried again a few times, which is safe because nothing was sent yet. A reference
        that could not be fetched ends it as such (ErrorCategory.REFERENCE), not as the provider's refusal
        (BAD_INPUT): no provider saw it (a Vary whose source message was deleted before its download read
        "The provider refused the request").
        """
        member_max = self.runner.imagine.max_attachment_bytes
        catalogue = self.runner.catalogue
        caps = catalogue.capabilities(job.provider, job.model) if catalogue is not None else None
        # The provider's own limit, which routing held the declared sizes to: the bot's results, larger than
        # members may upload, are worked on again up to it (bot/references.py download_cap).
        provider_max = caps.max_reference_bytes if caps is not None else member_max
        try:
            return await check_references(
                self.runner.http,
                job.request.reference_images,
                max_bytes=lambda ref: download_cap(ref, member_max_bytes=member_max, provider_max_bytes=provider_max),
                timeout=self.runner.imagine.download_timeout_seconds,
                keep=keep,
                passes=self.passes,
            )
        except ReferenceFetchError as exc:
            await self.runner.fail(job, ErrorCategory.REFERENCE, exc.user_message, detail=exc.detail)
        except InvalidRequestError as exc:
            await self.runner.fail(job, ErrorCategory.BAD_INPUT, exc.user_message, detail=exc.detail)
        except ReferenceUnavailableError as exc:
            await self._reference_again(job, exc)
        return None

    async def _reference_again(self, job: Job, exc: ReferenceUnavailableError) -> None:
        """A reference's download failed in a way that may pass (a timeout, a 5xx): nothing went to a provider,
        so the job goes back to the queue, its create no longer marked as leaving, and tries again later (the
        references checked again first), up to MAX_REFERENCE_TRIES; then it ends as a reference not fetched."""
        tries = job.poll_errors + 1
        if tries >= MAX_REFERENCE_TRIES:
            await self.runner.fail(job, ErrorCategory.REFERENCE, exc.user_message, detail=exc.detail)
            return
        log.warning("job %s: reference download failed (try %d), will retry: %s", job.id, tries, exc.detail)
        now = self.clock()
        with contextlib.suppress(InvalidTransitionError):  # cancelled meanwhile: its next step carries it out
            await self.store.update(
                job,
                now=now,
                unless_cancelled=True,
                submit_started_at=None,
                poll_errors=tries,
                next_poll_at=now + self.runner.backoff(tries),
            )

    def _provider_health(self, provider: str, exc: ProviderError | None) -> None:
        """A provider needs its owner (``exc``: key rejected, no credit) or works again (None).

        It is tried last meanwhile (the catalogue's order, at once), until the mark lapses
        (bot/catalogue.py UNHEALTHY_RETRY_SECONDS) and it is tried in turn again;
        recording and alerting are for whoever listens (bot/events.py).
        """
        if self.runner.catalogue is not None:
            if exc is None:
                self.runner.catalogue.unhealthy.discard(provider)
            else:
                self.runner.catalogue.unhealthy.add(provider)
        self.runner.notify(ProviderRecovered(provider) if exc is None else ProviderProblem(provider, exc))
