"""Decode and verify generated images, and re-encode them to fit an upload limit (Pillow)."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.errors import DeliveryError

log = logging.getLogger(__name__)

# Pillow refuses images above this many pixels; 4K at 8:1 is about 33 Mpx, so leave headroom.
Image.MAX_IMAGE_PIXELS = 80_000_000

_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """An image ready to upload: verified bytes, their format, and whether we had to shrink it."""

    data: bytes
    filename: str
    content_type: str
    width: int
    height: int
    reencoded: bool
    original_size: int
    source_url: str | None = None


def inspect(data: bytes) -> tuple[str, int, int]:
    """Return (format, width, height) or raise DeliveryError if the bytes are not a whole image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()  # checks structure/CRCs without decoding pixels
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # a truncated stream fails here
            fmt = img.format or ""
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DeliveryError(
            "The provider returned a file that is not a valid image. You were not charged; try again.",
            detail=f"undecodable image: {type(exc).__name__}: {exc}",
        ) from None
    if fmt not in _EXTENSIONS:
        raise DeliveryError(
            "The provider returned an image format we cannot post.", detail=f"unsupported format {fmt!r}"
        )
    return fmt, width, height


def prepare(data: bytes, *, limit: int, stem: str, source_url: str | None = None) -> PreparedImage:
    """Verify ``data`` and make sure it fits under ``limit`` bytes, re-encoding to JPEG if needed."""
    fmt, width, height = inspect(data)
    if len(data) <= limit:
        return PreparedImage(
            data, f"{stem}.{_EXTENSIONS[fmt]}", _MIME[fmt], width, height, False, len(data), source_url
        )
    shrunk, w, h = fit_to_limit(data, limit)
    log.info("re-encoded %s from %d to %d bytes to fit %d", stem, len(data), len(shrunk), limit)
    return PreparedImage(shrunk, f"{stem}.jpg", "image/jpeg", w, h, True, len(data), source_url)


def fit_to_limit(data: bytes, limit: int) -> tuple[bytes, int, int]:
    """Encode as JPEG at falling quality, then falling scale, until it fits; raise if nothing does."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        rgb = _flatten(img)
    scale = 1.0
    while scale >= 0.1:
        candidate = (
            rgb
            if scale == 1.0
            else rgb.resize(
                (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
                Image.Resampling.LANCZOS,
            )
        )
        for quality in (92, 85, 75, 60):
            buf = io.BytesIO()
            candidate.save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
            if buf.tell() <= limit:
                return buf.getvalue(), candidate.width, candidate.height
        scale *= 0.75
    raise DeliveryError(
        "The image is too large to post here, even after compressing it.",
        detail=f"could not fit {len(data)} bytes under {limit}",
    )


def _flatten(img: Image.Image) -> Image.Image:
    """JPEG has no alpha: composite transparent images on white rather than on black."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")
