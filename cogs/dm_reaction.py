"""A ✉️ reaction on one of the bot's images sends them to the member who reacted, by DM, as Midjourney's bot does.

In a busy channel an image scrolls away; members coming from Midjourney keep the ones they like by reacting ✉️,
which sends a copy to their DMs: the images, the words they were made from and a link back to the message (to
press its buttons). Anyone may, as anyone may press the buttons: the image is in the channel for all to see; a
member banned from the bot here gets nothing, as from its buttons.

The images are downloaded again from Discord (the message is read for its attachments' current links) into the
runner's spools (bot/imagework.py), so a member reacting to many images at once holds no more of them in memory
than the memory gate allows, and uploaded from there. One member's reactions are sent one after another, at most
``WAITING_PER_MEMBER`` waiting: a member reacting to a whole channel does not fill the bot (and is told, once, that
the rest were not taken). A file past what a DM takes (an image a boosted server took) comes as a compressed copy,
re-encoded as a delivery to a server that lost its boosts is (bot/imagework.py ``copy_to_fit``), its card saying so
and linking the message for the full one. A member who takes no DMs from the server's members got nothing at all,
and could only guess why: told by a short reply to the image, pinging nobody, deleted after the replies' notes' time
(cogs/channel_notes.py, kept through a restart), at most once in ``TOLD_CLOSED_SECONDS`` per member; a ✉️ read back
after a time away is not (the member reacted long ago, and each later start would say it again).
A ✉️ given while the image is still being made waits for it (the member is told it comes once it shows): once every
image of its message has ended, the copy goes to each member whose ✉️ is still on it. The waits are the bot's memory
only; after a restart the reading of reactions given while away (cogs/missed_reactions.py) finds them on the messages of
unfinished images and waits again, so a stop between the ✉️ and the image does not lose the copy.
Discord failing a send (a 5xx discord.py does not retry itself, as 503, or no answer) is tried again a few times
over about a quarter of a minute, each part of the copy with a nonce of its own (bot/nonces.py): a send Discord
made whose answer was lost is the same message, not a second copy.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

import aiohttp
import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.delivery import as_upload
from bot.dm_copies import copied_jobs, copy_card, copy_notes
from bot.errors import DeliveryError
from bot.images import PreparedImage
from bot.job_list import message_link
from bot.models import JobState
from bot.nonces import message_nonce
from bot.store import dm_copies
from bot.store.jobs import Job
from bot.store.refusals import log_refused_or_error
from cogs.discord_again import TRIES_AGAIN, again_on_failure
from cogs.image_waits import ImageWaits, Reacted
from cogs.replies import Replies

log = logging.getLogger(__name__)

# ✉️ as Discord sends it (with or without the emoji presentation selector).
ENVELOPES = frozenset({"✉️", "✉"})
# A member's reactions waiting for their DM beyond the one being sent; more are dropped (and logged).
WAITING_PER_MEMBER = 5
# What one DM may carry: Discord's upload limit for a bot in direct messages.
DM_BYTES = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
# How long one image may take to come down from Discord's CDN.
DOWNLOAD_SECONDS = 60.0
NOT_READY = "That image is not ready yet: it comes here once it shows."
NOT_ALL_READY = "Not every image of that message is ready yet: they come here together once they all show."
# Past the waits cogs/image_waits.py keeps (a member reacting on every running job of a busy channel).
NOT_READY_REACT_AGAIN = "That image is not ready yet: react ✉️ again once it shows, and it comes here."
TOO_MANY = (
    f"Too many ✉️ at once: {1 + WAITING_PER_MEMBER} copies are on their way here, one after another, and the rest "
    "were not taken. React ✉️ again on those you still want once these have come."
)
# Discord's code for a DM the member does not take (Privacy Settings → Direct Messages off for the server).
CANNOT_DM = 50007
CLOSED_DMS = (
    "<@{who}> I could not send you a copy: you take no direct messages from me. Allow them for this server (its "
    "name → **Privacy Settings** → **Direct Messages**), then react ✉️ again."
)
# A member told their DMs are closed is not told again for this long (a ✉️ on each image of a channel).
TOLD_CLOSED_SECONDS = 600.0
# How long this run remembers which ✉️ it took up live or read back (the reading after a time away takes minutes).
TAKEN_SECONDS = 3600.0
# A ✉️ read back after a stop: the member's DM's latest messages looked at for its copy, sent but not recorded.
SENT_LOOKED_AT = 25
T = TypeVar("T")


class DmReaction(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self._turns: dict[int, asyncio.Lock] = {}
        self._waiting: Counter[int] = Counter()
        self._told: set[int] = set()  # members told their ✉️ are too many, until their copies have all gone
        self._told_closed: dict[int, float] = {}  # member -> when told their DMs are closed (monotonic)
        # The ✉️ on images still being made, waiting for them.
        self._waits = ImageWaits(bot, "✉️", self._shown)
        # The ✉️ this run took up, by (message, member): "live" (its event) or "read" (read back after a time away),
        # and when. The reading after a start can meet a ✉️ given live a moment before, its copy not recorded yet,
        # and that ✉️'s event can come after the reading took it: one copy, not two (found by bench/soak.py). Taken
        # back, it is forgotten: given again, it is a copy of its own.
        self._taken: dict[tuple[int, int], tuple[str, float]] = {}

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.guild_id is None or payload.emoji.id is not None or payload.emoji.name not in ENVELOPES:
            return
        me = self.bot.user.id if self.bot.user is not None else None
        if payload.user_id == me or payload.message_author_id not in (None, me):
            return
        job = await self.bot.services.runner.store.by_message(payload.message_id)
        if job is None or job.guild_id != payload.guild_id:
            return
        if self._take(payload.message_id, payload.user_id, "live") is None:
            log.info("job %s: a ✉️ by member %s the reading after the start took up already", job.id, payload.user_id)
            return
        await self.give(job, Reacted(payload.guild_id, payload.channel_id, payload.message_id, payload.user_id))

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        """A ✉️ taken back while its image is being made: no copy for that member once it shows."""
        if payload.emoji.id is not None or payload.emoji.name not in ENVELOPES:
            return
        self._taken.pop((payload.message_id, payload.user_id), None)
        self._waits.remove(payload.message_id, payload.user_id)

    def _take(self, message_id: int, who: int, how: str) -> str | None:
        """Note that this run takes up ``who``'s ✉️ on ``message_id`` (``how``: "live" or "read"); None where it
        did already: read back once, or read back after its event (the event again, without a taking back
        between, is a ✉️ given again, as before)."""
        now = time.monotonic()
        if len(self._taken) >= 1000:
            self._taken = {key: kept for key, kept in self._taken.items() if now - kept[1] < TAKEN_SECONDS}
        key = (message_id, who)
        before = self._taken.get(key)
        if before is not None and now - before[1] < TAKEN_SECONDS and (how == "read" or before[0] == "read"):
            return None
        self._taken[key] = (how, now)
        return how

    async def take_up(self, job: Job, where: Reacted, reactors: Iterable[int]) -> int:
        """The ✉️ found on ``job``'s message once the bot is back (cogs/missed_reactions.py): a copy for each member
        who reacted and was sent none, one after another; how many were sent for. An image shown before copies
        were recorded (bot/store/dm_copies.py) is left: its copies are unknown, and a second one is worse than none."""
        store, db = self.bot.services.runner.store, self.bot.services.db
        batch = await store.batch(job.batch_id) if job.batch_id is not None else [job]
        if min(each.created_at for each in batch) < await dm_copies.recorded_since(db):
            return 0
        given = await dm_copies.copied_to(db, [each.id for each in batch])
        # Nor those this run took up already: given live since the start (their copy may be on its way), or read.
        missed = [who for who in reactors if who not in given and self._take(where.message_id, who, "read")]
        for who in missed:
            log.info("job %s: a ✉️ given while the bot was away, by member %s, answered now", job.id, who)
            await self.give(job, where._replace(user_id=who), live=False)
        return len(missed)

    async def give(self, job: Job, reacted: Reacted, *, live: bool = True) -> None:
        """A copy of ``job``'s images to the member who reacted, in their turn (``live``: as they reacted, not read
        back after a time away)."""
        who = reacted.user_id
        if await self.bot.services.moderation.active_ban(reacted.guild_id, who):
            # Banned from the bot, as its buttons and commands are: nothing is sent (a DM saying so would be one).
            log.info("job %s: a ✉️ reaction by a member banned here is ignored", job.id)
            return
        if self._waiting[who] > WAITING_PER_MEMBER:
            log.info("job %s: a ✉️ reaction dropped: its member has %d waiting", job.id, self._waiting[who])
            if who not in self._told:
                # Said once while their copies are on their way: a dropped ✉️ said nothing, and the member waited
                # for a copy that never came.
                self._told.add(who)
                self.bot.services.runner.in_background(self._tell_too_many(who), f"too-many-envelopes-{who}")
            return
        self._waiting[who] += 1
        try:
            async with self._turns.setdefault(who, asyncio.Lock()):
                await self._send(job, reacted, live=live)
        finally:
            self._waiting[who] -= 1
            if not self._waiting[who]:
                del self._waiting[who]
                self._turns.pop(who, None)
                self._told.discard(who)

    async def _tell_too_many(self, who: int) -> None:
        """The member whose ✉️ were dropped, told by DM (once while their copies are on their way)."""
        nonce = message_nonce("dm-copy", f"too-many:{who}:{time.time_ns()}")
        try:
            dm = await self._retried(lambda: self.bot.create_dm(discord.Object(who)))
            await self._retried(lambda: dm.send(TOO_MANY, allowed_mentions=discord.AllowedMentions.none(), nonce=nonce))
        except discord.HTTPException as exc:
            log.info("member %s: could not be told their ✉️ were too many (HTTP %s)", who, exc.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("member %s: could not be told their ✉️ were too many (%s)", who, type(exc).__name__)

    async def _send(self, job: Job, reacted: Reacted, *, live: bool) -> None:
        store = self.bot.services.runner.store
        batch = await store.batch(job.batch_id) if job.batch_id is not None else [job]
        shown = [candidate for candidate in batch if candidate.state is JobState.DELIVERED]
        if not shown and all(candidate.terminal for candidate in batch):
            return  # ended without an image (blocked, failed, cancelled), as its message says: nothing to copy
        # This reaction's copy, named for its sends' nonces: the same part sent again is one message, while a
        # later ✉️ (removed and given again) is a copy of its own.
        reaction = f"{reacted.message_id}:{reacted.user_id}:{time.time_ns()}"
        said: str | None = None
        if not all(candidate.terminal for candidate in batch):
            # Images still being made, a batch's later ones too: the copy waits for them all, one DM of the whole.
            waits, said = self._await(job, reacted, live=live, some_shown=bool(shown))
            if said is None and (waits or not shown):
                return  # waited for, and nothing to say (read back after a time away, or the member told before)
            if not waits and shown:
                said = None  # too many waits: what is shown now, as before any were kept
        try:
            dm = await self._retried(lambda: self.bot.create_dm(discord.Object(reacted.user_id)))
            if said is not None:
                nonce = message_nonce("dm-copy", f"{reaction}:not-ready")
                await self._retried(lambda: dm.send(said, allowed_mentions=discord.AllowedMentions.none(), nonce=nonce))
                return
            if not live and await self._sent_before(dm, shown, reacted.user_id):
                return
            channel = self.bot.get_partial_messageable(reacted.channel_id, guild_id=reacted.guild_id)
            try:
                message = await self._retried(lambda: channel.fetch_message(reacted.message_id))
            except discord.NotFound:
                return  # deleted since: nothing to send
            except discord.Forbidden:
                message = None  # the bot may answer commands in a channel it may not read: the link alone
            await self._deliver(dm, shown, message, reaction, reacted.user_id)
        except discord.HTTPException as exc:  # DMs closed (403, code 50007), or Discord failing still
            log.info("job %s: a ✉️ reaction's DM could not be sent (HTTP %s, code %s)", job.id, exc.status, exc.code)
            if exc.code == CANNOT_DM:
                self._waits.remove(reacted.message_id, reacted.user_id)  # nor could its copy be: told once, now
                if live:
                    await self._tell_closed(reacted)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("job %s: a ✉️ reaction's DM got no answer from Discord (%s)", job.id, type(exc).__name__)
        except DeliveryError as exc:
            log.info("job %s: a ✉️ reaction's image could not be fetched again (%s)", job.id, exc.detail)

    async def _sent_before(self, dm: discord.DMChannel, shown: Sequence[Job], who: int) -> bool:
        """Whether ``who`` has a copy of ``shown`` already, which no record says: a stop (a kill) between a copy's
        sending and its record, or a database refusing the record, left the next start's reading to send it again.
        The DM's latest messages are Discord's word (found recorded, it is recorded now). Unread, it is sent."""
        me, ids = self.bot.user, {job.id for job in shown}
        try:
            async for message in dm.history(limit=SENT_LOOKED_AT):
                mine = me is not None and message.author.id == me.id
                if mine and message.embeds and copied_jobs(message.embeds[0]) & ids:
                    log.info("job %s: member %s has its copy (not recorded): not sent again", shown[0].id, who)
                    await self._kept(message, shown[0], who)
                    return True
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("job %s: member %s's DM not read for a copy sent before (%s)", shown[0].id, who, exc)
        return False

    def _await(self, job: Job, reacted: Reacted, *, live: bool, some_shown: bool) -> tuple[bool, str | None]:
        """Wait for the images of ``reacted``'s message, then send the member their copy (cogs/image_waits.py):
        whether it waits, and what to tell them now. That it comes once it shows (``some_shown``: once the rest
        show), the first time they react live while it is waited for (a ✉️ taken back and given again, over and
        over, is one DM); or, where too many messages are waited for already, to react again then; else nothing.
        ``live``: kept for the copy's sending (a member whose DMs are closed is told so under the image only for a
        ✉️ given live)."""
        waiting = self._waits.add(job, reacted, live=live)
        if waiting is None:
            return False, NOT_READY_REACT_AGAIN if live else None
        if not live or reacted.user_id in waiting.told:
            return True, None
        waiting.told.add(reacted.user_id)
        return True, NOT_ALL_READY if some_shown else NOT_READY

    async def _shown(self, job: Job, where: Reacted, members: dict[int, bool]) -> None:
        """The images a ✉️ waited for have all ended: a copy for each member whose ✉️ is still on them, in turn."""
        for who, live in members.items():
            log.info("job %s: a ✉️ given before its image showed, by member %s, answered now", job.id, who)
            await self.give(job, where._replace(user_id=who), live=live)

    async def _tell_closed(self, reacted: Reacted) -> None:
        """Say under the image that the member's DMs are closed (a reply pinging nobody, deleted in a while)."""
        who, now = reacted.user_id, time.monotonic()
        if now - self._told_closed.get(who, -TOLD_CLOSED_SECONDS) < TOLD_CLOSED_SECONDS:
            return
        self._told_closed = {m: at for m, at in self._told_closed.items() if now - at < TOLD_CLOSED_SECONDS}
        self._told_closed[who] = now
        replies = self.bot.get_cog("Replies")
        assert isinstance(replies, Replies)  # loaded before this cog (bot/app.py EXTENSIONS)
        channel = self.bot.get_partial_messageable(reacted.channel_id, guild_id=reacted.guild_id)
        image = discord.MessageReference(
            message_id=reacted.message_id, channel_id=reacted.channel_id, fail_if_not_exists=False
        )
        try:
            note = await channel.send(
                CLOSED_DMS.format(who=who),
                reference=image,
                mention_author=False,
                allowed_mentions=discord.AllowedMentions.none(),
                nonce=message_nonce("dm-closed", f"{reacted.message_id}:{who}:{time.time_ns()}"),
            )
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("member %s: could not be told their DMs are closed (%s)", who, type(exc).__name__)
            return
        await replies.note_to_delete(note)

    async def _deliver(
        self, dm: discord.DMChannel, shown: Sequence[Job], message: discord.Message | None, reaction: str, who: int
    ) -> None:
        """The copy: the card, then the images in as few messages as fit a DM's upload limit, one larger than a DM
        takes (shown in a boosted server) as a compressed copy. Read and sent a part at a time: a part's images
        are all a copy holds at once."""
        images = [a for a in message.attachments if _is_image(a)] if message is not None else []
        link = message_link(shown[0])
        caps = self.bot.services.catalogue.capabilities(shown[0].provider, shown[0].model)
        # An image is re-encoded exactly when its size is over the limit (ImageWork.prepare), so the card, sent
        # first, can say so before any is read.
        notes = copy_notes(link, compressed=sum(a.size > DM_BYTES for a in images), unread=message is None)
        card: discord.Embed = copy_card(shown, link, caps, notes)
        number = 0
        part: list[tuple[PreparedImage, str | None]] = []  # read, not sent yet: closed here, whatever happens
        try:
            for attachment in images:
                part.append((await self._copy(attachment), attachment.description))
                if len(part) > 1 and sum(image.size for image, _ in part) > DM_BYTES:
                    *full, last = part
                    await self._send_part(dm, card if number == 0 else None, full, f"{reaction}:{number}", shown, who)
                    number, part = number + 1, [last]
                    for image, _ in full:
                        image.close()
            await self._send_part(dm, card if number == 0 else None, part, f"{reaction}:{number}", shown, who)
        finally:
            for image, _ in part:
                image.close()

    async def _send_part(
        self,
        dm: discord.DMChannel,
        card: discord.Embed | None,
        part: Sequence[tuple[PreparedImage, str | None]],
        name: str,
        shown: Sequence[Job],
        who: int,
    ) -> None:
        """One DM of a copy (``name``: its nonce's), recorded as sent."""
        nonce = message_nonce("dm-copy", name)
        sent = await self._retried(functools.partial(_send_part, dm, card, part, nonce))
        await self._kept(sent, shown[0], who)

    async def _kept(self, sent: discord.Message, lead: Job, who: int) -> None:
        """The part sent, recorded so that an erasure of its request's words reaches it (bot/dm_copies.py). Refused
        by the database (another program's lock), the copy is the member's all the same: logged."""
        try:
            await dm_copies.record(
                self.bot.services.db, sent.id, sent.channel.id, lead.id, who, "copy", now=self.bot.clock()
            )
        except Exception as exc:
            log_refused_or_error(log, exc, "job %s: a ✉️ copy was sent but not recorded", lead.id)

    async def _retried(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call``'s answer, asked again after Discord failed it (cogs/discord_again.py)."""
        waits = self.bot.settings.jobs.final_edit_retry_seconds[:TRIES_AGAIN]
        return await again_on_failure(call, waits, what="a ✉️ reaction's DM")

    async def _copy(self, attachment: discord.Attachment) -> PreparedImage:
        """``attachment`` read again, re-encoded if larger than a DM takes; the caller closes it."""
        runner = self.bot.services.runner
        stem = attachment.filename.rsplit(".", 1)[0]
        return await runner.images.work.copy_to_fit(
            self.bot.services.http,
            attachment.url,
            declared=attachment.size,
            limit=DM_BYTES,
            stem=stem,
            timeout=DOWNLOAD_SECONDS,
        )


async def _send_part(
    dm: discord.DMChannel,
    card: discord.Embed | None,
    part: Sequence[tuple[PreparedImage, str | None]],
    nonce: str,
) -> discord.Message:
    """One DM of a copy: its files read from their start (a failed try has read them)."""
    files = [as_upload(image, description) for image, description in part]
    embed = card if card is not None else discord.utils.MISSING
    return await dm.send(embed=embed, files=files, allowed_mentions=discord.AllowedMentions.none(), nonce=nonce)


def _is_image(attachment: discord.Attachment) -> bool:
    return (attachment.content_type or "").startswith("image/")


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(DmReaction(bot))
