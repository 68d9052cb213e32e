"""Where a request is made, as moderation sees it: the channel, the channel a thread hangs from, and
whether it is age-restricted.

A thread answers to its parent channel: it is age-restricted when its parent is (discord.py's
``Thread.is_nsfw``; a thread has no flag of its own), and a moderator's safety level for the parent holds in
its threads unless the thread has a level of its own. Read from the channel attribute ``nsfw`` alone, every
thread counted as an ordinary channel at the server's level: a member could leave a strict channel's level
by starting a thread in it.

A message's channel is not always known to discord.py: a message in a thread it has not cached (one made
after the bot connected, of which Discord sent it no THREAD_CREATE, or an archived one) comes with a
PartialMessageable, which names no parent. Judged as it came, a reply in a thread of a strict channel ran at
the server's level: ``place_of_message`` asks Discord for the channel first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bot.errors import BananacordError
from bot.moderation import effective_level

if TYPE_CHECKING:
    from bot.app import Bananacord


@dataclass(frozen=True, slots=True)
class Place:
    channel_id: int | None
    parent_id: int | None  # the channel a thread hangs from; None for a channel
    nsfw: bool


# A message whose channel Discord would not describe: its level cannot be told, so nothing is made.
UNKNOWN_PLACE = (
    "I could not carry out your reply: Discord would not tell me about the channel or thread it is in, so I "
    "cannot tell which safety level applies there. Nothing was made and you were not charged. Try again in "
    "a moment."
)


def place_of(channel: Any) -> Place:
    """The place of an interaction's channel, or of a channel discord.py has in full. Not of a
    PartialMessageable (a message in an uncached thread): that would be an ordinary channel with no parent,
    at the server's level; a message's channel goes through ``place_of_message``. An interaction's never is
    one: discord.py's Interaction builds it from the channel object Discord sends with the interaction."""
    channel_id = getattr(channel, "id", None)
    if isinstance(channel, discord.Thread):
        return Place(channel_id, channel.parent_id, channel.is_nsfw())
    is_nsfw = getattr(channel, "is_nsfw", None)
    return Place(channel_id, None, bool(is_nsfw()) if callable(is_nsfw) else False)


async def place_of_message(guild: discord.Guild, channel: Any) -> Place:
    """The place of a message's ``channel`` in ``guild``: a PartialMessageable is looked up in the guild's
    cache, else fetched from Discord (a thread comes back with its parent's id). Raises BananacordError with
    UNKNOWN_PLACE when Discord will not say what it is (refused, failing, or not this server's channel)."""
    if not isinstance(channel, discord.PartialMessageable):
        return place_of(channel)
    resolved = guild.get_channel_or_thread(channel.id)
    if resolved is None:
        try:
            resolved = await guild.fetch_channel(channel.id)
        except (discord.DiscordException, TimeoutError, aiohttp.ClientError, OSError) as exc:
            # DiscordException: an HTTP error (403 when the bot may not view it, 404, 5xx), or InvalidData
            # (a channel type discord.py does not know, or another server's channel).
            raise BananacordError(UNKNOWN_PLACE, detail=f"channel {channel.id} not described ({exc!r})") from exc
    return place_of(resolved)


Readable = discord.TextChannel | discord.Thread | discord.VoiceChannel


async def channel_to_read(bot: Bananacord, channel_id: int) -> Readable | None:
    """The channel or thread ``channel_id``, to read a message in again: from discord.py's cache, else asked of
    Discord (a thread archived since, which the gateway no longer lists, is still there to read). None when it is
    gone, or no longer the bot's to see. Raises the HTTP or network error of a Discord that fails to answer: the
    caller tries again later."""
    channel = bot.get_channel(channel_id)
    if channel is None:
        try:
            channel = await bot.fetch_channel(channel_id)
        except (discord.NotFound, discord.Forbidden):
            return None
        except discord.InvalidData:  # a channel type discord.py does not know: none a reply can be in
            return None
    return channel if isinstance(channel, Readable) else None


async def level_at(bot: Bananacord, guild_id: int, place: Place) -> int:
    """The safety level a job made at ``place`` runs at: its channel's level, else (in a thread) the
    parent channel's, else the server's; under the ceiling of an ordinary or an age-restricted channel."""
    store = bot.services.moderation
    settings = await store.guild(guild_id)
    channel_level = await store.channel_level(guild_id, place.channel_id or 0)
    if channel_level is None and place.parent_id is not None:
        channel_level = await store.channel_level(guild_id, place.parent_id)
    return effective_level(
        settings, channel_level, nsfw_channel=place.nsfw, default=bot.settings.moderation.default_level
    )
