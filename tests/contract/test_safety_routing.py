"""A channel's safety level goes only to a provider and model that honour it (bot/routing.py), and what the
chosen provider then receives, against the fakes over real sockets.

The levels are judged per provider and model (bot/moderation.py honoured_levels): Segmind's safety knob is on
one model only: NB2 takes ``safety_tolerance``, Pro does not (docs/providers.md 5.5). A Pro request at a
level looser than the no-knob ceiling must not run at Segmind's own default."""

from __future__ import annotations

import httpx
import pytest

from bot.catalogue import Catalogue
from bot.config import load_settings
from bot.errors import InvalidRequestError
from bot.models import GenerationRequest, UpdateStatus
from bot.moderation import NO_KNOB_CEILING
from bot.providers.gemini import safety_settings_for
from bot.routing import choose_provider
from tests.providers.helpers import ADAPTERS, NB2, PRO, PROMPT, SleepRecorder, run_to_end

LOOSE = NO_KNOB_CEILING + 2  # 6: "off" on Gemini, Segmind's loosest
ENABLED = ("seaart", "kie", "segmind", "gemini")


def catalogue(*enabled: str) -> Catalogue:
    return Catalogue(load_settings(None, providers={name: {"enabled": True} for name in enabled}))


def request(model: str, level: int) -> GenerationRequest:
    return GenerationRequest(model=model, prompt=PROMPT, safety_tolerance=level)


async def test_a_loose_level_stays_on_segmind_for_nb2_and_leaves_it_for_pro(client: httpx.AsyncClient) -> None:
    everything = catalogue(*ENABLED)
    # NB2 on Segmind has the knob: it is chosen, and Segmind receives the level itself (5.2).
    nb2 = request(NB2, LOOSE)
    provider, caps = choose_provider(everything, nb2, first="segmind")
    assert provider == "segmind" and caps.safety_knob
    segmind = ADAPTERS["segmind_v2"]
    async with segmind.make_fake() as fake:
        connected = segmind.connect(fake, client, SleepRecorder())
        assert (await run_to_end(connected, await connected.submit(nb2)))[-1].status is UpdateStatus.SUCCEEDED
        (create,) = fake.creates
        assert isinstance(create.json, dict) and create.json["safety_tolerance"] == LOOSE
    # Pro on Segmind has none: the next provider that honours the level takes it, Gemini, which is told it
    # (6.5: safetySettings) where Segmind would have dropped it and run at its own default.
    pro = request(PRO, LOOSE)
    provider, caps = choose_provider(everything, pro, first="segmind")
    assert provider == "gemini" and caps.safety_knob
    gemini = ADAPTERS["gemini"]
    async with gemini.make_fake() as fake:
        connected = gemini.connect(fake, client, SleepRecorder())
        assert (await run_to_end(connected, await connected.submit(pro)))[-1].status is UpdateStatus.SUCCEEDED
        (create,) = fake.creates
        assert isinstance(create.json, dict) and create.json["safetySettings"] == safety_settings_for(LOOSE)


@pytest.mark.parametrize("level", range(NO_KNOB_CEILING + 1, 7))
def test_with_no_provider_honouring_it_a_loose_level_on_pro_is_refused(level: int) -> None:
    without_gemini = catalogue("seaart", "kie", "segmind")
    with pytest.raises(InvalidRequestError, match=f"safety level is {level}") as refused:
        choose_provider(without_gemini, request(PRO, level), first="segmind")
    assert "Nano Banana Pro" in refused.value.user_message
    # Up to the ceiling Pro still runs on Segmind, as on every provider without a knob.
    assert choose_provider(without_gemini, request(PRO, NO_KNOB_CEILING), first="segmind")[0] == "segmind"


def test_mod_settings_names_the_levels_each_provider_honours_per_model() -> None:
    """`/mod settings` listed "segmind: 1-6" for both models, though Pro has no knob there."""
    from bot.catalogue import Catalogue
    from bot.config import load_settings
    from cogs.moderation import _honoured_by

    names = ("seaart", "segmind", "gemini")
    catalogue = Catalogue(load_settings(None, providers={name: {"enabled": True} for name in names}))
    assert _honoured_by(catalogue, "segmind") == "segmind: 1-6 for Nano Banana 2, 1-4 for Nano Banana Pro"
    assert _honoured_by(catalogue, "gemini") == "gemini: 1-6"
    assert _honoured_by(catalogue, "seaart") == "seaart: 1-4"
