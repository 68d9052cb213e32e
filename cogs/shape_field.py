"""The "Reframe" choice in the edit forms (the Edit button's, cogs/imagine.py; Edit with Nano Banana's,
cogs/remix.py): keep the image as it is, zoom out, or pick another shape the model offers and have the image
reframed to it (Midjourney's zoom-out and pan, done the Nano Banana way: the image as reference, the model
asked to widen the view, and the new ratio asked for).

The choice is read back from the submit, not from the form object: a form opened before a restart is
answered by the next process (cogs/imagine.py EditModal). What a modified client sends is checked
against what the model offers now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.derive import AS_IT_IS, Frame, shape_name
from bot.errors import InvalidRequestError
from bot.prompts import ratio_suffix
from bot.providers.families import AUTO

KEEP = "keep"  # the select's value for "as it is"
ZOOM_OUT = "zoom-out"  # and for "zoom out, in the same shape"
# Discord's limits: a select offers at most 25 options (two of them KEEP and ZOOM_OUT); a label's text is
# at most 45 characters and its description 100.
_MAX_SHAPES = 23


def shape_field(ratios: Sequence[str], current: str | None, *, custom_id: str) -> discord.ui.Label[Any]:
    """The form's frame choice: KEEP (chosen), ZOOM_OUT, then each of ``ratios`` but ``current``."""
    others = [ratio for ratio in ratios if ratio != current][:_MAX_SHAPES]
    own = f" ({current})" if current and current != AUTO else ""
    options = [
        discord.SelectOption(label=f"Keep it as it is{own}", value=KEEP, default=True),
        discord.SelectOption(label=f"Zoom out: more of the scene, same shape{own}", value=ZOOM_OUT),
    ]
    options += [discord.SelectOption(label=f"New shape: {shape_name(ratio)}", value=ratio) for ratio in others]
    select: discord.ui.Select[Any] = discord.ui.Select(
        custom_id=custom_id, options=options, min_values=0, max_values=1, required=False
    )
    return discord.ui.Label(
        text="Reframe (optional)",
        description="Zoom out, or give it a new shape: the model extends the scene to fill the frame.",
        component=select,
    )


FORM_HINT = "Say what should change (e.g. “make it night”), or pick a way to reframe it."


def asked_change(
    text: str | None,
    picked: Sequence[str] | None,
    *,
    offered: Sequence[str],
    current: str | None,
    model_name: str,
    nothing: str = FORM_HINT,
) -> tuple[str, Frame]:
    """The instruction and the frame a member asked for: by the form's select (``picked``; None where
    there is none, a reply) and by Midjourney's ``--ar W:H`` at the end of their words (bot/prompts.py),
    which must agree with a shape picked. The frame's ratio is None to keep the image's shape (nothing
    asked, or the shape it has). Refused, privately: a ratio the model is not offered in (a modified
    client, a provider turned off while the form was open, a typo), and no change at all (``nothing``
    says so)."""
    words, typed = ratio_suffix(text or "")
    value = picked[0] if picked else KEEP
    zoom_out = value == ZOOM_OUT
    # Each checked before it is shown in a message: a modified client's value could be any text.
    choice = None if value in (KEEP, ZOOM_OUT) else _offered(value, offered=offered, model_name=model_name)
    typed = _offered(typed, offered=offered, model_name=model_name)
    if typed is not None and choice is not None and typed != choice:
        raise InvalidRequestError(f"You picked the shape {choice} and typed `--ar {typed}`: ask for one of them.")
    ratio = typed or choice
    frame = Frame(ratio=None if ratio == current else ratio, zoom_out=zoom_out)
    words = words.strip()
    if not words and frame == AS_IT_IS:
        raise InvalidRequestError(nothing)
    return words, frame


def _offered(value: str | None, *, offered: Sequence[str], model_name: str) -> str | None:
    if value is None or value in offered:
        return value
    choices = ", ".join(offered) or "none"
    # In a code span Discord shows the text as it is (no Markdown, no mention); a backtick would end it.
    shown = value[:20].replace("`", "'")
    raise InvalidRequestError(f"{model_name} cannot be given the shape `{shown}` here. Choose one of: {choices}.")
