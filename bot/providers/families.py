"""The model families the bot offers, each defined once: Google's Nano Banana 2 and Nano Banana Pro.

A family holds what Google's model takes (aspect ratios, output sizes, reference images). Each
provider builds its ``Capabilities`` from the family and states only where its API differs: its
prompt limit, its own model id and prices, a lower reference limit, no 512 tier, an ``auto`` ratio,
the knobs it exposes. The slash command's choices and the names members read come from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bot.providers.base import RESOLUTIONS, Capabilities

# The bot's name for "let the model choose the ratio". Not one of Google's ratios: some APIs take it
# as a value, Gemini's adapter sends it as no ratio at all (docs/providers.md 8.1).
AUTO = "auto"


@dataclass(frozen=True, slots=True)
class ModelFamily:
    """One of Google's image models, as every provider that resells it starts from."""

    model: str  # the bot's name for it, the key of every provider's model table
    display_name: str
    aspect_ratios: tuple[str, ...]  # most used first: the slash command offers them in this order
    resolutions: tuple[str, ...]
    max_reference_images: int
    default_resolution: str = "1K"

    def capabilities(
        self, *, provider_model: str, max_prompt_chars: int, auto_ratio: bool = False, **differences: Any
    ) -> Capabilities:
        """This family on one provider: the family's values, ``auto`` first if the API takes it, then
        the provider's ``differences`` (any other ``Capabilities`` field)."""
        caps = Capabilities(
            model=self.model,
            display_name=self.display_name,
            provider_model=provider_model,
            max_prompt_chars=max_prompt_chars,
            max_reference_images=self.max_reference_images,
            aspect_ratios=(AUTO, *self.aspect_ratios) if auto_ratio else self.aspect_ratios,
            resolutions=self.resolutions,
            default_resolution=self.default_resolution,
        )
        return replace(caps, **differences)


# docs/providers.md 6.2 [C Vertex model card]: 3.1 Flash Image takes 14 ratios, 3 Pro Image 10, and
# both up to 14 reference images; 512 px is a Flash-only tier.
NANO_BANANA_2 = ModelFamily(
    model="nano_banana_2",
    display_name="Nano Banana 2",
    aspect_ratios=("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "5:4", "4:5", "21:9", "4:1", "1:4", "8:1", "1:8"),
    resolutions=RESOLUTIONS,
    max_reference_images=14,
)
NANO_BANANA_PRO = ModelFamily(
    model="nano_banana_pro",
    display_name="Nano Banana Pro",
    aspect_ratios=("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "5:4", "4:5", "21:9"),
    resolutions=("1K", "2K", "4K"),
    max_reference_images=14,
)
FAMILIES: tuple[ModelFamily, ...] = (NANO_BANANA_2, NANO_BANANA_PRO)

# How models are shown to members, whatever a provider calls them.
MODEL_NAMES: dict[str, str] = {family.model: family.display_name for family in FAMILIES}
# Every ratio any family takes, most used first; each model's own list is enforced by validate().
ASPECT_RATIOS: tuple[str, ...] = tuple(dict.fromkeys(r for family in FAMILIES for r in family.aspect_ratios))
