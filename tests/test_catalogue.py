"""The catalogue: failover order from config, disabled providers skipped, price overrides, unhealthy last."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.catalogue import Catalogue, usd
from bot.config import load_settings
from bot.errors import ConfigError


def settings(**kw: object):  # type: ignore[no-untyped-def]
    providers = {"seaart": {"enabled": True}, "kie": {"enabled": True}, "gemini": {"enabled": True}}
    return load_settings(None, providers=providers, **kw)


def test_route_follows_config_and_skips_disabled() -> None:
    cat = Catalogue(settings(models={"routes": {"nano_banana_2": ["gemini", "segmind", "seaart"]}}))
    # segmind is disabled; kie serves the model but is not in the route, so it comes last.
    assert cat.route("nano_banana_2") == ["gemini", "seaart", "kie"]
    assert cat.route("nano_banana_2", first="kie") == ["kie", "gemini", "seaart"]
    cat.unhealthy.add("gemini")
    assert cat.route("nano_banana_2") == ["seaart", "kie", "gemini"]


def test_price_override_in_dollars_becomes_micro_dollars() -> None:
    cat = Catalogue(settings(models={"prices_usd": {"seaart": {"nano_banana_2": {"1K": Decimal("0.0525")}}}}))
    assert cat.price("seaart", "nano_banana_2", "1K") == 52_500
    assert cat.price("seaart", "nano_banana_2", None) == 52_500  # the default size
    assert cat.price("seaart", "nano_banana_2", "4K") == 90_000  # untouched estimate
    assert usd(52_500) == "$0.0525" and usd(80_000) == "$0.08" and usd(None) == "unknown"


def test_unknown_provider_in_a_route_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\[models\] routes"):
        load_settings(None, models={"routes": {"nano_banana_2": ["seaart", "midjourney"]}})
