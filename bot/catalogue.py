"""The model catalogue: which enabled provider serves which model, in what failover order, at what price."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal

from bot.config import PROVIDER_NAMES, Settings
from bot.providers import enabled_providers, provider_class
from bot.providers.base import Capabilities
from bot.providers.families import MODEL_NAMES

MICRO = Decimal(1_000_000)
__all__ = ["MODEL_NAMES", "UNHEALTHY_RETRY_SECONDS", "Catalogue", "Unhealthy", "usd"]

# How long a provider whose key was rejected or whose credit ran out stays out of order (tried last, and a
# /preferences option only it offers left out: bot/preferences.py fill) before it is tried in turn again.
# Fixing either is its owner's work of minutes (a top-up, a new key), and no job but one that succeeds there
# clears a mark; a mark kept until then kept a saved png from Kie until a restart. Ten minutes: a top-up is
# honoured within them, while a provider still out of order costs one refused create (refused, so not billed)
# and one failover per ten minutes, and its owner is not alerted again (cogs/admin.py on_provider_problem).
UNHEALTHY_RETRY_SECONDS = 600.0


def usd(micro: int | None) -> str:
    """Micro-dollars as a member-facing string: $0.067."""
    if micro is None:
        return "unknown"
    text = f"{Decimal(micro) / MICRO:.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


class Unhealthy:
    """Providers out of order (a rejected key, no credit): ``provider in unhealthy`` while its mark is under
    ``lasts`` seconds old. A lapsed mark is kept (``marked``) until a job the provider takes clears it
    (``discard``), so that job still reports it working again (bot/job_submit.py)."""

    def __init__(self, *, clock: Callable[[], float] = time.time, lasts: float = UNHEALTHY_RETRY_SECONDS) -> None:
        self.lasts = lasts
        self._clock = clock
        self._marks: dict[str, float] = {}

    def add(self, provider: str, *, at: float | None = None) -> None:
        """Mark ``provider`` out of order from now, or from ``at`` (a mark recorded before a restart: bot/app.py
        reads them back, so the first job the provider takes afterwards still reports it working again).

        Never from later than now: a mark written while the clock ran ahead (set back since) would otherwise
        last as much longer than ``lasts``; one written a day ahead kept a provider tried last for a day."""
        now = self._clock()
        self._marks[provider] = now if at is None else min(at, now)

    def add_lapsed(self, provider: str) -> None:
        """Remember ``provider`` as marked without holding it back: tried in turn at once, and the first job it
        takes still reports it working again (``marked``; bot/job_submit.py). For a mark a restart has likely
        fixed (bot/app.py: a rejected key)."""
        self._marks[provider] = self._clock() - self.lasts

    def discard(self, provider: str) -> None:
        self._marks.pop(provider, None)

    def __contains__(self, provider: object) -> bool:
        marked_at = self._marks.get(provider) if isinstance(provider, str) else None
        return marked_at is not None and self._clock() < marked_at + self.lasts

    def marked(self, provider: str) -> bool:
        """Whether ``provider`` was marked and no job it took has cleared the mark since, lapsed or not."""
        return provider in self._marks

    def retry_at(self, provider: str) -> float | None:
        """When ``provider``'s mark lapses (or lapsed); None if it has none."""
        marked_at = self._marks.get(provider)
        return None if marked_at is None else marked_at + self.lasts


class Catalogue:
    """Capabilities (with configured prices) of every enabled provider, and the failover routes."""

    def __init__(
        self, settings: Settings, enabled: Iterable[str] | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        # Providers whose key was rejected or whose credit ran out: tried last until they work again, or
        # until their mark lapses (UNHEALTHY_RETRY_SECONDS) and they are tried in turn again.
        self.unhealthy = Unhealthy(clock=clock)
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

    def first_choice(self, model: str, *candidates: str | None) -> str | None:
        """The first of ``candidates`` that serves ``model`` here, or None: the provider /imagine moves to the
        front of the route (cogs/policy.py admit: the server's stored provider, then ``[imagine]
        default_provider``). A stored provider the operator has since turned off, or one that does not serve
        the model, is passed over for the next, not for the bare route order."""
        serving = self.route(model)
        return next((name for name in candidates if name is not None and name in serving), None)

    def price(self, provider: str, model: str, resolution: str | None) -> int | None:
        caps = self.capabilities(provider, model)
        return caps.price(resolution) if caps else None
