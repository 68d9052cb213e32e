"""Recording what a member asked for within Discord's 3 s (new jobs, a Cancel), or answering while it waits.

Discord takes the first answer to a command, a click or a form for 3 s, then refuses it (404, Unknown
interaction) and shows the member "The application did not respond". A new job's answer is its own
message, so its row is written first: a write of milliseconds, as a rule. But SQLite lets one writer at a
time, and when another program holds the write lock (an operator's DB browser with an edit not yet
written, a ``VACUUM`` run by hand) each try waits the connection's ``busy_timeout`` (5 s) and fails
"database is locked". The member's answer, the error's included, came too late to be sent.

So the write gets until ``ANSWER_WITHIN`` seconds after Discord made the interaction; past that, the
bot answers "thinking..." (a deferred answer, 15 minutes to fill in) and the job's message replaces it
when the rows are written. While the database is busy the write is tried again for
``[database] busy_wait_seconds`` (30); then the member is told privately that the database is busy and
nothing was charged (cogs/errors.py), and the "thinking..." placeholder is removed. A full disk is not
waited on: that answer comes at once. A Cancel click is acknowledged silently instead (the clicked
message stays as it is) and the message shows "Cancelling" once the cancel is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import discord

from bot.store.refusals import storage_busy
from cogs.errors import made_but_lost

T = TypeVar("T")

log = logging.getLogger(__name__)

# Seconds after Discord made the interaction by which the bot answers, one way or the other: a second
# short of Discord's 3, for the answer's own trip.
ANSWER_WITHIN = 2.0
# Never wait less than this before "thinking...": the interaction's time comes from Discord's clock,
# and a bot whose clock runs ahead would otherwise defer every command.
LEAST_WAIT = 0.5
# The pause between tries of a write the database was too busy for (each try waits up to busy_timeout).
BUSY_PAUSE = 1.0


async def record_in_time(
    interaction: discord.Interaction[Any],
    record: Callable[[], Awaitable[T]],
    *,
    busy_wait: float,
    thinking: bool = True,
) -> tuple[T, bool]:
    """``record()``'s result, tried again while the database is busy for up to ``busy_wait`` seconds
    (``[database] busy_wait_seconds``), and whether the interaction was answered meanwhile (then the
    caller fills in the original answer rather than sending one). ``thinking``: that answer is the
    "thinking..." placeholder of a new message (a command, or a click that starts a job), removed again
    if ``record`` raises, so the caller's private error is a message of its own; otherwise it is a click's
    silent acknowledgement, and the caller then edits the clicked message (``edit_original_response``)."""
    task = asyncio.ensure_future(_while_busy(record, busy_wait))
    age = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    try:
        done, _ = await asyncio.wait({task}, timeout=min(ANSWER_WITHIN, max(ANSWER_WITHIN - age, LEAST_WAIT)))
    except asyncio.CancelledError:
        task.cancel()  # as if awaited directly: the handler's cancellation (a stop) reaches the write
        raise
    if task in done:
        return task.result(), False
    try:
        await interaction.response.defer(thinking=thinking)
    except discord.HTTPException as exc:
        if not made_but_lost(exc):
            # Too late even for that (the loop was held up): the caller's own answer fails the same way
            # and ends the jobs uncharged, as it always has.
            log.warning("could not answer an interaction in time (HTTP %s, code %s)", exc.status, exc.code)
            return await task, False
        # Discord made the "thinking..." answer and lost its reply to us (discord.py's resend was refused as
        # already acknowledged): it is there to fill in.
    if not thinking:
        return await task, True
    try:
        return await task, True
    except BaseException:
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
        raise


async def _while_busy(record: Callable[[], Awaitable[T]], busy_wait: float) -> T:
    give_up_at = time.monotonic() + busy_wait
    tries = 0
    while True:
        try:
            return await record()
        except Exception as exc:
            if not storage_busy(exc) or time.monotonic() + BUSY_PAUSE >= give_up_at:
                raise
            tries += 1
            if tries == 1:  # one line a request, not one a second while the lock lasts
                log.warning("a member's request waits for the database (%s); trying again", exc)
            await asyncio.sleep(BUSY_PAUSE)
