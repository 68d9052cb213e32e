"""JobRunner: submit, one supervised poll loop, resume on start, cancel, deliver through a sink.

The runner is the loop and each job's step; its parts live beside it, each with its own state: held jobs
(bot/held_jobs.py), cancels (bot/cancel_requests.py), members' messages (bot/job_messages.py), the
schedule's learning (bot/schedule_learning.py), failover (bot/failover.py), result images
(bot/result_images.py) and lost creates (bot/lost_tasks.py).

The job row is the source of truth. Each step reads the row, talks to one outside party, and writes the
row with a compare-and-set on state, so a crash between any two steps resumes from the row and never
sends a create twice: ``submit_started_at`` is written *before* the create leaves, and a queued job that
has it but no ``provider_job_id`` may have been accepted, so it is failed (uncharged) rather than re-sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bot.budget import MAX_RETRY_AFTER_SECONDS, RequestBudget
from bot.cancel_requests import CANCELLED_MESSAGE, CancelRequests
from bot.catalogue import Catalogue
from bot.config import ImagineSettings, JobsSettings
from bot.create_attempts import create_attempts
from bot.dispatch import CALL_LANE, DELIVERY_LANE, LANES, PROVIDER_LANE, Lane, choose, full_shelves
from bot.errors import (
    DeliveryError,
    ErrorCategory,
    InvalidRequestError,
    MessageGoneError,
    ProviderError,
    RateLimitedError,
)
from bot.events import JobBlocked, ProviderProblem, ProviderRecovered, RunnerEvent
from bot.failover import Failover
from bot.gcwatch import WATCH
from bot.held_jobs import HELD_FOR_SECONDS, HeldJobs
from bot.images import PreparedImage
from bot.imagework import ImageWork
from bot.job_messages import JobMessages
from bot.job_sink import Delivering, JobSink
from bot.lost_tasks import LostTasks
from bot.models import JobHandle, JobResult, JobState, JobUpdate, UpdateStatus
from bot.providers.base import Provider
from bot.references import ReferenceUnavailableError, check_references
from bot.result_files import ResultFiles
from bot.result_images import ResultImages, names_files
from bot.schedule_learning import ScheduleLearner, clock_start
from bot.store.jobs import InTransaction, InvalidTransitionError, Job, JobStore, NewJob
from bot.store.refusals import log_refused_or_error, write_can_wait, write_until_taken

log = logging.getLogger(__name__)
T = TypeVar("T")

# The loop wakes at least every LOOP_MAX_SLEEP seconds, so the heartbeat is never older than that.
LOOP_MAX_SLEEP = 30.0
# A succeeded job gets this long past its deadline to be delivered (Discord outages, slow downloads).
DELIVERY_GRACE_SECONDS = 600.0
MAX_DELIVERY_ATTEMPTS = 6
# Consecutive failed polls (5xx, garbage, timeouts) before we stop trusting the provider with this job.
MAX_POLL_ERRORS = 10
# While steps are running, the loop waits this long after one finishes for others to finish too.
COALESCE_SECONDS = 0.02
# How often the loop rewrites <database>.stats.json (and on stop).
STATS_EVERY_SECONDS = 5.0
# Due jobs the loop looks at per pass, so the budget can go to the likeliest-finished ones.
DUE_CANDIDATES = 256
# The most candidates one request may have (/imagine count): Discord shows up to four images of a
# message side by side, and a server can set a lower cap (/admin defaults max_count).
MAX_CANDIDATES = 4
# Reference downloads that time out or meet a 5xx are tried this often before the job fails.
MAX_REFERENCE_TRIES = 3

# Faults the bot's owner has to fix; reported to admins as well.
_PROVIDER_PROBLEMS = frozenset({ErrorCategory.OUT_OF_CREDIT, ErrorCategory.AUTH})

_FAILED_STATE_FOR = {
    ErrorCategory.CONTENT_BLOCKED: JobState.BLOCKED,
    ErrorCategory.CANCELLED: JobState.CANCELLED,
}


def waiting_in(task: asyncio.Task[Any]) -> str:
    """Where in the bot's own code ``task`` is waiting ("JobRunner._poll > ... > CookielessClient.send"):
    said when a stop gives up on it, so the operator learns what held the stop (a hung provider call, an
    upload Discord kept refusing) rather than only that something did."""
    chain: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and len(chain) < 64:
        frame = getattr(coro, "cr_frame", None)
        if frame is None:
            break
        if str(frame.f_globals.get("__name__", "")).startswith(("bot.", "cogs.")):
            chain.append(coro.cr_code.co_qualname)
        coro = getattr(coro, "cr_await", None)
    # The step's own wrappers say nothing; what it was doing (its first frame below them) and what it
    # waits on (the last two) do.
    chain = [name for name in chain if name not in ("JobRunner._guarded_step", "JobRunner._step")]
    if len(chain) > 3:
        chain = [chain[0], "...", *chain[-2:]]
    return " > ".join(chain) or "?"


class JobRunner:
    """Owns the poll loop. ``run_once()`` does one pass and waits for it, for tests and the CLI."""

    def __init__(
        self,
        store: JobStore,
        providers: Mapping[str, Provider],
        sink: JobSink,
        settings: JobsSettings,
        imagine: ImagineSettings,
        *,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        heartbeat: Path | None = None,
        catalogue: Catalogue | None = None,
        budgets: Mapping[str, RequestBudget] | None = None,
        callback_fallback: float = 60.0,
        lost_task_wait: float = 300.0,
        image_work: ImageWork | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.store = store
        self.heartbeat = heartbeat
        self.providers = providers
        self.sink = sink
        self.settings = settings
        self.imagine = imagine
        self.http = http
        self.clock = clock
        self.budgets: Mapping[str, RequestBudget] = budgets or {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._busy: dict[Lane, int] = {}  # steps running per lane (bot/dispatch.py: each provider's own)
        # Providers whose create answers with the image itself: those creates take the call lane.
        self._calls = frozenset(
            name for name, provider in providers.items() if any(not caps.queued for caps in provider.models.values())
        )
        # Final edits being retried, cancels being carried out, providers being told of cancels.
        self._background: set[asyncio.Task[Any]] = set()
        # Those of them that wait minutes between tries of something kept in SQLite (a final edit owed, a
        # held job's message looked for): a stop cancels them at once, the next start takes them up again.
        self._resumable: set[asyncio.Task[Any]] = set()
        self._step_finished = False
        self._locks: dict[str, asyncio.Lock] = {}
        self._terminal_waiters: dict[str, list[asyncio.Future[Job]]] = {}
        # Jobs a provider's callback says have ended: polled first, and timed from the callback.
        self._called_back: set[str] = set()
        self.stopping = False
        self.errors = 0  # steps that raised unexpectedly; logged and counted, never fatal to the loop
        self.steps = 0  # job steps run since start
        self._stats_written = 0.0
        self._touched = 0.0

        # The runner's parts, each owning its own state (docs/architecture.md section 2).
        # Cancels written down before the member is told they were taken, carried out by the steps.
        self.cancels = CancelRequests(store, clock, self.wake)
        # Jobs recorded before their member's answer is out, started once it is (or settled without it).
        self.held = HeldJobs(self)
        # What members' messages show, and when: progress paced, ends drawn and owed until they are.
        self.messages = JobMessages(self)
        # When each job is polled, taught by the jobs that finish.
        self.learner = ScheduleLearner(settings, store, catalogue, callback_fallback=callback_fallback)
        # Where a create goes when its provider fails it before accepting it, or has paused.
        self.failover = Failover(store, catalogue, providers, self.budgets, clock, self.wake)
        # One memory gate and one re-encode pool for all of this runner's deliveries (bot/imagework.py),
        # the gate shared with the transport's reading of answers that carry images (bot/app.py). Inline
        # results (Gemini, Segmind v1) wait for delivery as files, not in rows or memory.
        self.images = ResultImages(
            ResultFiles.beside(store.db.path), image_work or ImageWork.from_settings(imagine), http, imagine
        )
        # Jobs whose create went unanswered wait this long for a callback naming their task.
        self.lost_tasks = LostTasks(self, lost_task_wait)

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every unfinished job from its row, then run the loop in the background."""
        await self.learner.load()
        active = await self.store.count_active()
        if active:
            log.info("resuming %d unfinished job(s)", active)
        await self.held.recover()
        files = self.images.files
        if files.directory.is_dir():
            await asyncio.to_thread(files.sweep, await self.store.naming_result_files())
        self.in_background(self._tell_providers_cancelled(), "tell-providers-cancelled")
        await self.messages.retry_owed()
        self.stopping = False
        self._task = asyncio.create_task(self._supervise(), name="bananacord-job-loop")

    async def stop(self, grace: float = 0.0) -> None:
        """Start no new step; give the steps in flight ``grace`` seconds to finish, then cancel them.

        A step cancelled while its create is in flight leaves a job that may have been accepted, which a
        restart has to fail uncharged; a grace of a few seconds lets such a create get its id stored.
        """
        self.stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # A step whose job has ended (it left the store's cache) is only drawing that end, which is owed in
        # SQLite in the same transaction as the end; one drawing progress draws what its row already says.
        # The next start draws either, so nothing waits on them (an edit Discord keeps refusing, retried by
        # discord.py for up to ~25 s, held stops for the whole grace in bench/soak.py).
        drawing = [
            task
            for job_id, task in self._inflight.items()
            if not self.store.is_cached(job_id) or task in self.messages.drawing_progress
        ]
        resumable = [*self._resumable, *drawing]
        for task in resumable:
            task.cancel()
        self.messages.stop_drawing_ends()
        waited = [task for task in self._inflight.values() if task not in drawing] + [
            task for task in self._background if task not in self._resumable
        ]
        if waited and grace > 0:
            log.info("waiting up to %g s for %d job step(s) in flight", grace, len(waited))
            _, pending = await asyncio.wait(waited, timeout=grace)
            if pending:
                log.warning(
                    "cancelling %d job step(s) still running after %g s: %s",
                    len(pending),
                    grace,
                    "; ".join(sorted(f"{t.get_name()} in {waiting_in(t)}" for t in pending)[:10]),
                )
        tasks = waited + resumable
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # a cancel carried out for a member: its job row says what is left to do
                # A write another program's lock refused (a SIGTERM during an operator's edit) is a warning;
                # whoever awaited the task was told already, and the row keeps the cancel for the next start.
                log_refused_or_error(log, exc, "%s failed while the bot was stopping", task.get_name())
        # What is left to write is worth little beside a prompt exit: a database another program holds is
        # waited on for a moment, not busy_timeout.
        await self.store.db.impatient()
        try:
            await self.learner.flush()
        except Exception as exc:
            log_refused_or_error(log, exc, "could not record the last completion times")
        try:
            self.write_stats()
        except OSError as exc:
            log.warning("cannot write job stats: %s", exc.strerror)

    def wake(self) -> None:
        self._wake.set()

    async def create(self, new: NewJob, *, within: InTransaction | None = None, held: bool = False) -> Job:
        """Record a job (and, via ``within``, its quota reservation, in the same transaction).

        ``held`` jobs wait for ``held.release()`` (bot/held_jobs.py): the caller still has to acknowledge
        Discord and learn the message id, and a fast provider must not finish before there is a message to
        show it in.
        """
        (job,) = await self.create_batch([new], within=within, held=held)
        return job

    async def create_batch(
        self, news: Sequence[NewJob], *, within: InTransaction | None = None, held: bool = False
    ) -> list[Job]:
        """Record several candidates of one request as one batch (all or none; one job is no batch)."""
        now = self.clock()
        jobs = await self.store.create_batch(
            news,
            now=now,
            deadline_seconds=self.settings.deadline_seconds,
            within=within,
            start_at=now + HELD_FOR_SECONDS if held else None,
        )
        for job in jobs:
            batch = f" (#{job.batch_index} of batch {job.batch_id})" if job.batch_id else ""
            log.info("job %s created: %s/%s for user %s%s", job.id, job.provider, job.model, job.user_id, batch)
        self.wake()
        return jobs

    async def wait_terminal(self, job_id: str, timeout: float | None = None) -> Job:
        """Wait until the job reaches a terminal state (used by the CLI and tests)."""
        job = await self.store.get(job_id)
        if job is not None and job.terminal:
            return job
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._terminal_waiters.setdefault(job_id, []).append(future)
        return await asyncio.wait_for(future, timeout)

    # ---- the loop --------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        while not self.stopping:
            try:
                await self._loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.errors += 1
                log.exception("job loop crashed; restarting in 1 s")
                await asyncio.sleep(1.0)

    async def _loop(self) -> None:
        while not self.stopping:
            self._wake.clear()
            self._beat()
            started, waiting, next_at = await self._due()
            for job_id, lane in started:
                self._spawn(job_id, lane)
            if waiting:
                # Due jobs wait for a provider's budget: wake when it has room, not before.
                budget_at = min(waiting.values())
                next_at = budget_at if next_at is None else min(next_at, budget_at)
            now = self.clock()
            if next_at is None:
                timeout = LOOP_MAX_SLEEP
            else:
                # Jobs already in flight are due "now"; their tasks wake us when they finish.
                timeout = min(max(next_at - now, 0.05 if not self._inflight else 0.5), LOOP_MAX_SLEEP)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            if self._step_finished and self._inflight:
                # Steps finish in bursts under load; one pass of the loop for the whole burst instead of
                # one per step (each pass reads the due jobs from SQLite).
                self._step_finished = False
                await asyncio.sleep(COALESCE_SECONDS)

    def _beat(self) -> None:
        """Touch the heartbeat file so `bananacord health` can tell the loop is alive, and now and then
        write the counters beside it (``<database>.stats.json``, read by bench/load.py)."""
        if self.heartbeat is None:
            return
        now = time.monotonic()
        if now - self._touched < 1.0:
            return  # once a second is plenty for a check that allows minutes
        self._touched = now
        try:
            self.heartbeat.touch()
            if now - self._stats_written >= STATS_EVERY_SECONDS:
                self._stats_written = now
                self.write_stats()
        except OSError as exc:
            log.warning("cannot write heartbeat %s: %s", self.heartbeat, exc.strerror)

    def stats(self) -> dict[str, float | int]:
        return {
            "sqlite_statements": self.store.db.statements,
            "steps": self.steps,
            "errors": self.errors,
            "in_flight": len(self._inflight),
            "written_at": time.time(),
            **WATCH.figures(),
        }

    def write_stats(self) -> None:
        """Counters for benchmarks and operators: replaced whole, so a reader never sees half a file."""
        if self.heartbeat is None:
            return
        path = self.heartbeat.with_name(self.heartbeat.name.removesuffix(".heartbeat") + ".stats.json")
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.stats()), encoding="utf-8")
        partial.replace(path)

    async def _due(self) -> tuple[list[tuple[str, Lane]], dict[str, float], float | None]:
        """The jobs to start now with their lanes, the providers whose budget holds others back (until
        when), and when the next job falls due."""
        bounds = {
            PROVIDER_LANE: self.settings.concurrency,
            CALL_LANE: self.settings.call_concurrency,
            DELIVERY_LANE: self.settings.delivery_concurrency,
        }
        full = [lane for lane, running in self._busy.items() if running >= bounds[lane[0]]]
        now = self.clock()
        # Look past the free slots: when the budget binds, the likeliest-finished jobs go first. Jobs whose
        # lane is full are not looked at: none of them could start. The window is four times the free slots
        # of each kind of lane over all providers (at least DUE_CANDIDATES): every due job in it is ranked
        # (bot/dispatch.py), so it is no wider than what can start.
        busy = dict.fromkeys(LANES, 0)
        for (kind, _), running in self._busy.items():
            busy[kind] += running
        kinds = LANES if self._calls else (PROVIDER_LANE, DELIVERY_LANE)  # no call lane without such providers
        free = sum(max(0, bounds[kind] - busy[kind]) for kind in kinds)
        agenda = await self.store.agenda(
            now,
            exclude=self._inflight.keys(),
            limit=max(4 * free, DUE_CANDIDATES),
            skip=full_shelves(full, self.providers.keys(), self._calls),
        )
        picked = choose(
            agenda.due,
            slots=bounds,
            busy=self._busy,
            now=now,
            schedule=self.learner.schedule,
            budgets=self.budgets,
            confirmed=self._called_back,
            leaving=await self.failover.leaving(agenda.due),
            calls=self._calls,
        )
        return [(job_id, picked.lanes[job_id]) for job_id in picked.start], picked.waiting, agenda.next_at

    def _spawn(self, job_id: str, lane: Lane) -> asyncio.Task[None]:
        self.steps += 1
        self._busy[lane] = self._busy.get(lane, 0) + 1
        task = asyncio.create_task(self._guarded_step(job_id), name=f"job-{job_id}")
        self._inflight[job_id] = task
        task.add_done_callback(functools.partial(self._step_done, job_id, lane))
        return task

    def _step_done(self, job_id: str, lane: Lane, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(job_id, None)
        if (running := self._busy[lane] - 1) > 0:
            self._busy[lane] = running
        else:
            del self._busy[lane]  # only lanes with steps running are kept
        self._step_finished = True
        self._wake.set()

    async def run_once(self) -> int:
        """Process every job that is due now and wait for those steps; returns how many ran."""
        started, _, _ = await self._due()
        tasks = [self._spawn(job_id, lane) for job_id, lane in started]
        if tasks:
            await asyncio.gather(*tasks)
        return len(tasks)

    def lock(self, job_id: str) -> asyncio.Lock:
        """The job's own: one step, cancel or callback at a time acts on its row."""
        return self._locks.setdefault(job_id, asyncio.Lock())

    def drop_lock_if_ended(self, job_id: str) -> None:
        """An ended job's lock is not kept (a job that left the store's cache has ended: no SQL to find out)."""
        if not self.store.is_cached(job_id):
            self._locks.pop(job_id, None)

    async def _guarded_step(self, job_id: str) -> None:
        try:
            async with self.lock(job_id):
                job = await self.store.get(job_id)
                if job is not None and not job.terminal:
                    await self._step(job)
        except asyncio.CancelledError:
            raise
        except InvalidTransitionError as exc:
            log.info("job %s moved under us: %s", job_id, exc)
        except Exception as exc:
            self.errors += 1
            if write_can_wait(exc):
                # Not a fault of the bot's (another program holds the database, the disk is full): one line, not
                # a traceback per step for as long as it lasts.
                log.warning("job %s: step failed, the database refused a write (%s); will retry", job_id, exc)
            else:
                log.exception("job %s: step failed; will retry", job_id)
            await self._retry_later(job_id)
        finally:
            # Unfinished jobs stay in the store's cache; one that left it has ended (no SQL to find out).
            if not self.store.is_cached(job_id):
                self._locks.pop(job_id, None)
                self.messages.forget(job_id)
                self._called_back.discard(job_id)
                waiters = self._terminal_waiters.pop(job_id, [])
                ended = await self.store.get(job_id) if waiters else None
                if ended is not None and ended.terminal:
                    for future in waiters:
                        if not future.done():
                            future.set_result(ended)
                elif waiters:
                    self._terminal_waiters[job_id] = waiters

    async def _step(self, job: Job) -> None:
        now = self.clock()
        if job.state is JobState.SUCCEEDED:
            await self._deliver(job)
            return
        if job.cancel_requested is not None:
            # A cancel written down and not carried out yet: the member's click is still being handled
            # (the job was made due at once), or the last process stopped first. Finish what they asked.
            log.info("job %s: cancel requested; carrying it out", job.id)
            await self._carry_out_cancel(job)
            return
        if self.messages.gone_unwritten(job.id):
            await self.messages.message_gone(job)
            return
        if now >= job.deadline_at and not self.lost_tasks.waits(job):
            await self._expire(job)
            return
        if job.state is JobState.QUEUED:
            await self._submit(job)
        else:
            await self._poll(job)

    # ---- steps -----------------------------------------------------------------------------------

    def _provider(self, job: Job) -> Provider:
        provider = self.providers.get(job.provider)
        if provider is None:
            raise ProviderError(
                f"The provider `{job.provider}` is not configured any more.",
                detail=f"provider {job.provider!r} missing from registry",
            )
        return provider

    async def _submit(self, job: Job) -> None:
        if job.submit_started_at is not None:
            # The create may have left and its answer was never stored: the answer was lost, or we crashed.
            if self.lost_tasks.waits(job):
                if not self.lost_tasks.wait_over(job):
                    await self.lost_tasks.wait(job)
                    return
                await self.fail(job, ErrorCategory.UNCERTAIN, self.lost_tasks.gave_up(job))
                return
            await self.fail(
                job,
                ErrorCategory.UNCERTAIN,
                "The bot restarted while sending this request and cannot tell whether the provider got it, "
                "so it was not sent again (to avoid paying twice). You were not charged; try again.",
            )
            return
        try:
            provider = self._provider(job)
        except ProviderError as exc:
            await self.fail(job, ErrorCategory.AUTH, exc.user_message, detail=exc.detail)
            return
        if not job.tried_providers and not await self._references_usable(job):
            return
        if await self.failover.leave_paused_provider(job):
            return
        job = await self.store.update(job, now=self.clock(), submit_started_at=self.clock())
        try:
            handle, drawing = await self._send(provider, job)
        except InvalidRequestError as exc:
            # Found only by the adapter (e.g. a reference image that is not what it claims to be).
            await self.fail(job, ErrorCategory.BAD_INPUT, exc.user_message, detail=exc.detail)
            return
        except ProviderError as exc:
            log.warning("job %s: submit to %s failed (%s): %s", job.id, job.provider, exc.category, exc.detail)
            if exc.category in _PROVIDER_PROBLEMS:
                self._provider_health(job.provider, exc)
            if await self.failover.move(job, exc):
                return
            if exc.category is ErrorCategory.UNCERTAIN and self.lost_tasks.waits(job):
                await self.lost_tasks.wait(job, shown=True)
                return
            await self.fail(job, exc.category, exc.user_message, detail=exc.detail)
            return
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
        if self.catalogue is not None and job.provider in self.catalogue.unhealthy:
            self._provider_health(job.provider, None)
        # As written: its images now name their files (bot/result_files.py) rather than carry their bytes.
        handle = job.handle or handle
        if handle.ready is not None:
            # A synchronous API answered with the result itself: nothing to poll.
            await self._apply(job, handle.ready)
            return
        await self.messages.progress(job, force=True)

    async def record_created(self, job: Job, handle: JobHandle, *, started_at: float | None = None) -> Job:
        """Write what the create's answer says (the provider's task, or the image itself); kept in memory and
        tried again while the database refuses the write: the task exists and is billed. ``started_at``: when
        the task began, if not now (one taken up after its create's answer was lost)."""
        if handle.ready is not None and handle.ready.images:
            # Before the row: it then names files, and a restart finds them (bot/result_files.py).
            ready = handle.ready.model_copy(update={"images": await self.images.keep_inline(job, handle.ready.images)})
            handle = handle.model_copy(update={"ready": ready})
        now = self.clock()
        began = now if started_at is None else min(started_at, now)
        kind = self.learner.kind(job)
        first = self.learner.first_delay(job, kind, handle, elapsed=now - began)
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

    async def _send(self, provider: Provider, job: Job) -> tuple[JobHandle, asyncio.Task[None] | None]:
        """The create. Where the call is the drawing itself (the call lane: Gemini, Segmind v1) the job stays
        queued in its row until the image comes, so its message would say "Queued" all the while: it is
        redrawn ("Generating", bot/render.py) beside the call. That edit, if it is still in flight when the
        answer comes, is returned with it: the caller records the answer, then waits for the edit before
        anything shows the answer. A failed call waits for it before the failure is shown."""
        if job.provider not in self._calls:
            return await self._create(provider, job), None
        editing = asyncio.Event()
        shown = asyncio.create_task(self.messages.show_call(job, editing))
        try:
            with self.cancels.during_call(job.id):  # a Cancel lets go of the call
                handle = await self._create(provider, job)
        except BaseException as exc:
            stopped = isinstance(exc, asyncio.CancelledError) and self.stopping
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

    async def _create(self, provider: Provider, job: Job) -> JobHandle:
        """``provider.submit``, the row saying whether a create may be in flight while it retries
        (bot/create_attempts.py)."""
        with create_attempts(self.store, job, self.clock):
            return await provider.submit(job.request, job_id=job.id)

    async def _references_usable(self, job: Job) -> bool:
        """Judge the member's reference images by their bytes before any provider sees (and bills) them.

        A bad file ends the job uncharged with a message naming it; a download that may work later
        (timeout, 5xx) is tried again a few times, which is safe because nothing was sent yet.
        """
        try:
            await check_references(
                self.http,
                job.request.reference_images,
                max_bytes=self.imagine.max_attachment_bytes,
                timeout=self.imagine.download_timeout_seconds,
            )
        except InvalidRequestError as exc:
            await self.fail(job, ErrorCategory.BAD_INPUT, exc.user_message, detail=exc.detail)
            return False
        except ReferenceUnavailableError as exc:
            tries = job.poll_errors + 1
            if tries >= MAX_REFERENCE_TRIES:
                await self.fail(job, ErrorCategory.TRANSIENT, exc.user_message, detail=exc.detail)
                return False
            log.warning("job %s: reference download failed (try %d), will retry: %s", job.id, tries, exc.detail)
            now = self.clock()
            await self.store.update(job, now=now, poll_errors=tries, next_poll_at=now + self._backoff(tries))
            return False
        return True

    def _provider_health(self, provider: str, exc: ProviderError | None) -> None:
        """A provider needs its owner (``exc``: key rejected, no credit) or works again (None).

        It is tried last meanwhile (the catalogue's order, at once); recording and alerting are for
        whoever listens (bot/events.py).
        """
        if self.catalogue is not None:
            if exc is None:
                self.catalogue.unhealthy.discard(provider)
            else:
                self.catalogue.unhealthy.add(provider)
        self.notify(ProviderRecovered(provider) if exc is None else ProviderProblem(provider, exc))

    def notify(self, event: RunnerEvent) -> None:
        try:
            self.sink.notify(event)
        except Exception:
            log.exception("could not pass on %s", event.name)

    async def _poll(self, job: Job) -> None:
        assert job.handle is not None, "a submitted job always has a handle"
        provider = self._provider(job)
        try:
            update = await provider.poll(job.handle)
        except ProviderError as exc:
            if exc.retryable and job.poll_errors + 1 < MAX_POLL_ERRORS:
                log.warning("job %s: poll failed (%s), will retry: %s", job.id, exc.category, exc.detail)
                errors = job.poll_errors + 1
                now = self.clock()
                delay = self._backoff(errors)
                if isinstance(exc, RateLimitedError):
                    # The budget hook has paused every request to this provider already; this job also
                    # waits as long as the provider asked, up to the most any such wait is obeyed.
                    delay = max(delay, min(exc.retry_after or 0.0, MAX_RETRY_AFTER_SECONDS))
                await self.store.update(job, now=now, poll_errors=errors, next_poll_at=now + delay)
                return
            # We give up on this job; ask the provider to stop so nobody pays for an image never shown.
            await self._cancel_at_provider(job)
            await self.fail(job, exc.category, exc.user_message, detail=exc.detail)
            return
        await self._apply(job, update)

    async def _apply(self, job: Job, update: JobUpdate) -> None:
        now = self.clock()
        if update.status in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            new_state = JobState.RUNNING if update.status is UpdateStatus.RUNNING else job.state
            changed = new_state != job.state
            queued = update.status is UpdateStatus.QUEUED
            clock = clock_start(job, queued=queued, now=now)
            delay = self.learner.next_delay(job, update, clock=clock, now=now)
            self._called_back.discard(job.id)  # a callback that came early: back to the schedule
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
            await self.messages.progress(job, force=changed)
            return
        if update.status is UpdateStatus.SUCCEEDED:
            called_back = job.id in self._called_back
            if await self.learner.learn(job, now, called_back=called_back, in_flight=self._inflight):
                self._wake.set()
            current = await self.store.get(job.id)
            if current is not None and current.cancel_requested is not None:
                # The member called it off before the bot knew the image existed (a poll in flight when
                # they pressed Cancel): their word stands, as the acknowledged click promised. Nothing to
                # stop at the provider any more; they are not charged for it.
                log.info("job %s: finished at the provider after its member cancelled it; not delivered", job.id)
                await self._carry_out_cancel(current, ask_provider=False)
                return
            if not update.images:
                await self.fail(job, ErrorCategory.NO_IMAGE, "The model answered without an image. Try again.")
                return
            images = await self.images.keep_inline(job, update.images)
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
            self.wake()
            return
        category = update.error_category or (
            ErrorCategory.CANCELLED if update.status is UpdateStatus.CANCELLED else ErrorCategory.TRANSIENT
        )
        if update.text or update.usage:
            # What the model said instead of an image is worth showing ("I can't draw that because...").
            job = await self.store.update(job, now=now, result=JobResult(text=update.text, usage=update.usage))
        message = update.error_message or "The provider could not make this image."
        await self.fail(job, category, message, detail=update.error_detail)

    async def _deliver(self, job: Job) -> None:
        now = self.clock()
        if now >= job.deadline_at + DELIVERY_GRACE_SECONDS and job.delivery_attempts > 0:
            await self.fail(job, ErrorCategory.DELIVERY, DeliveryError.user_message, to=JobState.FAILED)
            return
        try:
            try:
                images = await self.images.prepare(job)
                if job.batch_id is None:
                    await self.sink.deliver(job, images)
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
                self.errors += 1
                log.exception("job %s: unexpected error while delivering", job.id)
                raise DeliveryError(detail=f"unexpected {type(unexpected).__name__}", retryable=True) from None
        except MessageGoneError as exc:
            # Deleted while the image was on its way (or while the bot was down, so it never heard): it
            # is what the member's deletion of a running job's message does, a silent uncharged cancel.
            log.info("job %s: its message is gone; the image is not shown (%s)", job.id, exc.detail)
            await self.fail(job, ErrorCategory.CANCELLED, exc.user_message, to=JobState.CANCELLED, show=False)
            await self.messages.message_gone(job)
            return
        except DeliveryError as exc:
            attempts = job.delivery_attempts + 1
            if exc.retryable and attempts < MAX_DELIVERY_ATTEMPTS:
                log.warning("job %s: delivery attempt %d failed, will retry: %s", job.id, attempts, exc.detail)
                job = await self.store.update(job, now=self.clock(), delivery_attempts=attempts)
                await self._reschedule(job, self._backoff(attempts))
                return
            log.warning("job %s: delivery failed: %s", job.id, exc.detail)
            await self.fail(job, ErrorCategory.DELIVERY, exc.user_message, detail=exc.detail)
            return
        # Delivered: the image is on Discord now; drop inline bytes so the database stays small.
        await self.store.update(
            job,
            now=self.clock(),
            state=JobState.DELIVERED,
            delivery_attempts=job.delivery_attempts + 1,
            result=job.result.without_inline_bytes(),
        )
        await self.images.discard(job)
        log.info("job %s delivered (%d image(s))", job.id, len(images))

    async def _deliver_candidate(self, job: Job, images: list[PreparedImage]) -> Job:
        """Add a batch candidate's images to the batch's message and record it delivered, as one step
        under the batch's lock: the next edit of that message, whichever candidate makes it, then lists
        these attachments to keep. A crash between the edit and the row leaves the job succeeded; its
        delivery runs again and replaces its own upload (an edit keeps only the attachments it lists)."""
        assert job.batch_id is not None
        async with self.messages.batch_lock(job.batch_id):
            batch = await self.store.batch(job.batch_id)
            self.messages.redrawn(job.batch_id)
            attachment_ids = await self.sink.show_batch(batch, Delivering(job, images))
            job = await self.store.update(
                job,
                now=self.clock(),
                state=JobState.DELIVERED,
                delivery_attempts=job.delivery_attempts + 1,
                result=job.result.without_inline_bytes(),
                attachment_ids=attachment_ids,
            )
        await self.images.discard(job)
        self.messages.forget_if_ended([job if j.id == job.id else j for j in batch])
        return job

    async def _expire(self, job: Job) -> None:
        if job.handle is not None:
            await self._cancel_at_provider(job)
        minutes = max(1, round(self.settings.deadline_seconds / 60))
        await self.fail(
            job,
            ErrorCategory.EXPIRED,
            f"The provider did not finish within {minutes} minute(s), so the job was stopped. "
            "You were not charged; try again.",
            to=JobState.EXPIRED,
        )

    async def cancel(self, job_id: str, *, by_user: int | None, message_gone: bool = False) -> Job | None:
        """Stop a job at the member's request, or because its message was deleted (``message_gone``: then
        there is nothing to show the end on). Returns the job as it ends up (None if unknown)."""
        # Written before the provider is asked: a bot killed while asking (a slow or lost call) would
        # otherwise poll the job on after a restart, and deliver and charge what the member called off.
        await self.cancels.request(job_id, by_user=by_user, message_gone=message_gone)
        # Tracked as the runner's own work, so a stopping bot waits for it (``stop``'s grace) before the
        # database closes, as it does for its steps.
        return await self.in_background(self._cancel_now(job_id), f"cancel-{job_id}")

    async def _cancel_now(self, job_id: str) -> Job | None:
        async with self.lock(job_id):
            job = await self.store.get(job_id)
            if job is None or job.terminal or job.state is JobState.SUCCEEDED or job.cancel_requested is None:
                return job  # an image that exists already is delivered rather than thrown away
            if self.stopping:
                return job  # written down: the next start carries it out
            await self._carry_out_cancel(job)
        return await self.store.get(job_id)

    async def _carry_out_cancel(self, job: Job, *, ask_provider: bool = True) -> None:
        """End the job as cancelled, uncharged, shown to the member at once; then ask the provider to stop
        it (if it has the job). The member does not wait on the provider's answer (a slow or hung cancel
        call took up to the request timeout, retries included); the row keeps ``cancel_requested`` until
        the provider has been asked, so a bot killed in between asks at its next start."""
        tell = ask_provider and job.handle is not None
        # Kept on the ended row until the provider has been asked (``_fail`` clears it otherwise).
        changes: dict[str, Any] = {"cancel_requested": job.cancel_requested} if tell else {}
        await self.fail(
            job,
            ErrorCategory.CANCELLED,
            CANCELLED_MESSAGE,
            to=JobState.CANCELLED,
            cancelled_by=job.cancelled_by,
            show=job.cancel_requested != "silent",
            **changes,
        )
        if tell:
            await self._tell_provider_cancelled(job)

    async def _tell_provider_cancelled(self, job: Job) -> None:
        await self._cancel_at_provider(job)
        try:
            await self.store.cancel_told(job.id)
        except Exception as exc:
            log_refused_or_error(log, exc, "job %s: could not record that its provider was asked to stop it", job.id)

    async def _tell_providers_cancelled(self) -> None:
        """Cancels a crash cut short after their end was written: the providers were never asked."""
        try:
            for job in await self.store.cancels_untold():
                log.info("job %s: cancelled before the bot stopped; asking its provider to stop it", job.id)
                if job.handle is None:
                    await self.store.cancel_told(job.id)
                else:
                    await self._tell_provider_cancelled(job)
        except Exception as exc:  # the rows stay marked: the next start asks again
            log_refused_or_error(log, exc, "could not ask the providers of cancelled jobs to stop them")

    async def _cancel_at_provider(self, job: Job) -> None:
        assert job.handle is not None
        try:
            accepted = await self._provider(job).cancel(job.handle)
            log.info("job %s: provider cancel %s", job.id, "accepted" if accepted else "refused")
        except ProviderError as exc:
            log.warning("job %s: provider cancel failed: %s", job.id, exc.detail)

    # ---- helpers ---------------------------------------------------------------------------------

    async def fail(
        self,
        job: Job,
        category: ErrorCategory,
        message: str,
        *,
        detail: str | None = None,
        to: JobState | None = None,
        cancelled_by: int | None = None,
        show: bool = True,
        **more: Any,
    ) -> None:
        """End the job without an image, uncharged (``category`` and ``message``: why, as its member reads
        it; ``to``: the state, else the category's), shown in its message unless ``show`` is False."""
        state = to or _FAILED_STATE_FOR.get(category, JobState.FAILED)
        if detail:
            log.info("job %s -> %s (%s): %s", job.id, state, category, detail)
        # A cancel asked for and overtaken by this end (the provider failed the job meanwhile, say) has
        # nothing left to do: the job is over and there is nothing to stop.
        changes: dict[str, Any] = {"error_category": category, "error_message": message, "cancel_requested": None}
        changes.update(more)
        if cancelled_by is not None:
            changes["cancelled_by"] = cancelled_by
        job = await self.messages.end(job, state, changes, show=show)
        if names_files(job):
            await self.images.discard(job)  # its image will never be shown
        if job.state is JobState.BLOCKED:
            self.notify(JobBlocked(job))

    def in_background(self, work: Coroutine[Any, Any, T], name: str, *, resumable: bool = False) -> asyncio.Task[T]:
        """Run ``work`` as the runner's own: ``stop`` gives it the grace its steps get, then cancels it.
        ``resumable``: what it does is kept in SQLite and taken up again by the next start, and it spends
        most of its time waiting between tries, so ``stop`` cancels it at once rather than wait on it (a
        retry half a minute away used to hold a SIGTERM for the whole grace)."""
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        if resumable:
            self._resumable.add(task)
            task.add_done_callback(self._resumable.discard)
        return task

    async def _retry_later(self, job_id: str) -> None:
        """After a failed step: the job is due again in ``max_poll_interval_seconds``. Kept in memory, as a
        poll's bookkeeping is: when the step failed on a refused write, a write here would fail the same way,
        and the job would stay due at once, stepped again and again."""
        try:
            job = await self.store.get(job_id)
            if job is not None and not job.terminal:
                later = self.clock() + self.settings.max_poll_interval_seconds
                await self.store.note_poll(job, next_poll_at=later)
        except Exception as exc:
            log.warning("job %s: could not put off its next step (%s)", job_id, exc)

    async def _reschedule(self, job: Job, delay: float) -> None:
        await self.store.update(job, now=self.clock(), next_poll_at=self.clock() + delay)

    async def called_back(self, provider: str, provider_job_id: str) -> bool:
        """A provider says this job has ended: poll it now (once, to confirm). False if not ours.

        A task the bot does not know may be one whose create's answer was lost: traced to its job in the
        background (bot/lost_tasks.py), and True while some job may be waiting for it."""
        job = await self.store.find_active(provider, provider_job_id)
        if job is None:
            return await self.lost_tasks.look_for(provider, provider_job_id)
        if job.state not in (JobState.SUBMITTED, JobState.RUNNING):
            return False
        async with self.lock(job.id):
            if not await self.wake_called_back(job.id, provider_job_id):
                return False
        self.wake()
        return True

    async def wake_called_back(self, job_id: str, provider_job_id: str) -> bool:
        """Under the job's lock: make it due at once, if it is still waiting on that task.

        The wake-up is poll bookkeeping, kept in memory (``note_poll``): a restart polls every unfinished job
        at once anyway, and a write here was refused whenever another program held the database, so the
        callback was answered 500 and logged at ERROR by aiohttp (bench/soak.py --callbacks, seed 152)."""
        fresh = await self.store.get(job_id)
        if (
            fresh is None
            or fresh.state not in (JobState.SUBMITTED, JobState.RUNNING)
            or fresh.provider_job_id != provider_job_id
        ):
            return False
        self._called_back.add(job_id)
        try:
            await self.store.note_poll(fresh, next_poll_at=self.clock())
        except Exception as exc:  # a job the store was not watching is written: that may be refused
            if not write_can_wait(exc):
                raise
            log.warning("job %s: a callback's wake-up was not written (%s); it is polled now all the same", job_id, exc)
        return True

    def _backoff(self, attempt: int) -> float:
        base = self.settings.poll_interval_seconds
        return float(min(base * (1.5 ** max(0, attempt - 1)), self.settings.max_poll_interval_seconds))
