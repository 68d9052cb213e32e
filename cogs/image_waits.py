"""Reactions on a bot message whose images are still being made, held until every one of them has ended.

A ✉️ (cogs/dm_reaction.py) or a ⭐ (cogs/star_reaction.py) given while an image is being made, or before the last
image of a batch has come, stands for the images the message will show; they are not there yet to copy or star; nor
to edit, for a reply (cogs/early_replies.py, whose waits are kept by reply rather than by member). The
members who reacted are kept per message, in memory: one background task per message waits for its images
(``JobRunner.wait_terminal``), and once they have all ended (made or not), hands the cog the members whose reaction
is still there (a reaction taken back meanwhile takes its member out). A restart loses the waits; the next start's
reading of missed reactions (cogs/missed_reactions.py) finds the reactions still on the messages of unfinished images
and waits again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from bot.app import Bananacord
from bot.store.jobs import Job
from bot.store.refusals import log_refused_or_error

log = logging.getLogger(__name__)

# At most this many messages' images are waited for at once by one kind of reaction (a member reacting on every
# running job of a busy channel): past them, a reaction is not waited for.
MOST_MESSAGES = 1_000
# How often a wait reads its images' rows again, should an end come by a way that does not wake it (a cancel).
RECHECK_SECONDS = 300.0
# After the database refused a read: not asked again at once.
RETRY_SECONDS = 5.0


class Reacted(NamedTuple):
    """A reaction given: on which message, by whom."""

    guild_id: int
    channel_id: int
    message_id: int
    user_id: int


@dataclass
class Waiting:
    """The reactions on one message whose images are being made: each member's, with whether they reacted live (not
    read back after a time away); and whom the cog has told something about it (``told``: the cog's to use)."""

    members: dict[int, bool] = field(default_factory=dict)
    told: set[int] = field(default_factory=set)


Shown = Callable[[Job, Reacted, dict[int, bool]], Awaitable[None]]


class ImageWaits:
    """The waits of one kind of reaction; ``shown(job, reacted, members)`` once a message's images have all ended
    (``job``: the message's first, read again; ``reacted``: the message, ``user_id`` 0), run as the runner's own
    work that a stop waits for, while the wait itself is cancelled at once by a stop."""

    def __init__(self, bot: Bananacord, kind: str, shown: Shown) -> None:
        self.bot = bot
        self.kind = kind
        self._shown = shown
        self._waits: dict[int, Waiting] = {}

    def add(self, job: Job, reacted: Reacted, *, live: bool) -> Waiting | None:
        """``reacted``'s member waits for the images of its message (``job``'s); the message's wait, or None where too
        many are waited for already."""
        waiting = self._waits.get(reacted.message_id)
        if waiting is None:
            if len(self._waits) >= MOST_MESSAGES:
                log.info(
                    "job %s: a %s on an image not ready is not waited for (%d waits)", job.id, self.kind, MOST_MESSAGES
                )
                return None
            waiting = self._waits[reacted.message_id] = Waiting()
            where = reacted._replace(user_id=0)
            # Resumable: a stop cancels it at once, and the next start's reading finds the reactions again.
            name = f"{self.kind}-waits-{reacted.message_id}"
            self.bot.services.runner.in_background(self._until_shown(job, where), name, resumable=True)
        waiting.members[reacted.user_id] = waiting.members.get(reacted.user_id, False) or live
        return waiting

    def remove(self, message_id: int, user_id: int) -> None:
        """The member's reaction taken back: nothing for them once the images show."""
        waiting = self._waits.get(message_id)
        if waiting is not None:
            waiting.members.pop(user_id, None)

    async def _until_shown(self, job: Job, where: Reacted) -> None:
        runner = self.bot.services.runner
        try:
            while (waiting := self._waits.get(where.message_id)) is not None and waiting.members:
                try:
                    unfinished = await self._unfinished(job)
                    if not unfinished:
                        break
                    await asyncio.wait_for(self._ended(unfinished), RECHECK_SECONDS)
                except TimeoutError:
                    continue
                except Exception as exc:  # the database refusing a read: not asked again at once
                    log.warning("job %s: its images' ends not read (%s)", job.id, type(exc).__name__)
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            ended = self._waits.pop(where.message_id, None)
        if ended is not None and ended.members:
            # Not resumable, unlike the wait: a stop lets what the cog does now finish (a ✉️ copy's part sent and
            # not recorded would be sent again by the next start's reading).
            shown = self._then(job, where, dict(ended.members))
            runner.in_background(shown, f"{self.kind}-shown-{where.message_id}")

    async def _unfinished(self, job: Job) -> list[str]:
        """The images of ``job``'s message still being made (a batch's candidates; a lone job)."""
        store = self.bot.services.runner.store
        batch = await store.batch(job.batch_id) if job.batch_id is not None else [await store.get(job.id) or job]
        return [each.id for each in batch if not each.terminal]

    async def _ended(self, job_ids: list[str]) -> None:
        """Once every one of these jobs has ended. One after another, not gathered: on Python 3.11 a gather that
        ``wait_for`` gives up on is left holding an exception nobody reads, logged as an error."""
        for job_id in job_ids:
            await self.bot.services.runner.wait_terminal(job_id)

    async def _then(self, job: Job, where: Reacted, members: dict[int, bool]) -> None:
        try:
            job = await self.bot.services.runner.store.get(job.id) or job  # as it ended: a lone job's row
            await self._shown(job, where, members)
        except Exception as exc:  # the database refusing, say: logged here, as a live reaction's would be
            log_refused_or_error(log, exc, "job %s: the %s waiting for its images not taken up", job.id, self.kind)
