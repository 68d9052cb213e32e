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

ANYWHERE = "anywhere"  # the select's value for the whole image


def region_field(custom_id: str) -> discord.ui.Label[Any]:
    """The form's area choice: anywhere (chosen), then each half, the centre and each quarter."""
    options = [discord.SelectOption(label="Anywhere in the image", value=ANYWHERE, default=True)]
    options += [discord.SelectOption(label=f"Only {name}", value=region) for region, name in REGIONS.items()]
    select: discord.ui.Select[Any] = discord.ui.Select(
        custom_id=custom_id, options=options, min_values=0, max_values=1, required=False
    )
    return discord.ui.Label(
        # At most 45 characters of text and 100 of description (Discord's limits for a label's).
        text="Where (optional)",
        description="Only that part changes, the rest is kept: Midjourney's Vary (Region), by area.",
        component=select,
    )


def asked_region(picked: Sequence[str] | None) -> Region | None:
    """The area picked (None: anywhere, or a form from before the choice was offered); refused where it is not one
    offered."""
    if not picked or picked[0] == ANYWHERE:
        return None
    if len(picked) > 1 or picked[0] not in REGIONS:
        raise InvalidRequestError("Pick one part of the image from the list, or anywhere.")
    return picked[0]
