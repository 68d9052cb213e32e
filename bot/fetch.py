"""Download a generated image with a timeout and a size cap."""

from __future__ import annotations

import logging

import httpx

from bot.errors import DeliveryError

log = logging.getLogger(__name__)


def redact_url(url: str) -> str:
    """Drop the query string: signed URLs carry credentials there."""
    return url.split("?", 1)[0]


async def download(client: httpx.AsyncClient, url: str, *, max_bytes: int, timeout: float) -> bytes:
    """GET ``url`` into memory, refusing anything above ``max_bytes``.

    Timeouts, connection errors and 5xx are retryable (the file is still there); 4xx and oversize are not.
    """
    try:
        async with client.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise DeliveryError(detail=f"download {redact_url(url)}: HTTP {response.status_code}", retryable=True)
            if response.status_code >= 400:
                raise DeliveryError(
                    "The generated image could not be fetched from the provider (it may have expired).",
                    detail=f"download {redact_url(url)}: HTTP {response.status_code}",
                )
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise DeliveryError(
                    "The generated image is larger than this bot accepts.",
                    detail=f"download {redact_url(url)}: {declared} bytes > {max_bytes}",
                )
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise DeliveryError(
                        "The generated image is larger than this bot accepts.",
                        detail=f"download {redact_url(url)}: more than {max_bytes} bytes",
                    )
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TimeoutException:
        raise DeliveryError(detail=f"download {redact_url(url)}: timed out", retryable=True) from None
    except httpx.TransportError as exc:
        raise DeliveryError(detail=f"download {redact_url(url)}: {type(exc).__name__}", retryable=True) from None
