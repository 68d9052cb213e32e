"""Verifying and fitting generated images (Pillow), including property checks on the size limit."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.errors import DeliveryError
from bot.images import inspect, prepare
from bot.testing.providers import make_png


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def test_small_image_passes_untouched() -> None:
    data = make_png(300, 200)
    result = prepare(data, limit=10 * 1024 * 1024, stem="x")
    assert result.data == data and not result.reencoded
    assert (result.filename, result.content_type, result.width, result.height) == (
        "x.png",
        "image/png",
        300,
        200,
    )


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"<html>503</html>", make_png(64, 64)[:200]],
    ids=["empty", "text", "html", "truncated"],
)
def test_undecodable_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(DeliveryError) as info:
        inspect(data)
    assert not info.value.retryable
    assert "not a valid image" in info.value.user_message


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
    assert len(result.data) <= limit
    assert result.reencoded == (len(data) > limit)
    _, w, h = inspect(result.data)
    assert (w, h) == (result.width, result.height)
    # Re-encoding keeps the shape of the image, to within a pixel of rounding.
    assert abs(w * height - h * width) <= width + height


def test_impossible_limit_is_a_clear_error() -> None:
    with pytest.raises(DeliveryError) as info:
        prepare(make_png(512, 512), limit=50, stem="z")
    assert "too large to post" in info.value.user_message and not info.value.retryable
