"""The Edit form's "Where" choice: the part of the image alone to change (bot/regions.py), Midjourney's Vary (Region)
by area. Read back from the submit, as the Reframe choice is (cogs/shape_field.py), and checked: a modified client's
value could be anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.errors import InvalidRequestError
from bot.regions import REGIONS, Region
from cogs.reference_form import choice_box

ANYWHERE = "anywhere"  # the select's value for the whole image


def region_field(custom_id: str) -> discord.ui.Label[Any]:
    """The form's area choice: anywhere (chosen), then each half, the centre and each quarter."""
    options = [discord.SelectOption(label="Anywhere in the image", value=ANYWHERE, default=True)]
    options += [discord.SelectOption(label=f"Only {name}", value=region) for region, name in REGIONS.items()]
    description = "Only that part changes, the rest is kept: Midjourney's Vary (Region), by area."
    return choice_box("Where (optional)", description, custom_id, options)


def asked_region(picked: Sequence[str] | None) -> Region | None:
    """The area picked (None: anywhere, or a form from before the choice was offered); refused where it is not one
    offered."""
    if not picked or picked[0] == ANYWHERE:
        return None
    if len(picked) > 1 or picked[0] not in REGIONS:
        raise InvalidRequestError("Pick one part of the image from the list, or anywhere.")
    return picked[0]
