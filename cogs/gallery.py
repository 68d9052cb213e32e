"""A server's gallery: the images its members star most, posted once to a channel the admins choose.

Community servers keep a "starboard" channel of what their members liked best. An admin sets one with `/admin gallery
channel:#showcase stars:3`; from then on an image of the bot's that that many members starred with a ⭐
(cogs/star_reaction.py; its own member's ⭐ not counted, a ⭐ given while the bot was away counted once it reads it
back) is posted there, once: the image itself (uploaded again: a link to the original's file would stop working when
Discord's signature on it expires), who made it (named, pinging nobody), how many starred it (kept up to date as ⭐
come and go), and a link to the
original, whose message shows the prompt and keeps the buttons. An image made at a looser safety level than the
gallery's channel allows (an age-restricted channel's, or one the moderators loosened: /mod safety) is not posted:
members see there only what they would have been shown had it been made there. The prompt is not copied (nor the
original's alt text, which is the prompt): a member's words stay where their erasure (/privacy) and the words'
retention (``[privacy] keep_words_days``) reach them. The image deleted (its member's Delete or ❌, a moderator, a
purge) takes its gallery post with it; its member's ❌ on the post takes the post alone down, for good.

Each post is claimed in SQLite before it is made (bot/store/gallery.py), with a nonce, so two ⭐ at once, or a stop
between the post and its record, make one post; one a stop cut off between its claim and its post is made by the next
start (no later ⭐ may come for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial

import aiohttp
import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.delivery import as_upload
from bot.errors import BananacordError
from bot.images import PreparedImage
from bot.models import JobState
from bot.nonces import message_nonce
from bot.result_images import DEFAULT_UPLOAD_LIMIT
from bot.store.gallery import GalleryPost, GallerySetting, GalleryStore
from bot.store.jobs import Job
from bot.store.starred import Starred
from cogs.delete_reaction import DELETE_REACTION
from cogs.discord_again import TRIES_AGAIN, again_on_failure
from cogs.imagine import Imagine
from cogs.places import level_at, place_of_message

log = logging.getLogger(__name__)

GALLERY_COLOUR = discord.Colour(0xF5C518)
# The stars an image needs unless the admin says otherwise.
DEFAULT_STARS = 3
# A post's stars are shown anew at once, then at most once in this time: a flurry of ⭐ (a popular image, a raid)
# is one edit with the latest count, not one per ⭐ queued behind Discord's limit on a channel's edits. One post's
# edits are made one at a time, so the count shown is the latest: two edits at once could land in either order,
# leaving an older count showing for good.
STARS_EDIT_SECONDS = 2.0


def stars_line(stars: int) -> str:
    return f"⭐ **{stars}**"


def members(count: int) -> str:
    return "one member" if count == 1 else f"{count} members"


class Gallery(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self.store = GalleryStore(bot.services.db)
        self._starred = Starred(bot.services.db)
        self._resumed = False
        # Posts whose stars are to be shown anew: post -> (its channel, an image it shows), and those being edited.
        self._stars_owed: dict[int, tuple[int, Job]] = {}
        self._stars_editing: set[int] = set()

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Once per run: post what an earlier run claimed and stopped before posting (no later ⭐ may come for it)."""
        if self._resumed:
            return
        self._resumed = True
        self.bot.services.runner.in_background(self._post_unposted(), "gallery-unposted")

    async def _post_unposted(self) -> None:
        try:
            for job_id in await self.store.unposted():
                job = await self.bot.services.runner.store.get(job_id)
                guild_id = job.guild_id if job is not None else None
                if job is None or guild_id is None or await self.store.setting(guild_id) is None:
                    await self.store.release(job_id)  # the image or the gallery gone meanwhile
                    continue
                log.info("guild %s: job %s claimed for the gallery by an earlier run, posted now", guild_id, job_id)
                await self.consider(guild_id, [job], taking_over=True)
                left = await self.store.post_of(job_id)
                if left is not None and left.message_id is None:
                    await self.store.release(job_id)  # not for the gallery now (stars taken back): a later ⭐ decides
        except Exception as exc:  # the database held up: the next ⭐ on each (after its claim's two minutes) posts it
            log.warning("gallery: the posts an earlier run left were not all made (%s)", exc)

    async def consider(self, guild_id: int, jobs: list[Job], *, taking_over: bool = False) -> None:
        """``jobs``' images (one message's: a batch's are starred together) were just starred or unstarred: post
        those that have the server's gallery's stars now, a batch's together in one post, and show the stars anew on
        a post made before. ``taking_over``: their claims are an earlier run's, stopped before posting: taken now."""
        setting = await self.store.setting(guild_id)
        if setting is None:
            return
        shown_at = await self._gallery_level(guild_id, setting.channel_id)
        ready: list[Job] = []
        stars = 0
        recount: dict[tuple[int, int], Job] = {}  # (channel, post) of those posted before -> an image it shows
        for job in jobs:
            if job.state is not JobState.DELIVERED or job.message_id is None or job.channel_id is None:
                continue
            made_at = job.safety_level if job.safety_level is not None else self.bot.settings.moderation.default_level
            if shown_at is None or made_at > shown_at:
                # Made at a looser safety level than the gallery's channel allows (an age-restricted channel's image,
                # a channel the moderators loosened): not shown where members did not choose to see it.
                log.info(
                    "guild %s: job %s (level %s) not for the gallery (level %s)", guild_id, job.id, made_at, shown_at
                )
                continue
            posted = await self.store.post_of(job.id)
            if posted is not None and posted.message_id is not None:
                recount[(posted.channel_id, posted.message_id)] = job
                continue
            starred = await self._stars_of(job)
            if starred < setting.stars:
                continue
            # An earlier run's claim is taken at once: that run is gone (one bot per database, bot/store/lock.py).
            claimed = await self.store.claim(
                job.id, guild_id, job.message_id, setting.channel_id, now=time.time(), taking_over=taking_over
            )
            if not claimed:
                continue  # posted, or being posted
            ready.append(job)
            stars = max(stars, starred)
        if ready:
            await self._post(setting, ready, stars)
        for (channel_id, message_id), job in recount.items():
            self._show_stars(channel_id, message_id, job)

    async def _stars_of(self, job: Job) -> int:
        """The members who starred ``job``'s image, its own member not counted."""
        return len(await self._starred.starrers(job.guild_id or 0, [job.id]) - {job.user_id})

    def _show_stars(self, channel_id: int, message_id: int, job: Job) -> None:
        """Show ``job``'s stars anew on its post: at once if no edit of it is under way, else by that edit's next
        turn."""
        self._stars_owed[message_id] = (channel_id, job)
        if message_id not in self._stars_editing:
            self._stars_editing.add(message_id)
            # Cancelled at once by a stop (not waited on through its pause): the stars are kept in SQLite, and the
            # next ⭐ shows them.
            self.bot.services.runner.in_background(
                self._edit_stars(message_id), f"gallery-stars-{message_id}", resumable=True
            )

    async def _edit_stars(self, message_id: int) -> None:
        """Edit the post's stars, until none is owed after a pause (STARS_EDIT_SECONDS). Counted at each edit, not
        taken from the ⭐ that owed it: two ⭐ at once may count before and after each other's write, and the count
        read last is the one that holds."""
        shown: int | None = None
        try:
            while message_id in self._stars_owed:
                channel_id, job = self._stars_owed.pop(message_id)
                try:
                    stars = await self._stars_of(job)
                except Exception as exc:  # the database held up: the next ⭐ shows them
                    log.warning("gallery: the stars of post %s not counted (%s)", message_id, exc)
                    return
                if stars == shown:
                    continue  # back where the last edit left it
                post = self.bot.get_partial_messageable(channel_id).get_partial_message(message_id)
                try:
                    await again_on_failure(
                        partial(post.edit, content=stars_line(stars)),
                        self.bot.settings.jobs.final_edit_retry_seconds[:TRIES_AGAIN],
                        what="a gallery post's stars",
                    )
                    shown = stars
                except discord.NotFound:
                    self._stars_owed.pop(message_id, None)
                    return  # taken down (a moderator, its member's ❌): nothing to show the stars on
                except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                    # Discord failing past its tries: the next ⭐ tries again.
                    why = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
                    log.info("gallery: the stars of post %s not shown anew (%s)", message_id, why)
                await asyncio.sleep(STARS_EDIT_SECONDS)
        finally:
            self._stars_editing.discard(message_id)

    async def _gallery_level(self, guild_id: int, channel_id: int) -> int | None:
        """The safety level of the gallery's channel (as a job made there would run at); None if Discord will not
        say what the channel is."""
        guild = self.bot.get_guild(guild_id)
        if guild is None:
            return None
        try:
            place = await place_of_message(guild, self.bot.get_partial_messageable(channel_id, guild_id=guild_id))
        except BananacordError as exc:
            log.warning("guild %s: the gallery channel %s not found (%s)", guild_id, channel_id, exc.detail)
            return None
        return await level_at(self.bot, guild_id, place)

    async def _post(self, setting: GallerySetting, jobs: list[Job], stars: int) -> None:
        """One post of ``jobs``' images (a message's), uploaded again, the first shown in the card."""
        lead = jobs[0]
        assert lead.message_id is not None and lead.channel_id is not None
        files: list[discord.File] = []
        closing = contextlib.ExitStack()
        try:
            source = self.bot.get_partial_messageable(lead.channel_id, guild_id=lead.guild_id)
            original = await source.fetch_message(lead.message_id)
            imagine = self.bot.get_cog("Imagine")
            assert isinstance(imagine, Imagine)
            # Not the original's alt text: it is the prompt (bot/render.py alt_text), kept where erasure reaches it.
            alt = f"An image starred by {members(stars)}; its prompt is on the original message."
            for job in jobs:
                files.append(
                    as_upload(await self._copy(imagine.shown_attachment(original, job), lead.guild_id, closing), alt)
                )
            embed = discord.Embed(
                description=f"By <@{lead.user_id}> · [the original]({original.jump_url})", colour=GALLERY_COLOUR
            )
            embed.set_image(url=f"attachment://{files[0].filename}")
            gallery = self.bot.get_partial_messageable(setting.channel_id, guild_id=lead.guild_id)
            sent = await gallery.send(
                stars_line(stars),  # the message's words, edited as stars come and go (the card and files stay)
                embed=embed,
                files=files,
                allowed_mentions=discord.AllowedMentions.none(),
                nonce=message_nonce("gallery", lead.id),  # posted again after a stop: the same message
            )
        except (BananacordError, discord.HTTPException, TimeoutError, aiohttp.ClientError, OSError) as exc:
            # The original deleted meanwhile (its post is not owed), its file not read again (DeliveryError), or the
            # gallery refusing the bot (`/admin check` names it), or Discord failing: the next ⭐ tries again.
            why = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
            log.warning("guild %s: job %s not posted to the gallery (%s)", lead.guild_id, lead.id, why)
            for job in jobs:
                await self.store.release(job.id)
            return
        finally:
            closing.close()
        kept = [await self.store.posted(job.id, sent.id) for job in jobs]
        if not any(kept):
            # The image was deleted while it was being posted (its claim forgotten by ``take_down``): the post goes.
            with contextlib.suppress(discord.HTTPException):
                await sent.delete()
            log.info("guild %s: job %s deleted while posted to the gallery; its post deleted", lead.guild_id, lead.id)
            return
        log.info("guild %s: job(s) %s posted to the gallery (%d stars)", lead.guild_id, lead.id, stars)

    async def _copy(
        self, attachment: discord.Attachment, guild_id: int | None, closing: contextlib.ExitStack
    ) -> PreparedImage:
        """``attachment`` read again to post, re-encoded if larger than the server takes now (it lost boosts since
        the image was shown: a 4K image of 30 MB was refused at every ⭐), closed with ``closing``."""
        guild = self.bot.get_guild(guild_id) if guild_id is not None else None
        limit = guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT
        runner = self.bot.services.runner
        image = await runner.images.work.copy_to_fit(
            self.bot.services.http,
            attachment.url,
            declared=attachment.size,
            limit=limit,
            stem=attachment.filename.rsplit(".", 1)[0],
            timeout=runner.imagine.download_timeout_seconds,
        )
        closing.callback(image.close)
        return image

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """The image's own member reacts ❌ on its gallery post: taken down, and never posted again (a member may not
        want their image shown off; a ❌ on the image itself deletes both)."""
        if payload.guild_id is None or payload.emoji.id is not None or payload.emoji.name != DELETE_REACTION:
            return
        me = self.bot.user.id if self.bot.user is not None else None
        if payload.user_id == me or payload.message_author_id not in (None, me):
            return
        try:
            job_id = await self.store.job_of_post(payload.message_id)
        except Exception as exc:  # the database held up: the member may react again
            log.warning("gallery: a ❌ on message %s not looked up (%s)", payload.message_id, exc)
            return
        if job_id is not None:
            await self.take_up_crosses(GalleryPost(job_id, payload.channel_id, payload.message_id), {payload.user_id})

    async def take_up_crosses(self, post: GalleryPost, crosses: set[int]) -> bool:
        """Take ``post`` down if its image's own member is among those who reacted ❌ on it (live, or read back after
        a time away: cogs/missed_reactions.py); whether it was."""
        try:
            job = await self.bot.services.runner.store.get(post.job_id)
        except Exception as exc:  # the database held up: the member may react again
            log.warning("gallery: a ❌ on post %s not looked up (%s)", post.message_id, exc)
            return False
        if job is None or job.user_id not in crosses or post.message_id is None:
            return False
        shown = self.bot.get_partial_messageable(post.channel_id).get_partial_message(post.message_id)
        try:
            await shown.delete()
        except discord.NotFound:
            return False  # taken down already
        except discord.HTTPException as exc:
            log.info("gallery: post %s not taken down by its member's ❌ (HTTP %s)", post.message_id, exc.status)
            return False
        log.info("guild %s: job %s taken down from the gallery by its member", job.guild_id, job.id)
        return True

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        """The gallery's channel deleted: no gallery (each ⭐ would try a channel that is gone), said in the audit
        log; `/admin gallery` sets a new one."""
        try:
            if not await self.store.forget_channel(channel.guild.id, channel.id):
                return
            await self.bot.services.moderation.audit(
                channel.guild.id,
                "gallery",
                channel_id=channel.id,
                reason="the channel was deleted",
                summary=f"The gallery channel <#{channel.id}> was deleted; starred images are not posted until one "
                "is set.",
            )
        except Exception as exc:  # the database held up: each ⭐ that reaches the post is refused by Discord
            log.warning("guild %s: the gallery's deleted channel not let go (%s)", channel.guild.id, exc)
            return
        log.warning(
            "the gallery channel %s of server %s was deleted; no longer posting there", channel.id, channel.guild.id
        )

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if payload.guild_id is not None:
            await self.take_down([payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        if payload.guild_id is not None:
            await self.take_down(list(payload.message_ids))

    async def take_down(self, message_ids: list[int]) -> None:
        """Deleted images' gallery posts deleted too: the member (or a moderator) took the image away (live, or while
        the bot was away: cogs/missed_reactions.py finds it gone)."""
        try:
            posts = await self.store.of_originals(message_ids)
        except Exception as exc:  # the database held up: the post stays, as before the gallery took it
            log.warning("gallery: the posts of %d deleted message(s) not looked up (%s)", len(message_ids), exc)
            return
        for post in posts:
            if post.message_id is not None:
                shown = self.bot.get_partial_messageable(post.channel_id).get_partial_message(post.message_id)
                try:
                    await shown.delete()
                except discord.NotFound:
                    pass  # deleted already
                except discord.HTTPException as exc:
                    log.warning("gallery: post %s of a deleted image kept (HTTP %s)", post.message_id, exc.status)
                    continue
            await self.store.forget([post.job_id])


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Gallery(bot))
