"""Requests waiting their member's turn, as Midjourney queues a member's jobs past those it runs at once.

A member who already has as many requests generating as their quota allows (``[quotas] in_flight_per_user``, a
tier's or an admin's ``in_flight``) is no longer refused outright: up to ``[quotas] waiting_per_user`` more are
taken, recorded and reserved like any other (bot/quotas.py marks their jobs with ``waits_for``, the limit they
were taken under), shown as waiting, and each started, oldest first, when one of the member's requests ends.

Two ways to start one, so none waits for good: the job store tells the runner when a reservation settles, and
the member's waiting jobs fall due at once (``slot_freed``); and a waiting job looks again ``RECHECK_SECONDS``
after its last look whatever happens (a wake-up missed, a reservation settled by the ledger's own repair, a
restart: a start steps every unfinished job at once). A waiting job's deadline starts when it does: the time
it waited is not the provider's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.store.jobs import Job

if TYPE_CHECKING:
    from bot.jobs import JobRunner

log = logging.getLogger(__name__)

# How long a waiting job waits for a wake-up before it looks again of itself.
RECHECK_SECONDS = 30.0

Member = tuple[int | None, int | None]


class WaitingRequests:
    """Starts waiting requests in their turn."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        # Turns are taken one at a time: two waiting requests looked at side by side would both see the one
        # free place.
        self._turns = asyncio.Lock()
        # Waiting jobs by member, as last seen by their steps: those woken when one of the member's ends.
        self._waiting: dict[Member, set[str]] = {}

    async def start_if_turn(self, job: Job) -> Job | None:
        """At ``job``'s step (it waits: ``waits_for`` is set), under its lock: the job started (waiting no more,
        its deadline from now), if its member has room for it and no request taken before it still waits;
        else None, and it is due again in ``RECHECK_SECONDS``."""
        runner = self.runner
        member: Member = (job.guild_id, job.user_id)
        async with self._turns:
            generating, ahead = await runner.store.turn_of(job)
            now = runner.clock()
            if generating + ahead < (job.waits_for or 0):
                started = await runner.store.update(
                    job, now=now, waits_for=None, deadline_at=now + runner.settings.deadline_seconds
                )
                log.info("job %s: its member's turn has come (%d others generating); starting", job.id, generating)
                ids = self._waiting.get(member)
                if ids is not None:
                    ids.discard(job.id)
                    if not ids:
                        del self._waiting[member]
                return started
        self._waiting.setdefault(member, set()).add(job.id)
        await runner.store.note_poll(job, next_poll_at=now + RECHECK_SECONDS)
        return None

    def slot_freed(self, job: Job) -> None:
        """``job``'s reservation has settled (it ended): its member's waiting jobs are due now, to see whose turn
        it is. Called by the job store after its commit; cheap when nobody waits (one lookup)."""
        ids = self._waiting.pop((job.guild_id, job.user_id), None)
        if ids:
            self.runner.in_background(self._due_now(ids), f"turn-{job.user_id}")

    async def _due_now(self, job_ids: set[str]) -> None:
        runner = self.runner
        for job_id in sorted(job_ids):
            async with runner.lock(job_id):
                waiting = await runner.store.get(job_id)
                if waiting is not None and not waiting.terminal and waiting.waits_for is not None:
                    await runner.store.note_poll(waiting, next_poll_at=runner.clock())
        runner.wake()
