"""Small pieces of the words members read, kept apart from bot/render.py so that the command line's modules (the
usage and database commands, bot/quotas.py) use them without loading discord.py."""

from __future__ import annotations


def counted(count: int, word: str) -> str:
    """``count`` of ``word``, in the plural but for one: "1 image", "3 images"."""
    return f"{count} {word}{'' if count == 1 else 's'}"
