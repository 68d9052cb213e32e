"""The fake's world: one guild with its channels, roles and members, and the messages, interactions and
commands the client created in it.

Everything here is plain state and the JSON payloads Discord builds from it; the REST routes, the
gateway and the test-driver API all read and change the same :class:`World`.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from datetime import UTC, datetime
from typing import Any

from .attachments import Attachments
from .protocol import (
    ADMIN_PERMISSIONS,
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    BOT_PERMISSIONS,
    CREATE_FLAGS,
    DISCORD_EPOCH_MS,
    EDITABLE_FLAGS,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    JSON,
    MODERATOR_PERMISSIONS,
    PLAIN_MEMBER_PERMISSIONS,
    ApiError,
    form_error,
)
from .records import ChaosFault, FakeInteraction, FakeMessage, RecordedRequest, UploadedFile
from .validation import validate_message

_MENTION_USER = re.compile(r"<@!?(\d+)>")
_MENTION_ROLE = re.compile(r"<@&(\d+)>")


class Snowflakes:
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


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class World:
    """The guild, its people and places (the cast is listed on FakeDiscord), what was sent in it, and
    the traffic the fake saw: everything a test reads."""

    def __init__(
        self,
        *,
        attachment_size_limit: int,
        bot_token: str,
        dispatch_message_events: bool,
        keep_upload_bytes: int | None,
        attachment_url_lifetime: float,
    ) -> None:
        self.attachment_size_limit = attachment_size_limit
        # How long a signed CDN URL works (Discord's last about a day; the exact figure is undocumented).
        self.attachment_url_lifetime = attachment_url_lifetime
        self.bot_token = bot_token
        # Real Discord sends MESSAGE_CREATE/UPDATE/DELETE for the bot's own non-ephemeral messages.
        self.dispatch_message_events = dispatch_message_events
        # None keeps every upload whole; N keeps its first N bytes (sizes and pixel sizes are read from
        # the whole upload first): a benchmark uploading a thousand 3 MB images need not hold 3 GB.
        self.keep_upload_bytes = keep_upload_bytes
        self.snowflakes = Snowflakes()
        ids = self.snowflakes
        # Newer applications have application id == bot user id; mirror that.
        self.application_id = self.bot_user_id = ids.next()
        self.guild_id = ids.next()
        self.channel_id = ids.next()
        self.nsfw_channel_id = ids.next()
        self.owner_id = ids.next()
        self.member_id = ids.next()
        self.admin_id = ids.next()
        self.moderator_id = ids.next()
        self.moderator_role_id = ids.next()
        self.admin_role_id = ids.next()
        self.bot_role_id = ids.next()

        self.users: dict[int, JSON] = {}
        self.members: dict[int, JSON] = {}
        self.channels: dict[int, JSON] = {}
        self.roles: dict[int, JSON] = {}
        self._build()

        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        # Interaction tokens: live ones by token, and the ones a test expired (expire_token).
        self.tokens: dict[str, FakeInteraction] = {}
        self.expired_tokens: set[str] = set()
        self.commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = {}
        # Discord keeps a command's id across overwrites as long as its scope, type and name stay.
        self.command_ids: dict[tuple[int | None, int, str], int] = {}
        self.command_syncs = 0
        self._base_url: str | None = None
        self.cdn = Attachments(self, ids.next)

        # The traffic: every HTTP request, every gateway payload the clients sent (IDENTIFY,
        # heartbeats, presence updates...), sessions opened and resumed, interaction callbacks held
        # by hold_callbacks(), and the faults chaos() injected, in order.
        self.requests: list[RecordedRequest] = []
        self.gateway_received: list[JSON] = []
        self.identify_count = 0
        self.resume_count = 0
        self.callbacks_waiting = 0
        self.chaos_faults: list[ChaosFault] = []
        self._changed = asyncio.Event()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeDiscord is not started (await fake.start() or use `async with`)")
        return self._base_url

    # ---- change notification -------------------------------------------------------------------

    def notify(self) -> None:
        """Wake every waiter (FakeDiscord.wait_for); they re-check their predicate."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, timeout: float) -> None:
        """Return at the next :meth:`notify`, or after ``timeout`` seconds (raising TimeoutError)."""
        await asyncio.wait_for(self._changed.wait(), timeout)

    # ---- people and places -----------------------------------------------------------------------

    def _build(self) -> None:
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
        joined = now_iso()
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

    def user(self, uid: int) -> JSON:
        """The user payload; an unknown id gets a stub user (and guild membership) on the fly."""
        if uid not in self.users:
            self.users[uid] = self._make_user(uid, f"user-{uid}")
            self.members[uid] = self._make_member(uid, [], now_iso())
        return self.users[uid]

    def member(self, uid: int, *, with_user: bool = True) -> JSON:
        self.user(uid)
        member = {k: v for k, v in self.members[uid].items() if k != "user_id"}
        if with_user:
            member["user"] = self.users[uid]
        return member

    def client_user(self) -> JSON:
        """The bot's own user, as ``GET /users/@me`` and READY describe it."""
        return {**self.users[self.bot_user_id], "verified": True, "mfa_enabled": False, "locale": "en-US"}

    def permissions_of(self, uid: int) -> int:
        """Guild-level permissions of a member, as Discord computes them (owner/admin: everything)."""
        if uid == self.owner_id:
            return ALL_PERMISSIONS
        self.user(uid)
        perms = int(self.roles[self.guild_id]["permissions"])
        for rid in self.members[uid]["roles"]:
            perms |= int(self.roles[int(rid)]["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def guild_payload(self) -> JSON:
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

    def guild_create_payload(self) -> JSON:
        return {
            **self.guild_payload(),
            "joined_at": self.members[self.bot_user_id]["joined_at"],
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(self.members),
            "members": [self.member(uid) for uid in self.members],
            "channels": [{k: v for k, v in ch.items() if k != "guild_id"} for ch in self.channels.values()],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def channel(self, cid: int) -> JSON:
        channel = self.channels.get(cid)
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    # ---- messages ----------------------------------------------------------------------------------

    def messages_in(self, channel_id: int) -> list[FakeMessage]:
        """Non-deleted messages in a channel (ephemeral ones included), oldest first."""
        return sorted(
            (m for m in self.messages.values() if m.channel_id == channel_id and not m.deleted),
            key=lambda m: m.id,
        )

    def create_message(
        self,
        *,
        channel_id: int,
        payload: JSON,
        files: dict[int, UploadedFile],
        interaction_id: int | None = None,
        message_type: int = 0,
        extra_flags: int = 0,
        allow_empty: bool = False,
    ) -> FakeMessage:
        """Store a new message; raises the error Discord would answer for an invalid one."""
        attachments, uploads = self.cdn.resolve([], payload.get("attachments"), files, editing=False)
        content = payload.get("content")
        flags = (int(payload.get("flags") or 0) & CREATE_FLAGS) | extra_flags
        embeds = list(payload.get("embeds") or [])
        components = list(payload.get("components") or [])
        problems = validate_message(content, embeds, components, flags, len(attachments))
        if problems:
            raise form_error(problems)
        empty = not (
            content or embeds or attachments or components or payload.get("sticker_ids") or payload.get("poll")
        )
        if empty and not allow_empty:
            raise ApiError(400, 50006, "Cannot send an empty message")
        message = FakeMessage(
            id=self.snowflakes.next(),
            channel_id=channel_id,
            content=content,
            embeds=self.cdn.rewrite_urls(embeds, attachments),
            components=copy.deepcopy(components),
            attachments=attachments,
            files=uploads,
            flags=flags,
            ephemeral=bool(flags & FLAG_EPHEMERAL),
            interaction_id=interaction_id,
            allowed_mentions=payload.get("allowed_mentions"),
            type=message_type,
            timestamp=now_iso(),
            tts=bool(payload.get("tts")),
            files_at=time.time() if uploads else None,
        )
        self.messages[message.id] = message
        return message

    def edit_message(self, message: FakeMessage, payload: JSON, files: dict[int, UploadedFile]) -> None:
        """Edit in place; raises the error Discord would answer, leaving the message as it was."""
        attachments, uploads = self.cdn.resolve(message.attachments, payload.get("attachments"), files, editing=True)
        content = payload.get("content", message.content)
        embeds = list(payload.get("embeds") or []) if "embeds" in payload else message.embeds
        components = list(payload.get("components") or []) if "components" in payload else message.components
        flags = message.flags & ~FLAG_LOADING  # editing the "thinking..." placeholder ends the loading state
        if "flags" in payload and payload["flags"] is not None:
            flags = (flags & ~EDITABLE_FLAGS) | (int(payload["flags"]) & EDITABLE_FLAGS)
        problems = validate_message(content, embeds, components, flags, len(attachments))
        if problems:
            raise form_error(problems)
        if not (content or embeds or attachments or components):
            raise ApiError(400, 50006, "Cannot send an empty message")
        message.content = content
        message.embeds = self.cdn.rewrite_urls(embeds, attachments)
        message.components = copy.deepcopy(components)
        message.attachments = attachments
        message.files = uploads
        if uploads and message.files_at is None:
            message.files_at = time.time()
        message.flags = flags
        message.allowed_mentions = payload.get("allowed_mentions")
        message.edits += 1
        message.edited_timestamp = now_iso()

    def message_payload(self, message: FakeMessage) -> JSON:
        """The message object Discord answers with and dispatches."""
        content = message.content or ""
        mentions = []
        for uid_text in dict.fromkeys(_MENTION_USER.findall(content)):
            uid = int(uid_text)
            if uid in self.users:
                mentions.append({**self.users[uid], "member": self.member(uid, with_user=False)})
        mention_roles = [r for r in dict.fromkeys(_MENTION_ROLE.findall(content)) if int(r) in self.roles]
        payload: JSON = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "type": message.type,
            "content": content,
            "author": self.users[self.bot_user_id],
            # Discord signs attachment URLs afresh whenever it hands out a message.
            "attachments": [self.cdn.signed_copy(a) for a in message.attachments],
            "embeds": [self.cdn.signed_embed(e) for e in message.embeds],
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
                "user": self.user(interaction.user_id),
                "authorizing_integration_owners": {"0": str(self.guild_id)},
            }
            if interaction.message_id is not None:
                metadata["interacted_message_id"] = str(interaction.message_id)
            payload["interaction_metadata"] = metadata
        return payload
