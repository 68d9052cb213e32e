"""⭐, ✉️ and ❌ given while the bot was away, taken up once it is back.

Discord delivers no event the bot missed while away (stopped for a restart or an update, or a gateway session it could
not resume): a ✉️ given then brought no copy, a member's ❌ on their own image deleted nothing, and a ⭐ given or taken
back then left ``/jobs starred:`` as it was. When a session begins after such a time (a start after an earlier run, a
session Discord would not resume), the bot reads again the messages of its latest images (``RECENT`` at most, shown
within ``LOOKBACK_SECONDS`` before it went away, or since), one at a time in the background, and who reacted ⭐, ✉️
and ❌ on each: a message whose member reacted ❌ is deleted (cogs/delete_reaction.py ``take_up``), the stars become
what the ⭐ say (cogs/star_reaction.py ``take_up``), and each member whose ✉️ had no copy gets one
(cogs/dm_reaction.py ``take_up``); an image deleted meanwhile takes its gallery post with it, as a live delete does.
Then the ⭐, ✉️ and ❌ on the messages of images still being made (``RECENT`` at most): its member's ❌ deletes one
(its images cancelled, uncharged), and each ⭐ and ✉️ waits for its images (cogs/image_waits.py), which are starred
and copied once they show. Then the gallery's posts of that time
(cogs/gallery.py, ``RECENT_POSTS`` at most): one whose image's member reacted ❌ on it is taken down.
Reactions on older images are not read: each read is a request to Discord, and members react to what is new.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp
import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.store.refusals import log_refused_or_error
from bot.time_away import TimeAway
from cogs.delete_reaction import DELETE_REACTION, DeleteReaction
from cogs.dm_reaction import ENVELOPES, DmReaction
from cogs.gallery import Gallery
from cogs.image_waits import Reacted
from cogs.star_reaction import STARS, StarReaction

log = logging.getLogger(__name__)

# How far back before the bot went away its images are read again, how many at most, and the pause between two.
LOOKBACK_SECONDS = 86_400.0
RECENT = 100
# And the gallery's posts (cogs/gallery.py) of that time, for their member's ❌: how many at most.
RECENT_POSTS = 25
PAUSE_SECONDS = 0.05
# How long the reading waits for the images a stop caught being delivered (``_delivered_again``).
DELIVERING_WAIT_SECONDS = 120.0


class MissedReactions(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self._away = TimeAway(bot.last_alive, "missed-reactions")

    async def cog_unload(self) -> None:
        await self._away.stop()

    @commands.Cog.listener()
    async def on_disconnect(self) -> None:
        self._away.disconnected()

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        self._away.resumed()

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        since = self._away.new_session()
        if since is not None:
            self._away.read_back(self._read_logged(since))

    async def _read_logged(self, since: float) -> None:
        try:
            await self.read(since)
        except Exception as exc:
            log_refused_or_error(log, exc, "reactions given while the bot was away: not all were read")

    async def read(self, since: float) -> int:
        """Take up the ⭐ and ✉️ on the bot's latest images, for a time away that began at ``since`` (wall clock);
        how many messages were read."""
        store = self.bot.services.runner.store
        await self._delivered_again()
        # Rows are stamped by the bot's clock.
        start = self.bot.clock() - (time.time() - since) - LOOKBACK_SECONDS
        # Those still being made first: one delivered between the two reads is then in the first, and read.
        unfinished = await store.unfinished_shown_since(start, limit=RECENT)
        shown = await store.images_shown_since(start, limit=RECENT)
        read = starred = unstarred = copies = deleted = 0
        for guild_id, channel_id, message_id in shown:
            if self.bot.services.runner.stopping:
                break
            try:
                stars, envelopes, crosses = await self._reactors(guild_id, channel_id, message_id)
            except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.info("reactions on message %s not read (%s)", message_id, exc)
                continue
            read += 1
            star_cog, envelope_cog = self.bot.get_cog("StarReaction"), self.bot.get_cog("DmReaction")
            cross_cog = self.bot.get_cog("DeleteReaction")
            if crosses and isinstance(cross_cog, DeleteReaction):
                job = await store.by_message(message_id)
                if (
                    job is not None
                    and job.guild_id == guild_id
                    and await cross_cog.take_up(job, channel_id, message_id, crosses)
                ):
                    deleted += 1
                    continue  # its member deleted it: nothing more to take up there
            if isinstance(star_cog, StarReaction):
                # A message deleted while the bot was away (no reactions left): its stars go, as a live delete's do.
                gained, lost = await star_cog.take_up(guild_id, channel_id, message_id, stars)
                starred, unstarred = starred + gained, unstarred + lost
            if envelopes and isinstance(envelope_cog, DmReaction):
                job = await store.by_message(message_id)
                if job is not None and job.guild_id == guild_id:
                    copies += await envelope_cog.take_up(
                        job, Reacted(guild_id, channel_id, message_id, 0), sorted(envelopes)
                    )
            await asyncio.sleep(PAUSE_SECONDS)
        read_already = {message_id for _, _, message_id in shown}
        await self._read_unfinished([where for where in unfinished if where[2] not in read_already])
        await self._read_gallery(since - LOOKBACK_SECONDS)
        log.info(
            "reactions given while the bot was away: %d of %d image message(s) read; %d starred, %d unstarred, "
            "%d ✉️ copies sent for, %d deleted by their member's ❌",
            read,
            len(shown),
            starred,
            unstarred,
            copies,
            deleted,
        )
        return read

    async def _read_unfinished(self, unfinished: list[tuple[int, int, int]]) -> int:
        """The ⭐, ✉️ and ❌ on the messages ``unfinished`` of images still being made when the reading began (a batch
        whose other images were shown is read with those): given while the bot was away, or before it stopped (a
        ✉️'s member told the copy comes once the image shows). Its member's ❌ deletes the message (and so cancels its
        images, uncharged), as live; each ⭐ and ✉️ waits for its images again (cogs/image_waits.py). How many
        members' reactions wait."""
        store = self.bot.services.runner.store
        star_cog, envelope_cog = self.bot.get_cog("StarReaction"), self.bot.get_cog("DmReaction")
        cross_cog = self.bot.get_cog("DeleteReaction")
        awaited = deleted = 0
        for guild_id, channel_id, message_id in unfinished:
            if self.bot.services.runner.stopping:
                break
            try:
                # Not as an image's message: one deleted meanwhile is for its job to find, as its delivery would.
                stars, envelopes, crosses = await self._reactors(guild_id, channel_id, message_id, image=False)
            except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.info("reactions on message %s not read (%s)", message_id, exc)
                continue
            job = await store.by_message(message_id) if stars or envelopes or crosses else None
            if job is not None and job.guild_id == guild_id:
                gone = False
                if crosses and isinstance(cross_cog, DeleteReaction):
                    gone = await cross_cog.take_up(job, channel_id, message_id, crosses)
                if gone:
                    deleted += 1  # its member deleted it: nothing more to take up there
                else:
                    if stars and isinstance(star_cog, StarReaction):
                        await star_cog.take_up(guild_id, channel_id, message_id, stars)
                        awaited += len(stars)
                    if envelopes and isinstance(envelope_cog, DmReaction):
                        where = Reacted(guild_id, channel_id, message_id, 0)
                        awaited += await envelope_cog.take_up(job, where, sorted(envelopes))
            await asyncio.sleep(PAUSE_SECONDS)
        if unfinished:
            log.info(
                "⭐, ✉️ and ❌ on %d message(s) of images still being made: %d wait for their images, %d deleted by "
                "their member's ❌",
                len(unfinished),
                awaited,
                deleted,
            )
        return awaited

    async def _delivered_again(self) -> None:
        """Wait (``DELIVERING_WAIT_SECONDS`` at most) for the images a stop caught being delivered: their message may
        show the image (the edit made, its answer or the row's write cut off) while the row is not marked delivered,
        so the reading, which reads delivered images, would pass over a ✉️ or ⭐ given on them for good."""
        runner = self.bot.services.runner
        delivering = await runner.store.delivering_shown()
        if delivering:
            log.info("reactions given while the bot was away: first %d image(s) being delivered again", len(delivering))
            waits = asyncio.gather(*(runner.wait_terminal(job_id) for job_id in delivering))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waits, DELIVERING_WAIT_SECONDS)

    async def _read_gallery(self, since: float) -> int:
        """The gallery's posts of images claimed since ``since`` (wall clock) read again: one whose image's member
        reacted ❌ on it is taken down (cogs/gallery.py). How many were."""
        gallery = self.bot.get_cog("Gallery")
        if not isinstance(gallery, Gallery):
            return 0
        taken_down = 0
        posts = await gallery.store.posts_since(since, limit=RECENT_POSTS)
        for guild_id, post in posts:
            if self.bot.services.runner.stopping or post.message_id is None:
                break
            try:
                _, _, crosses = await self._reactors(guild_id, post.channel_id, post.message_id, image=False)
            except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.info("reactions on gallery post %s not read (%s)", post.message_id, exc)
                continue
            if crosses and await gallery.take_up_crosses(post, crosses):
                taken_down += 1
            await asyncio.sleep(PAUSE_SECONDS)
        if posts:
            log.info("gallery posts read again: %d of %d taken down by their member's ❌", taken_down, len(posts))
        return taken_down

    async def _reactors(
        self, guild_id: int, channel_id: int, message_id: int, *, image: bool = True
    ) -> tuple[set[int], set[int], set[int]]:
        """Who reacted ⭐, who ✉️ and who ❌ on the message (the bot left out); none on one deleted since.
        ``image``: the message shows images of the bot's (else a gallery post)."""
        channel = self.bot.get_partial_messageable(channel_id, guild_id=guild_id)
        try:
            message = await channel.fetch_message(message_id)
        except discord.NotFound:
            if image:
                # Deleted while the bot was away: marked so (not read again at the next start, nor linked by /jobs),
                # and its gallery post deleted, as a live delete's is.
                store = self.bot.services.runner.store
                await store.mark_gone((await store.shown_in([message_id]))[1], now=self.bot.clock())
                gallery = self.bot.get_cog("Gallery")
                if isinstance(gallery, Gallery):
                    await gallery.take_down([message_id])
            return set(), set(), set()
        me = self.bot.user.id if self.bot.user is not None else None
        stars: set[int] = set()
        envelopes: set[int] = set()
        crosses: set[int] = set()
        for reaction in message.reactions:
            emoji = reaction.emoji
            if not isinstance(emoji, str) or emoji not in STARS | ENVELOPES | {DELETE_REACTION}:
                continue
            who = stars if emoji in STARS else envelopes if emoji in ENVELOPES else crosses
            # Super reactions are listed apart (Discord's type 1): a ⭐ given as one stars as live (its event is the
            # same), and must not read as taken back.
            kinds = [discord.ReactionType.normal] + ([discord.ReactionType.burst] if reaction.burst_count else [])
            for kind in kinds:
                async for user in reaction.users(type=kind):
                    if user.id != me:
                        who.add(user.id)
        return stars, envelopes, crosses


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(MissedReactions(bot))
