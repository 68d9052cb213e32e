"""A request still waiting as Discord's 3 s run out is answered in time all the same.

Discord takes the first answer to a command, a click or a form for 3 s, then refuses it (Unknown
interaction) and shows the member "The application did not respond" or "This interaction failed".
Requests answer in milliseconds as a rule. What makes one slow is the database: while another program
holds its write lock (an operator's DB browser, a ``VACUUM``), each of the bot's writes waits
``busy_timeout`` (5 s by default, ``[database] busy_timeout_seconds``), and since the bot has one
connection its reads queue behind them; a burst of the bot's own statements on a slow machine, too. Or
Discord itself, asked for something first: a 502 that discord.py retries after 1 s and 3 s, a rate limit.

So each request is watched, and if it has not answered ``ANSWER_WITHIN`` s after Discord made it:

- A request whose answer promises nothing (a setting, a ban, a report, /jobs, a member's preferences) is
  answered "thinking…" privately (a deferral), whatever holds it up. Its own answer, when it comes,
  replaces that (cogs/private_answers.py sends it as a follow-up), and so does an error's.
- A request whose answer is a promise (/imagine's is its job's message; a Cancel's says it is taken; a
  form cannot follow a deferral) is never deferred. Once it records what it was asked (cogs/in_time.py
  ``record_in_time``), that answers in time. Before that it has only read, and done nothing: if the
  database is held up, or Discord is slow to give what it asked for (bot/asking_discord.py: fresh links
  for a Re-roll, the messages `references` links), it is called off and the member reads privately why
  and that nothing was saved. Waiting on anything else (the time to send its own answer), it is left be:
  it must not be answered twice. Such commands say so with ``extras={ANSWERS_ON_ITS_OWN: True}``; buttons
  and forms are watched this way by ``watched_answer``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.asking_discord import is_asking_discord
from bot.store import Database
from bot.store.turns import MEMBER_WAITING
from cogs.errors import STORAGE_BUSY, answering, send_ephemeral, settled_answer_failure
from cogs.in_time import ANSWER_WITHIN, LEAST_WAIT, RECORDING_BEGUN, age_of, held_up
from cogs.private_answers import answering_now, defer_privately

log = logging.getLogger(__name__)

# The extras key of a command whose answer is a promise (see the module's text).
ANSWERS_ON_ITS_OWN = "answers_on_its_own"
DISCORD_SLOW = (
    "Discord is slow to answer the bot right now, so nothing was started and you were not charged. "
    "Please try again in a moment."
)

_WATCHERS: set[asyncio.Task[None]] = set()


def watch(interaction: discord.Interaction[Any], db: Database, *, promise: bool, where: str) -> None:
    """Watch ``interaction``, whose request is the running task (see the module's text); ``promise``: its
    answer is a promise, never deferred."""
    handler = asyncio.current_task()
    if handler is None:
        return
    # Its reads and writes go ahead of the job loop's in the database's line (bot/store/turns.py); the
    # mark is the task's own, and so are the tasks it starts.
    MEMBER_WAITING.set(True)
    age = age_of(interaction)
    asked = time.monotonic() - age  # on the clock Database.held_up_since() reads
    # Never less than LEAST_WAIT: a bot whose clock runs ahead of Discord's finds every request old at once,
    # and called off each that paused to ask Discord for something (a linked message) the moment it did.
    wait = max(ANSWER_WITHIN - age, LEAST_WAIT)
    late = asyncio.ensure_future(_when_late(interaction, db, handler, wait, asked, promise, where))
    _WATCHERS.add(late)
    late.add_done_callback(_WATCHERS.discard)


async def watched_answer(
    interaction: discord.Interaction[Any],
    db: Database,
    where: str,
    handle: Awaitable[object],
    *,
    typed: str | None = None,
) -> None:
    """A button's or a form's handler, watched as a promise, its failures answered (cogs/errors.py
    ``answering``; a form's with the words ``typed`` in it)."""
    watch(interaction, db, promise=True, where=where)
    await answering(interaction, where, handle, typed=typed)


async def _when_late(
    interaction: discord.Interaction[Any],
    db: Database,
    handler: asyncio.Task[Any],
    wait: float,
    asked: float,
    promise: bool,
    where: str,
) -> None:
    await asyncio.sleep(wait)
    if handler.done() or answering_now(interaction):
        return
    on_database = db.in_use_by(handler)
    if promise:
        if on_database and handler not in RECORDING_BEGUN and held_up(db, asked):
            # Not while recording (its own deadline answers), nor for a queue of the bot's own statements,
            # moving: waited for, as it always was.
            await _call_off(interaction, handler, where, STORAGE_BUSY, "a database another program holds")
        elif is_asking_discord(handler) and handler not in RECORDING_BEGUN:
            await _call_off(interaction, handler, where, DISCORD_SLOW, "Discord, slow to answer")
        return
    # Whatever holds it up (the database, or Discord itself: `/mod logchannel`'s test post, rate-limited for
    # 4 s, made the moderator read "The application did not respond"), an answer that promises nothing can
    # come as a follow-up: such commands answer only through cogs/private_answers.py, which
    # ``answering_now`` sees, so one being sent just now is never deferred over.
    began = time.monotonic()
    try:
        await defer_privately(interaction)
    except discord.HTTPException as exc:
        if not settled_answer_failure(exc, where):
            log.warning("%s: could not answer 'thinking' while it waits (HTTP %s)", where, exc.status)
        return
    waits_on = "the database" if on_database else "Discord or its own work"
    log.info("%s: still waiting on %s, answered 'thinking' (%.1f s)", where, waits_on, time.monotonic() - began)


async def _call_off(
    interaction: discord.Interaction[Any], handler: asyncio.Task[Any], where: str, told: str, waits_on: str
) -> None:
    """The handler still waits on ``waits_on`` before it has recorded anything: it has only read (a database
    another program holds; Discord, for what it needs first: bot/asking_discord.py), so it is called off, with
    nothing to undo, and the member ``told`` in time rather than left with "This interaction failed"."""
    handler.cancel()
    log.warning("%s: still waiting on %s; called off and the member told", where, waits_on)
    try:
        await send_ephemeral(interaction, told)
    except discord.HTTPException as exc:
        if not settled_answer_failure(exc, where):
            log.warning("%s: could not tell the member it was called off (HTTP %s)", where, exc.status)


class SlowAnswers(commands.Cog):
    """Watches every application command (see the module's text)."""

    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self._previous = bot.tree.interaction_check
        bot.tree.interaction_check = self.interaction_check  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        self.bot.tree.interaction_check = self._previous  # type: ignore[method-assign]

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        # discord.py calls this in the task that then runs the command: the task the watcher follows.
        if not await self._previous(interaction):
            return False
        command = interaction.command
        if interaction.type is discord.InteractionType.application_command and command is not None:
            promise = bool(getattr(command, "extras", {}).get(ANSWERS_ON_ITS_OWN))
            watch(interaction, self.bot.services.db, promise=promise, where=f"/{command.qualified_name}")
        return True


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(SlowAnswers(bot))
