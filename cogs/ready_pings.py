"""A slow image pings its member when it is ready.

A job's image appears by an edit of the message that showed its progress, and Discord notifies nobody of an
edit: a member who went to another channel while Nano Banana Pro worked for a minute would not know the image
is there (Midjourney's bot posts each result anew, pinging its member). So an image that took at least
``[imagine] ping_after_seconds`` is followed by a short reply to its message mentioning the member, who turns
it off with ``/preferences ping:False``. Once per request: a lone job's image, a batch's first (the others
follow in the same message, bot/job_delivery.py). At most once: the ping is sent after the delivery is written
and is not tried again (a restart in between sends none); its nonce makes a send Discord took twice one
message. It mentions the member and nobody else: the prompt is not in it.
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.events import ImageReady
from bot.nonces import message_nonce

log = logging.getLogger(__name__)


class ReadyPings(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_image_ready(self, event: ImageReady) -> None:
        job = event.job
        imagine = self.bot.settings.imagine
        guild_id, channel_id, user_id, message_id = job.guild_id, job.channel_id, job.user_id, job.message_id
        if not imagine.ping_when_ready or guild_id is None or channel_id is None or user_id is None:
            return
        if message_id is None:
            return  # shown in no message of a channel (the CLI's jobs)
        if self.bot.clock() - job.created_at < imagine.ping_after_seconds:
            return  # the member was most likely watching it
        try:
            if (await self.bot.services.preferences.get(guild_id, user_id)).ping is False:
                return
            channel = self.bot.get_partial_messageable(channel_id, guild_id=guild_id)
            await channel.send(
                f"<@{user_id}> your image is ready."
                if job.batch_id is None
                else f"<@{user_id}> your first image is ready; the others follow in the same message.",
                reference=discord.MessageReference(
                    message_id=message_id, channel_id=channel_id, fail_if_not_exists=False
                ),
                mention_author=False,
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=[discord.Object(user_id)], replied_user=False
                ),
                nonce=message_nonce("ready-ping", job.batch_id or job.id),
            )
        except discord.HTTPException as exc:
            # No right to post here (a slash command needs none), or Discord failing: the image is in its message
            # all the same; a ping later than now would be noise.
            log.info("job %s: its member was not pinged that it is ready (HTTP %s)", job.id, exc.status)
        except Exception as exc:
            log.warning("job %s: its member was not pinged that it is ready (%s)", job.id, type(exc).__name__)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(ReadyPings(bot))
