"""Bananacord: Google's Nano Banana image models in a Discord server."""

__version__ = "0.1.0"
