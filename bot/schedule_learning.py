"""What the poll schedule learns from finished jobs, and when each job is polled next.

The schedule itself (bot/schedule.py) is pure: given a job's kind and how long it has run, it says when to
poll again. This part feeds it: each finished job teaches how long its kind takes (kept in SQLite through
restarts, bot/store/completions.py), and the moment a kind is first learned, the jobs in flight that were
planned blind are planned again (docs/architecture.md section 4.3).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Container

from bot.catalogue import Catalogue
from bot.config import JobsSettings
from bot.models import JobHandle, JobState, JobUpdate, UpdateStatus
from bot.schedule import CompletionTimes, PollSchedule, PollState, ScheduleSettings, backoff_pace, job_kind
from bot.store.completions import CompletionStore
from bot.store.jobs import InvalidTransitionError, Job, JobStore
from bot.store.refusals import log_refused_or_error

log = logging.getLogger(__name__)

# Completion times kept per kind of job for the learned schedule.
SCHEDULE_HISTORY = 200
# A job in flight is planned again when its kind is learned only if that brings its next poll this much closer.
REPLAN_GAIN_SECONDS = 0.5


def schedule_settings(settings: JobsSettings, *, callback_fallback: float = 60.0) -> ScheduleSettings:
    return ScheduleSettings(
        callback_fallback=callback_fallback,
        first=settings.poll_interval_seconds,
        ceiling=settings.max_poll_interval_seconds,
        dense=settings.dense_poll_seconds,
        learned=settings.poll_schedule == "learned",
        min_samples=settings.schedule_min_samples,
        history=SCHEDULE_HISTORY,
    )


def clock_start(job: Job, *, queued: bool, now: float) -> float:
    """When the schedule's clock started: time spent queued at the provider does not count."""
    if queued:
        return now
    start = job.clock_started_at if job.clock_started_at is not None else now
    if job.state is not JobState.RUNNING and job.last_queued_at is not None:
        # First seen running: it started somewhere between the last "queued" and now.
        start = (job.last_queued_at + now) / 2
    return start


class ScheduleLearner:
    """The runner's poll schedule, taught by the jobs that finish."""

    def __init__(
        self, settings: JobsSettings, store: JobStore, catalogue: Catalogue | None, *, callback_fallback: float
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.schedule = PollSchedule(
            schedule_settings(settings, callback_fallback=callback_fallback), CompletionTimes(SCHEDULE_HISTORY)
        )
        self.completions = CompletionStore(store.db, history=SCHEDULE_HISTORY)

    async def load(self) -> None:
        """What earlier runs learned (at start)."""
        for kind, earliest, latest in await self.completions.recent():
            self.schedule.times.add(kind, earliest, latest)

    async def flush(self) -> None:
        """Write the completion times not written yet (at stop)."""
        await self.completions.flush()

    def kind(self, job: Job) -> str:
        if job.schedule_kind is not None and job.schedule_kind.startswith(f"{job.provider}/"):
            return job.schedule_kind
        caps = self.catalogue.capabilities(job.provider, job.model) if self.catalogue is not None else None
        resolution = job.request.resolution or (caps.default_resolution if caps is not None else "default")
        return job_kind(job.provider, job.model, resolution, len(job.request.reference_images))

    def typical_seconds(self, job: Job) -> tuple[float, float] | None:
        """How long jobs like this one usually run once started, as learned (None until it is)."""
        return self.schedule.typical(self.kind(job))

    def first_delay(self, job: Job, kind: str, handle: JobHandle, *, elapsed: float) -> float:
        """When a task just created (``elapsed`` seconds ago) is first polled."""
        state = PollState(kind, elapsed=elapsed, polls=0, callback=handle.calls_back, pace=backoff_pace(job.id))
        return self.schedule.next_delay(state)

    def next_delay(self, job: Job, update: JobUpdate, *, clock: float, now: float) -> float:
        """When a task a poll found queued or running (``update``) is polled next."""
        return self.schedule.next_delay(
            PollState(
                self.kind(job),
                elapsed=now - clock,
                polls=job.attempts + 1,
                queued=update.status is UpdateStatus.QUEUED,
                progress=update.progress,
                queue_position=update.queue_position,
                callback=job.handle is not None and job.handle.calls_back,
                pace=backoff_pace(job.id),
            )
        )

    async def learn(self, job: Job, now: float, *, called_back: bool, in_flight: Container[str]) -> bool:
        """Record how long this job took, for the schedule of the next ones of its kind (and the "Usually
        takes" its members read). ``called_back``: the provider said when it ended. True if jobs waiting
        (those not ``in_flight``) were planned again to be polled sooner: the loop should look again."""
        if job.clock_started_at is None:
            return False
        if job.handle is not None and job.handle.ready is not None:
            # A call answered with the image (Gemini): never polled, it took from the create leaving until
            # its answer, to the moment. Nothing to plan, but members are told how long such calls take.
            if job.submit_started_at is None:
                return False
            earliest = latest = max(0.0, job.clock_started_at - job.submit_started_at)
        elif called_back:
            earliest = latest = now - job.clock_started_at  # the provider said when: no gap to be unsure about
        else:
            latest = now - job.clock_started_at
            # It finished between the last poll that saw it running and this one.
            last = max(job.last_poll_at or job.clock_started_at, job.clock_started_at)
            earliest = last - job.clock_started_at
        kind = self.kind(job)
        blind = not self.schedule.learned_for(kind)
        self.schedule.times.add(kind, earliest, latest)
        moved = await self._replan(now, in_flight) if blind and self.schedule.learned_for(kind) else 0
        try:
            await self.completions.add(kind, earliest, latest, now=now)
        except Exception as exc:
            log_refused_or_error(log, exc, "job %s: could not record its completion time", job.id)
        return moved > 0

    async def _replan(self, now: float, in_flight: Container[str]) -> int:
        """A kind has just been learned: the jobs in flight whose next poll was planned blind (the backoff,
        up to its ceiling away) are planned again by the window, if that brings their next poll closer.
        Without this the jobs of a first burst keep their blind waits: in bench/load.py, most of them."""
        moved = 0
        for entry in self.store.waiting():
            if entry.id in in_flight or entry.state not in (JobState.SUBMITTED, JobState.RUNNING):
                continue
            job = await self.store.get(entry.id)
            if job is None or job.handle is None or job.handle.calls_back or job.next_poll_at is None:
                continue
            queued = job.last_queued_at is not None and job.last_queued_at == job.last_poll_at
            if job.clock_started_at is None or queued:
                continue  # queued at the provider when last asked: the window does not apply yet
            kind = self.kind(job)
            if not self.schedule.learned_for(kind):
                continue
            state = PollState(kind, elapsed=now - job.clock_started_at, polls=max(1, job.attempts))
            sooner = now + self.schedule.next_delay(state)
            if sooner < job.next_poll_at - REPLAN_GAIN_SECONDS:
                with contextlib.suppress(InvalidTransitionError):
                    await self.store.note_poll(job, next_poll_at=sooner)
                    moved += 1
        if moved:
            log.info("schedule learned: %d job(s) in flight planned again", moved)
        return moved
