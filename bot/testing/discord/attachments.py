"""Attachments: the bytes a client uploads, the attachment objects Discord reports, and the CDN serving them.

Files are served at ``{base_url}/attachments/{id}/{filename}?ex=..&is=..&hm=..&``; an upload above the
attachment size limit is refused with 413 code 40005, as Discord does.

Like Discord's CDN, every URL handed out is signed: ``is`` (issued) and ``ex`` (expires) are hex epoch
seconds, ``hm`` a signature over the path and both. A URL past its ``ex``, unsigned or with a wrong
signature gets 404 "This content is no longer available."; the message objects the fake serves carry
freshly signed URLs, and ``POST /attachments/refresh-urls`` signs stored ones again. A URL stays the
same for half its lifetime (Discord's do not change with every fetch either), so a test may compare
the URL a provider received with the one it handed in.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import mimetypes
import secrets
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from aiohttp import web

from .protocol import JSON, ApiError, form_error
from .records import UploadedFile


def guess_type(filename: str, declared: str | None) -> str:
    if declared and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of PNG, GIF, WebP and JPEG data (Discord reports them for image attachments)."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack("<HH", data[6:10])
            return int(w), int(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return int(w) & 0x3FFF, int(h) & 0x3FFF
        if data[:2] == b"\xff\xd8":
            i = 2
            while i + 9 <= len(data):
                if data[i] != 0xFF:
                    return None
                marker = data[i + 1]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                    return int(w), int(h)
                (seg_len,) = struct.unpack(">H", data[i + 2 : i + 4])
                i += 2 + int(seg_len)
    except struct.error:
        return None
    return None


class Host(Protocol):
    """Where the attachments live: the URL they are served from and the fake's upload settings."""

    attachment_size_limit: int
    keep_upload_bytes: int | None
    attachment_url_lifetime: float

    @property
    def base_url(self) -> str: ...


class Attachments:
    """Every attachment the fake knows, by id, and Discord's rules for attaching them to messages."""

    def __init__(self, host: Host, next_id: Callable[[], int]) -> None:
        self._host = host
        self._next_id = next_id
        self.blobs: dict[int, UploadedFile] = {}
        # Attachments Discord no longer has (their message was deleted, or a test said so): 404, never refreshed.
        self.gone: set[int] = set()
        # What the CDN serves unsigned, to anyone, by path: emojis, stickers, avatars (``publish``), and Discord's
        # copies of images from other sites that messages show (``publish_external``).
        self.public: dict[str, UploadedFile] = {}
        # An outside image's link -> the link of Discord's copy of it (an embed's ``proxy_url``).
        self.external: dict[str, str] = {}
        self._key = secrets.token_bytes(32)
        # Signing periods are counted from the fake's start, so no test sees URLs change under it by chance.
        self._epoch = time.time()
        # Seconds the CDN's clock runs ahead of the wall clock: expire_urls() lets a day pass here.
        self.clock_offset = 0.0

    def register(self, data: bytes, filename: str, content_type: str | None, *, size: int | None) -> JSON:
        """Bytes served at ``/attachments/{id}/{filename}``, as a test hands them to a command option."""
        aid = self._next_id()
        blob = UploadedFile(filename=filename, content_type=content_type or "application/octet-stream", data=data)
        self.blobs[aid] = blob
        att = self.object(aid, blob, len(data) if size is None else size, include_type=False)
        if content_type is not None:
            att["content_type"] = content_type
        return att

    def object(self, aid: int, blob: UploadedFile, size: int, *, include_type: bool) -> JSON:
        """The attachment object Discord sends: id, filename, size, URLs, and pixel size for images."""
        url = self.signed_url(f"/attachments/{aid}/{quote(blob.filename)}")
        att: JSON = {"id": str(aid), "filename": blob.filename, "size": size, "url": url, "proxy_url": url}
        if include_type:
            att["content_type"] = blob.content_type
        dims = image_size(blob.data)
        if dims is not None:
            att["width"], att["height"] = dims
        return att

    # ---- signed URLs ---------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.clock_offset

    def _signature(self, path: str, expires: int, issued: int) -> str:
        return hmac.new(self._key, f"{path}:{expires:x}:{issued:x}".encode(), hashlib.sha256).hexdigest()

    def signed_url(self, path: str) -> str:
        """``path`` on the CDN, signed now: the same URL for half the lifetime, valid for at least the other half."""
        lifetime = self._host.attachment_url_lifetime
        period = lifetime / 2
        issued = int(self._epoch + (self.now() - self._epoch) // period * period)
        expires = int(issued + lifetime)
        sig = self._signature(path, expires, issued)
        # Discord's own URLs end with a bare "&" too.
        return f"{self._host.base_url}{path}?ex={expires:x}&is={issued:x}&hm={sig}&"

    def _own_path(self, url: str) -> str | None:
        """The path of one of this CDN's attachment URLs, else None."""
        if not url.startswith(self._host.base_url + "/attachments/"):
            return None
        return urlsplit(url).path

    def _attachment_id(self, path: str) -> int | None:
        parts = path.split("/")
        return int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else None

    def fresh(self, url: str) -> str:
        """The URL signed now if it is one of this CDN's attachments (Discord signs afresh what it serves)."""
        path = self._own_path(url)
        return url if path is None else self.signed_url(path)

    def signed_copy(self, attachment: JSON) -> JSON:
        """An attachment object with its URLs signed now."""
        signed = copy.deepcopy(attachment)
        for key in ("url", "proxy_url"):
            signed[key] = self.fresh(attachment[key])
        return signed

    def signed_embed(self, embed: JSON) -> JSON:
        """An embed with the URLs of this CDN's files in it signed now."""
        embed = copy.deepcopy(embed)
        for key in ("image", "thumbnail"):
            part = embed.get(key)
            if isinstance(part, dict):
                for url_key in ("url", "proxy_url"):
                    if isinstance(part.get(url_key), str):
                        part[url_key] = self.fresh(part[url_key])
        return embed

    def refresh(self, url: str) -> str:
        """``POST /attachments/refresh-urls`` for one URL: signed anew if the attachment still exists.

        What Discord answers for a URL it cannot refresh is not documented; the fake hands it back
        unchanged, so a caller must still judge the answer by its ``ex``.
        """
        path = self._own_path(url)
        aid = None if path is None else self._attachment_id(path)
        if path is None or aid is None or aid not in self.blobs or aid in self.gone:
            return url
        return self.signed_url(path)

    def expire_urls(self) -> float:
        """Let a URL lifetime pass on the CDN: every URL handed out so far has expired. Returns the seconds."""
        self.clock_offset += self._host.attachment_url_lifetime
        return self._host.attachment_url_lifetime

    def valid(self, path: str, query: Mapping[str, str]) -> bool:
        try:
            expires, issued = int(query["ex"], 16), int(query["is"], 16)
        except (KeyError, ValueError):
            return False
        if not hmac.compare_digest(query.get("hm", ""), self._signature(path, expires, issued)):
            return False
        return self.now() < expires

    def serve(self, path: str, aid: int, query: Mapping[str, str]) -> web.Response:
        blob = self.blobs.get(aid)
        if blob is None or aid in self.gone or not self.valid(path, query):
            # What Discord's CDN answers for an expired, unsigned or deleted attachment.
            return web.Response(status=404, text="This content is no longer available.")
        return web.Response(body=blob.data, headers={"Content-Type": blob.content_type})

    def publish(self, path: str, data: bytes, content_type: str) -> str:
        """Bytes served unsigned at ``path`` (``/emojis/1.png``), as Discord serves emojis and avatars at any
        ``size``; returns the URL a client shows for it."""
        self.public[path] = UploadedFile(filename=path.rsplit("/", 1)[-1], content_type=content_type, data=data)
        return f"{self._host.base_url}{path}?size=96"

    def publish_external(self, url: str, data: bytes, content_type: str) -> str:
        """Discord's copy of the image at ``url`` on another site, served at
        ``/external/<hash>/<scheme>/<host><path>`` as Discord's ``images-ext`` proxy serves it; returns that link,
        which an embed of ``url`` then carries as its ``proxy_url``."""
        parts = urlsplit(url)
        digest = hashlib.sha256(url.encode()).hexdigest()[:22]
        path = f"/external/{digest}/{parts.scheme}/{parts.netloc}{parts.path}"
        self.public[path] = UploadedFile(filename=path.rsplit("/", 1)[-1], content_type=content_type, data=data)
        self.external[url] = f"{self._host.base_url}{path}"
        return self.external[url]

    def serve_public(self, path: str) -> web.Response | None:
        blob = self.public.get(path)
        if blob is None:
            return None
        return web.Response(body=blob.data, headers={"Content-Type": blob.content_type})

    def trim(self, upload: UploadedFile) -> None:
        if self._host.keep_upload_bytes is not None:
            upload.data = upload.data[: self._host.keep_upload_bytes]

    def _store_upload(self, upload: UploadedFile, entry: JSON | None) -> tuple[JSON, UploadedFile]:
        filename = str((entry or {}).get("filename") or upload.filename)
        stored = UploadedFile(
            filename=filename, content_type=guess_type(filename, upload.content_type), data=upload.data
        )
        aid = self._next_id()
        self.blobs[aid] = stored
        att = self.object(aid, stored, len(stored.data), include_type=True)
        if entry and entry.get("description"):
            att["description"] = entry["description"]
        self.trim(stored)
        return att, stored

    def resolve(
        self, existing: list[JSON], spec: Any, files: dict[int, UploadedFile], *, editing: bool
    ) -> tuple[list[JSON], list[UploadedFile]]:
        """Apply Discord's attachment semantics; raises the error Discord would answer.

        ``attachments`` in the payload lists what the message ends up with: existing attachments by
        their id (with a ``description``, their alt text changed), new uploads as ``{"id": n}`` matching the
        ``files[n]`` part. Without it a create gets
        every upload and an edit keeps what it had and appends the uploads.
        """
        for upload in files.values():
            if len(upload.data) > self._host.attachment_size_limit:
                raise ApiError(413, 40005, "Request entity too large")
        result: list[tuple[JSON, UploadedFile]] = []
        used: set[int] = set()
        existing_by_id = {int(a["id"]): a for a in existing}
        if isinstance(spec, list):
            for i, entry in enumerate(spec):
                try:
                    ref = int(entry["id"])
                except (TypeError, KeyError, ValueError):
                    raise form_error([(f"attachments.{i}.id", "Each attachment needs an id.")]) from None
                if len(str(entry.get("description") or "")) > 1024:  # its alt text
                    raise form_error([(f"attachments.{i}.description", "Must be 1024 or fewer in length.")])
                if ref in files and ref not in used:
                    used.add(ref)
                    result.append(self._store_upload(files[ref], entry))
                elif ref in existing_by_id:
                    kept = existing_by_id[ref]
                    if entry.get("description") is not None:
                        # An edit may change a kept attachment's alt text (Discord's changelog, 24 June 2026).
                        kept = {**kept, "description": str(entry["description"])}
                    result.append((kept, self.blobs[ref]))
                else:
                    raise form_error([(f"attachments.{i}.id", f"Unknown attachment {ref}.")])
        elif editing:
            result.extend((a, self.blobs[int(a["id"])]) for a in existing)
        # Uploads the payload did not mention still get attached (Discord appends them).
        for index in sorted(files):
            if index not in used:
                result.append(self._store_upload(files[index], None))
        return [a for a, _ in result], [f for _, f in result]

    @staticmethod
    def rewrite_urls(embeds: list[JSON], attachments: list[JSON]) -> list[JSON]:
        """Discord replaces ``attachment://name`` in embed images with the uploaded attachment's URL."""
        by_name = {a["filename"]: a for a in attachments}
        embeds = copy.deepcopy(embeds)
        for embed in embeds:
            for key, url_key in (
                ("image", "url"),
                ("thumbnail", "url"),
                ("author", "icon_url"),
                ("footer", "icon_url"),
            ):
                part = embed.get(key)
                if not isinstance(part, dict):
                    continue
                url = part.get(url_key)
                if isinstance(url, str) and url.startswith("attachment://"):
                    att = by_name.get(url.removeprefix("attachment://"))
                    if att is not None:
                        part[url_key] = att["url"]
                        proxy_key = "proxy_url" if url_key == "url" else "proxy_icon_url"
                        part[proxy_key] = att["proxy_url"]
                        if url_key == "url" and "width" in att:
                            part["width"], part["height"] = att["width"], att["height"]
            embed.setdefault("type", "rich")
        return embeds
