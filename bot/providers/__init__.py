"""The providers the bot can use: a list of adapter classes, each declared once on its class
(bot/providers/_adapter.py). The settings, `bananacord check`, the secrets list and moderation read
this list; adding a provider is adding its class here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.errors import BananacordError, ConfigError
from bot.providers._adapter import HttpAdapter
from bot.providers.gemini import GeminiProvider
from bot.providers.keys import EMPTY, NOT_ASCII, NOT_SET, WHITESPACE, SecretProblem, key_text_problem
from bot.providers.kie import KieProvider, SinancodeProvider
from bot.providers.seaart import SeaArtProvider
from bot.providers.segmind import SegmindProvider

if TYPE_CHECKING:
    import httpx

    from bot.config import Settings
    from bot.providers.base import Provider

# In the default failover order.
PROVIDERS: tuple[type[HttpAdapter], ...] = (
    SeaArtProvider,
    KieProvider,
    SinancodeProvider,
    SegmindProvider,
    GeminiProvider,
)
_BY_NAME: dict[str, type[HttpAdapter]] = {provider.name: provider for provider in PROVIDERS}


class UnknownProviderError(BananacordError):
    """A provider name that no adapter serves."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown provider `{name}`. Known providers: {', '.join(sorted(_BY_NAME))}.")


def provider_class(name: str) -> type[HttpAdapter]:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownProviderError(name) from None


def enabled_providers(settings: Settings) -> list[type[HttpAdapter]]:
    return [provider for provider in PROVIDERS if provider.enabled(settings)]


def build_providers(settings: Settings, client: httpx.AsyncClient) -> dict[str, Provider]:
    """Every enabled provider; a missing key for an enabled provider is a ConfigError."""
    built: dict[str, Provider] = {p.name: p.from_settings(settings, client) for p in enabled_providers(settings)}
    if not built:
        raise ConfigError("[providers]", "no provider is enabled", "Enable at least one, e.g. [providers.seaart].")
    return built


def key_problem(provider: type[HttpAdapter], settings: Settings) -> SecretProblem | None:
    """What is wrong with ``provider``'s key (whether or not it is enabled), or None if its adapter takes it."""
    problem = key_text_problem(provider.key(settings), provider.key_spaces)
    if problem is None:
        return None
    disable = f"disable [providers.{provider.name}]"
    fix = {
        NOT_SET: f"Export it, or {disable}.",
        EMPTY: f"Export your {provider.label} API key as {provider.key_env}, or {disable}.",
        WHITESPACE: f"Export the key without spaces or line breaks, or {disable}.",
        NOT_ASCII: f"Export the key exactly as {provider.label} shows it (a pasted no-break space?), or {disable}.",
    }[problem]
    return SecretProblem(provider.key_env, problem, fix)


def missing_keys(settings: Settings) -> list[SecretProblem]:
    """The keys enabled providers need that are not set, or that their adapters would refuse."""
    return [problem for p in enabled_providers(settings) if (problem := key_problem(p, settings)) is not None]
