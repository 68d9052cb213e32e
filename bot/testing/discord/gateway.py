"""The gateway: the websocket a client identifies (or resumes) on and receives events through.

Frames are plain JSON text (discord.py decompresses only binary frames, so no zlib is needed). The
server says HELLO, answers heartbeats, IDENTIFY with READY + GUILD_CREATE, RESUME with RESUMED (or
op 9 for a session it does not know) and member requests with one GUILD_MEMBERS_CHUNK.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from .protocol import (
    HEARTBEAT_INTERVAL_MS,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGES,
    JSON,
    THREAD_TYPES,
)
from .records import FakeMessage
from .world import World

log = logging.getLogger(__name__)


@dataclass
class _Session:
    id: str
    seq: int = 0


@dataclass
class Connection:
    """One client websocket; ``ready`` once it identified or resumed."""

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


class Gateway:
    """Every open connection and session; events go to the live one (:meth:`live_connection`)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.connections: list[Connection] = []
        self._connection_counter = 0
        self._sessions: dict[str, _Session] = {}
        # When a client last logged in (GET /users/@me); only connections ready after it count as live,
        # so a bot killed without closing its websocket does not look ready on behalf of its successor.
        self.last_login_at = 0.0

    @property
    def url(self) -> str:
        return "ws" + self.world.base_url.removeprefix("http") + "/"

    def live_connection(self) -> Connection | None:
        """The most recent open connection that identified (or resumed) since the latest login."""
        best: Connection | None = None
        for conn in self.connections:
            if not conn.ready or conn.closed or conn.ws.closed or conn.ready_at < self.last_login_at:
                continue
            if best is None or conn.ready_at >= best.ready_at:
                best = conn
        return best

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Run one client connection until it closes."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._connection_counter += 1
        conn = Connection(number=self._connection_counter, ws=ws, request=request)
        self.connections.append(conn)
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
                self.world.gateway_received.append(payload)
                await self._op(conn, payload)
        finally:
            conn.closed = True
            if conn in self.connections:
                self.connections.remove(conn)
            log.debug("gateway #%d closed (code %s)", conn.number, ws.close_code)
            self.world.notify()
        return ws

    def forget_sessions(self) -> None:
        """Sessions so far can no longer be resumed (Discord invalidates a session it has dropped)."""
        self._sessions.clear()

    async def _op(self, conn: Connection, payload: JSON) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == 1:  # heartbeat
            await conn.send({"op": 11})
        elif op == 2:  # identify
            await self._identify(conn, data)
        elif op == 6:  # resume
            known = self._sessions.get(str((data or {}).get("session_id")))
            if known is None or (data or {}).get("token") != self.world.bot_token:
                await conn.send({"op": 9, "d": False})
                return
            conn.session = known
            self.world.resume_count += 1
            await conn.dispatch("RESUMED", {"_trace": ["fake-discord"]})
            self._ready(conn)
        elif op == 8 and conn.session is not None:  # request guild members
            nonce = (data or {}).get("nonce")
            chunk: JSON = {
                "guild_id": str(self.world.guild_id),
                "members": [self.world.member(uid) for uid in self.world.members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if nonce is not None:
                chunk["nonce"] = nonce
            await conn.dispatch("GUILD_MEMBERS_CHUNK", chunk)
        # op 3 (presence), op 4 (voice state) and others are recorded in gateway_received only.

    async def _identify(self, conn: Connection, data: object) -> None:
        if not isinstance(data, dict) or data.get("token") != self.world.bot_token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        self.world.identify_count += 1
        intents = data.get("intents")
        self.world.intents = int(intents) if isinstance(intents, int) else 0
        session = _Session(id=secrets.token_hex(16))
        self._sessions[session.id] = session
        conn.session = session
        shard = data.get("shard") or [0, 1]
        await conn.dispatch(
            "READY",
            {
                "v": 10,
                "user": self.world.client_user(),
                "guilds": [] if self.world.bot_removed else [{"id": str(self.world.guild_id), "unavailable": True}],
                "session_id": session.id,
                "session_type": "normal",
                "resume_gateway_url": self.url,
                "shard": shard,
                "application": {"id": str(self.world.application_id), "flags": 0},
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
        if not self.world.bot_removed:
            await conn.dispatch("GUILD_CREATE", self.world.guild_create_payload())
        self._ready(conn)

    def _ready(self, conn: Connection) -> None:
        conn.ready, conn.ready_at = True, time.monotonic()
        self.world.notify()

    async def announce_bulk_delete(self, messages: list[FakeMessage]) -> None:
        """MESSAGE_DELETE_BULK for messages of one channel (a purge), as Discord sends it."""
        conn = self.live_connection()
        if conn is None or not self.world.dispatch_message_events or not messages:
            return
        data: JSON = {
            "ids": [str(m.id) for m in messages],
            "channel_id": str(messages[0].channel_id),
            "guild_id": str(self.world.guild_id),
        }
        await conn.dispatch("MESSAGE_DELETE_BULK", data)

    async def announce_guild_update(self) -> None:
        """GUILD_UPDATE with the guild as it is now (its boost level changed, say)."""
        conn = self.live_connection()
        if conn is not None:
            payload = {
                k: v for k, v in self.world.guild_payload().items() if k not in ("channels", "threads", "members")
            }
            await conn.dispatch("GUILD_UPDATE", payload)

    async def announce_guild_create(self) -> None:
        """GUILD_CREATE with the whole guild: the bot was added to it."""
        conn = self.live_connection()
        if conn is not None:
            await conn.dispatch("GUILD_CREATE", self.world.guild_create_payload())

    async def announce_guild_delete(self) -> None:
        """GUILD_DELETE without ``unavailable``: the bot is no longer in the guild (not an outage)."""
        conn = self.live_connection()
        if conn is not None:
            await conn.dispatch("GUILD_DELETE", {"id": str(self.world.guild_id)})

    async def announce_channel_delete(self, channel: JSON) -> None:
        """CHANNEL_DELETE for a guild channel, THREAD_DELETE (its id, guild, parent and type) for a thread,
        as Discord sends them (the GUILDS intent; no MESSAGE_DELETE for the messages that went with it)."""
        conn = self.live_connection()
        if conn is None:
            return
        if channel["type"] in THREAD_TYPES:
            fields = ("id", "guild_id", "parent_id", "type")
            await conn.dispatch("THREAD_DELETE", {key: channel[key] for key in fields})
        else:
            await conn.dispatch("CHANNEL_DELETE", channel)

    async def announce_channel_create(self, channel: JSON) -> None:
        """CHANNEL_CREATE for a guild channel made while the bot is connected (the GUILDS intent)."""
        conn = self.live_connection()
        if conn is not None:
            await conn.dispatch("CHANNEL_CREATE", channel)

    async def announce_channel_update(self, channel: JSON) -> None:
        """CHANNEL_UPDATE with the channel as it is now (its permission overwrites changed, say)."""
        conn = self.live_connection()
        if conn is not None:
            await conn.dispatch("CHANNEL_UPDATE", channel)

    async def announce_role_update(self, role: JSON) -> None:
        """GUILD_ROLE_UPDATE with the role as it is now (its permissions changed, say)."""
        conn = self.live_connection()
        if conn is not None:
            await conn.dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(self.world.guild_id), "role": role})

    async def announce(self, event: str, message: FakeMessage) -> None:
        """Tell the live client about a non-ephemeral message change, as Discord would."""
        if not self.world.dispatch_message_events or message.ephemeral or message.channel_id not in self.world.channels:
            return
        conn = self.live_connection()
        if conn is None:
            return
        guild_id = str(self.world.guild_id)
        if event == "MESSAGE_DELETE":
            data: JSON = {"id": str(message.id), "channel_id": str(message.channel_id), "guild_id": guild_id}
        else:
            data = {**self.world.message_payload(message), "guild_id": guild_id}
            if message.interaction_id is None:
                data["member"] = self.world.member(self.world.bot_user_id, with_user=False)
        await conn.dispatch(event, data)

    async def announce_reaction(
        self, message: FakeMessage, emoji: str, user_id: int, *, removed: bool = False, burst: bool = False
    ) -> bool:
        """MESSAGE_REACTION_ADD for a member's reaction (a unicode emoji) to ``message``, as Discord sends it with the
        guild-message-reactions intent: the member with it; ``removed``: MESSAGE_REACTION_REMOVE, the reaction taken
        back, which Discord sends with neither the member nor the message's author. Returns whether it was sent."""
        conn = self.live_connection()
        if conn is None or not self.world.intents & INTENT_GUILD_MESSAGE_REACTIONS:
            return False
        data: JSON = {
            "type": 0,
            "user_id": str(user_id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "guild_id": str(self.world.guild_id),
            "emoji": {"id": None, "name": emoji},
            "burst": burst,
        }
        if not removed:
            data["member"] = self.world.member(user_id)
            if message.author_id is not None or message.interaction_id is not None:
                data["message_author_id"] = str(message.author_id or self.world.bot_user_id)
        await conn.dispatch("MESSAGE_REACTION_REMOVE" if removed else "MESSAGE_REACTION_ADD", data)
        return True

    async def member_message(self, message: FakeMessage, event: str = "MESSAGE_CREATE") -> bool:
        """MESSAGE_CREATE (or ``event``: MESSAGE_UPDATE, Discord adding a link's embed) for a member's message,
        as the bot is allowed to see it (content withheld without the message-content intent unless it is
        mentioned). Not sent without the guild-messages intent or a live connection; returns whether it was
        sent."""
        conn = self.live_connection()
        if conn is None or not self.world.intents & INTENT_GUILD_MESSAGES:
            return False
        assert message.author_id is not None
        data = {
            **self.world.message_payload(message),
            "guild_id": str(self.world.guild_id),
            "member": self.world.member(message.author_id, with_user=False),
        }
        await conn.dispatch(event, data)
        return True

    async def dm_message(self, message: FakeMessage) -> bool:
        """MESSAGE_CREATE for a member's message in their DM channel with the bot, as Discord sends it with the
        direct-messages intent: no guild, no member, the content whole (a DM's is never withheld)."""
        conn = self.live_connection()
        if conn is None or not self.world.intents & INTENT_DIRECT_MESSAGES:
            return False
        await conn.dispatch("MESSAGE_CREATE", self.world.message_payload(message))
        return True

    async def close(self, conn: Connection, *, code: int) -> None:
        conn.closed = True
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=b"fake-discord"), timeout=2)
        except (TimeoutError, ConnectionError, RuntimeError):
            # The client did not finish the close handshake; cut the TCP connection instead.
            if conn.request.transport is not None:
                conn.request.transport.abort()
