"""A ⭐ reaction on one of the bot's images stars it for the member who reacted, as Midjourney's did for its gallery.

In a busy channel an image scrolls away, and `/jobs` lists only the member's own. A member stars what they like, theirs
or another member's, by reacting ⭐, and finds them again with `/jobs starred:True` (links to their messages, where
the buttons still work); taking the ⭐ back unstars it, and a deleted message takes its stars with it. A batch's
message stars each image it shows. Stars are kept in SQLite (bot/store/starred.py), one row per member and image,
and cost nobody anything.

With a gallery set (/admin gallery), an image starred by enough members is posted there (cogs/gallery.py).

A ⭐ given while the message's images are still being made (a batch's later ones too) waits for them
(cogs/image_waits.py): once they have all ended, each member whose ⭐ is still on the message stars every image it
shows, and the gallery looks at them.

Every reaction in a server reaches the bot (the guild-message-reactions intent, one of the defaults): anything but ⭐
is dropped before the database is asked. A ⭐ given or taken back while the bot was away never reaches it (Discord
does not deliver missed events): the bot reads the ⭐ on its recent images when it is back (cogs/missed_reactions.py)
and makes the stars what they say (``take_up``).
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.models import JobState
from bot.store.erasure import erased_since
from bot.store.jobs import Job
from bot.store.starred import Starred
from cogs.gallery import Gallery
from cogs.image_waits import ImageWaits, Reacted

log = logging.getLogger(__name__)

# ⭐ as Discord sends it (with or without the emoji presentation selector).
STARS = frozenset({"⭐", "⭐\ufe0f"})


class StarReaction(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self.starred = Starred(bot.services.db)
        # The ⭐ on images still being made (a batch's later ones included), waiting for them.
        self._waits = ImageWaits(bot, "⭐", self._all_shown)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._record(payload, starred=True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._record(payload, starred=False)

    async def _record(self, payload: discord.RawReactionActionEvent, *, starred: bool) -> None:
        if payload.emoji.id is not None or payload.emoji.name not in STARS:
            return  # before the database: most reactions are something else
        try:
            batch = await self._reacted_on(payload)
            if any(not each.terminal for each in batch):
                # The message's images still to come are starred (or not) once they have all ended, for whoever's
                # ⭐ is on it then.
                where = Reacted(payload.guild_id or 0, payload.channel_id, payload.message_id, payload.user_id)
                if starred:
                    self._waits.add(batch[0], where, live=True)
                else:
                    self._waits.remove(payload.message_id, payload.user_id)
            jobs = [each for each in batch if each.state is JobState.DELIVERED]
            if not jobs:
                return
            ids = [job.id for job in jobs]
            if starred:
                await self.starred.star(payload.guild_id or 0, payload.user_id, ids, now=self.bot.clock())
            else:
                await self.starred.unstar(payload.guild_id or 0, payload.user_id, ids)
        except Exception as exc:  # the database held up or refusing: a star is no job's business, and no error
            log.warning("a ⭐ by member %s was not recorded (%s)", payload.user_id, type(exc).__name__)
            return
        log.info("member %s %s job(s) %s", payload.user_id, "starred" if starred else "unstarred", ", ".join(ids))
        await self._to_gallery(payload.guild_id or 0, jobs)

    async def take_up(self, guild_id: int, channel_id: int, message_id: int, reactors: set[int]) -> tuple[int, int]:
        """The stars of the images of a message made what its ⭐ say, read once the bot is back: starred by whoever
        reacted ⭐ while it was away, unstarred by whoever took theirs back then; its images still being made, once
        they show. How many starred, unstarred."""
        batch = await self._batch(guild_id, message_id)
        if any(not each.terminal for each in batch):
            for who in reactors:
                self._waits.add(batch[0], Reacted(guild_id, channel_id, message_id, who), live=False)
        jobs = [each for each in batch if each.state is JobState.DELIVERED]
        if not jobs:
            return 0, 0
        ids = [job.id for job in jobs]
        starrers = await self.starred.starrers(guild_id, ids)
        now = self.bot.clock()
        gained, lost = reactors - starrers, starrers - reactors
        # A member who erased their words (/privacy) since the image was shown lost their star on it then; the ⭐
        # Discord still shows may be that one, not one given while the bot was away.
        shown_at = min(job.finished_at or job.updated_at for job in jobs)
        gained -= await erased_since(self.bot.services.db, guild_id, gained, shown_at)
        if gained:
            await self.starred.star_by(guild_id, gained, ids, now=now)
        if lost:
            await self.starred.unstar_by(guild_id, lost, ids)
        if gained or lost:
            await self._to_gallery(guild_id, jobs)
        return len(gained), len(lost)

    async def _all_shown(self, job: Job, where: Reacted, members: dict[int, bool]) -> None:
        """The images a ⭐ waited for have all ended: each member whose ⭐ is still on the message stars those shown."""
        batch = await self._batch(where.guild_id, where.message_id)
        jobs = [each for each in batch if each.state is JobState.DELIVERED]
        if not jobs:
            return
        try:
            # A member who erased their words (/privacy) since the request lost their stars then: a ⭐ given before
            # that, and waiting, is not made a star after it.
            starrers = set(members) - await erased_since(
                self.bot.services.db, where.guild_id, set(members), job.created_at
            )
            if not starrers:
                return
            await self.starred.star_by(where.guild_id, starrers, [each.id for each in jobs], now=self.bot.clock())
        except Exception as exc:  # the database held up or refusing, as a live ⭐'s
            log.warning("⭐ on job %s's message were not recorded once it showed (%s)", job.id, type(exc).__name__)
            return
        log.info(
            "member(s) %s starred job(s) %s once shown", ", ".join(map(str, members)), ", ".join(j.id for j in jobs)
        )
        await self._to_gallery(where.guild_id, jobs)

    async def _to_gallery(self, guild_id: int, jobs: list[Job]) -> None:
        """The server's gallery (cogs/gallery.py) takes the images that have its stars now, and shows the stars anew
        on those it has."""
        gallery = self.bot.get_cog("Gallery")
        if not isinstance(gallery, Gallery):
            return
        try:
            await gallery.consider(guild_id, jobs)
        except Exception as exc:  # the database held up or refusing: the next ⭐ tries again
            log.warning("guild %s: the gallery did not look at job(s) %s (%s)", guild_id, jobs[0].id, exc)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if payload.guild_id is not None:
            await self._forget([payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        if payload.guild_id is not None:
            await self._forget(list(payload.message_ids))

    async def _forget(self, message_ids: list[int]) -> None:
        """A deleted message's images leave their starrers' lists (deleted by a moderator in their client, a purge,
        the Delete button or ❌): a link to it would lead nowhere."""
        try:
            gone = await self.starred.forget_messages(message_ids)
        except Exception as exc:  # the database held up or refusing: the list still leaves out one deleted by the bot
            log.warning("stars on %d deleted message(s) were not forgotten (%s)", len(message_ids), type(exc).__name__)
            return
        if gone:
            log.info("%d star(s) forgotten with their deleted message(s)", gone)

    async def _reacted_on(self, payload: discord.RawReactionActionEvent) -> list[Job]:
        """The images a ⭐ on one of the bot's messages stands for: every one of its message (a batch's candidates);
        none for any other reaction or message (a removal names no author: the message is known by its job)."""
        if payload.guild_id is None or payload.emoji.id is not None or payload.emoji.name not in STARS:
            return []
        me = self.bot.user.id if self.bot.user is not None else None
        if payload.user_id == me or payload.message_author_id not in (None, me):
            return []
        return await self._batch(payload.guild_id, payload.message_id)

    async def _batch(self, guild_id: int, message_id: int) -> list[Job]:
        """Every image of the bot's message ``message_id``, made, being made or ended without one (a batch's
        candidates); none for another message."""
        store = self.bot.services.runner.store
        job = await store.by_message(message_id)
        if job is None or job.guild_id != guild_id:
            return []
        return await store.batch(job.batch_id) if job.batch_id is not None else [job]


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(StarReaction(bot))
