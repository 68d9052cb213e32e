"""A member's option sets: their own parameters that stand for a run of Midjourney's (Midjourney's ``/prefer option
set``).

Members coming from Midjourney keep a run of parameters they use often under a name of their own, ``--wide`` for
``--ar 21:9 --style raw``, and type the name instead. Set with ``/preferences option_set:wide --ar 21:9 --style raw``
(the name alone drops it), a name is replaced by its parameters wherever the member's words are read for them
(bot/prompt_parameters.py): /imagine's prompt, /blend's, the Use as reference and Change prompt forms, an edit's
words (the Edit forms, a reply), so ``a fox --wide`` is ``a fox --ar 21:9 --style raw``. A set holds parameters only,
checked when it is saved: words go in the suffix (bot/prompt_suffix.py), which is added to every prompt; a set is
typed where it is wanted, so ``--ar``, ``--seed`` and ``--repeat`` are welcome in it. Links (Discord's expire within a
day), choices in braces and Midjourney's parameters that mean nothing to Nano Banana are not.

Kept as a JSON object in the member's preferences row (``member_preferences.option_sets``), read with them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from bot.errors import InvalidRequestError
from bot.prompt_parameters import DASHES, IMAGE_WEIGHT_NAME, known_parameter, split_parameters
from bot.prompt_suffix import check_kept_for_later
from bot.prompts import PROMPT_MAX_CHARS, clean_prompt

OPTION_SET_MAX_CHARS = 150  # a set's parameters: a line of them
MOST_OPTION_SETS = 20
NAME_MAX_CHARS = 24
OPTION_SET_TYPED_CHARS = NAME_MAX_CHARS + 1 + OPTION_SET_MAX_CHARS + 5  # ``option_set:`` as typed (dashes, spaces)
# The panel's form of them all, one a line: Discord's most for a text input, which its filled-in value must fit too,
# so the most sets at their longest do (20 lines of 175 characters and their line breaks: 3,519).
OPTION_SETS_FORM_CHARS = 4000
# A set's name as typed after ``--``: what bot/prompt_parameters.py reads as a parameter's name (letters), and
# digits and dashes after the first letter ("--wide2", "--my-look"), lower-cased.
_NAME_TEXT = rf"[a-z][a-z0-9-]{{0,{NAME_MAX_CHARS - 1}}}"
_NAME = re.compile(_NAME_TEXT, re.ASCII)
# A name where it stands in words: ``--name`` (or with a dash Discord's clients may type for two) as a whole word.
_USED = re.compile(rf"(?<!\S){DASHES}({_NAME_TEXT})(?!\S)", re.IGNORECASE | re.ASCII)


def option_sets_of(stored: str | None) -> dict[str, str]:
    """A member's sets from their preferences row (None: none). A row written by hand that is not a JSON object of
    strings counts as none, rather than refusing every prompt of theirs."""
    if not stored:
        return {}
    try:
        sets = json.loads(stored)
    except ValueError:
        return {}
    if not isinstance(sets, dict):
        return {}
    return {name: value for name, value in sets.items() if isinstance(name, str) and isinstance(value, str)}


def stored_option_sets(sets: Mapping[str, str]) -> str | None:
    """``sets`` as the preferences row keeps them (None: none left), in the order they were first set."""
    return json.dumps(dict(sets), ensure_ascii=False, separators=(",", ":")) if sets else None


def asked_option_set(typed: str) -> tuple[str, str | None]:
    """``/preferences option_set:`` as typed: the name, and its parameters checked (None: the name alone, to drop
    it); refused with what to do instead."""
    text = clean_prompt(typed)
    name, _, value = text.partition(" ")
    name = name.lstrip("-\u2013\u2014").lower()
    if not _NAME.fullmatch(name):
        raise InvalidRequestError(
            "Start with the set's name, then its parameters: `wide --ar 21:9 --style raw` (a name of letters, then "
            f"digits or dashes, up to {NAME_MAX_CHARS}). The name alone drops that set."
        )
    if known_parameter(name):
        raise InvalidRequestError(f"`--{name}` is one of Midjourney's own parameters: give your set another name.")
    value = value.strip()
    return name, checked_option_set(name, value) if value else None


def checked_option_set(name: str, value: str) -> str:
    """``value`` as the parameters of the set ``name``, or refused with why."""
    if len(value) > OPTION_SET_MAX_CHARS:
        raise InvalidRequestError(
            f"An option set may hold at most {OPTION_SET_MAX_CHARS} characters of parameters; `--{name}` has "
            f"{len(value)}."
        )
    check_kept_for_later(value, "An option set holds parameters")
    if _USED.search(value) and any(not known_parameter(used.lower()) for used in _USED.findall(value)):
        raise InvalidRequestError("An option set holds Midjourney's parameters, not the names of other sets.")
    typed = split_parameters(value)
    if typed.words.strip():
        raise InvalidRequestError(
            f"An option set holds parameters only (`--ar 16:9 --style raw`), and `{typed.words[:80]}` is not one. "
            "Words to add to every prompt go in your suffix (`/preferences suffix:`)."
        )
    meaningless = [text for text in typed.ignored if not text.lower().startswith(f"--{IMAGE_WEIGHT_NAME} ")]
    if meaningless:
        raise InvalidRequestError(
            f"Not saved: `{' '.join(meaningless)[:80]}` means nothing to Nano Banana, so every prompt using "
            f"`--{name}` would have it left out."
        )
    return value


def with_option_sets(text: str, sets: Mapping[str, str]) -> str:
    """``text`` with each of the member's set names in it (``--wide``, a whole word) replaced by that set's
    parameters; the rest as it was. A name no set has stays as typed (read then as any unknown parameter is).
    Refused where that takes the words past what the bot sends (PROMPT_MAX_CHARS): a prompt of 1,500 names of a
    150-character set would be some 226,000 characters to read before any other check refused it."""
    if not sets or ("-" not in text and "\u2013" not in text and "\u2014" not in text):
        return text
    expanded = _USED.sub(lambda used: sets.get(used[1].lower(), used[0]), text)
    if len(expanded) > max(len(text), PROMPT_MAX_CHARS):
        raise InvalidRequestError(
            f"With your option sets in place of their names, your words come to {len(expanded):,} characters; at "
            f"most {PROMPT_MAX_CHARS:,} are sent. Use fewer of them, or fewer words."
        )
    return expanded


# A name ending a prompt's words (once the parameters the bot read are out of them).
_LAST_NAME = re.compile(rf"(?:^|\s){DASHES}({_NAME_TEXT})$", re.IGNORECASE | re.ASCII)


def unknown_name_note(words: str, sets: Mapping[str, str]) -> str | None:
    """A word for a member whose prompt's words end in a name that is neither Midjourney's parameter nor one of their
    sets (``a fox --mine``, with no set ``mine`` here, or a typo of one): it goes to the model as words, as any words
    do, and they should know why their set did not apply. None for any other words."""
    found = _LAST_NAME.search(words.rstrip(" ,;"))
    if found is None or known_parameter(found[1].lower()) or found[1].lower() in sets:
        return None
    yours = f" nor one of your option sets ({', '.join(f'`--{name}`' for name in sets)})" if sets else ""
    return (
        f"`--{found[1]}` is not one of Midjourney's parameters{yours}, so it went to the model as words. "
        "`/preferences option_set:` gives a run of parameters a name of your own."
    )
