"""Carrying out a cancel: the job ends uncharged at once, then its provider is asked to stop it.

Part of the job runner (bot/jobs.py). The cancel was written down first (bot/cancel_requests.py); the row
keeps ``cancel_requested`` until the provider has been asked, so a bot killed in between asks at its next
start (``tell_providers``).
"""

from __future__ import annotations

import logging
from typing import Any

from bot.cancel_requests import CANCELLED_MESSAGE
from bot.errors import ErrorCategory, ProviderError
from bot.models import JobState
from bot.runner_part import RunnerPart
from bot.store.jobs import Job
from bot.store.refusals import log_refused_or_error

log = logging.getLogger(__name__)


class Canceller(RunnerPart):
    """Ends cancelled jobs and tells their providers."""

    async def now(self, job_id: str) -> Job | None:
        async with self.runner.lock(job_id):
            job = await self.store.get(job_id)
            if job is None or job.terminal or job.state is JobState.SUCCEEDED or job.cancel_requested is None:
                return job  # an image that exists already is delivered rather than thrown away
            if self.runner.stopping:
                return job  # written down: the next start carries it out
            await self.carry_out(job)
        return await self.store.get(job_id)

    async def carry_out(self, job: Job, *, ask_provider: bool = True) -> None:
        """End the job as cancelled, uncharged, shown to the member at once; then ask the provider to stop
        it (if it has the job). The member does not wait on the provider's answer (a slow or hung cancel
        call took up to the request timeout, retries included); the row keeps ``cancel_requested`` until
        the provider has been asked, so a bot killed in between asks at its next start."""
        tell = ask_provider and job.handle is not None
        # Kept on the ended row until the provider has been asked (``_fail`` clears it otherwise).
        changes: dict[str, Any] = {"cancel_requested": job.cancel_requested} if tell else {}
        await self.runner.fail(
            job,
            ErrorCategory.CANCELLED,
            CANCELLED_MESSAGE,
            to=JobState.CANCELLED,
            cancelled_by=job.cancelled_by,
            show=job.cancel_requested != "silent",
            **changes,
        )
        if tell:
            await self._tell_provider(job)

    async def _tell_provider(self, job: Job) -> None:
        await self.at_provider(job)
        try:
            await self.store.cancel_told(job.id)
        except Exception as exc:
            log_refused_or_error(log, exc, "job %s: could not record that its provider was asked to stop it", job.id)

    async def tell_providers(self) -> None:
        """Cancels a crash cut short after their end was written: the providers were never asked."""
        try:
            for job in await self.store.cancels_untold():
                log.info("job %s: cancelled before the bot stopped; asking its provider to stop it", job.id)
                if job.handle is None:
                    await self.store.cancel_told(job.id)
                else:
                    await self._tell_provider(job)
        except Exception as exc:  # the rows stay marked: the next start asks again
            log_refused_or_error(log, exc, "could not ask the providers of cancelled jobs to stop them")

    async def at_provider(self, job: Job) -> None:
        """Ask the job's provider to stop it. Never raises (but for a stop's CancelledError): the job ends
        whatever the provider answers, and a cancel that could not be sent is only logged. Before, anything
        but a ProviderError (a malformed cancel link's ValueError) escaped, and a job its deadline or its
        member had ended was stepped again, and failed again, for ever."""
        assert job.handle is not None
        try:
            accepted = await self.runner.provider_of(job).cancel(job.handle)
            log.info("job %s: provider cancel %s", job.id, "accepted" if accepted else "refused")
        except ProviderError as exc:
            log.warning("job %s: provider cancel failed: %s", job.id, exc.detail)
        except Exception as exc:  # a bug or an answer no adapter expected: once per job, with its traceback
            log.warning("job %s: provider cancel failed unexpectedly: %s", job.id, type(exc).__name__, exc_info=True)
