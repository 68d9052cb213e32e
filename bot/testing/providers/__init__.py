"""Fake image-provider servers that speak each provider's real HTTP protocol over a socket.

Used by the tests and by `bananacord demo`; `python -m bot.testing.providers` runs them standalone.
Every fake accepts the names in ``COMMON_OUTCOMES`` in ``script()`` besides its provider-specific ones.
"""

from bot.testing.providers._base import (
    COMMON_OUTCOMES,
    FAULTS,
    Chaos,
    ChaosEvent,
    FakeProviderServer,
    Recorded,
    make_png,
    noise_png,
    pixel_size,
)
from bot.testing.providers.gemini import GEMINI_OUTCOMES, FakeGemini
from bot.testing.providers.kie import KIE_OUTCOMES, SINANCODE_OUTCOMES, FakeKie
from bot.testing.providers.seaart import SEAART_OUTCOMES, FakeJob, FakeSeaArt, image_size_for
from bot.testing.providers.segmind import SEGMIND_OUTCOMES, FakeSegmind

__all__ = [
    "COMMON_OUTCOMES",
    "FAULTS",
    "GEMINI_OUTCOMES",
    "KIE_OUTCOMES",
    "SEAART_OUTCOMES",
    "SEGMIND_OUTCOMES",
    "SINANCODE_OUTCOMES",
    "Chaos",
    "ChaosEvent",
    "FakeGemini",
    "FakeJob",
    "FakeKie",
    "FakeProviderServer",
    "FakeSeaArt",
    "FakeSegmind",
    "Recorded",
    "image_size_for",
    "make_png",
    "noise_png",
    "pixel_size",
]
