"""How Discord reads Markdown, as far as the tests need it: what a member sees of a text (a backslash
before a punctuation mark shows the mark alone), and what in it would act as Markdown or as a link."""

from __future__ import annotations

import re

_ESCAPED = re.compile(r"\\([^0-9A-Za-z\s])")
# A masked link, a bare link, bold, strike-through, spoiler, italics.
_LIVE = re.compile(r"\[[^\]]*\]\(|(?:https?|steam)://|\*\*|~~|\|\||(?<!\w)_[^_\s]|\*[^*\s]")


def as_read(value: str) -> str:
    """What a member sees of ``value``."""
    return _ESCAPED.sub(r"\1", value)


def live_markdown(value: str) -> list[str]:
    """The Markdown and links in ``value`` that Discord would act on; escaped pairs (a backslash and the
    mark after it) are taken out first, as Discord reads them."""
    return _LIVE.findall(_ESCAPED.sub("·", value))
