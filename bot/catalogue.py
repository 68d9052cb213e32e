"""The model catalogue: which enabled provider serves which model, in what failover order, at what price."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal

from bot.config import PROVIDER_NAMES, Settings
from bot.providers import enabled_providers, provider_class
from bot.providers.base import Capabilities
from bot.providers.families import MODEL_NAMES

MICRO = Decimal(1_000_000)
__all__ = ["MODEL_NAMES", "Catalogue", "usd"]


def usd(micro: int | None) -> str:
    """Micro-dollars as a member-facing string: $0.067."""
    if micro is None:
        return "unknown"
    text = f"{Decimal(micro) / MICRO:.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


class Catalogue:
    """Capabilities (with configured prices) of every enabled provider, and the failover routes."""

    def __init__(self, settings: Settings, enabled: Iterable[str] | None = None) -> None:
        self.settings = settings
        # Providers whose key was rejected or whose credit ran out: tried last until they work again.
        self.unhealthy: set[str] = set()
        names = list(enabled) if enabled is not None else [p.name for p in enabled_providers(settings)]
        self._caps: dict[str, dict[str, Capabilities]] = {
            name: {
                model: self._priced(name, model, caps)
                for model, caps in provider_class(name).models_for(settings).items()
            }
            for name in names
        }

    def _priced(self, provider: str, model: str, caps: Capabilities) -> Capabilities:
        override = self.settings.models.prices_usd.get(provider, {}).get(model)
        if not override:
            return caps
        prices = dict(caps.prices_micro_usd)
        prices.update({size: int(value * MICRO) for size, value in override.items()})
        return replace(caps, prices_micro_usd=tuple(prices.items()))

    @property
    def providers(self) -> list[str]:
        return list(self._caps)

    def capabilities(self, provider: str, model: str) -> Capabilities | None:
        return self._caps.get(provider, {}).get(model)

    def models(self) -> list[str]:
        """Bot model names that at least one enabled provider serves, in a stable order."""
        seen = {m for caps in self._caps.values() for m in caps}
        return [m for m in MODEL_NAMES if m in seen] + sorted(seen - set(MODEL_NAMES))

    def display_name(self, model: str) -> str:
        return MODEL_NAMES.get(model, model)

    def route(self, model: str, *, first: str | None = None) -> list[str]:
        """Enabled providers serving ``model``, in configured failover order (``first`` moved to the front)."""
        order = self.settings.models.routes.get(model, list(PROVIDER_NAMES))
        serving = [p for p in order if model in self._caps.get(p, {})]
        # Providers that serve the model but were left out of the route still count, last.
        serving += [p for p in self._caps if model in self._caps[p] and p not in serving]
        if first is not None and first in serving:
            serving.remove(first)
            serving.insert(0, first)
        return sorted(serving, key=lambda p: p in self.unhealthy)  # stable: order kept otherwise

    def price(self, provider: str, model: str, resolution: str | None) -> int | None:
        caps = self.capabilities(provider, model)
        return caps.price(resolution) if caps else None
