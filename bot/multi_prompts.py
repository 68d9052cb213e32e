"""Midjourney's multi-prompts, ``space:: ship`` and ``a cat::2 a dog``, said in words Nano Banana takes.

On Midjourney ``::`` splits a prompt into parts drawn as separate ideas ("space:: ship" is space and a ship, not a
spaceship), and a number after it weighs the part before it ("a cat::2 a dog": the cat counts twice as much); a
negative weight leaves the part out (``--no X`` is ``X::-.5``). Nano Banana reads words only: sent as typed, "::2"
is noise the model may draw, and the weight is lost. So the parts are joined as a list, the heaviest named ("with
the most emphasis on a cat"), and the parts weighed below zero said as ``--no``'s are ("without food").

Only ``::`` with a space, a comma or the end after it (a weight between) counts: "std::vector" and "a::b" are words,
as is one in a link or an address ("http://[1::1").
Parsing is one pass of one regex over the words, whatever they hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "::", a weight or none, then a space, a comma, a colon or the end: a separator. The weight is at most six digits
# either side of a point ("::2", "::1.5", "::.5", "::-1").
_WORD = re.compile(r"\S+")
_SEPARATOR = re.compile(r"::(-?(?:[0-9]{1,6}(?:\.[0-9]{0,6})?|\.[0-9]{1,6}))?(?=[\s,;:]|$)")


@dataclass(frozen=True, slots=True)
class MultiPrompt:
    """A prompt's parts in words: ``drawn`` what to draw (the weighed parts listed, the heaviest named), ``left_out``
    the parts weighed at or below zero, said as "without" each."""

    drawn: str
    left_out: tuple[str, ...] = ()


def read_multi_prompt(words: str) -> MultiPrompt:
    """``words`` with Midjourney's ``::`` parts said as Nano Banana takes them; as typed where there is no
    separator."""
    parts: list[tuple[str, float]] = []
    start = 0
    # Word by word, each read once: a separator never spans a space, and one within a link or an address
    # ("http://[1::1 in neon", "[::1]") is the address's. Searching back for each separator's word was quadratic.
    for word in _WORD.finditer(words):
        if "::" not in word[0] or "://" in word[0] or "[" in word[0]:
            continue
        for found in _SEPARATOR.finditer(words, word.start(), word.end()):
            parts.append((words[start : found.start()], float(found[1]) if found[1] else 1.0))
            start = found.end()
    if not parts:
        return MultiPrompt(words)
    parts.append((words[start:], 1.0))
    # A part's own edges lose the list's punctuation and stray colons ("a cat,::2" is "a cat").
    named = [(text.strip(" \t\n,;:"), weight) for text, weight in parts]
    named = [(text, weight) for text, weight in named if text]
    drawn = [(text, weight) for text, weight in named if weight > 0]
    if not drawn:
        # Midjourney refuses weights that add up to nothing; here the parts are drawn as typed, weights aside.
        return MultiPrompt(", ".join(text for text, _ in named))
    listed = ", ".join(text for text, _ in drawn)
    heaviest = max(weight for _, weight in drawn)
    if any(weight != heaviest for _, weight in drawn):
        most = " and ".join(text for text, weight in drawn if weight == heaviest)
        listed += f", with the most emphasis on {most}"
    return MultiPrompt(listed, tuple(text for text, weight in named if weight <= 0))
