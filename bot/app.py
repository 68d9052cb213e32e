"""The Bot subclass: owns the httpx client, the database, the providers and the JobRunner."""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import discord
import httpx
import yarl
from discord.ext import commands

from bot.budget import BudgetHook, RequestBudget, origin_of
from bot.callbacks import CallbackServer
from bot.catalogue import Catalogue
from bot.command_sync import sync_commands
from bot.config import Settings, callbacks_key_missing, heartbeat_path
from bot.delivery import BatchViewFactory, DiscordSink, ViewFactory
from bot.errors import ConfigError, ErrorCategory
from bot.gateway_drain import drain_handlers
from bot.imagework import ImageWork
from bot.invite import invite_url
from bot.jobs import JobRunner
from bot.lost_tasks import kept_path_for
from bot.metrics import Metrics, MetricsServer
from bot.moderation import ModerationStore
from bot.netguard import guarded_client, trusted_hosts_for
from bot.providers import build_providers
from bot.providers.base import Provider
from bot.quotas import Quotas
from bot.store import Database
from bot.store.command_syncs import CommandSyncs
from bot.store.jobs import JobStore
from bot.store.preferences import PreferenceStore
from bot.store.refusals import write_can_wait
from bot.store.settings import SettingsStore
from bot.transport import MAX_CONNECTIONS, FailureHook

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.errors",
    "cogs.slow_answers",
    "cogs.imagine",
    "cogs.blend",
    "cogs.replies",
    "cogs.remix",
    "cogs.admin",
    "cogs.preferences",
    "cogs.jobs",
    "cogs.quota",
    "cogs.usage",
    "cogs.moderation",
    "cogs.end_notices",
    "cogs.ready_pings",
    "cogs.deleted_messages",
    "cogs.delete_reaction",
    "cogs.dm_reaction",
    "cogs.star_reaction",
    "cogs.gallery",
    "cogs.missed_reactions",
    "cogs.privacy",
    "cogs.help",
    "cogs.welcome",
    "cogs.mention_prompts",
    "cogs.imagine_menu",
    "cogs.report_menu",
    "cogs.member_menu",
    "cogs.direct_messages",
)


def point_discord_at(api_base_url: str, gateway_url: str) -> None:
    """Aim discord.py at a REST proxy or a test double instead of discord.com.

    discord.py reads these module globals for every route (interaction callbacks and webhook edits
    included) and for the first gateway connection; see docs/fake-discord.md section 1.
    """
    discord.http.Route.BASE = api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def provider_budgets(settings: Settings) -> dict[str, RequestBudget]:
    """One request budget per provider section, at its ``requests_per_second``."""
    return {
        name: RequestBudget(getattr(settings.providers, name).requests_per_second)
        for name in type(settings.providers).model_fields
    }


def provider_origins(settings: Settings) -> dict[str, str]:
    """Each enabled provider's base URL origin, by provider: where its requests go."""
    return {
        name: origin_of(getattr(settings.providers, name).base_url)
        for name in type(settings.providers).model_fields
        if getattr(settings.providers, name).enabled
    }


def budgets_by_origin(settings: Settings, budgets: dict[str, RequestBudget]) -> dict[str, RequestBudget]:
    """Requests are metered by where they go: each enabled provider's base URL origin."""
    origins = provider_origins(settings)
    return {origins[name]: budget for name, budget in budgets.items() if name in origins}


def connections_for(settings: Settings) -> int:
    """Connections the providers' client may open at once: one for every step each enabled provider's
    lanes run side by side (bot/dispatch.py) and room for what runs beside them (cancels told to
    providers), never fewer than the transport's default. Set wide lanes, a step would otherwise wait
    for a connection, then fail."""
    jobs = settings.jobs
    enabled = sum(1 for name in type(settings.providers).model_fields if getattr(settings.providers, name).enabled)
    per_provider = jobs.concurrency + jobs.call_concurrency + jobs.delivery_concurrency
    return max(MAX_CONNECTIONS, enabled * per_provider + 32)


@dataclass(frozen=True, slots=True)
class Services:
    """What the bot builds once it has logged in, and its cogs use."""

    http: httpx.AsyncClient
    db: Database
    providers: dict[str, Provider]
    budgets: dict[str, RequestBudget]
    catalogue: Catalogue
    quotas: Quotas
    moderation: ModerationStore
    settings_store: SettingsStore
    preferences: PreferenceStore
    runner: JobRunner
    sink: DiscordSink  # how the runner draws a job's message; /imagine draws the first one the same way


class Bananacord(commands.Bot):
    """The bot. Build with settings; ``setup_hook`` wires everything; ``close`` tears it down in order.

    What the runner reports (bot/events.py) arrives as discord.py events, to which cogs listen.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        # We never join voice; skip discord.py's start-up warnings about voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            guild_ready_timeout=guild_ready_timeout,
            # Nothing reads cached messages; without the cache each edit's MESSAGE_UPDATE is a cheap
            # raw event instead of a Message object built and kept.
            max_messages=None,
        )
        self.settings = settings
        self.clock = clock
        self.view_for: ViewFactory = lambda job, phase, shape: None  # replaced by cogs.imagine
        self.batch_view_for: BatchViewFactory = lambda batch: None  # replaced by cogs.imagine
        self._services: Services | None = None
        self._leaving = False  # the stop has closed the gateway (see _leave_gateway)
        # What setup_hook opened (the HTTP client, the database, the providers), closed last by close(),
        # however far setup_hook got.
        self._opened = contextlib.AsyncExitStack()
        self._callbacks: CallbackServer | None = None
        self._metrics: MetricsServer | None = None
        # When this bot was last alive before this run (the previous run's heartbeat), None if never.
        self.last_alive: float | None = None

    @property
    def services(self) -> Services:
        assert self._services is not None, "setup_hook has not run"
        return self._services

    async def setup_hook(self) -> None:
        settings = self.settings
        if (unverifiable := callbacks_key_missing(settings)) is not None:
            raise unverifiable  # `bananacord run` refuses before this; a bot started otherwise must too
        # Read before this run's job loop touches it (and before the cogs load): replies to the bot's
        # images posted since then reached nobody; cogs/replies.py looks for them once connected.
        with contextlib.suppress(OSError):
            self.last_alive = heartbeat_path(settings).stat().st_mtime
        budgets = provider_budgets(settings)
        # Every request passes the address guard (results and references are links from outside), then
        # waits for its provider's request budget.
        metering = BudgetHook(budgets_by_origin(settings, budgets))
        response_hooks: list[Callable[[httpx.Response], Awaitable[None]]] = [metering.on_response]
        failure_hooks: list[FailureHook] = []
        metrics: Metrics | None = None
        if settings.metrics.enabled:
            metrics = Metrics({origin: name for name, origin in provider_origins(settings).items()})
            response_hooks.append(metrics.provider_answered)
            failure_hooks.append(metrics.provider_unanswered)
        # One bound on whole images in memory for the runner's spools and re-encodes and for the provider
        # answers that carry an image inline (bot/imagework.py, bot/transport.py).
        image_work = ImageWork.from_settings(settings.imagine)
        http = guarded_client(
            trusted_hosts_for(settings),
            request_hooks=[metering],
            response_hooks=response_hooks,
            failure_hooks=failure_hooks,
            answer_gate=image_work.answer_gate,
            max_connections=connections_for(settings),
            timeout=httpx.Timeout(30.0, connect=10.0),
            headers={"User-Agent": "Bananacord (+https://github.com/bananacord)"},
        )
        self._opened.push_async_callback(http.aclose)
        db = Database(settings.database.path, busy_timeout=settings.database.busy_timeout_seconds)
        self._opened.push_async_callback(db.close)
        await db.connect(busy_wait=settings.database.busy_wait_seconds)
        providers = build_providers(settings, http)
        for provider in providers.values():
            self._opened.push_async_callback(provider.aclose)
        catalogue = Catalogue(settings, providers, clock=self.clock)
        settings_store = SettingsStore(db)
        # A provider recorded out of order by the last run is marked again; the first job it takes records it
        # working again (/admin providers). Out of credit: tried last for what is left of its mark (bot/catalogue.py
        # Unhealthy.add holds a mark stamped ahead of now to now), as a top-up at the provider needs no restart.
        # A rejected key (or any other category bot/job_submit.py records) is tried in turn at once: keys are read
        # at start-up only (bot/config.py), so a restart is how an operator installs a new one, and the old mark
        # kept the new key tried last for up to ten minutes.
        for name, health in (await settings_store.provider_health()).items():
            if health.healthy or name not in providers:
                continue
            if health.category == ErrorCategory.OUT_OF_CREDIT:
                catalogue.unhealthy.add(name, at=health.updated_at)
            else:
                catalogue.unhealthy.add_lapsed(name)
        quotas = Quotas(db, settings.quotas, clock=self.clock)
        await quotas.settle_orphans()
        sink = DiscordSink(
            self,
            capabilities=lambda job: catalogue.capabilities(job.provider, job.model),
            view_for=lambda job, phase, shape: self.view_for(job, phase, shape),
            batch_view_for=lambda batch: self.batch_view_for(batch),
            clock=self.clock,
        )
        runner = JobRunner(
            JobStore(db),
            providers,
            sink,
            settings.jobs,
            settings.imagine,
            http=http,
            clock=self.clock,
            heartbeat=heartbeat_path(settings),
            catalogue=catalogue,
            budgets=budgets,
            callback_fallback=settings.callbacks.fallback_poll_seconds,
            lost_task_wait=settings.callbacks.lost_task_wait_seconds,
            image_work=image_work,
            quotas=quotas,
        )
        sink.typical = runner.learner.typical_seconds
        sink.restarting = lambda: runner.stopping
        sink.unconfirmed = runner.lost_tasks.waiting_until
        sink.ahead = runner.waiting.ahead_of
        runner.lost_tasks.kept_path = kept_path_for(settings.database.path)
        self._services = Services(
            http=http,
            db=db,
            providers=providers,
            budgets=budgets,
            catalogue=catalogue,
            quotas=quotas,
            moderation=ModerationStore(db, clock=self.clock),
            settings_store=settings_store,
            preferences=PreferenceStore(db),
            runner=runner,
            sink=sink,
        )
        # Before anything else starts: a port this machine will not give is a setting to fix, said in one line
        # before any command is synced or job stepped.
        if settings.callbacks.enabled:
            self._callbacks = CallbackServer(
                host=settings.callbacks.listen_host,
                port=settings.callbacks.listen_port,
                hmac_key=settings.secret("kie_webhook_hmac_key") or "",
                on_callback=runner.called_back,
                # While the runner stops, a callback for a task no job knows is answered 503 (try again later)
                # and its task kept for the next start (bot/lost_tasks.py), not 404.
                stopping=lambda: runner.stopping,
            )
            try:
                await self._callbacks.start()
            except OSError as exc:  # the port taken, an address this machine does not have, a bad host name
                where = f"{settings.callbacks.listen_host}:{settings.callbacks.listen_port}"
                raise ConfigError(
                    "[callbacks] listen_host / listen_port",
                    f"cannot listen on {where} ({exc.strerror or exc})",
                    "Choose a free port and an address of this machine, or set [callbacks] enabled = false.",
                ) from None
        if metrics is not None:
            await self._serve_metrics(metrics, db, runner, catalogue)
        for extension in EXTENSIONS:
            # Imported as any module is (once per process) and its setup() run, rather than load_extension(),
            # which executes the module afresh at every start (compiled again where Python keeps no bytecode)
            # and searches sys.modules for its finalizers at every close: about 0.2 s of each start and stop,
            # for reloading the bot never does.
            await importlib.import_module(extension).setup(self)
        await self._sync_commands()
        # Also traces the tasks that called back while the last run was stopping, kept for this start
        # (bot/lost_tasks.py), before its loop steps any job.
        await runner.start()

    async def _serve_metrics(self, metrics: Metrics, db: Database, runner: JobRunner, catalogue: Catalogue) -> None:
        """``GET /metrics`` ([metrics] enabled): counted as jobs end, read at each scrape (bot/metrics.py)."""
        settings = self.settings.metrics
        metrics.db = db
        runner.store.on_ended = metrics.job_ended
        metrics.tried_last = lambda: {name: name in catalogue.unhealthy for name in catalogue.providers}
        metrics.latency = lambda: self.latency if self.is_ready() and math.isfinite(self.latency) else None
        self._metrics = MetricsServer(metrics, host=settings.listen_host, port=settings.listen_port)
        try:
            await self._metrics.start()
        except OSError as exc:  # as the callbacks' port: a setting to fix, said before anything starts
            self._metrics = None
            where = f"{settings.listen_host}:{settings.listen_port}"
            raise ConfigError(
                "[metrics] listen_host / listen_port",
                f"cannot listen on {where} ({exc.strerror or exc})",
                "Choose a free port and an address of this machine, or set [metrics] enabled = false.",
            ) from None

    async def _sync_commands(self) -> None:
        assert self._services is not None and self.application_id is not None  # set up above, after login
        await sync_commands(
            self.tree,
            CommandSyncs(self._services.db),
            application_id=self.application_id,
            guild_ids=self.settings.discord.guild_ids,
            always=self.settings.discord.sync_commands == "always",
            now=self.clock(),
        )

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        """An event's handler failed. When the database refused its write (another program holds the lock,
        the disk is full) that is one WARNING line, not discord.py's "Ignoring exception" with a traceback:
        what the handler was to record is found again later (a job whose message was deleted is found
        gone at its next edit, and ends cancelled, uncharged; a reply is read again by the next catch-up)."""
        error = sys.exc_info()[1]
        if error is not None and write_can_wait(error):
            log.warning("%s: the database refused a write (%s); left for later", event_method, error)
            return
        await super().on_error(event_method, *args, **kwargs)

    async def on_ready(self) -> None:
        user = self.user
        log.info("connected as %s (%s) in %d guild(s)", user, user.id if user else "?", len(self.guilds))
        if self.application_id is not None:
            # The link with the permissions the bot uses (bot/invite.py); louder while no server has it yet.
            level = logging.WARNING if not self.guilds else logging.INFO
            log.log(level, "add the bot to a server with %s", invite_url(self.application_id))

    async def shutdown(self, grace: float) -> None:
        """Stop gracefully: no new job steps, ``grace`` seconds for those in flight, then ``close()``.

        The callback endpoint stays open through the grace, and is closed first by ``close()``: a create cut
        short by the stop is the likeliest to be lost, and its task's callback, coming now, is answered 503
        and its task kept for the next start to trace (bot/lost_tasks.py). A closed port would lose it. What
        it costs the stop is bounded: requests being answered when it closes get 1 s
        (bot/callbacks.py SHUTDOWN_SECONDS), not aiohttp's 60 s, so senders dripping bodies cannot hold it.
        """
        if self._services is not None:
            await self._services.runner.stop(grace=grace)
        await self.close()

    async def close(self) -> None:
        # Order: stop taking new work, then the gateway (and what its handlers are still doing), then what
        # the jobs use.
        if self._callbacks is not None:
            await self._callbacks.stop()
            self._callbacks = None
        if self._metrics is not None:
            await self._metrics.stop()
            self._metrics = None
        if self._services is not None:
            await self._services.runner.stop()
        await self._leave_gateway()
        # discord.py announces "ready" once no server has arrived for guild_ready_timeout after a READY; a stop
        # inside that wait (just after a start, or after Discord made the bot identify again) let the
        # announcement come after close() had let go of the loop: an AttributeError traceback in the log of a
        # clean stop (seen in a DEBUG-log test under load). Nothing is waiting for it any more.
        ready_wait = getattr(self._connection, "_ready_task", None)
        if ready_wait is not None:
            ready_wait.cancel()
        await super().close()
        await self._opened.aclose()

    def is_closed(self) -> bool:
        # Once the stop has closed the gateway ahead of the rest, discord.py must not connect it again.
        return self._leaving or super().is_closed()

    async def _leave_gateway(self) -> None:
        """End the gateway connection, so no new event arrives, and let the handlers of those that did
        finish while Discord's REST API and the database are still open (bot/gateway_drain.py)."""
        if self._leaving:
            return
        self._leaving = True
        if self.ws is not None and self.ws.open:
            with contextlib.suppress(Exception):  # already closing or gone: nothing more arrives either way
                await self.ws.close(code=1000)
        await drain_handlers()
