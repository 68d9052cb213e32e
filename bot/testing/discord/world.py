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
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .attachments import Attachments
from .protocol import (
    ADMIN_PERMISSIONS,
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    BOT_PERMISSIONS,
    CHANNEL_DM,
    CHANNEL_FORUM,
    CHANNEL_PRIVATE_THREAD,
    CHANNEL_PUBLIC_THREAD,
    CHANNEL_TEXT,
    CHANNEL_VOICE,
    CREATE_FLAGS,
    DISCORD_EPOCH_MS,
    EDITABLE_FLAGS,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTENT_MESSAGE_CONTENT,
    JSON,
    MESSAGE_REPLY,
    MODERATOR_PERMISSIONS,
    PLAIN_MEMBER_PERMISSIONS,
    THREAD_TYPES,
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


# What Discord sends of a channel beyond a text channel's fields, by type (discord.py reads these).
_KIND_FIELDS: dict[int, JSON] = {
    CHANNEL_VOICE: {"bitrate": 64000, "user_limit": 0, "rtc_region": None, "video_quality_mode": 1},
    CHANNEL_FORUM: {
        "available_tags": [],
        "default_reaction_emoji": None,
        "default_thread_rate_limit_per_user": 0,
        "default_sort_order": None,
        "default_forum_layout": 0,
    },
}


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
        # The server's boost level (GUILD_CREATE's premium_tier): set_boost_tier changes it with its upload limit.
        self.premium_tier = 0
        # How long a signed CDN URL works (Discord's last about a day; the exact figure is undocumented).
        self.attachment_url_lifetime = attachment_url_lifetime
        self.bot_token = bot_token
        # Real Discord sends MESSAGE_CREATE/UPDATE/DELETE for the bot's own non-ephemeral messages.
        self.dispatch_message_events = dispatch_message_events
        # None keeps every upload whole; N keeps its first N bytes (sizes and pixel sizes are read from
        # the whole upload first): a benchmark uploading a thousand 3 MB images need not hold 3 GB.
        self.keep_upload_bytes = keep_upload_bytes
        # Discord takes an interaction's first answer for 3 s only, then answers 404 Unknown interaction
        # (10062). None (the default) takes a late answer, so a test on a busy machine does not depend on
        # timing; a test of what the bot does when it cannot answer in time sets 3.0.
        self.answer_window: float | None = None
        # Seconds Discord's clock is behind the bot's, as interaction ids carry it (a bot host whose clock runs
        # ahead): each interaction then looks that much older to the bot the moment it arrives.
        self.interaction_clock_behind = 0.0
        self._skewed_ids = 0
        # Channels deleted (remove_channel): what was posted in them went with them.
        self.deleted_channels: set[int] = set()
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
        # A second plain member: someone who is neither the requester nor staff. They hold the Helper role,
        # which grants nothing of itself: a test names it as `[moderation] moderator_role_id` to make them
        # a moderator by that role alone.
        self.other_member_id = ids.next()
        self.helper_role_id = ids.next()

        self.users: dict[int, JSON] = {}
        self.members: dict[int, JSON] = {}
        self.channels: dict[int, JSON] = {}
        self.thread_members: dict[int, set[int]] = {}  # thread -> its members' ids (add_thread)
        self.roles: dict[int, JSON] = {}
        self._build()
        # Direct-message channels the bot opened (channel id -> recipient), and members who accept no
        # DMs from the server's members (a bot's DM to them is 403 code 50007).
        self.dm_channels: dict[int, int] = {}
        self.dms_closed: set[int] = set()
        # Messages the bot created with an enforced nonce: nonce -> (message id, when), for NONCE_SECONDS.
        self.nonces: dict[str, tuple[int, float]] = {}
        # The gateway intents the latest IDENTIFY asked for: without the message-content intent, members'
        # messages reach the bot without their content unless they mention it (section 2.6 of the docs).
        self.intents = 0
        # The bot was removed from the guild (kicked, or its owner took it out): its channels answer the
        # bot's token 403 Missing Access, and a new session gets no guild (remove_bot).
        self.bot_removed = False
        # Where Discord posts the server's own welcomes (Server Settings -> Engagement); None: nowhere.
        self.system_channel_id: int | None = self.channel_id
        # Channels where the bot may not read messages (no Read Message History): reading one by id, or the
        # history, answers its token 403 Missing Access; its commands there are answered all the same.
        self.unreadable: set[int] = set()

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
        self.edits_waiting = 0
        self.downloads_waiting = 0
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
            (self.other_member_id, "another-member"),
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
        self.roles[self.helper_role_id] = role(self.helper_role_id, "Helper", PLAIN_MEMBER_PERMISSIONS, 1)
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
            (self.other_member_id, [self.helper_role_id]),
        ):
            self.members[uid] = self._make_member(uid, roles, joined)

        self.add_text_channel("general", cid=self.channel_id)
        self.add_text_channel("nsfw-art", cid=self.nsfw_channel_id, nsfw=True)

    def add_thread(
        self,
        parent_id: int,
        name: str,
        *,
        private: bool = False,
        started_by: int | None = None,
        members: Sequence[int] = (),
    ) -> int:
        """A thread in the text channel ``parent_id`` (a forum's posts are threads too), started by
        ``started_by`` (the member unless said): a channel of its own for messages and interactions, listed
        among the guild's threads (GUILD_CREATE ``threads``), not its channels. A ``private`` one is seen
        only by its members (who started it, and ``members``) and by those who may manage threads; Discord
        answers ``GET /channels/{id}/thread-members/{user}`` for a member, 404 for anyone else. Returns its
        id."""
        cid = self.snowflakes.next()
        owner = self.member_id if started_by is None else started_by
        self.thread_members[cid] = {owner, *members}
        self.channels[cid] = {
            "id": str(cid),
            "type": CHANNEL_PRIVATE_THREAD if private else CHANNEL_PUBLIC_THREAD,
            "guild_id": str(self.guild_id),
            "name": name,
            "parent_id": str(parent_id),
            "owner_id": str(owner),
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": now_iso(),
                "locked": False,
                "invitable": True,
                "create_timestamp": now_iso(),
            },
        }
        return cid

    def archive_thread(self, cid: int) -> None:
        """The thread goes quiet and Discord archives it (after its ``auto_archive_duration`` without a
        message): it is no longer among the guild's active threads (GUILD_CREATE ``threads``), so a client
        that starts now has it in no cache; REST still serves it and its history. A message posted in it
        (a member's, or the bot's) brings it back, as on Discord for a thread that is not locked."""
        self.channels[cid]["thread_metadata"] |= {"archived": True, "archive_timestamp": now_iso()}

    def _posted_in(self, cid: int) -> None:
        metadata = self.channels.get(cid, {}).get("thread_metadata")
        if metadata is not None and metadata.get("archived") and not metadata.get("locked"):
            metadata |= {"archived": False, "archive_timestamp": now_iso()}

    def guild_channels(self) -> list[JSON]:
        """The guild's channels as Discord lists them: threads are not among them."""
        return [ch for ch in self.channels.values() if ch["type"] not in THREAD_TYPES]

    def add_text_channel(
        self,
        name: str,
        *,
        cid: int | None = None,
        nsfw: bool = False,
        overwrites: Sequence[JSON] = (),
        kind: int = CHANNEL_TEXT,
        parent: int | None = None,
    ) -> int:
        """A text channel of the guild, after the others; ``overwrites`` are Discord's permission overwrites;
        ``kind`` another channel type members write in (a voice channel's chat, a forum: CHANNEL_* in
        protocol.py), with the fields discord.py reads for it; ``parent`` the category it is in."""
        cid = self.snowflakes.next() if cid is None else cid
        self.channels[cid] = {
            "id": str(cid),
            "type": kind,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": list(overwrites),
            "nsfw": nsfw,
            "topic": None,
            "parent_id": None if parent is None else str(parent),
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
            **_KIND_FIELDS.get(kind, {}),
        }
        return cid

    def set_channel_overwrites(self, cid: int, overwrites: Sequence[JSON]) -> JSON:
        """The channel's permission overwrites become ``overwrites``; returns the channel as it is now."""
        self.channels[cid]["permission_overwrites"] = list(overwrites)
        return self.channels[cid]

    def change_role_permissions(self, role_id: int, permissions: int) -> JSON:
        """The role's server-wide permissions become ``permissions``; returns the role as it is now."""
        self.roles[role_id]["permissions"] = str(permissions)
        return self.roles[role_id]

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
            "premium_tier": self.premium_tier,
            "premium_subscription_count": (0, 2, 7, 14)[self.premium_tier],
            "premium_progress_bar_enabled": False,
            "system_channel_id": None if self.system_channel_id is None else str(self.system_channel_id),
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
            "channels": [{k: v for k, v in ch.items() if k != "guild_id"} for ch in self.guild_channels()],
            "threads": [
                ch
                for ch in self.channels.values()
                if ch["type"] in THREAD_TYPES and not ch["thread_metadata"].get("archived")
            ],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def channel(self, cid: int) -> JSON:
        channel = self.channels.get(cid)
        if channel is not None:
            if self.bot_removed:
                raise ApiError(403, 50001, "Missing Access")
            return channel
        if cid in self.dm_channels:
            return self._dm_payload(cid)
        raise ApiError(404, 10003, "Unknown Channel")

    def open_dm(self, uid: int) -> JSON:
        """The DM channel between the bot and ``uid`` (one per user, created on first use)."""
        self.user(uid)
        for cid, recipient in self.dm_channels.items():
            if recipient == uid:
                return self._dm_payload(cid)
        cid = self.snowflakes.next()
        self.dm_channels[cid] = uid
        return self._dm_payload(cid)

    def _dm_payload(self, cid: int) -> JSON:
        return {
            "id": str(cid),
            "type": CHANNEL_DM,
            "last_message_id": None,
            "recipients": [self.users[self.dm_channels[cid]]],
            "flags": 0,
        }

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
        reference: JSON | None = None,
    ) -> FakeMessage:
        """Store a new message; raises the error Discord would answer for an invalid one.

        ``reference`` makes it a reply (type 19) to a stored message; the replied-to author is pinged
        unless ``allowed_mentions.replied_user`` is false (a payload without allowed_mentions pings).
        """
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
        if reference is not None:
            message.type = MESSAGE_REPLY
            message.reference = reference
            mentions = payload.get("allowed_mentions")
            if mentions is None or mentions.get("replied_user"):
                message.pinged = self._reply_ping(reference, self.bot_user_id)
        self.messages[message.id] = message
        self._posted_in(channel_id)
        return message

    def remove_channel(self, cid: int) -> JSON:
        """A text channel deleted: every route on it answers 404 Unknown Channel from now on, and its
        messages (and their files) are gone with it. Returns the channel as it was, for CHANNEL_DELETE."""
        channel = self.channels.pop(cid)
        self.deleted_channels.add(cid)
        for message in self.messages.values():
            if message.channel_id == cid and not message.deleted:
                self.remove_message(message)
        return channel

    def remove_message(self, message: FakeMessage) -> None:
        """Deleted: gone from the channel, and, as Discord does, its files gone from the CDN."""
        message.deleted = True
        self.cdn.gone.update(int(a["id"]) for a in message.attachments)

    def post_member_message(
        self,
        *,
        author_id: int,
        channel_id: int,
        content: str,
        attachments: list[JSON],
        embeds: list[JSON],
        reference: JSON | None,
        ping: bool,
    ) -> FakeMessage:
        """Store a message a member wrote (the test plays the member); a reply pings its author if ``ping``."""
        message = FakeMessage(
            id=self.snowflakes.next(),
            channel_id=channel_id,
            content=content,
            embeds=copy.deepcopy(embeds),
            components=[],
            attachments=copy.deepcopy(attachments),
            files=[self.cdn.blobs[int(a["id"])] for a in attachments if int(a["id"]) in self.cdn.blobs],
            flags=0,
            ephemeral=False,
            interaction_id=None,
            allowed_mentions=None,
            type=MESSAGE_REPLY if reference is not None else 0,
            timestamp=now_iso(),
            author_id=author_id,
            reference=reference,
        )
        if reference is not None and ping:
            message.pinged = self._reply_ping(reference, author_id)
        self.messages[message.id] = message
        self._posted_in(channel_id)
        return message

    def reply_reference(self, channel_id: int, spec: Any) -> JSON | None:
        """A message_reference as Discord stores it, or None if it may be dropped (fail_if_not_exists false).

        Raises Discord's 400 for a reference to a message that does not exist in the channel.
        """
        if not isinstance(spec, dict):
            raise form_error([("message_reference", "Expected an object.")])
        target = self.messages.get(int(spec.get("message_id") or 0))
        ref_channel = int(spec.get("channel_id") or channel_id)
        if target is None or target.deleted or target.ephemeral or target.channel_id != ref_channel:
            if spec.get("fail_if_not_exists") is False:
                return None
            raise form_error([("message_reference", "Unknown message")])
        reference: JSON = {"type": 0, "message_id": str(target.id), "channel_id": str(target.channel_id)}
        if target.channel_id in self.channels:
            reference["guild_id"] = str(self.guild_id)
        return reference

    def _reply_ping(self, reference: JSON, sender: int) -> list[int]:
        target = self.messages.get(int(reference["message_id"]))
        if target is None:
            return []
        author = self.bot_user_id if target.author_id is None else target.author_id
        return [] if author == sender else [author]

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

    def reactions_of(self, message: FakeMessage) -> list[JSON]:
        """A message's ``reactions`` as Discord lists them: each emoji once, counted, ``me`` where the bot's own."""
        emojis = list(dict.fromkeys([*message.reactions, *message.reacted, *message.burst_reacted]))
        listed = []
        for emoji in emojis:
            normal = len(message.reacted.get(emoji, [])) + (emoji in message.reactions)
            burst = len(message.burst_reacted.get(emoji, []))
            if normal + burst:
                listed.append(
                    {
                        "emoji": {"id": None, "name": emoji},
                        "count": normal + burst,
                        "count_details": {"burst": burst, "normal": normal},
                        "me": emoji in message.reactions,
                        "me_burst": False,
                        "burst_colors": [],
                    }
                )
        return listed

    def mentioned_ids(self, message: FakeMessage) -> list[int]:
        """Who a message pings: users named in its content, then a reply's pinged author."""
        named = [int(uid) for uid in _MENTION_USER.findall(message.content or "")]
        return [uid for uid in dict.fromkeys([*named, *message.pinged]) if uid in self.users]

    def content_withheld(self, message: FakeMessage) -> bool:
        """Whether the bot gets this message without its content, as Discord does for a bot without the
        message-content intent: not for its own messages, DMs, or messages that mention it."""
        if self.intents & INTENT_MESSAGE_CONTENT or message.author_id in (None, self.bot_user_id):
            return False
        if message.channel_id in self.dm_channels:
            return False
        return self.bot_user_id not in self.mentioned_ids(message)

    def message_payload(self, message: FakeMessage, *, full: bool = False, nested: bool = True) -> JSON:
        """The message object Discord answers with and dispatches to the bot.

        Content, embeds, attachments and components are empty when Discord would withhold them
        (:meth:`content_withheld`) unless ``full`` (a message command's target is always sent whole). A
        reply carries ``referenced_message`` (itself without one), or null if that message was deleted.
        """
        withheld = not full and self.content_withheld(message)
        content = "" if withheld else message.content or ""
        mentions = [
            {**self.users[uid], "member": self.member(uid, with_user=False)} for uid in self.mentioned_ids(message)
        ]
        mention_roles = [r for r in dict.fromkeys(_MENTION_ROLE.findall(message.content or "")) if int(r) in self.roles]
        author = self.bot_user_id if message.author_id is None else message.author_id
        payload: JSON = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "type": message.type,
            "content": content,
            "author": self.user(author),
            # Discord signs attachment URLs afresh whenever it hands out a message.
            "attachments": [] if withheld else [self.cdn.signed_copy(a) for a in message.attachments],
            "embeds": [] if withheld else [self.cdn.signed_embed(e) for e in message.embeds],
            "mentions": mentions,
            "mention_roles": mention_roles,
            "mention_everyone": False,
            "pinned": False,
            "tts": message.tts,
            "timestamp": message.timestamp,
            "edited_timestamp": message.edited_timestamp,
            "flags": message.flags,
            "components": [] if withheld else copy.deepcopy(message.components),
        }
        reactions = self.reactions_of(message)
        if reactions:
            payload["reactions"] = reactions
        if message.snapshot is not None:
            # Its content, embeds and attachments are withheld with the forward's own (a bot without the intent).
            shown = message.snapshot
            payload["message_snapshots"] = [
                {
                    "message": {
                        **{key: shown[key] for key in ("type", "timestamp", "edited_timestamp", "flags")},
                        "content": "" if withheld else shown["content"],
                        "embeds": [] if withheld else [self.cdn.signed_embed(e) for e in shown["embeds"]],
                        "attachments": [] if withheld else [self.cdn.signed_copy(a) for a in shown["attachments"]],
                    }
                }
            ]
        if message.reference is not None:
            payload["message_reference"] = copy.deepcopy(message.reference)
            if nested and message.snapshot is None:  # a forward carries its snapshot, no referenced message
                target = self.messages.get(int(message.reference["message_id"]))
                alive = target is not None and not target.deleted
                payload["referenced_message"] = (
                    self.message_payload(target, full=full, nested=False) if target is not None and alive else None
                )
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
