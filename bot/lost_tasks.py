"""Creates whose answer was lost, found again through the provider's callback.

A create that times out, or is answered 504 or a 2xx without a task id, may have made a task the provider
bills. None of these APIs takes an idempotency key, so the create is never sent again, and by default the job
fails "uncertain" (refunded). kie.ai can do better when callbacks are enabled: the bot puts the job's id in
``callBackUrl`` (bot/providers/kie.py ``callback_url_for``), Kie calls back when the task ends, and the
task's record (``recordInfo``) returns the create body as sent, ``callBackUrl`` included. So such a job waits,
still "Generating", for up to ``[callbacks] lost_task_wait_seconds``; a signed callback naming a task the bot
does not know makes the runner ask Kie whose task it is, and the job that sent it adopts it as if the create's
answer had arrived. A job still waiting when the time is up fails "uncertain" as before, refunded; so does
one whose create was in flight when the bot stopped, if no callback names its task by then.

The wait is kept in the job's row as it always was (``state = queued`` with ``submit_started_at``): nothing
new is written, and a restart finds the job waiting. What the callback claims is never trusted: only Kie's
own record, asked with the bot's key, names the job.

A callback that comes while the bot is stopping (SIGTERM's grace, when a create cut short by the stop is the
likeliest to be lost) is not traced then: the runner starts no new work. Its task is kept in a small file
beside the database (``<database>.lost-task-callbacks``, ``LostTasks.kept_path``), and the next start traces
it as if the callback had just come. Before, such a callback was answered 404 and spent: the job failed
"uncertain" after the restart though Kie had made, and billed, its image.

A kept callback is word that came within its job's wait, whenever the next start comes (within a day,
``KEPT_FOR_SECONDS``): the kept tasks are traced before the runner's loop steps any job (``take_up_kept``,
from ``JobRunner.start``), and a job that may be the one a kept task names does not fail "uncertain" at its
wait's end while that task is being traced (``wait_over``). Before, a start after the wait lost the image
twice over: the loop, started first, failed the job at its first step, and the kept task, called back more
than the wait ago, was dropped untraced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import AuthError, InvalidRequestError, ProviderError
from bot.models import JobState
from bot.providers.base import FindsLostTasks, Provider
from bot.store.jobs import Job
from bot.store.refusals import log_refused_or_error, write_until_taken

if TYPE_CHECKING:
    from bot.jobs import JobRunner

log = logging.getLogger(__name__)

# Waits before asking a provider again whose task a callback named, when it failed to answer.
ASK_AGAIN_SECONDS = (1.0, 3.0, 9.0)
# Tasks called back during a stop kept for the next start, at most (only signed callbacks get that far).
MAX_KEPT = 1000
# A kept task is traced by a start within this long of its callback; one older is dropped untraced. Its
# callback came within its job's wait, which is what makes it valid, so a restart after that wait still
# traces it; but a bot down for longer has members who long gave up on their image.
KEPT_FOR_SECONDS = 86_400.0
# How often a job whose wait is over, held for a kept task being traced that may be its, is looked at again.
HELD_RECHECK_SECONDS = 1.0


def kept_path_for(database: Path) -> Path:
    """Where the tasks called back while the bot was stopping wait for the next start, beside the database."""
    return database.with_name(database.name + ".lost-task-callbacks")


def lost_task_finder(providers: Mapping[str, Provider], name: str) -> FindsLostTasks | None:
    """The provider ``name`` if it can trace a task back to its job as configured, else None."""
    provider: object = providers.get(name)  # any Provider may also be one (mypy cannot intersect them)
    if isinstance(provider, FindsLostTasks) and provider.finds_lost_tasks:
        return provider
    return None


def create_unanswered(job: Job) -> bool:
    """A create left for this job and its answer never came: it may have made a task."""
    return job.state is JobState.QUEUED and job.submit_started_at is not None


def _create_left(job: Job) -> float:
    return job.submit_started_at if job.submit_started_at is not None else job.created_at


def waits_until(job: Job, wait_seconds: float) -> float:
    """When a job whose create went unanswered stops waiting for its task's callback: ``wait_seconds`` after
    the create left, and no later than the job's deadline."""
    return min(job.deadline_at, _create_left(job) + wait_seconds)


def gave_up_message(job: Job, wait_seconds: float) -> str:
    """What the member reads when the wait ends with no task found: how long it was (a deadline may have
    cut it short of ``wait_seconds``)."""
    minutes = max(1, round((waits_until(job, wait_seconds) - _create_left(job)) / 60))
    return (
        "The provider never confirmed this request, and no image from it was reported within "
        f"{minutes} minute(s), so the bot stopped waiting (it is not sent again, to avoid paying twice). "
        "You were not charged; try again."
    )


class LostTasks:
    """The job runner's waits for lost tasks, and the tracing of a called-back task to the job that sent it."""

    def __init__(self, runner: JobRunner, wait_seconds: float) -> None:
        self.runner = runner
        self.wait_seconds = wait_seconds  # [callbacks] lost_task_wait_seconds
        self._tracing: set[str] = set()  # the tasks being traced to their job
        # Jobs whose wait began in this process (``wait``). A job whose step is running and is not among them
        # is sending its create now: its row looks the same as a create never answered (queued, marked), but
        # nothing is unconfirmed yet.
        self._waiting: set[str] = set()
        # Where tasks called back while the runner was stopping are kept for the next start (set by the app,
        # beside the database; None: not kept), and those kept: task id -> (provider, when it called back).
        self.kept_path: Path | None = None
        self._kept: dict[str, tuple[str, float]] = {}

    def waits(self, job: Job) -> bool:
        """Its create went unanswered, and its provider can name the task it may have made."""
        return create_unanswered(job) and lost_task_finder(self.runner.providers, job.provider) is not None

    def forget(self, job_id: str) -> None:
        """The job has ended."""
        self._waiting.discard(job_id)

    def waiting_until(self, job: Job) -> float | None:
        """When the wait of a job whose create went unanswered ends (None: it is not waiting for its task).
        Said in its message: a batch's message, redrawn for another candidate while this one's create was
        still on its way, called that create "never answered"."""
        if not self.waits(job):
            self._waiting.discard(job.id)
            return None
        if job.id in self.runner.in_flight and job.id not in self._waiting:
            return None  # its create is being sent
        return self._until(job)

    def wait_over(self, job: Job) -> bool:
        """Whether the wait of a job that ``waits`` has ended (it then fails "uncertain": ``gave_up``). Not
        while a task kept from the last stop that may be this job's is being traced (``_held``)."""
        return self.runner.clock() >= waits_until(job, self.wait_seconds) and not self._held(job)

    def _held(self, job: Job) -> bool:
        """A task that called back while the last run was stopping, after this job's create left and before
        its wait ended, is being traced now: it may be this job's, which then adopts it, whatever the time."""
        if not create_unanswered(job):
            return False
        left, until = _create_left(job), waits_until(job, self.wait_seconds)
        return any(
            provider == job.provider and task_id in self._tracing and left <= at <= until
            for task_id, (provider, at) in self._kept.items()
        )

    def _until(self, job: Job) -> float:
        """When the job is looked at again: its wait's end, or, held past it (``_held``), in a moment."""
        until = waits_until(job, self.wait_seconds)
        if self._held(job):
            until = max(until, self.runner.clock() + HELD_RECHECK_SECONDS)
        return until

    def gave_up(self, job: Job) -> str:
        return gave_up_message(job, self.wait_seconds)

    async def wait(self, job: Job, *, shown: bool = False) -> None:
        """Leave the job queued with its create's mark, due when its wait ends; ``shown``: just begun, so
        the member sees it generating (it may well be) rather than "Queued"."""
        runner = self.runner
        self._waiting.add(job.id)
        fresh = await runner.store.get(job.id) or job
        until = self._until(fresh)
        if shown:
            log.info(
                "job %s: %s never answered its create; waiting until %.0f s from now for a callback naming its task",
                job.id,
                job.provider,
                until - runner.clock(),
            )
        fresh = await write_until_taken(
            lambda: runner.store.update(fresh, now=runner.clock(), next_poll_at=until),
            f"job {job.id}: the wait for its lost task",
        )
        if shown:
            await runner.messages.progress(fresh, force=True)

    async def look_for(self, provider: str, task_id: str) -> bool:
        """A callback named a task no job knows: traced to its job in the background if some job of that
        provider may be waiting for it (True), else False (not ours)."""
        runner = self.runner
        finder = lost_task_finder(runner.providers, provider)
        if finder is None or not await runner.store.has_unanswered_create(provider):
            return False
        if runner.stopping:
            # No new work while stopping: kept for the next start to trace (False: the endpoint answers 503,
            # try again later, rather than 404).
            self._keep(provider, task_id)
            return False
        if task_id not in self._tracing:
            self._tracing.add(task_id)
            runner.in_background(self._trace(finder, task_id), f"trace-{provider}-task")
        return True

    def _keep(self, provider: str, task_id: str) -> None:
        if self.kept_path is None:
            return
        if task_id not in self._kept and len(self._kept) >= MAX_KEPT:
            log.warning("%s task %s called back while the bot was stopping; too many kept already", provider, task_id)
            return
        self._kept[task_id] = (provider, self.runner.clock())
        if self._write_kept():
            log.info("%s task %s called back while the bot was stopping; kept for the next start", provider, task_id)

    def _write_kept(self) -> bool:
        """The kept tasks to their file (removed when none are left); False, logged, if the disk refused."""
        path = self.kept_path
        if path is None:
            return False
        try:
            if not self._kept:
                path.unlink(missing_ok=True)
                return True
            entries = [{"provider": p, "task": t, "at": at} for t, (p, at) in self._kept.items()]
            part = path.with_name(path.name + ".part")
            # Written aside and renamed: a kill halfway leaves the old list, never a torn one.
            part.write_text(json.dumps(entries), encoding="utf-8")
            os.replace(part, path)
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc.strerror or exc)
            return False
        return True

    def _read_kept(self) -> dict[str, tuple[str, float]]:
        path = self.kept_path
        if path is None:
            return {}
        try:
            entries: Any = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s); the tasks called back during the last stop are not traced", path, exc)
            return {}
        kept: dict[str, tuple[str, float]] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            provider, task_id, at = entry.get("provider"), entry.get("task"), entry.get("at")
            if isinstance(provider, str) and isinstance(task_id, str) and isinstance(at, int | float):
                kept[task_id] = (provider, float(at))
        return dict(list(kept.items())[:MAX_KEPT])

    async def take_up_kept(self) -> None:
        """At start, before the runner's loop steps any job (``JobRunner.start``): trace the tasks that called
        back while the last run was stopping. Their callbacks came within their jobs' waits, so each is traced
        however long the bot was down, up to KEPT_FOR_SECONDS (older: dropped), and its job waits for the trace
        (``wait_over``). Before, one that called back more than the wait ago was dropped, and the loop, already
        running, failed its job "uncertain" first. Each stays kept until its trace ends, so a stop during that
        trace keeps it for the start after."""
        self._kept = self._read_kept()
        if not self._kept:
            if self.kept_path is not None and self.kept_path.exists():
                self._write_kept()  # an unreadable or empty list is not read again
            return
        now = self.runner.clock()
        for task_id, (provider, at) in list(self._kept.items()):
            try:
                if now - at > KEPT_FOR_SECONDS or not await self.look_for(provider, task_id):
                    self._kept.pop(task_id, None)
                    continue
            except Exception as exc:  # the database could not be read: kept for the start after
                log_refused_or_error(log, exc, "%s task %s: cannot trace it now", provider, task_id)
                continue
            log.info("%s task %s called back while the bot was stopping; tracing it now", provider, task_id)
        self._write_kept()

    async def _trace(self, finder: FindsLostTasks, task_id: str) -> None:
        """Ask the provider whose task this is; the job that sent it, if it is still waiting, adopts it."""
        runner = self.runner
        try:
            job_id = await self._ask_owner(finder, task_id)
            if job_id is None:
                return
            async with runner.lock(job_id):
                job = await runner.store.get(job_id)
                if job is not None and job.provider_job_id == task_id:
                    # Its create's answer came after all while the task was being traced: a plain wake-up.
                    woken = await runner.wake_called_back(job_id, task_id)
                elif job is not None and job.provider == finder.name and create_unanswered(job):
                    woken = await self._adopt(job, finder, task_id)
                else:
                    woken = False
                    log.info("%s task %s: sent by job %s, which no longer waits for it", finder.name, task_id, job_id)
            # An ended job's lock (or one for an id Kie's record named and no job has) is not kept.
            runner.drop_lock_if_ended(job_id)
            if woken:
                runner.wake()
        except Exception as exc:  # nobody awaits this task: what it cannot do is said here
            # The job keeps waiting and fails "uncertain" when its wait ends: nothing is left half done.
            log_refused_or_error(log, exc, "%s task %s: tracing it to its job failed", finder.name, task_id)
        finally:
            self._tracing.discard(task_id)
            # A task kept from the last stop is done with, unless this trace was cut short by a stop again.
            if not runner.stopping and self._kept.pop(task_id, None) is not None:
                self._write_kept()

    async def _ask_owner(self, finder: FindsLostTasks, task_id: str) -> str | None:
        """``finder.task_owner``, asked again a few times if the provider fails to answer: this callback is the
        only word the job will get of its task (bench/soak.py --callbacks --seed 158: three jobs failed
        "uncertain" whose task had called back, the one status call to trace it answered 502, garbled or
        late). None, logged, when the task names no job of ours or the provider could not be asked."""
        for delay in (*ASK_AGAIN_SECONDS, None):
            try:
                owner = await finder.task_owner(task_id)
            except ProviderError as exc:
                where = f"{finder.name} task {task_id} called back"
                if delay is None or isinstance(exc, AuthError) or self.runner.stopping:
                    log.warning("%s; could not ask whose it is: %s", where, exc.detail)
                    return None
                log.info("%s; asking whose it is failed (%s), again in %g s", where, exc.detail, delay)
                await asyncio.sleep(delay)
                continue
            if owner is None:
                log.info("%s task %s called back and names no job of this bot's; left alone", finder.name, task_id)
            return owner
        return None

    async def _adopt(self, job: Job, finder: FindsLostTasks, task_id: str) -> bool:
        if job.cancel_requested is not None:
            return False  # the cancel is carried out by the job's next step, due already
        try:
            handle = finder.adopted_handle(task_id, job.request)
        except (ProviderError, InvalidRequestError) as exc:  # the model no longer served there, say
            log.warning("job %s: cannot take up %s task %s: %s", job.id, finder.name, task_id, exc.detail)
            return False
        # Timed from when its create left, as the task was: what it teaches the schedule is how long it ran.
        job = await self.runner.submitter.record_created(job, handle, started_at=job.submit_started_at)
        log.info("job %s: its create's answer was lost; %s's callback names its task %s", job.id, finder.name, task_id)
        return await self.runner.wake_called_back(job.id, task_id)
