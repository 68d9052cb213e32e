"""A job whose message is deleted while it runs (by its member, a moderator, or a bulk purge) is
cancelled: at the provider where it can be, uncharged, and its slot among the member's jobs in flight
freed. Without this it ran on, to be delivered into a message that no longer exists. An ended job's
message deleted so is marked deleted (``JobStore.mark_gone``): /jobs no longer links to it.

Every message deleted in a server the bot is in reaches it (the guild-messages intent), so the lookup
is one indexed query (bot/store/jobs.py, ``shown_in``) per delete, or per bulk delete. A deleted
channel takes its messages with it and Discord says so only once (CHANNEL_DELETE): every job still
running in it is cancelled the same way (``active_in``), as are a thread's (THREAD_DELETE) and a server's
when the bot is removed from it (GUILD_DELETE, or, removed while it was away, missing from the next READY).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.store.refusals import log_refused_or_error

log = logging.getLogger(__name__)


class DeletedMessages(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if payload.guild_id is not None:
            await self._cancel_shown_in([payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        if payload.guild_id is not None:
            await self._cancel_shown_in(payload.message_ids)

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        # Discord sends no MESSAGE_DELETE for the messages a deleted channel takes with it: without this,
        # each job there was found gone only at its next edit, or made and then refused at its upload.
        store = self.bot.services.runner.store
        await self._cancel(await store.active_in(channel.guild.id, channel.id), "its channel was deleted")

    @commands.Cog.listener()
    async def on_raw_thread_delete(self, payload: discord.RawThreadDeleteEvent) -> None:
        # The same for a thread (a forum's posts are threads); raw: sent whether or not it was cached.
        store = self.bot.services.runner.store
        await self._cancel(await store.active_in(payload.guild_id, payload.thread_id), "its thread was deleted")

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        # The bot was removed from the server (discord.py tells an outage apart: on_guild_unavailable). Its
        # messages there can no longer be edited, nor its members be told by DM unless they share another
        # server with it: nobody can be shown these jobs, so they end as if their messages were deleted.
        await self._cancel(await self.bot.services.runner.store.active_in(guild.id), "the bot left its server")

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        # A removal the bot never heard of: kicked while it was stopped, or while its gateway session was lost
        # (a new session, not a resume), Discord sends no GUILD_DELETE; the READY that follows lists no such
        # server. Its jobs ran on, polled and paid for, to be refused at delivery as a "delivery" failure. A
        # server in an outage is still listed (unavailable), so only one the bot has left is taken for gone.
        store = self.bot.services.runner.store
        present = {guild.id for guild in self.bot.guilds}
        for guild_id in await store.guilds_with_active_jobs():
            if guild_id not in present:
                await self._cancel(await store.active_in(guild_id), "the bot is no longer in its server")

    async def _cancel_shown_in(self, message_ids: Collection[int]) -> None:
        store = self.bot.services.runner.store
        active, ended = await store.shown_in(message_ids)
        await self._cancel(active, "its message was deleted")
        try:
            # Those it cancelled too: /jobs linked a cancelled request to its deleted message.
            gone = await store.mark_gone(active + ended, now=self.bot.clock())
        except Exception as exc:  # the database held up or refusing: /jobs still links the message, nothing worse
            log_refused_or_error(log, exc, "%d deleted message(s) not marked deleted", len(message_ids))
            return
        if gone:
            log.info("%d ended job(s) whose message was deleted in Discord marked deleted", gone)

    async def _cancel(self, job_ids: list[str], why: str) -> None:
        runner = self.bot.services.runner
        for job_id in job_ids:
            job = await runner.cancel(job_id, by_user=None, message_gone=True)
            if job is not None:
                log.info("job %s: %s; the job is %s", job_id, why, job.state)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(DeletedMessages(bot))
