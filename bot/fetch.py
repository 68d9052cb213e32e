"""Download a generated or reference image: a total deadline, a size cap, and clear failures.

The body streams into a file the caller gives (a spooled temporary file in the bot, bot/imagework.py),
a chunk at a time, so a download holds no more than one chunk in memory of its own.

The client passed in is expected to carry the AddressGuard (bot/netguard.py), which refuses internal
and non-http(s) targets before connecting and after every redirect; its refusals become clear,
non-retryable DeliveryErrors here.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Callable
from typing import IO

import httpx

from bot.errors import DeliveryError
from bot.http_terms import ForbiddenAddressError, UnaskedEncoding

log = logging.getLogger(__name__)


# A link's user name and password: what follows the scheme, up to the last "@" before the path, query or fragment
# (where httpx's parser ends the authority).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def redact_url(url: str) -> str:
    """Drop the query string (signed URLs carry credentials there) and any user name and password
    (``https://user:pass@host/``: the guard refuses such a link, and its error detail named them)."""
    return _USERINFO.sub(r"\1", url.split("?", 1)[0], count=1)


def scheme_of(url: str) -> str:
    return url.split(":", 1)[0].lower() if ":" in url else ""


RESULT_LABEL = "The generated image"


class RefusedDownloadError(DeliveryError):
    """The server answered the download with a 4xx: the file is not (or no longer) there for the bot.
    ``status`` is kept for a caller that knows whose link it is to word it (bot/references.py: a Discord
    attachment deleted), where this module's message can only guess."""

    def __init__(self, user_message: str, *, detail: str, status: int) -> None:
        self.status = status
        super().__init__(user_message, detail=detail)


class DownloadTooLargeError(DeliveryError):
    """The file came, larger than the caller accepts: the file's fault, not its link's (bot/references.py
    tells the two apart)."""


# How httpx words a redirect to a link it cannot parse (a RemoteProtocolError, its InvalidURL dropped).
_BAD_LOCATION = "Invalid URL in location header"


async def download(
    client: httpx.AsyncClient, url: str, *, max_bytes: int, timeout: float, label: str = RESULT_LABEL
) -> bytes:
    """GET ``url`` into memory; see :func:`download_to`. For the CLI's reference arguments (bot/generate.py)."""
    buffer = io.BytesIO()
    await download_to(buffer, client, url, max_bytes=max_bytes, timeout=timeout, label=label)
    return buffer.getvalue()


def may_pass(status: int) -> bool:
    """A download's failing HTTP status that a later try may not get (a server's error, a rate limit), as
    against a refusal of the link itself (a 4xx: gone, expired, forbidden)."""
    return status >= 500 or status == 429


async def download_to(
    out: IO[bytes],
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    label: str = RESULT_LABEL,
    expect: Callable[[int], None] | None = None,
) -> int:
    """GET ``url`` into ``out`` within ``timeout`` seconds in total, refusing more than ``max_bytes``;
    return the number of bytes written. After a failure ``out`` holds part of the body: discard it.
    ``expect`` is told the length the server declares (a hint: it may lie or be the compressed size).

    Timeouts, connection errors and 5xx are retryable (the file is still there); 4xx, oversize, refused
    addresses and redirect loops are not. ``label`` starts each message a member may see.
    """
    where = redact_url(url)
    if scheme_of(url) not in ("http", "https"):
        raise _unusable_scheme(url, label)
    try:
        # asyncio.timeout bounds the whole exchange; httpx's timeout alone applies per read, so a
        # server sending a byte every few seconds would otherwise hold the job for many minutes.
        async with asyncio.timeout(timeout):
            return await _get(out, client, url, max_bytes=max_bytes, timeout=timeout, label=label, expect=expect)
    except TimeoutError:
        raise DeliveryError(
            f"{label} took longer than {timeout:g} s to download.",
            detail=f"download {where}: total deadline of {timeout:g} s exceeded",
            retryable=True,
        ) from None
    except httpx.TooManyRedirects:
        raise DeliveryError(
            f"{label} is behind a link that redirects in a loop, so it could not be fetched.",
            detail=f"download {where}: too many redirects",
        ) from None
    except ForbiddenAddressError as exc:
        raise DeliveryError(
            f"{label} is at {exc.reason}, which the bot does not fetch.",
            detail=f"download {where}: {exc}",
        ) from None
    except httpx.UnsupportedProtocol as exc:
        # After a redirect, the refused link is the one httpx was sent to, not the one we asked for.
        try:
            refused = str(exc.request.url)
        except RuntimeError:  # httpx raises this when the error carries no request
            refused = url
        if scheme_of(refused) in ("http", "https"):
            raise _unreadable_link(label, where, exc) from None  # a web link aiohttp could not send
        raise _unusable_scheme(refused, label) from None
    except httpx.InvalidURL as exc:
        # A link httpx cannot parse (``0177.0.0.1``, a control character): not an httpx.HTTPError, so it
        # escaped, and delivery tried it six times. The same link fails the same way.
        raise _unreadable_link(label, where, exc) from None
    except UnaskedEncoding as exc:
        # The same link gives the same answer: not worth another try.
        raise DeliveryError(
            f"{label} came compressed although the bot asks for images as they are, so it was not read.",
            detail=f"download {where}: {exc}",
        ) from None
    except httpx.RemoteProtocolError as exc:
        if str(exc).startswith(_BAD_LOCATION):  # a redirect to such a link: the same every time too
            raise _unreadable_link(label, where, exc) from None
        raise DeliveryError(detail=f"download {where}: {type(exc).__name__}", retryable=True) from None
    except httpx.TimeoutException:
        raise DeliveryError(detail=f"download {where}: timed out", retryable=True) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(detail=f"download {where}: {type(exc).__name__}", retryable=True) from None


async def _get(
    out: IO[bytes],
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    label: str,
    expect: Callable[[int], None] | None,
) -> int:
    where = redact_url(url)
    async with client.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
        if may_pass(response.status_code):
            raise DeliveryError(detail=f"download {where}: HTTP {response.status_code}", retryable=True)
        if response.status_code >= 400:
            raise RefusedDownloadError(
                f"{label} could not be fetched (HTTP {response.status_code}; the link may have expired).",
                detail=f"download {where}: HTTP {response.status_code}",
                status=response.status_code,
            )
        declared = _declared_length(response)
        if declared is not None and declared > max_bytes:
            raise _too_large(label, where, max_bytes, f"{declared} bytes declared")
        if declared is not None and expect is not None:
            expect(declared)
        total = 0
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > max_bytes:
                raise _too_large(label, where, max_bytes, "more bytes than that sent")
            # A write to a spooled file lands in memory or the page cache: no need to leave the loop.
            out.write(chunk)
        return total


def _declared_length(response: httpx.Response) -> int | None:
    """The Content-Length, if it is one: ASCII digits, not too many (str.isdigit takes "²", which int()
    refuses, and int() refuses more than 4,300 digits)."""
    text = response.headers.get("content-length", "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _too_large(label: str, where: str, max_bytes: int, detail: str) -> DeliveryError:
    return DownloadTooLargeError(
        f"{label} is larger than this bot accepts ({max_bytes / 1_048_576:g} MiB).",
        detail=f"download {where}: over {max_bytes} bytes: {detail}",
    )


def _unreadable_link(label: str, where: str, exc: Exception) -> DeliveryError:
    return DeliveryError(
        f"{label} is at a link the bot cannot read, so it could not be fetched.",
        detail=f"download {where[:300]}: malformed link ({type(exc).__name__}: {str(exc)[:100]})",
    )


def _unusable_scheme(url: str, label: str) -> DeliveryError:
    scheme = scheme_of(url)
    where = f"a {scheme}: address" if scheme else "an address that is not a web link"
    return DeliveryError(
        f"{label} has {where}; the bot fetches only http and https links.",
        detail=f"download: unusable scheme {scheme!r}",
    )
