"""A member whose job's message Discord would not let the bot update is told how the job ended by DM.

The runner tries the final edit for about nine minutes (`[jobs] final_edit_retry_seconds`) and keeps the
debt across restarts; when every try is refused it reports EndNotShown, and this cog sends the same
card the message would have shown: a batch's (`/imagine count:N`) once, with the batch's card, when its last
candidate still owed is given up on (bot/job_messages.py ``_batch_end_given_up``). A message that was
deleted is not reported: nobody waits on it.
"""

from __future__ import annotations

import logging

import aiohttp
import discord
from discord.ext import commands

from bot import render
from bot.app import Bananacord
from bot.events import EndNotShown
from bot.nonces import message_nonce
from bot.store import dm_copies
from bot.store.refusals import log_refused_or_error
from cogs.discord_again import TRIES_AGAIN, again_on_failure

log = logging.getLogger(__name__)


class EndNotices(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_end_not_shown(self, event: EndNotShown) -> None:
        job = event.job
        if job.source != "discord" or job.user_id is None:
            return
        services, now = self.bot.services, self.bot.clock()
        where = f" in <#{job.channel_id}>" if job.channel_id is not None else ""
        if job.batch_id is None:
            embed = render.failure_embed(job, services.sink.capabilities(job), now=now)
            text = (
                f"Your image{where} has ended, but Discord would not let me update its message. This is how it ended:"
            )
        else:
            # One notice for the request, its candidates drawn as its message would have shown them.
            batch = await services.runner.store.batch(job.batch_id)
            embed = render.batch_embed(batch, services.sink.capabilities(batch[0]), now=now)
            text = (
                f"Your {len(batch)} images{where} have ended, but Discord would not let me update their message. "
                "This is how they ended:"
            )
        # A DM Discord fails is sent again (cogs/discord_again.py), its nonce naming the job: one Discord made but
        # whose answer was lost is the same message.
        waits = self.bot.settings.jobs.final_edit_retry_seconds[:TRIES_AGAIN]
        nonce = message_nonce("end-notice", job.batch_id or job.id)
        try:
            member = discord.Object(job.user_id)
            dm = await again_on_failure(lambda: self.bot.create_dm(member), waits, what=f"job {job.id}'s end notice")
            sent = await again_on_failure(
                lambda: dm.send(text, embed=embed, allowed_mentions=discord.AllowedMentions.none(), nonce=nonce),
                waits,
                what=f"job {job.id}'s end notice",
            )
        except discord.HTTPException as exc:  # DMs closed (403) or Discord still failing
            log.warning("job %s: could not tell its member by DM how it ended (HTTP %s)", job.id, exc.status)
            return
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("job %s: could not tell its member by DM how it ended (%s)", job.id, type(exc).__name__)
            return
        try:
            # Kept so that an erasure of the request's words reaches the notice too (bot/dm_copies.py).
            await dm_copies.record(
                services.db, sent.id, sent.channel.id, job.id, job.user_id, "end_notice", now=self.bot.clock()
            )
        except Exception as exc:
            log_refused_or_error(log, exc, "job %s: its end notice was sent but not recorded", job.id)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(EndNotices(bot))
