"""Answering an interaction privately, whether its answer was given, deferred, or is being deferred now.

A command still waiting on its database as Discord's 3 s run out is answered "thinking…" by the bot
(cogs/slow_answers.py); its own answer, when it comes, must then be a follow-up, which replaces that. The
deferral may be under way just as the command answers: the answer waits for it, so the two never cross.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord

from bot.render import truncate

# Discord's answer to a second response to one interaction. discord.py sends a response again after a
# 5xx; when Discord had made the first and a proxy lost its reply, the second gets this (cogs/errors.py
# made_but_lost).
ALREADY_ACKNOWLEDGED = 40060

# Deferrals under way, by interaction id: an answer waits for one before it chooses how to go.
_DEFERRING: dict[int, asyncio.Future[Any]] = {}
# Interactions whose deferral Discord made but whose reply to the bot was lost: discord.py thinks them
# unanswered, yet only a follow-up reaches the member now.
_DEFERRED_UNSEEN: set[int] = set()
# Interactions whose handler has begun its own answer: not to be deferred, nor answered by anyone else.
_ANSWERING: set[int] = set()
# The most a message's content may hold. A longer answer is refused by Discord (400), and the member then
# gets no answer at all ("The application did not respond"): a refusal that quotes what they sent (a
# forged option value, a moderator's 2,000-character ban reason) is cut to fit instead.
MAX_CONTENT = 2000


def answering_now(interaction: discord.Interaction[Any]) -> bool:
    """Whether ``interaction`` has its answer, or is being given one."""
    return interaction.response.is_done() or interaction.id in _ANSWERING or interaction.id in _DEFERRING


async def answer_privately(interaction: discord.Interaction[Any], content: str | None = None, **kwargs: Any) -> None:
    """Answer ``interaction`` privately: as its response, or, once it was deferred (or answered already), as
    a follow-up, which replaces the "thinking…". Mentions never ping."""
    _ANSWERING.add(interaction.id)
    deferring = _DEFERRING.get(interaction.id)
    if deferring is not None:
        await asyncio.wait({deferring})  # its outcome decides how this answer goes; its errors are its own
    kwargs.setdefault("allowed_mentions", discord.AllowedMentions.none())
    if content is not None and len(content) > MAX_CONTENT:
        content = truncate(content, MAX_CONTENT)
    try:
        if interaction.response.is_done() or interaction.id in _DEFERRED_UNSEEN:
            await interaction.followup.send(content or discord.utils.MISSING, ephemeral=True, **kwargs)
        else:
            await interaction.response.send_message(content, ephemeral=True, **kwargs)
    finally:
        _ANSWERING.discard(interaction.id)
        _DEFERRED_UNSEEN.discard(interaction.id)


async def defer_privately(interaction: discord.Interaction[Any]) -> None:
    """Answer "thinking…", privately; an answer sent meanwhile waits for this (see ``answer_privately``).
    Raises discord.HTTPException, but for a deferral Discord made whose reply was lost (then the answer
    goes as a follow-up)."""
    deferring = asyncio.ensure_future(interaction.response.defer(ephemeral=True, thinking=True))
    _DEFERRING[interaction.id] = deferring
    try:
        await deferring
    except discord.HTTPException as exc:
        if exc.code != ALREADY_ACKNOWLEDGED:
            raise
        _DEFERRED_UNSEEN.add(interaction.id)
    finally:
        del _DEFERRING[interaction.id]
