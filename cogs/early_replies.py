"""A reply to the bot's message of an image still being made, carried out once the image shows.

A member who replies "make it night" to a message still saying "Generating" was met with silence: replies edit the
bot's images (cogs/replies.py), and there was none yet. Such a reply now waits for the message's images
(cogs/image_waits.py: every one of a batch's ended): the bot marks it ⏳, and once they have all ended it takes the
reply up as if just sent, then takes the mark off. Deleted meanwhile, it is let go; if no image was made (failed,
cancelled), the member is told privately that nothing was carried out. The wait is kept as a note owed
(bot/store/reply_notes.py), so a start after a stop takes the reply up again and waits anew.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import discord

from bot.app import Bananacord
from bot.models import JobState
from bot.store.jobs import Job
from cogs.image_waits import ImageWaits, Reacted
from cogs.places import channel_to_read

log = logging.getLogger(__name__)

WAITING_MARK = "⏳"
NOT_MADE = (
    "The image you replied to was not made (its message says why), so your reply was not carried out and nothing "
    "was charged. Reply to an image once it shows, or start again with /imagine."
)
MessageStep = Callable[[discord.Message], Awaitable[None]]
# A reply to a command's answer whose job has no message yet: looked for this many times, this far apart.
JOB_TRIES = 20
JOB_PAUSE_SECONDS = 0.5
# A reply read once its image had ended, posted at most this long after that end, was typed while the image was
# being made (and Discord's clock and the bot's may differ by a little): it gets the answer a waiting reply gets.
TYPED_WHILE_MADE_SECONDS = 5.0


class EarlyReplies:
    """The replies waiting for their images; ``again`` takes one up as if just sent, ``note`` tells its member
    privately, ``owe`` and ``settle`` keep and let go of it across a stop (cogs/replies.py's)."""

    def __init__(
        self,
        bot: Bananacord,
        *,
        again: MessageStep,
        note: Callable[[discord.Message, str], Awaitable[None]],
        owe: MessageStep,
        settle: Callable[[int], Awaitable[None]],
    ) -> None:
        self.bot = bot
        self._again = again
        self._note = note
        self._owe = owe
        self._settle = settle
        # Message -> the replies waiting for its images, by reply id (the waits' "members").
        self._waits = ImageWaits(bot, "reply", self._shown)
        self.waiting: set[int] = set()  # the replies waiting now: a catch-up taking one up leaves it owed
        self._read_again: set[int] = set()  # replies being read again for their image's end (``wait``)

    async def wait(self, message: discord.Message, replied: discord.Message) -> bool:
        """``message`` replies to ``replied``, the bot's message of images still being made: wait for them. False
        where ``replied`` is no such message (a refusal, a notice, an image that ended without one)."""
        store = self.bot.services.runner.store
        job = await store.by_message(replied.id)
        if job is None and replied.interaction_metadata is not None:
            # The answer to a command whose job has not learnt its message yet (Discord made the answer and its
            # word was lost; bot/held_jobs.py finds it a moment later): looked for again, a few seconds at most.
            for _ in range(JOB_TRIES):
                await asyncio.sleep(JOB_PAUSE_SECONDS)
                if (job := await store.by_message(replied.id)) is not None:
                    break
        if job is None or message.guild is None or job.guild_id != message.guild.id:
            return False
        batch = await store.batch(job.batch_id) if job.batch_id is not None else [job]
        if all(each.terminal for each in batch):
            # Ended between the reply and now (the reply read late, or waiting when the bot stopped): the replied
            # message came with the reply as it was then, without its image. A reply posted while the image was
            # being made is dealt with as a waiting one: read again, it brings the image as it is and is carried
            # out; no image made, its member is told (once: a reply read again is not read a third time).
            if message.id not in self._read_again and self._posted_while_made(message, batch):
                self._read_again.add(message.id)
                try:
                    made = any(each.state is JobState.DELIVERED for each in batch)
                    await self._take_up(message.channel.id, message.id, made=made)
                finally:
                    self._read_again.discard(message.id)
            return False
        where = Reacted(message.guild.id, message.channel.id, replied.id, message.id)
        if self._waits.add(job, where, live=True) is None:
            return False  # too many waits: left alone, as before any were kept
        if message.id not in self.waiting:
            self.waiting.add(message.id)
            log.info("reply %s: waits for the images of message %s (job %s)", message.id, replied.id, job.id)
            await self._owe(message)
            await self._mark(message, add=True)
        return True

    def _posted_while_made(self, message: discord.Message, batch: list[Job]) -> bool:
        """Whether the reply ``message`` was posted before its images ended (or in the seconds after: typed while
        they were being made): marked ⏳ by the bot (it waited), or older than their end by the clocks."""
        if any(str(r.emoji) == WAITING_MARK and r.me for r in message.reactions):
            return True
        ended = max((each.finished_at or each.updated_at for each in batch), default=0.0)
        return message.created_at.timestamp() <= ended + TYPED_WHILE_MADE_SECONDS

    async def _shown(self, job: Job, where: Reacted, replies: dict[int, bool]) -> None:
        """The images the replies waited for have all ended: each reply still there is taken up again."""
        store = self.bot.services.runner.store
        batch = await store.batch(job.batch_id) if job.batch_id is not None else [job]
        made = any(each.state is JobState.DELIVERED for each in batch)
        for reply_id in replies:
            self.waiting.discard(reply_id)
            await self._take_up(where.channel_id, reply_id, made=made)

    async def _take_up(self, channel_id: int, reply_id: int, *, made: bool) -> None:
        """The reply read again, now its image has ended, and carried out (``made``), else its member told why not."""
        try:
            channel = await channel_to_read(self.bot, channel_id)
            if channel is None:
                await self._settle(reply_id)  # the channel is gone, or no longer the bot's to see
                return
            message = await channel.fetch_message(reply_id)
        except discord.NotFound:
            await self._settle(reply_id)  # deleted by its member: taken back
            return
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("reply %s: not read again once its image ended (%s); owed", reply_id, exc)
            return  # still owed: the next start takes it up
        await self._mark(message, add=False)
        if made:
            await self._again(message)
        else:
            await self._note(message, NOT_MADE)
        await self._settle(reply_id)

    async def _mark(self, message: discord.Message, *, add: bool) -> None:
        """⏳ on the reply while it waits (a channel that refuses reactions refuses nothing else here)."""
        try:
            if add:
                await message.add_reaction(WAITING_MARK)
            elif self.bot.user is not None:
                await message.remove_reaction(WAITING_MARK, self.bot.user)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("reply %s: its %s mark not %s (%s)", message.id, WAITING_MARK, "added" if add else "taken", exc)
