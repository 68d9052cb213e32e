"""Where in an image an edit is to change it: Midjourney's Vary (Region), by area.

Midjourney's members mark the part of an image to redraw and say what goes there. Nano Banana takes no mask; it
follows words about where, and keeps the rest when told to. So the Edit form offers the image's halves, quarters
and centre (cogs/region_field.py), and the prompt sent is the member's words, then which part alone may change
(``in_region``): "a red hat. Change only the top-left quarter of this image, and keep everything else in it exactly
as it is." The member's words stay theirs (what moderation judges, what the message shows, what Change prompt
holds); the area goes with the request (``Derivation.region``), so a Change prompt of the edit asks for the same
area again.
"""

from __future__ import annotations

from typing import Literal

Region = Literal["top", "bottom", "left", "right", "centre", "top-left", "top-right", "bottom-left", "bottom-right"]
# Each area as the prompt and the image's message name it, in the order the form lists them.
REGIONS: dict[Region, str] = {
    "top": "the top half",
    "bottom": "the bottom half",
    "left": "the left half",
    "right": "the right half",
    "centre": "the centre",
    "top-left": "the top-left quarter",
    "top-right": "the top-right quarter",
    "bottom-left": "the bottom-left quarter",
    "bottom-right": "the bottom-right quarter",
}


def in_region(words: str, region: Region, *, references: int = 1) -> str:
    """The prompt an edit of ``region`` sends: the member's ``words``, then the area alone to change in the image
    being edited (the request's first reference, named so when there are others)."""
    image = "the first image" if references > 1 else "this image"
    words = words.rstrip()
    end = "" if not words or words[-1] in ".!?" else "."
    asked = f"Change only {REGIONS[region]} of {image}, and keep everything else in it exactly as it is."
    return f"{words}{end} {asked}".strip()
