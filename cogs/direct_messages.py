"""A member who writes to the bot in its DMs is told where it makes images, rather than met with silence.

The bot works in servers (every command is a server's: its quotas, moderation and channels), and it DMs members
itself (✉️ copies, notes on refused replies, how a request ended), so members write back there: "a cat in space",
"why was I refused?". Nobody reads those, and before this nobody answered them. Each gets one short answer saying
where to go, at most once every HINT_EVERY_SECONDS per member (a conversation is not answered line by line), none for
chatter ("thanks!", "ok"), and HINTS_PER_MINUTE in all a minute: a flood of DMs (a spam wave) must not spend the
requests to Discord that members' images are delivered with.
"""

from __future__ import annotations

import logging
import time

import aiohttp
import discord
from discord.ext import commands

from bot.app import Bananacord
from cogs.replies import is_chatter

log = logging.getLogger(__name__)

HINT = (
    "I make images in servers, not here: use `/imagine` in a server we share (type `/` there), or reply in the "
    "server to one of my images to change it. Nobody reads what is written to me here."
)
HINT_EVERY_SECONDS = 600.0
HINTS_PER_MINUTE = 20


class DirectMessages(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self._hinted: dict[int, float] = {}  # member -> when last answered
        self._minute: list[float] = []  # when the answers of the last minute were sent

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.guild is not None or message.author.bot or not isinstance(message.channel, discord.DMChannel):
            return
        if is_chatter(message.content) and not message.attachments:
            return
        now = time.monotonic()
        if now - self._hinted.get(message.author.id, -HINT_EVERY_SECONDS) < HINT_EVERY_SECONDS:
            return
        self._minute = [at for at in self._minute if now - at < 60.0]
        if len(self._minute) >= HINTS_PER_MINUTE:
            log.info("a DM from member %s: not answered (%d answers this minute)", message.author.id, len(self._minute))
            return
        self._minute.append(now)
        if len(self._hinted) > 1000:  # only the last HINT_EVERY_SECONDS count
            self._hinted = {who: at for who, at in self._hinted.items() if now - at < HINT_EVERY_SECONDS}
        self._hinted[message.author.id] = now
        try:
            await message.channel.send(HINT, allowed_mentions=discord.AllowedMentions.none())
        except (discord.HTTPException, TimeoutError, aiohttp.ClientError, OSError) as exc:
            why = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
            log.info("a DM from member %s: could not answer it (%s)", message.author.id, why)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(DirectMessages(bot))
