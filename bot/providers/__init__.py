"""Provider registry: name -> factory. ``build_providers`` makes every enabled, keyed provider."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bot.config import Settings
from bot.errors import BananacordError, ConfigError
from bot.providers.base import Capabilities, Provider

log = logging.getLogger(__name__)


class UnknownProviderError(BananacordError):
    """A provider name that no adapter serves."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown provider `{name}`. Known providers: {', '.join(sorted(FACTORIES))}.")


@dataclass(frozen=True, slots=True)
class ProviderFactory:
    name: str
    key_env: str
    enabled: Callable[[Settings], bool]
    build: Callable[[Settings, httpx.AsyncClient], Provider]
    models: dict[str, Capabilities]


def _seaart(settings: Settings, client: httpx.AsyncClient) -> Provider:
    from bot.providers.seaart import SeaArtProvider

    key = settings.secret("seaart_api_key")
    if not key:
        raise ConfigError("SEAART_API_KEY", "is not set", "Export your SeaArt API key as SEAART_API_KEY.")
    cfg = settings.providers.seaart
    return SeaArtProvider(
        api_key=key,
        base_url=cfg.base_url,
        client=client,
        timeout=httpx.Timeout(cfg.request_timeout, connect=min(10.0, cfg.request_timeout)),
    )


def _factories() -> dict[str, ProviderFactory]:
    from bot.providers.seaart import SEAART_MODELS

    return {
        "seaart": ProviderFactory(
            name="seaart",
            key_env="SEAART_API_KEY",
            enabled=lambda s: s.providers.seaart.enabled,
            build=_seaart,
            models=SEAART_MODELS,
        ),
    }


FACTORIES: dict[str, ProviderFactory] = _factories()


def get_factory(name: str) -> ProviderFactory:
    try:
        return FACTORIES[name]
    except KeyError:
        raise UnknownProviderError(name) from None


def build_providers(settings: Settings, client: httpx.AsyncClient) -> dict[str, Provider]:
    """Every enabled provider; a missing key for an enabled provider is a ConfigError."""
    built: dict[str, Provider] = {}
    for name, factory in FACTORIES.items():
        if factory.enabled(settings):
            built[name] = factory.build(settings, client)
    if not built:
        raise ConfigError(
            "[providers]", "no provider is enabled", "Enable at least one, e.g. [providers.seaart]."
        )
    return built


def missing_keys(settings: Settings) -> list[str]:
    """Environment variables an enabled provider needs but that are not set."""
    return [
        f.key_env
        for f in FACTORIES.values()
        if f.enabled(settings) and not settings.secret(f.key_env.lower())
    ]
