"""Midjourney's permutation prompts: ``a {red, green} bird`` is two prompts, ``a red bird`` and ``a green bird``.

Members coming from Midjourney write a choice in braces to compare a few words side by side in one command. Here
each prompt is one image of a batch (cogs/imagine.py), so the choices multiply up to the server's images per
command. A brace group is a choice only when it holds a comma at its own level: ``a sign saying {hello}`` and a
brace left open are words, sent as typed. Groups nest (``a {red {car, bus}, bike}``: red car, red bus, bike) and
several multiply (``a {red, blue} {car, bus}``: four). ``\\,`` is a comma inside a choice that does not split it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

# A group's choices are counted before any is written out: ``{a,b}`` thirty times is a billion prompts, refused
# by their number without being made. Counting stops past this.
COUNT_CEILING = 10_000


@dataclass(frozen=True)
class Variant:
    """One prompt of a permutation, and the choice it took in each group, in order (what tells it apart)."""

    text: str
    picks: tuple[str, ...]


@dataclass(frozen=True)
class _Group:
    options: tuple[_Sequence, ...]


# A run of words and groups, in order.
_Sequence = tuple["str | _Group", ...]


class TooManyPrompts(ValueError):
    """The choices make more prompts than allowed; ``count`` is how many (at least ``COUNT_CEILING`` past it)."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} prompts")
        self.count = count


# Deeper than this, braces are words: no member nests choices so, and the parse recurses once per level.
MOST_NESTED = 8


def _matches(text: str) -> tuple[dict[int, int], int]:
    """Where each ``{`` that is closed is closed (by position), and how deep they nest. An escaped brace or
    comma (``\\{``) is no mark; a ``}`` with no ``{`` open is a character."""
    matched: dict[int, int] = {}
    open_at: list[int] = []
    deepest = 0
    at = 0
    while at < len(text):
        char = text[at]
        if char == "\\" and text[at + 1 : at + 2] in _ESCAPED:
            at += 2
            continue
        if char == "{":
            open_at.append(at)
            deepest = max(deepest, len(open_at))
        elif char == "}" and open_at:
            matched[open_at.pop()] = at
        at += 1
    return matched, deepest


_ESCAPED = (",", "{", "}")


def _parse(text: str, start: int, end: int, matched: dict[int, int], *, inside: bool) -> list[_Sequence]:
    """The options between ``start`` and ``end``: split at the commas of this level when ``inside`` a group's
    braces, else all of it as one."""
    options: list[_Sequence] = []
    parts: list[str | _Group] = []
    word: list[str] = []

    def flush() -> None:
        if word:
            parts.append("".join(word))
            word.clear()

    at = start
    while at < end:
        char = text[at]
        if char == "\\" and text[at + 1 : at + 2] in _ESCAPED:
            # Inside a group the escape is taken out (``\\,`` is a comma of the choice); elsewhere kept as typed.
            word.append(text[at + 1] if inside else text[at : at + 2])
            at += 2
        elif char == "{" and at in matched:
            inner = _parse(text, at + 1, matched[at], matched, inside=True)
            flush()
            if len(inner) > 1:
                parts.append(_Group(tuple(inner)))
            else:
                # No comma at its level: words in braces, kept with them (a choice inside them still counts).
                parts.extend(("{", *inner[0], "}"))
            at = matched[at] + 1
        elif char == "," and inside:
            flush()
            options.append(tuple(parts))
            parts = []
            at += 1
        else:
            word.append(char)
            at += 1
    flush()
    options.append(tuple(parts))
    return options


def _sequence(text: str) -> _Sequence | None:
    """``text`` as words and groups; None when it holds no choice (or nests them past ``MOST_NESTED``)."""
    matched, deepest = _matches(text)
    if not matched or deepest > MOST_NESTED:
        return None
    sequence = _parse(text, 0, len(text), matched, inside=False)[0]
    return sequence if any(isinstance(part, _Group) for part in sequence) else None


def _count(sequence: _Sequence) -> int:
    total = 1
    for part in sequence:
        if isinstance(part, _Group):
            total = min(total * sum(_count(option) for option in part.options), COUNT_CEILING)
    return total


def _written(sequence: _Sequence) -> list[tuple[str, tuple[str, ...]]]:
    """Each prompt the sequence makes, with the choice it took in each of its groups (the option as written out,
    groups inside it included)."""
    pieces: list[list[tuple[str, tuple[str, ...]]]] = []
    for part in sequence:
        if isinstance(part, _Group):
            pieces.append([(text, (text.strip(),)) for option in part.options for text, _ in _written(option)])
        else:
            pieces.append([(part, ())])
    return [
        ("".join(text for text, _ in combination), tuple(pick for _, picks in combination for pick in picks))
        for combination in itertools.product(*pieces)
    ]


def _tidy(text: str) -> str:
    # An empty choice (``a {, big} dog``) leaves two spaces, a choice at the start one before the words.
    return re.sub(r" {2,}", " ", text).strip()


def expand(text: str, *, most: int) -> list[Variant]:
    """The prompts ``text`` makes (itself alone when it has no choice in braces), at most ``most`` of them, else
    TooManyPrompts with their number."""
    sequence = _sequence(text)
    if sequence is None:
        return [Variant(text, ())]
    count = _count(sequence)
    if count > most:
        raise TooManyPrompts(count)
    return [Variant(_tidy(written), tuple(_tidy(p) for p in picks)) for written, picks in _written(sequence)]


def number_of(text: str) -> int:
    """How many prompts ``text`` makes (1 without a choice), up to ``COUNT_CEILING``."""
    sequence = _sequence(text)
    return 1 if sequence is None else _count(sequence)
