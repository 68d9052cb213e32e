"""The REST API: every request is recorded, offered to fault injection, then routed.

Routes cover what discord.py calls for a bot that logs in, syncs application commands, answers
interactions (callbacks, follow-ups and edits through the interaction webhook) and sends or edits
channel messages with its bot token. Request bodies are JSON or multipart (``payload_json`` plus
``files[n]`` parts); answers and error codes are Discord's.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import BodyPartReader, web

from .attachments import guess_type
from .faults import Faults
from .gateway import Gateway
from .protocol import (
    API_PREFIX,
    CALLBACKS_ALLOWED,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTERACTION_COMMAND,
    JSON,
    ApiError,
    form_error,
    json_response,
    no_content,
    unknown,
)
from .records import FakeInteraction, FakeMessage, RecordedRequest, UploadedFile
from .validation import validate_commands, validate_modal
from .world import World, now_iso

log = logging.getLogger(__name__)

_FILE_FIELD = re.compile(r"^files\[(\d+)\]$")
_ATTACHMENT_PATH = re.compile(r"/attachments/(?P<aid>\d+)/(?P<name>[^/]+)")
# The most URLs one refresh call takes ([U]: the figure client libraries use; Discord documents none).
REFRESH_URLS_MAX = 50
# How long Discord remembers an enforced nonce: "the past few minutes" in its docs (not a number) [U].
NONCE_SECONDS = 300.0


@dataclass
class Call:
    """One REST call, parsed, as handed to a route handler."""

    request: web.Request
    record: RecordedRequest
    params: dict[str, str]
    body: Any
    files: dict[int, UploadedFile]

    @property
    def payload(self) -> JSON:
        """The JSON object the call carried ({} for none)."""
        return self.body if isinstance(self.body, dict) else {}

    def flag(self, name: str) -> bool:
        """A boolean query parameter (``?wait=1``, ``?with_response=true``)."""
        value = self.request.query.get(name)
        return value is not None and value.lower() in {"1", "true", "yes"}


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


class RestApi:
    """The HTTP side of the fake; :meth:`handle` is the aiohttp entry point for every path."""

    def __init__(self, world: World, gateway: Gateway, faults: Faults) -> None:
        self.world = world
        self.gateway = gateway
        self.faults = faults
        # hold_callbacks(): callbacks wait here, with the client's request in flight.
        self.callbacks_open = asyncio.Event()
        self.callbacks_open.set()
        # hold_edits(): message edits (PATCH) wait here, e.g. an upload Discord is slow to take.
        self.edits_open = asyncio.Event()
        self.edits_open.set()
        # hold_downloads(): CDN downloads of attachments wait here, e.g. a CDN slow to serve a reference.
        self.downloads_open = asyncio.Event()
        self.downloads_open.set()
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler], bool]] = []
        self._build_routes()

    def _build_routes(self) -> None:
        def add(pattern: str, auth: bool, **handlers: Handler) -> None:
            self._routes.append((re.compile(pattern), {k.upper(): v for k, v in handlers.items()}, auth))

        app = r"(?P<app>\d+)"
        tok = r"(?P<token>[^/]+)"
        add(r"/gateway", False, get=self._get_gateway)
        add(r"/gateway/bot", True, get=self._get_gateway_bot)
        add(r"/users/@me", True, get=self._get_me)
        add(r"/users/@me/channels", True, post=self._open_dm)
        add(r"/users/(?P<uid>\d+)", True, get=self._get_user)
        add(r"/oauth2/applications/@me", True, get=self._get_application)
        add(r"/applications/@me", True, get=self._get_application)
        add(rf"/applications/{app}/commands", True, get=self._get_commands, put=self._put_commands)
        add(rf"/applications/{app}/guilds/(?P<gid>\d+)/commands", True, get=self._get_commands, put=self._put_commands)
        add(r"/interactions/(?P<iid>\d+)/" + tok + r"/callback", False, post=self._interaction_callback)
        add(rf"/webhooks/{app}/{tok}", False, post=self._webhook_execute)
        add(rf"/webhooks/{app}/{tok}/messages/(?P<mid>@original|\d+)", False, **self._message(self._webhook_message))
        add(r"/channels/(?P<cid>\d+)", True, get=self._get_channel)
        add(r"/channels/(?P<cid>\d+)/typing", True, post=self._typing)
        add(r"/channels/(?P<cid>\d+)/thread-members/(?P<uid>\d+)", True, get=self._get_thread_member)
        add(r"/channels/(?P<cid>\d+)/messages", True, get=self._channel_history, post=self._channel_create)
        add(r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", True, **self._message(self._channel_message))
        add(
            r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)/reactions/(?P<emoji>[^/]+)/@me",
            True,
            put=self._react,
            delete=self._unreact,
        )
        add(r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)/reactions/(?P<emoji>[^/]+)", True, get=self._reactors)
        add(r"/attachments/refresh-urls", True, post=self._refresh_attachment_urls)
        add(r"/guilds/(?P<gid>\d+)", True, get=self._get_guild)
        add(r"/guilds/(?P<gid>\d+)/channels", True, get=self._get_guild_channels)
        add(r"/guilds/(?P<gid>\d+)/members/(?P<uid>\d+)", True, get=self._get_guild_member)

    # ---- plumbing ----------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.gateway.serve(request)
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
        self.world.requests.append(record)
        try:
            response = await self._respond(request, record, api)
        except ConnectionResetError:
            # The client went away mid-request (a bot killed during an upload): nobody to answer.
            log.info("client left during %s %s", request.method, request.path)
            response = ApiError(499, 0, "client closed the connection").response()
        except Exception:
            log.exception("fake Discord crashed handling %s %s", request.method, request.path)
            response = ApiError(500, 0, "500: Fake Discord crashed (see log)").response()
        for upload in record.files:
            self.world.cdn.trim(upload)
        record.status = response.status
        self.world.notify()
        return response

    async def _respond(self, request: web.Request, record: RecordedRequest, api: bool) -> web.StreamResponse:
        try:
            body, files = await self._read_body(request)
        except web.HTTPRequestEntityTooLarge:
            return ApiError(413, 40005, "Request entity too large").response()
        except ValueError:
            return ApiError(400, 50109, "The request body contains invalid JSON.").response()
        record.json = body
        record.files = [files[i] for i in sorted(files)]
        if (injected := self.faults.answer(record, request.path, api=api)) is not None:
            return injected

        if not api:
            public = self.world.cdn.serve_public(request.path) if request.method in ("GET", "HEAD") else None
            if public is not None:
                return public
            match = _ATTACHMENT_PATH.fullmatch(request.path)
            if match and request.method in ("GET", "HEAD"):
                await self._held(self.downloads_open, "downloads_waiting")
                # The signature covers the path as sent (percent-escapes and all), not as decoded.
                return self.world.cdn.serve(request.rel_url.raw_path, int(match["aid"]), request.query)
            record.unknown_route = True
            return ApiError(404, 0, "404: Not Found").response()

        for pattern, handlers, auth in self._routes:
            match = pattern.fullmatch(record.path)
            if match is None:
                continue
            handler = handlers.get(request.method)
            if handler is None:
                record.unknown_route = True
                return ApiError(405, 0, "405: Method Not Allowed").response()
            if auth and request.headers.get("Authorization") != f"Bot {self.world.bot_token}":
                return ApiError(401, 0, "401: Unauthorized").response()
            call = Call(request=request, record=record, params=match.groupdict(), body=body, files=files)
            try:
                answer = await handler(call)
            except ApiError as error:
                return error.response()
            # Done, but the answer lost on its way back (fail_next(after=True)).
            return self.faults.answer_after(record, request.path) or answer
        record.unknown_route = True
        return ApiError(404, 0, "404: Not Found").response()

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, dict[int, UploadedFile]]:
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
                    ctype = guess_type(part.filename, part.headers.get("Content-Type"))
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

    # ---- login, users, guild, channels -------------------------------------------------------------

    async def _get_gateway(self, call: Call) -> web.StreamResponse:
        return json_response(200, {"url": self.gateway.url.rstrip("/")})

    async def _get_gateway_bot(self, call: Call) -> web.StreamResponse:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response(200, {"url": self.gateway.url.rstrip("/"), "shards": 1, "session_start_limit": limit})

    async def _get_me(self, call: Call) -> web.StreamResponse:
        self.gateway.last_login_at = call.record.at
        return json_response(200, self.world.client_user())

    async def _get_user(self, call: Call) -> web.StreamResponse:
        uid = int(call.params["uid"])
        if uid not in self.world.users:
            raise unknown("User")
        return json_response(200, self.world.users[uid])

    async def _get_application(self, call: Call) -> web.StreamResponse:
        world = self.world
        return json_response(
            200,
            {
                "id": str(world.application_id),
                "name": "Bananacord",
                "description": "Fake application served by bot.testing.discord",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": world.users[world.owner_id],
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "summary": "",
                "tags": [],
                "bot": world.users[world.bot_user_id],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": 1,
            },
        )

    def _check_guild(self, call: Call, what: str = "Guild") -> None:
        if int(call.params["gid"]) != self.world.guild_id:
            raise unknown(what)

    async def _get_guild(self, call: Call) -> web.StreamResponse:
        self._check_guild(call)
        return json_response(200, self.world.guild_payload())

    async def _get_guild_channels(self, call: Call) -> web.StreamResponse:
        self._check_guild(call)
        return json_response(200, self.world.guild_channels())

    async def _get_guild_member(self, call: Call) -> web.StreamResponse:
        self._check_guild(call, "Member")
        uid = int(call.params["uid"])
        if uid not in self.world.members:
            raise unknown("Member")
        return json_response(200, self.world.member(uid))

    async def _open_dm(self, call: Call) -> web.StreamResponse:
        uid = int(call.payload.get("recipient_id") or 0)
        if uid not in self.world.users:
            raise unknown("User")
        return json_response(200, self.world.open_dm(uid))

    async def _get_channel(self, call: Call) -> web.StreamResponse:
        return json_response(200, self.world.channel(int(call.params["cid"])))

    async def _get_thread_member(self, call: Call) -> web.StreamResponse:
        """A thread's member, or Discord's 404 Unknown Member for someone who is not one."""
        cid, uid = int(call.params["cid"]), int(call.params["uid"])
        self.world.channel(cid)
        if uid not in self.world.thread_members.get(cid, set()):
            raise unknown("Member")
        return json_response(200, {"id": str(cid), "user_id": str(uid), "join_timestamp": now_iso(), "flags": 0})

    async def _typing(self, call: Call) -> web.StreamResponse:
        self.world.channel(int(call.params["cid"]))
        return no_content()

    async def _refresh_attachment_urls(self, call: Call) -> web.StreamResponse:
        urls = call.payload.get("attachment_urls")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise form_error([("attachment_urls", "Must be a list of URLs.")])
        if not 1 <= len(urls) <= REFRESH_URLS_MAX:
            raise form_error([("attachment_urls", f"Must be 1 to {REFRESH_URLS_MAX} URLs.")])
        refreshed = [{"original": url, "refreshed": self.world.cdn.refresh(url)} for url in urls]
        return json_response(200, {"refreshed_urls": refreshed})

    # ---- application commands ------------------------------------------------------------------------

    def _check_app(self, call: Call) -> None:
        if int(call.params["app"]) != self.world.application_id:
            raise unknown("Application")

    async def _get_commands(self, call: Call) -> web.StreamResponse:
        self._check_app(call)
        gid = call.params.get("gid")
        stored = self.world.commands if gid is None else self.world.guild_commands.get(int(gid), [])
        return json_response(200, stored)

    async def _put_commands(self, call: Call) -> web.StreamResponse:
        self._check_app(call)
        world = self.world
        gid = int(call.params["gid"]) if call.params.get("gid") else None
        if gid is not None and gid != world.guild_id:
            raise ApiError(403, 50001, "Missing Access")
        problems = validate_commands(call.body)
        if problems:
            raise form_error(problems)
        stored: list[JSON] = []
        # The commands kept apart from the request recorded: a JSON round trip, several times quicker than
        # copy.deepcopy over a bot's whole command list (7 ms of each test bot's start).
        for cmd in json.loads(json.dumps(call.body)):
            ctype = int(cmd.get("type", 1))
            cid = world.command_ids.setdefault((gid, ctype, cmd["name"]), world.snowflakes.next())
            obj: JSON = {
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "contexts": None,
                "integration_types": [0],
                **cmd,
                "id": str(cid),
                "application_id": str(world.application_id),
                "version": str(world.snowflakes.next()),
                "type": ctype,
            }
            if gid is not None:
                obj["guild_id"] = str(gid)
            stored.append(obj)
        if gid is None:
            world.commands = stored
        else:
            world.guild_commands[gid] = stored
        world.command_syncs += 1
        return json_response(200, stored)

    # ---- interaction callbacks and the interaction webhook -------------------------------------------

    def _interaction_for_token(self, call: Call) -> FakeInteraction:
        token = call.params["token"]
        if token in self.world.expired_tokens:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        if "app" in call.params and int(call.params["app"]) != self.world.application_id:
            raise unknown("Webhook")
        interaction = self.world.tokens.get(token)
        if interaction is None:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _held(
        self, gate: asyncio.Event, waiting: Literal["callbacks_waiting", "edits_waiting", "downloads_waiting"]
    ) -> None:
        """Wait while ``gate`` is closed (hold_callbacks, hold_edits, hold_downloads), counted in the world's
        ``waiting``."""
        if gate.is_set():
            return
        setattr(self.world, waiting, getattr(self.world, waiting) + 1)
        self.world.notify()
        try:
            await gate.wait()
        finally:
            setattr(self.world, waiting, getattr(self.world, waiting) - 1)

    async def _interaction_callback(self, call: Call) -> web.StreamResponse:
        await self._held(self.callbacks_open, "callbacks_waiting")
        token = call.params["token"]
        if token in self.world.expired_tokens:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        interaction = self.world.interactions.get(int(call.params["iid"]))
        if interaction is None or interaction.token != token:
            raise unknown("interaction")
        window = self.world.answer_window
        if window is not None and not interaction.acknowledged and time.monotonic() - interaction.created_at > window:
            interaction.late_answers += 1
            raise unknown("interaction")
        ctype = call.payload.get("type")
        data: JSON = call.payload.get("data") or {}
        if interaction.acknowledged:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if ctype not in CALLBACKS_ALLOWED[interaction.type]:
            raise form_error([("type", f"Callback type {ctype} is not valid for interaction type {interaction.type}.")])
        if ctype == 9 and (problems := validate_modal(data)):
            raise form_error(problems)

        message = self._carry_out_callback(interaction, ctype, data, call.files)
        interaction.callbacks.append({"type": ctype, "data": copy.deepcopy(data)})
        interaction.acknowledged_at = time.monotonic()
        if message is not None:
            interaction.original_message_id = message.id
            if ctype in (4, 5):
                await self.gateway.announce("MESSAGE_CREATE", message)
            elif ctype == 7:
                await self.gateway.announce("MESSAGE_UPDATE", message)

        if not call.flag("with_response"):
            return no_content()
        answer: JSON = {"id": str(interaction.id), "type": interaction.type}
        if message is not None:
            answer["response_message_id"] = str(message.id)
            answer["response_message_loading"] = message.loading
            answer["response_message_ephemeral"] = message.ephemeral
        resource: JSON = {"type": ctype}
        if message is not None and ctype in (4, 7):
            resource["message"] = self.world.message_payload(message)
        return json_response(200, {"interaction": answer, "resource": resource})

    def _carry_out_callback(
        self, interaction: FakeInteraction, ctype: int, data: JSON, files: dict[int, UploadedFile]
    ) -> FakeMessage | None:
        """What a callback does to messages: 4 sends, 5 shows "thinking...", 6/7 (components) keep or edit
        the clicked message; 8 and 9 (autocomplete, modal) leave messages alone."""
        message_type = 20 if interaction.type == INTERACTION_COMMAND else 0
        if ctype == 4:
            return self.world.create_message(
                channel_id=interaction.channel_id,
                payload=data,
                files=files,
                interaction_id=interaction.id,
                message_type=message_type,
            )
        if ctype == 5:
            # The "Bot is thinking..." placeholder; later edits of @original fill it in.
            return self.world.create_message(
                channel_id=interaction.channel_id,
                payload={"flags": int(data.get("flags") or 0) & FLAG_EPHEMERAL},
                files={},
                interaction_id=interaction.id,
                message_type=message_type,
                extra_flags=FLAG_LOADING,
                allow_empty=True,
            )
        if ctype in (6, 7):
            target = self.world.messages.get(interaction.message_id or 0)
            if target is None or target.deleted:
                raise unknown("Message")
            if ctype == 7:
                self.world.edit_message(target, data, files)
            return target
        return None

    async def _webhook_execute(self, call: Call) -> web.StreamResponse:
        interaction = self._interaction_for_token(call)
        if not interaction.acknowledged:
            raise unknown("Webhook")
        if interaction.channel_id is not None:
            self.world.channel(interaction.channel_id)  # a follow-up to a deleted channel: Unknown Channel
        original = self.world.messages.get(interaction.original_message_id or 0)
        if original is not None and original.loading and not original.deleted:
            # Documented Discord behaviour: the first follow-up after a deferred (type 5) response
            # replaces the loading message, keeping its ephemerality.
            self.world.edit_message(original, call.payload, call.files)
            message = original
            await self.gateway.announce("MESSAGE_UPDATE", message)
        else:
            message = self.world.create_message(
                channel_id=interaction.channel_id,
                payload=call.payload,
                files=call.files,
                interaction_id=interaction.id,
            )
            await self.gateway.announce("MESSAGE_CREATE", message)
        interaction.followup_ids.append(message.id)
        if call.flag("wait"):
            return json_response(200, self.world.message_payload(message))
        return no_content()

    def _webhook_message(self, call: Call) -> FakeMessage:
        """The interaction's @original or one of its follow-ups, and no other message."""
        interaction = self._interaction_for_token(call)
        mid = call.params["mid"]
        if mid == "@original":
            message_id = interaction.original_message_id
        else:
            message_id = int(mid)
            if message_id not in {interaction.original_message_id, *interaction.followup_ids}:
                raise unknown("Message")
        message = self.world.messages.get(message_id or 0)
        if message is None or message.deleted:
            raise unknown("Message")
        return message

    # ---- channel messages (bot token) ----------------------------------------------------------------

    def _channel_message(self, call: Call) -> FakeMessage:
        cid = int(call.params["cid"])
        self.world.channel(cid)
        message = self.world.messages.get(int(call.params["mid"]))
        # Ephemeral messages exist only for their user: the bot token cannot reach them.
        if message is None or message.deleted or message.ephemeral or message.channel_id != cid:
            raise unknown("Message")
        return message

    async def _react(self, call: Call) -> web.StreamResponse:
        """The bot adds a reaction to a message of a channel (a member's reply, say): kept on the message,
        each emoji once (adding it again changes nothing, as on Discord)."""
        message = self._channel_message(call)
        emoji = urllib.parse.unquote(call.params["emoji"])
        if emoji not in message.reactions:
            message.reactions.append(emoji)
        return no_content()

    async def _unreact(self, call: Call) -> web.StreamResponse:
        """The bot takes its own reaction off a message (one it never gave: nothing changes, as on Discord)."""
        message = self._channel_message(call)
        emoji = urllib.parse.unquote(call.params["emoji"])
        if emoji in message.reactions:
            message.reactions.remove(emoji)
        return no_content()

    async def _reactors(self, call: Call) -> web.StreamResponse:
        """Who reacted with an emoji, as Discord answers: users by id, ``limit`` (1-100, 25 unless given) after the
        id ``after``; the bot among them where it reacted too; ``type=1``: those who super-reacted instead. Needs Read
        Message History, as reading the message."""
        self._readable(call)
        message = self._channel_message(call)
        emoji = urllib.parse.unquote(call.params["emoji"])
        limit = int(call.request.query.get("limit", 25))
        if not 1 <= limit <= 100:
            raise form_error([("limit", "int value should be between 1 and 100")])
        if call.request.query.get("type", "0") == "1":  # super reactions, listed apart
            who = set(message.burst_reacted.get(emoji, []))
        else:
            mine = {self.world.bot_user_id} if emoji in message.reactions else set()
            who = set(message.reacted.get(emoji, [])) | mine
        after = int(call.request.query.get("after", 0))
        return json_response(200, [self.world.user(uid) for uid in sorted(who) if uid > after][:limit])

    def _readable(self, call: Call) -> None:
        """Reading a channel's messages needs Read Message History there (``FakeDiscord.deny_reading``)."""
        if "cid" in call.params and int(call.params["cid"]) in self.world.unreadable:
            raise ApiError(403, 50001, "Missing Access")

    async def _channel_history(self, call: Call) -> web.StreamResponse:
        cid = int(call.params["cid"])
        self.world.channel(cid)
        self._readable(call)
        query = call.request.query
        limit = int(query.get("limit", "50"))
        visible = [m for m in self.world.messages_in(cid) if not m.ephemeral]  # oldest first
        if "after" in query:
            # The ``limit`` messages right after it; like every page, newest first.
            page = [m for m in visible if m.id > int(query["after"])][:limit]
        else:
            page = [m for m in visible if "before" not in query or m.id < int(query["before"])][-limit:]
        return json_response(200, [self.world.message_payload(m) for m in reversed(page)])

    async def _channel_create(self, call: Call) -> web.StreamResponse:
        cid = int(call.params["cid"])
        self.world.channel(cid)
        if self.world.dm_channels.get(cid) in self.world.dms_closed:
            raise ApiError(403, 50007, "Cannot send messages to this user")
        nonce = call.payload.get("nonce")
        if nonce is not None and call.payload.get("enforce_nonce"):
            # Discord: the same author, the same nonce within a few minutes -> that message, nothing new.
            earlier = self.world.nonces.get(str(nonce))
            if earlier is not None and time.monotonic() - earlier[1] < NONCE_SECONDS:
                message = self.world.messages.get(earlier[0])
                if message is not None and not message.deleted:
                    return json_response(200, self.world.message_payload(message))
        payload = {**call.payload, "flags": int(call.payload.get("flags") or 0) & ~FLAG_EPHEMERAL}
        reference = None
        if payload.get("message_reference") is not None:
            reference = self.world.reply_reference(cid, payload["message_reference"])
        created = self.world.create_message(channel_id=cid, payload=payload, files=call.files, reference=reference)
        if nonce is not None and call.payload.get("enforce_nonce"):
            self.world.nonces[str(nonce)] = (created.id, time.monotonic())
        await self.gateway.announce("MESSAGE_CREATE", created)
        return json_response(200, self.world.message_payload(created))

    # ---- one message: the same rules whether reached by webhook or bot token ------------------------

    def _message(self, find: Callable[[Call], FakeMessage]) -> dict[str, Handler]:
        """GET, PATCH and DELETE handlers for the message ``find`` locates (or raises for)."""

        async def get(call: Call) -> web.StreamResponse:
            self._readable(call)
            return json_response(200, self.world.message_payload(find(call)))

        async def edit(call: Call) -> web.StreamResponse:
            await self._held(self.edits_open, "edits_waiting")
            message = find(call)
            self.world.edit_message(message, call.payload, call.files)
            await self.gateway.announce("MESSAGE_UPDATE", message)
            return json_response(200, self.world.message_payload(message))

        async def delete(call: Call) -> web.StreamResponse:
            message = find(call)
            self.world.remove_message(message)
            await self.gateway.announce("MESSAGE_DELETE", message)
            return no_content()

        return {"get": get, "patch": edit, "delete": delete}
