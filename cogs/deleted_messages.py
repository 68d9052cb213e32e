"""A job whose message is deleted while it runs (by its member, a moderator, or a bulk purge) is
cancelled: at the provider where it can be, uncharged, and its slot among the member's jobs in flight
freed. Without this it ran on, to be delivered into a message that no longer exists.

Every message deleted in a server the bot is in reaches it (the guild-messages intent), so the lookup
is one indexed query (bot/store/jobs.py, ``active_shown_in``) per delete, or per bulk delete.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import discord
from discord.ext import commands

from bot.app import Bananacord

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

    async def _cancel_shown_in(self, message_ids: Collection[int]) -> None:
        runner = self.bot.services.runner
        for job_id in await runner.store.active_shown_in(message_ids):
            job = await runner.cancel(job_id, by_user=None, message_gone=True)
            if job is not None:
                log.info("job %s: its message was deleted; the job is %s", job_id, job.state)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(DeletedMessages(bot))
