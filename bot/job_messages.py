"""What a job's message shows, and when: its progress paced, its end drawn (and owed until it is).

Every edit of a member's message goes through the runner's sink (bot/job_sink.py); this part decides when.
Progress is cosmetic and paced (a state change at once, else every `[jobs] progress_interval_seconds`,
never two edits within MIN_EDIT_GAP_SECONDS); an end is a promise, owed in SQLite (bot/store/owed_edits.py)
until Discord takes it, tried again in the background and at the next start. The candidates of a batch
share one message, so they share its pace and a lock under which it is drawn from their rows
(docs/architecture.md section 4.8). A message found deleted cancels what still runs in it, silently.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot.cancel_requests import CANCELLED_MESSAGE
from bot.errors import DeliveryError, ErrorCategory, MessageGoneError
from bot.events import EndNotShown
from bot.models import JobState
from bot.store.jobs import Job
from bot.store.owed_edits import OwedEdits
from bot.store.refusals import log_refused_or_error

if TYPE_CHECKING:
    from bot.jobs import JobRunner

log = logging.getLogger(__name__)

# A state change is shown at once, unless the message was edited less than this long ago.
MIN_EDIT_GAP_SECONDS = 1.0
# A job's end begun to be drawn while the bot stops gets this long (seconds); then it is left owed (_draw_end).
END_DRAW_WHILE_STOPPING = 2.0


def _as_its_cancel_ends_it(job: Job) -> Job:
    """``job`` as carrying out its written cancel will end it (itself if it has none to carry out, has
    ended, or has its image already, which is delivered rather than thrown away)."""
    if job.cancel_requested != "show" or job.terminal or job.state is JobState.SUCCEEDED:
        return job
    cancelled = JobState.CANCELLED
    return replace(job, state=cancelled, error_category=ErrorCategory.CANCELLED, error_message=CANCELLED_MESSAGE)


class JobMessages:
    """The job runner's edits of its members' messages."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        # Final edits Discord refused, kept so that a restart still shows members how their jobs ended.
        self.owed_edits = OwedEdits(runner.store.db)
        # When each message (a job's, or a batch's: by its id) was last drawn, and those whose state change
        # is not shown yet (the edit gap held it back).
        self._last_progress: dict[str, float] = {}
        self._edit_behind: set[str] = set()
        # One per batch while any of its candidates is being shown: their message is edited by one at a
        # time, each edit drawn from the rows.
        self._batch_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # What each batch's message was last drawn showing by a candidate's end (id, state, category of
        # each candidate), so an end that would draw the same is not sent again (``_end_candidate``).
        self._batch_drawn: dict[str, tuple[tuple[str, JobState, ErrorCategory | None], ...]] = {}
        # Steps drawing a job's progress: a cosmetic edit, after the job's state is written (a stop need not
        # wait for it: the next start draws the job again).
        self.drawing_progress: set[asyncio.Task[Any]] = set()
        # Draws of a job's end under way (each a task of its own): a stop cancels them, not their steps,
        # which then leave the end's edit owed (see _draw_end).
        self._drawing_ends: set[asyncio.Task[bool]] = set()
        # Jobs found with their message gone whose cancel the database refused (``message_gone``): their next
        # step writes it again before anything else, rather than poll on and fetch an image nobody can see.
        self._gone_unwritten: set[str] = set()
        # Ends drawn while a Cancel click's answer was still on its way (bot/cancel_requests.py ``answered``),
        # by that answer: the jobs whose end is drawn again once it has gone (``_redraw_once_answered``).
        self._owed_after_answer: dict[asyncio.Event, set[str]] = {}

    # ---- progress --------------------------------------------------------------------------------

    def progress_shown(self, job: Job, now: float) -> None:
        """The job's progress is on screen as of ``now`` (its first answer): the next edit keeps the gap."""
        self._last_progress[job.batch_id or job.id] = now

    async def progress(self, job: Job, *, force: bool = False) -> None:
        """Show the job's state, if its pace allows (``force``: a change of state, shown once the gap allows)."""
        runner = self.runner
        if runner.stopping:
            return  # the next start draws the job; a stop does not wait on a cosmetic edit
        # The candidates of a batch share one message: they share its pace too.
        key = job.batch_id or job.id
        now = runner.clock()
        last = self._last_progress.get(key, 0.0)
        behind = key in self._edit_behind  # a state change was not shown yet
        if not force and not behind and now - last < runner.settings.progress_interval_seconds:
            return
        shown_now = self._batch_locks.get(job.batch_id) if job.batch_id is not None else None
        busy = shown_now is not None and shown_now.locked()
        if busy or ((force or behind) and now - last < MIN_EDIT_GAP_SECONDS):
            # "Queued" shown a moment ago and already "Waiting for the provider": the member would see a
            # flicker, and each edit costs a Discord request; the next poll shows the state instead. So too
            # while another candidate is being shown: a poll need not wait for an upload to draw progress.
            self._edit_behind.add(key)
            return
        self._edit_behind.discard(key)
        self._last_progress[key] = now
        step = asyncio.current_task()
        if step is not None:
            self.drawing_progress.add(step)
        try:
            if job.batch_id is None:
                await runner.sink.progress(job)
            else:
                await self.show_batch(job.batch_id)
        except MessageGoneError:
            await self.message_gone(job)
        except Exception as exc:
            log.warning("job %s: progress update failed: %s", job.id, type(exc).__name__)
        finally:
            if step is not None:
                self.drawing_progress.discard(step)

    def behind(self, job: Job) -> bool:
        """Whether a change of the job's (or its batch's) message waits to be drawn: ``progress`` draws it."""
        return (job.batch_id or job.id) in self._edit_behind

    async def show_call(self, job: Job, editing: asyncio.Event) -> None:
        """Show a call in flight once the edit gap since the job's last edit (its first message, usually
        a moment ago) has passed: ``progress`` would otherwise leave it for a next poll a call never has.
        ``editing`` is set as the edit begins."""
        last = self._last_progress.get(job.batch_id or job.id, 0.0)
        wait = last + MIN_EDIT_GAP_SECONDS - self.runner.clock()
        if wait > 0:
            await asyncio.sleep(wait + 0.05)  # past the gap on the job clock too, which is not the loop's
        editing.set()
        await self.progress(job, force=True)

    def forget(self, job_id: str) -> None:
        """A job has ended: its message needs no more pacing."""
        self._last_progress.pop(job_id, None)
        self._edit_behind.discard(job_id)
        self._gone_unwritten.discard(job_id)

    # ---- a batch's one message -----------------------------------------------------------------------

    def batch_lock(self, batch_id: str) -> asyncio.Lock:
        lock = self._batch_locks.get(batch_id)
        if lock is None:
            lock = self._batch_locks[batch_id] = asyncio.Lock()
        return lock

    def redrawn(self, batch_id: str) -> None:
        """The batch's message is being drawn anew (a candidate's images added): no end was drawn last."""
        self._batch_drawn.pop(batch_id, None)

    async def show_batch(self, batch_id: str) -> None:
        """Redraw a batch's message from its rows (progress, or a candidate's end)."""
        async with self.batch_lock(batch_id):
            batch = await self.runner.store.batch(batch_id)
            self._batch_drawn.pop(batch_id, None)
            await self.runner.sink.show_batch(batch)
        self.forget_if_ended(batch)

    def forget_if_ended(self, batch: Sequence[Job]) -> None:
        """A batch whose candidates have all ended needs no more pacing of its progress edits."""
        if all(job.terminal for job in batch):
            key = batch[0].batch_id or batch[0].id
            self._last_progress.pop(key, None)
            self._edit_behind.discard(key)
            self._batch_drawn.pop(key, None)

    # ---- a message deleted -------------------------------------------------------------------------

    async def message_gone(self, job: Job) -> None:
        """The job's message (a batch's: every candidate's) was deleted without the bot seeing it go, as
        while it was down (Discord does not replay missed events): cancel what still runs, silently and
        uncharged, as the deletion would have (cogs/deleted_messages.py), rather than poll it on for an
        image nobody can be shown."""
        runner = self.runner
        batch = await runner.store.batch(job.batch_id) if job.batch_id is not None else [job]
        for each in batch:
            if not each.terminal and each.state is not JobState.SUCCEEDED:
                if each.id not in self._gone_unwritten:
                    log.info("job %s: its message is gone; cancelling it", each.id)
                self._gone_unwritten.add(each.id)  # until the cancel is written
                await runner.cancels.request(each.id, by_user=None, message_gone=True)
            self._gone_unwritten.discard(each.id)

    def gone_unwritten(self, job_id: str) -> bool:
        """Whether the job's message was found gone and its cancel is still to be written."""
        return job_id in self._gone_unwritten

    # ---- ends --------------------------------------------------------------------------------------

    async def end(self, job: Job, state: JobState, changes: dict[str, Any], *, show: bool) -> Job:
        """Write the job's end (``state`` and ``changes``) and show it (``show``: else it ends silently, its
        message gone). Returns the job as written. An end Discord does not take is owed: tried again in the
        background, and by the next start."""
        runner = self.runner
        # A Cancel click's answer still on its way when the end was drawn: it may land over the end.
        late: asyncio.Event | None = None
        if not show:
            job, shown = await runner.store.update(job, now=runner.clock(), state=state, **changes), True
            if job.batch_id is not None:
                self.forget_if_ended(await runner.store.batch(job.batch_id))
        elif job.batch_id is not None:
            # Not shown, the row is final all the same, but the member must still be told: a Discord 5xx or a
            # dropped connection passes, so the edit is tried again a few times in the background, and the
            # debt is written with the end (``_end_candidate``), so that a restart meanwhile tries again too.
            job, shown, late = await self._end_candidate(job, state, changes)
        else:
            # The row is written before the member is shown it (unlike a delivery, which is shown first and
            # redone after a crash): the debt goes in with it, so a bot killed while this edit is in flight
            # still owes it at the next start. Cleared once shown; a failure costs two statements more.
            now = runner.clock()
            # The interaction token is kept until the end is shown (``_paid``): the row's end cleared it, and the
            # end was then drawn with the bot token, which a channel the bot may not view refuses (slash commands
            # still work there), so the member read "Queued…" until a DM came nine minutes later.
            kept = {"interaction_token": job.interaction_token}
            job = await runner.store.update(
                job, now=now, state=state, within=self.owed_edits.within(now), **{**kept, **changes}
            )
            late = await runner.cancels.answered(job.id)
            shown = await self._draw_end(runner.sink.finished(job), job)
            if shown and late is None:
                await self._paid(job.id)  # else owed until drawn again after the answer
        if late is not None:
            self._redraw_once_answered(late, job)
        elif not shown:
            self.retry_end(job.id)
        return job

    async def _end_candidate(
        self, job: Job, state: JobState, changes: dict[str, Any]
    ) -> tuple[Job, bool, asyncio.Event | None]:
        """End a batch candidate without an image, shown before it is written, as a delivery is: after a
        crash between the two the job is still unfinished, so the restarted bot ends it again and draws
        the message again, instead of leaving it showing the candidate running. Returns the job, whether
        its message shows the end, and a Cancel click's answer still on its way as it was drawn (None if
        none), which may land over it."""
        assert job.batch_id is not None
        runner = self.runner
        async with self.batch_lock(job.batch_id):
            await runner.cancels.written(job.batch_id)  # a Cancel on the batch: draw what it will end
            late = await runner.cancels.answered(job.batch_id)
            batch = await runner.store.batch(job.batch_id)
            ending = replace(job, state=state, **changes)
            # Candidates whose cancel is written and not yet carried out are drawn as the cancel will end
            # them: a member's Cancel on a batch of four is one edit showing it cancelled, not four edits
            # each showing one more candidate gone. Their own ends then draw the same message: not sent.
            drawn = [ending if j.id == job.id else _as_its_cancel_ends_it(j) for j in batch]
            looks = tuple((j.id, j.state, j.error_category) for j in drawn)
            shown = self._batch_drawn.get(job.batch_id) == looks
            if not shown:
                shown = await self._draw_end(runner.sink.show_batch(drawn), job)
                if shown:
                    self._batch_drawn[job.batch_id] = looks
            # An end not shown is owed in the same transaction as the end: written apart, a bot killed (or a
            # database refusing the second write) between the two left a candidate ended, refunded, and
            # shown "Generating" for good, with nothing owed for the next start to draw. Its interaction token
            # is kept with the debt, as a lone job's is (``end``), and cleared once shown (``_paid``): cleared
            # with the end, every try drew the batch with the bot token, which a channel the bot may not view
            # refuses, so the member read "Generating 2 images…" until a DM came. Owed too while a Cancel
            # click's answer is still on its way: drawn again once it has gone (``_redraw_once_answered``).
            now = runner.clock()
            owed: dict[str, Any] = {}
            if not shown or late is not None:
                owed = {"within": self.owed_edits.within(now), "interaction_token": job.interaction_token}
            job = await runner.store.update(job, now=now, state=state, **{**owed, **changes})
        self.forget_if_ended([job if j.id == job.id else j for j in batch])
        return job, shown, late

    async def _draw_end(self, edit: Coroutine[Any, Any, object], job: Job) -> bool:
        """``_try_to_show`` for a job's end, which a stop does not wait on: the edit is owed in SQLite (a
        batch candidate's once its row is written after this), and the next start draws it. A stop cancels
        the draws under way, not their steps, and one begun while stopping gets ``END_DRAW_WHILE_STOPPING``
        s. Discord slow to take the edit (discord.py retries a 5xx for up to ~25 s) held SIGTERMs for the
        whole grace: a batch candidate's end is drawn before its row is written, so its step looked
        unfinished (bench/soak.py seed 128: 20.2 s), and so did a job that ended during the grace."""
        draw = asyncio.ensure_future(self._try_to_show(edit, job))
        # A draw cancelled before its first step (a stop, or the grace running out, just as it was made) never
        # awaits ``edit``: closed here, or Python reports "coroutine ... was never awaited" when it is collected
        # (a CI run failed on it). Closing one that ran is a no-op.
        draw.add_done_callback(lambda _: edit.close())
        self._drawing_ends.add(draw)
        try:
            await asyncio.wait({draw}, timeout=END_DRAW_WHILE_STOPPING if self.runner.stopping else None)
        except asyncio.CancelledError:
            draw.cancel()  # the step itself is cancelled (the grace ran out): so is its draw
            raise
        finally:
            self._drawing_ends.discard(draw)
        if not draw.done():
            draw.cancel()  # stopping: left owed
            return False
        return False if draw.cancelled() else draw.result()

    def stop_drawing_ends(self) -> None:
        """A stop: the ends being drawn are left owed (their steps go on to write them)."""
        for draw in list(self._drawing_ends):
            draw.cancel()

    @staticmethod
    async def _try_to_show(edit: Awaitable[object], job: Job) -> bool:
        """Whether the end is shown, or never can be (its message was deleted): either way nothing is owed."""
        try:
            await edit
        except DeliveryError as exc:
            if exc.retryable:
                log.warning("job %s: could not show the final state (%s); trying again", job.id, exc.detail)
                return False
            log.warning("job %s: final state not shown, and never will be: %s", job.id, exc.detail)
        except Exception as exc:
            log.warning("job %s: could not show the final state (%s); trying again", job.id, type(exc).__name__)
            return False
        return True

    async def _show_end(self, job: Job) -> None:
        if job.batch_id is None:
            await self.runner.sink.finished(job)
        else:
            await self.show_batch(job.batch_id)

    def _redraw_once_answered(self, answer: asyncio.Event, job: Job) -> None:
        """Draw the job's end again once a Cancel click's answer, still on its way when the end was drawn
        (bot/cancel_requests.py ``answered``), has gone. Discord applying that answer after the end's wait
        drew "Cancelling…", without buttons, over the end, and the member read it for good
        (tests/e2e/test_cancel_and_fetch_fixes.py). The end stays owed until then (``end``,
        ``_end_candidate``), so a stop meanwhile leaves it to the next start. One redraw per answer: a
        batch's candidates share their message, and each candidate's debt is cleared by it."""
        owed = self._owed_after_answer.get(answer)
        if owed is not None:
            owed.add(job.id)
            return
        if self.runner.stopping:
            return  # owed in SQLite: the next start draws it
        self._owed_after_answer[answer] = {job.id}
        self.runner.in_background(self._redraw_when_gone(answer, job), f"final-after-answer-{job.id}", resumable=True)

    async def _redraw_when_gone(self, answer: asyncio.Event, job: Job) -> None:
        try:
            await self.runner.cancels.gone(answer)
        finally:
            owed = sorted(self._owed_after_answer.pop(answer, {job.id}))
        if job.batch_id is not None:
            self._batch_drawn.pop(job.batch_id, None)  # the answer drew over what was recorded as drawn
        try:
            latest = await self.runner.store.get(job.id)
            shown = latest is None or await self._try_to_show(self._show_end(latest), latest)
        except Exception as exc:
            log.warning("job %s: could not draw its end again after a Cancel's answer (%s)", job.id, exc)
            shown = False
        for each in owed:
            if shown:
                await self._paid(each)
            else:
                self.retry_end(each)

    async def retry_owed(self) -> None:
        """At start: the ends the last run owed its members."""
        for job_id in await self.owed_edits.all():
            self.retry_end(job_id)

    def retry_end(self, job_id: str) -> None:
        if self.runner.stopping:
            return  # owed in SQLite: the next start draws it (a try begun now would outlive the stop)
        self.runner.in_background(self._show_end_later(job_id), f"final-{job_id}", resumable=True)

    async def _show_end_later(self, job_id: str) -> None:
        """Try the final edit again a few times; the debt is cleared when one gets through or when this
        gives up, and kept when the bot stops meanwhile (the next start tries again). Giving up is
        reported (EndNotShown: the member is told another way; a batch's once, ``_batch_end_given_up``); a
        deleted message is not: whoever deleted it no longer waits on it."""
        runner = self.runner
        job: Job | None = None
        waits = runner.settings.final_edit_retry_seconds
        for delay in waits:
            await asyncio.sleep(delay)
            job = await runner.store.get(job_id)
            if job is None:
                break
            if await self._try_to_show(self._show_end(job), job):
                break
        else:
            # A warning: Discord's refusal (a channel the bot may no longer see or edit in) is not the bot's
            # fault, and the member is told another way (EndNotShown: a DM).
            log.warning("job %s: gave up showing its final state after %d tries", job_id, len(waits) + 1)
            if job is not None and job.batch_id is not None:
                await self._batch_end_given_up(job)
                return
            if job is not None:
                runner.notify(EndNotShown(job))
        await self._paid(job_id)

    async def _batch_end_given_up(self, job: Job) -> None:
        """A batch candidate's end given up on: its debt is cleared, and the member is told once for the whole
        request, by the candidate given up on last, once every candidate has ended (cogs/end_notices.py draws
        the batch's card). Each candidate reporting its own end sent a DM per candidate, each a lone job's
        card. Under the batch's lock, so that of candidates given up on together exactly one finds itself last;
        a debt that could not be cleared is still owed, and the next start, giving up on it, tells the member."""
        assert job.batch_id is not None
        runner = self.runner
        try:
            async with self.batch_lock(job.batch_id):
                # Read before the debt is cleared: a read that fails leaves it owed, so the next start, giving
                # up on it again, tells the member (cleared first, a failed read lost the notice for good).
                batch = await runner.store.batch(job.batch_id)
                owed = set(await self.owed_edits.all()) - {job.id}
                if not await self._paid(job.id):
                    return  # still owed: the next start tells
        except Exception as exc:
            log.warning("job %s: could not read whether its batch's end is still owed (%s)", job.id, exc)
            return
        if all(each.terminal for each in batch) and owed.isdisjoint(each.id for each in batch):
            runner.notify(EndNotShown(job))

    async def _paid(self, job_id: str) -> bool:
        """Clear the job's owed edit; False if that could not be written (it stays owed)."""
        try:
            await self.owed_edits.paid(job_id)  # and the ended job's interaction token
        except Exception as exc:
            log_refused_or_error(log, exc, "job %s: could not clear the final edit owed (a restart redraws it)", job_id)
            return False
        return True
