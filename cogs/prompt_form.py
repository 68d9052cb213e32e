"""The "Change prompt" button's form: the request of an image (or of one that failed) again, with other words.

Trying a prompt again with a few words changed is most of the work of making an image: Re-roll sends the same
words, and a new ``/imagine`` means typing every option and attaching every reference again. This form opens
with the prompt as the member typed it; its submit is ``/imagine`` with those words and what the request was made
with: its model, the options its member chose, its reference images (cogs/imagine.py
``Imagine.on_prompt_submit``). It is answered by ``Imagine.on_interaction``, as the other forms are, so a form
opened before a restart still works: its custom_id carries the job.
"""

from __future__ import annotations

import re

import discord

from cogs.reference_form import TEXT_INPUT_MAX_CHARS, prompt_box

# The form's custom_id: the job whose request is made again with the new words.
PROMPT_FORM_ID = re.compile(r"bananacord:reprompt:(?P<job_id>[0-9a-f]{16})")


class PromptForm(discord.ui.Modal):
    """The prompt, to change; ``words`` fills it in."""

    def __init__(self, job_id: str, words: str) -> None:
        super().__init__(title="Change the prompt", custom_id=f"bananacord:reprompt:{job_id}", timeout=None)
        description = "Made again with these words: the same model, options and reference images."
        if len(words) > TEXT_INPUT_MAX_CHARS:
            # /imagine takes 6,000 characters, a form's box 4,000: the member is told the box holds the start only.
            description = f"Only the first {TEXT_INPUT_MAX_CHARS:,} characters of the prompt fit: the rest is left out."
        self.add_item(prompt_box(description, "a lighthouse at dawn, in watercolour --ar 16:9", words=words))
        # A stopped modal is not kept by discord.py (send_modal stores only unfinished ones).
        self.stop()
