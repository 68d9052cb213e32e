"""Requests waiting their turn, as Midjourney queues a member's jobs past those it runs at once.

A member who already has as many requests generating as their quota allows (``[quotas] in_flight_per_user``, a
tier's or an admin's ``in_flight``), or whose request the server has no room for among its images generating at
once (``in_flight_per_guild``, or the server's own), is no longer refused outright: up to ``[quotas]
waiting_per_user`` of their requests are taken waiting, recorded and reserved like any other (bot/quotas.py
marks their jobs with ``waits_for``: the member's limit, or 0 for one that waits only for the server), shown as
waiting, and each started when its member and its server have room for it, its member's oldest first.

Waiting jobs do not count as generating, for the member or the server: counted, one member's queue kept every
other member out of a server with room. Two ways to start one, so none waits for good: the job store tells the
runner when a reservation settles, and the waiting jobs it may have made room for fall due at once
(``slot_freed``); and a waiting job looks again ``RECHECK_SECONDS`` after its last look whatever happens (a
wake-up missed, a reservation settled by the ledger's own repair, a restart: a start steps every unfinished job
at once). A waiting job's deadline starts when it does: the time it waited is not the provider's.

Among members, the server's room goes by the order requests were asked in: a request waits behind the images
already waiting for the server's room alone (``waits_for`` 0), when it is taken and when it looks for its turn,
so a batch waiting for room for all its images is not passed by single ones. A request that waited for its
member's turn joins those once its member's turn has come (its ``waits_for`` is 0 from then, its message saying
what it waits for now); until then it could not start anyway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, TypeVar

from bot.errors import ErrorCategory
from bot.job_messages import MIN_EDIT_GAP_SECONDS
from bot.store.jobs import Job, Turn

if TYPE_CHECKING:
    from bot.jobs import JobRunner

log = logging.getLogger(__name__)

# How long a waiting job waits for a wake-up before it looks again of itself.
RECHECK_SECONDS = 30.0

Member = tuple[int | None, int | None]
K = TypeVar("K")


class WaitingRequests:
    """Starts waiting requests in their turn."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        # Turns are taken one at a time: two waiting requests looked at side by side would both see the one
        # free place.
        self._turns = asyncio.Lock()
        # Waiting jobs as last seen by their steps: by member, those whose member had no room (woken when one of
        # the member's requests ends); by server, those whose member had room and the server none (woken when
        # any image there ends).
        self._by_member: dict[Member, set[str]] = {}
        self._by_server: dict[int | None, set[str]] = {}
        # Requests found never to fit the server's limit (lowered since they were taken), by request (a batch's
        # id): why they end, for their other candidates. One entry per such request, a rare event; kept.
        self._never: dict[str, str] = {}
        # What waits before each waiting request (by request: a batch's id), as its last look found it, when
        # anything does: its member's requests, or the server's images once it waits for the server alone. Its
        # message says so, redrawn as it changes; a request that starts or ends leaves it.
        self._ahead: dict[str, int] = {}

    def ahead_of(self, job: Job) -> int:
        """What waits before ``job``'s request, for its message (0: nothing, or not looked yet)."""
        return self._ahead.get(job.batch_id or job.id, 0) if job.waits_for is not None else 0

    async def start_if_turn(self, job: Job) -> Job | None:
        """At ``job``'s step (it waits: ``waits_for`` is set), under its lock: the job started (waiting no more,
        its deadline from now), if it is its turn; else None, and it is due again in ``RECHECK_SECONDS``.

        Its turn: its member has room for it past their other requests generating and those waiting taken
        before it (``waits_for``, the member's limit when it was taken; 0: it waited only for the server), and
        the server has room for its images (its limit as of now, bot/quotas.py ``server_at_once``)."""
        runner = self.runner
        member: Member = (job.guild_id, job.user_id)
        request = job.batch_id or job.id
        ended = self._never.get(request)
        if ended is not None:
            # Another candidate of its batch found the batch can never start: it ends with them.
            _discard(self._by_server, job.guild_id, job.id)
            await runner.fail(job, ErrorCategory.CANCELLED, ended)
            return None
        async with self._turns:
            # Quotas turned off since it was taken (and the bot restarted): nothing limits it any more.
            limited = runner.quotas is not None and runner.quotas.settings.enabled
            turn = await runner.store.turn_of(job) if limited else Turn(0, 0, 0, 0, 0)
            limit = job.waits_for or 0
            member_room = limit == 0 or turn.generating + turn.ahead < limit
            server_limit = None
            if member_room and runner.quotas is not None and job.guild_id is not None:
                server_limit = await runner.quotas.server_at_once(job.guild_id)
            # Behind the server's images waiting for its room alone that were taken before it: the server's room
            # goes by the order requests were asked in, so a batch waiting for room is not passed by singles.
            taken = turn.server_generating + turn.server_ahead
            server_room = server_limit is None or taken + turn.images <= server_limit
            now = runner.clock()
            if member_room and server_room:
                started = await runner.store.update(
                    job, now=now, waits_for=None, deadline_at=now + runner.settings.deadline_seconds
                )
                log.info(
                    "job %s: its turn has come (%d of its member's and %d of the server's generating); starting",
                    job.id,
                    turn.generating,
                    turn.server_generating,
                )
                _discard(self._by_member, member, job.id)
                _discard(self._by_server, job.guild_id, job.id)
                self._ahead.pop(request, None)
                # Those waiting behind it have one fewer before them: they look again, so their messages say so
                # now rather than at their next look, half a minute away.
                behind = self._by_member.pop(member, set()) | self._by_server.pop(job.guild_id, set())
                if behind:
                    runner.in_background(self._due_now(behind), f"behind-{job.id}")
                return started
        if server_limit is not None and turn.images > server_limit:
            # An admin lowered the server's limit below this request's images since it was taken (to 0, say): it
            # could never start. It ends, uncharged, saying so, rather than wait for good; a batch's candidates all
            # end (judged one by one, the last would have fitted once the others had ended).
            self._never[request] = never_fits(turn.images, server_limit)
            self._ahead.pop(request, None)
            _discard(self._by_server, job.guild_id, job.id)
            await runner.fail(job, ErrorCategory.CANCELLED, self._never[request])
            if job.batch_id is not None:
                others = await runner.store.waiting_in_request(job.batch_id)
                runner.in_background(self._due_now(set(others)), f"never-{job.batch_id}")
            return None
        # Its place: the member's requests before it while it waits for its member's turn, else the server's images.
        moved = self._placed(request, turn.server_ahead if member_room else turn.ahead)
        if member_room:
            self._by_server.setdefault(job.guild_id, set()).add(job.id)
            if job.waits_for:
                # Its member's turn has come and the server has no room: it waits for the server alone now, and
                # says so (its message said it waited for one of its member's requests). Its member's room stays:
                # their later requests wait behind it. As one waiting for the server, later ones wait behind it.
                job = await runner.store.update(job, now=now, waits_for=0)
                moved = True
        else:
            self._by_member.setdefault(member, set()).add(job.id)
        if moved:
            await runner.messages.progress(job, force=True)
        if runner.messages.behind(job):
            # A change of its message waits out the gap between two edits: drawn at its next look, a second away.
            await runner.messages.progress(job)
        again = MIN_EDIT_GAP_SECONDS if runner.messages.behind(job) else RECHECK_SECONDS
        await runner.store.note_poll(job, next_poll_at=now + again)
        return None

    def _placed(self, request: str, ahead: int) -> bool:
        """Note what waits before ``request`` now; True if its message no longer says so."""
        if ahead == self._ahead.get(request, 0):
            return False
        if ahead:
            self._ahead[request] = ahead
        else:
            self._ahead.pop(request, None)
        return True

    async def relimit(self, guild_id: int, user_id: int, limit: int | None) -> int:
        """An admin changed a member's limit on requests at once (``/quota set member:``): their requests waiting
        for it wait under ``limit`` now (None: no limit, so for the server's room alone) and look again at once.
        A limit of 0, under which none could ever start, leaves them under the one they had. Returns how many."""
        if limit == 0:
            return 0
        runner = self.runner
        changed = 0
        for job_id in await runner.store.waiting_on_member(guild_id, user_id):
            async with runner.lock(job_id):
                job = await runner.store.get(job_id)
                if job is None or job.terminal or not job.waits_for:
                    continue
                now = runner.clock()
                job = await runner.store.update(job, now=now, waits_for=limit or 0)
                await runner.store.note_poll(job, next_poll_at=now)
                changed += 1
        if changed:
            log.info("%d waiting request(s) of member %s now wait under a limit of %s", changed, user_id, limit)
            runner.wake()
        return changed

    async def server_changed(self, guild_id: int) -> int:
        """An admin changed the server's limits (``/quota server``): its waiting requests look again at once, so a
        raised limit starts them now and one lowered below a request's images ends it, saying so. Returns how
        many."""
        waiting = set(await self.runner.store.waiting_in_server(guild_id))
        if waiting:
            self._by_server.pop(guild_id, None)
            await self._due_now(waiting)
        return len(waiting)

    def slot_freed(self, job: Job) -> None:
        """``job``'s reservation has settled (it ended): the waiting jobs it may have made room for are due now,
        to see whose turn it is. Called by the job store after its commit; cheap when nobody waits."""
        woken = self._by_member.pop((job.guild_id, job.user_id), set()) | self._by_server.pop(job.guild_id, set())
        if self._ahead:
            self._ahead.pop(job.batch_id or job.id, None)  # a waiting request cancelled
        if woken:
            self.runner.in_background(self._due_now(woken), f"turn-{job.guild_id}-{job.user_id}")

    async def _due_now(self, job_ids: set[str]) -> None:
        """Make ``job_ids`` due now, the oldest first: the loop starts due creates oldest first, so the request
        that has waited longest takes the first place freed."""
        runner = self.runner
        jobs = [job for job_id in job_ids if (job := await runner.store.get(job_id)) is not None]
        for job in sorted(jobs, key=lambda j: (j.created_at, j.id)):
            async with runner.lock(job.id):
                waiting = await runner.store.get(job.id)
                if waiting is not None and not waiting.terminal and waiting.waits_for is not None:
                    await runner.store.note_poll(waiting, next_poll_at=runner.clock())
        runner.wake()


def never_fits(images: int, limit: int) -> str:
    """Why a waiting request whose images the server's limit, lowered since, can never hold has ended."""
    if limit == 0:
        allows = "An admin has set this server's limit on images generating at once to 0, so no image can start here"
    else:
        allows = (
            f"This server now allows {limit} image(s) generating at once, fewer than this request's {images}, "
            "so it could never start"
        )
    again = f" Ask again with count:{limit}." if limit > 1 else " Ask again for one image." if limit == 1 else ""
    return f"{allows}. You were not charged.{again}"


def _discard(index: dict[K, set[str]], key: K, job_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(job_id)
        if not ids:
            del index[key]
