"""One message to a server that adds the bot, saying how to start (``[admin] welcome_new_servers``).

Discord tells a bot nothing more than that it joined: the members who find it in their command list, and the admin
who added it, have no word of where to begin, what the moderators can set, or that a channel refuses the bot a
permission it uses. The welcome says so once, in the server's system channel (where Discord posts its own welcomes)
if the bot may post there, else in the first channel it may post in, and names ``/admin check``'s finding.

A server joined while the bot ran arrives as ``on_guild_join``; one joined while it was stopped arrives at the next
start like any other (``on_guild_available``): both are welcomed if the bot joined after the first start of a
version with welcomes (bot/store/welcomes.py ``since``), so an upgrade, or a database made after the bot was added,
greets no server it was in already. Each is claimed in SQLite before the post: once per server, rejoins included.
"""

from __future__ import annotations

import logging
import sqlite3
import time

import aiohttp
import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.channel_rights import EMBEDS, SEND, VIEW, Place, in_order, lacking
from bot.nonces import message_nonce
from bot.store import welcomes
from cogs.channel_check import refusal_note
from cogs.discord_again import TRIES_AGAIN, again_on_failure

log = logging.getLogger(__name__)

BANANA = discord.Colour(0xF5C518)
# What the welcome needs where it goes: to see the channel, post there, and show its card.
WELCOME_RIGHTS = (VIEW, SEND, EMBEDS)

MEMBERS = (
    "`/imagine` a prompt (attach images to work from), then keep working on the image with its buttons, or reply to "
    "it with what to change. `/help` has the rest, with this server's models and limits."
)
MODERATORS = (
    "`/mod safety set` how strict the safety filter is, for the server or a channel · `/mod blockterm add` words "
    "that may not be asked for · `/mod logchannel` where blocked prompts, bans, changes and members' reports are "
    "posted · `/mod purge` a member's recent images · `/mod pause` new requests, for a while"
)
ADMINS = (
    "`/admin defaults` the model and images per prompt · `/quota server` the server's limits · `/usage report` "
    "who used what · `/admin check` what the bot may do in each channel · `/admin gallery` a channel of the images "
    "members star most"
)


def where_to_welcome(guild: discord.Guild, me: discord.Member) -> discord.TextChannel | None:
    """The system channel if the bot may post its card there, else the first such text channel, else None."""
    candidates: list[Place] = []
    if guild.system_channel is not None:
        candidates.append(guild.system_channel)
    candidates.extend(in_order(guild))
    for place in candidates:
        if isinstance(place, discord.TextChannel) and not lacking(place.permissions_for(me), WELCOME_RIGHTS):
            return place
    return None


def welcome_embed(guild: discord.Guild) -> discord.Embed:
    embed = discord.Embed(
        title="🍌 Bananacord is here",
        description="Images from Google's Nano Banana models, made and worked on right here.\n\n" + MEMBERS,
        colour=BANANA,
    )
    embed.add_field(name="Moderators", value=MODERATORS, inline=False)
    note = refusal_note(guild)
    embed.add_field(name="Admins", value=ADMINS if note is None else f"{ADMINS}\n{note}", inline=False)
    return embed


class Welcome(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        # Wall time, not the bot's clock: it is compared with Discord's joined_at.
        self._since: float | None = None

    async def cog_load(self) -> None:
        """Read (at the first start, write) since when servers are welcomed, at start-up, before the gateway: read
        at the first server's arrival instead, it was a write in the same instant as the first commands and the
        job loop's first steps, waiting with them on a database another program may hold."""
        if not self.bot.settings.admin.welcome_new_servers:
            return
        try:
            self._since = await welcomes.since(self.bot.services.db, now=time.time())
        except sqlite3.Error as exc:  # read again at the first server's arrival
            log.warning("could not read since when servers are welcomed (%s)", exc)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.greet(guild)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self.greet(guild)

    async def greet(self, guild: discord.Guild) -> None:
        if not self.bot.settings.admin.welcome_new_servers:
            return
        me = guild.me
        joined = me.joined_at if me is not None else None
        if me is None or joined is None:
            return
        db = self.bot.services.db
        try:
            if self._since is None:
                self._since = await welcomes.since(db, now=time.time())
            if joined.timestamp() <= self._since:
                log.debug("guild %s: the bot was in it before welcomes began; none", guild.id)
                return
            if not await welcomes.claim(db, guild.id, now=time.time()):
                log.debug("guild %s: welcomed already", guild.id)
                return
        except sqlite3.Error as exc:  # the next start looks again
            log.warning("guild %s: could not look up its welcome (%s)", guild.id, exc)
            return
        channel = where_to_welcome(guild, me)
        if channel is None:
            log.info("guild %s: no channel takes the bot's posts; no welcome", guild.id)
            return
        waits = self.bot.settings.jobs.final_edit_retry_seconds[:TRIES_AGAIN]
        embed = welcome_embed(guild)
        try:
            await again_on_failure(
                lambda: channel.send(
                    embed=embed,
                    allowed_mentions=discord.AllowedMentions.none(),
                    nonce=message_nonce("welcome", guild.id),
                ),
                waits,
                what=f"guild {guild.id}'s welcome",
            )
        except (discord.HTTPException, TimeoutError, aiohttp.ClientError, OSError) as exc:
            why = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
            log.warning("guild %s: could not post its welcome in channel %s (%s)", guild.id, channel.id, why)
            return
        log.info("guild %s: welcomed in channel %s", guild.id, channel.id)
        try:
            await welcomes.posted_in(db, guild.id, channel.id)
        except sqlite3.Error as exc:
            log.warning("guild %s: could not note where its welcome went (%s)", guild.id, exc)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Welcome(bot))
