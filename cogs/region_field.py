"""The Edit form's "Where" choice: the part of the image alone to change (bot/regions.py), Midjourney's Vary (Region)
by area. Read back from the submit, as the Reframe choice is (cogs/shape_field.py), and checked: a modified client's
value could be anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.derive import AS_IT_IS, Frame
from bot.errors import InvalidRequestError
from bot.prompts import clean_prompt
from bot.regions import REGIONS, Region
from cogs.reference_form import choice_box

ANYWHERE = "anywhere"  # the select's value for the whole image


def region_field(custom_id: str, *, of_first: bool = False) -> discord.ui.Label[Any]:
    """The form's area choice: anywhere (chosen), then each half, the centre and each quarter. ``of_first``: the
    form edits several images, and the area is the first one's (bot/regions.py ``in_region``)."""
    options = [discord.SelectOption(label="Anywhere in the image", value=ANYWHERE, default=True)]
    options += [discord.SelectOption(label=f"Only {name}", value=region) for region, name in REGIONS.items()]
    which = "Of the first image, only" if of_first else "Only"
    description = f"{which} that part changes, the rest is kept: Midjourney's Vary (Region), by area."
    return choice_box("Where (optional)", description, custom_id, options)


def asked_region(picked: Sequence[str] | None) -> Region | None:
    """The area picked (None: anywhere, or a form from before the choice was offered); refused where it is not one
    offered."""
    if not picked or picked[0] == ANYWHERE:
        return None
    if len(picked) > 1 or picked[0] not in REGIONS:
        raise InvalidRequestError("Pick one part of the image from the list, or anywhere.")
    return picked[0]


def check_region(region: Region | None, words: str | None) -> None:
    """An area needs words saying what goes there: the area alone asks for nothing."""
    if region is not None and not clean_prompt(words or ""):
        raise InvalidRequestError(f"Say what should change in {REGIONS[region]} of the image.")


def check_region_frame(region: Region | None, frame: Frame) -> None:
    """An area changes within the image's frame: with a zoom out, a pan or a new shape as well, refused."""
    if region is not None and frame != AS_IT_IS:
        raise InvalidRequestError(
            f"You picked {REGIONS[region]} and a way to reframe the image: a part changes within the frame "
            "it has. Ask for one of them."
        )
