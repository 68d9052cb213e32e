"""Settings: a TOML file (``--config``), environment overrides, secrets only from the environment.

Precedence, highest first: environment (``BANANACORD_SECTION__KEY``), the TOML file, defaults.
Secrets (``DISCORD_TOKEN``, ``SEAART_API_KEY``) are read from the environment alone, so a config file
can be committed or pasted into a support thread without leaking a key. A ``BANANACORD_*`` variable that
names no setting is refused, naming it. ``load_settings(..., environment=False)`` reads no variable at all
(the demo and the tests: an operator's keys and overrides must never reach the fakes, or past them).
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
import tomllib
import types
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from bot.errors import ConfigError
from bot.providers import PROVIDERS
from bot.providers.base import ProviderSettings, Seconds, url_problem
from bot.providers.families import FAMILIES
from bot.providers.keys import key_text_problem

PROVIDER_NAMES: tuple[str, ...] = tuple(provider.name for provider in PROVIDERS)
# Environment variables that hold secrets (settings field -> variable); a TOML key with one of these
# names is refused. Each provider's key is declared on its adapter class.
SECRET_ENV_VARS: dict[str, str] = {
    "discord_token": "DISCORD_TOKEN",
    **{provider.key_field(): provider.key_env for provider in PROVIDERS},
    "kie_webhook_hmac_key": "KIE_WEBHOOK_HMAC_KEY",
}


LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiscordSettings(_Section):
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    # Guilds to sync commands to at start-up (instant); empty means global commands (can take up to an hour).
    guild_ids: list[int] = Field(default_factory=list)
    # "when-changed": a start sends the slash commands to Discord only if they differ from what it last sent
    # there, or Discord holds other names (bot/command_sync.py); "always": at every start.
    sync_commands: Literal["when-changed", "always"] = "when-changed"

    @field_validator("api_base_url", "gateway_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must be an http(s):// or ws(s):// URL")
        if (problem := url_problem(value)) is not None:
            raise ValueError(problem)
        return value.rstrip("/") if value.startswith("http") else value


class DatabaseSettings(_Section):
    # A leading ~ is the user's home; a relative path is relative to the working directory the bot is
    # started in (not to the config file's folder).
    path: Path = Path("bananacord.sqlite3")
    # How long a starting bot waits while another program holds the database's write lock (then it exits
    # 1 saying so). A running bot tells a member whose request meets the lock at once (cogs/in_time.py).
    busy_wait_seconds: Seconds = 30.0
    # How long one write of a running bot waits for another program's lock before it is refused (SQLite's
    # busy_timeout). Members are answered in time whatever this is (cogs/in_time.py); jobs keep what
    # they learn in memory and try again. Not under half a second: a slow disk's own writes take tens of
    # milliseconds, and a statement this long is taken for another program's lock.
    busy_timeout_seconds: float = Field(default=5.0, ge=0.5, le=60)

    @field_validator("path", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        """An empty path (``BANANACORD_DATABASE__PATH=`` in a compose file) was read as ``.``, the working
        folder: `run` refused it as a folder only after start-up began, and `health` crashed on it."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: it must name the SQLite file, e.g. /data/bananacord.sqlite3")
        if isinstance(value, str) and value.rstrip().endswith("/"):
            # Read as a path the slash is gone: "/data/db/" made a SQLite file named "db", while `check` said OK.
            raise ValueError(
                f"`{value}` names a folder, not the SQLite file in it: add the file's name (.../bananacord.sqlite3)"
            )
        return value

    @field_validator("path")
    @classmethod
    def _home(cls, value: Path) -> Path:
        expanded = _expand_home(value)
        if expanded.name in ("", ".", ".."):
            # Path(".").name is "": the heartbeat and lock files beside it could not even be named.
            raise ValueError(
                f"`{value}` names a folder, not the SQLite file in it: add the file's name (.../bananacord.sqlite3)"
            )
        return expanded


def _expand_home(value: Path) -> Path:
    """``~/bc/bot.sqlite3`` is in the home folder: a literal ``./~`` folder was made before."""
    try:
        return value.expanduser()
    except RuntimeError:  # ~name of no known user, or no home to expand ~ to
        raise ValueError(f"cannot expand {str(value).split('/', 1)[0]} to a home folder") from None


def _provider_section(provider: type[HttpAdapter]) -> type[ProviderSettings]:
    """[providers.NAME]: the provider's settings model with the defaults its class declares."""
    return create_model(
        f"{provider.__name__.removesuffix('Provider')}Settings",
        __base__=provider.settings_model,
        enabled=(bool, provider.enabled_by_default),
        base_url=(str, provider.default_base_url),
        request_timeout=(Seconds, provider.default_timeout),
    )


def _providers_settings() -> type[_Section]:
    sections = {provider.name: _provider_section(provider) for provider in PROVIDERS}
    fields: dict[str, Any] = {name: (section, Field(default_factory=section)) for name, section in sections.items()}
    return create_model("ProvidersSettings", __base__=_Section, **fields)


def _provider_keys() -> type[BaseSettings]:
    """One secret field per provider key (``seaart_api_key``), read from its environment variable alone."""
    fields: dict[str, Any] = {
        provider.key_field(): (SecretStr | None, Field(default=None, validation_alias=AliasChoices(provider.key_env)))
        for provider in PROVIDERS
    }
    return create_model("ProviderKeys", __base__=BaseSettings, **fields)


# Built from the provider classes; the type checker sees what every section and key has in common
# (sections are read by name: getattr(settings.providers, name), or a provider class's section()).
if TYPE_CHECKING:
    from bot.providers._adapter import HttpAdapter

    class ProvidersSettings(_Section): ...

    class ProviderKeys(BaseSettings): ...

else:
    ProvidersSettings = _providers_settings()
    ProviderKeys = _provider_keys()


def _default_routes() -> dict[str, list[str]]:
    return {family.model: list(PROVIDER_NAMES) for family in FAMILIES}


class ModelsSettings(_Section):
    """Which providers serve each model, in failover order. Disabled providers are skipped."""

    routes: dict[str, list[str]] = Field(default_factory=_default_routes)
    # Price overrides in US dollars per image: {provider: {model: {"1K": 0.067, ...}}}.
    prices_usd: dict[str, dict[str, dict[str, Decimal]]] = Field(default_factory=dict)
    # Rate-limit and transient retries happen inside one provider first; past that budget the job moves on.
    failover: bool = True

    @field_validator("prices_usd")
    @classmethod
    def _sizes(cls, value: dict[str, dict[str, dict[str, Decimal]]]) -> dict[str, dict[str, dict[str, Decimal]]]:
        return {provider: {m: _capital_sizes(sizes) for m, sizes in table.items()} for provider, table in value.items()}

    @field_validator("routes")
    @classmethod
    def _known(cls, routes: dict[str, list[str]]) -> dict[str, list[str]]:
        for model, providers in routes.items():
            unknown = [p for p in providers if p not in PROVIDER_NAMES]
            if unknown:
                raise ValueError(f"{model}: unknown provider(s) {unknown}; known: {', '.join(PROVIDER_NAMES)}")
        return routes


class TierSettings(_Section):
    """A role tier: members holding ``role_id`` get these limits (the most generous tier they hold wins)."""

    role_id: int
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None
    in_flight: int | None = None


def _default_units() -> dict[str, dict[str, int]]:
    # A unit is roughly one 1K Nano Banana 2 image; bigger and Pro images cost more
    # (docs/providers.md 2.11, 3.3, 4.1, 5.5, 6.8).
    return {
        "nano_banana_2": {"512": 1, "1K": 1, "2K": 2, "4K": 3},
        "nano_banana_pro": {"1K": 3, "2K": 3, "4K": 5},
    }


V = TypeVar("V")


def _capital_sizes(sizes: dict[str, V]) -> dict[str, V]:
    """A table keyed by size, written as prices and costs are looked up ("1K"): pydantic-settings lower-cases
    the keys of a variable (BANANACORD_QUOTAS__UNITS__NANO_BANANA_2__1K gave "1k"), so a size's cost or price
    could not be set from the environment at all."""
    capital: dict[str, V] = {}
    for size, value in sizes.items():
        if size.upper() in capital:
            raise ValueError(f"the size {size.upper()} is given twice ({size!r} and another spelling)")
        capital[size.upper()] = value
    return capital


# The member limit when no window is set at all (below).
DEFAULT_DAILY = 25
WINDOWS: tuple[str, ...] = ("daily", "weekly", "monthly")


class QuotaSettings(_Section):
    """Limits in units per window, per member; budgets per server. ``None`` means no limit.

    The windows go together, as a tier's do: set any of daily, weekly and monthly (in the file or the
    environment) and a window left out has no limit; set none and members get DEFAULT_DAILY a day."""

    enabled: bool = True
    # Windows reset at this hour in this time zone (IANA name); weeks start on Monday.
    timezone: str = "UTC"
    reset_hour: int = Field(default=0, ge=0, le=23)
    daily: int | None = Field(default=None, ge=0)
    weekly: int | None = Field(default=None, ge=0)
    monthly: int | None = Field(default=None, ge=0)
    # Requests a member may have running at once (the candidates of an /imagine count are one), and
    # images a whole server may (each candidate is one).
    in_flight_per_user: int | None = Field(default=2, ge=0)
    # Requests a member may have waiting to start, past that or the server's room, each when there is room
    # (bot/waiting_requests.py), as Midjourney queues a member's jobs; past these, a request is refused. 0:
    # refused at once, as before.
    waiting_per_user: int = Field(default=3, ge=0)
    in_flight_per_guild: int | None = Field(default=10, ge=0)
    # Per-server monthly budget, in units and in (estimated) US dollars.
    guild_monthly_units: int | None = Field(default=None, ge=0)
    guild_monthly_budget_usd: Decimal | None = Field(default=None, ge=0)
    # Members with this role (and the server owner) are never refused, but still recorded.
    unlimited_role_id: int | None = None
    tiers: dict[str, TierSettings] = Field(default_factory=dict)
    units: dict[str, dict[str, int]] = Field(default_factory=_default_units)

    @field_validator("units")
    @classmethod
    def _sizes(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        return {model: _capital_sizes(sizes) for model, sizes in value.items()}

    @model_validator(mode="before")
    @classmethod
    def _default_window(cls, data: Any) -> Any:
        """Before, daily was 25 unless set, so `weekly = 10` alone was refused (25 a day is more than 10 a
        week) and no daily limit could be had: TOML has no null. A deployment that set no window keeps 25."""
        if isinstance(data, dict) and not any(window in data for window in WINDOWS):
            return {**data, "daily": DEFAULT_DAILY}
        return data

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as UTC or Europe/Berlin)") from None
        return value


class ModerationSettings(_Section):
    # The safety tolerance (1 strictest .. 6 loosest) where no moderator has set one.
    default_level: int = Field(default=3, ge=1, le=6)
    # Members with this role count as moderators, besides those with Manage Messages.
    moderator_role_id: int | None = None
    # This many prompts blocked by a provider (the candidates of one /imagine count are one) within
    # block_window_minutes put a member on a cooldown.
    block_limit: int = Field(default=3, ge=1)
    block_window_minutes: float = Field(default=30, gt=0)
    cooldown_minutes: float = Field(default=60, gt=0)


class AdminSettings(_Section):
    # Members with this role count as bot admins, besides those with Manage Server.
    role_id: int | None = None
    # Channel where the bot reports provider problems (a rejected key, no credit left).
    alert_channel_id: int | None = None
    # A server that adds the bot gets one message saying how to start, in its system channel (cogs/welcome.py).
    welcome_new_servers: bool = True


class JobsSettings(_Section):
    # After this many seconds a job that has not finished is cancelled at the provider and marked expired.
    deadline_seconds: float = Field(default=600.0, gt=0)
    poll_interval_seconds: float = Field(default=3.0, gt=0)
    max_poll_interval_seconds: float = Field(default=15.0, gt=0)
    # A job's message is edited when its state changes; between changes at most this often. The elapsed
    # time ticks by itself (a Discord relative timestamp), so these edits only refresh the rest.
    progress_interval_seconds: float = Field(default=60.0, ge=0)
    # Job steps that talk to a provider's API (creates and polls) side by side, per provider (each provider
    # has each lane to itself, bot/dispatch.py); the request budget (requests_per_second per provider) is
    # what really paces them.
    concurrency: int = Field(default=8, ge=1)
    # Creates on APIs that answer with the image itself (Gemini; Segmind in mode "v1") side by side, per
    # provider: each waits for the whole drawing, seconds to minutes, using no CPU meanwhile. A lane of
    # their own, so members drawing on Gemini never hold up the creates and polls of other jobs.
    call_concurrency: int = Field(default=32, ge=1)
    # Deliveries side by side, per provider: downloading a result, checking or re-encoding it, uploading it.
    # A lane of their own, so a slow 4K download never holds up the polls of other jobs.
    delivery_concurrency: int = Field(default=16, ge=1)
    # On SIGTERM/SIGINT, job steps already talking to a provider get this long to finish (so a create in
    # flight gets its id stored) before they are cancelled.
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    # Waits before trying again to show how a job ended when Discord refused the edit: a 5xx usually
    # passes in seconds, an outage can take minutes; about nine minutes in all, inside the interaction
    # token's fifteen (past them the bot token edits). After the last the member is told by DM. A slow
    # request's ping Discord failed goes again after the same waits while fresh (cogs/ready_pings.py).
    final_edit_retry_seconds: tuple[float, ...] = Field(
        default=(1.0, 3.0, 10.0, 30.0, 60.0, 120.0, 300.0), max_length=20
    )

    # Waits between a restart's looks for the message of a job the last process held (it died while
    # acknowledging Discord) when Discord fails the look (a 503 or a timeout on a channel read): about
    # five minutes in all, in the background. After the last failed look the job ends cancelled and
    # uncharged, since nothing says the member ever saw it.
    held_look_retry_seconds: tuple[float, ...] = Field(
        default=(1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 60.0, 60.0, 60.0), max_length=20
    )

    @field_validator("final_edit_retry_seconds", "held_look_retry_seconds")
    @classmethod
    def _retry_waits_positive(cls, waits: tuple[float, ...]) -> tuple[float, ...]:
        if any(wait <= 0 for wait in waits):
            raise ValueError("every wait must be more than 0 seconds")
        return waits

    # "learned": poll where jobs of the same kind usually finish (bot/schedule.py); until it has seen
    # schedule_min_samples of a kind, where its siblings (same provider, model and resolution, any number
    # of references) finish, and without those either the backoff above; "backoff": always the backoff.
    poll_schedule: Literal["learned", "backoff"] = "learned"
    # Seconds between polls through the window where jobs usually finish: about the p95 of how long a
    # finished image waits before the member sees it.
    dense_poll_seconds: float = Field(default=1.5, gt=0)
    # Five: a new kind is learned within its first jobs (bench/poll_schedule.py); a window drawn from few
    # samples that misses costs at most the ceiling per job, and widens as samples come.
    schedule_min_samples: int = Field(default=5, ge=1)


class CallbacksSettings(_Section):
    """Providers that call back (kie.ai) wake a job at once instead of waiting for its next poll."""

    enabled: bool = False
    # The address providers reach this bot at (a reverse proxy in front of listen_host:listen_port);
    # callbacks go to {public_url}/callbacks/kie. The HMAC key comes from KIE_WEBHOOK_HMAC_KEY.
    public_url: str = ""
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8089, ge=0, le=65535)
    # A job expecting a callback is still polled this often, so a lost callback costs time, not the image.
    fallback_poll_seconds: float = Field(default=60.0, gt=0)
    # A create whose answer was lost (a timeout, a 504) may still have made a task: instead of failing at
    # once, the job waits this long for a callback naming a task it created (bot/lost_tasks.py). Kie
    # calls back when the task ends, so this is about as long as a task may run.
    lost_task_wait_seconds: float = Field(default=300.0, gt=0)

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL")
        if value and (problem := url_problem(value)) is not None:
            raise ValueError(problem)
        if "?" in value or "#" in value:
            # The bot appends /callbacks/kie and then the job's id as a query (bot/providers/kie.py).
            raise ValueError("must be the address alone, without a ?query or #fragment")
        return value.rstrip("/")


class MetricsSettings(_Section):
    """``GET /metrics`` for Prometheus (bot/metrics.py): jobs ended, how long they took, units and dollars charged,
    requests generating and waiting. Keep it on a private address: it is the operator's."""

    enabled: bool = False
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=9464, ge=0, le=65535)


class PrivacySettings(_Section):
    """How long the words of members' requests are kept after they end (bot/store/erasure.py, swept hourly by
    cogs/privacy.py). None keeps them, for /jobs search and for working on old images; a number of days erases
    older ones' words as a member's /privacy erases theirs (their figures and the accounting stay)."""

    keep_words_days: int | None = Field(default=None, ge=1, le=36_500)


class ImagineSettings(_Section):
    # None: the first provider of [models] routes that can take the request.
    default_provider: str | None = None
    default_model: str = "nano_banana_2"
    # Per reference image; providers fetch these URLs themselves.
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # Generated images larger than this are refused rather than downloaded.
    max_download_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # In total, per image (not per read): a server that drips bytes cannot hold a job longer than this.
    download_timeout_seconds: float = Field(default=60.0, gt=0)
    # Hosts (names or IP addresses) the bot may fetch images from although they are internal addresses,
    # for self-hosted set-ups; the provider and Discord base URL hosts are trusted already.
    trusted_hosts: list[str] = Field(default_factory=list)
    # Whole images held in memory at once, whatever the number of jobs in flight: downloads of up to
    # 4 MiB (a 1K result) kept in memory, images decoded to re-encode them (about 65 MB for a 4K one), and
    # provider answers carrying an image being read (bot/transport.py). Past this, downloads go to
    # temporary files, re-encodes wait their turn (bot/imagework.py) and such answers are read in turn.
    images_in_memory: int = Field(default=8, ge=1)
    # Of those, provider answers carrying an image inline (Gemini, Segmind) read at once: each is the image
    # as base64 in JSON (up to 67 MB for 4K) and its parse as much again, so they get fewer.
    answers_in_memory: int = Field(default=2, ge=1)
    # Threads that re-encode results over a channel's upload limit: CPU-bound, so about one per core.
    reencode_workers: int = Field(default=2, ge=1)
    # A request that took at least ping_after_seconds (from the member's command to its end in their
    # message) pings its member when it ends: an edit notifies nobody (cogs/ready_pings.py).
    ping_when_ready: bool = True
    ping_after_seconds: float = Field(default=45.0, ge=0)


@dataclass(frozen=True, slots=True)
class SettingsSources:
    """Where the settings came from, for `run`'s first log lines and `check`'s first output lines: the file
    read (None: none), the file looked for, the ``BANANACORD_*`` variables set (names only) and which of
    them override a key the file sets too."""

    file: Path | None = None
    looked_for: Path | None = None
    variables: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: the config file (absolute), or that there is none, and the variables in use."""
        if self.file is not None:
            said = f"config file {self.file.absolute()}"
        elif self.looked_for is not None:
            said = f"no config file found ({self.looked_for.absolute()}): defaults and BANANACORD_* variables"
        else:
            said = "no config file: defaults and BANANACORD_* variables"
        if self.variables:
            said += f"; set from the environment: {', '.join(self.variables)}"
        return said


# What the Settings being built reads besides its arguments: the TOML file (None: none) and whether the
# environment (load_settings(environment=False): not). Set by load_settings around the one construction, in
# a context variable rather than on a subclass made per call, which cost pydantic a model build each time.
_LOADING: ContextVar[tuple[Path | None, bool]] = ContextVar("settings_loading", default=(None, True))


class Settings(ProviderKeys):
    """Everything the bot reads at start-up. Built once in ``__main__`` and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="BANANACORD_",
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )
    # Set by load_settings: where these settings came from.
    _sources: SettingsSources = PrivateAttr(default_factory=SettingsSources)

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    providers: ProvidersSettings = Field(default_factory=ProvidersSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    imagine: ImagineSettings = Field(default_factory=ImagineSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    moderation: ModerationSettings = Field(default_factory=ModerationSettings)
    callbacks: CallbacksSettings = Field(default_factory=CallbacksSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    # Provider keys come from ProviderKeys, one field per provider.
    discord_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("DISCORD_TOKEN"))
    kie_webhook_hmac_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("KIE_WEBHOOK_HMAC_KEY"))

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No dotenv source: a .env file is never read, so there is nothing more to switch off.
        toml_path, read_environment = _LOADING.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings]
        if read_environment:
            sources.append(env_settings)
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def sources(self) -> SettingsSources:
        return self._sources

    def secret(self, name: str) -> str | None:
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value is not None else None

    def secret_values(self) -> list[str]:
        """Every secret that is set, for the log redaction filter."""
        return [value for name in SECRET_ENV_VARS if (value := self.secret(name))]


def _describe(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in SECRET_ENV_VARS:
        return SECRET_ENV_VARS[parts[0]]
    if parts and parts[0] in SECRET_ENV_VARS.values():
        return parts[0]
    if not parts:
        return "config"
    if len(parts) == 1:
        return parts[0]
    return f"[{'.'.join(parts[:-1])}] {parts[-1]}"


def _secret_variable(prefix: str, key: str) -> str:
    """The variable a secret written into the file at ``prefix + key`` belongs in: ``[providers.seaart]
    api_key`` is SEAART_API_KEY. Before, anything but a top-level ``seaart_api_key`` was told to "set the
    matching environment variable", leaving the operator to guess its name."""
    lowered = key.lower()
    if lowered in SECRET_ENV_VARS:
        return SECRET_ENV_VARS[lowered]
    section = prefix.rstrip(".").lower().split(".")
    if len(section) >= 2 and section[0] == "providers":
        for provider in PROVIDERS:
            if provider.name == section[1]:
                return provider.key_env
    if section[0] == "discord":
        return "DISCORD_TOKEN"
    if section[0] == "callbacks":
        return "KIE_WEBHOOK_HMAC_KEY"
    return f"the one it is ({', '.join(SECRET_ENV_VARS.values())})"


def _check_no_secrets(data: dict[str, Any], path: Path, prefix: str = "") -> None:
    for key, value in data.items():
        lowered = key.lower()
        if lowered in SECRET_ENV_VARS or lowered in {"token", "api_key", "key", "secret"}:
            raise ConfigError(
                f"{prefix}{key}",
                f"secrets are not read from {path}",
                f"Remove it from the file and set {_secret_variable(prefix, key)} in the environment instead.",
            )
        if isinstance(value, dict):
            _check_no_secrets(value, path, f"{prefix}{key}.")


class ConfigErrors(ConfigError):
    """Several settings are wrong at once: each is named (up to MAX_LISTED), so a file with three typos is
    not fixed one run at a time. ``setting``, ``problem`` and ``fix`` are the first error's."""

    MAX_LISTED: ClassVar[int] = 10

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors[: self.MAX_LISTED]
        self.more = len(errors) - len(self.errors)
        first = errors[0]
        super().__init__(first.setting, first.problem, first.fix)
        self.user_message = "\n".join(self.lines())
        self.detail = self.user_message

    def lines(self) -> list[str]:
        """One line per error, and one saying how many more there are past MAX_LISTED."""
        lines = [error.user_message for error in self.errors]
        if self.more:
            lines.append(f"... and {self.more} more; fix these and run `bananacord check` again.")
        return lines


def config_error(errors: list[ConfigError]) -> ConfigError:
    """One error as itself, several as a ConfigErrors listing each."""
    return errors[0] if len(errors) == 1 else ConfigErrors(errors)


def _unknown_key_fix(loc: tuple[str, ...]) -> str:
    """ "Did you mean ...?" for a key no section has: the closest name among the settings the model at that
    place has (``[jobs] deadline_second`` -> deadline_seconds, ``[quota]`` -> [quotas]). The variables'
    path said so already; a typo in the file only got "See config.example.toml"."""
    fix = "See config.example.toml for the valid keys."
    model = _annotation_at([part.lower() for part in loc[:-1]])
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return fix
    names = [name for name in model.model_fields if name not in SECRET_ENV_VARS]
    close = difflib.get_close_matches(loc[-1].lower(), names, n=1, cutoff=0.6)
    if not close:
        return fix
    annotation = model.model_fields[close[0]].annotation
    section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    meant = f"[{'.'.join([*loc[:-1], close[0]])}]" if section else close[0]
    return f"Did you mean {meant}? {fix}"


def _validation_errors(exc: ValidationError, variables: dict[str, tuple[str, ...]]) -> list[ConfigError]:
    """Every error pydantic found, each naming its setting (and the variable it came from) and the fix."""
    errors: list[ConfigError] = []
    for err in exc.errors():
        loc = tuple(str(part) for part in err["loc"])
        setting = _describe(loc)
        if (variable := _variable_for(loc, "", variables)) is not None:
            setting = f"{variable} ({setting})"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            errors.append(ConfigError(setting, "is not a known setting", _unknown_key_fix(loc)))
            continue
        if err["type"] == "value_error":
            # Our validators' own words, without pydantic's "Value error, " in front.
            message = str(err.get("ctx", {}).get("error", message))
        errors.append(
            ConfigError(setting, message[:1].lower() + message[1:], "See config.example.toml for what it accepts.")
        )
    return errors


def _file_has(data: Mapping[str, Any], parts: tuple[str, ...]) -> bool:
    """Whether the file's table ``data`` sets the setting at ``parts`` (compared as variables are read: in
    any case)."""
    node: Any = data
    for part in parts:
        if not isinstance(node, Mapping):
            return False
        key = next((key for key in node if key.lower() == part), None)
        if key is None:
            return False
        node = node[key]
    return True


def _overrides(data: Mapping[str, Any], path: Path, variables: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A warning for each variable that overrides a setting the file sets too. The Docker image sets
    BANANACORD_DATABASE__PATH, and a mounted config.toml's [database] path was silently ignored. Named,
    never shown: a value may carry a password (a proxy in a URL)."""
    warnings: list[str] = []
    for name, parts in variables.items():
        if not _file_has(data, parts):
            continue
        table = _structured(_annotation_at(list(parts)))
        described = f"[{parts[0]}]" if len(parts) == 1 and table else _describe(parts)
        wins = "the variable's values are used where both set a key" if table else "the variable's value is used"
        warnings.append(f"{name} overrides {described} set in {path}: {wins} (unset it to use the file's)")
    return tuple(warnings)


def load_settings(path: Path | None, *, required: bool = False, environment: bool = True, **overrides: Any) -> Settings:
    """Load settings; a user error becomes one ConfigError naming the setting and the fix.

    ``environment=False``: the file (if any), ``overrides`` and the defaults alone; no ``BANANACORD_*``
    variable, token or provider key is read. For the demo and the tests, which point the bot at fakes:
    an operator's exported overrides (a provider's real base_url) and keys must never reach them.
    """
    variables = _setting_variables() if environment else {}
    toml_path: Path | None = None
    data: dict[str, Any] = {}
    if path is not None:
        if path.exists():
            try:
                text = path.read_text(encoding="utf-8")
                if text.startswith("\ufeff"):
                    # Windows editors' "UTF-8 with BOM": TOML refuses the mark as "Invalid statement".
                    raise ConfigError(
                        str(path), "starts with a byte order mark (BOM), which TOML does not allow", "Save it as UTF-8."
                    )
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(str(path), f"is not valid TOML ({exc})", "Fix the syntax.") from None
            except UnicodeDecodeError as exc:
                # TOML is UTF-8 by definition; a file saved as Latin-1 or UTF-16 was a traceback.
                raise ConfigError(
                    str(path),
                    f"is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
                    "Save it as UTF-8.",
                ) from None
            except OSError as exc:
                raise ConfigError(str(path), f"cannot be read ({exc.strerror})", "Check the path.") from None
            _check_no_secrets(data, path)
            toml_path = path
        elif required:
            raise ConfigError(
                str(path),
                "does not exist",
                "Copy config.example.toml to config.toml and edit it, or pass --config PATH.",
            )

    loading = _LOADING.set((toml_path, environment))
    try:
        settings = Settings(**overrides)
    except SettingsError as exc:
        raise _unreadable_environment(exc) from None
    except ValidationError as exc:
        # Every error, not the first alone: a file with three typos was fixed one run at a time.
        raise config_error(_validation_errors(exc, variables)) from None
    finally:
        _LOADING.reset(loading)
    try:
        _check_consistency(settings)
    except ConfigError as exc:
        raise _named_by_environment(exc, variables) from None
    settings._sources = SettingsSources(
        file=toml_path,
        looked_for=path,
        variables=tuple(variables),
        overrides=_overrides(data, toml_path, variables) if toml_path is not None else (),
    )
    return settings


ENV_PREFIX = "BANANACORD_"


def _setting_variables() -> dict[str, tuple[str, ...]]:
    """Every ``BANANACORD_*`` variable set, with the setting it names (its path in lower case).

    One that names no setting is refused: pydantic-settings ignored it, so a typo
    (``BANANACORD_DATABASE_PATH``, ``BANANACORD_QUOTA__DAILY``) left the default in force while `check`
    said "configuration OK". Named, never shown: an operator may have put anything in it. Every such variable
    is named at once, as the file's typos are (one a run made fixing them a chore)."""
    found: dict[str, tuple[str, ...]] = {}
    unknown: list[ConfigError] = []
    for name in sorted(os.environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        if _annotation_at(list(parts)) is None:
            close = difflib.get_close_matches(name.upper(), _known_variables(), n=1, cutoff=0.75)
            unknown.append(
                ConfigError(
                    name,
                    "is not a known setting",
                    (f"Did you mean {close[0]}? " if close else "")
                    + "A setting is BANANACORD_<SECTION>__<KEY>, two underscores between section and key "
                    "(config.example.toml lists them); unset the variable if it is not meant for Bananacord",
                )
            )
            continue
        found[name] = parts
    if unknown:
        raise config_error(unknown)
    return found


def _known_variables(model: type[BaseModel] | None = None, prefix: str = ENV_PREFIX) -> list[str]:
    """The variable of every section and setting (not of the keys inside tables), for "did you mean"."""
    names: list[str] = []
    for field_name, field in (model or Settings).model_fields.items():
        name = prefix + field_name.upper()
        names.append(name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += _known_variables(annotation, name + "__")
    return names


def _setting_path(setting: str) -> tuple[str, ...] | None:
    """The path of a setting as errors name it: ``[quotas.tiers.gold] daily`` -> quotas, tiers, gold, daily."""
    match = re.fullmatch(r"\[([^\]]+)\](?: (\S+))?", setting)
    if match is None:
        return (setting,) if setting in Settings.model_fields else None
    return (*match[1].split("."), *([match[2]] if match[2] else []))


def _variable_for(loc: tuple[str, ...], message: str, variables: dict[str, tuple[str, ...]]) -> str | None:
    """The variable a value at ``loc`` came from: one naming it or a table around it (a JSON value), or
    else one naming a key inside it that ``message`` mentions (``[models] routes: `x` is not a model``)."""
    lowered = tuple(part.lower() for part in loc)
    around = [name for name, parts in variables.items() if lowered[: len(parts)] == parts]
    if around:
        return max(around, key=lambda name: len(variables[name]))
    inside = [
        name
        for name, parts in variables.items()
        if parts[: len(lowered)] == lowered and len(parts) > len(lowered) and parts[len(lowered)] in message.lower()
    ]
    return inside[0] if len(inside) == 1 else None


def _named_by_environment(exc: ConfigError, variables: dict[str, tuple[str, ...]]) -> ConfigError:
    """``exc`` naming the variables its settings came from: the setting it is about, and the others it
    compares it with (``[quotas] daily: 25 is more than [quotas] weekly (10)`` with weekly exported)."""
    if not variables:
        return exc
    said = f"{exc.problem}. {exc.fix}"
    loc = _setting_path(exc.setting)
    variable = _variable_for(loc, said, variables) if loc is not None else None
    others = [
        f"{described} is set by {name}."
        for name, parts in variables.items()
        if name != variable and len(parts) > 1 and (described := _describe(parts)) in said
    ]
    if variable is None and not others:
        return exc
    setting = f"{variable} ({exc.setting})" if variable is not None else exc.setting
    return ConfigError(setting, exc.problem, " ".join([exc.fix, *others]))


def _unreadable_environment(exc: SettingsError) -> ConfigError:
    """pydantic-settings reads a list or table from the environment as JSON, and a value that is not JSON
    (``BANANACORD_IMAGINE__TRUSTED_HOSTS=images.lan``) failed with a traceback naming only the section.
    Name the variable (never its value: an operator may have put anything there)."""
    match = re.search(r'field "([^"]+)"', str(exc))
    section = match.group(1) if match else ""
    prefix = f"BANANACORD_{section}".upper()
    for name, value in sorted(os.environ.items()):
        upper = name.upper()
        if section and upper != prefix and not upper.startswith(prefix + "__"):
            continue
        if not upper.startswith("BANANACORD_"):
            continue
        if not _structured(_annotation_at(upper.removeprefix("BANANACORD_").lower().split("__"))):
            continue
        try:
            json.loads(value)
        except ValueError as error:
            return ConfigError(
                name,
                f"is not valid JSON ({getattr(error, 'msg', error)}, at character {getattr(error, 'pos', 0)})",
                'A list or table set from the environment is written as JSON, e.g. ["a.example", "b.example"].',
            )
    return ConfigError(
        f"{prefix}__*" if section else "BANANACORD_*",
        "cannot be read from the environment",
        "Write lists and tables as JSON, e.g. [123, 456].",
    )


def _annotation_at(parts: list[str]) -> Any:
    """The type of the setting an environment variable's name leads to (None: no such setting)."""
    annotation: Any = Settings
    for part in parts:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return None
    return annotation


def _structured(annotation: Any) -> bool:
    """Whether pydantic-settings reads a value of this type from the environment as JSON."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_structured(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin in (list, dict, tuple, set):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _check_consistency(settings: Settings) -> None:
    """Refuse settings that are each valid but contradict one another, naming both."""
    jobs = settings.jobs
    if jobs.poll_interval_seconds > jobs.max_poll_interval_seconds:
        raise ConfigError(
            "[jobs] poll_interval_seconds",
            f"{jobs.poll_interval_seconds:g} is more than [jobs] max_poll_interval_seconds "
            f"({jobs.max_poll_interval_seconds:g})",
            "The first wait between polls grows up to the maximum; make it at most the maximum.",
        )
    if jobs.poll_interval_seconds >= jobs.deadline_seconds:
        raise ConfigError(
            "[jobs] poll_interval_seconds",
            f"{jobs.poll_interval_seconds:g} is not less than [jobs] deadline_seconds ({jobs.deadline_seconds:g})",
            "Every job would expire before its first poll; poll more often or allow longer.",
        )
    callbacks = settings.callbacks
    if callbacks.enabled and not callbacks.public_url:
        raise ConfigError(
            "[callbacks] public_url",
            "is empty, but [callbacks] enabled is true",
            "Set the address providers can reach this bot at, or disable callbacks.",
        )
    quotas = settings.quotas
    _check_windows("[quotas]", quotas.daily, quotas.weekly, quotas.monthly)
    for name, tier in quotas.tiers.items():
        _check_windows(f"[quotas.tiers.{name}]", tier.daily, tier.weekly, tier.monthly)
    _check_default_provider(settings)
    _check_default_model(settings)
    _check_model_tables(settings)


# The sizes each model is made in, as prices and unit costs are looked up ("1K"; a "1k" key is read as it).
MODEL_SIZES: dict[str, tuple[str, ...]] = {family.model: family.resolutions for family in FAMILIES}


def _check_model_tables(settings: Settings) -> None:
    """Keys of [models] routes, [models.prices_usd] and [quotas.units] name real models and sizes. A misspelt
    one (``nano_banana2``, ``"3K"``) was kept and never looked up: the route, price or cost it meant to set
    silently stayed the default."""
    models = settings.models
    for model in models.routes:
        _known_model("[models] routes", model)
    for provider, table in models.prices_usd.items():
        if provider not in PROVIDER_NAMES:
            raise ConfigError(
                "[models.prices_usd]", f"`{provider}` is not a provider", f"Use one of: {', '.join(PROVIDER_NAMES)}."
            )
        for model, prices in table.items():
            _known_model(f"[models.prices_usd.{provider}]", model)
            section = f"[models.prices_usd.{provider}.{model}]"
            for size, price in prices.items():
                _known_size(section, model, size)
                if not price.is_finite() or price < 0:
                    raise ConfigError(section, f'"{size}" is {price}', "A price is US dollars per image: 0 or more.")
    for model, units in settings.quotas.units.items():
        _known_model("[quotas.units]", model)
        section = f"[quotas.units] {model}"
        for size, cost in units.items():
            _known_size(section, model, size)
            if cost < 0:
                raise ConfigError(section, f'"{size}" is {cost}', "A cost is a number of units: 0 or more.")


def _known_model(setting: str, model: str) -> None:
    if model not in MODEL_SIZES:
        raise ConfigError(setting, f"`{model}` is not a model", f"Use one of: {', '.join(MODEL_SIZES)}.")


def _known_size(setting: str, model: str, size: str) -> None:
    if size not in MODEL_SIZES[model]:
        raise ConfigError(
            setting,
            f'"{size}" is not a size of {model}',
            f"Use one of: {', '.join(MODEL_SIZES[model])}.",
        )


def callbacks_key_missing(settings: Settings) -> ConfigError | None:
    """The error of running with callbacks enabled and no HMAC key to verify them by (None: not so).

    A secret the bot needs to run, as a provider's key is: `run` refuses without it and `check` names it,
    but commands that only read the database (`db`, `usage`) run without the bot's secrets."""
    if not settings.callbacks.enabled:
        return None
    # The same rule as a provider's key (bot/providers/keys.py): a blank key ("   ", a stray space in a
    # compose file) would verify callbacks against a guessable key, and kie.ai's real ones would fail.
    problem = key_text_problem(settings.secret("kie_webhook_hmac_key"))
    if problem is None:
        return None
    return ConfigError(
        "KIE_WEBHOOK_HMAC_KEY",
        f"{problem}, but [callbacks] enabled is true",
        "Export the webhook HMAC key exactly as kie.ai's settings page shows it: unsigned callbacks are refused.",
    )


def _check_default_provider(settings: Settings) -> None:
    """A default provider, when one is set, must be a provider and enabled (unset: routes decide)."""
    provider = settings.imagine.default_provider
    if provider is None:
        return
    if provider not in PROVIDER_NAMES:
        raise ConfigError(
            "[imagine] default_provider",
            f"`{provider}` is not a provider",
            f"Use one of: {', '.join(PROVIDER_NAMES)}.",
        )
    if not getattr(settings.providers, provider).enabled:
        raise ConfigError(
            "[imagine] default_provider",
            f"is `{provider}`, but [providers.{provider}] enabled is false",
            f"Enable [providers.{provider}] or choose an enabled provider.",
        )


def _check_default_model(settings: Settings) -> None:
    """The model a plain /imagine uses must exist and, when any provider is enabled, be served by one.
    Before, `check` flagged it but `run` started and refused every /imagine that named no model ("The
    model `nano_banana_3` is not available on this bot"). With no provider enabled, start-up and `check`
    say that instead, more plainly."""
    model = settings.imagine.default_model
    _known_model("[imagine] default_model", model)
    enabled = [provider for provider in PROVIDERS if provider.enabled(settings)]
    if enabled and not any(model in provider.models_for(settings) for provider in enabled):
        serving = [provider.name for provider in PROVIDERS if model in provider.models_for(settings)]
        raise ConfigError(
            "[imagine] default_model",
            f"is `{model}`, but no enabled provider serves it (enabled: {', '.join(p.name for p in enabled)})",
            f"Enable one that does ({', '.join(serving) or 'none'}) or choose another model.",
        )


def window_conflicts(limits: Mapping[str, int | None]) -> Iterator[tuple[str, int, str, int]]:
    """Each pair of limited windows, shorter first (short, its limit, long, its limit), where the shorter allows
    more than the longer, which then always binds first. The config refuses such limits at load
    (``_check_windows``), /quota set when they are asked for (bot/quotas.py ``window_conflict``)."""
    limited = [(name, limit) for name in WINDOWS if (limit := limits.get(name)) is not None]
    for (short, short_limit), (long, long_limit) in itertools.combinations(limited, 2):
        if short_limit > long_limit:
            yield short, short_limit, long, long_limit


def _check_windows(section: str, daily: int | None, weekly: int | None, monthly: int | None) -> None:
    """A shorter window's limit may not exceed a longer one's: the longer limit would always bind first."""
    limits = {"daily": daily, "weekly": weekly, "monthly": monthly}
    for short, short_limit, long, long_limit in window_conflicts(limits):
        raise ConfigError(
            f"{section} {short}",
            f"{short_limit} is more than {section} {long} ({long_limit})",
            f"A {short} limit above the {long} one can never be reached; lower it or raise {long}.",
        )


def heartbeat_path(settings: Settings) -> Path:
    """The running bot touches this file from its job loop; `bananacord health` reads its age."""
    db = settings.database.path
    return db.with_name(db.name + ".heartbeat")


def unread_mark_path(settings: Settings) -> Path:
    """Since when members' replies may be unread, while a catch-up has not read them all (bot/unread_mark.py)."""
    db = settings.database.path
    return db.with_name(db.name + ".replies-unread")
