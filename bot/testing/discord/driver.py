"""FakeDiscord: the server's lifecycle and the API a test drives it with.

A test starts the fake, points discord.py at it (:func:`point_discord_py_at`), then plays the users:
:meth:`FakeDiscord.slash_command`, :meth:`~FakeDiscord.click`, :meth:`~FakeDiscord.submit_modal`; it
waits for outcomes with :meth:`~FakeDiscord.wait_for` and reads them from the world (``messages``,
``interactions``, ``requests``). Fault injection (``fail_next``, ``chaos``, ``expire_token``,
``hold_callbacks``, ``drop_gateway``, ``expire_attachment_urls``, ``delete_attachment``) makes Discord
misbehave on cue.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.testing.serving import StartsAndStops

from .attachments import image_size
from .faults import CALLBACK_PATHS, CHAOS_PATHS, Faults
from .gateway import Connection, Gateway
from .protocol import (
    API_PREFIX,
    BOT_PERMISSIONS,
    COMMAND_MESSAGE,
    COMMAND_USER,
    FLAG_HAS_SNAPSHOT,
    INTERACTION_AUTOCOMPLETE,
    INTERACTION_COMMAND,
    INTERACTION_COMPONENT,
    INTERACTION_MODAL_SUBMIT,
    JSON,
    SELECT_TYPES,
    THREAD_TYPES,
    VIEW_CHANNEL,
)
from .records import FakeInteraction, FakeMessage, RecordedRequest
from .rest import RestApi
from .validation import walk_components
from .world import World, now_iso

log = logging.getLogger(__name__)


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


def _snowflake_of(value: Any) -> int:
    if isinstance(value, dict):
        return int(value["id"])
    if hasattr(value, "id"):
        return int(value.id)
    return int(value)


class FakeDiscord(StartsAndStops, World):
    """A fake Discord that a real discord.py client logs into, syncs commands with and gets interactions from.

    One guild (:attr:`guild_id`) with a text channel (:attr:`channel_id`), an NSFW text channel
    (:attr:`nsfw_channel_id`), and members: the bot, the owner (:attr:`owner_id`), a plain member
    (:attr:`member_id`), an admin (:attr:`admin_id`, Administrator + Manage Guild) and a moderator
    (:attr:`moderator_id`, Manage Messages + Moderate Members), and a second plain member
    (:attr:`other_member_id`) holding a role that grants nothing (:attr:`helper_role_id`).
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
        attachment_url_lifetime: float = 24 * 3600,
    ) -> None:
        super().__init__(
            attachment_size_limit=attachment_size_limit,
            bot_token=bot_token,
            dispatch_message_events=dispatch_message_events,
            keep_upload_bytes=keep_upload_bytes,
            attachment_url_lifetime=attachment_url_lifetime,
        )
        self.host = host
        self.port = port
        self._gateway = Gateway(self)
        self._faults = Faults(self.chaos_faults)
        self._rest = RestApi(self, self._gateway, self._faults)
        self._runner: web.AppRunner | None = None

    # ---- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            return
        # client_max_size bounds non-multipart bodies; keep it well above the attachment limit so the
        # per-file 413 is what a big upload runs into.
        app = web.Application(client_max_size=max(64 * 1024 * 1024, self.attachment_size_limit * 11))
        app.router.add_route("*", "/{tail:.*}", self._rest.handle)
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
        for conn in list(self._gateway.connections):
            await self._gateway.close(conn, code=1001)
        await self._runner.cleanup()
        self._runner = None

    @property
    def api_base_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self._gateway.url

    # ---- waiting -------------------------------------------------------------------------------------

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
                await self.changed(min(remaining, 0.05))

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
        live = self._gateway.live_connection()
        return (
            f"FakeDiscord: timed out after {timeout}s waiting for {what}\n"
            f"gateway: {len(self._gateway.connections)} open connection(s), "
            f"live={live.number if live else None}, identify_count={self.identify_count}\n"
            f"last requests:\n{recent or '  (none)'}"
        )

    @property
    def connected(self) -> bool:
        """A client is on the gateway now (identified or resumed): what members post reaches it."""
        return self._gateway.live_connection() is not None

    async def _wait_for_live_connection(self, timeout: float = 10) -> Connection:
        await self._wait(
            lambda: self._gateway.live_connection() is not None,
            timeout,
            "a live gateway connection (IDENTIFY or RESUME)",
        )
        conn = self._gateway.live_connection()
        assert conn is not None
        return conn

    async def _wait_for_sync_if_none_yet(self, root: str) -> None:
        # A bot that syncs in on_ready (not setup_hook) syncs after the gateway is up; give it a moment.
        if self.command_syncs == 0:
            with contextlib.suppress(TimeoutError):
                await self._wait(lambda: self.command_syncs > 0, 2, f"a command sync registering /{root}")

    # ---- making Discord misbehave --------------------------------------------------------------------

    def add_channel(self, name: str, *, nsfw: bool = False, hidden: bool = False) -> int:
        """A new text channel; ``hidden``: @everyone may not view it (members with a role that may, the
        admins and the owner still can). A bot connected before gets it through ``GET /channels/{id}``."""
        deny = [{"id": str(self.guild_id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)}] if hidden else []
        return self.add_text_channel(name, nsfw=nsfw, overwrites=deny)

    async def create_channel(self, name: str, *, overwrites: Sequence[JSON] = ()) -> int:
        """A new text channel an admin makes while the bot runs: the live client gets CHANNEL_CREATE, and has it in
        its cache as Discord's clients do (``add_channel`` leaves it to be asked for)."""
        channel_id = self.add_text_channel(name, overwrites=list(overwrites))
        await self._gateway.announce_channel_create(self.channels[channel_id])
        self.notify()
        return channel_id

    async def set_overwrites(self, channel_id: int, overwrites: Sequence[JSON]) -> None:
        """A moderator changes the channel's permissions (Discord's permission overwrites, as ``overwrite`` makes
        them): the live client gets CHANNEL_UPDATE. Only what the client knows changes: Discord's answers to the
        bot's REST calls do not follow them (``deny_reading`` does that for reading)."""
        channel = self.set_channel_overwrites(channel_id, overwrites)
        await self._gateway.announce_channel_update(channel)
        self.notify()

    async def set_role_permissions(self, role_id: int, permissions: int) -> None:
        """An admin changes the role's permissions in the whole server: the live client gets GUILD_ROLE_UPDATE."""
        role = self.change_role_permissions(role_id, permissions)
        await self._gateway.announce_role_update(role)
        self.notify()

    def add_attachment(self, data: bytes, filename: str, content_type: str | None, *, size: int | None = None) -> JSON:
        """Register bytes served at ``/attachments/{id}/{filename}``; returns a Discord attachment object.

        Pass ``size=`` to claim a different size (to fake an oversized upload without sending big bytes).
        A ``content_type`` of None leaves it out of the object, as Discord does for unknown types.
        """
        return self.cdn.register(data, filename, content_type, size=size)

    def add_cdn_image(self, path: str, data: bytes, content_type: str = "image/png") -> str:
        """Bytes served unsigned at ``path`` on the CDN (``/emojis/<id>.png``, ``/avatars/<user>/<hash>.png``),
        as Discord serves emojis, stickers and avatars to anyone; returns the URL a client shows for it."""
        return self.cdn.publish(path, data, content_type)

    def add_external_image(self, url: str, data: bytes, content_type: str = "image/png") -> str:
        """An image on another site that Discord has fetched and keeps a copy of, as it does for a link posted in
        a message: an embed of ``url`` (``post_message(image_links=...)``) carries the copy's link as its
        ``proxy_url``, served by this fake (the site itself is never reachable in a test). Returns that link."""
        return self.cdn.publish_external(url, data, content_type)

    def expire_attachment_urls(self) -> float:
        """Let a URL lifetime (``attachment_url_lifetime``) pass on the CDN: every attachment URL handed out
        so far answers 404 from now on; messages served from now on, and ``POST /attachments/refresh-urls``,
        carry URLs signed anew. Returns the seconds that passed, for the test to move the bot's clock
        by the same amount (the bot judges a URL by its ``ex`` against its own clock)."""
        return self.cdn.expire_urls()

    def delete_attachment(self, attachment: JSON | int) -> None:
        """Discord no longer has this file (as after its message was deleted): 404, and refresh-urls
        hands its URLs back unchanged."""
        self.cdn.gone.add(_snowflake_of(attachment))

    def hold_callbacks(self, on: bool = True) -> None:
        """While held, interaction callbacks are received but not answered (``callbacks_waiting`` counts
        them): a bot's acknowledgement is in flight, e.g. to kill the bot at exactly that moment.
        ``hold_callbacks(False)`` carries them out, as Discord would have, and answers."""
        if on:
            self._rest.callbacks_open.clear()
        else:
            self._rest.callbacks_open.set()

    def hold_edits(self, on: bool = True) -> None:
        """While held, message edits (PATCH, by webhook or by channel) are received but not answered
        (``edits_waiting`` counts them): Discord slow to take an upload. ``hold_edits(False)`` carries
        them out and answers."""
        if on:
            self._rest.edits_open.clear()
        else:
            self._rest.edits_open.set()

    def hold_downloads(self, on: bool = True) -> None:
        """While held, CDN downloads of attachments are received but not answered (``downloads_waiting``
        counts them): a CDN slow to serve a reference image. ``hold_downloads(False)`` serves them."""
        if on:
            self._rest.downloads_open.clear()
        else:
            self._rest.downloads_open.set()

    def expire_token(self, token: str) -> None:
        """From now on, callbacks and webhook calls with this token get 401 code 50027."""
        self.expired_tokens.add(token)

    async def drop_gateway(self, *, forget_sessions: bool = False) -> None:
        """Close every open gateway connection with code 4000, which discord.py answers by resuming.
        ``forget_sessions``: the resume is refused (op 9), so the client identifies again and gets a new
        session, READY and all; what was posted meanwhile is never dispatched to it."""
        if forget_sessions:
            self._gateway.forget_sessions()
        for conn in list(self._gateway.connections):
            if not conn.closed:
                await self._gateway.close(conn, code=4000)
        self.notify()

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        body: JSON | None = None,
        times: int = 1,
        match: Callable[[RecordedRequest], bool] | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next ``times`` matching REST calls with ``status`` (and ``body``) instead; with
        ``after``, carry each out first and then answer so (Discord did it, the answer was lost: a 5xx from
        a proxy on the way back), which a client cannot tell from a call that was not carried out.

        ``path_regex`` is searched in the API-relative path and the full path; ``method`` may be "*";
        ``match``, if given, must also hold for the request (its ``json`` is parsed already, the
        ``payload_json`` of a multipart body included): e.g. only the edit that carries a given title.
        An injected 429 carries a Via header and retry_after 0.05 s so discord.py retries it; 500/502/504
        are retried by discord.py after 1 s, 3 s, ...
        """
        self._faults.fail_next(method, path_regex, status=status, body=body, times=times, match=match, after=after)

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
        self._faults.chaos(
            rate, seed=seed, statuses=statuses, path_regex=path_regex, methods=methods, retry_after=retry_after
        )

    def lose_answers(
        self,
        rate: float,
        *,
        seed: int = 0,
        statuses: tuple[int, ...] = (500, 502, 503),
        path_regex: str = CALLBACK_PATHS,
    ) -> None:
        """From now on carry out every matching POST (by default interaction callbacks) but answer a seeded
        share ``rate`` of them with one of ``statuses``: the work done, its answer lost on the way back
        (discord.py sends an interaction answer again after a 5xx, and is refused: already acknowledged).
        ``rate=0`` stops. Each is appended to :attr:`chaos_faults`."""
        self._faults.lose_answers(rate, seed=seed, statuses=statuses, path_regex=path_regex)

    # ---- playing the users ---------------------------------------------------------------------------

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
        components = [c for c in walk_components(message.components) if c.get("custom_id") == custom_id]
        known = [c.get("custom_id") for c in walk_components(message.components) if c.get("custom_id")]
        assert components, f"click: message {message_id} has no component {custom_id!r} (has {known})"
        component = components[0]
        assert not component.get("disabled"), f"click: component {custom_id!r} is disabled"
        await self._wait_for_live_connection()
        data: JSON = {"custom_id": custom_id, "component_type": component.get("type", 2)}
        if component.get("type") in SELECT_TYPES:
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
        self,
        interaction: FakeInteraction,
        values: Mapping[str, str | Sequence[str]],
        *,
        user_id: int | None = None,
        modified_client: bool = False,
    ) -> FakeInteraction:
        """Submit the modal the client opened (type 9 callback) on ``interaction``: a text input's text, or
        a select's chosen values (a list), by custom_id; a select left alone sends its default options, as
        Discord's client does. What a client could not send (a required input left empty, a value the select
        does not offer) fails the test, unless ``modified_client`` sends it on purpose."""
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
                    assert isinstance(value, str), f"submit_modal: text input {comp['custom_id']!r} takes text"
                    if not modified_client and comp.get("required", True):
                        assert value, f"submit_modal: the client does not send {comp['custom_id']!r} empty"
                    out.append({"type": 4, "custom_id": comp["custom_id"], "value": value})
                elif comp.get("custom_id"):
                    offered = list(comp.get("options") or [])
                    options = [str(o.get("value")) for o in offered]
                    chosen = values.get(comp["custom_id"])
                    if chosen is None:
                        picked = [str(o.get("value")) for o in offered if o.get("default")]
                    else:
                        picked = [chosen] if isinstance(chosen, str) else list(chosen)
                    if not modified_client:
                        assert set(picked) <= set(options), f"submit_modal: {picked} not offered in {options}"
                    out.append({"type": comp.get("type"), "custom_id": comp["custom_id"], "values": picked})
            return out

        unknown = set(values) - {c.get("custom_id") for c in walk_components(list(modal.get("components") or []))}
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

    async def react(
        self, message_id: int, emoji: str, *, user_id: int | None = None, seen: bool = True, burst: bool = False
    ) -> bool:
        """A member (the default one) adds a reaction in their client: kept on the message (``reacted``; a super
        reaction, ``burst``, in ``burst_reacted``), and MESSAGE_REACTION_ADD to the live client if it asked for the
        reactions intent (returned). ``seen=False``: while the bot is away, as Discord does then: kept, and sent to
        nobody (a later session is not told either)."""
        message = self.messages.get(message_id)
        assert message is not None and not message.deleted, f"react: no message {message_id} in the fake"
        who = user_id or self.member_id
        kept = message.burst_reacted if burst else message.reacted
        if who not in kept.setdefault(emoji, []):
            kept[emoji].append(who)
        if not seen:
            return False
        await self._wait_for_live_connection()
        sent = await self._gateway.announce_reaction(message, emoji, who, burst=burst)
        self.notify()
        return sent

    async def unreact(self, message_id: int, emoji: str, *, user_id: int | None = None, seen: bool = True) -> bool:
        """A member (the default one) takes back their reaction: MESSAGE_REACTION_REMOVE to the live client if it
        asked for the reactions intent (returned); ``seen=False``: while the bot is away."""
        message = self.messages.get(message_id)
        assert message is not None and not message.deleted, f"unreact: no message {message_id} in the fake"
        who = user_id or self.member_id
        if who in message.reacted.get(emoji, []):
            message.reacted[emoji].remove(who)
            if not message.reacted[emoji]:
                del message.reacted[emoji]
        if not seen:
            return False
        await self._wait_for_live_connection()
        sent = await self._gateway.announce_reaction(message, emoji, who, removed=True)
        self.notify()
        return sent

    async def delete_messages(self, *message_ids: int) -> None:
        """Members or moderators delete messages in their client (not through the bot): gone, their files
        gone from the CDN, and MESSAGE_DELETE for one, MESSAGE_DELETE_BULK for several (a purge; they must
        share a channel) to the live client."""
        messages = [self.messages[mid] for mid in message_ids]
        assert messages and all(not m.deleted for m in messages), f"delete_messages: nothing to delete in {message_ids}"
        assert len({m.channel_id for m in messages}) == 1, "delete_messages: a purge is of one channel"
        await self._wait_for_live_connection()
        for message in messages:
            self.remove_message(message)
        if len(messages) == 1:
            await self._gateway.announce("MESSAGE_DELETE", messages[0])
        else:
            await self._gateway.announce_bulk_delete(messages)
        self.notify()

    async def set_boost_tier(self, tier: int) -> None:
        """The server's boost level becomes ``tier`` (0-3; a boost lost, say) and with it its upload limit,
        as Discord sets them: 10 MiB below level 2, 50 MiB at 2, 100 MiB at 3. The live client gets
        GUILD_UPDATE; interactions carry the new limit (``attachment_size_limit``) from now on."""
        self.premium_tier = tier
        self.attachment_size_limit = (10, 10, 50, 100)[tier] * 1024 * 1024
        await self._gateway.announce_guild_update()
        self.notify()

    async def remove_bot(self, *, seen: bool = True) -> None:
        """The server's owner removes the bot (kicks it): GUILD_DELETE without ``unavailable`` to the live
        client, the guild's channels answer the bot's token 403 Missing Access (code 50001) from now on,
        and a later session's READY lists no guild. ``seen=False``: while the bot is stopped or its session
        lost, so no GUILD_DELETE reaches it; only the next READY tells."""
        if seen:
            await self._wait_for_live_connection()
        self.bot_removed = True
        if seen:
            await self._gateway.announce_guild_delete()
        self.notify()

    async def add_bot(self, *, seen: bool = True) -> None:
        """An admin adds the bot to the server (again, after ``remove_bot``): its member joins now (``joined_at``),
        its channels answer its token again, and the live client gets GUILD_CREATE, which it takes as a server
        joined. ``seen=False``: while the bot is stopped: the next READY lists the server again."""
        self.bot_removed = False
        self.members[self.bot_user_id]["joined_at"] = now_iso()
        if seen:
            await self._wait_for_live_connection()
            await self._gateway.announce_guild_create()
        self.notify()

    async def delete_channel(self, channel_id: int) -> None:
        """A moderator deletes a text channel (or a thread, ``add_thread``): it is gone with its messages
        and their files, every REST call on it answers 404 Unknown Channel (code 10003), and the live client
        gets CHANNEL_DELETE (THREAD_DELETE for a thread). Discord sends no MESSAGE_DELETE for the messages
        that went with it."""
        await self._wait_for_live_connection()
        channel = self.remove_channel(channel_id)
        await self._gateway.announce_channel_delete(channel)
        self.notify()

    async def post_message(
        self,
        content: str = "",
        *,
        user_id: int | None = None,
        channel_id: int | None = None,
        reply_to: int | None = None,
        ping: bool = True,
        attachments: Sequence[JSON] = (),
        image_links: Sequence[str] = (),
        embeds: Sequence[JSON] = (),
        live: bool = True,
    ) -> FakeMessage:
        """A member posts a message: stored, then MESSAGE_CREATE to the live client. ``live=False``: the
        bot is not connected (stopped, or between sessions), so it is stored and dispatched to nobody, as
        on Discord; the bot can see it only by reading the channel's history.

        ``reply_to`` makes it a reply to that stored message, in that message's channel unless
        ``channel_id`` says otherwise, pinging its author unless ``ping=False`` (the member turned the
        reply's @ping off). ``attachments`` take what :meth:`add_attachment`
        returned; each of ``image_links`` (a link to an image in the content) gets the embed Discord
        adds for it (type ``image``, the picture as its thumbnail, with its size when the link is one of the
        fake's attachments), after ``embeds`` (others Discord made for links, such as an article's preview).

        As on Discord, a bot without the message-content intent gets the message without its content,
        embeds, attachments and components unless the message mentions it (a ``<@id>`` in the content,
        or the ping of a reply to the bot). Nothing is dispatched to a client that did not ask for the
        guild-messages intent (the message is stored all the same).
        """
        uid = self.member_id if user_id is None else user_id
        if channel_id is None:
            # A reply is posted where the message it replies to is, as in Discord's client.
            replied = self.messages.get(reply_to) if reply_to is not None else None
            channel_id = replied.channel_id if replied is not None else self.channel_id
        cid = channel_id
        assert cid in self.channels, f"post_message: unknown channel {cid}"
        assert content or attachments or image_links, "post_message: Discord sends no empty message"
        reference = None
        if reply_to is not None:
            target = self.messages.get(reply_to)
            assert target is not None and not target.deleted, f"post_message: no message {reply_to} to reply to"
            reference = self.reply_reference(cid, {"message_id": reply_to})
        if live:
            await self._wait_for_live_connection()
        message = self.post_member_message(
            author_id=uid,
            channel_id=cid,
            content=content,
            attachments=list(attachments),
            embeds=[*map(dict, embeds), *(self._image_link_embed(url) for url in image_links)],
            reference=reference,
            ping=ping,
        )
        if live:
            await self._gateway.member_message(message)
        self.notify()
        return message

    async def forward(
        self, message_id: int, *, user_id: int | None = None, channel_id: int | None = None, live: bool = True
    ) -> FakeMessage:
        """A member forwards a stored message (its menu's Forward) to ``channel_id`` (the fake's channel): a message
        of no content of its own whose ``message_reference`` is a forward's (type 1) and whose ``message_snapshots``
        copy the original as it is now (its words and files; a later edit or delete of the original leaves them),
        flagged HAS_SNAPSHOT, then MESSAGE_CREATE to the live client."""
        source = self.messages.get(message_id)
        assert source is not None and not source.deleted, f"forward: no message {message_id}"
        uid = self.member_id if user_id is None else user_id
        cid = self.channel_id if channel_id is None else channel_id
        if live:
            await self._wait_for_live_connection()
        reference: JSON = {"type": 1, "message_id": str(source.id), "channel_id": str(source.channel_id)}
        if source.channel_id in self.channels:
            reference["guild_id"] = str(self.guild_id)
        message = self.post_member_message(
            author_id=uid, channel_id=cid, content="", attachments=[], embeds=[], reference=reference, ping=False
        )
        message.type = 0  # a forward is a default message, not a reply
        message.flags |= FLAG_HAS_SNAPSHOT
        message.snapshot = {
            "type": source.type,
            "content": source.content or "",
            "embeds": copy.deepcopy(source.embeds),
            "attachments": copy.deepcopy(source.attachments),
            "timestamp": source.timestamp,
            "edited_timestamp": source.edited_timestamp,
            "flags": source.flags,
        }
        if live:
            await self._gateway.member_message(message)
        self.notify()
        return message

    async def post_dm(self, content: str, *, user_id: int | None = None) -> FakeMessage:
        """A member (the default one) writes to the bot in their DMs with it: stored in the DM channel (opened if
        need be), then MESSAGE_CREATE to the live client if it asked for the direct-messages intent."""
        uid = self.member_id if user_id is None else user_id
        await self._wait_for_live_connection()
        cid = int(self.open_dm(uid)["id"])
        message = self.post_member_message(
            author_id=uid, channel_id=cid, content=content, attachments=[], embeds=[], reference=None, ping=False
        )
        await self._gateway.dm_message(message)
        self.notify()
        return message

    async def show_link_pictures(
        self, message: FakeMessage, image_links: Sequence[str], *, announce: bool = True
    ) -> None:
        """Discord adds its pictures of ``image_links`` to a member's message after posting it, as it does for
        links to images it had not fetched yet: the embeds ``post_message(image_links=...)`` gives, appended,
        then MESSAGE_UPDATE with the whole message. ``announce=False``: no MESSAGE_UPDATE (one the bot was not
        listening for); reading the message shows the pictures."""
        message.embeds += [self._image_link_embed(url) for url in image_links]
        if announce:
            await self._gateway.member_message(message, "MESSAGE_UPDATE")
        self.notify()

    def _image_link_embed(self, url: str) -> JSON:
        proxy = self.cdn.external.get(url)
        thumbnail: JSON = {"url": url, "proxy_url": proxy or url}
        found = re.search(r"/attachments/(\d+)/", url)
        blob = self.cdn.blobs.get(int(found[1])) if found else None
        if proxy is not None:  # Discord measured the image it copied
            blob = self.cdn.public.get(urlsplit(proxy).path)
        if blob is not None and (size := image_size(blob.data)) is not None:
            thumbnail["width"], thumbnail["height"] = size
        return {"type": "image", "url": url, "thumbnail": thumbnail}

    async def message_command(
        self, name: str, message_id: int, *, user_id: int | None = None, permissions: int | None = None
    ) -> FakeInteraction:
        """Use the message context menu command ``name`` ("Apps > name" on a message) on a stored message.

        The interaction (an application command of type 3) carries ``data.target_id`` and the message,
        whole, in ``data.resolved.messages``: Discord sends a message command's target with its content
        even to a bot without the message-content intent.
        """
        message = self.messages.get(message_id)
        assert message is not None and not message.deleted, f"message_command: no message {message_id}"
        await self._wait_for_live_connection()
        await self._wait_for_sync_if_none_yet(name)
        command, is_guild = self._find_command(name, COMMAND_MESSAGE)
        data: JSON = {
            "id": command["id"],
            "name": name,
            "type": COMMAND_MESSAGE,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): self.message_payload(message, full=True)}},
        }
        if is_guild:
            data["guild_id"] = str(self.guild_id)
        return await self._dispatch_interaction(
            INTERACTION_COMMAND, data, user_id=user_id, channel_id=message.channel_id, permissions=permissions
        )

    async def user_command(
        self, name: str, target_id: int, *, user_id: int | None = None, permissions: int | None = None
    ) -> FakeInteraction:
        """Use the user context menu command ``name`` ("Apps > name" on a member) on ``target_id``: an application
        command of type 2 whose ``data.target_id`` is the member, resolved (user, and member without its user) as a
        user option is."""
        await self._wait_for_live_connection()
        await self._wait_for_sync_if_none_yet(name)
        command, is_guild = self._find_command(name, COMMAND_USER)
        member = self.member(target_id, with_user=False)
        member["permissions"] = str(self.permissions_of(target_id))
        data: JSON = {
            "id": command["id"],
            "name": name,
            "type": COMMAND_USER,
            "target_id": str(target_id),
            "resolved": {"users": {str(target_id): self.user(target_id)}, "members": {str(target_id): member}},
        }
        if is_guild:
            data["guild_id"] = str(self.guild_id)
        return await self._dispatch_interaction(
            INTERACTION_COMMAND, data, user_id=user_id, channel_id=None, permissions=permissions
        )

    def bot_replies_to(self, message_id: int) -> list[FakeMessage]:
        """The bot's replies to a message, oldest first (deleted ones included)."""
        replies = (
            m
            for m in self.messages.values()
            if m.author_id is None and m.reference is not None and m.reference["message_id"] == str(message_id)
        )
        return sorted(replies, key=lambda m: m.id)

    def dms_to(self, user_id: int) -> list[FakeMessage]:
        """The messages the bot sent to ``user_id`` in direct messages, oldest first."""
        return [m for cid, uid in self.dm_channels.items() if uid == user_id for m in self.messages_in(cid)]

    def deny_reading(self, channel_id: int, denied: bool = True) -> None:
        """The bot may not read the channel's messages (no Read Message History): fetching one, or the history,
        is 403 Missing Access. Its commands there are answered, and its own messages edited, all the same."""
        if denied:
            self.unreadable.add(channel_id)
        else:
            self.unreadable.discard(channel_id)

    def close_dms(self, user_id: int, closed: bool = True) -> None:
        """The member accepts no DMs from server members: the bot's DMs to them get 403 code 50007."""
        if closed:
            self.dms_closed.add(user_id)
        else:
            self.dms_closed.discard(user_id)

    # ---- building interactions -----------------------------------------------------------------------

    def _find_command(self, root: str, kind: int = 1) -> tuple[JSON, bool]:
        for cmd in self.guild_commands.get(self.guild_id, []):
            if cmd["name"] == root and cmd.get("type", 1) == kind:
                return cmd, True
        for cmd in self.commands:
            if cmd["name"] == root and cmd.get("type", 1) == kind:
                return cmd, False
        registered = sorted(
            {c["name"] for c in self.commands} | {c["name"] for c in self.guild_commands.get(self.guild_id, [])}
        )
        what = "chat-input command" if kind == 1 else f"command of type {kind}"
        raise AssertionError(f"{root!r} is not a registered {what} (registered: {registered})")

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
                blob = self.cdn.blobs.get(aid)
                assert blob is not None, f"{label}: unknown attachment {value!r} (use fake.add_attachment)"
                att = self.cdn.object(aid, blob, len(blob.data), include_type=True)
            resolved.setdefault("attachments", {})[str(att["id"])] = self.cdn.signed_copy(att)
            return str(att["id"])
        target = _snowflake_of(value)
        if kind == 8 or (kind == 9 and target in self.roles):
            assert target in self.roles, f"{label}: unknown role {target}"
            resolved.setdefault("roles", {})[str(target)] = self.roles[target]
            return str(target)
        if kind in (6, 9):
            resolved.setdefault("users", {})[str(target)] = self.user(target)
            member = self.member(target, with_user=False)
            member["permissions"] = str(self.permissions_of(target))
            resolved.setdefault("members", {})[str(target)] = member
            return str(target)
        if kind == 7:
            channel = self.channels.get(target)
            assert channel is not None, f"{label}: unknown channel {target}"
            # Discord's picker offers only the option's channel_types (and refuses others sent past it).
            kinds = opt.get("channel_types")
            assert not enforce or not kinds or channel["type"] in kinds, f"{label}: channel type {channel['type']}"
            partial = {
                "id": channel["id"],
                "name": channel["name"],
                "type": channel["type"],
                "parent_id": channel["parent_id"],
                "permissions": str(self.permissions_of(self.member_id)),
            }
            if channel["type"] in THREAD_TYPES:  # a thread resolves with its own fields, no nsfw or position
                thread_fields = ("owner_id", "member_count", "message_count", "last_message_id", "thread_metadata")
                partial |= {
                    **{key: channel[key] for key in thread_fields},
                    "rate_limit_per_user": channel["rate_limit_per_user"],
                    "total_message_sent": channel["total_message_sent"],
                    "flags": channel["flags"],
                }
            else:
                partial |= {"nsfw": channel["nsfw"], "position": channel["position"]}
            resolved.setdefault("channels", {})[str(target)] = partial
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
        member = self.member(uid)
        member["permissions"] = str(perms)
        iid = self.snowflakes.next()
        if self.interaction_clock_behind:
            # Its time set back; its low bits from a counter of their own, so no other id is met.
            self._skewed_ids += 1
            behind = int(self.interaction_clock_behind * 1000) << 22
            iid = (iid - behind) | (1 << 21) | self._skewed_ids
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
            payload["message"] = self.message_payload(message)
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
        self.tokens[token] = interaction
        conn = await self._wait_for_live_connection()
        await conn.dispatch("INTERACTION_CREATE", payload)
        self.notify()
        return interaction
