"""Text from outside shown in the bot's messages (bot/render.py ``literal``): a member reads exactly what
was written, and nothing in it acts as Markdown: no masked link, bold, italics, strike-through or spoiler."""

from __future__ import annotations

import discord
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render import literal
from tests.discord_markdown import as_read, live_markdown

# Pieces hostile or just unlucky text is made of: Markdown marks, links bare and masked, backslashes.
PIECES = [
    "https://a.example/c_d_(e)",
    "[x](https://evil.example)",
    "\\[y](https://evil.example/2)",
    "**",
    "~~",
    "||",
    "\\",
    "_",
    "*",
    "`",
    "> ",
    "# ",
    "-# ",
    "<@1>",
    " ",
    "\n",
    "snake_case",
    "2*3*4",
]
TEXTS = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_text_is_shown_as_written_with_no_markdown_acting(text: str) -> None:
    shown = literal(text, 100_000)
    assert as_read(shown) == text
    assert live_markdown(shown) == []


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.integers(min_value=1, max_value=60))
def test_a_cut_keeps_to_the_limit_and_never_escapes_its_ellipsis(text: str, limit: int) -> None:
    shown = literal(text, limit)
    assert len(shown) <= limit
    if shown.endswith("…") and len(literal(text, 100_000)) > limit:
        kept = shown.removesuffix("…")
        assert not (len(kept) - len(kept.rstrip("\\"))) % 2, "a lone backslash would escape the ellipsis"
        assert live_markdown(kept) == []


def test_discord_s_own_escape_would_leave_a_second_link_live() -> None:
    """Why bot/render.py does not use discord.utils.escape_markdown: one line, two masked links."""
    text = "[a](https://evil.example/1) **b** [c](https://evil.example/2)"
    assert live_markdown(discord.utils.escape_markdown(text)) != []
    assert live_markdown(literal(text, 1000)) == []
