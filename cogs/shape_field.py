"""The "New shape" choice in the edit forms (the Edit button's, cogs/imagine.py; Edit with Nano Banana's,
cogs/remix.py): keep the image's shape, or pick another the model offers and have the image reframed to it
(Midjourney's pan and zoom-out, done the Nano Banana way: the image as reference, the new ratio asked for).

The choice is read back from the submit, not from the form object: a form opened before a restart is
answered by the next process (cogs/imagine.py EditModal). What a modified client sends is checked
against what the model offers now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.derive import shape_name
from bot.errors import InvalidRequestError
from bot.prompts import ratio_suffix
from bot.providers.families import AUTO

KEEP = "keep"  # the select's value for "the image's own shape"
# Discord's limits: a select offers at most 25 options (one of them KEEP); a label's text is at most 45
# characters and its description 100.
_MAX_SHAPES = 24


def shape_field(ratios: Sequence[str], current: str | None, *, custom_id: str) -> discord.ui.Label[Any] | None:
    """The form's shape choice: KEEP (chosen), then each of ``ratios`` but ``current``. None when there
    is nothing else to pick."""
    others = [ratio for ratio in ratios if ratio != current][:_MAX_SHAPES]
    if not others:
        return None
    keep = "Keep its shape" + (f" ({current})" if current and current != AUTO else "")
    options = [discord.SelectOption(label=keep, value=KEEP, default=True)]
    options += [discord.SelectOption(label=shape_name(ratio), value=ratio) for ratio in others]
    select: discord.ui.Select[Any] = discord.ui.Select(
        custom_id=custom_id, options=options, min_values=0, max_values=1, required=False
    )
    return discord.ui.Label(
        text="New shape (optional)",
        description="Pick one to reframe the image: the model extends the scene to fill it.",
        component=select,
    )


FORM_HINT = "Say what should change (e.g. “make it night”), or pick a new shape."


def asked_change(
    text: str | None,
    picked: Sequence[str] | None,
    *,
    offered: Sequence[str],
    current: str | None,
    model_name: str,
    nothing: str = FORM_HINT,
) -> tuple[str, str | None]:
    """The instruction and the new ratio a member asked for: by the form's select (``picked``; None where
    there is none, a reply) or by Midjourney's ``--ar W:H`` at the end of their words (bot/prompts.py), which
    must agree if both are given. The ratio is None to keep the image's shape (nothing asked, KEEP, or the
    shape it has). Refused, privately: a ratio the model is not offered in (a modified client, a provider
    turned off while the form was open, a typo), and neither words nor a new shape (``nothing`` says so)."""
    words, typed = ratio_suffix(text or "")
    # Each checked before it is shown in a message: a modified client's value could be any text.
    choice = _offered(picked[0] if picked and picked[0] != KEEP else None, offered=offered, model_name=model_name)
    typed = _offered(typed, offered=offered, model_name=model_name)
    if typed is not None and choice is not None and typed != choice:
        raise InvalidRequestError(f"You picked the shape {choice} and typed `--ar {typed}`: ask for one of them.")
    ratio = typed or choice
    ratio = None if ratio == current else ratio
    words = words.strip()
    if not words and ratio is None:
        raise InvalidRequestError(nothing)
    return words, ratio


def _offered(value: str | None, *, offered: Sequence[str], model_name: str) -> str | None:
    if value is None or value in offered:
        return value
    choices = ", ".join(offered) or "none"
    # In a code span Discord shows the text as it is (no Markdown, no mention); a backtick would end it.
    shown = value[:20].replace("`", "'")
    raise InvalidRequestError(f"{model_name} cannot be given the shape `{shown}` here. Choose one of: {choices}.")
