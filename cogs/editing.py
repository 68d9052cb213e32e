"""Editing images already in a channel (a reply to one of the bot's images, "Edit with Nano Banana" on
any message): which of a message's images become references, and the request that keeps the original
job's model and options with the member's instruction (how many references a model takes:
bot/derive.py)."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from urllib.parse import urlsplit

import discord

from bot.derive import AS_IT_IS, FRAMINGS, Frame, continued, framed, framing_words, subject_of
from bot.errors import InvalidRequestError
from bot.models import Derivation, GenerationRequest, ReferenceImage, shown_file_name
from bot.prompt_links import DISCORD_CDN_HOSTS
from bot.providers.base import IMAGE_MIME_TYPES
from bot.regions import Region, in_region
from bot.store.jobs import Job
from cogs.imagine import build_request

# Embeds that are a posted image link (Discord shows the picture as the embed's thumbnail).
_IMAGE_EMBED_TYPES = frozenset({"image"})


def message_images(message: discord.Message, *, max_bytes: int) -> list[ReferenceImage]:
    """The message's images in the order a member sees them: attachments, then embedded images.

    An image both attached and shown in an embed (the bot's results: the embed shows the attachment)
    counts once. A member's attachment over ``max_bytes`` (the members' upload limit) is refused with the
    same rule as /imagine's options; the bot's own results are not held to it: they are delivered up to the
    channel's upload limit, and routing holds them to what a provider takes (bot/references.py).
    """
    images = attachment_images(shown_attachments(message), max_bytes=None if from_this_bot(message) else max_bytes)
    seen = {link_identity(image.url) for image in images}
    for url in _embedded_image_urls(shown_embeds(message)):
        filename = urlsplit(url).path.rsplit("/", 1)[-1] or "image"
        # A linked image has no declared type: its name's extension says it, or it is not taken (a wrong
        # guess would be refused by providers that compare the bytes with the stated type).
        content_type = _image_type(None, filename)
        if content_type is None or link_identity(url) in seen:
            continue
        seen.add(link_identity(url))
        images.append(ReferenceImage(url=url, content_type=content_type, size=0, filename=filename))
    return images


def image_proportion(message: discord.Message, image: ReferenceImage) -> float | None:
    """Width over height of ``image``, one of ``message``'s images, as Discord gives its size (found by
    its link, signed or not); None where Discord does not (a linked image it has not measured)."""
    wanted = link_identity(image.url)
    sizes = [(a.url, a.width, a.height) for a in shown_attachments(message)]
    for embed in shown_embeds(message):
        for shown in (embed.image, embed.thumbnail):
            # Found by either link: an image from another site is taken by Discord's copy (_fetched_from).
            sizes += [(link, shown.width, shown.height) for link in (shown.url, shown.proxy_url) if link]
    for url, width, height in sizes:
        if link_identity(url) == wanted:
            return width / height if width and height else None
    return None


def from_this_bot(message: discord.Message) -> bool:
    """Whether this bot posted ``message`` (its results), by the id of the user the bot is logged in as."""
    return message.author.id == message._state.self_id


def attachment_images(attachments: list[discord.Attachment], *, max_bytes: int | None) -> list[ReferenceImage]:
    """The images among ``attachments``, in order; one over ``max_bytes`` is refused as /imagine's are.
    ``max_bytes`` None: the bot's own results, held to the providers' limits instead (routing)."""
    images: list[ReferenceImage] = []
    for attachment in attachments:
        content_type = _image_type(attachment.content_type, attachment.filename)
        if content_type is None:
            continue
        if max_bytes is not None and attachment.size > max_bytes:
            raise InvalidRequestError(
                f"`{shown_file_name(attachment.filename)}` is {attachment.size / 1_048_576:.1f} MiB; reference "
                "images may be "
                f"at most {max_bytes / 1_048_576:.0f} MiB."
            )
        images.append(
            ReferenceImage(
                url=attachment.url, content_type=content_type, size=attachment.size, filename=attachment.filename
            )
        )
    return images


def shown_attachments(message: discord.Message) -> list[discord.Attachment]:
    """The files a message shows: its own, then a forward's (Discord's message snapshot of what it forwards: a member
    who forwarded a friend's photo here edits it as if it were posted here)."""
    return [*message.attachments, *(a for snapshot in message.message_snapshots for a in snapshot.attachments)]


def shown_embeds(message: discord.Message) -> list[discord.Embed]:
    """The embeds a message shows: its own, then a forward's."""
    return [*message.embeds, *(e for snapshot in message.message_snapshots for e in snapshot.embeds)]


def _embedded_image_urls(embeds: list[discord.Embed]) -> Iterator[str]:
    for embed in embeds:
        if embed.image.url:
            yield _fetched_from(embed.image.url, embed.image.proxy_url)
        if embed.type in _IMAGE_EMBED_TYPES and embed.thumbnail.url:
            yield _fetched_from(embed.thumbnail.url, embed.thumbnail.proxy_url)


def _fetched_from(url: str, proxy_url: str | None) -> str:
    """Where an embedded image is fetched: a file on Discord's CDN at its own link (an attachment shown in an
    embed, as the bot's results are, is one reference with it); an image from another site at Discord's copy
    (``proxy_url``, ``images-ext-N.discordapp.net``), so that neither the bot nor a provider is sent to a site
    a member named, and the image is the one Discord showed, whatever that site serves now."""
    if urlsplit(url).netloc.lower() in DISCORD_CDN_HOSTS or not proxy_url:
        return url
    return proxy_url


def _declared_type(declared: str | None, filename: str) -> str:
    return (declared or mimetypes.guess_type(filename)[0] or "").split(";")[0].strip().lower()


def _image_type(declared: str | None, filename: str) -> str | None:
    """The type of an image the providers take (PNG, JPEG, WebP), or None: a GIF or SVG beside a photo was
    counted as one of the message's images, so "Edit with Nano Banana" opened its form and then refused the
    whole edit for the GIF, leaving the photo with no way to be edited."""
    content_type = _declared_type(declared, filename)
    return content_type if content_type in IMAGE_MIME_TYPES else None


def unsupported_images(attachments: list[discord.Attachment]) -> list[tuple[str, str]]:
    """(name, type) of the attached images the providers do not take (GIF, SVG, HEIC, ...)."""
    found = ((a.filename, _declared_type(a.content_type, a.filename)) for a in attachments)
    return [(name, kind) for name, kind in found if kind.startswith("image/") and kind not in IMAGE_MIME_TYPES]


def link_identity(url: str) -> str:
    """A link without its query: the same file, however Discord signed or sized the link to it."""
    # Discord signs CDN links with a query string that differs between an attachment and its embed.
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def edit_request(
    original: Job | None,
    *,
    model: str,
    prompt: str,
    references: list[ReferenceImage],
    frame: Frame = AS_IT_IS,
    region: Region | None = None,
    shown_at: str | None = None,
    by: int | None = None,
) -> GenerationRequest:
    """An edit of the image ``original`` made (its image the first reference): its model, shape, size and
    options with a new instruction and new references, continuing its conversation; a new take, so no
    seed. Without it (an image the bot did not make), ``model`` with nothing else. ``frame``: a new shape
    and/or a zoom out, which with no instruction is the whole request (bot/derive.py ``framed``).
    ``shown_at``: the link to the message that showed ``original``'s image, for the embed to say what the
    edit was made from (a reply needs none: it answers in the thread). ``by``: the member asking, so that the
    conversation carried on holds no references of another member's (bot/derive.py ``continued``). ``region``: the
    part of the first image alone to change (bot/regions.py), as the Edit form's *Where* asks it (bot/derive.py
    ``edit``): the words stay the member's, and an image of the bot's keeps the area for its Change prompt."""
    words = prompt
    prompt, action = framed(words, frame, references=len(references))
    # A framed image keeps the words for what it shows, for its Vary and re-render (bot/derive.py).
    subject = subject_of(original.request if original else None) if action in FRAMINGS else None
    member_words = framing_words(words, action)  # what moderation judges: the bot's instruction is not theirs
    if region is not None and action == "edit":
        # The area's sentence is the bot's: a Vary or re-render of the result draws the words, not the area again.
        prompt, subject, member_words = in_region(words, region, references=len(references)), words, words
    if original is None:
        return build_request(
            model=model,
            prompt=prompt,
            reference_images=tuple(references),
            aspect_ratio=frame.ratio,
            subject=subject,
            member_words=member_words,
        )
    base = original.request
    return build_request(
        model=base.model,
        prompt=prompt,
        subject=subject,
        member_words=member_words,
        reference_images=tuple(references),
        aspect_ratio=frame.ratio or base.aspect_ratio,
        resolution=base.resolution,
        output_format=base.output_format,
        thinking_level=base.thinking_level,
        web_search=base.web_search,
        # Which of those the requester's /preferences filled in, as a button's request keeps them (bot/derive.py):
        # one no working provider takes any more is then left out (cogs/policy.py ``admitted``), not refused.
        # Dropped here, a reply or this form over a saved png was refused where the Edit button went on
        # without it. A new shape asked is the member's own, never left out.
        defaulted=tuple(name for name in base.defaulted if not (name == "aspect_ratio" and frame.ratio)),
        history=continued(original, references, by=by),
        derived_from=None
        if shown_at is None
        else Derivation(
            action=action,
            job_id=original.id,
            message_url=shown_at,
            way=frame.pan,
            region=region if action == "edit" else None,
        ),
    )
