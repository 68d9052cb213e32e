"""Where a request is made, as moderation sees it: the channel, the channel a thread hangs from, and
whether it is age-restricted.

A thread answers to its parent channel: it is age-restricted when its parent is (discord.py's
``Thread.is_nsfw``; a thread has no flag of its own), and a moderator's safety level for the parent holds in
its threads unless the thread has a level of its own. Read from the channel attribute ``nsfw`` alone, every
thread counted as an ordinary channel at the server's level: a member could leave a strict channel's level
by starting a thread in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bot.moderation import effective_level

if TYPE_CHECKING:
    from bot.app import Bananacord


@dataclass(frozen=True, slots=True)
class Place:
    channel_id: int | None
    parent_id: int | None  # the channel a thread hangs from; None for a channel
    nsfw: bool


def place_of(channel: Any) -> Place:
    """The place of an interaction's or a message's channel (a PartialMessageable, uncached, is an
    ordinary channel: nothing more is known of it)."""
    channel_id = getattr(channel, "id", None)
    if isinstance(channel, discord.Thread):
        return Place(channel_id, channel.parent_id, channel.is_nsfw())
    is_nsfw = getattr(channel, "is_nsfw", None)
    return Place(channel_id, None, bool(is_nsfw()) if callable(is_nsfw) else False)


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
