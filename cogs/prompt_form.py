"""The "Change prompt" button's form: the request of an image (or of one that failed) again, with other words.

Trying a prompt again with a few words changed is most of the work of making an image: Re-roll sends the same
words, and a new ``/imagine`` means typing every option and attaching every reference again. This form opens
with the prompt as the member typed it; its submit is ``/imagine`` with those words and what the request was made
with: its model, the options its member chose, its reference images (cogs/imagine.py
``Imagine.on_prompt_submit``). Under an image made from another (a Vary, an edit, a zoom out, a pan) it holds the
member's words of that step, and its submit takes the same step again with the new ones (Midjourney's Remix:
bot/derive.py ``reworded``). For a request of the member's own it also lists the models served (``model_box``), so the
same words can be tried on the other model. It is answered by ``Imagine.on_interaction``, as the other forms are, so a
form opened before a restart still works: its custom_id carries the job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import discord

from bot import derive
from bot.models import GenerationRequest
from cogs.reference_form import TEXT_INPUT_MAX_CHARS, choice_box, prompt_box

# The form's custom_id: the job whose request is made again with the new words.
PROMPT_FORM_ID = re.compile(r"bananacord:reprompt:(?P<job_id>[0-9a-f]{16})")
MODEL_INPUT_ID = "model"


# What the form says of its words, by what the request did (bot/models.py Derivation.action; None: a request of the
# member's own), and an example of such words. Each description at most 100 characters (Discord's limit).
_TOLD: dict[str | None, tuple[str, str]] = {
    None: (
        "Made again with these words: the same model, options and reference images.",
        "a lighthouse at dawn, in watercolour --ar 16:9",
    ),
    "vary": ("The same image varied again, by these words: its model and options kept.", "a lighthouse at dusk"),
    "edit": ("The same image edited again with these words: its model, shape and options kept.", "make it night"),
    "zoom_out": ("The same image zoomed out again, with these words added (if any).", "add a lake in front"),
    "pan": ("The same image extended the same way again, with these words added (if any).", "add a lake"),
    "reframe": ("The same image in the same new shape, edited with these words.", "make it night"),
}


# A request of the member's own with an image given after --sref, --cref or --oref (at most 100 characters).
STYLE_KEPT = "Made again with these words and references; a new --sref, --cref or --oref replaces the one it had."


class PromptForm(discord.ui.Modal):
    """The words of ``request`` (``derive.words_to_change``), to change."""

    def __init__(self, job_id: str, request: GenerationRequest, models: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(title="Change the prompt", custom_id=f"bananacord:reprompt:{job_id}", timeout=None)
        words = derive.words_to_change(request) or ""
        did = request.derived_from.action if request.derived_from is not None else None
        description, placeholder = _TOLD["vary" if did == "vary_subtle" else did]
        if did is None and any(ref.role is not None for ref in request.reference_images):
            # The style image goes again unsaid in the words (bot/reference_roles.py): the member is told it stays.
            description = STYLE_KEPT
        if len(words) > TEXT_INPUT_MAX_CHARS:
            # /imagine takes 6,000 characters, a form's box 4,000: the member is told the box holds the start only.
            description = f"Only the first {TEXT_INPUT_MAX_CHARS:,} characters of the prompt fit: the rest is left out."
        self.add_item(prompt_box(description, placeholder, words=words))
        if did is None and not request.history and len(models) > 1:
            # A request of the member's own may go to the other model: Nano Banana 2 and Pro, side by side. Not a
            # step made from an image, whose conversation (Gemini's signatures) belongs to the model that made it.
            self.add_item(model_box(models, request.model))
        # A stopped modal is not kept by discord.py (send_modal stores only unfinished ones).
        self.stop()


# Use as reference's model choice for "as /imagine would choose": the member's, the server's or the bot's default.
DEFAULT_MODEL = "-"


def model_box(
    models: Sequence[tuple[str, str]], current: str | None, *, default_name: str | None = None
) -> discord.ui.Label[Any]:
    """The form's model choice: each model served here (``models``: id and name), the request's own (``current``)
    chosen; or, with ``default_name``, first the default /imagine would use (DEFAULT_MODEL), chosen."""
    options = []
    if default_name is not None:
        options.append(discord.SelectOption(label=f"Your default ({default_name})", value=DEFAULT_MODEL, default=True))
    options += [
        discord.SelectOption(
            label=name + (" (as before)" if model == current else ""), value=model, default=model == current
        )
        for model, name in models[: 25 - len(options)]  # Discord's most per list
    ]
    return choice_box("Model", "Make it on another model, if you like.", MODEL_INPUT_ID, options)
