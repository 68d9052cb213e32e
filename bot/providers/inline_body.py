"""A JSON request body whose inline images (base64) are read from files while it is sent.

Gemini takes reference images, and the images of a conversation being continued, inside the request
(docs/providers.md 6.3): up to 70 MiB of images, a third more as base64, held for the whole call, which
can take minutes. Built in memory, sixty-four such calls in flight held gigabytes. Here the images stay
in temporary files on disk: the body is the JSON document with a mark where each image goes, and the
marks are replaced by base64 read from the files a chunk at a time as the bytes leave. The body can be
sent again (a retry after a connection that never opened) and knows its length, so it goes with a
Content-Length like any other.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Any

# Read 3 bytes for every 4 of base64, so the chunks' encodings join into the whole one (no padding
# inside); 768 KiB a read.
CHUNK = 3 * 256 * 1024


@dataclass(eq=False)
class ImageFile:
    """An image in a temporary file of its own (gone when closed), and its size in bytes."""

    file: IO[bytes]
    size: int

    @classmethod
    def empty(cls) -> ImageFile:
        return cls(tempfile.TemporaryFile(), 0)  # closed by whoever holds the ImageFile

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def close(self) -> None:
        self.file.close()


def encoded_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


class InlineBody:
    """``document`` as JSON, each ImageFile in it sent as the base64 of its contents (a JSON string)."""

    def __init__(self, document: dict[str, Any]) -> None:
        token = secrets.token_hex(16)  # no prompt can contain it by chance, so no text becomes a file
        files: list[ImageFile] = []

        def mark(value: object) -> str:
            if not isinstance(value, ImageFile):
                raise TypeError(f"{type(value).__name__} is not JSON")
            files.append(value)
            return f"{token}{len(files) - 1}{token}"

        text = json.dumps(document, default=mark, separators=(",", ":"))
        parts = re.split(f"{token}([0-9]+){token}", text)
        # Text, file index, text, file index, ..., text.
        self._pieces: list[bytes | ImageFile] = [
            files[int(part)] if index % 2 else part.encode("utf-8") for index, part in enumerate(parts)
        ]
        self.length = sum(encoded_length(p.size) if isinstance(p, ImageFile) else len(p) for p in self._pieces)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            piece.file.seek(0)
            while chunk := await asyncio.to_thread(piece.file.read, CHUNK):
                yield base64.b64encode(chunk)

    async def read(self) -> bytes:
        """The whole body at once (tests, and a reader of small documents)."""
        return b"".join([chunk async for chunk in self])
