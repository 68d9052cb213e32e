"""One app-command error handler: our errors become their ephemeral user_message; anything else an apology.

Buttons and forms do not pass through it (discord.py answers their failures with nothing, which the member
sees as "This interaction failed"): their handlers answer unmapped errors with ``answer_unexpected``, the
same apology. When the bot's storage refuses writes the answer says so, since nothing could be recorded.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import BananacordError
from bot.store.refusals import storage_busy, storage_refused
from cogs.private_answers import ALREADY_ACKNOWLEDGED, MAX_CONTENT, answer_privately

log = logging.getLogger(__name__)


# Discord's answer to a first response after its 3 s: the interaction is gone.
UNKNOWN_INTERACTION = 10062

STORAGE_REFUSED = (
    "I cannot save new requests right now: the bot's storage is not taking writes (its disk may be full). "
    "You were not charged for this; please try again in a while."
)
# Said to any request a busy database kept from being saved: a job, a Cancel, a setting, a ban.
STORAGE_BUSY = (
    "I cannot save this right now: the bot's database is busy (another program is holding it). "
    "Nothing was saved and you were not charged; please try again in a minute."
)


def storage_answer(exc: BaseException) -> str | None:
    """What to tell a member whose request could not be saved because of ``exc``; None if it is not that."""
    if storage_refused(exc):
        return STORAGE_REFUSED
    if storage_busy(exc):
        return STORAGE_BUSY
    return None


async def answer_unexpected(interaction: discord.Interaction[Any], error: BaseException, where: str) -> None:
    """Answer an interaction whose handler failed with an error nobody mapped: privately, with an id the log
    carries (the member would otherwise see Discord's bare "This interaction failed"), or, when the bot's
    storage refuses writes (the log may be refused too), with what is wrong and that nothing is charged."""
    error_id = secrets.token_hex(4)
    if storage_busy(error):
        # Another program's lock on the database, not a fault of the bot's: a line, not a traceback.
        log.warning("%s: the database is busy (another program holds its write lock): %s", where, error)
    else:
        log.error("unhandled error %s in %s", error_id, where, exc_info=error)
    message = (
        storage_answer(error) or f"Sorry, something went wrong on our side (error id `{error_id}`). It has been logged."
    )
    try:
        await send_ephemeral(interaction, message)
    except discord.HTTPException:
        log.warning("could not tell the member about an error (interaction expired?)")


async def send_ephemeral(interaction: discord.Interaction, message: str) -> None:
    """Answer privately, whether or not the interaction was already acknowledged (or deferred: see
    cogs/slow_answers.py)."""
    try:
        await answer_privately(interaction, message)
    except discord.HTTPException as exc:
        if not made_but_lost(exc):
            raise
        log.info("a private answer was made, but the reply to it was lost (the resend was refused: %s)", exc.code)


def made_but_lost(exc: BaseException) -> bool:
    """Whether an answer to an interaction failed only because Discord had made it already.

    discord.py marks a response done only once Discord confirms it, and sends it again after a 5xx. A
    40060 on a response therefore means its first try was made and the reply to it lost on the way (a
    proxy's 5xx): the member has the answer, and nothing is wrong with the bot. (A second response of
    our own would fail in discord.py, as InteractionResponded, before reaching Discord.)"""
    return isinstance(exc, discord.HTTPException) and exc.code == ALREADY_ACKNOWLEDGED


def answered_too_late(exc: BaseException) -> bool:
    """Whether an answer failed because Discord's 3 s had passed: the interaction is gone (10062)."""
    return isinstance(exc, discord.NotFound) and exc.code == UNKNOWN_INTERACTION


def settled_answer_failure(exc: BaseException, where: str) -> bool:
    """Log an answer's failure that leaves the bot nothing to do, and say whether it was one: made, its
    reply lost (the member has it); or too late (nothing more can be sent on the interaction; the member was
    shown "did not respond" or "This interaction failed", and the operator should know: a WARNING line, not
    an ERROR with a traceback)."""
    if made_but_lost(exc):
        log.info("%s: its answer was made, but the reply to it was lost (the resend was refused)", where)
        return True
    if answered_too_late(exc):
        # The bot was slow, or waited on its database, past Discord's 3 s.
        log.warning("%s: answered too late; Discord no longer takes an answer to it (10062)", where)
        return True
    return False


# Before the words a refused form or command had typed in it, given back (``with_typed``).
TYPED_BACK = "What you typed, to copy and send again:"


def with_typed(message: str, typed: str | None) -> str:
    """A refusal, and the words the member typed that it refused, in a code block to copy: a form closes when it is
    sent and Discord clears a slash command's box, so a long prompt refused for one blocked word, or a quota
    reached, was lost with it. Left off where it would not come back as typed: nothing typed, words holding a
    code fence (they would end the block), or an answer over Discord's 2,000 characters (it would be cut); and
    words holding a link: a Discord file link's signature, or an internal address a refusal names only by its
    kind, is not repeated in a message of the bot's (the refusal says which link)."""
    if typed is None or not typed.strip() or "```" in typed or "://" in typed:
        return message
    given = f"{message}\n\n{TYPED_BACK}\n```\n{typed}\n```"
    return given if len(given) <= MAX_CONTENT else message


async def answering(
    interaction: discord.Interaction[Any], where: str, handle: Awaitable[object], *, typed: str | None = None
) -> None:
    """Run a button's or a form's handler, answering its failure as the app-command handler does: our errors
    as their ``user_message``, privately (a form's, with the words typed in it: ``with_typed``); anything else
    with ``answer_unexpected``. Buttons and forms do not reach that handler, and discord.py would answer nothing
    (the member sees "This interaction failed") and log an ERROR with a traceback even for an answer that was
    only too late."""
    try:
        try:
            await handle
        except BananacordError as exc:
            await send_ephemeral(interaction, with_typed(exc.user_message, typed))
    except discord.HTTPException as exc:
        if not settled_answer_failure(exc, where):
            await answer_unexpected(interaction, exc, where)
    except Exception as exc:
        await answer_unexpected(interaction, exc, where)


def transformer_words(error: app_commands.TransformerError) -> str:
    """What to tell a member whose option discord.py could not turn into what the command takes.

    Mostly a user named for a command that acts on members: Discord sends one who has left the server
    without member data, and discord.py refuses them. Before, the member read "something went wrong" and the
    log had an ERROR with a traceback."""
    value = error.value
    if isinstance(value, discord.abc.User) and not isinstance(value, discord.Member):
        return (
            f"{value.mention} is not a member of this server (any more), so this command cannot act on them. "
            "Nothing was changed."
        )
    kind = error.type.name.replace("_", " ")
    return (
        f"Discord sent a value for one of this command's options that is not a usable {kind}. Nothing was "
        "changed: pick it again from Discord's list and try again."
    )


class ErrorHandler(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self._previous = bot.tree.on_error
        bot.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        self.bot.tree.on_error = self._previous  # type: ignore[method-assign]

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        command = getattr(interaction.command, "qualified_name", "?")
        if settled_answer_failure(original, f"/{command}"):
            return
        if isinstance(original, BananacordError):
            # The prompt of a command that takes one (/imagine, /blend) given back with the refusal.
            prompt = getattr(interaction.namespace, "prompt", None)
            message = with_typed(original.user_message, prompt if isinstance(prompt, str) else None)
        elif isinstance(original, app_commands.CheckFailure):
            message = str(original) or "You cannot use this command here."
        elif isinstance(original, app_commands.TransformerError):
            log.info("/%s: an option could not be used: %s", command, original)
            message = transformer_words(original)
        else:
            await answer_unexpected(interaction, original, f"/{command}")
            return
        try:
            await send_ephemeral(interaction, message)
        except discord.HTTPException:
            log.warning("could not tell the member about an error (interaction expired?)")

    @commands.Cog.listener()
    async def on_command_error(self, context: commands.Context[commands.Bot], error: commands.CommandError) -> None:
        # The bot has no prefix commands, but discord.py reads a message that starts with the bot's
        # @mention as one ("@Bananacord make it night", a reply to edit: cogs/replies.py). Not an error.
        if not isinstance(error, commands.CommandNotFound):
            log.error("prefix command error", exc_info=error)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(ErrorHandler(bot))
