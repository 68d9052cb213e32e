"""Which replies to the bot's images are chat rather than edits (cogs/replies.py ``is_chatter``): the
reactions members post under an image (a server's own emoji, a GIF from Discord's picker, a rating, slang)
start nothing, while short instructions still do. The flow through Discord is in
tests/e2e/test_reply_review_fixes.py."""

from __future__ import annotations

import pytest

from cogs.replies import is_chatter


@pytest.mark.parametrize(
    "text",
    [
        # A server's custom emoji, as Discord writes it in the message's text, alone or after a word.
        "<:kekw:1234567890123456789>",
        "<a:catjam:1234567890123456789>",
        "lol <a:catjam:1234567890123456789>",
        "nice <:pog:1234567890123456789> <:pog:1234567890123456789>",
        ":kekw:",  # an emoji's name the client left as text
        # Discord's GIF picker posts the GIF's page as the reply's text.
        "https://tenor.com/view/cat-dance-happy-gif-25766012",
        "https://giphy.com/gifs/reaction-wow-3o7TKSjRrfIPjeiVyM",
        "<https://tenor.com/view/wow-gif-1234>",
        # Ratings and numbers.
        "10/10",
        "11/10 love it",
        "9.5/10",
        "4/5",
        "95/100",
        "100",
        "100%",
        # Slang.
        "W",
        "L",
        "bruh",
        "lmaooo",
        "LMFAOOO",
        "fr fr",
        "frfr",
        "W bot",
        "good bot",
        "this is fire fr",
        "sheesh",
        "nahh",
        "ayyy",
        "mid",
        "goated",
        "kekw",
        "k",
        "ok k",
    ],
)
def test_reactions_are_chatter(text: str) -> None:
    assert is_chatter(text), text


@pytest.mark.parametrize(
    "text",
    [
        # Short instructions, some sharing words with chat.
        "bigger",
        "make it red",
        "no hat",
        "4k",
        "1080p",
        "2x",
        "16:9",
        "--ar 16:9",
        # A shape written with "/" (no score is out of 9 or 16), and a size written apart from its number:
        # each was read as chat (a rating; a number and "k").
        "16/9",
        "9/16",
        "16/10",
        "4 K",
        "2 k",
        "1080 p",
        "w/ a hat",
        "a goat",
        "a cap",
        "darker",
        "again",
        "ok but bigger",
        # A link beside words is a reference the member names, not a GIF on its own.
        "make it like https://example.com/style.png",
        "10/10 but at night",
    ],
)
def test_short_instructions_are_not_chatter(text: str) -> None:
    assert not is_chatter(text), text
