"""/blend: two or more images made into one, as Midjourney's /blend does, with no words needed.

Members coming from Midjourney look for /blend. With Nano Banana it is an /imagine whose references are the
images and whose prompt asks for them blended (and says how, if the member adds words): so it is carried out
by /imagine itself (cogs/imagine.py), with everything that comes with it: the member's preferences, the
channel's safety level, moderation of the words, quotas, routing and failover, the job's message and buttons.
The images are attached (up to five), or linked in ``references`` as /imagine's are: most of the images members want
blended are in the channel already (two of the bot's own results), and linking a message takes no download.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.derive import BLEND, blend_prompt
from bot.jobs import MAX_CANDIDATES
from bot.prompts import PROMPT_MAX_CHARS
from cogs.imagine import MODEL_DESCRIPTION, OPTION_CHOICES, REFERENCES_MAX_CHARS, Imagine
from cogs.slow_answers import ANSWERS_ON_ITS_OWN

# The member's words fit in what is left of a prompt's length after BLEND and ": ".
BLEND_WORDS_MAX_CHARS = PROMPT_MAX_CHARS - len(BLEND) - 2


class Blend(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    # Its answer is the job's message, as /imagine's is.
    @app_commands.command(name="blend", extras={ANSWERS_ON_ITS_OWN: True})
    @app_commands.guild_only()
    @app_commands.describe(
        image1="The first image to blend (PNG, JPEG or WebP), or link them in references",
        image2="The second image to blend",
        image3="Another image to blend",
        image4="Another image to blend",
        image5="Another image to blend (Nano Banana Pro takes more than Nano Banana 2)",
        references="Images to blend already in the channel: links to their messages (Copy Message Link) or to images",
        prompt="How to blend them, if you want to say (`in watercolour`, `the cat from the first in the second`)",
        aspect_ratio="Shape of the image (each model offers its own set)",
        model=MODEL_DESCRIPTION,
        count=f"How many images to make, 1 to {MAX_CANDIDATES}, shown together (each costs its own)",
    )
    @app_commands.choices(model=OPTION_CHOICES["model"], aspect_ratio=OPTION_CHOICES["aspect_ratio"])
    async def blend(
        self,
        interaction: discord.Interaction[Any],
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        references: app_commands.Range[str, 1, REFERENCES_MAX_CHARS] | None = None,
        prompt: app_commands.Range[str, 1, BLEND_WORDS_MAX_CHARS] | None = None,
        aspect_ratio: str | None = None,
        model: str | None = None,
        count: app_commands.Range[int, 1, MAX_CANDIDATES] | None = None,
    ) -> None:
        """Blend two or more images into one new image."""
        imagine = self.bot.get_cog("Imagine")
        assert isinstance(imagine, Imagine)  # loaded before this cog (bot/app.py EXTENSIONS)
        images = [image for image in (image1, image2, image3, image4, image5) if image is not None]
        await imagine.make(
            interaction,
            blend_prompt(prompt),
            model=model,
            aspect_ratio=aspect_ratio,
            count=count,
            attached=images,
            references=references,
            fewest_images=2,  # attached or linked: known once the links are read
            instruction=BLEND,  # moderation judges the member's words, not the bot's (cogs/policy.py)
            suffixed=True,  # a new prompt: the member's /preferences suffix goes on it (bot/prompt_suffix.py)
        )


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Blend(bot))
