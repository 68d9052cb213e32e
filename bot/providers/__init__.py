"""Provider registry: name -> factory. ``build_providers`` makes every enabled provider."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bot.config import PROVIDER_NAMES, ProviderSettings, Settings
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
    settings: Callable[[Settings], ProviderSettings]
    build: Callable[[Settings, httpx.AsyncClient], Provider]
    models: Callable[[Settings], dict[str, Capabilities]]

    def enabled(self, settings: Settings) -> bool:
        return self.settings(settings).enabled

    def key(self, settings: Settings) -> str | None:
        return settings.secret(self.key_env.lower())


def _timeout(cfg: ProviderSettings) -> httpx.Timeout:
    return httpx.Timeout(cfg.request_timeout, connect=min(10.0, cfg.request_timeout))


def _require_key(settings: Settings, name: str) -> str:
    env = FACTORIES[name].key_env
    key = settings.secret(env.lower())
    if not key:
        raise ConfigError(env, "is not set", f"Export your {name} API key as {env}, or disable [providers.{name}].")
    return key


def _seaart(settings: Settings, client: httpx.AsyncClient) -> Provider:
    from bot.providers.seaart import SeaArtProvider

    cfg = settings.providers.seaart
    return SeaArtProvider(
        api_key=_require_key(settings, "seaart"), base_url=cfg.base_url, client=client, timeout=_timeout(cfg)
    )


def _kie(flavour: str) -> Callable[[Settings, httpx.AsyncClient], Provider]:
    def build(settings: Settings, client: httpx.AsyncClient) -> Provider:
        from bot.callbacks import PATH as KIE_CALLBACK_PATH
        from bot.providers.kie import KieProvider

        cfg = settings.providers.kie if flavour == "kie" else settings.providers.sinancode
        callbacks = settings.callbacks
        # Only kie.ai documents callBackUrl for these models (sinancode's is unconfirmed).
        callback_url = f"{callbacks.public_url}{KIE_CALLBACK_PATH}" if callbacks.enabled and flavour == "kie" else None
        return KieProvider(
            api_key=_require_key(settings, flavour),
            base_url=cfg.base_url,
            client=client,
            timeout=_timeout(cfg),
            flavour="kie" if flavour == "kie" else "sinancode",
            callback_url=callback_url,
        )

    return build


def _segmind(settings: Settings, client: httpx.AsyncClient) -> Provider:
    from bot.providers.segmind import SegmindProvider

    cfg = settings.providers.segmind
    return SegmindProvider(
        api_key=_require_key(settings, "segmind"),
        base_url=cfg.base_url,
        client=client,
        timeout=_timeout(cfg),
        mode=cfg.mode,
    )


def _gemini(settings: Settings, client: httpx.AsyncClient) -> Provider:
    from bot.providers.gemini import GeminiProvider

    cfg = settings.providers.gemini
    return GeminiProvider(
        api_key=_require_key(settings, "gemini"),
        base_url=cfg.base_url,
        client=client,
        timeout=_timeout(cfg),
        model_ids=cfg.model_ids,
    )


def _models(name: str) -> Callable[[Settings], dict[str, Capabilities]]:
    def models(settings: Settings) -> dict[str, Capabilities]:
        if name == "seaart":
            from bot.providers.seaart import SEAART_MODELS

            return SEAART_MODELS
        if name in ("kie", "sinancode"):
            from bot.providers.kie import KIE_MODELS, SINANCODE_MODELS

            return KIE_MODELS if name == "kie" else SINANCODE_MODELS
        if name == "segmind":
            from bot.providers.segmind import segmind_models

            return segmind_models(settings.providers.segmind.mode)
        from bot.providers.gemini import gemini_models

        return gemini_models(settings.providers.gemini.model_ids)

    return models


FACTORIES: dict[str, ProviderFactory] = {
    "seaart": ProviderFactory("seaart", "SEAART_API_KEY", lambda s: s.providers.seaart, _seaart, _models("seaart")),
    "kie": ProviderFactory("kie", "KIE_API_KEY", lambda s: s.providers.kie, _kie("kie"), _models("kie")),
    "sinancode": ProviderFactory(
        "sinancode",
        "SINANCODE_API_KEY",
        lambda s: s.providers.sinancode,
        _kie("sinancode"),
        _models("sinancode"),
    ),
    "segmind": ProviderFactory(
        "segmind", "SEGMIND_API_KEY", lambda s: s.providers.segmind, _segmind, _models("segmind")
    ),
    "gemini": ProviderFactory("gemini", "GEMINI_API_KEY", lambda s: s.providers.gemini, _gemini, _models("gemini")),
}
assert tuple(FACTORIES) == PROVIDER_NAMES, "config.PROVIDER_NAMES and the registry must agree"


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
        raise ConfigError("[providers]", "no provider is enabled", "Enable at least one, e.g. [providers.seaart].")
    return built


def missing_keys(settings: Settings) -> list[str]:
    """Environment variables an enabled provider needs but that are not set."""
    return [f.key_env for f in FACTORIES.values() if f.enabled(settings) and not f.key(settings)]
