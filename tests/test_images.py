"""Verifying images by their structure, and fitting results to a size limit (Pillow), including
property checks on the limit and on cut-short files."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.errors import DeliveryError, InvalidRequestError
from bot.images import check_reference, inspect, prepare, probe
from bot.testing.providers import make_png
from bot.testing.providers._base import bomb_png


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def photo(size: tuple[int, int] = (96, 64), mode: str = "RGB") -> Image.Image:
    """Something with detail, so every format has real compressed data to cut."""
    return Image.effect_noise(size, 40).convert(mode)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), (i * 60, 0, 0)) for i in range(3)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)


# Every format a result may have, as the encoders the providers use would write it.
WHOLE = {
    "png": encode(photo(), "PNG"),
    "png-rgba": encode(photo(mode="RGBA"), "PNG"),
    "jpeg": encode(photo(), "JPEG", quality=90),
    "jpeg-progressive": encode(photo(), "JPEG", progressive=True),
    "webp-lossy": encode(photo(), "WEBP", quality=80),
    "webp-lossless": encode(photo(), "WEBP", lossless=True),
    "webp-alpha": encode(photo(mode="RGBA"), "WEBP"),  # VP8X + ALPH + VP8
    "gif": encode(photo(mode="P"), "GIF"),
}
FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}


def refused_as_invalid(data: bytes) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        inspect(data)
    assert not info.value.retryable
    assert "not a valid image" in info.value.user_message
    return info.value


# ---- whole files are accepted, with the size from the header ---------------------------------------


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_whole_images_are_accepted_with_their_size(name: str) -> None:
    assert inspect(WHOLE[name]) == (FORMAT[name.split("-")[0]], 96, 64)


def test_animation_is_seen_in_every_format() -> None:
    assert [probe(animated(fmt)).animated for fmt in ("PNG", "WEBP", "GIF")] == [True, True, True]
    assert not any(probe(data).animated for data in WHOLE.values())


# ---- cut short, broken, or something else --------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(WHOLE)), keep=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_every_cut_short_file_is_refused(name: str, keep: float) -> None:
    data = WHOLE[name]
    refused_as_invalid(data[: int(len(data) * keep)])


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_the_last_bytes_matter(name: str) -> None:
    # The end marker itself: IEND's CRC, JPEG's EOI, the RIFF's last byte, GIF's trailer.
    refused_as_invalid(WHOLE[name][:-1])


def test_png_with_a_bad_crc_is_refused() -> None:
    data = bytearray(WHOLE["png"])
    data[60] ^= 0xFF  # inside the first IDAT
    assert "CRC" in (refused_as_invalid(bytes(data)).detail or "")


def test_png_chunk_claiming_more_than_the_file_is_refused() -> None:
    data = bytearray(WHOLE["png"])
    data[33:37] = struct.pack(">I", 0x7FFFFFF0)  # the length of the chunk after IHDR
    refused_as_invalid(bytes(data))


def test_png_without_image_data_is_refused() -> None:
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
    refused_as_invalid(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IEND", b""))


def test_jpeg_without_its_end_marker_is_refused() -> None:
    data = WHOLE["jpeg"]
    assert data.endswith(b"\xff\xd9")
    refused_as_invalid(data[:-2] + b"\x00\x00")


@pytest.mark.parametrize("name", ["webp-lossy", "webp-lossless", "webp-alpha"])
@pytest.mark.parametrize("delta", [-8, -2, 2, 100])
def test_webp_whose_riff_length_is_wrong_is_refused(name: str, delta: int) -> None:
    data = bytearray(WHOLE[name])
    declared = int.from_bytes(data[4:8], "little")
    data[4:8] = (declared + delta).to_bytes(4, "little")
    refused_as_invalid(bytes(data))


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"<html>503</html>", b"<!doctype html><html>" + b"\x89PNG" * 10],
    ids=["empty", "text", "html", "html-mentioning-png"],
)
def test_bytes_that_are_no_image_are_refused(data: bytes) -> None:
    refused_as_invalid(data)


def test_html_posing_as_png_is_refused_as_a_reference() -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_reference(b"<!DOCTYPE html><html><body>sign in</body></html>", "cat.png")
    assert "`cat.png` is a web page, not a PNG, JPEG or WebP image" in info.value.user_message


def test_another_image_format_is_named_as_such() -> None:
    with pytest.raises(DeliveryError) as info:
        inspect(encode(photo(), "BMP"))
    assert "format we cannot post" in info.value.user_message


# ---- decompression bombs: refused from the header ------------------------------------------------


def headers_declaring(width: int, height: int) -> dict[str, bytes]:
    """Small files whose headers declare ``width`` x ``height``; nothing after the header needs to be valid."""
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    jpeg = b"\xff\xd8" + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * 64 + b"\xff\xd9"
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4 + (width - 1).to_bytes(3, "little")
    vp8x += (height - 1).to_bytes(3, "little")
    webp = b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    gif = b"GIF89a" + struct.pack("<HHBBB", min(width, 65535), min(height, 65535), 0, 0, 0) + b";"
    return {"png": png, "jpeg": jpeg, "webp": webp, "gif": gif}


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "gif"])
def test_headers_declaring_too_many_pixels_are_refused(fmt: str) -> None:
    with pytest.raises(DeliveryError) as info:
        inspect(headers_declaring(12_600, 12_600)[fmt])
    assert "far larger than any this model makes" in info.value.user_message


def test_a_real_bomb_is_refused_as_a_result_and_as_a_reference() -> None:
    with pytest.raises(DeliveryError) as result:
        inspect(bomb_png())
    assert "far larger than any this model makes" in result.value.user_message
    with pytest.raises(InvalidRequestError) as reference:
        check_reference(bomb_png(), "huge.png")
    assert "`huge.png` is 12,600 x 12,600 pixels" in reference.value.user_message


@pytest.mark.parametrize("side", [40, 64, 130, 200])
def test_the_test_bomb_is_a_whole_png_of_the_size_it_declares(side: int) -> None:
    """bomb_png repeats one compressed block and sets the stream's checksum itself: the stream must still
    decompress, checksum checked, to exactly the declared image, and Pillow must decode it."""
    png = bomb_png(side)
    stream = png[33 + 8 : -12 - 4]  # after the signature and IHDR chunk, the IDAT chunk's data, before IEND
    assert zlib.decompress(stream) == b"\0" * ((1 + side * 4) * side)
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert (image.size, image.mode, image.getextrema()) == ((side, side), "RGBA", ((0, 0),) * 4)


def test_the_default_test_bomb_is_small_and_declares_635_mb() -> None:
    png = bomb_png()
    assert len(png) < 1_000_000
    assert struct.unpack(">II", png[16:24]) == (12_600, 12_600)


def gif_with_frame(left: int, top: int, width: int, height: int) -> bytes:
    """A whole GIF whose logical screen is 1 x 1 and whose one frame is ``width`` x ``height`` at (left, top)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", left, top, width, height, 0) + b"\x02" + b"\x02\x4c\x01" + b"\x00"
    return screen + frame + b";"


@pytest.mark.parametrize(
    "frame", [(0, 0, 8000, 8000), (6000, 6000, 1000, 1000)], ids=["frame-larger-than-screen", "frame-past-its-edge"]
)
def test_a_gif_frame_past_its_screen_is_held_to_the_pixel_budget(frame: tuple[int, int, int, int]) -> None:
    """Pillow decodes a GIF onto a canvas grown to hold every frame; only the screen was checked, so a 1 x 1
    screen with an 8000 x 8000 frame was re-encoded at that size (+280 MB)."""
    with pytest.raises(DeliveryError) as info:
        prepare(gif_with_frame(*frame), limit=10, stem="x")
    assert "far larger than any this model makes" in info.value.user_message
    assert inspect(gif_with_frame(0, 0, 1, 1)) == ("GIF", 1, 1)  # a frame within its screen is as it was


def test_a_file_pillow_opens_only_to_raise_something_odd_is_no_image() -> None:
    """A DDS whose pixel format Pillow does not know raises NotImplementedError from Image.open: it escaped
    delivery (every attempt "an unexpected error") where it is simply not an image the bot can post."""
    dds = bytearray(encode(Image.new("RGB", (8, 8)), "DDS"))
    dds[80:84] = struct.pack("<I", 0)  # the pixel format's flags: none Pillow reads
    with pytest.raises(DeliveryError) as info:
        inspect(bytes(dds))
    assert "not a valid image" in info.value.user_message


# ---- references -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "is empty"),
        (WHOLE["gif"], "is a GIF, not a PNG, JPEG or WebP image"),
        (WHOLE["png"][:-30], "damaged or incomplete"),
        (animated("PNG"), "is animated"),
        (animated("WEBP"), "is animated"),
        (encode(photo((8, 40)), "PNG"), "only 8 x 40 pixels"),
    ],
    ids=["empty", "gif", "truncated", "apng", "animated-webp", "tiny"],
)
def test_unusable_references_are_refused_with_a_reason(data: bytes, words: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_reference(io.BytesIO(data), "ref.png")
    assert "`ref.png`" in info.value.user_message and words in info.value.user_message


@pytest.mark.parametrize(("name", "mime"), [("png", "image/png"), ("jpeg", "image/jpeg"), ("webp-alpha", "image/webp")])
def test_good_references_are_accepted(name: str, mime: str) -> None:
    assert check_reference(io.BytesIO(WHOLE[name]), "ref") == (mime, 96, 64)


# ---- fitting the upload limit ----------------------------------------------------------------------


def test_small_image_passes_untouched() -> None:
    data = make_png(300, 200)
    result = prepare(data, limit=10 * 1024 * 1024, stem="x")
    assert result.data == data and not result.reencoded
    assert (result.filename, result.content_type, result.width, result.height, result.size) == (
        "x.png",
        "image/png",
        300,
        200,
        len(data),
    )


def test_pixels_are_not_decoded_unless_the_image_is_re_encoded() -> None:
    """Whole structure, broken pixel data: accepted as it is when it fits (nothing was decoded to
    notice), and a clear refusal, not a crash, when it has to be decoded to shrink it."""
    width, height = 64, 64
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    garbage = chunk(b"IDAT", b"\x78\x9c" + bytes(range(256)) * 8)  # a zlib header, then no deflate stream
    data = b"\x89PNG\r\n\x1a\n" + header + garbage + chunk(b"IEND", b"")
    fits = prepare(io.BytesIO(data), limit=len(data), stem="g")
    assert fits.data == data and not fits.reencoded
    with pytest.raises(DeliveryError) as info:
        prepare(data, limit=len(data) - 1, stem="g")
    assert "not a valid image" in info.value.user_message and not info.value.retryable


def test_transparent_png_is_flattened_on_white() -> None:
    img = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    data = encode(img, "PNG")
    result = prepare(data, limit=len(data) - 1, stem="t")
    with Image.open(io.BytesIO(result.data)) as out:
        assert out.format == "JPEG"
        assert out.convert("RGB").getpixel((10, 10)) == (255, 255, 255)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(min_value=64, max_value=1200),
    height=st.integers(min_value=64, max_value=1200),
    fraction=st.floats(min_value=0.05, max_value=1.5),
)
def test_result_always_fits_the_limit(width: int, height: int, fraction: float) -> None:
    data = make_png(width, height)
    limit = max(2_000, int(len(data) * fraction))
    result = prepare(data, limit=limit, stem="p")
    assert len(result.data) <= limit and result.size == len(result.data)
    assert result.reencoded == (len(data) > limit)
    _, w, h = inspect(result.data)
    assert (w, h) == (result.width, result.height)
    # Re-encoding keeps the shape of the image, to within a pixel of rounding.
    assert abs(w * height - h * width) <= width + height


def test_impossible_limit_is_a_clear_error() -> None:
    with pytest.raises(DeliveryError) as info:
        prepare(make_png(512, 512), limit=50, stem="z")
    assert "too large to post" in info.value.user_message and not info.value.retryable
