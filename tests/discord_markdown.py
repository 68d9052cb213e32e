"""How Discord reads Markdown, as far as the tests need it: what a member sees of a text, and what in it
would act as Markdown. A bare link at the start or after a space is read whole (bot/render.py BARE_LINK);
elsewhere a backslash before a punctuation mark shows the mark alone."""

from __future__ import annotations

import re

from bot.render import BARE_LINK

_ESCAPED = re.compile(r"\\([^0-9A-Za-z\s])")
_LIVE = re.compile(r"\[[^\]]*\]\(|\*\*|~~|\|\||(?<![\\\w])_[^_\s]|(?<!\\)\*[^*\s]")


def _pieces(value: str) -> list[tuple[bool, str]]:
    """(is a bare link, text) in order."""
    pieces: list[tuple[bool, str]] = []
    at = 0
    for link in BARE_LINK.finditer(value):
        pieces += [(False, value[at : link.start()]), (True, link.group())]
        at = link.end()
    return [*pieces, (False, value[at:])]


def as_read(value: str) -> str:
    """What a member sees of ``value``."""
    return "".join(text if link else _ESCAPED.sub(r"\1", text) for link, text in _pieces(value))


def live_markdown(value: str) -> list[str]:
    """The Markdown in ``value`` that Discord would act on: a masked link, bold, italics, strike-through,
    spoiler. Bare links and escaped pairs (a backslash and the mark after it) are taken out first."""
    bare = " ".join(_ESCAPED.sub("·", text) for link, text in _pieces(value) if not link)
    return _LIVE.findall(bare)
