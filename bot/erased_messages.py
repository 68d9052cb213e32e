"""The messages of requests whose words were erased (bot/store/erasure.py), drawn again without them.

An erasure takes the words from the rows at once; the bot's messages in the channels still show them (the embed, the
images' alt text) until each is edited (bot/delivery.py ``redraw_erased``), as do the bot's DMs that quoted them (a
✉️ copy, an end notice: bot/dm_copies.py). That is owed in the row (``erasure_shown_at``; a DM's in ``dm_copies``)
and done here in the background, one message at a time, unhurried: a `keep_words_days` sweep
may owe thousands, and members' answers share the bot's requests per second with these. A start takes up what a stop
left (cogs/privacy.py asks for a pass at start, after an erasure and after a sweep).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp
import discord

from bot.delivery import DiscordSink
from bot.dm_copies import redraw
from bot.errors import DeliveryError
from bot.jobs import JobRunner
from bot.store import Database, dm_copies
from bot.store.erasure import shown, unshown
from bot.store.refusals import log_refused_or_error

log = logging.getLogger(__name__)

# Owed messages read per query, the wait after Discord failed one (an outage), and the pause between two.
PER_PASS = 50
RETRY_SECONDS = 60.0
PAUSE_SECONDS = 0.25


class _TryLater(Exception):
    """Discord failed a redraw in a way that may pass: the pass stops and begins again later."""


class ErasedMessages:
    def __init__(self, runner: JobRunner, db: Database, clock: Callable[[], float]) -> None:
        self.runner, self.db, self.clock = runner, db, clock
        self._drawing: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def soon(self) -> None:
        """A pass in the background, unless one is under way (it takes what erasures add while it runs; one waiting
        out a failure of Discord's begins again at once: a new erasure's redraws do not wait out that minute)."""
        if self._drawing is None or self._drawing.done():
            self._drawing = self.runner.in_background(self._owed(), "erasure-redraws", resumable=True)
        else:
            self._wake.set()

    async def _owed(self) -> None:
        """Each owed message drawn again (a batch's once, for all its candidates) and marked, so that a restart
        takes up the rest. A message deleted since, or one the bot may no longer edit, owes nothing; Discord
        failing otherwise, or the database refusing, is tried again after ``RETRY_SECONDS``, owed still."""
        sink = self.runner.sink
        if not isinstance(sink, DiscordSink):
            return
        while not self.runner.stopping:
            try:
                await self._pass(sink)
                await self._dm_pass(sink)
                return
            except _TryLater as later:
                log.warning("erasure: %s; the messages of erased requests are drawn again later", later)
            except Exception as exc:
                log_refused_or_error(log, exc, "erasure: the messages of erased requests are drawn again later")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RETRY_SECONDS)

    async def _pass(self, sink: DiscordSink) -> None:
        """Every owed message, ``PER_PASS`` read at a time, until none is owed."""
        store = self.runner.store
        while owed := await unshown(self.db, limit=PER_PASS):
            drawn: set[str] = set()
            for job_id in owed:
                if self.runner.stopping:
                    return
                if job_id in drawn:
                    continue
                job = await store.get(job_id)
                group = [] if job is None else await store.batch(job.batch_id) if job.batch_id else [job]
                try:
                    if group:
                        await sink.redraw_erased(group)
                except (DeliveryError, discord.Forbidden) as exc:
                    log.info("erasure: job %s's message not drawn again, nothing to draw (%s)", job_id, exc)
                except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                    _unless_final(exc, f"Discord did not take job {job_id}'s redraw")
                except Exception:
                    # A bug of the bot's own: said once, and not owed for ever, so that it holds up no other.
                    log.exception("erasure: job %s's message could not be drawn again", job_id)
                ids = [job_id, *(each.id for each in group)]
                await shown(self.db, ids, now=self.clock())
                drawn.update(ids)
                await asyncio.sleep(PAUSE_SECONDS)

    async def _dm_pass(self, sink: DiscordSink) -> None:
        """Every owed DM (a ✉️ copy's part, an end notice: bot/dm_copies.py), as ``_pass`` does the messages."""
        store = self.runner.store
        while owed := await dm_copies.owed(self.db, limit=PER_PASS):
            for copy in owed:
                if self.runner.stopping:
                    return
                job = await store.get(copy.job_id)
                group = [] if job is None else await store.batch(job.batch_id) if job.batch_id else [job]
                try:
                    if group:
                        await redraw(sink.client, copy, group, sink.capabilities(group[0]))
                except (discord.NotFound, discord.Forbidden) as exc:
                    # Gone, or the member's DMs no longer the bot's to edit: nothing to draw.
                    log.info("erasure: DM %s not drawn again, nothing to draw (HTTP %s)", copy.message_id, exc.status)
                except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                    _unless_final(exc, f"Discord did not take the redraw of DM {copy.message_id}")
                except Exception:
                    log.exception("erasure: DM %s could not be drawn again", copy.message_id)
                await dm_copies.redrawn(self.db, copy.message_id)
                await asyncio.sleep(PAUSE_SECONDS)


def _unless_final(exc: Exception, what: str) -> None:
    """Raise _TryLater where Discord may take the redraw later (it failed: a 5xx, a 429, no answer); log and return
    where it never will (any other 4xx: a redraw it refuses as it is is refused every minute for ever, and held up every
    other behind it)."""
    if isinstance(exc, discord.HTTPException) and exc.status < 500 and exc.status != 429:
        log.warning("erasure: %s (HTTP %s, code %s); not tried again", what, exc.status, exc.code)
        return
    raise _TryLater(f"{what} ({exc})") from exc
