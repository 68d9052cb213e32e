"""A member's suffix: words added to the end of every /imagine prompt of theirs in a server (Midjourney's
``/prefer suffix``).

Members who draw in one look type the same tail every time ("in watercolour, soft light --no text"). Set once with
``/preferences suffix:`` (or the panel's Suffix button), it is added to each new prompt: /imagine's, /blend's and the
Use as reference form's, not to an edit or a Change prompt, whose words are the image's own (the suffix went into them
when it was made). Its words follow the member's, and its ``--no``, ``--tile`` and ``--niji`` join theirs
(bot/prompt_parameters.py), whatever parameters end the prompt: "a fox --ar 16:9" with the suffix "in watercolour
--no text" is sent as "a fox, in watercolour, without text" at 16:9.

A suffix holds words and the parameters said in words only, checked when it is saved, so that no /imagine is refused
later for something its member no longer sees: the shape, size and number of images are preferences of their own
(``--ar`` there would fight the command's ``aspect_ratio``), a seed in every prompt would draw the same image each
time, Midjourney's other parameters mean nothing to Nano Banana, a Discord link expires within a day, and choices in
braces belong to one prompt.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bot.errors import InvalidRequestError
from bot.prompt_parameters import DASHES, Parameters, known_parameter, split_parameters
from bot.prompts import clean_prompt

SUFFIX_MAX_CHARS = 200
# A link, or a custom emoji as Discord's client writes one (its image would be a reference: bot/prompt_links.py).
# A parameter's name as a whole word (``--wide``, or with a dash Discord's clients may type for two).
_NAMED = re.compile(rf"(?<!\S){DASHES}([a-z][a-z0-9-]*)(?!\S)", re.IGNORECASE | re.ASCII)
_LINK = re.compile(r"[a-z][a-z0-9+.-]*://|<a?:\w+:\d+>", re.IGNORECASE)


def checked_suffix(text: str) -> str:
    """``text`` cleaned as a prompt is, or refused with what to do instead."""
    suffix = clean_prompt(text)
    if not suffix:
        raise InvalidRequestError("A suffix needs some words; to drop yours, use `forget:Suffix`.")
    if len(suffix) > SUFFIX_MAX_CHARS:
        raise InvalidRequestError(f"A suffix may be at most {SUFFIX_MAX_CHARS} characters; yours has {len(suffix)}.")
    check_kept_for_later(suffix, "A suffix holds words")
    for name in _NAMED.findall(suffix):
        if not known_parameter(name.lower()):
            # An option set's name (bot/option_sets.py) is put in place where it is typed, before a suffix is added.
            raise InvalidRequestError(
                f"Not saved: `--{name}` is not one of Midjourney's parameters, so every prompt would send it to the "
                "model as words. An option set's name goes in the prompt itself, where you want it."
            )
    typed = split_parameters(suffix)
    if not typed.words.strip():
        raise InvalidRequestError("A suffix needs some words besides its parameters.")
    refused = [
        (typed.ratio is not None, "`--ar` in a suffix would fight the command's shape: set `aspect_ratio` instead"),
        (typed.repeat is not None, "`--repeat` in a suffix: set `count` (images per prompt) instead"),
        (typed.seed is not None, "`--seed` in a suffix would draw the same image from every prompt alike"),
        (typed.zoom, "`--zoom` is for an edit of an image, not for every prompt"),
        (bool(typed.ignored), f"`{' '.join(typed.ignored)[:80]}` means nothing to Nano Banana"),
    ]
    for found, why in refused:
        if found:
            raise InvalidRequestError(
                f"Not saved: {why}. A suffix takes words, and `--no`, `--tile`, `--niji` or `--style raw` after them."
            )
    return suffix


def check_kept_for_later(text: str, holds: str) -> None:
    """Refuse what a text kept to be added to later prompts (a suffix, an option set: bot/option_sets.py) cannot
    hold: a link (Discord's expire within a day) or a custom emoji (an image, bot/prompt_links.py), or choices in
    braces (one prompt's). ``holds``: what it does hold, as the refusal says it ("A suffix holds words")."""
    if _LINK.search(text):
        raise InvalidRequestError(
            f"{holds}, not links or custom emojis: Discord's image links expire within a day. Attach or link the "
            "image in each prompt instead."
        )
    if "{" in text or "}" in text:
        raise InvalidRequestError(f"{holds}, not choices in braces: they belong to one prompt.")


def with_suffix(typed: Parameters, suffix: str) -> Parameters:
    """A prompt as read (``typed``) with a member's ``suffix`` (as ``checked_suffix`` passed it) added: its words
    after the prompt's, its ``--no``, ``--tile`` and ``--niji`` beside the prompt's (each once), the prompt's own
    parameters kept."""
    added = split_parameters(suffix)
    words = typed.words.rstrip()
    # "a fox" + "in watercolour" is "a fox, in watercolour"; "a fox." + "Watercolour." keeps the member's stop.
    between = " " if not words or words[-1] in ".,;:!?" else ", "
    return replace(
        typed,
        words=f"{words}{between}{added.words}".strip(),
        left_out=tuple(dict.fromkeys((*typed.left_out, *added.left_out))),
        said=tuple(dict.fromkeys((*typed.said, *added.said))),
    )
