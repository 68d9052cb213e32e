"""`bananacord run`: check the database before touching Discord, run the bot until SIGTERM or SIGINT,
then stop in order (no new job steps, a grace period for those in flight, the gateway, then what the
jobs use) and exit 0. Start-up failures end as one line naming what to fix, not a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from typing import Any

import aiohttp
import discord

from bot.app import Bananacord, point_discord_at
from bot.config import Settings
from bot.errors import BananacordError, ConfigError
from bot.gcwatch import WATCH, freeze_startup
from bot.netguard import guarded_client, trusted_hosts_for
from bot.providers import PROVIDERS, key_problem
from bot.stop_signals import stop_signals
from bot.store import Database

log = logging.getLogger(__name__)

# A start-up interrupted by a signal gets this long to unwind before its task is cancelled.
UNWIND_SECONDS = 10.0
GATEWAY_PROBE_SECONDS = 30.0
# Gemini's model-id checks at start-up take at most this long in all (check_model_ids), then the bot starts.
MODEL_CHECK_SECONDS = 10.0


class DiscordUnavailableError(BananacordError):
    """Discord (or the configured proxy) could not be reached or refused a start-up request."""


async def serve(settings: Settings, token: str) -> int:
    """Run the bot until a stop signal; raise a BananacordError for what stopped it from starting."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    handled = stop_signals()  # SIGHUP too, unless ignored (nohup): bot/stop_signals.py
    for sig in handled:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        if not await _unless_stopped(check_database(settings), stop):
            # A stop while start-up waited for another program's lock on the database (up to
            # [database] busy_wait_seconds, for ever if that is inf): `docker stop` was ignored until then.
            log.info("%s received: stopped before start-up finished", received[0].name)
            return 0
        if not await _unless_stopped(check_model_ids(settings), stop):
            log.info("%s received: stopped before start-up finished", received[0].name)
            return 0
        point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)
        # Everything imported by now lives as long as the process: out of the cycle collector's way.
        freeze_startup()
        WATCH.install()
        bot = Bananacord(settings)
        try:
            await _run_until_stopped(bot, token, stop, received)
        finally:
            if not bot.is_closed():
                # Also after a failed start: setup_hook may have resumed jobs whose creates are in flight.
                await bot.shutdown(settings.jobs.shutdown_grace_seconds)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    if received:
        log.info("stopped cleanly")
    return 0


async def _unless_stopped(step: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``step`` until it ends or ``stop`` is set; False if it was cut short (cancelled, and its cleanup
    waited for). Its error, if it ended on one, is raised."""
    work = asyncio.create_task(step, name="bananacord-start-up-step")
    stopping = asyncio.create_task(stop.wait(), name="bananacord-stop-signal")
    try:
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if work.done() and not stop.is_set():
        work.result()
        return True
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError, BananacordError):
        # Closing what it opened (the database's connection and its thread, which would keep the process
        # alive) is waited for; what it failed on no longer matters once the process is stopping.
        await work
    return False


# While start-up waits for another program's lock, each try waits at most this long inside SQLite, where a
# stop signal cannot reach it: the wait as a whole is still [database] busy_wait_seconds.
START_TRY_SECONDS = 1.0


async def check_database(settings: Settings) -> None:
    """Open, migrate and write-test the database, so a bad path fails before Discord is contacted."""
    busy_timeout = min(settings.database.busy_timeout_seconds, START_TRY_SECONDS)
    db = Database(settings.database.path, busy_timeout=busy_timeout)
    try:
        await db.connect(busy_wait=settings.database.busy_wait_seconds)
    finally:
        await db.close()


async def check_model_ids(settings: Settings) -> None:
    """Google retires Gemini's model ids, and a retired one fails every job sent to it (404): with Gemini enabled,
    its ids are asked for (models.get, nothing generated) and `run` refuses to start naming the setting of one
    Gemini does not know, as `bananacord check --providers` reports it. Gemini unreachable or the key unproven:
    a warning, and the bot starts (the other providers may serve meanwhile; each job says what went wrong)."""
    adapter = next((a for a in PROVIDERS if a.name == "gemini"), None)
    if adapter is None or not adapter.enabled(settings) or key_problem(adapter, settings) is not None:
        return
    # The bot's own client: a plain httpx one inflated a compressed answer nobody asked for without a bound
    # and read answers of any length (bot/transport.py).
    async with guarded_client(trusted_hosts_for(settings)) as client:
        provider = adapter.from_settings(settings, client)
        try:
            async with asyncio.timeout(MODEL_CHECK_SECONDS):
                result = await provider.check()
        except TimeoutError:
            log.warning("gemini: could not confirm its model ids at start-up within %g s", MODEL_CHECK_SECONDS)
            return
        finally:
            await provider.aclose()
    if result.unknown_models:
        raise ConfigError(
            ", ".join(result.unknown_models),
            "names a model id Gemini does not know (Google may have retired it)",
            "Set a current id, or check [providers.gemini] base_url (`bananacord check --providers` says more)",
        )
    if not result.reachable or result.key_accepted is False:
        log.warning("gemini: could not confirm its model ids at start-up: %s", result.detail)


async def _run_until_stopped(bot: Bananacord, token: str, stop: asyncio.Event, received: list[signal.Signals]) -> None:
    connection = asyncio.create_task(_connect(bot, token), name="bananacord-discord")
    stopping = asyncio.create_task(stop.wait(), name="bananacord-stop-signal")
    try:
        await asyncio.wait({connection, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not stop.is_set():
        connection.result()  # the connection ended on its own: raise what ended it
        return
    grace = bot.settings.jobs.shutdown_grace_seconds
    log.info("%s received: stopping (job steps in flight get up to %g s)", received[0].name, grace)
    if not bot.is_ready():
        # Still starting: abandon the start-up rather than race it while closing.
        connection.cancel()
    await bot.shutdown(grace)
    done, _ = await asyncio.wait({connection}, timeout=UNWIND_SECONDS)
    if not done:
        connection.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        # Whatever the closing connection raises now is a consequence of the stop, not a fault.
        await connection


async def _connect(bot: Bananacord, token: str) -> None:
    discord_settings = bot.settings.discord
    try:
        await bot.login(token)  # REST: who am I, then setup_hook (database, cogs, command sync, jobs)
    except discord.LoginFailure:
        raise _token_rejected() from None
    except discord.HTTPException as exc:
        raise DiscordUnavailableError(
            f"Discord at {discord_settings.api_base_url} answered HTTP {exc.status} during start-up."
        ) from None
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise DiscordUnavailableError(
            f"cannot reach Discord at {discord_settings.api_base_url} ({_network_reason(exc)})."
        ) from None
    gateway_down = f"cannot reach the Discord gateway at {discord_settings.gateway_url}"
    try:
        await _probe_gateway(bot)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise DiscordUnavailableError(f"{gateway_down} ({_network_reason(exc)}).") from None
    try:
        await bot.connect()
    except discord.ConnectionClosed as exc:
        if exc.code == 4004:  # the gateway's "Authentication failed"
            raise _token_rejected() from None
        raise
    except Exception as exc:
        # The gateway went away between the probe and the first connection.
        reason = _connection_failure(exc)
        if reason is None or bot.is_ready():
            raise
        raise DiscordUnavailableError(f"{gateway_down} ({reason}).") from None


async def _probe_gateway(bot: Bananacord) -> None:
    """Open and close one websocket to the gateway, through discord.py's own HTTP session.

    discord.py retries a failed first connection with a logged traceback and then fails in its own
    retry code; a probe first turns an unreachable gateway into one clear line instead.
    """
    url = f"{bot.settings.discord.gateway_url.rstrip('/')}/?v=10&encoding=json"
    probe = await asyncio.wait_for(bot.http.ws_connect(url), GATEWAY_PROBE_SECONDS)
    await probe.close()


def _token_rejected() -> ConfigError:
    return ConfigError(
        "DISCORD_TOKEN",
        "was rejected by Discord",
        "Copy the bot token again (developer portal -> Bot -> Reset Token) and export it as DISCORD_TOKEN.",
    )


def _connection_failure(exc: BaseException) -> str | None:
    """The network fault behind ``exc``, if any. discord.py may fail in its own retry code after the
    first connection attempt, so the original error can sit further down the exception chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, aiohttp.ClientConnectionError | TimeoutError | ConnectionError):
            return _network_reason(current)
        current = current.__cause__ or current.__context__
    return None


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    os_error = getattr(exc, "os_error", exc)  # aiohttp's connector errors wrap the socket's error
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, OSError) and os_error.strerror:
        return str(os_error.strerror)
    return str(exc) or type(exc).__name__
