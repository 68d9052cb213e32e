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
from typing import Any, NamedTuple

import discord

from bot.derive import AS_IT_IS, PAN_ARROWS, PANS, Frame, Pan, pan_ratio, shape_name
from bot.errors import InvalidRequestError
from bot.prompt_parameters import split_parameters
from bot.prompts import clean_prompt
from bot.providers.families import AUTO
from cogs.reference_form import choice_box

KEEP = "keep"  # the select's value for "as it is"
ZOOM_OUT = "zoom-out"  # and for "zoom out, in the same shape"
PAN_PREFIX = "pan-"  # "pan-left": extended to the left, in a wider shape
# Discord's limits: a select offers at most 25 options (KEEP, ZOOM_OUT and four pans among them); a label's
# text is at most 45 characters and its description 100.
_MAX_SHAPES = 19


def shape_field(
    ratios: tuple[str, ...], current: str | None, *, proportion: float | None, custom_id: str, chosen: str = KEEP
) -> discord.ui.Label[Any]:
    """The form's frame choice: KEEP, ZOOM_OUT, a pan each way the model has a shape to make room for (the
    image's ``proportion``, width over height, known), then each of ``ratios`` but ``current``; ``chosen`` (a
    value among them: Remix mode's Zoom out, pan or Make square, cogs/remix_vary.py) marked, else KEEP."""
    own = f" ({current})" if current and current != AUTO else ""
    options = [
        discord.SelectOption(label=f"Keep it as it is{own}", value=KEEP),
        discord.SelectOption(label=f"Zoom out: more of the scene, same shape{own}", value=ZOOM_OUT),
    ]
    pans = [(pan, pan_ratio(proportion, pan, ratios)) for pan in PANS] if proportion is not None else []
    for pan, ratio in pans:
        if ratio is not None:
            label = f"{PAN_ARROWS[pan]} Pan {pan}: extend the scene, {shape_name(ratio)}"
            options.append(discord.SelectOption(label=label, value=PAN_PREFIX + pan))
    others = [ratio for ratio in ratios if ratio != current][:_MAX_SHAPES]
    options += [discord.SelectOption(label=f"New shape: {shape_name(ratio)}", value=ratio) for ratio in others]
    marked = chosen if any(option.value == chosen for option in options) else KEEP
    for option in options:
        option.default = option.value == marked
    description = "Zoom out, pan, or give it a new shape: the model extends the scene to fill the frame."
    return choice_box("Reframe (optional)", description, custom_id, options)


FORM_HINT = "Say what should change (e.g. “make it night”), or pick a way to reframe it."


class AskedChange(NamedTuple):
    words: str  # the instruction
    frame: Frame
    ignored: tuple[str, ...]  # Midjourney's parameters taken out of the words, to name to the member


def asked_change(
    text: str | None,
    picked: Sequence[str] | None,
    *,
    offered: tuple[str, ...],
    current: str | None,
    model_name: str,
    proportion: float | None = None,
    nothing: str = FORM_HINT,
) -> AskedChange:
    """The instruction and the frame a member asked for: by the form's select (``picked``; None where
    there is none, a reply) and by Midjourney's ``--ar W:H`` and ``--zoom`` at the end of their words
    (bot/prompt_parameters.py), which must agree with what is picked; ``--no X`` is said in words, and its
    other parameters are taken out (``ignored``). The frame's ratio is None to keep the image's shape (nothing
    asked, or the shape it has). A pan's shape is worked out again from the image's ``proportion``.
    Refused, privately: a ratio the model is not offered in, a pan it has no shape for (a modified client,
    a provider turned off while the form was open, a typo), and no change at all (``nothing`` says so)."""
    typed_in = split_parameters(clean_prompt(text or ""))
    words, typed, typed_zoom = typed_in.prompt, typed_in.ratio, typed_in.zoom
    # An edit keeps its image's options; the rest of Midjourney's parameters mean nothing here.
    kept_options = (("seed", typed_in.seed), ("repeat", typed_in.repeat))
    ignored = typed_in.ignored + tuple(f"--{name} {value}" for name, value in kept_options if value is not None)
    value = picked[0] if picked else KEEP
    # Each checked before it is shown in a message: a modified client's value could be any text.
    pan, chosen = _pan(value, proportion=proportion, offered=offered)
    if pan is None and value not in (KEEP, ZOOM_OUT):
        chosen = _offered(value, offered=offered, model_name=model_name)
    typed = _offered(typed, offered=offered, model_name=model_name)
    if typed is not None and chosen is not None and typed != chosen:
        what = f"to pan {pan} (in {chosen})" if pan else f"the shape {chosen}"
        raise InvalidRequestError(f"You picked {what} and typed `--ar {typed}`: ask for one of them.")
    if typed_zoom and pan is not None:
        raise InvalidRequestError(f"You picked to pan {pan} and typed `--zoom`: ask for one of them.")
    ratio = typed or chosen
    zoom_out = value == ZOOM_OUT or typed_zoom
    # A pan's shape is sent even when it is the one the image was asked in: its shape comes from what the image
    # is (``proportion``), so that shape is not the image's own when a provider answered in another one, and
    # without it the pan would be drawn with no room made for it.
    frame = Frame(ratio=None if ratio == current and pan is None else ratio, zoom_out=zoom_out, pan=pan)
    words = words.strip()
    if not words and frame == AS_IT_IS:
        raise InvalidRequestError(nothing)
    return AskedChange(words, frame, ignored)


def _pan(value: str, *, proportion: float | None, offered: tuple[str, ...]) -> tuple[Pan | None, str | None]:
    """The way a ``pan-...`` value extends the image and the shape that makes room for it (None, None for
    any other value); refused where there is none (the image's size unknown, no wider or taller shape)."""
    if not value.startswith(PAN_PREFIX):
        return None, None
    pan = next((way for way in PANS if value == PAN_PREFIX + way), None)
    ratio = None if pan is None or proportion is None else pan_ratio(proportion, pan, offered)
    if pan is None or ratio is None:
        way = pan or "that way"
        raise InvalidRequestError(
            f"This image cannot be extended {way}: the model has no shape with room for it. Pick another way."
        )
    return pan, ratio


def _offered(value: str | None, *, offered: Sequence[str], model_name: str) -> str | None:
    if value is None or value in offered:
        return value
    choices = ", ".join(offered) or "none"
    # In a code span Discord shows the text as it is (no Markdown, no mention); a backtick would end it.
    shown = value[:20].replace("`", "'")
    raise InvalidRequestError(f"{model_name} cannot be given the shape `{shown}` here. Choose one of: {choices}.")
