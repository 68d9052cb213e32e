"""JobRunner: submit, one supervised poll loop, resume on start, cancel, deliver through a sink.

The runner is the loop and each job's step; its parts live beside it, each with its own state: held jobs
(bot/held_jobs.py), cancels (bot/cancel_requests.py), members' messages (bot/job_messages.py), the
schedule's learning (bot/schedule_learning.py), failover (bot/failover.py), result images
(bot/result_images.py) and lost creates (bot/lost_tasks.py). What each step does, by the job's state, lives
in its own module too: the create (bot/job_submit.py), the poll (bot/job_polls.py), the delivery
(bot/job_delivery.py) and the carrying out of a cancel (bot/job_cancelling.py).

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

from bot.budget import RequestBudget
from bot.cancel_requests import CancelRequests
from bot.catalogue import Catalogue
from bot.config import ImagineSettings, JobsSettings
from bot.dispatch import CALL_LANE, DELIVERY_LANE, LANES, PROVIDER_LANE, Lane, choose, full_shelves
from bot.errors import (
    ErrorCategory,
    ProviderError,
)
from bot.events import JobBlocked, NothingMade, RunnerEvent
from bot.failover import Failover
from bot.gcwatch import WATCH
from bot.held_jobs import BACK_TOO_LATE, HELD_FOR_SECONDS, HeldJobs
from bot.imagework import ImageWork
from bot.job_cancelling import Canceller
from bot.job_delivery import Deliverer
from bot.job_messages import JobMessages
from bot.job_polls import Poller
from bot.job_sink import JobSink
from bot.job_submit import Submitter
from bot.lost_tasks import LostTasks
from bot.models import JobState
from bot.providers.base import Provider
from bot.quotas import Quotas
from bot.result_files import ResultFiles
from bot.result_images import ResultImages, names_files
from bot.schedule_learning import ScheduleLearner
from bot.store.jobs import InTransaction, InvalidTransitionError, Job, JobStore, NewJob
from bot.store.lock import hold_database_file
from bot.store.refusals import log_refused_or_error, write_can_wait
from bot.waiting_requests import WaitingRequests

log = logging.getLogger(__name__)
T = TypeVar("T")

# The loop wakes at least every LOOP_MAX_SLEEP seconds, so the heartbeat is never older than that.
LOOP_MAX_SLEEP = 30.0
# While steps are running, the loop waits this long after one finishes for others to finish too.
COALESCE_SECONDS = 0.02
# How often the loop rewrites <database>.stats.json (and on stop).
STATS_EVERY_SECONDS = 5.0
# Due jobs the loop looks at per pass, so the budget can go to the likeliest-finished ones.
DUE_CANDIDATES = 256
# The most candidates one request may have (/imagine count): Discord shows up to four images of a
# message side by side, and a server can set a lower cap (/admin defaults max_count).
MAX_CANDIDATES = 4

# The end of a queued job whose deadline passed in this run before a slot let its create go (its provider
# paused, every lane full): the provider was never asked, so it did not "not finish" either.
NOT_SENT_IN_TIME = (
    "The bot could not send this request to the provider within {minutes} minute(s), so nothing was made. "
    "You were not charged; try again."
)

# The end of a job whose provider took it and was turned off since (a restart with it disabled): nothing can
# ask that provider about it, or collect its image, in this run.
PROVIDER_GONE = (
    "The provider `{provider}` that was making this image has been turned off on this bot, so the image cannot "
    "be collected. You were not charged; try again."
)

_FAILED_STATE_FOR = {
    ErrorCategory.CONTENT_BLOCKED: JobState.BLOCKED,
    ErrorCategory.CANCELLED: JobState.CANCELLED,
}


def waiting_in(task: asyncio.Task[Any]) -> str:
    """Where in the bot's own code ``task`` is waiting ("Poller.poll > ... > CookielessClient.send"):
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
        quotas: Quotas | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.store = store
        self.quotas = quotas
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
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self._busy: dict[Lane, int] = {}  # steps running per lane (bot/dispatch.py: each provider's own)
        # Providers whose create answers with the image itself: those creates take the call lane.
        self.call_providers = frozenset(
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
        self.called_back_jobs: set[str] = set()
        self.stopping = False
        self.errors = 0  # steps that raised unexpectedly; logged and counted, never fatal to the loop
        self.steps = 0  # job steps run since start
        self._stats_written = 0.0
        self._touched = 0.0
        # When this run began (``start``): a job whose deadline came before it ran out while the bot was down.
        self.started_at = clock()

        # The runner's parts, each owning its own state (docs/architecture.md section 2).
        # Cancels written down before the member is told they were taken, carried out by the steps.
        self.cancels = CancelRequests(store, clock, self.wake)
        # Jobs recorded before their member's answer is out, started once it is (or settled without it).
        self.held = HeldJobs(self)
        # Requests taken past their member's or their server's room at once: started in their turn.
        self.waiting = WaitingRequests(self)
        store.on_settled = self.waiting.slot_freed
        # What members' messages show, and when: progress paced, ends drawn and owed until they are.
        self.messages = JobMessages(self)
        # When each job is polled, taught by the jobs that finish.
        self.learner = ScheduleLearner(settings, store, catalogue, callback_fallback=callback_fallback)
        # Where a create goes when its provider fails it before accepting it, or has paused.
        self.failover = Failover(
            store, catalogue, providers, self.budgets, clock, self.wake, quotas.repricing if quotas else None
        )
        # One memory gate and one re-encode pool for all of this runner's deliveries (bot/imagework.py),
        # the gate shared with the transport's reading of answers that carry images (bot/app.py). Inline
        # results (Gemini, Segmind v1) wait for delivery as files, not in rows or memory.
        self.images = ResultImages(
            ResultFiles.beside(store.db.path), image_work or ImageWork.from_settings(imagine), http, imagine
        )
        # Jobs whose create went unanswered wait this long for a callback naming their task.
        self.lost_tasks = LostTasks(self, lost_task_wait)
        # Each kind of step, by the job's state: a queued job's create, a submitted one's poll, a succeeded
        # one's delivery; and the carrying out of cancels.
        self.submitter = Submitter(self)
        self.poller = Poller(self)
        self.deliverer = Deliverer(self)
        self.canceller = Canceller(self)

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every unfinished job from its row, then run the loop in the background."""
        self.started_at = self.clock()
        # A database this run created (a first start) is locked by its file now that it exists, before any job
        # is resumed: a second bot reaching it by another name (a hard link) is refused (bot/store/lock.py).
        hold_database_file(self.store.db.path)
        await self.learner.load()
        active = await self.store.count_active()
        if active:
            log.info("resuming %d unfinished job(s)", active)
        await self.held.recover()
        files = self.images.files
        if files.directory.is_dir():
            await asyncio.to_thread(files.sweep, await self.store.naming_result_files())
        self.in_background(self.canceller.tell_providers(), "tell-providers-cancelled")
        await self.messages.retry_owed()
        self.stopping = False
        # Tasks that called back while the last run was stopping (bot/lost_tasks.py), traced before the loop
        # steps any job: a job whose wait ended while the bot was down would otherwise fail "uncertain" at its
        # first step though a kept callback named its task in time.
        await self.lost_tasks.take_up_kept()
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
            for job_id, task in self.in_flight.items()
            if not self.store.is_cached(job_id) or task in self.messages.drawing_progress
        ]
        resumable = [*self._resumable, *drawing]
        for task in resumable:
            task.cancel()
        self.messages.stop_drawing_ends()
        waited = [task for task in self.in_flight.values() if task not in drawing] + [
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
        waiters = self._terminal_waiters.setdefault(job_id, [])
        waiters.append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            # A wait given up (its timeout, or its caller cancelled) leaves no future behind: a job ended by a
            # cancel, not by a step of its own, never has its waiters read again.
            if not future.done() or future.cancelled():
                with contextlib.suppress(ValueError):
                    waiters.remove(future)
                if not waiters and self._terminal_waiters.get(job_id) is waiters:
                    del self._terminal_waiters[job_id]

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
                timeout = min(max(next_at - now, 0.05 if not self.in_flight else 0.5), LOOP_MAX_SLEEP)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            if self._step_finished and self.in_flight:
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
            "in_flight": len(self.in_flight),
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
        kinds = LANES if self.call_providers else (PROVIDER_LANE, DELIVERY_LANE)  # no call lane without such providers
        free = sum(max(0, bounds[kind] - busy[kind]) for kind in kinds)
        agenda = await self.store.agenda(
            now,
            exclude=self.in_flight.keys(),
            limit=max(4 * free, DUE_CANDIDATES),
            skip=full_shelves(full, self.providers.keys(), self.call_providers),
        )
        picked = choose(
            agenda.due,
            slots=bounds,
            busy=self._busy,
            now=now,
            schedule=self.learner.schedule,
            budgets=self.budgets,
            confirmed=self.called_back_jobs,
            leaving=await self.failover.leaving(agenda.due),
            calls=self.call_providers,
        )
        return [(job_id, picked.lanes[job_id]) for job_id in picked.start], picked.waiting, agenda.next_at

    def _spawn(self, job_id: str, lane: Lane) -> asyncio.Task[None]:
        self.steps += 1
        self._busy[lane] = self._busy.get(lane, 0) + 1
        task = asyncio.create_task(self._guarded_step(job_id), name=f"job-{job_id}")
        self.in_flight[job_id] = task
        task.add_done_callback(functools.partial(self._step_done, job_id, lane))
        return task

    def _step_done(self, job_id: str, lane: Lane, _task: asyncio.Task[None]) -> None:
        self.in_flight.pop(job_id, None)
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
                self.lost_tasks.forget(job_id)
                self.called_back_jobs.discard(job_id)
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
            await self.deliverer.deliver(job)
            return
        if job.cancel_requested is not None:
            # A cancel written down and not carried out yet: the member's click is still being handled
            # (the job was made due at once), or the last process stopped first. Finish what they asked.
            log.info("job %s: cancel requested; carrying it out", job.id)
            await self.canceller.carry_out(job)
            return
        if self.messages.gone_unwritten(job.id):
            await self.messages.message_gone(job)
            return
        if job.waits_for is not None:
            # Before the deadline's check: a waiting request's deadline starts when it does.
            started = await self.waiting.start_if_turn(job)
            if started is None:
                return
            job, now = started, self.clock()
        if now >= job.deadline_at and not self.lost_tasks.waits(job):
            await self._past_deadline(job)
            return
        if job.state is JobState.QUEUED:
            await self.submitter.submit(job)
        else:
            await self.poller.poll(job)

    # ---- steps -----------------------------------------------------------------------------------

    def provider_of(self, job: Job) -> Provider:
        provider = self.providers.get(job.provider)
        if provider is None:
            raise ProviderError(
                f"The provider `{job.provider}` is not configured any more.",
                detail=f"provider {job.provider!r} missing from registry",
            )
        return provider

    def notify(self, event: RunnerEvent) -> None:
        try:
            self.sink.notify(event)
        except Exception:
            log.exception("could not pass on %s", event.name)

    async def _past_deadline(self, job: Job) -> None:
        """A job whose deadline has passed, by what it has been through (it is not being delivered, and no
        cancel waits on it). The provider is asked once more about a job it took: it may have finished while
        the bot was down (a restart after the deadline threw such an image away, made and billed, and told the
        member the provider had not finished). A job never sent ends saying why, with nothing made."""
        if job.state is not JobState.QUEUED:
            # Its image, if made, goes to the delivery lane, which has its own grace past the deadline
            # (bot/job_delivery.py DELIVERY_GRACE_SECONDS); still unfinished, it expires (``expire``).
            await self.poller.poll(job, last=True)
            return
        if job.submit_started_at is not None:
            # Its create may have left: failed "uncertain", uncharged, not sent again (bot/job_submit.py).
            await self.submitter.submit(job)
            return
        if job.deadline_at <= self.started_at:
            # Its time was up before this run began: the bot was down (taken during a stop's grace, or waiting
            # for a slot when it stopped), not the provider slow. The provider was never asked.
            log.info("job %s: never sent, and its deadline passed while the bot was down", job.id)
            message = BACK_TOO_LATE
        else:
            minutes = max(1, round(self.settings.deadline_seconds / 60))
            message = NOT_SENT_IN_TIME.format(minutes=minutes)
        await self.fail(job, ErrorCategory.EXPIRED, message, to=JobState.EXPIRED)

    async def provider_gone(self, job: Job, *, past_deadline: bool) -> None:
        """End a job its provider took, that provider no longer enabled here (a restart with it turned off):
        refunded, its member told why. Nothing asks it to stop (there is no adapter to ask with). Past its
        deadline it expires; before, it fails at once, as a create for that provider does (bot/job_submit.py):
        this run can never poll it, and waiting out the deadline only held the member's units. Before, the poll
        raised outside its own error handling: "step failed; will retry" with a traceback every
        max_poll_interval, and past the deadline (the last poll asked for since the bot is back after it) for
        ever, the job running and its reservation held."""
        log.warning("job %s: its provider %s is not enabled any more; ending it", job.id, job.provider)
        await self.fail(
            job,
            ErrorCategory.EXPIRED if past_deadline else ErrorCategory.INTERNAL,
            PROVIDER_GONE.format(provider=job.provider),
            detail=f"provider {job.provider!r} missing from registry",
            to=JobState.EXPIRED if past_deadline else JobState.FAILED,
        )

    async def expire(self, job: Job) -> None:
        """End a job its provider took and has not finished by its deadline (asked once more: ``_past_deadline``)."""
        if job.handle is not None:
            await self.canceller.at_provider(job)
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
        return await self.in_background(self.canceller.now(job_id), f"cancel-{job_id}")

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
        self._tell_waiters(job)  # a cancel ends a job outside its steps, which tell them otherwise
        if names_files(job):
            await self.images.discard(job)  # its image will never be shown
        if job.state is JobState.BLOCKED:
            self.notify(JobBlocked(job))
        if show and job.state is not JobState.CANCELLED:
            self.notify(NothingMade(job))

    def _tell_waiters(self, job: Job) -> None:
        """Those waiting for ``job`` to end (``wait_terminal``), told now that it has."""
        if job.terminal:
            for future in self._terminal_waiters.pop(job.id, []):
                if not future.done():
                    future.set_result(job)

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
        self.called_back_jobs.add(job_id)
        try:
            await self.store.note_poll(fresh, next_poll_at=self.clock())
        except Exception as exc:  # a job the store was not watching is written: that may be refused
            if not write_can_wait(exc):
                raise
            log.warning("job %s: a callback's wake-up was not written (%s); it is polled now all the same", job_id, exc)
        return True

    def backoff(self, attempt: int) -> float:
        base = self.settings.poll_interval_seconds
        return float(min(base * (1.5 ** max(0, attempt - 1)), self.settings.max_poll_interval_seconds))
