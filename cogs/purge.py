"""``/mod purge``: a member's images of the last hours deleted at once, as Discord's ban deletes a member's messages.

A member who made offensive images that passed every filter (or a raid of accounts) leaves them in the bot's
messages, not their own: Discord's "delete message history" on a ban does not reach them, and a moderator deleted
them one Delete button at a time. ``/mod purge member:@x hours:24`` deletes every message of the bot's showing a
request of theirs asked in that time, in this server (the latest first, ``MOST`` requests at most a run): those still
being made are cancelled, uncharged, as any deleted message's are (cogs/deleted_messages.py); those delivered stay
charged (the member got them). Each row is marked deleted by the moderator (``/jobs`` no longer links it); the
gallery's posts of those images go with them (cogs/gallery.py), and the bot's DMs showing them (✉️ copies, end
notices: bot/store/dm_copies.py). The moderation log says who purged whom, and how
many. It stops none of the member's future requests: ``/mod ban`` does that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord

from bot.app import Bananacord
from bot.store import dm_copies
from bot.wording import counted
from cogs.private_answers import answer_privately

log = logging.getLogger(__name__)

# The most requests one purge reads (a batch's images share one message): past them, the answer says to run it again.
MOST = 500
# While it deletes (Discord takes a few deletions a second), the answer says how far it has got this often.
PROGRESS_SECONDS = 5.0


@dataclass(slots=True)
class Purge:
    """What a purge did."""

    messages: int = 0  # deleted by it
    images: int = 0  # the requests those messages showed
    cancelled: int = 0  # still being made: cancelled, uncharged
    gone: int = 0  # messages deleted already (by someone else meanwhile)
    refused: int = 0  # messages Discord would not let the bot delete (a channel it can no longer reach)
    copies: int = 0  # DMs showing those requests (✉️ copies, end notices) deleted with them
    more: bool = False  # MOST reached: older ones are left for another run

    def words(self, user_id: int, hours: float) -> str:
        """The moderator's answer, and the moderation log's."""
        span = f"the last {hours:g} hour{'' if hours == 1 else 's'}"
        if not (self.messages or self.gone or self.refused):
            return f"<@{user_id}> has no image of mine shown in this server from {span}."
        said = f"Deleted {counted(self.messages, 'message')} of <@{user_id}>'s images from {span}"
        said += f" ({counted(self.images, 'image')})." if self.images != self.messages else "."
        if self.copies:
            said += f" With them, {self.copies} cop{'y' if self.copies == 1 else 'ies'} the bot had sent by DM."
        if self.cancelled:
            said += f" {counted(self.cancelled, 'request')} still being made {_was(self.cancelled)} cancelled (not "
            said += "charged)."
        if self.gone:
            said += f" {counted(self.gone, 'message')} {_was(self.gone)} deleted already."
        if self.refused:
            said += (
                f" {counted(self.refused, 'message')} could not be deleted: the bot can no longer reach "
                f"{'its channel' if self.refused == 1 else 'their channels'} (`/admin check` says where)."
            )
        if self.more:
            said += f" These were the latest {MOST} requests: run it again for older ones."
        return said


class ProgressNote:
    """The moderator's answer while a purge goes: a note of how far it has got, once it has taken a while (sent after
    the command's "thinking…"), edited as it goes and into the answer at its end."""

    def __init__(self, interaction: discord.Interaction[Any], member: int) -> None:
        self.interaction = interaction
        self.member = member
        self.note: discord.WebhookMessage | None = None

    async def progress(self, done: int, of: int) -> None:
        words = f"Deleting <@{self.member}>'s images: {done} of {counted(of, 'message')} so far…"
        try:
            if self.note is not None:
                await self.note.edit(content=words, allowed_mentions=discord.AllowedMentions.none())
            else:
                self.note = await self.interaction.followup.send(
                    words, ephemeral=True, wait=True, allowed_mentions=discord.AllowedMentions.none()
                )
        except discord.HTTPException as exc:  # only a note: the purge goes on
            log.info("purge: its progress not shown (HTTP %s)", exc.status)

    async def answer(self, words: str) -> None:
        try:
            if self.note is not None:
                await self.note.edit(content=words, allowed_mentions=discord.AllowedMentions.none())
            else:
                await answer_privately(self.interaction, words)
        except discord.HTTPException as exc:
            # Past the interaction's 15 minutes (a purge that long): done all the same, and in /mod log.
            log.warning("purge: its answer not shown (HTTP %s): %s", exc.status, words)


async def _delete_copies(bot: Bananacord, job_ids: list[str]) -> int:
    """The bot's DMs showing these requests (a ✉️ copy sent to a member, an end notice: bot/store/dm_copies.py) deleted
    too: the image is gone from the server, and the bot's own DMs are its to delete. How many were."""
    gone: list[int] = []
    deleted = 0
    for copy in await dm_copies.of_jobs(bot.services.db, job_ids):
        try:
            await bot.get_partial_messageable(copy.channel_id).get_partial_message(copy.message_id).delete()
            deleted += 1
        except discord.NotFound:
            pass  # deleted already (a DM channel gone with its member's account)
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            why = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
            log.info("purge: DM %s not deleted (%s)", copy.message_id, why)
            continue
        gone.append(copy.message_id)
    await dm_copies.forget(bot.services.db, gone)
    return deleted


def _was(n: int) -> str:
    return "was" if n == 1 else "were"


async def purge(
    bot: Bananacord,
    guild_id: int,
    user_id: int,
    *,
    since: float,
    by: int,
    progress: Callable[[int, int], Awaitable[None]],
) -> Purge:
    """Delete the bot's messages showing ``user_id``'s requests in ``guild_id`` asked since ``since`` (the bot's
    clock), for the moderator ``by``; ``progress(done, of)`` is awaited now and then while it goes."""
    runner = bot.services.runner
    rows = await runner.store.shown_of_member(guild_id, user_id, since=since, limit=MOST)
    shown: dict[tuple[int, int], list[tuple[str, bool]]] = {}  # (channel, message) -> its requests
    for job_id, channel_id, message_id, unfinished in rows:
        shown.setdefault((channel_id, message_id), []).append((job_id, unfinished))
    done = Purge(more=len(rows) == MOST)
    told_at = time.monotonic()
    for turn, ((channel_id, message_id), jobs) in enumerate(shown.items()):
        if runner.stopping:
            break
        if time.monotonic() - told_at >= PROGRESS_SECONDS:
            await progress(turn, len(shown))
            told_at = time.monotonic()
        await delete_shown(bot, done, guild_id, channel_id, message_id, jobs, by=by)
    return done


async def delete_shown(
    bot: Bananacord,
    done: Purge,
    guild_id: int,
    channel_id: int,
    message_id: int,
    jobs: list[tuple[str, bool]],
    *,
    by: int,
) -> None:
    """Delete one of the bot's messages showing ``jobs`` ((request, unfinished)), for the moderator ``by``, and end
    its requests: those being made cancelled, the others marked; ``done`` counts it."""
    runner = bot.services.runner
    unfinished = [job_id for job_id, running in jobs if running]
    ended = [job_id for job_id, running in jobs if not running]
    message = bot.get_partial_messageable(channel_id, guild_id=guild_id).get_partial_message(message_id)
    gone = True
    try:
        await message.delete()
    except discord.NotFound:  # deleted meanwhile, by someone Discord does not name
        done.gone += 1
        await runner.store.mark_gone(ended, now=bot.clock())
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
        why = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
        log.info("purge: message %s in channel %s not deleted (%s)", message_id, channel_id, why)
        done.refused += 1
        gone = False  # still shown: those being made are cancelled all the same, their message saying by whom
    else:
        done.messages += 1
        done.images += len(jobs)
        now = bot.clock()
        for job_id in ended:
            await runner.store.mark_deleted(job_id, by=by, now=now)
    if gone and ended:
        done.copies += await _delete_copies(bot, ended)
    for job_id in unfinished:
        # A message gone ends its request silently (the delete's own event may have got there first).
        await runner.cancel(job_id, by_user=by, message_gone=gone)
        done.cancelled += 1
        if gone:
            await runner.store.mark_deleted(job_id, by=by, now=bot.clock())
