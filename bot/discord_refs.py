"""Discord attachment links expire: renew the ones a job would use before it starts.

Discord signs its CDN URLs: ``ex`` is when the link stops working (hex epoch seconds), ``is`` when it
was issued, ``hm`` the signature; after ``ex`` anyone outside Discord gets a 404, the bot's own
reference check and the provider included. A job's request keeps the links its images had when it
was made (the member's /imagine attachments, the earlier image a Vary or Edit works from), so a
Re-roll or Vary a day later renews them first with ``POST /attachments/refresh-urls``, which
discord.py 2.7 does not wrap (docs/architecture.md section 4.7). The images of the conversation a
reply continues (``GenerationRequest.history``) are renewed with them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import discord
from discord.http import HTTPClient, Route

from bot.asking_discord import asking_discord
from bot.errors import InvalidRequestError
from bot.models import GenerationRequest, ReferenceImage

log = logging.getLogger(__name__)

# A link with less than this left is renewed: the provider downloads it after the bot has checked it,
# and a job can wait for a provider's turn.
REFRESH_MARGIN_SECONDS = 3600.0
# URLs per refresh call; the figure client libraries use (Discord documents none).
REFRESH_BATCH = 50


class ReferencesGoneError(InvalidRequestError):
    """An image the job was made from is no longer on Discord; nothing can bring it back."""

    user_message = (
        "An image this job was made from is no longer on Discord (its message or file was deleted), so it "
        "cannot be used again. Start a new /imagine with the image attached."
    )


class RefreshFailedError(InvalidRequestError):
    """Discord did not renew the links just now; trying again later may work."""

    user_message = (
        "Discord did not renew the links to this job's reference images just now, so nothing was started "
        "(and nothing was charged). Try again in a minute."
    )


def expires_at(url: str) -> float | None:
    """When a signed Discord attachment URL stops working; None for a URL that carries no signature."""
    query = parse_qs(urlsplit(url).query)
    if not {"ex", "is", "hm"} <= query.keys():
        return None
    try:
        return float(int(query["ex"][0], 16))
    except ValueError:
        return 0.0  # a signature we cannot read: treat it as spent


def stale(url: str, now: float) -> bool:
    """A signed URL that has expired, or will within the margin."""
    expiry = expires_at(url)
    return expiry is not None and expiry - now < REFRESH_MARGIN_SECONDS


async def refresh_urls(http: HTTPClient, urls: Sequence[str]) -> dict[str, str]:
    """original -> refreshed, for the URLs Discord answered for."""
    renewed: dict[str, str] = {}
    for start in range(0, len(urls), REFRESH_BATCH):
        batch = list(urls[start : start + REFRESH_BATCH])
        try:
            answer = await http.request(Route("POST", "/attachments/refresh-urls"), json={"attachment_urls": batch})
        except discord.HTTPException as exc:
            raise RefreshFailedError(detail=f"refresh-urls: {exc.status} {exc.code}") from None
        for entry in answer.get("refreshed_urls") or []:
            if isinstance(entry, dict) and isinstance(entry.get("refreshed"), str):
                renewed[str(entry.get("original"))] = entry["refreshed"]
    return renewed


async def renewed_urls(http: HTTPClient, urls: Sequence[str], *, now: float) -> dict[str, str]:
    """Those of ``urls`` that have expired, or will within the margin, renewed: original -> renewed, for the
    ones Discord answered for (empty when none needed it). A caller judges the answers by their ``ex``."""
    old = list(dict.fromkeys(url for url in urls if stale(url, now)))
    if not old:
        return {}
    with asking_discord():  # before the answer to a member: a retried 502 is seen by cogs/slow_answers.py
        renewed = await refresh_urls(http, old)
    log.info("renewed %d image URL(s)", len(old))
    return {url: renewed.get(url, url) for url in old}


def _images(request: GenerationRequest) -> list[ReferenceImage]:
    """Every image a request points at: its references, and those of the conversation it continues."""
    earlier = [image for turn in request.history for image in (*turn.reference_images, turn.result)]
    return [*request.reference_images, *earlier]


async def refresh_references(http: HTTPClient, request: GenerationRequest, *, now: float) -> GenerationRequest:
    """The request with every image link that has expired (or nearly) renewed.

    Raises ReferencesGoneError when Discord cannot renew one of the references (the file is gone),
    RefreshFailedError when the call itself failed: either way before anything is stored, sent or
    charged. An image of an earlier turn that is gone stays as it was: the conversation is sent without it.
    """
    renewed = await renewed_urls(http, [image.url for image in _images(request)], now=now)
    if not renewed:
        return request
    gone = [ref.url for ref in request.reference_images if stale(renewed.get(ref.url, ref.url), now)]
    if gone:
        raise ReferencesGoneError(detail=f"{len(gone)} reference URL(s) not renewed")

    def renew(image: ReferenceImage) -> ReferenceImage:
        return image.model_copy(update={"url": renewed.get(image.url, image.url)})

    history = tuple(
        turn.model_copy(
            update={"reference_images": tuple(map(renew, turn.reference_images)), "result": renew(turn.result)}
        )
        for turn in request.history
    )
    return request.model_copy(
        update={"reference_images": tuple(map(renew, request.reference_images)), "history": history}
    )
