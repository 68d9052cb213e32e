"""Whole images with a few bytes changed, inserted, removed or cut: whatever a provider or a member sends,
judging it ends in an answer or in the one error its caller handles, never in an IndexError, struct.error
or a Pillow exception that would escape the delivery step (a "step failed" traceback, retried until the
deadline) or the reference check.

The PNG mutants get their chunk CRCs written again, so they pass the structure check and the changed
bytes reach the pixel decoder when the image is re-encoded to fit a small upload limit; JPEG and WebP
carry no checksum over their data anyway.
"""

from __future__ import annotations

import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import DeliveryError, InvalidRequestError
from bot.images import check_reference, inspect, prepare
from tests.test_images import WHOLE


def _recrc(data: bytes) -> bytes:
    """A PNG's chunks with their CRCs computed again (chunks cut short are left as they are)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    out, pos = bytearray(data[:8]), 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 8 + length
        if end + 4 > len(data):
            break
        body = data[pos + 4 : end]
        out += data[pos:end] + struct.pack(">I", zlib.crc32(body))
        pos = end + 4
    return bytes(out + data[pos:])


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    data = bytearray(WHOLE[draw(st.sampled_from(sorted(WHOLE)))])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        if how == "set":
            data[at] = draw(st.integers(0, 255))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif at > 16:
            del data[at:]
    return _recrc(bytes(data))


_PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROFILE
@given(data=mutants())
def test_a_changed_result_is_accepted_or_refused_as_not_a_valid_image(data: bytes) -> None:
    try:
        fmt, width, height = inspect(data)
    except DeliveryError as exc:
        assert exc.user_message
        return
    assert fmt in ("PNG", "JPEG", "WEBP", "GIF") and width > 0 and height > 0


@_PROFILE
@given(data=mutants())
def test_a_changed_result_re_encoded_to_fit_is_an_image_or_a_delivery_error(data: bytes) -> None:
    try:
        image = prepare(data, limit=2_000, stem="r")
    except DeliveryError as exc:
        assert exc.user_message
        return
    assert image.size <= max(2_000, len(data)) and image.width > 0


@_PROFILE
@given(data=mutants())
def test_a_changed_reference_is_taken_or_refused_with_a_reason(data: bytes) -> None:
    try:
        check_reference(data, "ref.png")
    except InvalidRequestError as exc:
        assert "ref.png" in exc.user_message
