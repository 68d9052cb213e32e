"""Recording what a member asked for within Discord's 3 s (new jobs, a Cancel), or saying in time why not.

Discord takes the first answer to a command, a click or a form for 3 s, then refuses it (404, Unknown
interaction) and shows the member "The application did not respond". What a member asks for is written
before the answer says it was taken: a new job's answer is its own message, a Cancel's answer shows
"Cancelling". That order is what makes an answer a promise (a crash right after it finds the rows and
keeps it); an answer first, even a "thinking...", would leave a crash between the two with a message no
row stands behind, "thinking" until Discord gives up on it (bench/soak.py --db-locks found ten).

A write takes milliseconds, as a rule. But SQLite lets one writer at a time: while another program
holds the write lock (an operator's DB browser with an edit not yet written, a ``VACUUM`` run by hand)
each write waits the connection's ``busy_timeout`` (5 s by default, ``[database]
busy_timeout_seconds``) and then fails. So the write gets until
``ANSWER_WITHIN`` seconds after Discord made the interaction. Past that, if the database is held up (its
one thread on one statement for a second or more, from shortly before the member asked: ``held_up``;
under a lock longer than the 5 s wait, one write gives up and the next waits, so not only the latest
statement counts; and a lock that ended just before leaves the writes it held back queued ahead), the
member is told privately, in time, that the database is busy and nothing was charged (``AnsweredBusy``),
and the write is left to finish or fail on its own: if it is taken after all, ``undo`` takes it back (new jobs are
cancelled, uncharged, before anything starts or is shown). If it is only the bot's own statements queued
(a burst of commands), the write is waited for, as before: "busy" would be untrue there.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import discord

from bot.errors import BananacordError
from bot.store import Database
from cogs.errors import STORAGE_BUSY

T = TypeVar("T")

log = logging.getLogger(__name__)

# Seconds after Discord made the interaction by which the bot answers, one way or the other: a second
# short of Discord's 3, for the answer's own trip.
ANSWER_WITHIN = 2.0
# Never wait less than this: the interaction's time comes from Discord's clock, and a bot whose clock runs
# ahead would otherwise refuse every request the moment it arrives.
LEAST_WAIT = 0.5

# A statement running this long holds the database up (another program's lock, a stalled disk); the bot's
# own take milliseconds.
HELD_UP_SECONDS = 1.0
# ...counted from this long before the interaction was made (see held_up).
LOOK_BACK_SECONDS = 2.0
# Handlers that began recording what their member asked for: past their reads, no longer to be called
# off (cogs/slow_answers.py calls off only a handler that has done nothing yet).
RECORDING_BEGUN: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
# Writes still going after their member was told "busy", kept so the loop does not drop them.
_LATE: set[asyncio.Task[Any]] = set()


def held_up(db: Database, asked: float) -> bool:
    """Whether the database has been held up (one statement for ``HELD_UP_SECONDS`` or more, or nearly the
    whole busy_timeout if that is shorter: a statement refused after it) since a moment before ``asked``
    (``time.monotonic()``, when Discord made the interaction): a lock that ended just before the request
    holds it up still, since the writes it held back are queued before its own. With a busy_timeout under
    a second every refused write lasted less than one, and a burst of commands queued behind each other's
    refusals was waited for and answered after Discord's 3 s (bench/soak.py --busy-timeout 0.5)."""
    threshold = min(HELD_UP_SECONDS, 0.9 * db.busy_timeout)
    return db.held_up_since(asked - LOOK_BACK_SECONDS) >= threshold


def age_of(interaction: discord.Interaction[Any]) -> float:
    """Seconds since Discord made ``interaction`` (by its id's time; never below 0, if our clock is behind)."""
    return max((discord.utils.utcnow() - interaction.created_at).total_seconds(), 0.0)


class AnsweredBusy(BananacordError):
    """The write outlasted Discord's window: the member is told privately that the database is busy."""

    user_message = STORAGE_BUSY


async def record_in_time(
    interaction: discord.Interaction[Any],
    db: Database,
    record: Callable[[], Awaitable[T]],
    *,
    undo: Callable[[T], Awaitable[object]] | None = None,
) -> T:
    """``record()``'s result if it comes within Discord's window, or later while the bot's own statements
    are what it waits behind; if the database is held up (``held_up``: another program's lock), raise
    AnsweredBusy (the member reads why, privately) and leave the write running: if it is taken later,
    ``undo`` runs on its result."""
    handler = asyncio.current_task()
    if handler is not None:
        RECORDING_BEGUN.add(handler)
    task = asyncio.ensure_future(record())
    age = age_of(interaction)
    asked = time.monotonic() - age  # on the clock Database.held_up_since() reads
    try:
        done, _ = await asyncio.wait({task}, timeout=min(ANSWER_WITHIN, max(ANSWER_WITHIN - age, LEAST_WAIT)))
    except asyncio.CancelledError:
        task.cancel()  # as if awaited directly: the handler's cancellation (a stop) reaches the write
        raise
    if task in done:
        return task.result()
    if not held_up(db, asked):
        # A queue of the bot's own statements (a burst of commands), moving: the write is waited for, as
        # it always was. Its answer may come after Discord's 3 s, and then fails as it always has.
        return await task
    late = asyncio.ensure_future(_after_the_answer(task, undo))
    _LATE.add(late)
    late.add_done_callback(_LATE.discard)
    raise AnsweredBusy()


async def _after_the_answer(task: asyncio.Future[T], undo: Callable[[T], Awaitable[object]] | None) -> None:
    try:
        result = await task
    except Exception as exc:
        log.info("a request answered 'busy' was not written either (%s)", exc)
        return
    log.warning("a request answered 'busy' was written after all%s", "; taking it back" if undo else "")
    if undo is not None:
        await undo(result)
