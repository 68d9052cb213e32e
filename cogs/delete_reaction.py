"""A ❌ reaction by the member who asked for an image deletes its message, as Midjourney's bot takes one.

Members coming from Midjourney remove a job they do not want by reacting ❌ to it. Here the message's Delete button
does that (and Cancel, for a job still running); the reaction does the same for the requester alone, from any
client, without looking for the button. The message is deleted with the bot's own token (a member cannot delete a
bot's message), as Delete does when its click's token cannot be used. A job still running is then cancelled, at its
provider where it can be and uncharged, by the message's deletion (cogs/deleted_messages.py), as when a moderator
deletes the message. Another member's ❌, or any other reaction, is only a reaction. A ❌ given while the bot was
away is found when it is back (cogs/missed_reactions.py, ``take_up``).

Every reaction in a server the bot is in reaches it (the guild-message-reactions intent, one of the defaults):
anything but ❌ is dropped before the database is asked, and a ❌ costs one indexed lookup of its message.
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.store.jobs import Job

log = logging.getLogger(__name__)

DELETE_REACTION = "❌"


class DeleteReaction(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.guild_id is None or payload.emoji.id is not None or payload.emoji.name != DELETE_REACTION:
            return
        me = self.bot.user.id if self.bot.user is not None else None
        if payload.user_id == me or payload.message_author_id not in (None, me):
            return
        job = await self.bot.services.runner.store.by_message(payload.message_id)
        if job is None or job.user_id != payload.user_id or job.guild_id != payload.guild_id:
            return
        await self._delete(job, payload.channel_id, payload.message_id, payload.user_id)

    async def take_up(self, job: Job, channel_id: int, message_id: int, reactors: set[int]) -> bool:
        """The ❌ found on ``job``'s message once the bot is back (cogs/missed_reactions.py): deleted if its member
        gave one while the bot was away, as then; whether it was."""
        if job.user_id is None or job.user_id not in reactors:
            return False
        return await self._delete(job, channel_id, message_id, job.user_id)

    async def _delete(self, job: Job, channel_id: int, message_id: int, user_id: int) -> bool:
        store = self.bot.services.runner.store
        batch = await store.batch(job.batch_id) if job.batch_id is not None else [job]
        channel = self.bot.get_partial_messageable(channel_id, guild_id=job.guild_id)
        try:
            await channel.get_partial_message(message_id).delete()
        except discord.NotFound:
            return False  # deleted already (a second ❌, the Delete button at the same moment)
        except discord.HTTPException as exc:
            log.info(
                "job %s: a ❌ reaction's message could not be deleted (HTTP %s, code %s)", job.id, exc.status, exc.code
            )
            return False
        # As the Delete button records it; a job still running is cancelled by the deletion itself.
        now = self.bot.clock()
        for candidate in batch:
            if candidate.terminal:
                await store.mark_deleted(candidate.id, by=user_id, now=now)
        log.info("job %s: its message was deleted by its member's ❌ reaction", job.id)
        return True


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(DeleteReaction(bot))
