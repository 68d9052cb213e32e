"""Base64 text from answers decoded to bytes (bot/providers/base64_text.py): every spelling providers use,
and the slice boundaries of the fast way (tests/providers/test_gemini.py sends such images through the
adapter as well)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.providers.base64_text import LIFT_AT_LEAST, SLICE, decode, parse_lifting

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


def _put_back(value: Any, lifted: dict[str, bytes]) -> Any:
    """The document as json.loads would have made it: each marker its bytes as base64 again."""
    if isinstance(value, dict):
        return {key: _put_back(item, lifted) for key, item in value.items()}
    if isinstance(value, list):
        return [_put_back(item, lifted) for item in value]
    if isinstance(value, str) and value in lifted:
        return base64.b64encode(lifted[value]).decode()
    return value


LONG = LIFT_AT_LEAST // 4 * 3  # bytes whose base64 is just long enough to be lifted
IMAGES = st.sampled_from([b"", b"\x89PNG", os.urandom(LONG - 1), os.urandom(LONG), os.urandom(LONG + 2)])
SPELLING = st.sampled_from(sorted(SPELLINGS))
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["data", "text", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    images=st.lists(st.tuples(IMAGES, SPELLING), max_size=3),
    noise=VALUES,
    separators=st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]),
)
def test_an_answer_parsed_lifting_its_images_is_the_answer_parsed_whole(
    images: list[tuple[bytes, str]], noise: Any, separators: tuple[str, str]
) -> None:
    """Whatever surrounds them and however they are spelled: the long standard-base64 ones come out as
    their bytes, the rest stay text, and nothing else of the answer changes."""
    parts = [
        {"inlineData": {"mimeType": "image/png", "data": SPELLINGS[spelling](image)}} for image, spelling in images
    ]
    answer = {"candidates": [{"content": {"parts": [{"text": "here", "data": noise}, *parts]}}], "noise": noise}
    body = json.dumps(answer, separators=separators).encode()
    document, lifted = parse_lifting(body)
    assert _put_back(document, lifted) == json.loads(body)
    for (image, spelling), part in zip(images, document["candidates"][0]["content"]["parts"][1:], strict=True):
        data = part["inlineData"]["data"]
        if data in lifted:
            assert lifted[data] == image and spelling in ("standard", "unpadded") and len(image) >= LONG
        else:
            assert decode(data) == image  # left as text for the tolerant way


def test_text_that_looks_like_a_marker_is_not_one() -> None:
    image = os.urandom(LONG)
    body = json.dumps({"a": "\u0000lifted-0-0", "data": base64.b64encode(image).decode()}).encode()
    document, lifted = parse_lifting(body)
    assert document["a"] == "\u0000lifted-0-0" and document["a"] not in lifted
    assert lifted == {document["data"]: image}


def test_what_is_not_json_fails_as_json_loads_fails() -> None:
    long = base64.b64encode(os.urandom(LONG)).decode()
    for body in (b"<html>", b"[" * 100_000 + b"]" * 100_000, f'{{"data":"{long}"'.encode()):
        with pytest.raises((ValueError, RecursionError)):
            parse_lifting(body)


def test_a_long_image_costs_its_bytes_and_no_text_copy() -> None:
    image = os.urandom(4 * 1024 * 1024)
    body = json.dumps(
        {"candidates": [{"content": {"parts": [{"inlineData": {"data": base64.b64encode(image).decode()}}]}}]}
    ).encode()
    tracemalloc.start()
    try:
        document, lifted = parse_lifting(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (part,) = document["candidates"][0]["content"]["parts"]
    assert lifted == {part["inlineData"]["data"]: image}
    # The image's own bytes and a little; parsed whole, the base64 text alone would be 5.6 MB more.
    assert peak < len(image) * 1.1, peak
