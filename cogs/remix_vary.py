"""Midjourney's Remix mode: with it on (``/preferences remix:True``, or the panel's switch), a Vary button first opens
a form holding the words the image was made from, and the variation is drawn from the words as submitted, changed or
not ("the same harbour, at night"), as Midjourney's Vary asks for a prompt in Remix mode; a Re-roll opens Change
prompt's form (cogs/prompt_form.py), as Midjourney's re-roll does in Remix mode, and a Zoom out, a pan or Make square
the Edit form with that frame chosen (cogs/shape_field.py ``chosen``), for words to add.

Off, a Vary goes at once, as it always has; Change prompt under the Vary's result asks the same after the fact. The
form's submit is answered by ``Imagine.on_interaction`` (cogs/imagine.py), as the other forms are, so one opened
before a restart still works: its custom_id carries the job and the kind of Vary.
"""

from __future__ import annotations

import re

import discord

from cogs.reference_form import prompt_box

# The form's custom_id: which Vary (the button's action) of which job's image.
VARY_FORM_ID = re.compile(r"bananacord:vary-form:(?P<action>vary|vary-subtle):(?P<job_id>[0-9a-f]{16})")
_TITLES = {"vary": "Vary (Strong) with these words", "vary-subtle": "Vary (Subtle) with these words"}


class VaryForm(discord.ui.Modal):
    """The words a Vary of the image is drawn from, to change or keep."""

    def __init__(self, job_id: str, action: str, words: str) -> None:
        super().__init__(title=_TITLES[action], custom_id=f"bananacord:vary-form:{action}:{job_id}", timeout=None)
        # At most 100 characters (Discord's limit for a label's description).
        description = "Remix: the image varied by these words. Change them, or keep them as they are."
        self.add_item(prompt_box(description, "the same harbour, at night", words=words))
        # A stopped modal is not kept by discord.py (send_modal stores only unfinished ones).
        self.stop()
