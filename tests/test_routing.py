"""Choosing a provider (bot/routing.py): the same search for a new job and for failover."""

from __future__ import annotations

import pytest

from bot.catalogue import Catalogue
from bot.config import load_settings
from bot.errors import InvalidRequestError
from bot.models import GenerationRequest, ReferenceImage
from bot.routing import choose_provider

ALL = {name: {"enabled": True} for name in ("seaart", "kie", "segmind", "gemini")}


def request(**kw: object) -> GenerationRequest:
    return GenerationRequest(model="nano_banana_2", prompt="a banana", **kw)  # type: ignore[arg-type]


def test_model_nobody_serves_is_refused_clearly() -> None:
    cat = Catalogue(load_settings(None, providers={"seaart": {"enabled": False}, "kie": {"enabled": True}}))
    with pytest.raises(InvalidRequestError, match="not available"):
        choose_provider(cat, GenerationRequest(model="nano_banana_3", prompt="x"))
    assert cat.models() == ["nano_banana_2", "nano_banana_pro"]


def test_the_first_provider_that_can_take_the_options_is_chosen() -> None:
    cat = Catalogue(load_settings(None, providers=ALL))
    assert choose_provider(cat, request())[0] == "seaart"
    assert choose_provider(cat, request(), first="gemini")[0] == "gemini"
    # Only Segmind honours a seed: it is chosen although it comes third in the route.
    provider, caps = choose_provider(cat, request(seed=42), first="kie")
    assert provider == "segmind" and caps.seed


def test_when_none_can_the_first_refusal_is_what_the_member_reads() -> None:
    cat = Catalogue(load_settings(None, providers={"seaart": {"enabled": True}, "kie": {"enabled": True}}))
    with pytest.raises(InvalidRequestError) as refused:
        choose_provider(cat, request(seed=1), first="kie")
    first_alone = Catalogue(load_settings(None, providers={"kie": {"enabled": True}}))
    with pytest.raises(InvalidRequestError) as kie_refusal:
        choose_provider(first_alone, request(seed=1))
    assert refused.value.user_message == kie_refusal.value.user_message


def test_a_safety_level_is_never_loosened() -> None:
    cat = Catalogue(load_settings(None, providers=ALL))
    assert choose_provider(cat, request(safety_tolerance=4))[0] == "seaart"
    assert choose_provider(cat, request(safety_tolerance=6))[0] == "segmind"
    only_filtered = Catalogue(load_settings(None, providers={"seaart": {"enabled": True}}))
    with pytest.raises(InvalidRequestError, match="safety level is 6"):
        choose_provider(only_filtered, request(safety_tolerance=6))


def test_failover_skips_the_providers_a_job_has_left() -> None:
    cat = Catalogue(load_settings(None, providers=ALL))
    assert choose_provider(cat, request(), skip={"seaart"})[0] == "kie"
    # A loose level leaves Segmind and Gemini; with both tried, nobody is left to take it.
    assert choose_provider(cat, request(safety_tolerance=6), skip={"segmind"})[0] == "gemini"
    with pytest.raises(InvalidRequestError):
        choose_provider(cat, request(safety_tolerance=6), skip={"segmind", "gemini"})


def test_too_many_references_for_every_provider_names_the_most_any_takes() -> None:
    cat = Catalogue(load_settings(None, providers={"seaart": {"enabled": True}, "kie": {"enabled": True}}))
    refs = tuple(
        ReferenceImage(url=f"https://cdn.example/{i}.png", content_type="image/png", size=100, filename=f"{i}.png")
        for i in range(15)
    )
    pro = GenerationRequest(model="nano_banana_pro", prompt="a banana", reference_images=refs)
    # kie, tried first, takes 8 on Pro; SeaArt takes 14: the refusal says 14.
    with pytest.raises(InvalidRequestError, match="at most 14 reference image") as refused:
        choose_provider(cat, pro, first="kie")
    assert "you gave 15" in refused.value.user_message
    # Nine fit SeaArt although kie, first, refuses them.
    assert choose_provider(cat, pro.model_copy(update={"reference_images": refs[:9]}), first="kie")[0] == "seaart"
