"""Links typed into a prompt: an image's link on Discord is a reference image, not words.

Members coming from Midjourney start a prompt with an image's link (right-click an image in Discord → Copy
Link), and others paste a message's link. Nano Banana cannot open a link: sent as words, it is noise the
model draws from, and the member pays for an image that never saw their picture. So the links to Discord's
images and messages are taken out of the prompt; the images become references after the attached ones, the
messages are read as ``/imagine references:`` reads them (cogs/reference_links.py, which checks the member
may read them).

Only Discord's own image links are fetched: the bot does not download what a member points it at elsewhere
(any address would do, an internal one included), and a link to an image on another site is refused with
what to do instead. A link to a web page elsewhere stays in the words, as typed.

Discord's public images count too: a custom emoji's, a sticker's, an avatar's (``/emojis/``, ``/avatars/``...),
which its CDN serves to anyone, unsigned; they are asked for still and at the largest size it gives.

A Discord file link is a signed URL (``ex``/``is``/``hm``, bot/discord_refs.py): whoever holds a valid one
may fetch the file, so the bot fetches nothing the member could not. One that has expired, or carries no
signature, is refused rather than renewed: renewing would hand the member, through the bot, a file they can
no longer open themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import SplitResult, parse_qs, unquote, urlencode, urlsplit

from bot.discord_refs import expires_at
from bot.errors import InvalidRequestError
from bot.models import ReferenceImage, shown_file_name
from bot.prompt_parameters import DASHES
from bot.reference_roles import PARAMETERS, WEIGHT_HELP, WEIGHT_RANGE, WEIGHTS, Role

# Discord's CDN and its media proxy (the link an image's "Copy Link" gives); both serve /attachments/.
DISCORD_CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
_CDN_HOST = "cdn.discordapp.com"
_ATTACHMENT_PATHS = ("/attachments/", "/ephemeral-attachments/")
# What the CDN serves to anyone, unsigned and for good: custom emojis, stickers, avatars (a member's, or
# their server profile's), server icons and banners, among others. "Draw my avatar as a knight".
_PUBLIC_PATHS = ("/emojis/", "/stickers/", "/avatars/", "/embed/avatars/", "/guilds/", "/icons/", "/banners/")
# An animated emoji or avatar is a GIF; the CDN gives its first frame as a PNG for the asking (a sticker's
# GIF is its own file, with no PNG beside it).
_STILL_OF_GIF = ("/emojis/", "/avatars/", "/guilds/", "/icons/", "/banners/")
# Discord's proxy of an image from elsewhere shown in a message (its Copy Link): the bot asks Discord, which
# fetched and keeps the image, never the site it came from.
_EXTERNAL_PROXY = re.compile(r"images-ext-\d{1,2}\.discordapp\.net")
# Avatars and emojis come at 128 px unless asked: the largest the CDN gives is the best reference.
_PUBLIC_SIZE = 1024
# https://discord.com/channels/<guild>/<channel>/<message> (cogs/reference_links.py reads it).
_MESSAGE_LINK = re.compile(r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/\d+/\d+/\d+")
# A custom emoji as Discord's client writes it (``<:name:id>``, ``<a:name:id>`` animated), or a link as typed,
# angle brackets (Discord's "no preview" form) included.
_TOKEN = re.compile(
    r"(?P<emoji><a?:(?P<name>\w{2,32}):(?P<emoji_id>\d{1,21})>)|<?(?P<url>https?://[^\s<>]+)>?", re.IGNORECASE
)
# Punctuation that ends a sentence or a list rather than the link ("see https://…png, then").
_TRAILING = ".,;:!?)]}'\""
_PUNCTUATION = re.compile(f"[{re.escape(_TRAILING)}]*")
_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
_IMAGE_SUFFIXES = (*_TYPES, ".gif", ".avif", ".heic", ".bmp", ".tif", ".tiff")
# As many as the largest model takes; each is a download.
MAX_IMAGE_LINKS = 14
# A parameter's values may be links (Midjourney's --sref <url>): those are the parameter's, read by
# bot/prompt_parameters.py, not references.
# "--sref {<link>, <link>}": Midjourney's choices of style images (not taken: ``split_links``).
_ROLE_CHOICES = re.compile(rf"{DASHES}(sref|cref|oref|sw|cw|ow)\s*\{{", re.IGNORECASE)
# "--sw 50": Midjourney's weight for the images given after --sref (--cw: --cref's, --ow: --oref's), as a word of
# its own, taken out with the spaces before it, or at a line's start with those after it (``_weights``).
# (No leading run of spaces in the pattern: tried at each of a long run's spaces, it was quadratic.)
_WEIGHT = re.compile(rf"(?<!\S){DASHES}(sw|cw|ow)[ \t]+([0-9]{{1,9}})(?!\S)", re.IGNORECASE)
_PARAMETER = re.compile(rf"{DASHES}([a-z]+)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ShownLink:
    """A link in a message's words to an image on another site, whose picture is Discord's copy in the message's
    embed of it (``split_links(shown=True)``; cogs/link_pictures.py waits for that embed)."""

    url: str
    host: str  # as named back to the member, in a code span
    wrapped: bool  # typed in < >: Discord shows no picture of it


@dataclass(frozen=True, slots=True)
class PromptLinks:
    """A prompt with its Discord links taken out."""

    words: str
    images: tuple[ReferenceImage, ...] = ()
    messages: tuple[str, ...] = ()  # message links, for cogs/reference_links.py
    shown: tuple[ShownLink, ...] = ()  # with ``shown=True``: links whose pictures are the message's embeds

    # Message links given after --sref, --cref or --oref: their images are references with that role.
    role_messages: tuple[tuple[Role, str], ...] = ()
    # The weights given for those roles (``--sw 50``), for the images of ``role_messages`` (``images`` have theirs).
    weights: tuple[tuple[Role, int], ...] = ()

    def weight_of(self, role: Role) -> int | None:
        return dict(self.weights).get(role)

    @property
    def found(self) -> bool:
        return bool(self.images or self.messages or self.role_messages)


def split_links(
    prompt: str, *, now: float, own_cdn: str | None = None, shown: bool = False, roles: frozenset[Role] = frozenset()
) -> PromptLinks:
    """``prompt`` without the links to Discord's images and messages in it, and those links; a custom emoji
    (``<:name:id>``, as Discord's client writes one) is its image and its name in the words.

    ``own_cdn``: another address serving Discord's files (``scheme://host:port``), the one the bot's API
    address names when that is not Discord's: a test's fake Discord, or a proxy in front of Discord; custom
    emojis are fetched there too. Refuses, saying what to do instead: a link to an image elsewhere, an
    expired or unsigned Discord file link, more images than any model takes. ``shown``: the words are a
    message's, in which Discord shows a link to an image elsewhere as its own copy (an embed, which the caller
    reads): such a link is taken out of the words, not refused, and listed in ``shown``. ``roles``: the roles of
    images given another way (attached for their style), whose weights in the words are taken too.
    """
    if (braced := _ROLE_CHOICES.search(prompt)) is not None:
        # Choices are read after the links are taken out (bot/permutations.py): each image would go to every
        # choice as a plain reference, none for its style. Said rather than drawn so.
        if braced[1].lower() in WEIGHTS:
            raise InvalidRequestError(
                f"`--{braced[1].lower()}` takes one weight, not choices in braces: for each weight, send a command."
            )
        raise InvalidRequestError(
            f"`--{braced[1].lower()}` takes images' links, not choices in braces: several links after it are all "
            "used together; for one image per style, send a command for each."
        )
    own = urlsplit(own_cdn) if own_cdn else None
    hosts = DISCORD_CDN_HOSTS | ({own.netloc.lower()} if own else set())
    emojis = own or urlsplit(f"https://{_CDN_HOST}")
    pieces: list[str] = []
    images: dict[str, ReferenceImage] = {}  # by path: the same image linked twice is one reference
    messages: list[str] = []
    role_messages: list[tuple[Role, str]] = []
    pictured: dict[str, ShownLink] = {}  # by link
    words = ""  # the words since the last link taken out (an emoji's name among them)
    start = 0  # where the text after the last link or emoji taken out begins
    after_last = 0  # where the last link seen, taken out or not, ended
    value_run = False  # the links just after a "--name" are its values
    role: Role | None = None  # the run's, after --sref, --cref or --oref (bot/reference_roles.py)
    for match in _TOKEN.finditer(prompt):
        if match["emoji"] is not None:
            path = f"/emojis/{match['emoji_id']}.png"  # an animated one's still, as for a linked one
            images.setdefault(path, _public_image(emojis._replace(path=path)))
            # Its name stays in the words, so the model is told what the image is ("a :banana_cat: in space").
            words += prompt[start : match.start()] + match["name"].replace("_", " ")
            start = after_last = match.end()
            value_run = False
            continue
        url = match["url"].rstrip(_TRAILING)
        between = prompt[after_last : match.start()]
        words_before = between.split()
        cut = match.start()  # where the words taken out with this link begin
        if words_before and (named := _PARAMETER.search(words_before[-1])):
            value_run = True
            role = PARAMETERS.get(named[1].lower())
            cut = after_last + between.rindex(words_before[-1])  # the parameter's name goes with its links
        elif not (value_run and not words_before):
            value_run = False
        after_last = match.end()
        if value_run and role is None:
            continue  # another parameter's value, read by bot/prompt_parameters.py
        if value_run and _MESSAGE_LINK.fullmatch(url):
            assert role is not None
            role_messages.append((role, url))  # read as references: reads its links, by the caller
        elif value_run:
            assert role is not None
            found = _role_image(url, role, hosts, now)
            images[urlsplit(found.url).path] = found  # the same image given plain too: what it is for wins
        elif _MESSAGE_LINK.fullmatch(url):
            messages.append(url)
        elif (parts := _split(url)) is None:
            continue  # no address urllib can read ("http://[1::1"): no link of Discord's, words as typed
        elif (image := _discord_image(parts, url, hosts, now)) is not None:
            images.setdefault(parts.path, image)
        elif parts.path.lower().endswith(_IMAGE_SUFFIXES) and shown:
            # The message's embed of it is Discord's copy (cogs/editing.py message_images).
            # Discord pictures a link typed bare anywhere in the message, even if it is in < > elsewhere.
            earlier = pictured.get(url)
            bare = not (match[0].startswith("<") and match[0].endswith(">")) or (
                earlier is not None and not earlier.wrapped
            )
            pictured[url] = ShownLink(url, _shown_host(parts), wrapped=not bare)
        elif parts.path.lower().endswith(_IMAGE_SUFFIXES):
            raise InvalidRequestError(
                f"The bot takes reference images from Discord only, not from `{_shown_host(parts)}`. Attach the "
                "image to /imagine (or post it in Discord and paste that image's link)."
            )
        else:
            continue  # a web page's address: words, as typed
        # The punctuation after a link goes with it ("https://…png, a cat" and "<https://…png>, a cat" are
        # "a cat").
        pieces.append(words + prompt[start:cut])
        words = ""
        punctuation = _PUNCTUATION.match(prompt, match.end())
        start = punctuation.end() if punctuation else match.end()
    if not pieces and not images and not roles:  # nothing taken out (an emoji adds an image, a link a piece)
        return PromptLinks(prompt)
    if len(images) > MAX_IMAGE_LINKS:
        raise InvalidRequestError(
            f"Your words bring {len(images)} images (links and custom emojis); the bot takes at most "
            f"{MAX_IMAGE_LINKS} reference images."
        )
    pieces.append(words + prompt[start:])
    given = {image.role for image in images.values() if image.role is not None} | {role for role, _ in role_messages}
    given |= roles
    text, weights = _weights(_joined(pieces), given)
    weighed = [
        image.model_copy(update={"weight": weights[image.role]}) if image.role in weights else image
        for image in images.values()
    ]
    return PromptLinks(
        text,
        tuple(weighed),
        tuple(dict.fromkeys(messages)),
        tuple(pictured.values()),
        tuple(dict.fromkeys(role_messages)),
        tuple(weights.items()),
    )


def _weights(words: str, given: set[Role]) -> tuple[str, dict[Role, int]]:
    """``words`` without Midjourney's weights (``--sw 50``) for the roles ``given`` in them, and those weights (the
    last of each, as Midjourney takes it); a weight out of its range is refused, with the range. A weight for a role
    not given stays in the words: bot/prompt_parameters.py names it back, left out."""
    weights: dict[Role, int] = {}
    pieces: list[str] = []
    kept = 0  # where the words not yet copied begin
    for found in _WEIGHT.finditer(words):
        role = WEIGHTS[found[1].lower()]
        if role not in given:
            continue
        low, high = WEIGHT_RANGE[role]
        if not low <= int(found[2]) <= high:
            raise InvalidRequestError(WEIGHT_HELP[role])
        weights[role] = int(found[2])
        # The spaces before it go with it; at a line's start (nothing but spaces before it), those after it.
        cut, end = found.start(), found.end()
        while cut > kept and words[cut - 1] in " \t":
            cut -= 1
        if cut == 0 or words[cut - 1] == "\n":
            cut = found.start()
            while end < len(words) and words[end] in " \t":
                end += 1
        pieces.append(words[kept:cut])
        kept = end
    if not weights:
        return words, weights
    text = "".join([*pieces, words[kept:]])
    return text.strip().rstrip(",;:").rstrip(), weights


def _role_image(url: str, role: Role, hosts: frozenset[str] | set[str], now: float) -> ReferenceImage:
    """The image a link after ``--sref`` (``--cref``, ``--oref``) gives, marked with its ``role``: an image on
    Discord, as a link in the words is; anything else is refused, with what to give instead."""
    parameter = next(name for name, given in PARAMETERS.items() if given == role)
    parts = _split(url)
    if parts is None:
        raise InvalidRequestError(
            f"`--{parameter}` takes an image's link on Discord (right-click the image → Copy Link)."
        )
    image = _discord_image(parts, url, hosts, now)
    if image is None:
        raise InvalidRequestError(
            f"`--{parameter}` takes an image on Discord, not one from `{_shown_host(parts)}`: post the image in "
            "Discord and paste its link after it (right-click the image → Copy Link)."
        )
    return image.model_copy(update={"role": role})


def _discord_image(parts: SplitResult, url: str, hosts: frozenset[str] | set[str], now: float) -> ReferenceImage | None:
    """The image a link to Discord's files gives (a file's, an emoji's, an avatar's...); None for any other link."""
    host = parts.netloc.lower()
    if host in hosts and parts.path.startswith(_ATTACHMENT_PATHS):
        return _image(parts, url, now)
    if (
        host in DISCORD_CDN_HOSTS
        or (host in hosts and parts.path.startswith(_PUBLIC_PATHS))
        or (_EXTERNAL_PROXY.fullmatch(host) and parts.path.startswith("/external/"))
    ):
        # Discord's CDN serves its public assets at every other path (role icons, app icons too); another host
        # only at the paths known here, the rest of it being an API, not files.
        return _public_image(parts)
    return None


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a port that is no number raises only when read
    except ValueError:
        return None
    return parts


def _public_image(parts: SplitResult) -> ReferenceImage:
    """An emoji's, a sticker's, an avatar's or a server icon's link as a reference: on the CDN itself, still, at
    the largest size it gives."""
    path = parts.path
    if path.lower().endswith(".gif") and path.startswith(_STILL_OF_GIF):
        path = path[: -len(".gif")] + ".png"
    name = unquote(PurePosixPath(path).name) or "image"
    content_type = _TYPES.get(PurePosixPath(name).suffix.lower(), "")
    # The proxy's own options (width, height, format) would resize or re-encode the image: none are kept.
    query = "" if path.startswith("/external/") else f"?size={_PUBLIC_SIZE}"
    url = f"{_origin(parts)}{path}{query}"
    return ReferenceImage(url=url, content_type=content_type, size=0, filename=name)


def _image(parts: SplitResult, url: str, now: float) -> ReferenceImage:
    """A Discord image link as a reference: on the CDN itself, with only its signature (the media proxy's
    resizing and format options would hand a provider other bytes than the file's)."""
    name = unquote(PurePosixPath(parts.path).name) or "image"
    expiry = expires_at(url)
    if expiry is None:
        raise InvalidRequestError(
            f"The link to `{shown_file_name(name)}` is cut short: Discord serves an image only with "
            "the `?ex=…&is=…&hm=…` its link ends with. Copy the image's link again (right-click it → Copy Link), "
            "or attach the image."
        )
    if expiry <= now:
        raise InvalidRequestError(
            f"The link to `{shown_file_name(name)}` has expired (Discord's image links last about a "
            "day). Copy the image's link again (right-click it → Copy Link), or attach the image."
        )
    query = parse_qs(parts.query)
    signature = urlencode({key: query[key][0] for key in ("ex", "is", "hm")})
    content_type = _TYPES.get(PurePosixPath(name).suffix.lower(), "")
    # The size is not known until the bytes are fetched: 0 holds the download to the members' limit
    # (bot/references.py download_cap), as an attachment's declared size would.
    return ReferenceImage(
        url=f"{_origin(parts)}{parts.path}?{signature}&", content_type=content_type, size=0, filename=name
    )


def _origin(parts: SplitResult) -> str:
    """Where a Discord link is fetched: the CDN itself for its media proxy's links, over https as Discord's
    hosts always are; another host (a fake Discord, a proxy in front of it) as it was given."""
    host = parts.netloc.lower()
    if host in DISCORD_CDN_HOSTS:
        return f"https://{_CDN_HOST}"
    if _EXTERNAL_PROXY.fullmatch(host):
        return f"https://{host}"
    return f"{parts.scheme}://{parts.netloc}"


def _shown_host(parts: SplitResult) -> str:
    return (parts.hostname or "another site").replace("`", "'")[:80]


def _joined(pieces: list[str]) -> str:
    """The words around the links taken out: one space where a link stood between two words, none beside a
    line break; the spacing the member typed elsewhere is kept."""
    text = ""
    for piece in pieces:
        text = text.rstrip(" \t")
        piece = piece.lstrip(" \t") if text else piece
        if text and piece and text[-1] != "\n" and piece[0] != "\n":
            text += " "
        text += piece
    # "a cat, <link>" is "a cat": the comma went before the link.
    return text.strip().rstrip(",;:").rstrip()
