"""Discord's numbers and answer formats, as the fake speaks them.

Permission bits, message flags, interaction and callback types, and how an answer is encoded: JSON
with ``Content-Type: application/json`` exactly, errors as ``{code, message[, errors]}``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

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
FLAG_HAS_SNAPSHOT = 1 << 14  # a forward: its message_snapshots hold the message it forwards
FLAG_COMPONENTS_V2 = 1 << 15
CREATE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_EPHEMERAL | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2
EDITABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2

# Interaction types and the callback types each may answer with.
INTERACTION_COMMAND = 2
INTERACTION_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
INTERACTION_MODAL_SUBMIT = 5
CALLBACKS_ALLOWED: dict[int, set[int]] = {
    INTERACTION_COMMAND: {4, 5, 9},
    INTERACTION_COMPONENT: {4, 5, 6, 7, 9},
    INTERACTION_AUTOCOMPLETE: {8},
    INTERACTION_MODAL_SUBMIT: {4, 5, 6, 7},
}

# Application command types: chat input (slash), user and message context menus.
COMMAND_CHAT_INPUT = 1
COMMAND_USER = 2
COMMAND_MESSAGE = 3

# Gateway intents the fake honours: guild message events, and the privileged message content.
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_MESSAGE_CONTENT = 1 << 15
INTENT_DIRECT_MESSAGES = 1 << 12  # members' messages to the bot in its DMs

# Message types (0 default, 19 a reply, 20 a chat-input command's response) and the DM channel type.
MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
CHANNEL_TEXT = 0
CHANNEL_CATEGORY = 4
CHANNEL_DM = 1
CHANNEL_VOICE = 2  # its chat is a channel of messages, without threads
CHANNEL_FORUM = 15  # no messages of its own: its posts are threads
CHANNEL_PUBLIC_THREAD = 11  # a thread in a text channel; a forum's posts are threads too
CHANNEL_PRIVATE_THREAD = 12  # seen only by its members and those who may manage threads
THREAD_TYPES = frozenset({CHANNEL_PUBLIC_THREAD, CHANNEL_PRIVATE_THREAD})

SELECT_TYPES = {3, 5, 6, 7, 8}
COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    # Not web.json_response: it sends "application/json; charset=utf-8", and discord.py compares the
    # header to "application/json" exactly, then treats the body as text and fails.
    all_headers = {"Content-Type": "application/json"}
    if headers:
        all_headers.update(headers)
    return web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)


def no_content() -> web.Response:
    return web.Response(status=204)


class ApiError(Exception):
    """An error answer (``{code, message[, errors]}``), raised wherever a route finds one and sent as is."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def response(self) -> web.Response:
        body: JSON = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return json_response(self.status, body)


def form_error(problems: list[tuple[str, str]]) -> ApiError:
    """400 Invalid Form Body, with Discord's nested ``errors`` object (``a.0.b -> {_errors: [...]}``)."""
    errors: JSON = {}
    for path, message in problems:
        node = errors
        for key in path.split("."):
            node = node.setdefault(key, {})
        node.setdefault("_errors", []).append({"code": "BASE_TYPE_INVALID", "message": message})
    return ApiError(400, 50035, "Invalid Form Body", errors)


def unknown(what: str) -> ApiError:
    """Discord's 404 for an id it does not know (``Unknown Channel``, ``Unknown Message``, ...)."""
    return ApiError(404, _UNKNOWN_CODES[what], f"Unknown {what}")


_UNKNOWN_CODES = {
    "Application": 10002,
    "Channel": 10003,
    "Guild": 10004,
    "Member": 10007,
    "Message": 10008,
    "User": 10013,
    "Webhook": 10015,
    "interaction": 10062,
}


def overwrite(target: int, *, allow: int = 0, deny: int = 0, member: bool = False) -> JSON:
    """A channel's permission overwrite for a role (a member's, ``member=True``), as Discord sends it."""
    return {"id": str(target), "type": 1 if member else 0, "allow": str(allow), "deny": str(deny)}
