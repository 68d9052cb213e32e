"""Right-click remix: "Edit with Nano Banana" in a message's Apps menu edits that message's images.

The menu opens a form asking what to change; the message's images (attachments, then embedded images)
are the references. A message with more images than the model takes uses the first ones the model takes,
and the form's title says so before anything is sent ("Edit: first 3 of 5 images"): a member who picked
a message wants it edited, and reordering a gallery is not theirs to do. On the bot's own images the
edit keeps the original's model and options. Everything else (moderation in the channel where the menu
was used, the quota of the member who used it, the provider choice, the message with the result) is
/imagine's (cogs/imagine.py).
"""

from __future__ import annotations

import secrets
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import derive
from bot.app import Bananacord
from bot.errors import BananacordError, InvalidRequestError
from bot.models import ReferenceImage
from bot.store.jobs import Job
from cogs.editing import edit_request, message_images
from cogs.errors import send_ephemeral
from cogs.imagine import Imagine

MENU_NAME = "Edit with Nano Banana"
# Discord's ceiling for a text input in a form.
INSTRUCTION_MAX_CHARS = 4000


class RemixForm(discord.ui.Modal):
    """What to change; submitting it starts the edit with the images chosen when the form opened."""

    instruction: discord.ui.TextInput[RemixForm] = discord.ui.TextInput(
        label="What should change?",
        style=discord.TextStyle.paragraph,
        placeholder="make it night, add a red scarf, turn it into a watercolour…",
        max_length=INSTRUCTION_MAX_CHARS,
        custom_id="bananacord:remix:instruction",
    )

    def __init__(
        self,
        cog: Remix,
        *,
        model: str,
        original: Job | None,
        preferred: str | None,
        references: list[ReferenceImage],
        total: int,
    ) -> None:
        title = MENU_NAME if total == len(references) else f"Edit: first {len(references)} of {total} images"
        # A fresh custom_id per form: two forms open at once never answer each other's submissions.
        super().__init__(title=title, timeout=900, custom_id=f"bananacord:remix:{secrets.token_hex(8)}")
        self.cog = cog
        self.model = model
        self.original = original
        self.preferred = preferred
        self.references = references

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        request = edit_request(
            self.original, model=self.model, prompt=self.instruction.value, references=self.references
        )
        try:
            await self.cog.imagine.start_job(interaction, request, preferred=self.preferred)
        except BananacordError as exc:
            # A form's errors do not reach the app-command error handler: refusals (quota, moderation, the
            # model's limits) are answered here, privately, like every other refusal.
            await send_ephemeral(interaction, exc.user_message)


class Remix(commands.Cog):
    """The "Edit with Nano Banana" message command."""

    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.remix)
        self.menu.guild_only = True

    @property
    def imagine(self) -> Imagine:
        cog = self.bot.get_cog("Imagine")
        assert isinstance(cog, Imagine)
        return cog

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def remix(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """Edit this message's images: a form asks what to change."""
        images = message_images(message, max_bytes=self.bot.settings.imagine.max_attachment_bytes)
        if not images:
            raise InvalidRequestError(
                "That message has no image to edit. Use this on a message with an attached or embedded "
                "PNG, JPEG or WebP image."
            )
        me = self.bot.user
        original = None
        if me is not None and message.author.id == me.id:
            original = await self.bot.services.runner.store.by_message(message.id)
        defaults = await self.bot.services.settings_store.guild_defaults(interaction.guild_id or 0)
        model = (
            original.request.model if original else defaults.default_model or self.bot.settings.imagine.default_model
        )
        limit = derive.reference_limit(self.bot.services.catalogue, model)
        form = RemixForm(
            self,
            model=model,
            original=original,
            preferred=original.provider if original else defaults.default_provider,
            references=images[:limit],
            total=len(images),
        )
        await interaction.response.send_modal(form)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Remix(bot))
