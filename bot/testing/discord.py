"""A fake Discord (REST API + gateway) served on 127.0.0.1 over real sockets.

The real discord.py client connects to it unchanged: point ``discord.http.Route.BASE`` at
:attr:`FakeDiscord.api_base_url` and ``DiscordWebSocket.DEFAULT_GATEWAY`` at :attr:`FakeDiscord.gateway_url`
(see :func:`point_discord_py_at`). Because the client really talks HTTP and websockets, its aiohttp
session, multipart encoding, retry logic and gateway state machine are all exercised, which an
in-process mock of discord.py internals would skip.

The protocol facts this relies on are written up in ``/work/shared/discord-fake.md``; the short version:
JSON answers carry ``Content-Type: application/json`` exactly, no rate-limit headers are sent, gateway
frames are plain JSON text, and interaction callbacks answer 200 with the ``{interaction, resource}``
shape (a 204 breaks ``defer()``).

For the fault soak and the load benchmark (bench/soak.py, bench/load.py): :meth:`FakeDiscord.chaos`
answers a seeded share of message edits and webhook calls with a 429 (``retry_after`` in the body, as
Discord sends it) or a 5xx, and ``keep_upload_bytes=`` keeps only the head of each upload, so a run that
uploads gigabytes does not hold them all.

Run ``python -m bot.testing.discord --port 8080`` to serve it standalone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import inspect
import json
import logging
import mimetypes
import random
import re
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from aiohttp import BodyPartReader, WSMsgType, web

__all__ = [
    "CHAOS_PATHS",
    "ChaosFault",
    "FakeDiscord",
    "FakeInteraction",
    "FakeMessage",
    "RecordedRequest",
    "UploadedFile",
    "point_discord_py_at",
]

log = logging.getLogger(__name__)

JSON = dict[str, Any]

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
HEARTBEAT_INTERVAL_MS = 41_250

# Permission bits (https://discord.com/developers/docs/topics/permissions). Spelled out here rather
# than taken from discord.Permissions so the fake does not depend on the library it is testing.
CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
BAN_MEMBERS = 1 << 2
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_AUDIT_LOG = 1 << 7
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
MODERATE_MEMBERS = 1 << 40
# Discord reports every permission for the owner and for administrators.
ALL_PERMISSIONS = (1 << 51) - 1

PLAIN_MEMBER_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS
)
MODERATOR_PERMISSIONS = MANAGE_MESSAGES | KICK_MEMBERS | MODERATE_MEMBERS | VIEW_AUDIT_LOG
ADMIN_PERMISSIONS = ADMINISTRATOR | MANAGE_GUILD
BOT_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | SEND_MESSAGES_IN_THREADS
    | USE_APPLICATION_COMMANDS
)

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15
_CREATE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_EPHEMERAL | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2
_EDITABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2

# Interaction types and callback types.
INTERACTION_COMMAND = 2
INTERACTION_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
INTERACTION_MODAL_SUBMIT = 5
_CALLBACKS_ALLOWED: dict[int, set[int]] = {
    INTERACTION_COMMAND: {4, 5, 9},
    INTERACTION_COMPONENT: {4, 5, 6, 7, 9},
    INTERACTION_AUTOCOMPLETE: {8},
    INTERACTION_MODAL_SUBMIT: {4, 5, 6, 7},
}

_SELECT_TYPES = {3, 5, 6, 7, 8}
_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
_MENTION_USER = re.compile(r"<@!?(\d+)>")
_MENTION_ROLE = re.compile(r"<@&(\d+)>")
_FILE_FIELD = re.compile(r"^files\[(\d+)\]$")


# --------------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    """Bytes the client uploaded (or a test registered with :meth:`FakeDiscord.add_attachment`).

    ``content_type`` is what Discord would report: the part's declared type, except that discord.py
    always declares ``application/octet-stream``, so then the type is guessed from the filename.
    """

    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One HTTP request the fake received.

    ``path`` is relative to the API base for API routes (``/interactions/1/tok/callback``) and the full
    path otherwise (``/attachments/1/a.png``). ``json`` is the JSON body, or the parsed ``payload_json``
    part of a multipart body. ``status`` (an addition) is the status the fake answered with.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any | None
    files: list[UploadedFile]
    at: float
    status: int = 0
    unknown_route: bool = False


@dataclass
class FakeMessage:
    """A message as the fake stores it. Mutated in place by edits, so tests can keep a reference."""

    id: int
    channel_id: int
    content: str | None
    embeds: list[JSON]
    components: list[JSON]
    attachments: list[JSON]
    files: list[UploadedFile]
    flags: int
    ephemeral: bool
    interaction_id: int | None
    allowed_mentions: JSON | None
    edits: int = 0
    deleted: bool = False
    # Additions: Discord message type (0 default, 20 chat-input command response), timestamps, tts.
    type: int = 0
    timestamp: str = ""
    edited_timestamp: str | None = None
    tts: bool = False
    # When the message first carried files (wall clock, time.time()), for delivery-latency benchmarks.
    files_at: float | None = None

    @property
    def loading(self) -> bool:
        """Whether this is still the "Bot is thinking..." placeholder of a deferred interaction."""
        return bool(self.flags & FLAG_LOADING)


@dataclass
class FakeInteraction:
    """An interaction the fake dispatched, and what the client did with it."""

    id: int
    token: str
    type: int
    user_id: int
    channel_id: int
    guild_id: int
    callbacks: list[JSON] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    # Additions: the clicked message (component interactions), the payload dispatched, timings.
    message_id: int | None = None
    payload: JSON = field(default_factory=dict)
    created_at: float = 0.0
    acknowledged_at: float | None = None

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def response_delay(self) -> float | None:
        """Seconds between dispatch and the (first accepted) callback; Discord's limit is 3 s."""
        return None if self.acknowledged_at is None else self.acknowledged_at - self.created_at


def point_discord_py_at(api_base_url: str, gateway_url: str) -> None:
    """Make every discord.py client in this process talk to the given REST base and gateway.

    Both are class attributes, so this is process-wide. Do not call ``discord.http._set_api_version``
    afterwards: it resets ``Route.BASE``.
    """
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


class _Snowflakes:
    """Time-based, strictly increasing snowflakes.

    discord.py derives ``created_at`` (and so an interaction's 15-minute expiry) from the id, so ids
    must carry the current time, not a counter.
    """

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    # Not web.json_response: it sends "application/json; charset=utf-8", and discord.py compares the
    # header to "application/json" exactly, then treats the body as text and fails.
    all_headers = {"Content-Type": "application/json"}
    if headers:
        all_headers.update(headers)
    return web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)


def _error(status: int, code: int, message: str, errors: JSON | None = None) -> web.Response:
    body: JSON = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return _json_response(status, body)


def _form_error(problems: list[tuple[str, str]]) -> web.Response:
    """400 Invalid Form Body, with Discord's nested ``errors`` object (``a.0.b -> {_errors: [...]}``)."""
    errors: JSON = {}
    for path, message in problems:
        node = errors
        for key in path.split("."):
            node = node.setdefault(key, {})
        node.setdefault("_errors", []).append({"code": "BASE_TYPE_INVALID", "message": message})
    return _error(400, 50035, "Invalid Form Body", errors)


def _no_content() -> web.Response:
    return web.Response(status=204)


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in {"1", "true", "yes"}


def _guess_type(filename: str, declared: str | None) -> str:
    if declared and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _image_size(data: bytes) -> tuple[int, int] | None:
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


def _walk_components(components: list[Any]) -> list[JSON]:
    """Every component, depth first (action rows, v2 containers/sections/labels included)."""
    out: list[JSON] = []
    for comp in components:
        if not isinstance(comp, dict):
            continue
        out.append(comp)
        out.extend(_walk_components(list(comp.get("components") or [])))
        for key in ("accessory", "component"):
            child = comp.get(key)
            if isinstance(child, dict):
                out.extend(_walk_components([child]))
    return out


def _validate_message(
    content: str | None, embeds: list[JSON], components: list[JSON], flags: int, attachment_count: int
) -> list[tuple[str, str]]:
    """The limits Discord enforces that a bot can realistically trip over; returns form errors."""
    problems: list[tuple[str, str]] = []
    v2 = bool(flags & FLAG_COMPONENTS_V2)
    if content is not None and len(content) > 2000:
        problems.append(("content", "Must be 2000 or fewer in length."))
    if v2 and (content or embeds):
        problems.append(("content", "Cannot send content or embeds with the IS_COMPONENTS_V2 flag."))
    if len(embeds) > 10:
        problems.append(("embeds", "Must be 10 or fewer in length."))
    total = 0
    for i, embed in enumerate(embeds):
        limits = {"title": 256, "description": 4096}
        for key, limit in limits.items():
            value = embed.get(key) or ""
            total += len(value)
            if len(value) > limit:
                problems.append((f"embeds.{i}.{key}", f"Must be {limit} or fewer in length."))
        footer = (embed.get("footer") or {}).get("text") or ""
        author = (embed.get("author") or {}).get("name") or ""
        total += len(footer) + len(author)
        if len(footer) > 2048:
            problems.append((f"embeds.{i}.footer.text", "Must be 2048 or fewer in length."))
        if len(author) > 256:
            problems.append((f"embeds.{i}.author.name", "Must be 256 or fewer in length."))
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append((f"embeds.{i}.fields", "Must be 25 or fewer in length."))
        for j, fld in enumerate(fields):
            name, value = str(fld.get("name", "")), str(fld.get("value", ""))
            total += len(name) + len(value)
            if not name or len(name) > 256:
                problems.append((f"embeds.{i}.fields.{j}.name", "Must be between 1 and 256 in length."))
            if not value or len(value) > 1024:
                problems.append((f"embeds.{i}.fields.{j}.value", "Must be between 1 and 1024 in length."))
    if total > 6000:
        problems.append(("embeds", "Embed size exceeds maximum size of 6000"))
    if attachment_count > 10:
        problems.append(("attachments", "Must be 10 or fewer in length."))
    if not v2:
        if len(components) > 5:
            problems.append(("components", "Must be 5 or fewer in length."))
        for i, row in enumerate(components):
            if row.get("type") != 1:
                problems.append((f"components.{i}.type", "Top-level components must be action rows."))
                continue
            children = row.get("components") or []
            selects = [c for c in children if c.get("type") in _SELECT_TYPES]
            if not children or len(children) > 5 or (selects and len(children) > 1):
                problems.append((f"components.{i}.components", "An action row holds 1-5 buttons or 1 select."))
    seen: set[str] = set()
    for comp in _walk_components(components):
        custom_id = comp.get("custom_id")
        if comp.get("type") == 2 and comp.get("style") not in (5, 6) and not custom_id:
            problems.append(("components", "A non-link button needs a custom_id."))
        if custom_id is not None:
            if not 1 <= len(str(custom_id)) <= 100:
                problems.append(("components", f"custom_id {custom_id!r} must be 1-100 characters."))
            if custom_id in seen:
                problems.append(("components", f"Duplicate custom_id {custom_id!r}."))
            seen.add(str(custom_id))
        label = comp.get("label")
        if comp.get("type") == 2 and label is not None and len(str(label)) > 80:
            problems.append(("components", "A button label must be 80 or fewer characters."))
    return problems


def _validate_commands(commands: Any) -> list[tuple[str, str]]:
    """Discord's checks on a bulk command overwrite (names, descriptions, option order and counts)."""
    if not isinstance(commands, list):
        return [("_", "Expected a list of commands.")]
    problems: list[tuple[str, str]] = []
    if len(commands) > 110:
        problems.append(("_", "Too many application commands."))
    seen: set[tuple[int, str]] = set()
    for i, cmd in enumerate(commands):
        if not isinstance(cmd, dict):
            problems.append((str(i), "Expected an object."))
            continue
        ctype = int(cmd.get("type", 1))
        name = str(cmd.get("name", ""))
        if (ctype, name) in seen:
            problems.append((f"{i}.name", f"Application command names must be unique ({name!r})."))
        seen.add((ctype, name))
        if ctype == 1:
            problems.extend(_validate_option_level(cmd, str(i)))
        elif not 1 <= len(name) <= 32:
            problems.append((f"{i}.name", "Must be between 1 and 32 in length."))
    return problems


def _validate_option_level(node: JSON, path: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    name = str(node.get("name", ""))
    if not _COMMAND_NAME.match(name) or name != name.lower():
        problems.append((f"{path}.name", f"Invalid chat-input name {name!r} (lowercase, 1-32, no spaces)."))
    description = str(node.get("description", ""))
    if not 1 <= len(description) <= 100:
        problems.append((f"{path}.description", "Must be between 1 and 100 in length."))
    options = node.get("options") or []
    if len(options) > 25:
        problems.append((f"{path}.options", "Must be 25 or fewer in length."))
    seen_optional = False
    names: set[str] = set()
    for j, opt in enumerate(options):
        opt_path = f"{path}.options.{j}"
        if opt.get("name") in names:
            problems.append((f"{opt_path}.name", "Option names must be unique."))
        names.add(opt.get("name"))
        if opt.get("type") in (1, 2):
            problems.extend(_validate_option_level(opt, opt_path))
            continue
        problems.extend(
            (p, m) for p, m in _validate_option_level({**opt, "options": []}, opt_path) if not p.endswith("options")
        )
        if opt.get("required"):
            if seen_optional:
                problems.append((f"{opt_path}.required", "Required options must be placed before non-required."))
        else:
            seen_optional = True
        if len(opt.get("choices") or []) > 25:
            problems.append((f"{opt_path}.choices", "Must be 25 or fewer in length."))
    return problems


def _snowflake_of(value: Any) -> int:
    if isinstance(value, dict):
        return int(value["id"])
    if hasattr(value, "id"):
        return int(value.id)
    return int(value)


@dataclass
class _Call:
    """One REST call, parsed, as handed to a route handler."""

    request: web.Request
    record: RecordedRequest
    params: dict[str, str]
    body: Any
    files: dict[int, UploadedFile]


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: JSON | None
    remaining: int
    match: Callable[[RecordedRequest], bool] | None = None


@dataclass(frozen=True)
class _Chaos:
    rate: float
    pattern: re.Pattern[str]
    methods: frozenset[str]
    statuses: tuple[int, ...]
    retry_after: tuple[float, float]
    draw: random.Random


@dataclass(frozen=True)
class ChaosFault:
    """A fault :meth:`FakeDiscord.chaos` injected: when (time.monotonic(), like RecordedRequest.at),
    on which call, with which status."""

    at: float
    method: str
    path: str
    status: int


# Message edits and webhook calls (follow-ups, edits of @original): where a bot delivers its results.
CHAOS_PATHS = r"^/webhooks/\d+/[^/]+(/messages/[^/]+)?$|^/channels/\d+/messages(/\d+)?$"


@dataclass
class _Session:
    id: str
    seq: int = 0


@dataclass
class _GatewayConnection:
    number: int
    ws: web.WebSocketResponse
    request: web.Request
    session: _Session | None = None
    ready: bool = False
    ready_at: float = 0.0  # time.monotonic() of READY/RESUMED
    closed: bool = False

    async def send(self, payload: JSON) -> None:
        try:
            await self.ws.send_str(json.dumps(payload))
        except (ConnectionError, RuntimeError) as exc:
            # The client went away between our check and the send; the receive loop will notice.
            log.debug("gateway #%d send failed: %s", self.number, exc)
            self.closed = True

    async def dispatch(self, event: str, data: JSON) -> None:
        assert self.session is not None
        self.session.seq += 1
        await self.send({"op": 0, "t": event, "s": self.session.seq, "d": data})


Handler = Callable[[_Call], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------------


class FakeDiscord:
    """A fake Discord that a real discord.py client logs into, syncs commands with and gets interactions from.

    One guild (:attr:`guild_id`) with a text channel (:attr:`channel_id`), an NSFW text channel
    (:attr:`nsfw_channel_id`), and members: the bot, the owner (:attr:`owner_id`), a plain member
    (:attr:`member_id`), an admin (:attr:`admin_id`, Administrator + Manage Guild) and a moderator
    (:attr:`moderator_id`, Manage Messages + Moderate Members).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        attachment_size_limit: int = 10 * 1024 * 1024,
        bot_token: str = "fake-bot-token",
        dispatch_message_events: bool = True,
        keep_upload_bytes: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.attachment_size_limit = attachment_size_limit
        self.bot_token = bot_token
        # Real Discord sends MESSAGE_CREATE/UPDATE/DELETE for the bot's own non-ephemeral messages.
        self.dispatch_message_events = dispatch_message_events
        # None keeps every upload whole; N keeps its first N bytes (sizes and pixel sizes are read from
        # the whole upload first): a benchmark uploading a thousand 3 MB images need not hold 3 GB.
        self.keep_upload_bytes = keep_upload_bytes

        self._ids = _Snowflakes()
        # Newer applications have application id == bot user id; mirror that.
        self.application_id = self.bot_user_id = self._ids.next()
        self.guild_id = self._ids.next()
        self.channel_id = self._ids.next()
        self.nsfw_channel_id = self._ids.next()
        self.owner_id = self._ids.next()
        self.member_id = self._ids.next()
        self.admin_id = self._ids.next()
        self.moderator_id = self._ids.next()
        self.moderator_role_id = self._ids.next()
        self.admin_role_id = self._ids.next()
        self.bot_role_id = self._ids.next()

        self.requests: list[RecordedRequest] = []
        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = {}
        self.identify_count = 0
        self.resume_count = 0
        # Every gateway payload the clients sent (IDENTIFY, heartbeats, presence updates...).
        self.gateway_received: list[JSON] = []

        self.users: dict[int, JSON] = {}
        self.members: dict[int, JSON] = {}
        self.channels: dict[int, JSON] = {}
        self.roles: dict[int, JSON] = {}
        self._build_world()

        self._tokens: dict[str, FakeInteraction] = {}
        self._expired_tokens: set[str] = set()
        self._blobs: dict[int, UploadedFile] = {}
        self._failures: list[_Failure] = []
        self._chaos: _Chaos | None = None
        # hold_callbacks(): callbacks wait here, with the client's request in flight.
        self._callbacks_open = asyncio.Event()
        self._callbacks_open.set()
        self.callbacks_waiting = 0
        # Faults injected by chaos(), in order.
        self.chaos_faults: list[ChaosFault] = []
        self._connections: list[_GatewayConnection] = []
        self._connection_counter = 0
        self._sessions: dict[str, _Session] = {}
        self._command_ids: dict[tuple[int | None, int, str], int] = {}
        self._command_syncs = 0
        # When a client last logged in (GET /users/@me); only connections ready after it count as live,
        # so a bot killed without closing its websocket does not look ready on behalf of its successor.
        self._last_login_at = 0.0
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler], bool]] = []
        self._build_routes()

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            return
        # client_max_size bounds non-multipart bodies; keep it well above the attachment limit so the
        # per-file 413 below is what a big upload runs into.
        app = web.Application(client_max_size=max(64 * 1024 * 1024, self.attachment_size_limit * 11))
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self._base_url = f"http://{self.host}:{self.port}"
        log.info("fake Discord listening on %s", self._base_url)

    async def stop(self) -> None:
        if self._runner is None:
            return
        for conn in list(self._connections):
            await self._close_connection(conn, code=1001)
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeDiscord is not started (await fake.start() or use `async with`)")
        return self._base_url

    @property
    def api_base_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + "/"

    # ---- the world: users, guild, channels, roles ----------------------------------------------

    def _build_world(self) -> None:
        self.users[self.bot_user_id] = self._make_user(self.bot_user_id, "Bananacord", bot=True)
        for uid, name in (
            (self.owner_id, "guild-owner"),
            (self.member_id, "plain-member"),
            (self.admin_id, "guild-admin"),
            (self.moderator_id, "guild-moderator"),
        ):
            self.users[uid] = self._make_user(uid, name)

        def role(rid: int, name: str, perms: int, position: int, **extra: Any) -> JSON:
            return {
                "id": str(rid),
                "name": name,
                "permissions": str(perms),
                "position": position,
                "color": 0,
                "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "icon": None,
                "unicode_emoji": None,
                "flags": 0,
                **extra,
            }

        # @everyone has the guild's id, as on Discord.
        self.roles[self.guild_id] = role(self.guild_id, "@everyone", PLAIN_MEMBER_PERMISSIONS, 0)
        self.roles[self.moderator_role_id] = role(self.moderator_role_id, "Moderator", MODERATOR_PERMISSIONS, 1)
        self.roles[self.admin_role_id] = role(self.admin_role_id, "Admin", ADMIN_PERMISSIONS, 2)
        self.roles[self.bot_role_id] = role(
            self.bot_role_id,
            "Bananacord",
            BOT_PERMISSIONS,
            3,
            managed=True,
            tags={"bot_id": str(self.bot_user_id)},
        )
        joined = _now_iso()
        for uid, roles in (
            (self.bot_user_id, [self.bot_role_id]),
            (self.owner_id, []),
            (self.member_id, []),
            (self.admin_id, [self.admin_role_id]),
            (self.moderator_id, [self.moderator_role_id]),
        ):
            self.members[uid] = self._make_member(uid, roles, joined)

        def text_channel(cid: int, name: str, position: int, nsfw: bool) -> JSON:
            return {
                "id": str(cid),
                "type": 0,
                "guild_id": str(self.guild_id),
                "name": name,
                "position": position,
                "permission_overwrites": [],
                "nsfw": nsfw,
                "topic": None,
                "parent_id": None,
                "rate_limit_per_user": 0,
                "last_message_id": None,
                "flags": 0,
            }

        self.channels[self.channel_id] = text_channel(self.channel_id, "general", 0, False)
        self.channels[self.nsfw_channel_id] = text_channel(self.nsfw_channel_id, "nsfw-art", 1, True)

    @staticmethod
    def _make_user(uid: int, username: str, *, bot: bool = False) -> JSON:
        return {
            "id": str(uid),
            "username": username,
            "discriminator": "0",
            "global_name": None if bot else username.replace("-", " ").title(),
            "avatar": None,
            "bot": bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }

    @staticmethod
    def _make_member(uid: int, roles: list[int], joined_at: str) -> JSON:
        return {
            "user_id": uid,
            "roles": [str(r) for r in roles],
            "joined_at": joined_at,
            "flags": 0,
            "nick": None,
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "pending": False,
            "deaf": False,
            "mute": False,
            "communication_disabled_until": None,
        }

    def _user(self, uid: int) -> JSON:
        """The user payload; an unknown id gets a stub user (and guild membership) on the fly."""
        if uid not in self.users:
            self.users[uid] = self._make_user(uid, f"user-{uid}")
            self.members[uid] = self._make_member(uid, [], _now_iso())
        return self.users[uid]

    def _member(self, uid: int, *, with_user: bool = True) -> JSON:
        self._user(uid)
        member = {k: v for k, v in self.members[uid].items() if k != "user_id"}
        if with_user:
            member["user"] = self.users[uid]
        return member

    def permissions_of(self, uid: int) -> int:
        """Guild-level permissions of a member, as Discord computes them (owner/admin: everything)."""
        if uid == self.owner_id:
            return ALL_PERMISSIONS
        self._user(uid)
        perms = int(self.roles[self.guild_id]["permissions"])
        for rid in self.members[uid]["roles"]:
            perms |= int(self.roles[int(rid)]["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def _guild_payload(self) -> JSON:
        return {
            "id": str(self.guild_id),
            "name": "Bananacord Test Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "preferred_locale": "en-US",
            "max_members": 500000,
            "max_video_channel_users": 25,
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "features": [],
            "application_id": None,
            "widget_enabled": False,
        }

    def _guild_create_payload(self) -> JSON:
        return {
            **self._guild_payload(),
            "joined_at": self.members[self.bot_user_id]["joined_at"],
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(self.members),
            "members": [self._member(uid) for uid in self.members],
            "channels": [{k: v for k, v in ch.items() if k != "guild_id"} for ch in self.channels.values()],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # ---- HTTP plumbing ---------------------------------------------------------------------------

    def _build_routes(self) -> None:
        def add(pattern: str, auth: bool, **handlers: Handler) -> None:
            self._routes.append((re.compile(pattern), {k.upper(): v for k, v in handlers.items()}, auth))

        app = r"(?P<app>\d+)"
        tok = r"(?P<token>[^/]+)"
        add(r"/gateway", False, get=self._get_gateway)
        add(r"/gateway/bot", True, get=self._get_gateway_bot)
        add(r"/users/@me", True, get=self._get_me)
        add(r"/users/(?P<uid>\d+)", True, get=self._get_user)
        add(r"/oauth2/applications/@me", True, get=self._get_application)
        add(r"/applications/@me", True, get=self._get_application)
        add(rf"/applications/{app}/commands", True, get=self._get_commands, put=self._put_commands)
        add(
            rf"/applications/{app}/guilds/(?P<gid>\d+)/commands",
            True,
            get=self._get_commands,
            put=self._put_commands,
        )
        add(r"/interactions/(?P<iid>\d+)/" + tok + r"/callback", False, post=self._interaction_callback)
        add(rf"/webhooks/{app}/{tok}", False, post=self._webhook_execute)
        add(
            rf"/webhooks/{app}/{tok}/messages/(?P<mid>@original|\d+)",
            False,
            get=self._webhook_get,
            patch=self._webhook_edit,
            delete=self._webhook_delete,
        )
        add(r"/channels/(?P<cid>\d+)", True, get=self._get_channel)
        add(r"/channels/(?P<cid>\d+)/typing", True, post=self._typing)
        add(r"/channels/(?P<cid>\d+)/messages", True, get=self._channel_history, post=self._channel_create)
        add(
            r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)",
            True,
            get=self._channel_get,
            patch=self._channel_edit,
            delete=self._channel_delete,
        )
        add(r"/guilds/(?P<gid>\d+)", True, get=self._get_guild)
        add(r"/guilds/(?P<gid>\d+)/channels", True, get=self._get_guild_channels)
        add(r"/guilds/(?P<gid>\d+)/members/(?P<uid>\d+)", True, get=self._get_guild_member)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._gateway(request)
        api = request.path.startswith(API_PREFIX + "/")
        record = RecordedRequest(
            method=request.method,
            path=request.path.removeprefix(API_PREFIX) if api else request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            json=None,
            files=[],
            at=time.monotonic(),
        )
        self.requests.append(record)
        try:
            response = await self._respond(request, record, api)
        except Exception:
            log.exception("fake Discord crashed handling %s %s", request.method, request.path)
            response = _error(500, 0, "500: Fake Discord crashed (see log)")
        if self.keep_upload_bytes is not None:
            for upload in record.files:
                upload.data = upload.data[: self.keep_upload_bytes]
        record.status = response.status
        self._notify()
        return response

    async def _respond(self, request: web.Request, record: RecordedRequest, api: bool) -> web.StreamResponse:
        try:
            body, files = await self._read_body(request)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, 40005, "Request entity too large")
        except ValueError:
            return _error(400, 50109, "The request body contains invalid JSON.")
        record.json = body
        record.files = [files[i] for i in sorted(files)]

        for failure in self._failures:
            method_ok = failure.remaining > 0 and failure.method in ("*", request.method)
            if method_ok and (failure.pattern.search(record.path) or failure.pattern.search(request.path)):
                if failure.match is not None and not failure.match(record):
                    continue
                failure.remaining -= 1
                return self._injected_failure(failure)
        if api and (chaotic := self._chaos_answer(request.method, record)) is not None:
            return chaotic

        if not api:
            match = re.fullmatch(r"/attachments/(?P<aid>\d+)/(?P<name>[^/]+)", request.path)
            if match and request.method in ("GET", "HEAD"):
                return self._serve_attachment(int(match["aid"]))
            record.unknown_route = True
            return _error(404, 0, "404: Not Found")

        for pattern, handlers, auth in self._routes:
            match = pattern.fullmatch(record.path)
            if match is None:
                continue
            handler = handlers.get(request.method)
            if handler is None:
                record.unknown_route = True
                return _error(405, 0, "405: Method Not Allowed")
            if auth and request.headers.get("Authorization") != f"Bot {self.bot_token}":
                return _error(401, 0, "401: Unauthorized")
            call = _Call(request=request, record=record, params=match.groupdict(), body=body, files=files)
            return await handler(call)
        record.unknown_route = True
        return _error(404, 0, "404: Not Found")

    async def _read_body(self, request: web.Request) -> tuple[Any, dict[int, UploadedFile]]:
        files: dict[int, UploadedFile] = {}
        if request.content_type == "multipart/form-data":
            body: Any = None
            reader = await request.multipart()
            extra_index = 1000  # file parts not named files[n] (Discord accepts any name)
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue  # nested multipart: discord.py never sends it
                data = bytes(await part.read())
                if part.name == "payload_json":
                    body = json.loads(data)
                elif part.filename is not None:
                    m = _FILE_FIELD.match(part.name or "")
                    index = int(m[1]) if m else extra_index
                    extra_index += 0 if m else 1
                    ctype = _guess_type(part.filename, part.headers.get("Content-Type"))
                    files[index] = UploadedFile(filename=part.filename, content_type=ctype, data=data)
            return body, files
        if not request.body_exists:
            return None, files
        raw = await request.read()
        if not raw:
            return None, files
        if request.content_type == "application/json":
            return json.loads(raw), files
        return None, files

    @staticmethod
    def _injected_failure(failure: _Failure) -> web.Response:
        if failure.status == 429:
            # discord.py only retries a 429 that has a Via header and a JSON retry_after (anything else
            # looks like a Cloudflare ban), so make an injected 429 look like Discord's.
            body = failure.body or {
                "message": "You are being rate limited.",
                "retry_after": 0.05,
                "global": False,
            }
            return _json_response(429, body, {"Via": "1.1 google", "Retry-After": "1"})
        body = failure.body or {"code": 0, "message": f"{failure.status}: injected failure"}
        return _json_response(failure.status, body)

    def _chaos_answer(self, method: str, record: RecordedRequest) -> web.Response | None:
        chaos = self._chaos
        if chaos is None or method not in chaos.methods or not chaos.pattern.search(record.path):
            return None
        if chaos.draw.random() >= chaos.rate:
            return None
        status = chaos.draw.choice(chaos.statuses)
        self.chaos_faults.append(ChaosFault(record.at, method, record.path, status))
        if status != 429:
            return _error(status, 0, f"{status}: chaos")
        retry_after = round(chaos.draw.uniform(*chaos.retry_after), 3)
        # What Discord sends on a per-route limit: the body's retry_after (seconds, fractional) is what
        # clients honour; the Via header is what tells discord.py it came from Discord, not a proxy ban.
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Scope": "user",
        }
        return _json_response(429, body, headers)

    def _serve_attachment(self, aid: int) -> web.Response:
        blob = self._blobs.get(aid)
        if blob is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=blob.data, headers={"Content-Type": blob.content_type})

    def _notify(self) -> None:
        """Wake every wait_for(); they re-check their predicate."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- simple GET routes -----------------------------------------------------------------------

    async def _get_gateway(self, call: _Call) -> web.StreamResponse:
        return _json_response(200, {"url": self.gateway_url.rstrip("/")})

    async def _get_gateway_bot(self, call: _Call) -> web.StreamResponse:
        return _json_response(
            200,
            {
                "url": self.gateway_url.rstrip("/"),
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            },
        )

    def _client_user(self) -> JSON:
        return {**self.users[self.bot_user_id], "verified": True, "mfa_enabled": False, "locale": "en-US"}

    async def _get_me(self, call: _Call) -> web.StreamResponse:
        self._last_login_at = call.record.at
        return _json_response(200, self._client_user())

    async def _get_user(self, call: _Call) -> web.StreamResponse:
        uid = int(call.params["uid"])
        if uid not in self.users:
            return _error(404, 10013, "Unknown User")
        return _json_response(200, self.users[uid])

    async def _get_application(self, call: _Call) -> web.StreamResponse:
        return _json_response(
            200,
            {
                "id": str(self.application_id),
                "name": "Bananacord",
                "description": "Fake application served by bot.testing.discord",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.users[self.owner_id],
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "summary": "",
                "tags": [],
                "bot": self.users[self.bot_user_id],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": 1,
            },
        )

    async def _get_guild(self, call: _Call) -> web.StreamResponse:
        if int(call.params["gid"]) != self.guild_id:
            return _error(404, 10004, "Unknown Guild")
        return _json_response(200, self._guild_payload())

    async def _get_guild_channels(self, call: _Call) -> web.StreamResponse:
        if int(call.params["gid"]) != self.guild_id:
            return _error(404, 10004, "Unknown Guild")
        return _json_response(200, list(self.channels.values()))

    async def _get_guild_member(self, call: _Call) -> web.StreamResponse:
        uid = int(call.params["uid"])
        if int(call.params["gid"]) != self.guild_id or uid not in self.members:
            return _error(404, 10007, "Unknown Member")
        return _json_response(200, self._member(uid))

    async def _get_channel(self, call: _Call) -> web.StreamResponse:
        channel = self.channels.get(int(call.params["cid"]))
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        return _json_response(200, channel)

    async def _typing(self, call: _Call) -> web.StreamResponse:
        if int(call.params["cid"]) not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        return _no_content()

    # ---- application commands --------------------------------------------------------------------

    def _check_app(self, call: _Call) -> web.Response | None:
        if int(call.params["app"]) != self.application_id:
            return _error(404, 10002, "Unknown Application")
        return None

    async def _get_commands(self, call: _Call) -> web.StreamResponse:
        if (err := self._check_app(call)) is not None:
            return err
        gid = call.params.get("gid")
        stored = self.commands if gid is None else self.guild_commands.get(int(gid), [])
        return _json_response(200, stored)

    async def _put_commands(self, call: _Call) -> web.StreamResponse:
        if (err := self._check_app(call)) is not None:
            return err
        gid = int(call.params["gid"]) if call.params.get("gid") else None
        if gid is not None and gid != self.guild_id:
            return _error(403, 50001, "Missing Access")
        problems = _validate_commands(call.body)
        if problems:
            return _form_error(problems)
        stored: list[JSON] = []
        for cmd in call.body:
            ctype = int(cmd.get("type", 1))
            # Discord keeps a command's id across overwrites as long as its name and type stay.
            cid = self._command_ids.setdefault((gid, ctype, cmd["name"]), self._ids.next())
            obj: JSON = {
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "contexts": None,
                "integration_types": [0],
                **copy.deepcopy(cmd),
                "id": str(cid),
                "application_id": str(self.application_id),
                "version": str(self._ids.next()),
                "type": ctype,
            }
            if gid is not None:
                obj["guild_id"] = str(gid)
            stored.append(obj)
        if gid is None:
            self.commands = stored
        else:
            self.guild_commands[gid] = stored
        self._command_syncs += 1
        return _json_response(200, stored)

    # ---- messages: shared create/edit logic ----------------------------------------------------

    def _store_upload(self, upload: UploadedFile, entry: JSON | None) -> tuple[JSON, UploadedFile]:
        filename = str((entry or {}).get("filename") or upload.filename)
        stored = UploadedFile(
            filename=filename, content_type=_guess_type(filename, upload.content_type), data=upload.data
        )
        aid = self._ids.next()
        self._blobs[aid] = stored
        att = self._attachment_object(aid, stored, len(stored.data), include_type=True)
        if entry and entry.get("description"):
            att["description"] = entry["description"]
        if self.keep_upload_bytes is not None:
            stored.data = stored.data[: self.keep_upload_bytes]
        return att, stored

    def _attachment_object(self, aid: int, blob: UploadedFile, size: int, *, include_type: bool) -> JSON:
        url = f"{self.base_url}/attachments/{aid}/{quote(blob.filename)}"
        att: JSON = {"id": str(aid), "filename": blob.filename, "size": size, "url": url, "proxy_url": url}
        if include_type:
            att["content_type"] = blob.content_type
        dims = _image_size(blob.data)
        if dims is not None:
            att["width"], att["height"] = dims
        return att

    def _resolve_attachments(
        self, existing: list[JSON], spec: Any, files: dict[int, UploadedFile], *, editing: bool
    ) -> tuple[list[JSON], list[UploadedFile]] | web.Response:
        """Apply Discord's attachment semantics.

        ``attachments`` in the payload lists what the message ends up with: existing attachments by
        their id, new uploads as ``{"id": n}`` matching the ``files[n]`` part. Without it a create gets
        every upload and an edit keeps what it had and appends the uploads.
        """
        for upload in files.values():
            if len(upload.data) > self.attachment_size_limit:
                return _error(413, 40005, "Request entity too large")
        result: list[tuple[JSON, UploadedFile]] = []
        used: set[int] = set()
        existing_by_id = {int(a["id"]): a for a in existing}
        if isinstance(spec, list):
            for i, entry in enumerate(spec):
                try:
                    ref = int(entry["id"])
                except (TypeError, KeyError, ValueError):
                    return _form_error([(f"attachments.{i}.id", "Each attachment needs an id.")])
                if ref in files and ref not in used:
                    used.add(ref)
                    result.append(self._store_upload(files[ref], entry))
                elif ref in existing_by_id:
                    result.append((existing_by_id[ref], self._blobs[ref]))
                else:
                    return _form_error([(f"attachments.{i}.id", f"Unknown attachment {ref}.")])
        elif editing:
            result.extend((a, self._blobs[int(a["id"])]) for a in existing)
        # Uploads the payload did not mention still get attached (Discord appends them).
        for index in sorted(files):
            if index not in used:
                result.append(self._store_upload(files[index], None))
        return [a for a, _ in result], [f for _, f in result]

    def _rewrite_attachment_urls(self, embeds: list[JSON], attachments: list[JSON]) -> list[JSON]:
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

    def _create_message(
        self,
        *,
        channel_id: int,
        payload: JSON,
        files: dict[int, UploadedFile],
        interaction_id: int | None = None,
        message_type: int = 0,
        extra_flags: int = 0,
        allow_empty: bool = False,
    ) -> FakeMessage | web.Response:
        resolved = self._resolve_attachments([], payload.get("attachments"), files, editing=False)
        if isinstance(resolved, web.Response):
            return resolved
        attachments, uploads = resolved
        content = payload.get("content")
        flags = (int(payload.get("flags") or 0) & _CREATE_FLAGS) | extra_flags
        embeds = list(payload.get("embeds") or [])
        components = list(payload.get("components") or [])
        problems = _validate_message(content, embeds, components, flags, len(attachments))
        if problems:
            return _form_error(problems)
        empty = not (
            content or embeds or attachments or components or payload.get("sticker_ids") or payload.get("poll")
        )
        if empty and not allow_empty:
            return _error(400, 50006, "Cannot send an empty message")
        message = FakeMessage(
            id=self._ids.next(),
            channel_id=channel_id,
            content=content,
            embeds=self._rewrite_attachment_urls(embeds, attachments),
            components=copy.deepcopy(components),
            attachments=attachments,
            files=uploads,
            flags=flags,
            ephemeral=bool(flags & FLAG_EPHEMERAL),
            interaction_id=interaction_id,
            allowed_mentions=payload.get("allowed_mentions"),
            type=message_type,
            timestamp=_now_iso(),
            tts=bool(payload.get("tts")),
            files_at=time.time() if uploads else None,
        )
        self.messages[message.id] = message
        return message

    def _edit_message(self, message: FakeMessage, payload: JSON, files: dict[int, UploadedFile]) -> web.Response | None:
        """Edit in place; returns an error response, or None when the edit was applied."""
        resolved = self._resolve_attachments(message.attachments, payload.get("attachments"), files, editing=True)
        if isinstance(resolved, web.Response):
            return resolved
        attachments, uploads = resolved
        content = payload.get("content", message.content)
        embeds = list(payload.get("embeds") or []) if "embeds" in payload else message.embeds
        components = list(payload.get("components") or []) if "components" in payload else message.components
        flags = message.flags & ~FLAG_LOADING  # editing the "thinking..." placeholder ends the loading state
        if "flags" in payload and payload["flags"] is not None:
            flags = (flags & ~_EDITABLE_FLAGS) | (int(payload["flags"]) & _EDITABLE_FLAGS)
        problems = _validate_message(content, embeds, components, flags, len(attachments))
        if problems:
            return _form_error(problems)
        if not (content or embeds or attachments or components):
            return _error(400, 50006, "Cannot send an empty message")
        message.content = content
        message.embeds = self._rewrite_attachment_urls(embeds, attachments)
        message.components = copy.deepcopy(components)
        message.attachments = attachments
        message.files = uploads
        if uploads and message.files_at is None:
            message.files_at = time.time()
        message.flags = flags
        message.allowed_mentions = payload.get("allowed_mentions")
        message.edits += 1
        message.edited_timestamp = _now_iso()
        return None

    def _message_payload(self, message: FakeMessage) -> JSON:
        content = message.content or ""
        mentions = []
        for uid_text in dict.fromkeys(_MENTION_USER.findall(content)):
            uid = int(uid_text)
            if uid in self.users:
                mentions.append({**self.users[uid], "member": self._member(uid, with_user=False)})
        mention_roles = [r for r in dict.fromkeys(_MENTION_ROLE.findall(content)) if int(r) in self.roles]
        payload: JSON = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "type": message.type,
            "content": content,
            "author": self.users[self.bot_user_id],
            "attachments": copy.deepcopy(message.attachments),
            "embeds": copy.deepcopy(message.embeds),
            "mentions": mentions,
            "mention_roles": mention_roles,
            "mention_everyone": False,
            "pinned": False,
            "tts": message.tts,
            "timestamp": message.timestamp,
            "edited_timestamp": message.edited_timestamp,
            "flags": message.flags,
            "components": copy.deepcopy(message.components),
        }
        interaction = self.interactions.get(message.interaction_id) if message.interaction_id else None
        if interaction is not None:
            # Interaction responses are sent through the application's webhook.
            payload["webhook_id"] = str(self.application_id)
            payload["application_id"] = str(self.application_id)
            metadata: JSON = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self._user(interaction.user_id),
                "authorizing_integration_owners": {"0": str(self.guild_id)},
            }
            if interaction.message_id is not None:
                metadata["interacted_message_id"] = str(interaction.message_id)
            payload["interaction_metadata"] = metadata
        return payload

    async def _message_event(self, event: str, message: FakeMessage) -> None:
        """Tell the live client about a non-ephemeral message change, as Discord would."""
        if not self.dispatch_message_events or message.ephemeral or message.channel_id not in self.channels:
            return
        conn = self._live_connection()
        if conn is None:
            return
        if event == "MESSAGE_DELETE":
            data: JSON = {
                "id": str(message.id),
                "channel_id": str(message.channel_id),
                "guild_id": str(self.guild_id),
            }
        else:
            data = {**self._message_payload(message), "guild_id": str(self.guild_id)}
            if message.interaction_id is None:
                data["member"] = self._member(self.bot_user_id, with_user=False)
        await conn.dispatch(event, data)

    # ---- interaction callbacks and webhooks ----------------------------------------------------

    def _interaction_for_token(self, call: _Call) -> FakeInteraction | web.Response:
        token = call.params["token"]
        if token in self._expired_tokens:
            return _error(401, 50027, "Invalid Webhook Token")
        if "app" in call.params and int(call.params["app"]) != self.application_id:
            return _error(404, 10015, "Unknown Webhook")
        interaction = self._tokens.get(token)
        if interaction is None:
            return _error(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _interaction_callback(self, call: _Call) -> web.StreamResponse:
        if not self._callbacks_open.is_set():
            self.callbacks_waiting += 1
            self._notify()
            try:
                await self._callbacks_open.wait()
            finally:
                self.callbacks_waiting -= 1
        token = call.params["token"]
        if token in self._expired_tokens:
            return _error(401, 50027, "Invalid Webhook Token")
        interaction = self.interactions.get(int(call.params["iid"]))
        if interaction is None or interaction.token != token:
            return _error(404, 10062, "Unknown interaction")
        body = call.body if isinstance(call.body, dict) else {}
        ctype = body.get("type")
        data: JSON = body.get("data") or {}
        if interaction.acknowledged:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        if ctype not in _CALLBACKS_ALLOWED[interaction.type]:
            return _form_error(
                [("type", f"Callback type {ctype} is not valid for interaction type {interaction.type}.")]
            )

        message: FakeMessage | None = None
        if ctype == 4:
            created = self._create_message(
                channel_id=interaction.channel_id,
                payload=data,
                files=call.files,
                interaction_id=interaction.id,
                message_type=20 if interaction.type == INTERACTION_COMMAND else 0,
            )
            if isinstance(created, web.Response):
                return created
            message = created
        elif ctype == 5:
            # The "Bot is thinking..." placeholder; later edits of @original fill it in.
            placeholder = self._create_message(
                channel_id=interaction.channel_id,
                payload={"flags": int(data.get("flags") or 0) & FLAG_EPHEMERAL},
                files={},
                interaction_id=interaction.id,
                message_type=20 if interaction.type == INTERACTION_COMMAND else 0,
                extra_flags=FLAG_LOADING,
                allow_empty=True,
            )
            assert isinstance(placeholder, FakeMessage)
            message = placeholder
        elif ctype in (6, 7):
            target = self.messages.get(interaction.message_id or 0)
            if target is None or target.deleted:
                return _error(404, 10008, "Unknown Message")
            if ctype == 7:
                failed = self._edit_message(target, data, call.files)
                if failed is not None:
                    return failed
            message = target

        interaction.callbacks.append({"type": ctype, "data": copy.deepcopy(data)})
        interaction.acknowledged_at = time.monotonic()
        if message is not None:
            interaction.original_message_id = message.id
            if ctype in (4, 5):
                await self._message_event("MESSAGE_CREATE", message)
            elif ctype == 7:
                await self._message_event("MESSAGE_UPDATE", message)

        if not _truthy(call.request.query.get("with_response")):
            return _no_content()
        answer: JSON = {"id": str(interaction.id), "type": interaction.type}
        if message is not None:
            answer["response_message_id"] = str(message.id)
            answer["response_message_loading"] = message.loading
            answer["response_message_ephemeral"] = message.ephemeral
        resource: JSON = {"type": ctype}
        if message is not None and ctype in (4, 7):
            resource["message"] = self._message_payload(message)
        return _json_response(200, {"interaction": answer, "resource": resource})

    def _webhook_message(self, interaction: FakeInteraction, mid: str) -> FakeMessage | None:
        if mid == "@original":
            message_id = interaction.original_message_id
        else:
            message_id = int(mid)
            owned = {interaction.original_message_id, *interaction.followup_ids}
            if message_id not in owned:
                return None
        message = self.messages.get(message_id or 0)
        return None if message is None or message.deleted else message

    async def _webhook_execute(self, call: _Call) -> web.StreamResponse:
        interaction = self._interaction_for_token(call)
        if isinstance(interaction, web.Response):
            return interaction
        if not interaction.acknowledged:
            return _error(404, 10015, "Unknown Webhook")
        payload = call.body if isinstance(call.body, dict) else {}
        original = self.messages.get(interaction.original_message_id or 0)
        if original is not None and original.loading and not original.deleted:
            # Documented Discord behaviour: the first follow-up after a deferred (type 5) response
            # replaces the loading message, keeping its ephemerality.
            failed = self._edit_message(original, payload, call.files)
            if failed is not None:
                return failed
            message = original
            await self._message_event("MESSAGE_UPDATE", message)
        else:
            created = self._create_message(
                channel_id=interaction.channel_id,
                payload=payload,
                files=call.files,
                interaction_id=interaction.id,
            )
            if isinstance(created, web.Response):
                return created
            message = created
            await self._message_event("MESSAGE_CREATE", message)
        interaction.followup_ids.append(message.id)
        if _truthy(call.request.query.get("wait")):
            return _json_response(200, self._message_payload(message))
        return _no_content()

    async def _webhook_get(self, call: _Call) -> web.StreamResponse:
        interaction = self._interaction_for_token(call)
        if isinstance(interaction, web.Response):
            return interaction
        message = self._webhook_message(interaction, call.params["mid"])
        if message is None:
            return _error(404, 10008, "Unknown Message")
        return _json_response(200, self._message_payload(message))

    async def _webhook_edit(self, call: _Call) -> web.StreamResponse:
        interaction = self._interaction_for_token(call)
        if isinstance(interaction, web.Response):
            return interaction
        message = self._webhook_message(interaction, call.params["mid"])
        if message is None:
            return _error(404, 10008, "Unknown Message")
        return await self._apply_edit(message, call)

    async def _webhook_delete(self, call: _Call) -> web.StreamResponse:
        interaction = self._interaction_for_token(call)
        if isinstance(interaction, web.Response):
            return interaction
        message = self._webhook_message(interaction, call.params["mid"])
        if message is None:
            return _error(404, 10008, "Unknown Message")
        return await self._apply_delete(message)

    async def _apply_edit(self, message: FakeMessage, call: _Call) -> web.StreamResponse:
        """Shared by the webhook and the bot-token edit routes: same rules, same answer."""
        failed = self._edit_message(message, call.body if isinstance(call.body, dict) else {}, call.files)
        if failed is not None:
            return failed
        await self._message_event("MESSAGE_UPDATE", message)
        return _json_response(200, self._message_payload(message))

    async def _apply_delete(self, message: FakeMessage) -> web.StreamResponse:
        message.deleted = True
        await self._message_event("MESSAGE_DELETE", message)
        return _no_content()

    # ---- channel messages (bot token) ----------------------------------------------------------

    def _channel_message(self, call: _Call) -> FakeMessage | web.Response:
        if int(call.params["cid"]) not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        message = self.messages.get(int(call.params["mid"]))
        # Ephemeral messages exist only for their user: the bot token cannot reach them.
        if message is None or message.deleted or message.ephemeral or message.channel_id != int(call.params["cid"]):
            return _error(404, 10008, "Unknown Message")
        return message

    async def _channel_history(self, call: _Call) -> web.StreamResponse:
        cid = int(call.params["cid"])
        if cid not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        limit = int(call.request.query.get("limit", "50"))
        visible = [m for m in self.messages_in(cid) if not m.ephemeral]
        return _json_response(200, [self._message_payload(m) for m in reversed(visible)][:limit])

    async def _channel_create(self, call: _Call) -> web.StreamResponse:
        cid = int(call.params["cid"])
        if cid not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        payload = call.body if isinstance(call.body, dict) else {}
        payload = {**payload, "flags": int(payload.get("flags") or 0) & ~FLAG_EPHEMERAL}
        created = self._create_message(channel_id=cid, payload=payload, files=call.files)
        if isinstance(created, web.Response):
            return created
        await self._message_event("MESSAGE_CREATE", created)
        return _json_response(200, self._message_payload(created))

    async def _channel_get(self, call: _Call) -> web.StreamResponse:
        message = self._channel_message(call)
        if isinstance(message, web.Response):
            return message
        return _json_response(200, self._message_payload(message))

    async def _channel_edit(self, call: _Call) -> web.StreamResponse:
        message = self._channel_message(call)
        if isinstance(message, web.Response):
            return message
        return await self._apply_edit(message, call)

    async def _channel_delete(self, call: _Call) -> web.StreamResponse:
        message = self._channel_message(call)
        if isinstance(message, web.Response):
            return message
        return await self._apply_delete(message)

    # ---- gateway -----------------------------------------------------------------------------------

    def _live_connection(self) -> _GatewayConnection | None:
        """The most recent open connection that identified (or resumed) since the latest login."""
        best: _GatewayConnection | None = None
        for conn in self._connections:
            if not conn.ready or conn.closed or conn.ws.closed or conn.ready_at < self._last_login_at:
                continue
            if best is None or conn.ready_at >= best.ready_at:
                best = conn
        return best

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._connection_counter += 1
        conn = _GatewayConnection(number=self._connection_counter, ws=ws, request=request)
        self._connections.append(conn)
        log.debug("gateway #%d connected (%s)", conn.number, request.query_string)
        try:
            await conn.send({"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue  # discord.py only sends JSON text frames
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                self.gateway_received.append(payload)
                await self._gateway_op(conn, payload)
        finally:
            conn.closed = True
            if conn in self._connections:
                self._connections.remove(conn)
            log.debug("gateway #%d closed (code %s)", conn.number, ws.close_code)
            self._notify()
        return ws

    async def _gateway_op(self, conn: _GatewayConnection, payload: JSON) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == 1:  # heartbeat
            await conn.send({"op": 11})
        elif op == 2:  # identify
            if not isinstance(data, dict) or data.get("token") != self.bot_token:
                await conn.ws.close(code=4004, message=b"Authentication failed.")
                return
            self.identify_count += 1
            session = _Session(id=secrets.token_hex(16))
            self._sessions[session.id] = session
            conn.session = session
            shard = data.get("shard") or [0, 1]
            await conn.dispatch(
                "READY",
                {
                    "v": 10,
                    "user": self._client_user(),
                    "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                    "session_id": session.id,
                    "session_type": "normal",
                    "resume_gateway_url": self.gateway_url,
                    "shard": shard,
                    "application": {"id": str(self.application_id), "flags": 0},
                    "private_channels": [],
                    "relationships": [],
                    "presences": [],
                    "guild_join_requests": [],
                    "geo_ordered_rtc_regions": [],
                    "user_settings": {},
                    "auth": {},
                    "_trace": ["fake-discord"],
                },
            )
            await conn.dispatch("GUILD_CREATE", self._guild_create_payload())
            conn.ready, conn.ready_at = True, time.monotonic()
            self._notify()
        elif op == 6:  # resume
            known = self._sessions.get(str((data or {}).get("session_id")))
            if known is None or (data or {}).get("token") != self.bot_token:
                await conn.send({"op": 9, "d": False})
                return
            conn.session = known
            self.resume_count += 1
            await conn.dispatch("RESUMED", {"_trace": ["fake-discord"]})
            conn.ready, conn.ready_at = True, time.monotonic()
            self._notify()
        elif op == 8 and conn.session is not None:  # request guild members
            nonce = (data or {}).get("nonce")
            chunk: JSON = {
                "guild_id": str(self.guild_id),
                "members": [self._member(uid) for uid in self.members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if nonce is not None:
                chunk["nonce"] = nonce
            await conn.dispatch("GUILD_MEMBERS_CHUNK", chunk)
        # op 3 (presence), op 4 (voice state) and others are recorded in gateway_received only.

    async def _close_connection(self, conn: _GatewayConnection, *, code: int) -> None:
        conn.closed = True
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=b"fake-discord"), timeout=2)
        except (TimeoutError, ConnectionError, RuntimeError):
            # The client did not finish the close handshake; cut the TCP connection instead.
            if conn.request.transport is not None:
                conn.request.transport.abort()

    async def drop_gateway(self) -> None:
        """Close every open gateway connection with code 4000, which discord.py answers by resuming."""
        for conn in list(self._connections):
            if not conn.closed:
                await self._close_connection(conn, code=4000)
        self._notify()

    async def _wait_for_live_connection(self, timeout: float = 10) -> _GatewayConnection:
        await self._wait(
            lambda: self._live_connection() is not None,
            timeout,
            "a live gateway connection (IDENTIFY or RESUME)",
        )
        conn = self._live_connection()
        assert conn is not None
        return conn

    # ---- public test API ---------------------------------------------------------------------------

    async def wait_until_ready(self, timeout: float = 10) -> None:
        """Wait until a client identified (or resumed) and got READY + GUILD_CREATE.

        Only a connection that became ready after the latest login (``GET /users/@me``) counts, so after
        starting a replacement bot this waits for the new one even if the old one's socket is still open.
        A bot that syncs commands in ``setup_hook`` has synced by then (login runs setup_hook before
        the gateway connects); :meth:`slash_command` additionally waits briefly for a sync if none
        has happened yet.
        """
        await self._wait_for_live_connection(timeout)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Wait until ``predicate()`` is true.

        Re-checked after every request, gateway change, and every 50 ms (so predicates about the bot's
        own state work too). Raises TimeoutError describing the predicate and the last requests.
        """
        await self._wait(predicate, timeout, None)

    async def _wait(self, predicate: Callable[[], bool], timeout: float, what: str | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._timeout_message(predicate, timeout, what))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    def _timeout_message(self, predicate: Callable[[], bool], timeout: float, what: str | None) -> str:
        if what is None:
            try:
                what = inspect.getsource(predicate).strip()
            except (OSError, TypeError):
                what = repr(predicate)
        recent = "\n".join(
            f"  {r.method} {r.path} -> {r.status}{' (unknown route)' if r.unknown_route else ''}"
            for r in self.requests[-12:]
        )
        live = self._live_connection()
        return (
            f"FakeDiscord: timed out after {timeout}s waiting for {what}\n"
            f"gateway: {len(self._connections)} open connection(s), live={live.number if live else None}, "
            f"identify_count={self.identify_count}\n"
            f"last requests:\n{recent or '  (none)'}"
        )

    def add_attachment(self, data: bytes, filename: str, content_type: str | None, *, size: int | None = None) -> JSON:
        """Register bytes served at ``/attachments/{id}/{filename}``; returns a Discord attachment object.

        Pass ``size=`` to claim a different size (to fake an oversized upload without sending big bytes).
        A ``content_type`` of None leaves it out of the object, as Discord does for unknown types.
        """
        aid = self._ids.next()
        blob = UploadedFile(filename=filename, content_type=content_type or "application/octet-stream", data=data)
        self._blobs[aid] = blob
        att = self._attachment_object(aid, blob, len(data) if size is None else size, include_type=False)
        if content_type is not None:
            att["content_type"] = content_type
        return att

    def hold_callbacks(self, on: bool = True) -> None:
        """While held, interaction callbacks are received but not answered (``callbacks_waiting`` counts
        them): a bot's acknowledgement is in flight, e.g. to kill the bot at exactly that moment.
        ``hold_callbacks(False)`` carries them out, as Discord would have, and answers."""
        if on:
            self._callbacks_open.clear()
        else:
            self._callbacks_open.set()

    def expire_token(self, token: str) -> None:
        """From now on, callbacks and webhook calls with this token get 401 code 50027."""
        self._expired_tokens.add(token)

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        body: JSON | None = None,
        times: int = 1,
        match: Callable[[RecordedRequest], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` matching REST calls with ``status`` (and ``body``) instead.

        ``path_regex`` is searched in the API-relative path and the full path; ``method`` may be "*";
        ``match``, if given, must also hold for the request (its ``json`` is parsed already, the
        ``payload_json`` of a multipart body included): e.g. only the edit that carries a given title.
        An injected 429 carries a Via header and retry_after 0.05 s so discord.py retries it; 500/502/504
        are retried by discord.py after 1 s, 3 s, ...
        """
        self._failures.append(
            _Failure(
                method=method.upper(),
                pattern=re.compile(path_regex),
                status=status,
                body=body,
                remaining=times,
                match=match,
            )
        )

    def chaos(
        self,
        rate: float,
        *,
        seed: int = 0,
        statuses: tuple[int, ...] = (429, 500, 502, 503),
        path_regex: str = CHAOS_PATHS,
        methods: tuple[str, ...] = ("PATCH", "POST"),
        retry_after: tuple[float, float] = (0.05, 0.5),
    ) -> None:
        """From now on answer a seeded share ``rate`` of matching REST calls with one of ``statuses``
        (drawn evenly) instead of carrying them out; ``rate=0`` stops. The default calls are message
        edits and webhook calls (what a bot delivers through); interaction callbacks are spared.

        A 429 carries ``retry_after`` drawn from the given range (Discord's body field, with its Via
        header, so discord.py waits and retries); discord.py retries 500/502/503 on webhooks with growing
        sleeps. Each injected fault is appended to :attr:`chaos_faults`.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"chaos rate {rate} is not between 0 and 1")
        if rate == 0:
            self._chaos = None
            return
        self._chaos = _Chaos(
            rate=rate,
            pattern=re.compile(path_regex),
            methods=frozenset(m.upper() for m in methods),
            statuses=tuple(statuses),
            retry_after=retry_after,
            draw=random.Random(seed),
        )

    def messages_in(self, channel_id: int) -> list[FakeMessage]:
        """Non-deleted messages in a channel (ephemeral ones included), oldest first."""
        return sorted(
            (m for m in self.messages.values() if m.channel_id == channel_id and not m.deleted),
            key=lambda m: m.id,
        )

    async def slash_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int | None = None,
        channel_id: int | None = None,
        permissions: int | None = None,
        unchecked: bool = False,
    ) -> FakeInteraction:
        """Dispatch a chat-input command interaction ("imagine" or "mod safety show") to the live client.

        ``options`` map option names to values; an attachment option takes the dict returned by
        :meth:`add_attachment`, user/channel/role options take an id (or an object with ``id``).
        Types come from the synced schema. Returns once the INTERACTION_CREATE is sent.

        Like Discord, the fake refuses values outside an option's min/max, lengths or choices;
        ``unchecked=True`` sends them anyway, as a modified client or a hand-made payload could.
        """
        await self._wait_for_live_connection()
        await self._wait_for_sync_if_none_yet(name.split()[0])
        data = self._command_data(name, options or {}, focused=None, enforce=not unchecked)
        return await self._dispatch_interaction(
            INTERACTION_COMMAND, data, user_id=user_id, channel_id=channel_id, permissions=permissions
        )

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        *,
        focused: str,
        user_id: int | None = None,
        channel_id: int | None = None,
    ) -> FakeInteraction:
        """Dispatch an autocomplete interaction (type 4) with ``focused`` marked; the client answers 8."""
        await self._wait_for_live_connection()
        await self._wait_for_sync_if_none_yet(name.split()[0])
        data = self._command_data(name, options, focused=focused)
        return await self._dispatch_interaction(INTERACTION_AUTOCOMPLETE, data, user_id=user_id, channel_id=channel_id)

    async def click(
        self,
        message_id: int,
        custom_id: str,
        *,
        user_id: int | None = None,
        permissions: int | None = None,
        values: list[str] | None = None,
    ) -> FakeInteraction:
        """Click a button (or pick ``values`` in a select) on a stored message: a type 3 interaction."""
        message = self.messages.get(message_id)
        assert message is not None, f"click: no message {message_id} in the fake"
        assert not message.deleted, f"click: message {message_id} was deleted"
        components = [c for c in _walk_components(message.components) if c.get("custom_id") == custom_id]
        known = [c.get("custom_id") for c in _walk_components(message.components) if c.get("custom_id")]
        assert components, f"click: message {message_id} has no component {custom_id!r} (has {known})"
        component = components[0]
        assert not component.get("disabled"), f"click: component {custom_id!r} is disabled"
        await self._wait_for_live_connection()
        data: JSON = {"custom_id": custom_id, "component_type": component.get("type", 2)}
        if component.get("type") in _SELECT_TYPES:
            data["values"] = list(values or [])
        return await self._dispatch_interaction(
            INTERACTION_COMPONENT,
            data,
            user_id=user_id,
            channel_id=message.channel_id,
            permissions=permissions,
            message=message,
        )

    async def submit_modal(
        self, interaction: FakeInteraction, values: dict[str, str], *, user_id: int | None = None
    ) -> FakeInteraction:
        """Submit the modal the client opened (type 9 callback) on ``interaction`` with text ``values``."""
        modals = [c for c in interaction.callbacks if c["type"] == 9]
        assert modals, f"submit_modal: interaction {interaction.id} did not open a modal"
        modal = modals[-1]["data"]

        def fill(components: list[JSON]) -> list[JSON]:
            out: list[JSON] = []
            for comp in components:
                if comp.get("type") == 1:
                    out.append({"type": 1, "components": fill(list(comp.get("components") or []))})
                elif comp.get("type") == 18 and isinstance(comp.get("component"), dict):
                    out.append({"type": 18, "component": fill([comp["component"]])[0]})
                elif comp.get("type") == 4:
                    value = values.get(comp["custom_id"], comp.get("value") or "")
                    out.append({"type": 4, "custom_id": comp["custom_id"], "value": value})
                elif comp.get("custom_id"):
                    out.append({"type": comp.get("type"), "custom_id": comp["custom_id"], "values": []})
            return out

        unknown = set(values) - {c.get("custom_id") for c in _walk_components(list(modal.get("components") or []))}
        assert not unknown, f"submit_modal: modal {modal.get('custom_id')!r} has no inputs {sorted(unknown)}"
        await self._wait_for_live_connection()
        data: JSON = {
            "custom_id": modal["custom_id"],
            "components": fill(list(modal.get("components") or [])),
        }
        message = self.messages.get(interaction.message_id or 0)
        return await self._dispatch_interaction(
            INTERACTION_MODAL_SUBMIT,
            data,
            user_id=user_id if user_id is not None else interaction.user_id,
            channel_id=interaction.channel_id,
            message=message,
        )

    # ---- building interactions ---------------------------------------------------------------------

    async def _wait_for_sync_if_none_yet(self, root: str) -> None:
        # A bot that syncs in on_ready (not setup_hook) syncs after the gateway is up; give it a moment.
        if self._command_syncs == 0:
            with contextlib.suppress(TimeoutError):
                await self._wait(lambda: self._command_syncs > 0, 2, f"a command sync registering /{root}")

    def _find_command(self, root: str) -> tuple[JSON, bool]:
        for cmd in self.guild_commands.get(self.guild_id, []):
            if cmd["name"] == root and cmd.get("type", 1) == 1:
                return cmd, True
        for cmd in self.commands:
            if cmd["name"] == root and cmd.get("type", 1) == 1:
                return cmd, False
        registered = sorted(
            {c["name"] for c in self.commands} | {c["name"] for c in self.guild_commands.get(self.guild_id, [])}
        )
        raise AssertionError(f"/{root} is not a registered chat-input command (registered: {registered})")

    def _command_data(self, name: str, options: dict[str, Any], *, focused: str | None, enforce: bool = True) -> JSON:
        parts = name.split()
        assert parts, "slash_command: empty command name"
        command, is_guild = self._find_command(parts[0])
        schema: list[JSON] = list(command.get("options") or [])
        path = [parts[0]]
        chain: list[JSON] = []  # the subcommand-group/subcommand option objects, outermost first
        for part in parts[1:]:
            subs = [o for o in schema if o.get("type") in (1, 2)]
            found = next((o for o in subs if o["name"] == part), None)
            assert found is not None, f"/{' '.join(path)} has no subcommand {part!r} (has {[o['name'] for o in subs]})"
            path.append(part)
            chain.append({"type": found["type"], "name": part})
            schema = list(found.get("options") or [])
        leftover = [o["name"] for o in schema if o.get("type") in (1, 2)]
        assert not leftover, f"/{' '.join(path)} is a group; name one of its subcommands: {leftover}"

        resolved: JSON = {}
        leaf: list[JSON] = []
        by_name = {o["name"]: o for o in schema}
        for opt_name, value in options.items():
            opt = by_name.get(opt_name)
            assert opt is not None, f"/{' '.join(path)} has no option {opt_name!r} (has {sorted(by_name)})"
            entry: JSON = {"name": opt_name, "type": opt["type"]}
            if focused is not None:
                entry["value"] = value
                if opt_name == focused:
                    entry["focused"] = True
            else:
                entry["value"] = self._option_value(opt, value, resolved, " ".join(path), enforce=enforce)
            leaf.append(entry)
        if focused is None:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in options]
            assert not missing, f"/{' '.join(path)} is missing required options {missing}"
        else:
            assert focused in options, f"autocomplete: focused option {focused!r} needs a value in options"

        nested: list[JSON] = leaf
        for sub in reversed(chain):
            nested = [{**sub, "options": nested}]
        data: JSON = {"id": command["id"], "name": parts[0], "type": 1, "options": nested}
        if resolved:
            data["resolved"] = resolved
        if is_guild:
            data["guild_id"] = str(self.guild_id)
        return data

    def _option_value(self, opt: JSON, value: Any, resolved: JSON, where: str, *, enforce: bool = True) -> Any:
        kind = int(opt["type"])
        label = f"/{where} option {opt['name']!r}"
        if kind == 3:
            assert isinstance(value, str), f"{label} is a string option, got {value!r}"
            if enforce:
                assert len(value) >= int(opt.get("min_length", 0)), f"{label} is shorter than min_length"
                assert len(value) <= int(opt.get("max_length", 6000)), f"{label} is longer than max_length"
        elif kind == 4:
            assert isinstance(value, int) and not isinstance(value, bool), (
                f"{label} is an integer option, got {value!r}"
            )
        elif kind == 5:
            assert isinstance(value, bool), f"{label} is a boolean option, got {value!r}"
        elif kind == 10:
            assert isinstance(value, int | float) and not isinstance(value, bool), f"{label} is a number, got {value!r}"
        if kind in (4, 10) and enforce:
            if opt.get("min_value") is not None:
                assert value >= opt["min_value"], f"{label}: {value} < min_value {opt['min_value']}"
            if opt.get("max_value") is not None:
                assert value <= opt["max_value"], f"{label}: {value} > max_value {opt['max_value']}"
        if kind in (3, 4, 10):
            choices = [c["value"] for c in opt.get("choices") or []]
            assert not enforce or not choices or value in choices, f"{label}: {value!r} is not one of {choices}"
            return value
        if kind == 5:
            return value
        if kind == 11:
            att = value if isinstance(value, dict) else None
            if att is None:
                aid = _snowflake_of(value)
                blob = self._blobs.get(aid)
                assert blob is not None, f"{label}: unknown attachment {value!r} (use fake.add_attachment)"
                att = self._attachment_object(aid, blob, len(blob.data), include_type=True)
            resolved.setdefault("attachments", {})[str(att["id"])] = copy.deepcopy(att)
            return str(att["id"])
        target = _snowflake_of(value)
        if kind == 8 or (kind == 9 and target in self.roles):
            assert target in self.roles, f"{label}: unknown role {target}"
            resolved.setdefault("roles", {})[str(target)] = self.roles[target]
            return str(target)
        if kind in (6, 9):
            resolved.setdefault("users", {})[str(target)] = self._user(target)
            member = self._member(target, with_user=False)
            member["permissions"] = str(self.permissions_of(target))
            resolved.setdefault("members", {})[str(target)] = member
            return str(target)
        if kind == 7:
            channel = self.channels.get(target)
            assert channel is not None, f"{label}: unknown channel {target}"
            resolved.setdefault("channels", {})[str(target)] = {
                "id": channel["id"],
                "name": channel["name"],
                "type": channel["type"],
                "nsfw": channel["nsfw"],
                "parent_id": channel["parent_id"],
                "position": channel["position"],
                "permissions": str(self.permissions_of(self.member_id)),
            }
            return str(target)
        raise AssertionError(f"{label} has unsupported type {kind}")

    async def _dispatch_interaction(
        self,
        kind: int,
        data: JSON,
        *,
        user_id: int | None,
        channel_id: int | None,
        permissions: int | None = None,
        message: FakeMessage | None = None,
    ) -> FakeInteraction:
        uid = self.member_id if user_id is None else user_id
        cid = self.channel_id if channel_id is None else channel_id
        channel = self.channels.get(cid)
        assert channel is not None, f"unknown channel {cid} (use fake.channel_id or fake.nsfw_channel_id)"
        perms = self.permissions_of(uid) if permissions is None else permissions
        member = self._member(uid)
        member["permissions"] = str(perms)
        iid = self._ids.next()
        token = f"fake-itoken-{iid}-{secrets.token_urlsafe(24)}"
        payload: JSON = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": 1,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "guild_locale": "en-US",
            "channel_id": str(cid),
            "channel": {**channel, "permissions": str(perms)},
            "member": member,
            "app_permissions": str(BOT_PERMISSIONS),
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": self.attachment_size_limit,
        }
        if message is not None:
            payload["message"] = self._message_payload(message)
        interaction = FakeInteraction(
            id=iid,
            token=token,
            type=kind,
            user_id=uid,
            channel_id=cid,
            guild_id=self.guild_id,
            message_id=message.id if message is not None else None,
            payload=payload,
            created_at=time.monotonic(),
        )
        # Registered before sending: the client may call back before dispatch() returns.
        self.interactions[iid] = interaction
        self._tokens[token] = interaction
        conn = await self._wait_for_live_connection()
        await conn.dispatch("INTERACTION_CREATE", payload)
        self._notify()
        return interaction


# --------------------------------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------------------------------


async def _serve(host: str, port: int, token: str) -> None:
    async with FakeDiscord(host=host, port=port, bot_token=token) as fake:
        print(f"api_base_url: {fake.api_base_url}", flush=True)
        print(f"gateway_url:  {fake.gateway_url}", flush=True)
        print(f"bot token: {fake.bot_token}  guild: {fake.guild_id}  channel: {fake.channel_id}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.testing.discord", description="Serve a fake Discord.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default="fake-bot-token", help="bot token the fake accepts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.token))


if __name__ == "__main__":
    main()
