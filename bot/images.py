"""Verify generated and reference images by their structure, and re-encode results to fit an upload limit.

Verification reads headers and walks the file's structure (PNG chunks with their CRCs, JPEG markers,
WebP's RIFF chunks, GIF blocks) from a file object; it never decodes a pixel. Decoding happens only
to re-encode an image over the channel's upload limit (Pillow), and the caller bounds how many of
those run at once (bot/imagework.py).
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass
from typing import IO, cast

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
# Verification reads files in blocks of this size (PNG CRCs); memory per check stays this small.
_BLOCK = 64 * 1024
# Baseline JPEG: libjpeg streams it out row by row. optimize=True or progressive=True make it buffer the
# whole image's coefficients first (+48 MB for a 4K image) for files about 30 % smaller at the same
# quality (bench/reencode.py prints both).
_JPEG_OPTIONS: dict[str, object] = {}
_QUALITIES = (92, 85, 75, 60)

Source = bytes | IO[bytes]


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """An image ready to upload: a verified file, its format, and whether we had to shrink it.

    ``file`` holds the bytes (a spooled temporary file in the bot, see bot/imagework.py); whoever
    uploads it closes it with :meth:`close` when done.
    """

    file: IO[bytes]
    size: int
    filename: str
    content_type: str
    width: int
    height: int
    reencoded: bool
    original_size: int
    source_url: str | None = None

    @property
    def data(self) -> bytes:
        """The whole file as bytes, for small consumers (the CLI's file sink, tests); uploads stream ``file``."""
        self.file.seek(0)
        return self.file.read()

    def close(self) -> None:
        self.file.close()


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What a file's structure says: the format (a Pillow name), the size, and whether it has frames."""

    format: str
    width: int
    height: int
    animated: bool = False
    # Where the image ends, when the file goes on past it (a JPEG's padding, an MPO's second picture, a
    # phone's Motion Photo video, which ``probe(..., appended=True)`` takes; data after a PNG's IEND);
    # None: the file ends with the image.
    end: int | None = None


class ImageDefectError(ValueError):
    """The bytes are not a whole image we can read."""


class NotAnImageError(ImageDefectError):
    """The magic numbers match none of PNG, JPEG, WebP and GIF."""


class DamagedImageError(ImageDefectError):
    """The format is known, but its structure is broken or ends early."""


class TooMuchWorkError(ImageDefectError):
    """The structure asks for far more decoding work than any real image: a JPEG with more scans or markers
    than any encoder writes (MAX_JPEG_SCANS, MAX_JPEG_MARKERS)."""

    def __init__(self, message: str, what: str, limit: int) -> None:
        super().__init__(message)
        self.what = what
        self.limit = limit


class TooManyPixelsError(ImageDefectError):
    """The header declares more pixels than PIXEL_BUDGET."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__(f"{width}x{height} is {width * height:,} px, over {PIXEL_BUDGET:,}")
        self.width = width
        self.height = height


def _within_budget(width: int, height: int) -> None:
    if width * height > PIXEL_BUDGET:
        raise TooManyPixelsError(width, height)


def _as_file(source: Source) -> IO[bytes]:
    return io.BytesIO(source) if isinstance(source, bytes | bytearray) else source


# ---- structure ------------------------------------------------------------------------------------


def probe(source: Source, *, appended: bool = False) -> ImageInfo:
    """Read the format and size from the header and walk the structure to its end, without decoding.

    Raises NotAnImageError, TooManyPixelsError (as soon as the header declares too many pixels),
    TooMuchWorkError (a JPEG with more scans or markers than any encoder writes) or DamagedImageError (a
    broken structure, a bad CRC, or a file that ends before the image does). ``appended``: a whole JPEG
    followed by more than padding (a phone's Motion Photo or MVIMG: its video after the end-of-image marker)
    is taken, its ``end`` said; otherwise that is refused as damaged.
    """
    fp = _as_file(source)
    size = fp.seek(0, os.SEEK_END)
    fp.seek(0)
    head = fp.read(16)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(fp, size)
    if head.startswith(b"\xff\xd8\xff"):
        return _jpeg(fp, size, appended=appended)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(fp, size)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _gif(fp, size)
    raise NotAnImageError("no PNG, JPEG, WebP or GIF signature")


def _read_exactly(fp: IO[bytes], count: int, what: str) -> bytes:
    data = fp.read(count)
    if len(data) != count:
        raise DamagedImageError(f"file ends inside {what}")
    return data


def _png(fp: IO[bytes], size: int) -> ImageInfo:
    """Chunks from the signature to IEND: lengths inside the file, CRCs right, IHDR first, IDAT present."""
    pos = 8
    width = height = 0
    animated = have_pixels = False
    while True:
        if pos + 12 > size:
            raise DamagedImageError("PNG ends before its IEND chunk")
        fp.seek(pos)
        length, kind = struct.unpack(">I4s", _read_exactly(fp, 8, "a PNG chunk header"))
        if length > 0x7FFFFFFF or pos + 12 + length > size:
            raise DamagedImageError(f"PNG chunk {kind!r} runs past the end of the file")
        if not kind.isalpha():
            raise DamagedImageError(f"PNG chunk type {kind!r} is not a chunk name")
        if pos == 8 and (kind != b"IHDR" or length != 13):
            raise DamagedImageError("PNG does not start with IHDR")
        crc = zlib.crc32(kind)
        first = b""
        remaining = length
        while remaining:
            block = _read_exactly(fp, min(remaining, _BLOCK), f"PNG chunk {kind!r}")
            first = first or block[:16]
            crc = zlib.crc32(block, crc)
            remaining -= len(block)
        if int.from_bytes(_read_exactly(fp, 4, "a PNG CRC"), "big") != crc:
            raise DamagedImageError(f"PNG chunk {kind!r} fails its CRC")
        if kind == b"IHDR":
            width, height = struct.unpack(">II", first[:8])
            if not width or not height:
                raise DamagedImageError("PNG declares no pixels")
            _within_budget(width, height)  # before a single further chunk is read
        elif kind == b"acTL" and len(first) >= 4:
            animated = int.from_bytes(first[:4], "big") > 1  # APNG: frames in total, the still one included
        elif kind == b"IDAT":
            have_pixels = True
        elif kind == b"IEND":
            break
        pos += 12 + length
    if not have_pixels:
        raise DamagedImageError("PNG has no image data")
    end = pos + 12 + length
    return ImageInfo("PNG", width, height, animated, end=end if end < size else None)


# SOF markers that carry the frame size: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7 (SOI and EOI are handled apart).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# Some encoders pad after the end-of-image marker; it is never far from the end.
_JPEG_TAIL = 1024
# What ends a scan's entropy-coded data: an FF followed by neither a stuffed 00, nor RST0-7 (restart
# markers sit inside the data), nor another FF (fill: the marker is the byte after the last FF). One
# byte pair, no repetition, so re.search runs at C speed over a block whatever the bytes are.
_END_OF_SCAN_DATA = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_END_OF_FILL = re.compile(rb"[^\xff]")
# The next marker after a stray FF 00 between segments: an FF followed by neither 00 nor fill.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xff]")
# Every scan is decoded over the whole image, so a decode's time grows with the number of scans, not with
# the file's size: about 0.25 ms per scan at 16 Mpx even for a 14-byte scan. A 1.5 MB file repeating one
# scan 100,000 times held a re-encode worker for 22 s (and one of 64 MiB would for some 17 minutes).
# Encoders write one scan (baseline), one per component (non-interleaved), or a progressive script:
# libjpeg's (and libjpeg-turbo's, Pillow's) has 10 for colour, 2 + 4 per component otherwise (18 for
# CMYK); mozjpeg tries 64 candidate scans for colour and writes a subset. 100 leaves room for all of them;
# at the pixel budget 100 tiny scans decode in 0.4 s and 100 full ones in about 2 s (10 real ones: 0.2 s).
MAX_JPEG_SCANS = 100
# The walk below (and Pillow's own reading of the segments before the first scan) costs a few us of Python
# per marker, so their number is bounded too: real files have a few dozen (tables, a Huffman table per
# progressive scan, metadata; even a 1 MB ICC profile is only 16 APP2 segments).
MAX_JPEG_MARKERS = 1000


def _jpeg(fp: IO[bytes], size: int, *, appended: bool = False) -> ImageInfo:
    """Markers from SOI to EOI: segment lengths inside the file, a frame header with the size before the
    first scan, each scan's entropy-coded data skipped to the marker that ends it (a block at a time, at C
    speed), at most MAX_JPEG_SCANS scans and MAX_JPEG_MARKERS markers; then nothing but padding after EOI,
    or a second image (MPO) that ends in its own EOI. Anything else after EOI only if ``appended``: then the
    image is whole (a file cut short never reaches its EOI), and ``end`` says where it stops."""
    pos = 2
    width = height = scans = markers = 0
    in_scan = False
    while True:
        if in_scan:  # entropy-coded data: bytes up to the next marker that is not RST0-7
            marker, pos = _jpeg_find(fp, pos, size, _END_OF_SCAN_DATA, "a JPEG scan")
        else:
            fp.seek(pos)
            prefix = _read_exactly(fp, 2, "a JPEG marker")
            if prefix[0] != 0xFF:
                raise DamagedImageError(f"JPEG has no marker at byte {pos}")
            marker, pos = prefix[1], pos + 2
            if marker == 0xFF:  # fill bytes before a marker
                marker, pos = _jpeg_find(fp, pos, size, _END_OF_FILL, "a JPEG marker")
            if marker == 0x00:
                # A stray FF 00 between segments (Photoshop writes FF 00 00 02 after its APP14): Pillow and
                # libjpeg skip it and what follows up to the next marker, and so does this (counted as a
                # marker, so a file of nothing else is still bounded by MAX_JPEG_MARKERS).
                marker, pos = _jpeg_find(fp, pos, size, _NEXT_MARKER, "a JPEG marker")
        in_scan = False
        markers += 1
        if markers > MAX_JPEG_MARKERS:
            raise TooMuchWorkError(f"JPEG has more than {MAX_JPEG_MARKERS:,} markers", "markers", MAX_JPEG_MARKERS)
        if marker in _STANDALONE:
            continue
        if marker == 0xD9:
            if not scans:
                raise DamagedImageError("JPEG ends or starts again before its first scan")
            break
        if marker == 0xD8:
            raise DamagedImageError("JPEG starts again inside itself")
        fp.seek(pos)
        (length,) = struct.unpack(">H", _read_exactly(fp, 2, "a JPEG segment length"))
        if length < 2 or pos + length > size:
            raise DamagedImageError(f"JPEG segment {marker:#x} runs past the end of the file")
        if marker in _SOF:
            _, height, width = struct.unpack(">BHH", _read_exactly(fp, 5, "a JPEG frame header"))
            if not width or not height:
                raise DamagedImageError("JPEG frame declares no pixels")  # or a DNL marker, which no encoder uses
            _within_budget(width, height)
        pos += length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if not width:
                raise DamagedImageError("JPEG scan before any frame header")
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise TooMuchWorkError(f"JPEG has more than {MAX_JPEG_SCANS:,} scans", "scans", MAX_JPEG_SCANS)
            in_scan = True
    if not appended:
        tail_start = max(pos - 2, size - _JPEG_TAIL)
        fp.seek(tail_start)
        if b"\xff\xd9" not in fp.read(size - tail_start):
            raise DamagedImageError("JPEG has more than padding after its end-of-image marker")
    return ImageInfo("JPEG", width, height, end=pos if pos < size else None)


def _jpeg_find(fp: IO[bytes], pos: int, size: int, pattern: re.Pattern[bytes], what: str) -> tuple[int, int]:
    """Search from ``pos`` a block at a time for ``pattern``: return the last byte it matched (a marker)
    and the position after it."""
    while True:
        fp.seek(pos)
        block = fp.read(_BLOCK)
        found = pattern.search(block)
        if found:
            return block[found.end() - 1], pos + found.end()
        if pos + len(block) >= size:
            raise DamagedImageError(f"file ends inside {what}")
        pos += len(block) - 1  # the last byte may be an FF that starts the marker: read it again


def _webp(fp: IO[bytes], size: int) -> ImageInfo:
    """RIFF chunks from the first to the length RIFF declares: each inside it, landing exactly on its end."""
    fp.seek(4)
    end = int.from_bytes(_read_exactly(fp, 4, "the RIFF header"), "little") + 8
    if end > size:
        raise DamagedImageError(f"WebP declares {end} bytes, the file has {size}")
    pos = 12
    width = height = frames = 0
    have_pixels = False
    while pos < end:
        if pos + 8 > end:
            raise DamagedImageError("WebP chunk header runs past the RIFF length")
        fp.seek(pos)
        kind = _read_exactly(fp, 4, "a WebP chunk header")
        length = int.from_bytes(_read_exactly(fp, 4, "a WebP chunk header"), "little")
        chunk_end = pos + 8 + length
        if chunk_end > end:
            raise DamagedImageError(f"WebP chunk {kind!r} runs past the RIFF length")
        if pos == 12:
            width, height = _webp_size(kind, fp.read(min(length, 10)))
            _within_budget(width, height)
        if kind in (b"VP8 ", b"VP8L"):
            have_pixels = True
        elif kind == b"ANMF":
            frames += 1
            have_pixels = True
        # Chunks are padded to an even length; the padding belongs to the RIFF length.
        pos = chunk_end + (length & 1)
    if pos != end and pos != end + 1:  # a last odd chunk whose padding byte the encoder left out
        raise DamagedImageError("WebP chunks do not end where the RIFF length says")
    if not have_pixels:
        raise DamagedImageError("WebP has no image data")
    return ImageInfo("WEBP", width, height, frames > 1)


def _webp_size(kind: bytes, data: bytes) -> tuple[int, int]:
    if kind == b"VP8X" and len(data) >= 10:  # extended: the canvas size, 24 bits each, minus one
        return int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1
    if kind == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:  # lossless: 14 bits each, minus one
        bits = int.from_bytes(data[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 " and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":  # lossy key frame
        width, height = struct.unpack("<HH", data[6:10])
        if width & 0x3FFF and height & 0x3FFF:
            return width & 0x3FFF, height & 0x3FFF
    raise DamagedImageError(f"WebP starts with an unreadable {kind!r} chunk")


def _gif(fp: IO[bytes], size: int) -> ImageInfo:
    """Blocks from the screen descriptor to the trailer: every sub-block inside the file, a frame present.

    The size is the screen's grown to hold every frame: Pillow decodes a frame larger than the screen, or
    placed past its edge, onto a canvas that large, so each frame is held to the pixel budget too. Before,
    only the screen was: a 1x1 screen holding an 8000x8000 frame was re-encoded at 8000x8000 (+280 MB)."""
    fp.seek(6)
    width, height, flags = struct.unpack("<HHB", _read_exactly(fp, 5, "the GIF screen descriptor"))
    if not width or not height:
        raise DamagedImageError("GIF declares no pixels")
    _within_budget(width, height)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while True:
        fp.seek(pos)
        introducer = _read_exactly(fp, 1, "a GIF block")[0]
        if introducer == 0x3B:  # trailer
            break
        if introducer == 0x21:  # extension: a label, then sub-blocks
            pos += 2
        elif introducer == 0x2C:  # image: a descriptor, a local colour table, the LZW code size, sub-blocks
            descriptor = _read_exactly(fp, 9, "a GIF image descriptor")
            left, top, frame_width, frame_height = struct.unpack("<HHHH", descriptor[:8])
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            _within_budget(width, height)
            table = 3 << ((descriptor[8] & 7) + 1) if descriptor[8] & 0x80 else 0
            pos += 1 + 9 + table + 1
            frames += 1
        else:
            raise DamagedImageError(f"GIF has an unknown block {introducer:#x}")
        while True:  # sub-blocks: a length byte, that many bytes; a zero length ends them
            fp.seek(pos)
            length = _read_exactly(fp, 1, "a GIF sub-block")[0]
            pos += 1 + length
            if pos > size:
                raise DamagedImageError("GIF sub-block runs past the end of the file")
            if not length:
                break
    if not frames:
        raise DamagedImageError("GIF has no image")
    return ImageInfo("GIF", width, height, frames > 1)


# ---- generated results ----------------------------------------------------------------------------


def inspect(source: Source) -> tuple[str, int, int]:
    """Return (format, width, height) or raise DeliveryError if the bytes are not a whole image."""
    try:
        info = probe(source)
    except TooManyPixelsError as exc:
        raise DeliveryError(
            "The provider returned an image far larger than any this model makes, so it was not opened. "
            "You were not charged; try again.",
            detail=f"pixel budget: {exc}",
        ) from None
    except TooMuchWorkError as exc:
        raise DeliveryError(
            "The provider returned an image built to take far longer to open than any real one, so it was not "
            "opened. You were not charged; try again.",
            detail=f"decoding work: {exc}",
        ) from None
    except NotAnImageError:
        if _pillow_knows(_as_file(source)):
            raise DeliveryError(
                "The provider returned an image format we cannot post.", detail="unsupported image format"
            ) from None
        raise _not_an_image("no image signature") from None
    except DamagedImageError as exc:
        raise _not_an_image(str(exc)) from None
    return info.format, info.width, info.height


def _not_an_image(detail: str) -> DeliveryError:
    return DeliveryError(
        "The provider returned a file that is not a valid image. You were not charged; try again.",
        detail=f"undecodable image: {detail}",
    )


# What Pillow raises for files it cannot decode (DecompressionBombError is the Pillow guard's refusal; a
# plugin raises NotImplementedError for a variant it does not know, e.g. a DDS pixel format).
_UNDECODABLE = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    NotImplementedError,
    Image.DecompressionBombError,
)


def _pillow_knows(fp: IO[bytes]) -> bool:
    """Whether Pillow recognises a format we do not post (BMP, TIFF...): a different message for the member."""
    fp.seek(0)
    try:
        with Image.open(fp):
            return True
    except Exception:
        # Only a choice of words hangs on it, and any of Pillow's plugins may be handed these bytes: whatever
        # one raises means "not known". Before, a DDS's NotImplementedError failed every delivery attempt.
        return False


def accept(source: Source, *, stem: str, source_url: str | None = None) -> PreparedImage:
    """Verify ``source`` (raising DeliveryError) and describe it as it is, without re-encoding."""
    file = _as_file(source)
    fmt, width, height = inspect(file)
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    return PreparedImage(file, size, f"{stem}.{_EXTENSIONS[fmt]}", _MIME[fmt], width, height, False, size, source_url)


def reencode(image: PreparedImage, limit: int, out: IO[bytes]) -> PreparedImage:
    """Decode ``image`` and write a JPEG of at most ``limit`` bytes to ``out``; the caller closes ``image``."""
    size, width, height = fit_to_limit(image.file, limit, out)
    stem = image.filename.rsplit(".", 1)[0]
    log.info("re-encoded %s from %d to %d bytes to fit %d", stem, image.size, size, limit)
    return PreparedImage(out, size, f"{stem}.jpg", "image/jpeg", width, height, True, image.size, image.source_url)


def prepare(source: Source, *, limit: int, stem: str, source_url: str | None = None) -> PreparedImage:
    """Verify ``source`` and make sure it fits under ``limit`` bytes, re-encoding to JPEG (in memory)
    if needed. One call, for tests and benchmarks; the runner takes the same two steps with bounds on
    memory and threads between them (bot/imagework.py)."""
    image = accept(source, stem=stem, source_url=source_url)
    if image.size <= limit:
        return image
    return reencode(image, limit, io.BytesIO())


class _OverLimitError(Exception):
    """Raised from inside Pillow's encoder as soon as the output passes the limit."""


class _Capped:
    """Where Pillow writes an encoded JPEG: stops it as soon as it is over the limit, instead of finishing
    a file we would throw away. Having no fileno(), it also keeps Pillow from writing to a descriptor
    behind a spooled file's back (which would move it to disk)."""

    def __init__(self, out: IO[bytes], limit: int) -> None:
        self.out = out
        self.limit = limit
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.written > self.limit:
            raise _OverLimitError
        return self.out.write(data)


def fit_to_limit(source: Source, limit: int, out: IO[bytes]) -> tuple[int, int, int]:
    """Encode as JPEG at falling quality, then falling scale, into ``out`` until it fits; return
    (bytes written, width, height), or raise DeliveryError if nothing does."""
    fp = _as_file(source)
    fp.seek(0)
    try:
        img = Image.open(fp, formats=tuple(_EXTENSIONS))
        rgb = _flatten(img)
    except _UNDECODABLE as exc:  # the structure was whole (inspect), the pixel data inside it is not
        raise _not_an_image(f"{type(exc).__name__}: {exc}") from None
    # Not img.close(): Pillow closes the file it was given there, and the caller owns that. Dropping the
    # name frees a decoded original that was flattened into a copy, before encoding starts.
    del img
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
        for quality in _QUALITIES:
            out.seek(0)
            out.truncate()
            try:
                # Pillow needs only write() of it (ImageFile._save, with no fileno()).
                candidate.save(cast(IO[bytes], _Capped(out, limit)), "JPEG", quality=quality, **_JPEG_OPTIONS)
            except _OverLimitError:
                continue
            return out.tell(), candidate.width, candidate.height
        scale *= 0.75
    size = fp.seek(0, os.SEEK_END)
    raise DeliveryError(
        "The image is too large to post here, even after compressing it.",
        detail=f"could not fit {size} bytes under {limit}",
    )


def _flatten(img: Image.Image) -> Image.Image:
    """JPEG has no alpha: composite transparent images on white rather than on black. An RGB image is
    returned as it is (loaded), not copied: a 4K copy is 48 MB."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode == "RGB":
        img.load()
        return img
    return img.convert("RGB")


# ---- reference images -----------------------------------------------------------------------------

# What members may give as references: the formats every provider takes.
REFERENCE_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# Smaller than this is a spacer or a tracking pixel, not something a model can work from.
MIN_REFERENCE_SIDE = 16


def check_reference(source: Source, name: str) -> tuple[str, int, int]:
    """Judge a reference image by its bytes, whatever it claimed to be: return (mime, width, height).

    Raises InvalidRequestError with a message for the member: empty, not PNG/JPEG/WebP (naming what
    it is), damaged or cut short, animated, too small, declaring more pixels than PIXEL_BUDGET, or a JPEG
    of more scans than any encoder writes.

    A whole JPEG with data after it is taken: a phone's Motion Photo (Pixel) or MVIMG appends its video,
    megabytes of it, after the end-of-image marker, and Pillow, browsers and every provider read the JPEG
    it starts with. It was refused as "damaged or incomplete". What the bot sends of it itself is the JPEG
    alone (``image_end``; Gemini's references).
    """
    fp = _as_file(source)
    if not fp.seek(0, os.SEEK_END):
        raise InvalidRequestError(f"`{name}` is empty (0 bytes). Attach the image again.")
    try:
        info = probe(fp, appended=True)
        if info.format not in REFERENCE_MIME:
            raise NotAnImageError(info.format)
    except NotAnImageError:
        fp.seek(0)
        raise InvalidRequestError(
            f"`{name}` is {describe_bytes(fp.read(1024))}, not a PNG, JPEG or WebP image. Attach one of those."
        ) from None
    except TooManyPixelsError as exc:
        raise InvalidRequestError(
            f"`{name}` is {exc.width:,} x {exc.height:,} pixels; reference images may have at most "
            f"{PIXEL_BUDGET / 1_000_000:g} megapixels. Attach a smaller copy."
        ) from None
    except TooMuchWorkError as exc:
        raise InvalidRequestError(
            f"`{name}` is a JPEG of more than {exc.limit:,} {exc.what}, far more than any camera or editor "
            "writes; it would take far too long to open. Save it again and attach the new copy."
        ) from None
    except DamagedImageError:
        raise InvalidRequestError(
            f"`{name}` is damaged or incomplete. Save it again and attach the new copy."
        ) from None
    if info.animated:
        raise InvalidRequestError(f"`{name}` is animated; reference images must be still images.")
    if min(info.width, info.height) < MIN_REFERENCE_SIDE:
        raise InvalidRequestError(
            f"`{name}` is only {info.width} x {info.height} pixels; reference images must be at least "
            f"{MIN_REFERENCE_SIDE} pixels on each side."
        )
    return REFERENCE_MIME[info.format], info.width, info.height


def image_end(source: Source) -> int | None:
    """Where the image in ``source`` ends, when more follows it (a Motion Photo's video after its JPEG): what
    to send of it is the bytes before; None when the file is the image, or not one ``check_reference`` takes."""
    try:
        return probe(source, appended=True).end
    except ImageDefectError:
        return None


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
