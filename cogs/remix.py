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

import re
from typing import Any

import discord
from discord.ext import commands

from bot import derive
from bot.app import Bananacord
from bot.discord_refs import refresh_references
from bot.errors import InvalidRequestError
from bot.models import ReferenceImage
from bot.option_sets import unknown_name_note
from bot.preferences import ModelChoice, model_at, passed_over_note
from bot.prompt_parameters import ignored_note, split_parameters
from bot.references import check_fits_provider
from bot.routing import require_served
from bot.store.erasure import words_kept
from cogs.editing import edit_request, image_proportion, message_images
from cogs.imagine import submitted_values
from cogs.message_menu import MessageMenu
from cogs.places import level_at, place_of
from cogs.prompt_choices import edit_choices, one_of
from cogs.reference_form import TEXT_INPUT_MAX_CHARS
from cogs.region_field import asked_region, check_region, check_region_frame, region_field
from cogs.shape_field import asked_change, shape_field
from cogs.typed_links import member_option_sets, not_among, typed_links

MENU_NAME = "Edit with Nano Banana"


# The form's custom_id names the row that holds what it was opened on (bot/store/forms.py), so its submit
# is answered by whichever process is running then, one that restarted while the form was open included.
FORM_ID = re.compile(r"bananacord:remix:(?P<form_id>[0-9a-f]{16})")
INSTRUCTION_ID = "bananacord:remix:instruction"
SHAPE_ID = "bananacord:remix:shape"
REGION_ID = "bananacord:remix:region"


class RemixForm(discord.ui.Modal):
    """What to change. Its submit is answered by ``Remix.on_interaction``, not by this object:
    discord.py matches a submit only to a form this process still holds, so one opened before a restart
    would go unanswered (as the Edit button's form, cogs/imagine.py)."""

    def __init__(
        self, form_id: str, *, used: int, total: int, frame: discord.ui.Label[Any], region: discord.ui.Label[Any]
    ) -> None:
        title = MENU_NAME if total == used else f"Edit: first {used} of {total} images"
        super().__init__(title=title, timeout=None, custom_id=f"bananacord:remix:{form_id}")
        self.add_item(
            discord.ui.Label(
                text="What should change?",
                description="Or leave this empty and only reframe it. An image's Discord link adds that image too.",
                component=discord.ui.TextInput(
                    style=discord.TextStyle.paragraph,
                    placeholder="make it night, add a red scarf, turn it into a watercolour…",
                    max_length=TEXT_INPUT_MAX_CHARS,
                    custom_id=INSTRUCTION_ID,
                    # The words may be left out: a zoom out or a new shape alone is a change.
                    required=False,
                ),
            )
        )
        self.add_item(frame)
        self.add_item(region)
        # A stopped form is not kept by discord.py (send_modal stores only unfinished ones).
        self.stop()


class Remix(MessageMenu):
    """The "Edit with Nano Banana" message command."""

    FORM = FORM_ID
    TYPED = INSTRUCTION_ID

    def __init__(self, bot: Bananacord) -> None:
        super().__init__(bot, MENU_NAME, self.remix)

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
        services = self.bot.services
        defaults = await services.settings_store.guild_defaults(interaction.guild_id or 0)
        # An image the bot made keeps its model; any other takes the member's (/preferences), else the server's,
        # as /imagine chooses it in this channel: one no provider honouring its safety level serves is passed
        # over (bot/preferences.py model_at), and the member told why once the job starts. Chosen without the
        # level, a member's saved Nano Banana Pro in a level-6 channel had the edit refused after they typed it.
        level: int | None = None
        if original is not None:
            choice = ModelChoice(original.request.model)
        else:
            prefs = await services.preferences.get(interaction.guild_id or 0, interaction.user.id)
            level = await level_at(self.bot, interaction.guild_id or 0, place_of(interaction.channel))
            choice = model_at(
                services.catalogue,
                prefs,
                server_default=defaults.default_model,
                configured=self.bot.settings.imagine.default_model,
                level=level,
            )
        model = choice.model
        require_served(services.catalogue, model)  # before the form: the member would type for nothing
        limit = derive.reference_limit(self.bot.services.catalogue, model)
        references = images[:limit]
        # Now, not after the member has typed: an image of the bot's larger than any provider here takes.
        check_fits_provider(services.catalogue, model, references)
        shapes = derive.shapes(services.catalogue, model)
        width_over_height = image_proportion(message, images[0])  # the first reference, where one is taken
        current = derive.own_shape(original.request.aspect_ratio if original else None, width_over_height, shapes)
        body = {
            "model": model,
            "shape": current,
            "proportion": width_over_height,
            "original": original.id if original else None,
            "shown_at": message.jump_url,
            "preferred": original.provider if original else defaults.default_provider,
            "references": [ref.model_dump(mode="json") for ref in references],
            "model_note": passed_over_note(self.bot.services.catalogue, choice, level),
        }
        # The message's images as Discord showed them now (cogs/message_menu.py).
        form_id = await self.keep_form(interaction, body)
        frame = shape_field(shapes, current, proportion=width_over_height, custom_id=SHAPE_ID)
        region = region_field(REGION_ID, of_first=len(references) > 1)
        form = RemixForm(form_id, used=len(references), total=len(images), frame=frame, region=region)
        await interaction.response.send_modal(form)

    async def submitted(
        self, interaction: discord.Interaction[Any], body: dict[str, Any], components: list[Any], typed: str | None
    ) -> None:
        catalogue = self.bot.services.catalogue
        # Images linked in the words are references after the message's (cogs/typed_links.py).
        text = typed
        region = asked_region(submitted_values(components, REGION_ID))  # absent in a form opened by an older version
        check_region(region, text)
        here = place_of(interaction.channel)
        sets = await member_option_sets(self.bot, interaction.guild_id, interaction.user.id)
        linked_in = await typed_links(self.bot, text, guild=interaction.guild, here=here, edit=True, option_sets=sets)
        original = words_kept(await self.bot.services.runner.store.get(body["original"]) if body["original"] else None)
        references = [ReferenceImage.model_validate(ref) for ref in body["references"]]
        references += not_among(linked_in.images, references)
        # "make it {night, winter}": an edit for each choice, one batch (cogs/prompt_choices.py).
        variants = edit_choices(linked_in.words, cap=await self.imagine.count_cap(interaction))
        requests = []
        for variant in variants:
            instruction, frame, ignored = asked_change(
                variant.text,
                submitted_values(components, SHAPE_ID),
                offered=derive.shapes(catalogue, body["model"]),
                # Both absent in a form kept by an older version: it had no Reframe choice.
                current=body.get("shape"),
                proportion=body.get("proportion"),
                model_name=catalogue.display_name(body["model"]),
            )
            check_region_frame(region, frame)
            request = edit_request(
                original,
                model=body["model"],
                prompt=instruction,
                references=references,
                frame=frame,
                region=region,
                shown_at=body.get("shown_at"),  # absent in a form kept by an older version
                by=interaction.user.id,  # another member's earlier references stay theirs (bot/derive.py continued)
            )
            # The links were Discord's when the form opened: renew any that expired while it stayed open.
            request = await refresh_references(self.bot.http, request, now=self.bot.clock())
            requests.append(one_of(request, linked_in.words, variant, many=len(variants) > 1))
        jobs = await self.imagine.start_each(interaction, requests, preferred=body["preferred"])
        # The model's note absent in a form kept by an older version.
        unknown = unknown_name_note(split_parameters(linked_in.words).words, sets)
        notes = [note for note in (body.get("model_note"), ignored_note(ignored), unknown) if note]
        await self.imagine.tell_after(interaction, jobs, notes)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Remix(bot))
