"""Decode and verify generated images, and re-encode them to fit an upload limit (Pillow)."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.errors import DeliveryError, InvalidRequestError

log = logging.getLogger(__name__)

# The largest image the models make is about 33 Mpx (4K at 8:1); anything declaring more pixels in its
# header is refused before a single pixel is decoded, so a small file cannot claim gigabytes of memory.
PIXEL_BUDGET = 40_000_000
# Pillow's own guard as a second line (it warns above this and refuses above twice this).
Image.MAX_IMAGE_PIXELS = PIXEL_BUDGET

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


class TooManyPixelsError(ValueError):
    """The header declares more pixels than PIXEL_BUDGET."""


def _within_budget(img: Image.Image) -> None:
    width, height = img.size
    if width * height > PIXEL_BUDGET:
        raise TooManyPixelsError(f"{width}x{height} is {width * height:,} px, over {PIXEL_BUDGET:,}")


def inspect(data: bytes) -> tuple[str, int, int]:
    """Return (format, width, height) or raise DeliveryError if the bytes are not a whole image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            _within_budget(img)  # from the header, before anything is decoded
            img.verify()  # checks structure/CRCs without decoding pixels
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # a truncated stream fails here
            fmt = img.format or ""
            width, height = img.size
    except (TooManyPixelsError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DeliveryError(
            "The provider returned an image far larger than any this model makes, so it was not opened. "
            "You were not charged; try again.",
            detail=f"pixel budget: {exc}",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
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


# What members may give as references: the formats every provider takes.
REFERENCE_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# Smaller than this is a spacer or a tracking pixel, not something a model can work from.
MIN_REFERENCE_SIDE = 16


def check_reference(data: bytes, name: str) -> tuple[str, int, int]:
    """Judge a reference image by its bytes, whatever it claimed to be: return (mime, width, height).

    Raises InvalidRequestError with a message for the member: empty, not PNG/JPEG/WebP (naming what
    it is), damaged or cut short, animated, too small, or declaring more pixels than PIXEL_BUDGET.
    """
    if not data:
        raise InvalidRequestError(f"`{name}` is empty (0 bytes). Attach the image again.")
    width = height = 0  # known once the header is read
    try:
        with Image.open(io.BytesIO(data), formats=tuple(REFERENCE_MIME)) as img:
            width, height = img.size
            _within_budget(img)
            fmt = img.format or ""
            animated = bool(getattr(img, "is_animated", False))
            img.verify()
        if not is_complete(fmt, data):
            raise SyntaxError("file ends before the image does")
    except UnidentifiedImageError:
        raise InvalidRequestError(
            f"`{name}` is {describe_bytes(data)}, not a PNG, JPEG or WebP image. Attach one of those."
        ) from None
    except (TooManyPixelsError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        size = f"{width:,} x {height:,} pixels" if width else "far too many pixels"
        raise InvalidRequestError(
            f"`{name}` is {size}; reference images may have at most {PIXEL_BUDGET / 1_000_000:g} megapixels. "
            "Attach a smaller copy."
        ) from None
    except (OSError, SyntaxError, ValueError):
        raise InvalidRequestError(
            f"`{name}` is damaged or incomplete. Save it again and attach the new copy."
        ) from None
    if animated:
        raise InvalidRequestError(f"`{name}` is animated; reference images must be still images.")
    if min(width, height) < MIN_REFERENCE_SIDE:
        raise InvalidRequestError(
            f"`{name}` is only {width} x {height} pixels; reference images must be at least "
            f"{MIN_REFERENCE_SIDE} pixels on each side."
        )
    return REFERENCE_MIME[fmt], width, height


def is_complete(fmt: str, data: bytes) -> bool:
    """Whether the file reaches its format's end marker: PNG's IEND, JPEG's EOI, WebP's RIFF length.

    Pillow's verify() checks PNG chunk CRCs but not that the stream is whole, and does nothing for
    JPEG or WebP; a truncated upload would otherwise only fail at the provider.
    """
    if fmt == "PNG":
        return b"IEND" in data[-64:]
    if fmt == "JPEG":
        # Some encoders pad after the end-of-image marker; it is never far from the end.
        return b"\xff\xd9" in data[-1024:]
    if fmt == "WEBP":
        declared = int.from_bytes(data[4:8], "little") + 8
        return len(data) >= declared
    return True


def describe_bytes(data: bytes) -> str:
    """What a file that is not a usable image looks like, in words a member understands."""
    head = data[:1024].lstrip().lower()
    if head.startswith(b"gif8"):
        return "a GIF"
    if b"<svg" in head:
        return "an SVG drawing"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "a web page"
    if head.startswith(b"%pdf"):
        return "a PDF document"
    for magic, kind in ((b"\x00\x00\x00", "a video or other media file"), (b"pk\x03\x04", "an archive")):
        if head.startswith(magic):
            return kind
    return "not an image the bot can read"
