"""Held jobs: recorded before their member's answer is out, started once it is.

A command records its jobs (and their reservations) before it answers Discord, so a crash never leaves an
answered request with nothing behind it; but a fast provider must not finish before there is a message to
show the image in. So new jobs are *held* (due an hour away) and released once the answer is out with
the message's id. Two things can go wrong in between, and both are settled here by asking Discord where
the message is: the answer failed (an error or a dropped connection may come after Discord made the
message: ``answer_failed``), or the bot died while answering (a start finds jobs held: ``recover``).
Found, the jobs start in that message (or, if the bot was down past their deadline, end there, uncharged);
not found, nobody ever saw them, so they end uncharged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.errors import ErrorCategory
from bot.models import JobState
from bot.store.jobs import Job
from bot.store.refusals import write_can_wait, write_until_taken

if TYPE_CHECKING:
    from bot.jobs import JobRunner

log = logging.getLogger(__name__)

# A held job that is never released (the bot died while acknowledging Discord) starts after this
# long; by then its deadline has passed, so it ends as expired and its reservation is refunded.
HELD_FOR_SECONDS = 3600.0
# The end of a held job a restart finds never shown: the last run died before its answer was out.
UNCONFIRMED_AT_RESTART = "The bot restarted before this request was confirmed. You were not charged; try again."
# The end of a held job a restart finds shown, but past its deadline: the bot was down longer than that. Also
# that of a job released but never sent whose deadline passed while the bot was down (bot/jobs.py).
BACK_TOO_LATE = (
    "The bot went down as it took this request and was back too late to start it. You were not charged; try again."
)
# Discord fails a look for a job's message now and then (a 503 or a timeout on a channel read, which
# discord.py does not retry): concluding "not there" from one failure ends a job whose message exists and
# leaves the member's message at "Queued" for good. A member waits on these looks, so they are quick;
# those of a restart go on in the background for a few minutes (`[jobs] held_look_retry_seconds`; a
# start is not held up by Discord, not even by its first look: ``recover``).
LOCATE_RETRY_SECONDS = (1.0, 2.0, 4.0, 8.0)


def what_failed(exc: BaseException) -> str:
    """An exception for the log as its kind and HTTP status, never its text: a client library's message
    may quote the URL, and an interaction callback's URL holds the interaction's token."""
    status, code = getattr(exc, "status", None), getattr(exc, "code", None)
    return type(exc).__name__ + (f" (HTTP {status}, code {code})" if isinstance(status, int) else "")


class HeldJobs:
    """Releases the job runner's held jobs, and settles those whose answer failed or whose bot died."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    async def release(self, job_id: str, *, shown: bool = False, **changes: Any) -> Job | None:
        """Let a held job start now, recording ``changes`` (e.g. the message id) first. ``shown``: its
        progress is on screen as of now, so the next edit keeps the usual gap from it.

        Called once the answer that shows the job is out: its member is looking at "Queued". A database
        that refuses the write for now (another program's lock past ``busy_timeout``, a full disk) must not
        leave the job held for the hour a held job waits, nor have the member told nothing was saved: the
        write is kept in memory and tried again in the background until taken (None is returned then); a
        stop meanwhile leaves the job held for the next start, which looks for its message."""
        try:
            return await self._release(job_id, shown=shown, **changes)
        except Exception as exc:
            if not write_can_wait(exc):
                raise
            log.warning("job %s: its start cannot be written yet (%s); trying again in the background", job_id, exc)
        retry = write_until_taken(lambda: self._release(job_id, shown=shown, **changes), f"job {job_id}: its start")
        self.runner.in_background(retry, f"release-{job_id}", resumable=True)
        return None

    async def _release(self, job_id: str, *, shown: bool, **changes: Any) -> Job | None:
        runner = self.runner
        async with runner.lock(job_id):
            job = await runner.store.get(job_id)
            if job is None:
                return job
            now = runner.clock()
            if job.terminal:
                message_id = changes.get("message_id")
                if message_id is not None and job.message_id is None:
                    # Ended while its message was being looked for, by a Cancel that knew no message (/jobs'),
                    # so its end was drawn nowhere and the member's message said "Queued" for good. The end is
                    # owed to the message found, in the same write (a restart draws it too).
                    job = await runner.store.update(
                        job, now=now, within=runner.messages.owed_edits.within(now), message_id=message_id
                    )
                    runner.messages.retry_end(job.id)
                return job
            job = await runner.store.update(job, now=now, next_poll_at=now, **changes)
            if shown:
                runner.messages.progress_shown(job, now)
        runner.wake()
        return job

    async def answer_failed(self, jobs: Sequence[Job], exc: BaseException) -> list[Job] | None:
        """The answer that was to show these held jobs (a command's, or a reply) failed with ``exc``; but
        an error, a timeout or a dropped connection may come after Discord made the message (the answer
        lost on its way back). Ask where the message is, as a restart would (``recover``): found, the jobs
        start there and that message follows them; not found (or no way to tell), nobody will see them, so
        they end uncharged. Returns the started jobs, or None if they were cancelled."""
        failed = what_failed(exc)
        try:
            message_id = await self._locate(jobs[0])
        except Exception as lookup:
            log.warning("job %s: could not look for its message after %s: %s", jobs[0].id, failed, what_failed(lookup))
            message_id = None
        if message_id is None:
            for job in jobs:
                log.info("job %s: its answer failed (%s) and Discord shows none; cancelling it", job.id, failed)
                await self.runner.cancel(job.id, by_user=None)
            return None
        log.info("job(s) %s: the answer failed (%s), but Discord shows it; starting", [j.id for j in jobs], failed)
        return [await self.release(job.id, message_id=message_id, shown=True) or job for job in jobs]

    async def recover(self) -> None:
        """Jobs the last process created but never released: it died while acknowledging Discord.

        Such a job waits an hour by design (a release would have started it); if Discord did get the
        acknowledgement, the member has been looking at "Queued" since. Ask where its message is (through
        the channel's history once the interaction's token is dead: ``DiscordSink.locate``): found, the
        job starts now; not found, nobody ever saw it, so it ends uncharged.

        One look per message, a batch's candidates sharing theirs (each looked on its own before: four
        searches of the channel for a command of four images), and in the background: a start waited for
        every look, each up to a few pages of the channel's history, before the bot came online. Meanwhile
        each job is held for another hour from now, so the job loop never starts one before its look has
        settled it, however long the bot was down (one held past its hour is otherwise due at once); a stop
        meanwhile leaves it held, and the next start looks again.
        """
        runner = self.runner
        held = await runner.store.held(HELD_FOR_SECONDS)
        if not held:
            return
        until = runner.clock() + HELD_FOR_SECONDS
        shown_in: dict[str, list[Job]] = {}
        for job in held:
            job = await runner.store.note_poll(job, next_poll_at=until)
            shown_in.setdefault(job.batch_id or job.id, []).append(job)
        runner.in_background(self._look_for(list(shown_in.values())), "recover-held", resumable=True)

    async def _look_for(self, messages: Sequence[Sequence[Job]]) -> None:
        """``recover``'s looks, one message (its jobs: a batch's candidates, or one job) after another, each
        settling its jobs; a look that fails goes on in a task of its own (``_recover_later``)."""
        for jobs in messages:
            try:
                message_id = await self.runner.sink.locate(jobs[0])
            except Exception as exc:
                log.warning("job %s: could not look for its message (%s); looking again", jobs[0].id, what_failed(exc))
                self.runner.in_background(self._recover_later(jobs), f"recover-held-{jobs[0].id}", resumable=True)
                continue
            await self._settle_all(jobs, message_id)

    async def _recover_later(self, jobs: Sequence[Job]) -> None:
        """Look for held jobs' message again for a few minutes; if Discord never answers, nobody is known to
        see the jobs, so they end uncharged. Stopped by a shutdown: the next start looks again."""
        try:
            message_id = await self._locate(jobs[0], self.runner.settings.held_look_retry_seconds)
        except Exception as exc:
            log.warning("job %s: could not look for its message (%s); giving up on it", jobs[0].id, what_failed(exc))
            message_id = None
        await self._settle_all(jobs, message_id)

    async def _settle_all(self, jobs: Sequence[Job], message_id: int | None) -> None:
        """``_settle`` each of the jobs shown (or not) in one message. One the database will not settle now is
        left held, logged, for the next start: the others, and the next message's jobs, are settled still."""
        for job in jobs:
            try:
                await self._settle(job, message_id)
            except Exception as exc:
                log.warning("job %s: could not settle it after looking for its message: %s", job.id, what_failed(exc))

    async def _settle(self, job: Job, message_id: int | None) -> None:
        """Start a held job in its message, or, if it has none, end it uncharged (unless something else
        settled it meanwhile: a member's Cancel, a release). One found past its deadline (the bot was down
        that long) ends in its message instead, saying so."""
        current = await self.runner.store.get(job.id)
        if message_id is not None:
            # One waiting its turn has no deadline running yet: it gets one when it starts (bot/waiting_requests.py),
            # so the time the bot was down is not counted against it, as it is not for one not held.
            waiting = current is not None and current.waits_for is not None
            if (
                current is not None
                and not current.terminal
                and not waiting
                and self.runner.clock() >= current.deadline_at
            ):
                # Started, it would end at its first step as "the provider did not finish within N
                # minutes", which the provider was never asked to; the member reads what happened instead.
                log.info("job %s: held when the bot stopped; its message exists, but its time is up", job.id)
                await self.runner.fail(
                    current, ErrorCategory.EXPIRED, BACK_TOO_LATE, to=JobState.EXPIRED, message_id=message_id
                )
                return
            log.info("job %s: held when the bot stopped; its message exists, starting it", job.id)
            await self.release(job.id, message_id=message_id)
            return
        if current is None or current.terminal or current.message_id is not None:
            return
        log.info("job %s: held when the bot stopped and never shown; cancelling it", job.id)
        await self.runner.fail(current, ErrorCategory.CANCELLED, UNCONFIRMED_AT_RESTART, to=JobState.CANCELLED)

    async def _locate(self, job: Job, pauses: Sequence[float] = LOCATE_RETRY_SECONDS) -> int | None:
        """Where ``job``'s message is (None: Discord shows none), looking again after each failed look,
        ``pauses`` apart; raises the last failure if every look failed."""
        for pause in (*pauses, None):
            try:
                return await self.runner.sink.locate(job)
            except Exception as exc:
                if pause is None:
                    raise
                log.info("job %s: could not look for its message (%s); again in %g s", job.id, what_failed(exc), pause)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable: the last look returns or raises")
