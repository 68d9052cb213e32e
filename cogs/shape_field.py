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


def chosen_shape(
    values: Sequence[str] | None, *, offered: Sequence[str], current: str | None, model_name: str
) -> str | None:
    """The new ratio a submit asks for; None to keep the image's shape (nothing picked, KEEP, or the shape
    it has). A value the model is not offered in (a modified client, or a provider turned off while the
    form was open) is refused, naming what is."""
    value = values[0] if values else KEEP
    if value in (KEEP, current):
        return None
    if value not in offered:
        choices = ", ".join(offered) or "none"
        # In a code span Discord shows the text as it is (no Markdown, no mention); a backtick would end it.
        shown = value[:20].replace("`", "'")
        raise InvalidRequestError(f"{model_name} cannot be given the shape `{shown}` here. Choose one of: {choices}.")
    return value


def require_a_change(instruction: str | None, shape: str | None) -> str:
    """The instruction, stripped; refused when there is neither one nor a new shape (nothing to do)."""
    text = (instruction or "").strip()
    if not text and shape is None:
        raise InvalidRequestError("Say what should change (e.g. “make it night”), or pick a new shape.")
    return text
