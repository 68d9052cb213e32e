"""Base64 text from answers decoded to bytes (bot/providers/base64_text.py): every spelling providers use,
and the slice boundaries of the fast way (tests/providers/test_gemini.py sends such images through the
adapter as well)."""

from __future__ import annotations

import base64
import binascii
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.providers.base64_text import SLICE, decode

SPELLINGS = {
    "standard": lambda data: base64.b64encode(data).decode(),
    "unpadded": lambda data: base64.b64encode(data).decode().rstrip("="),
    "url-safe": lambda data: base64.urlsafe_b64encode(data).decode(),
    "url-safe unpadded": lambda data: base64.urlsafe_b64encode(data).decode().rstrip("="),
    "MIME lines": lambda data: base64.encodebytes(data).decode(),
    "spaced": lambda data: " ".join(base64.b64encode(data).decode()),
}


@given(data=st.binary(max_size=600), spelling=st.sampled_from(sorted(SPELLINGS)))
def test_every_spelling_decodes_to_the_bytes_encoded(data: bytes, spelling: str) -> None:
    assert decode(SPELLINGS[spelling](data)) == data


@pytest.mark.parametrize("size", [SLICE // 4 * 3 - 1, SLICE // 4 * 3, SLICE // 4 * 3 + 1, SLICE // 2 * 3 + 2])
def test_images_across_slice_boundaries_decode_whole(size: int) -> None:
    data = (b"\xfb\xff\xbf" + os.urandom(size))[:size]
    assert decode(base64.b64encode(data).decode()) == data
    assert decode(base64.b64encode(data).decode().rstrip("=")) == data


@pytest.mark.parametrize(
    "text", ["QUJD=RA==", "QUJD" * (SLICE // 2) + "$", "QUJD" * (SLICE // 2) + "é", "QUJDR", "@@@@"]
)
def test_what_is_not_base64_is_refused(text: str) -> None:
    with pytest.raises((binascii.Error, ValueError)):
        decode(text)
