"""A command still working as Discord's 3 s run out answers "thinking…" privately; its answer follows.

Discord takes a command's first answer for 3 s, then refuses it (Unknown interaction) and shows the member
"The application did not respond". Commands answer in milliseconds as a rule. What makes one slow is
the database: while another program holds its write lock (an operator's DB browser, a ``VACUUM``), each
of the bot's statements waits ``busy_timeout`` (5 s), and a read queues behind them on the one
connection; a burst of the bot's own statements on a slow machine, too. A setting saved, a ban, a
report, a member's preferences: none of them promises anything before its answer, so the answer may wait.

So each command is watched: if it has not answered ``ANSWER_WITHIN`` s after Discord made it, and it is
waiting on the database, the bot answers "thinking…" for it, privately (a deferral), in time. Its own
answer, when it comes, replaces that (``answer_privately`` sends it as a follow-up), and so does an
error's (cogs/errors.py answers through it). Only while the command waits on the database: one that is
sending its answer just then must not be answered twice, and outside the database a command is quick.

Not watched: commands whose answer is a promise (/imagine's is its job's message: written before it is
sent, cogs/in_time.py) or a form (which cannot follow a deferral). They answer in time on their own and
say so with ``extras={ANSWERS_ON_ITS_OWN: True}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.store import Database

log = logging.getLogger(__name__)

# Seconds after Discord made the interaction by which a command has answered or is deferred: a second
# short of Discord's 3, for the answer's own trip (as cogs/in_time.py gives a write).
ANSWER_WITHIN = 2.0
# The extras key of a command that answers within Discord's window on its own (see the module's text).
ANSWERS_ON_ITS_OWN = "answers_on_its_own"
# Discord's answer to a response sent again after it had made the first (see cogs/errors.py made_but_lost).
_ALREADY_ACKNOWLEDGED = 40060

# Deferrals under way, by interaction id: an answer waits for one before it chooses how to go.
_DEFERRING: dict[int, asyncio.Future[Any]] = {}
# Interactions whose deferral Discord made but whose reply to the bot was lost: discord.py thinks them
# unanswered, yet only a follow-up reaches the member now.
_DEFERRED_UNSEEN: set[int] = set()
# Interactions whose command has begun its own answer: not to be deferred any more.
_ANSWERING: set[int] = set()
_WATCHERS: set[asyncio.Task[None]] = set()


async def answer_privately(interaction: discord.Interaction[Any], content: str | None = None, **kwargs: Any) -> None:
    """Answer ``interaction`` privately: as its response, or, once it was deferred (by the watcher, or
    answered already), as a follow-up, which replaces the "thinking…". Mentions never ping."""
    _ANSWERING.add(interaction.id)
    deferring = _DEFERRING.get(interaction.id)
    if deferring is not None:
        await asyncio.wait({deferring})  # its outcome decides how this answer goes; its errors are its own
    kwargs.setdefault("allowed_mentions", discord.AllowedMentions.none())
    try:
        if interaction.response.is_done() or interaction.id in _DEFERRED_UNSEEN:
            await interaction.followup.send(content or discord.utils.MISSING, ephemeral=True, **kwargs)
        else:
            await interaction.response.send_message(content, ephemeral=True, **kwargs)
    finally:
        _ANSWERING.discard(interaction.id)
        _DEFERRED_UNSEEN.discard(interaction.id)


def watch(interaction: discord.Interaction[Any], db: Database) -> None:
    """Defer ``interaction``'s answer if its command (the running task) is still waiting on the database
    ``ANSWER_WITHIN`` s after Discord made it (see the module's text)."""
    handler = asyncio.current_task()
    if handler is None:
        return
    age = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    watcher = asyncio.ensure_future(_defer_if_still_waiting(interaction, db, handler, ANSWER_WITHIN - max(age, 0.0)))
    _WATCHERS.add(watcher)
    watcher.add_done_callback(_WATCHERS.discard)


async def _defer_if_still_waiting(
    interaction: discord.Interaction[Any], db: Database, handler: asyncio.Task[Any], wait: float
) -> None:
    await asyncio.sleep(max(wait, 0.0))
    if handler.done() or interaction.response.is_done() or interaction.id in _ANSWERING:
        return
    if not db.in_use_by(handler):
        return  # slow elsewhere (Discord, say): it may be answering; an answer twice would fail
    began = time.monotonic()
    deferring = asyncio.ensure_future(interaction.response.defer(ephemeral=True, thinking=True))
    _DEFERRING[interaction.id] = deferring
    try:
        await deferring
    except discord.HTTPException as exc:
        if exc.code == _ALREADY_ACKNOWLEDGED:
            _DEFERRED_UNSEEN.add(interaction.id)  # made, its reply lost: the answer must be a follow-up
        else:
            log.warning("could not answer 'thinking' for a command waiting on the database (HTTP %s)", exc.status)
        return
    finally:
        del _DEFERRING[interaction.id]
    command = getattr(interaction.command, "qualified_name", "?")
    log.info("/%s: still waiting on the database, answered 'thinking' (%.1f s)", command, time.monotonic() - began)


class SlowAnswers(commands.Cog):
    """Watches every application command but those that answer in time on their own."""

    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self._previous = bot.tree.interaction_check
        bot.tree.interaction_check = self.interaction_check  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        self.bot.tree.interaction_check = self._previous  # type: ignore[method-assign]

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        # Called by discord.py in the task that then runs the command: the task the watcher follows.
        if not await self._previous(interaction):
            return False
        command = interaction.command
        watched = interaction.type is discord.InteractionType.application_command and command is not None
        if watched and not getattr(command, "extras", {}).get(ANSWERS_ON_ITS_OWN):
            watch(interaction, self.bot.services.db)
        return True


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(SlowAnswers(bot))
