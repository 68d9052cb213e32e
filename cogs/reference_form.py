"""The "Use as reference" button's form: a new prompt, with the image under which it was pressed as its first
reference.

Edit changes an image and keeps what it was made with (its model, its options, its conversation with Gemini);
this starts a new request, as ``/imagine`` with the image attached would: the presser's own model and defaults
(/preferences), their words, and the image as a reference for a character, a style or a product to keep. The
form's submit is answered by ``Imagine.on_interaction`` (cogs/imagine.py), as the Edit form's is, so a form
opened before a restart still works: its custom_id carries the job whose image it names. Its *Use it for* list
gives the image a role (only its style, character or subject: bot/reference_roles.py), and its *Model* list
(cogs/prompt_form.py ``model_box``) starts at the presser's default.
"""

from __future__ import annotations

import re
from typing import Any

import discord

# The form's custom_id: the job whose image is the reference (its message is the submit's message).
REFERENCE_FORM_ID = re.compile(r"bananacord:reference:(?P<job_id>[0-9a-f]{16})")
PROMPT_INPUT_ID = "prompt"
ROLE_INPUT_ID = "role"
AS_IT_IS = "-"  # the role list's "the image as it is": a reference as any other
# Discord's ceiling for a form's text input (this form's, the Edit form's, the message menu's); each provider's
# lower prompt limit is enforced by validate().
TEXT_INPUT_MAX_CHARS = 4000


def prompt_box(description: str, placeholder: str, *, words: str | None = None) -> discord.ui.Label[Any]:
    """A form's prompt: a paragraph up to Discord's ceiling, required, ``words`` filled in (this form's, and
    cogs/prompt_form.py's). ``description``: at most 100 characters (Discord's limit for a label's)."""
    return discord.ui.Label(
        text="Prompt",
        description=description,
        component=discord.ui.TextInput(
            custom_id=PROMPT_INPUT_ID,
            style=discord.TextStyle.paragraph,
            default=words[:TEXT_INPUT_MAX_CHARS] if words else None,
            placeholder=placeholder,
            required=True,
            max_length=TEXT_INPUT_MAX_CHARS,
        ),
    )


def choice_box(
    text: str, description: str, custom_id: str, options: list[discord.SelectOption]
) -> discord.ui.Label[Any]:
    """A form's optional list of one choice (``options``, one marked as the default), under ``text`` (at most 45
    characters) and ``description`` (at most 100: Discord's limits for a label's): the edit forms' Reframe and Where,
    and the Model and Use it for lists (cogs/prompt_form.py, ``role_box``)."""
    select: discord.ui.Select[Any] = discord.ui.Select(
        custom_id=custom_id, options=options, min_values=0, max_values=1, required=False
    )
    return discord.ui.Label(text=text, description=description, component=select)


class ReferenceForm(discord.ui.Modal):
    """What to make with the image as a reference."""

    def __init__(self, job_id: str, model: discord.ui.Label[Any] | None = None) -> None:
        super().__init__(title="New image with this one", custom_id=f"bananacord:reference:{job_id}", timeout=None)
        description = "This image goes with it as a reference, with your own model and defaults."
        self.add_item(prompt_box(description, "the same character on a beach at sunset --ar 16:9"))
        self.add_item(role_box())
        if model is not None:
            self.add_item(model)  # the model to make it with: the member's default, or another (cogs/prompt_form.py)
        # A stopped modal is not kept by discord.py (send_modal stores only unfinished ones).
        self.stop()


def role_box() -> discord.ui.Label[Any]:
    """What the image is to give the new one: itself (chosen), or only its style, its character or its subject, as
    Midjourney's image menu offers them (a role: bot/reference_roles.py)."""
    options = [
        discord.SelectOption(label="The image as it is", value=AS_IT_IS, default=True),
        discord.SelectOption(label="Only its style (colours, light, medium): --sref", value="style"),
        discord.SelectOption(label="Its character (face, hair, clothes): --cref", value="character"),
        discord.SelectOption(label="Its subject, as it looks: --oref", value="subject"),
    ]
    return choice_box("Use it for", "All of it, or only its style, character or subject.", ROLE_INPUT_ID, options)
