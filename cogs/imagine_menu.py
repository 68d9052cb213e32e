"""The "Imagine this" message command: any message's words made into an image, from its menu.

A friend writes "a cat riding a dragon over Paris at night", and a member wants to see it: right-click the message
(long-press on a phone) → **Apps** → **Imagine this** opens a form holding its words (the bot's own mention taken
out, other mentions as names; to change first, if they like) and the Model list of the Use as reference form. Its
submit is the member's own ``/imagine`` of those words (cogs/imagine.py ``Imagine.make``: their preferences, the
suffix, the checks, moderation, quotas, the job's own message, charged to them), with the message's images as
references. The message's images are kept with the form in SQLite (bot/store/forms.py) as Discord sent them with the
command: a message that does not mention the bot comes back without them when read again, the bot having no
message-content intent (cogs/remix.py's form does the same). cogs/mention_prompts.py's **Imagine this** button is the
same for a member who @mentions the bot with words.
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.discord_refs import ReferencesGoneError, renewed_urls, stale
from bot.errors import InvalidRequestError
from bot.models import ReferenceImage
from bot.wording import counted
from cogs.editing import message_images
from cogs.message_menu import MessageMenu
from cogs.reference_form import PROMPT_INPUT_ID, TEXT_INPUT_MAX_CHARS, prompt_box

MENU_NAME = "Imagine this"
FORM_ID = re.compile(r"bananacord:imagine-menu:(?P<form_id>[0-9a-f]{16})")
# The most images of a message taken along: more than any model takes, so that the form's model choice refuses
# what it cannot take (as /imagine does), not this.
MOST_IMAGES = 16


class ImagineMenuForm(discord.ui.Modal):
    """The message's words, to send as the member's /imagine."""

    def __init__(self, form_id: str, words: str, images: int, model: discord.ui.Label[Any] | None) -> None:
        super().__init__(title=MENU_NAME, custom_id=f"bananacord:imagine-menu:{form_id}", timeout=None)
        description = (
            f"The message's words; its {counted(images, 'image')} go along as references."
            if images
            else "The message's words, to change as you like."
        )
        self.add_item(prompt_box(description, "a fox in the snow, at dawn --ar 16:9", words=words))
        if model is not None:
            self.add_item(model)
        self.stop()  # answered by on_interaction, as a form opened before a restart is


def words_of(message: discord.Message, me: discord.abc.User) -> str:
    """``message``'s words as a prompt (a forward's, those it forwards): mentions as the names Discord shows
    (discord.py's ``clean_content``), the bot's own taken out ("@Bananacord a fox" asks the bot; "a fox" is the
    prompt)."""
    text = message.clean_content
    guild = message.guild
    if not text.strip() and message.message_snapshots:  # a forward: the words of the message it forwards
        text = _named(message.message_snapshots[0].content, guild)
    own = {me.name, me.display_name}
    if guild is not None:
        own |= {guild.me.display_name} | ({guild.self_role.name} if guild.self_role is not None else set())
    for name in sorted(own, key=len, reverse=True):  # the longest first: a nickname may hold the name
        text = text.replace(f"@{name}", " ")
    return re.sub(r" {2,}", " ", text).strip()[:TEXT_INPUT_MAX_CHARS]


def _named(text: str, guild: discord.Guild | None) -> str:
    """``text`` with its mentions as the names Discord shows, as ``clean_content`` does for a message's own words (a
    forward's snapshot has no such property)."""
    if guild is None:
        return text

    def name(match: re.Match[str]) -> str:
        kind, ident = match[1], int(match[2])
        found: object
        if kind == "@&":
            found = guild.get_role(ident)
        elif kind == "#":
            found = guild.get_channel(ident)
        else:
            found = guild.get_member(ident)
        shown = getattr(found, "display_name", None) or getattr(found, "name", None)
        # A member the bot has not met (without the members intent it keeps none, and discord.py reads no mentions of
        # a snapshot): named as no one in particular, not by a number that means nothing to the model.
        fallback = {"#": "channel", "@&": "role"}.get(kind, "someone")
        return f"{'#' if kind == '#' else '@'}{shown or fallback}"

    return re.sub(r"<(@!?|@&|#)(\d+)>", name, text)


class ImagineMenu(MessageMenu):
    """The "Imagine this" message command."""

    FORM = FORM_ID
    TYPED = PROMPT_INPUT_ID

    def __init__(self, bot: Bananacord) -> None:
        super().__init__(bot, MENU_NAME, self.open)

    async def open(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """Make an image of this message's words: a form holds them, to change first."""
        me = self.bot.user
        words = words_of(message, me) if me is not None else message.content.strip()
        images = message_images(message, max_bytes=self.bot.settings.imagine.max_attachment_bytes)[:MOST_IMAGES]
        if not words and not images:
            raise InvalidRequestError(
                "That message has no words or image to imagine from. Use `/imagine` and say what to make."
            )
        form_id = await self.keep_form(interaction, {"references": [image.model_dump(mode="json") for image in images]})
        form = ImagineMenuForm(form_id, words, len(images), await self.imagine.model_choice(interaction))
        await interaction.response.send_modal(form)

    async def submitted(
        self, interaction: discord.Interaction[Any], body: dict[str, Any], components: list[Any], typed: str | None
    ) -> None:
        model = self.imagine.picked_model(components)
        references = [ReferenceImage.model_validate(r) for r in body.get("references", [])]
        # The links were Discord's when the form opened: renew any that expired while it stayed open.
        now = self.bot.clock()
        renewed = await renewed_urls(self.bot.http, [image.url for image in references], now=now)
        references = [image.model_copy(update={"url": renewed.get(image.url, image.url)}) for image in references]
        if any(stale(image.url, now) for image in references):
            raise ReferencesGoneError(detail="a message's image not renewed")
        await self.imagine.make(interaction, typed or "", model=model, starting_from=references, suffixed=True)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(ImagineMenu(bot))
