"""bot/providers/inline_body.py: the body sent is the JSON document with each image file's base64 in place,
byte for byte what encoding it in memory would give, of the length it announces, and sent again whole."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.providers.inline_body import ImageFile, InlineBody


def image_file(data: bytes) -> ImageFile:
    image = ImageFile.empty()
    image.write(data)
    return image


@settings(max_examples=200, deadline=None)
@given(
    images=st.lists(st.binary(max_size=900), max_size=4),
    prompt=st.text(max_size=200),
)
async def test_the_body_is_the_document_with_each_file_s_base64_in_place(images: list[bytes], prompt: str) -> None:
    files = [image_file(data) for data in images]
    try:
        parts = [{"text": prompt}, *({"inlineData": {"mimeType": "image/png", "data": f}} for f in files)]
        body = InlineBody({"contents": [{"role": "user", "parts": parts}]})
        sent = await body.read()
        again = await body.read()  # a retry sends it whole again
    finally:
        for file in files:
            file.close()
    expected = [
        {"text": prompt},
        *({"inlineData": {"mimeType": "image/png", "data": base64.b64encode(d).decode()}} for d in images),
    ]
    assert json.loads(sent) == {"contents": [{"role": "user", "parts": expected}]}
    assert len(sent) == body.length and again == sent


async def test_an_image_larger_than_a_read_is_encoded_across_reads_without_padding_inside() -> None:
    data = bytes(range(256)) * 10_000 + b"x"  # 2.56 MB: four reads, the last one short
    image = image_file(data)
    try:
        body = InlineBody({"data": image})
        sent = await body.read()
    finally:
        image.close()
    assert json.loads(sent) == {"data": base64.b64encode(data).decode()} and len(sent) == body.length
