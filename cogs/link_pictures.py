"""A reply's link to an image on another site is taken as Discord's picture of it: the message's embed.

The bot never fetches what a member points it at elsewhere (cogs/editing.py ``_fetched_from``); Discord fetches
the image when the message is posted and shows its copy in an embed. That embed often comes after the message:
the message arrives without it (MESSAGE_CREATE) and Discord adds it once it has the picture (MESSAGE_UPDATE).
An edit started at once left the image out, without a word to the member, who paid for an image that never saw
their picture. So a reply whose link has no picture yet waits a few seconds for it, and one Discord shows no
picture of (a link in < >, a preview the member removed, a site Discord could not fetch) is refused, saying
what to do, before anything is stored or charged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import discord

from bot.app import Bananacord
from bot.errors import InvalidRequestError
from bot.prompt_links import ShownLink
from cogs.editing import link_identity

# How long a reply waits for Discord's picture of a link: Discord fetches an image from a site it can reach
# in a second or two; a reply is answered in the channel, with no interaction's three seconds to keep to.
PICTURE_WAIT_SECONDS = 6.0


def pictures(message: discord.Message, link: str) -> bool:
    """Whether one of ``message``'s embeds is Discord's picture of ``link`` (by the link, whatever its query)."""
    wanted = link_identity(link)
    for embed in message.embeds:
        for url in (embed.url, embed.image.url, embed.thumbnail.url):
            if url and link_identity(url) == wanted:
                return True
    return False


async def pictured(bot: Bananacord, message: discord.Message, links: Sequence[ShownLink]) -> discord.Message:
    """``message`` as Discord shows it once each of ``links`` has its picture in an embed: as it came, read
    again, or as Discord's update of it adds the pictures, within ``PICTURE_WAIT_SECONDS``. Refuses one that
    Discord shows no picture of, naming its site."""
    missing = [link for link in links if not pictures(message, link.url)]
    if not missing:
        return message
    unshown = next((link for link in missing if link.wrapped), None)
    if unshown is not None or message.flags.suppress_embeds:
        raise InvalidRequestError(
            f"Discord shows no picture of your link to the image on `{(unshown or missing[0]).host}` "
            "(a link in < >, or one whose preview was removed, has none), and the bot takes an image from another "
            "site only as Discord's picture of it. Post the link without < >, or attach the image to your reply."
        )

    def shows_all(payload: discord.RawMessageUpdateEvent) -> bool:
        return payload.message_id == message.id and all(pictures(payload.message, link.url) for link in links)

    # Listening from now on, then reading the message again: an update that came before this point is in what
    # the read returns, and one after it reaches the listener.
    update = asyncio.ensure_future(bot.wait_for("raw_message_edit", check=shows_all, timeout=PICTURE_WAIT_SECONDS))
    try:
        # "Bananacord is typing…" while it waits (Discord shows it up to 10 s, or until the bot's answer): the
        # member sees their reply taken up. A channel that refuses it refuses nothing else here.
        with contextlib.suppress(discord.HTTPException):
            await message.channel.typing()
        with contextlib.suppress(discord.HTTPException):
            again = await message.channel.fetch_message(message.id)
            if all(pictures(again, link.url) for link in links):
                return again
        try:
            return (await update).message
        except TimeoutError:
            raise InvalidRequestError(
                f"Discord showed no picture of your link to the image on `{missing[0].host}` (it shows one "
                "only for an image it could fetch from that site), and the bot takes an image from another site "
                "only as Discord's picture of it. Attach the image to your reply instead."
            ) from None
    finally:
        update.cancel()
