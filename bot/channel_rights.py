"""What the bot may do in each of a server's channels, and what each permission it lacks costs the members.

A slash command works in any channel, whatever the bot's permissions there: Discord carries the command to the
bot and its answer back. Everything else the bot does in a channel goes through its own rights there, which a
server's admins set (often without knowing it: a channel made private, a category's overwrites): answering a
reply to an image, pinging a member whose slow image is ready, reading a message linked as a reference,
reading back what was said while it was away. Where a right is missing, those fail quietly for the member (a
reply refused by DM at best). ``/admin check`` (cogs/admin.py) names such channels and what each lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import discord


@dataclass(frozen=True, slots=True)
class Right:
    """A permission the bot uses outside a command's own answer, and what goes without it."""

    flag: str  # the discord.Permissions attribute
    name: str  # as Discord's settings name it
    costs: str


VIEW = Right(
    "view_channel",
    "View Channel",
    "the bot sees nothing there: replies to its images, ⭐ ✉️ ❌ on them and links to its messages go unseen, "
    "and an image that ends 15 minutes or more after its command cannot be put in its message (its member is "
    "told by DM how it ended)",
)
SEND = Right(
    "send_messages",
    "Send Messages",
    "replies to its images are not answered (their members are told by DM), and slow images ping nobody",
)
SEND_IN_THREADS = Right(
    "send_messages_in_threads",
    "Send Messages in Threads",
    "in threads (a forum's posts), replies to its images are not answered, and slow images ping nobody",
)
HISTORY = Right(
    "read_message_history",
    "Read Message History",
    "replies are not answered and slow images ping nobody (Discord lets a reply go only with it), messages "
    "linked as references are not read, and replies and reactions given while the bot was away are not read back",
)
EMBEDS = Right("embed_links", "Embed Links", "answers to replies come without their card, or not at all")
FILES = Right("attach_files", "Attach Files", "answers to replies cannot show their image")
REACTIONS = Right("add_reactions", "Add Reactions", "a reply the bot does not carry out gets no 🚫 to show it")

# Where members talk and the bot answers: a channel's own messages and its threads' (text channels), its messages
# alone (a voice or stage channel's chat, which has no threads), its threads alone (a forum's or media channel's
# posts), a thread's own.
_IN_CHANNEL = (VIEW, SEND, SEND_IN_THREADS, HISTORY, EMBEDS, FILES, REACTIONS)
_NO_THREADS = (VIEW, SEND, HISTORY, EMBEDS, FILES, REACTIONS)
_THREADS_ONLY = (VIEW, SEND_IN_THREADS, HISTORY, EMBEDS, FILES, REACTIONS)
EVERY_RIGHT = _IN_CHANNEL
# What a moderation log or alert channel needs: the posts are plain words.
POSTING = (VIEW, SEND)
POSTING_IN_THREAD = (VIEW, SEND_IN_THREADS)
# What the gallery (cogs/gallery.py) needs: its posts are a card with the image.
SHOWING = (*POSTING, EMBEDS, FILES)
SHOWING_IN_THREAD = (*POSTING_IN_THREAD, EMBEDS, FILES)

Place = discord.abc.GuildChannel | discord.Thread


def rights_for(place: Place) -> tuple[Right, ...]:
    """The rights the bot uses in ``place``; none in a category, where nobody talks."""
    if isinstance(place, discord.Thread | discord.ForumChannel):
        return _THREADS_ONLY
    if isinstance(place, discord.VoiceChannel | discord.StageChannel):
        return _NO_THREADS
    if isinstance(place, discord.TextChannel):
        return _IN_CHANNEL
    return ()


def _implied_by(rights: Sequence[Right]) -> Right:
    """The right that posting at all takes in a place with ``rights``: Send Messages, or in a place of threads
    alone, Send Messages in Threads."""
    return SEND if SEND in rights else SEND_IN_THREADS


def lacking(permissions: discord.Permissions, rights: Sequence[Right]) -> tuple[Right, ...]:
    """The ``rights`` that ``permissions`` do not give. Without View Channel the rest are moot (nothing there
    reaches the bot), so it is named alone; without the right to post there, Discord takes Embed Links and
    Attach Files away with it (its implicit permissions), and they come back with it: not named."""
    missing = tuple(right for right in rights if not getattr(permissions, right.flag))
    if VIEW in missing:
        return (VIEW,)
    if _implied_by(rights) in missing:
        missing = tuple(right for right in missing if right not in (EMBEDS, FILES))
    return missing


def implied(right: Right, rights: Sequence[Right]) -> Right | None:
    """The right that ``right`` goes with in a place with ``rights`` (Embed Links and Attach Files go with
    posting), or None."""
    return _implied_by(rights) if right in (EMBEDS, FILES) else None


def permissions_in(place: Place, me: discord.Member) -> discord.Permissions:
    """The bot's permissions where it posts in ``place``. In a forum or media channel that is its posts, which are
    threads: discord.py resolves a forum as a channel of its own messages (Send Messages taking Embed Links and
    Attach Files with it), but a thread takes its parent's permissions and posting in it is Send Messages in
    Threads, as discord.py's ``Thread.permissions_for`` does with its parent's."""
    if not isinstance(place, discord.ForumChannel):
        return place.permissions_for(me)
    permissions = discord.abc.GuildChannel.permissions_for(place, me)
    if not permissions.send_messages_in_threads:
        permissions.embed_links = permissions.attach_files = False
    return permissions


def missing_in(place: Place, me: discord.Member) -> tuple[Right, ...]:
    """What the bot (``me``) lacks of the rights it uses in ``place``, its overwrites and its category's counted."""
    return lacking(permissions_in(place, me), rights_for(place))


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Channels that lack the same rights."""

    rights: tuple[Right, ...]
    channels: tuple[Place, ...]


def shortfalls(places: Iterable[Place], me: discord.Member) -> list[Shortfall]:
    """The server's channels that lack some right, grouped by what they lack: the groups with most channels
    first, the channels in the order given."""
    groups: dict[tuple[Right, ...], list[Place]] = {}
    for place in places:
        missing = missing_in(place, me)
        if missing:
            groups.setdefault(missing, []).append(place)
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    return [Shortfall(rights, tuple(channels)) for rights, channels in ordered]


def in_order(guild: discord.Guild) -> list[Place]:
    """The guild's channels where members talk, as its channel list shows them: by category, then position."""
    talking = [c for c in guild.channels if rights_for(c)]

    def key(channel: discord.abc.GuildChannel) -> tuple[int, int, int]:
        category = channel.category
        return (category.position if category is not None else -1, channel.position, channel.id)

    ordered = sorted(talking, key=key)
    return [*ordered]


def names(rights: Sequence[Right]) -> str:
    """``View Channel``, ``Send Messages and Attach Files``: the rights' names in a phrase."""
    named = [right.name for right in rights]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
