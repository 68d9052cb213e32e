"""The Bot subclass: owns the httpx client, the database, the providers and the JobRunner."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import discord
import httpx
import yarl
from discord.ext import commands

from bot.budget import BudgetHook, RequestBudget, origin_of
from bot.callbacks import CallbackServer
from bot.catalogue import Catalogue
from bot.config import Settings, heartbeat_path
from bot.delivery import DiscordSink, ViewFactory
from bot.errors import ProviderError
from bot.jobs import JobRunner
from bot.moderation import ModerationStore
from bot.netguard import guarded_client, trusted_hosts_for
from bot.providers import build_providers
from bot.providers.base import Capabilities, Provider
from bot.quotas import Quotas
from bot.store import Database
from bot.store.jobs import Job, JobStore
from bot.store.settings import SettingsStore
from bot.transport import AiohttpTransport

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.errors", "cogs.imagine", "cogs.admin", "cogs.quota", "cogs.usage", "cogs.moderation")


def point_discord_at(api_base_url: str, gateway_url: str) -> None:
    """Aim discord.py at a REST proxy or a test double instead of discord.com.

    discord.py reads these module globals for every route (interaction callbacks and webhook edits
    included) and for the first gateway connection; see docs in discord-fake.md.
    """
    discord.http.Route.BASE = api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def provider_budgets(settings: Settings) -> dict[str, RequestBudget]:
    """One request budget per provider section, at its ``requests_per_second``."""
    return {
        name: RequestBudget(getattr(settings.providers, name).requests_per_second)
        for name in type(settings.providers).model_fields
    }


def budgets_by_origin(settings: Settings, budgets: dict[str, RequestBudget]) -> dict[str, RequestBudget]:
    """Requests are metered by where they go: each enabled provider's base URL origin."""
    return {
        origin_of(getattr(settings.providers, name).base_url): budget
        for name, budget in budgets.items()
        if getattr(settings.providers, name).enabled
    }


class Bananacord(commands.Bot):
    """The bot. Build with settings; ``setup_hook`` wires everything; ``close`` tears it down in order."""

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
        self.view_for: ViewFactory = lambda job, phase: None  # replaced by cogs.imagine
        self._http_client: httpx.AsyncClient | None = None
        self._db: Database | None = None
        self._runner: JobRunner | None = None
        self._catalogue: Catalogue | None = None
        self._quotas: Quotas | None = None
        self._moderation: ModerationStore | None = None
        self.providers: dict[str, Provider] = {}
        self.budgets: dict[str, RequestBudget] = {}
        self._callbacks: CallbackServer | None = None

    # Typed accessors: these exist once setup_hook has run.
    @property
    def http_client(self) -> httpx.AsyncClient:
        assert self._http_client is not None, "setup_hook has not run"
        return self._http_client

    @property
    def db(self) -> Database:
        assert self._db is not None, "setup_hook has not run"
        return self._db

    @property
    def runner(self) -> JobRunner:
        assert self._runner is not None, "setup_hook has not run"
        return self._runner

    @property
    def moderation(self) -> ModerationStore:
        assert self._moderation is not None, "setup_hook has not run"
        return self._moderation

    @property
    def quotas(self) -> Quotas:
        assert self._quotas is not None, "setup_hook has not run"
        return self._quotas

    @property
    def catalogue(self) -> Catalogue:
        assert self._catalogue is not None, "setup_hook has not run"
        return self._catalogue

    @property
    def settings_store(self) -> SettingsStore:
        return SettingsStore(self.db)

    def capabilities_for(self, job: Job) -> Capabilities | None:
        return self._catalogue.capabilities(job.provider, job.model) if self._catalogue else None

    async def setup_hook(self) -> None:
        settings = self.settings
        self.budgets = provider_budgets(settings)
        # Every request passes the address guard (results and references are links from outside), then
        # waits for its provider's request budget.
        metering = BudgetHook(budgets_by_origin(settings, self.budgets))
        self._http_client = guarded_client(
            trusted_hosts_for(settings),
            request_hooks=[metering],
            response_hooks=[metering.on_response],
            transport=AiohttpTransport(),
            timeout=httpx.Timeout(30.0, connect=10.0),
            headers={"User-Agent": "Bananacord (+https://github.com/bananacord)"},
        )
        self._db = Database(settings.database.path)
        await self._db.connect()
        self.providers = build_providers(settings, self._http_client)
        self._catalogue = Catalogue(settings, self.providers)
        self._quotas = Quotas(self._db, settings.quotas, clock=self.clock)
        self._moderation = ModerationStore(self._db, clock=self.clock)
        await self._quotas.settle_orphans()
        sink = DiscordSink(
            self,
            capabilities=self.capabilities_for,
            view_for=lambda job, phase: self.view_for(job, phase),
            clock=self.clock,
        )
        self._runner = JobRunner(
            JobStore(self._db),
            self.providers,
            sink,
            settings.jobs,
            settings.imagine,
            http=self._http_client,
            clock=self.clock,
            heartbeat=heartbeat_path(settings),
            catalogue=self._catalogue,
            on_provider_problem=self.report_provider_problem,
            on_blocked=self.on_provider_block,
            budgets=self.budgets,
            callback_fallback=settings.callbacks.fallback_poll_seconds,
        )
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self._sync_commands()
        await self._runner.start()
        if settings.callbacks.enabled:
            self._callbacks = CallbackServer(
                host=settings.callbacks.listen_host,
                port=settings.callbacks.listen_port,
                hmac_key=settings.secret("kie_webhook_hmac_key") or "",
                on_callback=self._runner.called_back,
            )
            await self._callbacks.start()

    async def _sync_commands(self) -> None:
        if self.settings.discord.guild_ids:
            for guild_id in self.settings.discord.guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()

    async def record_moderation(self, guild_id: int, action: str, text: str, **audit: Any) -> None:
        """Store a moderation event and post it to the server's moderation log channel, if it has one."""
        await self.moderation.audit(guild_id, action, **audit)
        channel_id = (await self.moderation.guild(guild_id)).log_channel_id
        if channel_id is None:
            return
        prompt = audit.get("prompt")
        body = text + (f"\nPrompt: {discord.utils.escape_markdown(str(prompt))[:1500]}" if prompt else "")
        try:
            await self.get_partial_messageable(channel_id).send(body, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:
            log.warning("could not post to the moderation log channel %s: %s", channel_id, exc.status)

    async def on_provider_block(self, job: Job) -> None:
        """A provider's safety filter blocked a job: log it, and cool the member down if it keeps happening."""
        if job.guild_id is None or job.user_id is None or job.source != "discord":
            return
        mod = self.settings.moderation
        await self.record_moderation(
            job.guild_id,
            "provider_block",
            f"{job.provider} blocked an image for <@{job.user_id}> in <#{job.channel_id}> (job {job.id}).",
            target_id=job.user_id,
            channel_id=job.channel_id,
            job_id=job.id,
            prompt=job.request.prompt,
            reason=job.error_message,
        )
        since = self.clock() - mod.block_window_minutes * 60
        blocks = await self.moderation.recent_provider_blocks(job.guild_id, job.user_id, since)
        if blocks >= mod.block_limit and await self.moderation.active_ban(job.guild_id, job.user_id) is None:
            until = self.clock() + mod.cooldown_minutes * 60
            reason = f"{blocks} provider content blocks within {mod.block_window_minutes:g} minutes"
            await self.moderation.ban(
                job.guild_id, job.user_id, reason=reason, expires_at=until, by=None, kind="cooldown"
            )
            await self.record_moderation(
                job.guild_id,
                "cooldown",
                f"<@{job.user_id}> is on a cooldown until <t:{int(until)}:f>: {reason}.",
                target_id=job.user_id,
                reason=reason,
            )

    async def report_provider_problem(self, provider: str, exc: ProviderError | None) -> None:
        """A provider's key was rejected or its credit ran out: record it and tell the admins once."""
        if exc is None:
            await self.settings_store.mark_provider(
                provider, healthy=True, category=None, detail="accepted a job again", now=self.clock()
            )
            log.info("provider %s works again", provider)
            return
        changed = await self.settings_store.mark_provider(
            provider, healthy=False, category=str(exc.category), detail=exc.user_message, now=self.clock()
        )
        log.error("provider %s needs attention (%s): %s", provider, exc.category, exc.detail)
        channel_id = self.settings.admin.alert_channel_id
        if not changed or channel_id is None:
            return
        channel = self.get_partial_messageable(channel_id)
        await channel.send(
            f"⚠️ Provider **{provider}** needs attention: {exc.user_message} "
            "Jobs fail over to the next provider meanwhile. `/admin providers` shows the state.",
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def on_ready(self) -> None:
        user = self.user
        log.info("connected as %s (%s) in %d guild(s)", user, user.id if user else "?", len(self.guilds))

    async def shutdown(self, grace: float) -> None:
        """Stop gracefully: no new job steps, ``grace`` seconds for those in flight, then ``close()``."""
        if self._runner is not None:
            await self._runner.stop(grace=grace)
        await self.close()

    async def close(self) -> None:
        # Order: stop taking new work, then the gateway, then what the jobs use.
        if self._callbacks is not None:
            await self._callbacks.stop()
            self._callbacks = None
        if self._runner is not None:
            await self._runner.stop()
        await super().close()
        for provider in self.providers.values():
            await provider.aclose()
        if self._http_client is not None:
            await self._http_client.aclose()
        if self._db is not None:
            await self._db.close()
