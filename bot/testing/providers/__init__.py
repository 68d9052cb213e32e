"""Fake image-provider servers that speak each provider's real HTTP protocol over a socket.

Used by the tests and by `bananacord demo`; `python -m bot.testing.providers` runs them standalone.
"""

from bot.testing.providers._base import FakeProviderServer, Recorded, make_png, pixel_size
from bot.testing.providers.seaart import SEAART_OUTCOMES, FakeJob, FakeSeaArt, image_size_for

__all__ = [
    "SEAART_OUTCOMES",
    "FakeJob",
    "FakeProviderServer",
    "FakeSeaArt",
    "Recorded",
    "image_size_for",
    "make_png",
    "pixel_size",
]
