"""Check a job's reference images by their bytes before anything is sent to a provider.

A Discord attachment's declared type and size are whatever the uploader's client said; an "image/png"
can be empty, an HTML page, an SVG, a GIF, an animation or far larger than declared. Providers charge
for a request whatever they make of such a file, so each reference is downloaded (through the guarded
client, with the same deadline and size cap as results) and judged by its bytes first. Each is
downloaded to a temporary file on disk and judged from there (bot/images.py reads its structure a
block at a time), so references of many jobs at once take no memory of their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx

from bot.errors import DeliveryError, InvalidRequestError
from bot.fetch import download_to
from bot.images import check_reference
from bot.imagework import Spool
from bot.models import ReferenceImage

log = logging.getLogger(__name__)


class ReferenceUnavailableError(DeliveryError):
    """A reference could not be downloaded for a reason that may pass (timeout, 5xx); retryable."""


async def check_references(
    client: httpx.AsyncClient, refs: Sequence[ReferenceImage], *, max_bytes: int, timeout: float
) -> None:
    """Download every reference and check it; raise for the first bad one, in the member's order.

    InvalidRequestError: the member's file is not usable (nothing to retry).
    ReferenceUnavailableError: the download failed in a way that may work on a later try.
    """
    if not refs:
        return
    results = await asyncio.gather(
        *(_check_one(client, ref, max_bytes=max_bytes, timeout=timeout) for ref in refs), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _check_one(client: httpx.AsyncClient, ref: ReferenceImage, *, max_bytes: int, timeout: float) -> None:
    label = f"The reference image `{ref.filename}`"
    with Spool(None) as file:  # no memory gate here: straight to disk
        try:
            await download_to(file, client, ref.url, max_bytes=max_bytes, timeout=timeout, label=label)
        except DeliveryError as exc:
            if exc.retryable:
                raise ReferenceUnavailableError(
                    f"{label} could not be downloaded just now. Try again in a moment.",
                    detail=exc.detail,
                    retryable=True,
                ) from None
            raise InvalidRequestError(exc.user_message, detail=exc.detail) from None
        # A PNG's CRCs take a few ms to check: off the event loop.
        await asyncio.to_thread(check_reference, file, ref.filename)
