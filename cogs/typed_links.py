"""Links typed into a member's words (/imagine's prompt, a reply, an Edit form) taken out as references, with
what the bot needs to judge them: which hosts serve Discord's files here, and Discord's renewal of a link
about to expire. The reading itself is bot/prompt_links.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from urllib.parse import urlsplit

import discord

from bot.app import Bananacord
from bot.discord_refs import renewed_urls, stale
from bot.errors import InvalidRequestError
from bot.models import ReferenceImage
from bot.option_sets import option_sets_of, with_option_sets
from bot.prompt_links import PromptLinks, split_links
from bot.prompt_parameters import split_parameters
from bot.prompts import clean_prompt
from bot.reference_roles import Role
from cogs.places import Place, place_of
from cogs.reference_links import parse_links

NO_WORDS = "The prompt has a link and no words: say what to make of the image too (`… as a watercolour`)."
# An edit has no interaction to check a message's readers with in every case (a reply has none), and it
# works on an image: its link is what is wanted.
MESSAGE_IN_AN_EDIT = (
    "An edit takes images' own links, not messages': right-click the image → Copy Link, and paste that "
    "(or attach the image, in a reply)."
)


def own_cdn(bot: Bananacord) -> str | None:
    """The address (``scheme://host:port``) serving Discord's files besides Discord's CDN: the one the bot's API
    address names, where that is not Discord (a fake Discord, or a proxy in front of Discord)."""
    api = urlsplit(bot.settings.discord.api_base_url)
    return None if api.netloc.lower().endswith(("discord.com", "discordapp.com")) else f"{api.scheme}://{api.netloc}"


async def typed_links(
    bot: Bananacord,
    text: str | None,
    *,
    guild: discord.Guild | None,
    here: Place,
    edit: bool = False,
    alone: bool = False,
    shown: bool = False,
    roles: frozenset[Role] = frozenset(),
    option_sets: Mapping[str, str] | None = None,
) -> PromptLinks:
    """``text`` cleaned, its Discord links taken out; image links about to expire renewed (the job may wait for
    a provider's turn, and a provider fetches the link after the bot's check). ``edit``: a message's link is
    refused (``MESSAGE_IN_AN_EDIT``). Links with no words beside them are refused (``NO_WORDS``); with
    ``alone`` (/imagine's ``references`` option) it is words beside them that are refused, quoted. So is an
    image from an age-restricted channel of ``guild`` used ``here``, elsewhere (as a message's link is:
    cogs/reference_links.py). ``shown``: the words are a message's (a reply), whose link to an image elsewhere
    Discord shows as its copy, read with the message's embeds: it is taken out of the words and listed in
    ``shown`` (``split_links``), for the caller to wait for that embed (cogs/link_pictures.py). ``roles``: roles
    images given another way have (/imagine's ``style_image``), whose weights the words may give (``--sw 300``).
    ``option_sets``: the member's (``member_option_sets``), each name in the words replaced by its parameters first
    (bot/option_sets.py)."""
    now = bot.clock()
    text = with_option_sets(text or "", option_sets or {})
    links = split_links(clean_prompt(text), now=now, own_cdn=own_cdn(bot), shown=shown, roles=roles)
    if edit and (links.messages or links.role_messages):
        raise InvalidRequestError(MESSAGE_IN_AN_EDIT)
    if alone:
        parse_links(links.words)  # words are no link: refused, quoted, with how to copy one
    else:
        _check_words(links)
    if not here.nsfw and guild is not None:
        for image in links.images:
            channel = _channel_of(guild, image.url)
            if channel is not None and place_of(channel).nsfw:
                raise InvalidRequestError(
                    f"`{image.filename}` is from an age-restricted channel; its images can be used as references "
                    "only in an age-restricted channel."
                )
    renewed = await renewed_urls(bot.http, [image.url for image in links.images], now=now)
    if not renewed:
        return links
    images = tuple(image.model_copy(update={"url": renewed.get(image.url, image.url)}) for image in links.images)
    for image in images:
        if stale(image.url, now):
            raise InvalidRequestError(
                f"The link to `{image.filename}` is about to expire and Discord would not renew it: the image may "
                "have been deleted. Copy the image's link again, or attach the image."
            )
    return replace(links, images=images)


async def member_option_sets(bot: Bananacord, guild_id: int | None, user_id: int) -> dict[str, str]:
    """The option sets of the member writing (bot/option_sets.py), from their preferences (kept in memory)."""
    if guild_id is None:
        return {}
    return option_sets_of((await bot.services.preferences.get(guild_id, user_id)).option_sets)


def _channel_of(guild: discord.Guild, url: str) -> discord.abc.GuildChannel | discord.Thread | None:
    """The channel or thread of ``guild`` a Discord file link names (``/attachments/<channel>/<file id>/<name>``),
    if the bot knows it; None for another server's, a DM's, or a link that names none."""
    parts = urlsplit(url).path.split("/")
    if len(parts) != 5 or parts[1] not in ("attachments", "ephemeral-attachments") or not parts[2].isdigit():
        return None  # an emoji's or an avatar's, which belongs to no channel; or the fake CDN's shorter path
    return guild.get_channel_or_thread(int(parts[2]))


def not_among(images: Sequence[ReferenceImage], others: Sequence[ReferenceImage]) -> list[ReferenceImage]:
    """``images`` but those among ``others`` (the same file: the same path, whatever its host or signature;
    a message's embed of a link shows the link's file through the media proxy). An image given for its style or
    character (``--sref``: bot/reference_roles.py) is kept unless it is among them for that: the prompt sent names
    it by its place, and a reply's embed of its link is the same file with no role."""
    paths = {(urlsplit(other.url).path, other.role) for other in others}
    return [image for image in images if (urlsplit(image.url).path, image.role) not in paths]


def _check_words(links: PromptLinks) -> None:
    """Refuse links with no words beside them (Midjourney's parameters aside): nothing says what to make of
    the images. Before an edit's own refusal of no change at all, which would not say why."""
    if links.found and not split_parameters(links.words).words.strip():
        raise InvalidRequestError(NO_WORDS)
