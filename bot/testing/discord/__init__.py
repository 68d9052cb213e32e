"""A fake Discord (REST API + gateway) served on 127.0.0.1 over real sockets.

The real discord.py client connects to it unchanged: point ``discord.http.Route.BASE`` at
:attr:`FakeDiscord.api_base_url` and ``DiscordWebSocket.DEFAULT_GATEWAY`` at :attr:`FakeDiscord.gateway_url`
(see :func:`point_discord_py_at`). Because the client really talks HTTP and websockets, its aiohttp
session, multipart encoding, retry logic and gateway state machine are all exercised, which an
in-process mock of discord.py internals would skip.

docs/fake-discord.md describes what it speaks and the protocol facts it relies on; the short version:
JSON answers carry ``Content-Type: application/json`` exactly, no rate-limit headers are sent, gateway
frames are plain JSON text, and interaction callbacks answer 200 with the ``{interaction, resource}``
shape (a 204 breaks ``defer()``).

The package follows the fake's sections:

- ``records``: the dataclasses a test reads (messages, interactions, requests, uploads, faults);
- ``world``: the guild, channels, roles, members, the messages, interactions and commands in it, and
  the traffic seen;
- ``attachments``: uploads, attachment objects and the CDN serving them;
- ``validation``: Discord's checks on messages and command schemas;
- ``rest``: the HTTP routes; ``gateway``: the websocket; ``faults``: ``fail_next`` and ``chaos``;
- ``driver``: :class:`FakeDiscord`, its lifecycle and the API tests drive it with.

For the fault soak and the load benchmark (bench/soak.py, bench/load.py): :meth:`FakeDiscord.chaos`
answers a seeded share of message edits and webhook calls with a 429 (``retry_after`` in the body, as
Discord sends it) or a 5xx, and ``keep_upload_bytes=`` keeps only the head of each upload, so a run that
uploads gigabytes does not hold them all.

Run ``python -m bot.testing.discord --port 8080`` to serve it standalone.
"""

from .driver import FakeDiscord, point_discord_py_at
from .faults import CHAOS_PATHS
from .protocol import (
    ADMIN_PERMISSIONS,
    ALL_PERMISSIONS,
    BOT_PERMISSIONS,
    CHANNEL_CATEGORY,
    CHANNEL_FORUM,
    CHANNEL_VOICE,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MODERATOR_PERMISSIONS,
    PLAIN_MEMBER_PERMISSIONS,
    overwrite,
)
from .records import ChaosFault, FakeInteraction, FakeMessage, RecordedRequest, UploadedFile

__all__ = [
    "ADMIN_PERMISSIONS",
    "ALL_PERMISSIONS",
    "BOT_PERMISSIONS",
    "CHANNEL_CATEGORY",
    "CHANNEL_FORUM",
    "CHANNEL_VOICE",
    "CHAOS_PATHS",
    "FLAG_EPHEMERAL",
    "FLAG_LOADING",
    "MODERATOR_PERMISSIONS",
    "PLAIN_MEMBER_PERMISSIONS",
    "ChaosFault",
    "FakeDiscord",
    "FakeInteraction",
    "FakeMessage",
    "RecordedRequest",
    "UploadedFile",
    "overwrite",
    "point_discord_py_at",
]
