"""Reference images from message links: /imagine's ``references`` option takes links to messages in this
server (right-click a message, Copy Message Link), and their images become references after the ones
attached to the command. So a member can give the model more images than the command has attachment
slots (Nano Banana Pro takes 14), or images already posted, the bot's own results included.

The bot reads the linked messages with its own token, so it checks first that the member could read
them too: a link must not let anyone see, through the bot, a channel they cannot open.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import discord

from bot.asking_discord import asking_discord
from bot.errors import InvalidRequestError
from bot.providers.base import IMAGE_MIME_TYPES
from cogs.places import place_of

# https://discord.com/channels/<guild>/<channel>/<message>, as Copy Message Link gives it (any client).
MESSAGE_LINK = re.compile(
    r"<?https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(?P<guild>\d+)/(?P<channel>\d+)/(?P<message>\d+)>?"
)
# Enough for every reference a model takes even one image per message; each link is one read of Discord.
MAX_LINKS = 14
HOW = "Right-click a message (long-press on mobile) and choose Copy Message Link."
OPTION = "`references`"


@dataclass(frozen=True, slots=True)
class MessageLink:
    guild_id: int
    channel_id: int
    message_id: int
    number: int  # the link's place in the option, as the member reads it in a refusal
    where: str = OPTION  # what the member typed it in

    @property
    def name(self) -> str:
        return f"link {self.number} in {self.where}"


def parse_links(text: str, where: str = OPTION) -> list[MessageLink]:
    """The message links in ``text`` (separated by spaces, commas or new lines), in order, each once;
    anything else in it is refused, quoted, so a typo is not silently dropped. ``where``: what the member
    typed them in, as refusals name it (the option, or the prompt: bot/prompt_links.py)."""
    leftover = " ".join(MESSAGE_LINK.sub(" ", text).replace(",", " ").split())
    if leftover:
        shown = leftover if len(leftover) <= 60 else leftover[:59] + "…"
        raise InvalidRequestError(
            f"`references` takes links to messages with images, or to images; `{shown}` is not one. {HOW}"
        )
    links: list[MessageLink] = []
    seen: set[int] = set()
    for match in MESSAGE_LINK.finditer(text):
        message_id = int(match["message"])
        if message_id not in seen:
            seen.add(message_id)
            links.append(MessageLink(int(match["guild"]), int(match["channel"]), message_id, len(links) + 1, where))
    if len(links) > MAX_LINKS:
        raise InvalidRequestError(
            f"{where[0].upper()}{where[1:]} takes at most {MAX_LINKS} message links; you gave {len(links)}."
        )
    return links


@dataclass(frozen=True, slots=True)
class LinkedImage:
    attachment: discord.Attachment
    # Posted by this bot (one of its results): held to what a provider takes, not the members' upload limit.
    by_this_bot: bool


async def linked_images(interaction: discord.Interaction[Any], text: str, where: str = OPTION) -> list[LinkedImage]:
    """The images (PNG, JPEG, WebP) of the messages linked in ``text``, in link order.

    Refuses, naming the link, one from another server, in a channel the member cannot read (or an
    age-restricted one, used from a channel that is not), gone, or without images.
    """
    links = parse_links(text, where)
    if not links:
        return []
    with asking_discord():  # before /imagine's answer: a retried 502 is seen by cogs/slow_answers.py
        channels = [await _readable_channel(interaction, link) for link in links]
        messages = await asyncio.gather(*(_fetch(channel, link) for channel, link in zip(channels, links, strict=True)))
    me = interaction.client.user
    images: list[LinkedImage] = []
    for link, message in zip(links, messages, strict=True):
        found = [a for a in message.attachments if _mime(a) in IMAGE_MIME_TYPES]
        if not found and me is not None and _withheld(message, me):
            raise InvalidRequestError(
                f"The bot cannot see the images of {link.name}: Discord shows a bot what other "
                "members post only in messages that mention it (unless its owner turned on the Message Content "
                "intent). Attach the images to /imagine, post them again with a mention of the bot, or "
                "right-click the message and choose Apps → Edit with Nano Banana."
            )
        if not found:
            raise InvalidRequestError(f"The message of {link.name} has no PNG, JPEG or WebP image.")
        ours = me is not None and message.author.id == me.id
        images.extend(LinkedImage(attachment, by_this_bot=ours) for attachment in found)
    return images


def _withheld(message: discord.Message, me: discord.abc.User) -> bool:
    """Whether Discord sent this message without its content: another author's, not mentioning the bot, and
    empty throughout (a message always has some content, an attachment or an embed when the bot may see it)."""
    if message.author.id == me.id or any(user.id == me.id for user in message.mentions):
        return False
    return not (message.content or message.attachments or message.embeds or message.stickers)


Readable = discord.TextChannel | discord.Thread | discord.VoiceChannel | discord.StageChannel


async def _readable_channel(interaction: discord.Interaction[Any], link: MessageLink) -> Readable:
    guild = interaction.guild
    member = interaction.user
    if guild is None or link.guild_id != guild.id or not isinstance(member, discord.Member):
        raise InvalidRequestError(f"{link.name.capitalize()} is not a message in this server.")
    channel = guild.get_channel_or_thread(link.channel_id)
    if channel is None:
        try:
            channel = await guild.fetch_channel(link.channel_id)
        except (discord.HTTPException, discord.InvalidData, discord.ClientException):
            # InvalidData: the id is a DM's or another server's channel (discord.py will not make a guild
            # channel of it), which a link's own server id does not reveal.
            channel = None
    if not isinstance(channel, Readable):
        raise InvalidRequestError(f"The bot cannot see the channel of {link.name}.")
    perms = channel.permissions_for(member)
    if not (perms.view_channel and perms.read_message_history) or not await _in_thread(channel, member, perms, link):
        raise InvalidRequestError(f"You cannot read the channel of {link.name}.")
    if channel.is_nsfw() and not place_of(interaction.channel).nsfw:
        raise InvalidRequestError(
            f"{link.name.capitalize()} is in an age-restricted channel; its images can be used "
            "as references only in an age-restricted channel."
        )
    return channel


async def _in_thread(channel: Readable, member: discord.Member, perms: discord.Permissions, link: MessageLink) -> bool:
    """Whether the member sees the channel as a thread's members do: a private thread is seen only by its
    members and by those who may manage threads. (discord.py's ``Thread.permissions_for`` reads the parent
    channel's permissions alone; the bot, reading with its own access, would otherwise hand a private
    thread's images to anyone who can see the channel it hangs from.)"""
    if not isinstance(channel, discord.Thread) or not channel.is_private() or perms.manage_threads:
        return True
    try:
        await channel.fetch_member(member.id)
    except (discord.NotFound, discord.Forbidden):
        return False
    except discord.HTTPException as exc:
        raise InvalidRequestError(
            f"Discord would not say who may read the thread of {link.name} (HTTP {exc.status}). Try again in a moment."
        ) from None
    return True


async def _fetch(channel: Readable, link: MessageLink) -> discord.Message:
    try:
        return await channel.fetch_message(link.message_id)
    except discord.NotFound:
        raise InvalidRequestError(f"The message of {link.name} no longer exists.") from None
    except discord.Forbidden:
        raise InvalidRequestError(
            f"The bot may not read the channel of {link.name} (it needs Read Message History there)."
        ) from None


def _mime(attachment: discord.Attachment) -> str:
    return (attachment.content_type or "").split(";")[0].strip().lower()
