"""/imagine and the job buttons as persistent DynamicItems: Cancel while it runs; Vary, Edit (with its
modal), Re-render 2K/4K, Re-roll and Delete on a finished image (docs/architecture.md section 4.7)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands
from pydantic import ValidationError

from bot import derive, render
from bot.app import Bananacord
from bot.catalogue import MODEL_NAMES
from bot.discord_refs import refresh_references
from bot.errors import BananacordError, ErrorCategory, InvalidRequestError
from bot.models import GenerationRequest, JobState, ReferenceImage
from bot.providers.base import OUTPUT_FORMATS, RESOLUTIONS, THINKING_LEVELS
from bot.providers.families import ASPECT_RATIOS
from bot.quotas import Member
from bot.store.jobs import Job, NewJob
from cogs.errors import send_ephemeral
from cogs.moderation import record_moderation
from cogs.policy import admit, moderate

log = logging.getLogger(__name__)

MODEL_CHOICES = [app_commands.Choice(name=name, value=value) for value, name in MODEL_NAMES.items()]
RATIO_CHOICES = [app_commands.Choice(name=r, value=r) for r in ASPECT_RATIOS]
FORMAT_CHOICES = [app_commands.Choice(name=f.upper(), value=f) for f in OUTPUT_FORMATS]
THINKING_CHOICES = [app_commands.Choice(name=t, value=t) for t in THINKING_LEVELS]
RESOLUTION_CHOICES = [app_commands.Choice(name="512 px" if r == "512" else r, value=r) for r in RESOLUTIONS]
# Discord's own ceiling for a string option; each provider's lower limit is enforced by validate().
PROMPT_MAX_CHARS = 6000
SEED_MAX = 2_147_483_647
# What a member reads when a value sent past Discord's own checks (a modified client, a raw API call)
# does not fit; Discord enforces min/max in its UI, but nothing stops a hand-made payload.
OPTION_RULES = {
    "prompt": f"`prompt` must be 1 to {PROMPT_MAX_CHARS:,} characters of text.",
    "seed": f"`seed` must be a whole number from 0 to {SEED_MAX:,}.",
    "safety_tolerance": "The safety level must be from 1 to 6.",
}
# Discord interaction tokens live 15 minutes.
TOKEN_LIFETIME = timedelta(minutes=15)
# Failures where pressing Re-roll with the same input cannot help.
NO_REROLL = {ErrorCategory.BAD_INPUT, ErrorCategory.CONTENT_BLOCKED, ErrorCategory.AUTH}


# action -> (label, style, emoji, row). The upscale actions are labelled as what they are: a new render.
BUTTONS: dict[str, tuple[str, discord.ButtonStyle, str, int]] = {
    "cancel": ("Cancel", discord.ButtonStyle.danger, "✖️", 0),
    "vary": ("Vary", discord.ButtonStyle.secondary, "🔀", 0),
    "edit": ("Edit", discord.ButtonStyle.secondary, "✏️", 0),
    **{f"upscale-{s}": (f"Re-render {s}", discord.ButtonStyle.secondary, "🔍", 0) for s in derive.UPSCALE_SIZES},
    "reroll": ("Re-roll", discord.ButtonStyle.secondary, "🔁", 1),
    "delete": ("Delete", discord.ButtonStyle.secondary, "🗑️", 1),
}
# The Edit modal's custom_id carries the job id too, so a modal opened before a restart still works.
EDIT_MODAL_ID = re.compile(r"bananacord:edit:(?P<job_id>[0-9a-f]{16})")
EDIT_INPUT_ID = "instruction"
# Discord's ceiling for a text input; each provider's lower prompt limit is enforced by validate().
EDIT_MAX_CHARS = 4000


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(rf"bananacord:job:(?P<action>{'|'.join(map(re.escape, BUTTONS))}):(?P<job_id>[0-9a-f]{{16}})"),
):
    """A job message's button; action and job id ride in the custom_id, so it works after a restart."""

    def __init__(self, action: str, job_id: str) -> None:
        label, style, emoji, row = BUTTONS[action]
        super().__init__(
            discord.ui.Button(
                label=label, style=style, emoji=emoji, custom_id=render.custom_id(action, job_id), row=row
            )
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        return cls(match["action"], match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog("Imagine")
        assert isinstance(cog, Imagine)
        try:
            await cog.on_button(interaction, self.action, self.job_id)
        except BananacordError as exc:
            # Buttons do not pass through the app-command error handler: answer here (e.g. a Re-roll
            # refused by a quota), privately, instead of Discord's bare "This interaction failed".
            await send_ephemeral(interaction, exc.user_message)


class EditModal(discord.ui.Modal):
    """Asks what to change in an image. Its submit is answered by ``Imagine.on_interaction``, not by
    this object: discord.py matches a submit only to a modal this process still holds, so one opened
    before a restart would go unanswered, and one never submitted would be held forever."""

    def __init__(self, job_id: str) -> None:
        super().__init__(title="Edit this image", custom_id=f"bananacord:edit:{job_id}", timeout=None)
        self.add_item(
            discord.ui.Label(
                text="What should change?",
                description="The image is kept as the starting point; say what to change.",
                component=discord.ui.TextInput(
                    custom_id=EDIT_INPUT_ID,
                    style=discord.TextStyle.paragraph,
                    placeholder="make it night · remove the hat · the same scene seen from the side",
                    min_length=1,
                    max_length=EDIT_MAX_CHARS,
                ),
            )
        )
        # A stopped modal is not kept by discord.py (send_modal stores only unfinished ones).
        self.stop()


def submitted_text(components: list[Any], custom_id: str) -> str | None:
    """A text input's value in a modal submit's components (inside action rows or labels)."""
    for component in components:
        if not isinstance(component, dict):
            continue
        if component.get("type") == 1:
            found = submitted_text(list(component.get("components") or []), custom_id)
        elif component.get("type") == 18:
            found = submitted_text([component.get("component")], custom_id)
        else:
            found = str(component.get("value") or "") if component.get("custom_id") == custom_id else None
        if found is not None:
            return found
    return None


def build_request(**fields: Any) -> GenerationRequest:
    """The request from the command's options, re-checking what Discord's UI checks (bounds, lengths)."""
    try:
        return GenerationRequest(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "option"
        message = OPTION_RULES.get(name, f"`{name}` has a value the bot cannot use.")
        raise InvalidRequestError(message, detail=f"option {name}: {first['msg']}") from None


def member_of(interaction: discord.Interaction[Any]) -> Member:
    """Who asks, as quotas see it: roles for tiers, ownership for the bypass."""
    user = interaction.user
    roles = tuple(role.id for role in getattr(user, "roles", []))
    guild = interaction.guild
    owner = guild is not None and guild.owner_id == user.id
    return Member(guild_id=interaction.guild_id or 0, user_id=user.id, role_ids=roles, is_owner=owner)


def _can_manage(interaction: discord.Interaction[Any], job: Job) -> bool:
    if interaction.user.id == job.user_id:
        return True
    # interaction.permissions are the member's resolved permissions in this channel, sent by Discord.
    perms = interaction.permissions
    return perms.manage_messages or perms.administrator


class Imagine(commands.Cog):
    """Image generation commands."""

    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(JobButton)
        self.bot.view_for = self.build_view

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(JobButton)

    @app_commands.command(name="imagine")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="Describe the image you want",
        model="Which Nano Banana model to use (the server's default if unset)",
        aspect_ratio="Shape of the image (each model offers its own set; auto lets the model choose)",
        resolution="Output size",
        image1="A reference image (PNG, JPEG or WebP)",
        image2="Another reference image",
        image3="Another reference image",
        image4="Another reference image (Nano Banana Pro takes more than Nano Banana 2)",
        seed="Same seed + same prompt gives a similar image (where the provider supports it)",
        output_format="File format of the result (where the provider lets you choose)",
        thinking="How long the model reasons before drawing (where supported)",
        web_search="Let the model look things up on the web first (where supported)",
    )
    @app_commands.choices(
        model=MODEL_CHOICES,
        aspect_ratio=RATIO_CHOICES,
        resolution=RESOLUTION_CHOICES,
        output_format=FORMAT_CHOICES,
        thinking=THINKING_CHOICES,
    )
    async def imagine(
        self,
        interaction: discord.Interaction[Any],
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS],
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        output_format: str | None = None,
        thinking: str | None = None,
        web_search: bool | None = None,
    ) -> None:
        """Generate an image with Google's Nano Banana models."""
        attachments = [a for a in (image1, image2, image3, image4) if a is not None]
        references = [self._reference(a) for a in attachments]
        defaults = await self.bot.services.settings_store.guild_defaults(interaction.guild_id or 0)
        request = build_request(
            model=model or defaults.default_model or self.bot.settings.imagine.default_model,
            prompt=prompt,
            reference_images=tuple(references),
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            seed=seed,
            output_format=output_format,
            thinking_level=thinking,
            web_search=bool(web_search),
        )
        await self.start_job(interaction, request, preferred=defaults.default_provider)

    def _reference(self, attachment: discord.Attachment) -> ReferenceImage:
        limit = self.bot.settings.imagine.max_attachment_bytes
        if attachment.size > limit:
            raise InvalidRequestError(
                f"`{attachment.filename}` is {attachment.size / 1_048_576:.1f} MiB; reference images may be "
                f"at most {limit / 1_048_576:.0f} MiB."
            )
        return ReferenceImage(
            url=attachment.url,
            content_type=attachment.content_type or "",
            size=attachment.size,
            filename=attachment.filename,
        )

    async def moderate(self, interaction: discord.Interaction[Any], request: GenerationRequest) -> GenerationRequest:
        """Ban, blocked terms, then the channel's safety level, which the request carries from here on."""
        return await moderate(
            self.bot,
            request,
            guild_id=interaction.guild_id or 0,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            nsfw_channel=bool(getattr(interaction.channel, "nsfw", False)),
        )

    async def start_job(
        self,
        interaction: discord.Interaction[Any],
        request: GenerationRequest,
        *,
        preferred: str | None = None,
    ) -> Job:
        """Validate, acknowledge within Discord's 3 s, record the job, and hand it to the runner."""
        # Each refusal below raises an InvalidRequestError -> ephemeral message; nothing stored, sent or charged.
        request = await self.moderate(interaction, request)
        admission = admit(self.bot, request, member_of(interaction), preferred=preferred)
        provider, caps = admission.provider, admission.caps
        expires = interaction.created_at + TOKEN_LIFETIME
        # The quota check, the reservation and the job row are one transaction; a refusal raises
        # QuotaExceededError (ephemeral, naming the limit and its reset) and leaves nothing behind.
        job = await self.bot.services.runner.create(
            NewJob(
                provider=provider,
                model=request.model,
                request=request,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                user_id=interaction.user.id,
                application_id=interaction.application_id,
                interaction_id=interaction.id,
                interaction_token=interaction.token,
                token_expires_at=expires.timestamp(),
                upload_limit=interaction.filesize_limit,
                cost_micro_usd=caps.price(request.resolution),
                safety_level=request.safety_tolerance,
            ),
            within=admission.reservation,
            held=True,
        )
        try:
            callback = await interaction.response.defer(thinking=True)
            message_id = callback.message_id if callback is not None else None
            if message_id is None:
                message_id = (await interaction.original_response()).id
        except discord.HTTPException:
            # Discord never saw our answer (the interaction expired): nobody would see this job.
            await self.bot.services.runner.cancel(job.id, by_user=None)
            raise
        released = await self.bot.services.runner.release(job.id, message_id=message_id)
        await self.bot.services.runner.show_progress(job.id)
        return released or job

    def build_view(self, job: Job, phase: str) -> discord.ui.View | None:
        """The buttons under a job's message: Cancel while it runs; on an image, what can be done with it."""
        if phase == "progress":
            actions = ["cancel"]
        elif phase == "result":
            catalogue = self.bot.services.catalogue
            caps = catalogue.capabilities(job.provider, job.model)
            size = job.request.resolution or (caps.default_resolution if caps else "1K")
            upscales = [f"upscale-{s}" for s in derive.upscale_sizes(catalogue, job.model, size)]
            actions = ["vary", "edit", *upscales, "reroll", "delete"]
        elif job.error_category in NO_REROLL:
            actions = []
        else:
            actions = ["reroll"]
        if not actions:
            return None
        view = discord.ui.View(timeout=None)
        for action in actions:
            view.add_item(JobButton(action, job.id))
        return view

    def _shown_image(self, interaction: discord.Interaction[Any]) -> tuple[ReferenceImage, str]:
        """The image on the pressed message, as Discord serves it now (its link freshly signed)."""
        message = interaction.message
        images = [a for a in message.attachments if (a.content_type or "").startswith("image/")] if message else []
        if message is None or not images:
            raise InvalidRequestError(
                "The image is no longer on this message, so there is nothing to work from. "
                "Run /imagine again (you were not charged)."
            )
        return self._reference(images[0]), message.jump_url

    async def _renewed(self, request: GenerationRequest) -> GenerationRequest:
        return await refresh_references(self.bot.http, request, now=self.bot.clock())

    async def on_button(self, interaction: discord.Interaction[Any], action: str, job_id: str) -> None:
        job = await self.bot.services.runner.store.get(job_id)
        if job is None:
            await send_ephemeral(interaction, "That job no longer exists.")
            return
        if action == "reroll":
            await self.start_job(interaction, await self._renewed(job.request), preferred=job.provider)
            return
        if action == "edit":
            # Refuse now, not after the member has typed: no image, or a ban (moderate() checks bans
            # first, so it raises the ban's own message before looking at any prompt).
            self._shown_image(interaction)
            if await self.bot.services.moderation.active_ban(interaction.guild_id or 0, interaction.user.id):
                await self.moderate(interaction, job.request)
            await interaction.response.send_modal(EditModal(job.id))
            return
        if action == "vary" or action.startswith("upscale-"):
            image, message_url = self._shown_image(interaction)
            origin = (job.id, message_url)
            if action == "vary":
                limit = derive.reference_limit(self.bot.services.catalogue, job.model)
                request = derive.vary(job.request, image, origin, limit=limit)
            else:
                request = derive.upscale(job.request, image, action.removeprefix("upscale-"), origin)
            await self.start_job(interaction, await self._renewed(request), preferred=job.provider)
            return
        if not _can_manage(interaction, job):
            await send_ephemeral(interaction, "Only the member who asked for this image (or a moderator) can do that.")
            return
        if action == "cancel":
            if job.terminal or job.state is JobState.SUCCEEDED:
                await send_ephemeral(interaction, "This job has already finished.")
                return
            await interaction.response.defer()
            await self.bot.services.runner.cancel(job_id, by_user=interaction.user.id)
        elif action == "delete":
            await interaction.response.defer()
            if interaction.message is not None:
                await interaction.message.delete()
            await self.bot.services.runner.store.mark_deleted(job_id, by=interaction.user.id, now=self.bot.clock())
            if interaction.user.id != job.user_id:
                await record_moderation(
                    self.bot,
                    job.guild_id or 0,
                    "delete",
                    f"<@{interaction.user.id}> deleted an image by <@{job.user_id}> (job {job.id}).",
                    actor_id=interaction.user.id,
                    target_id=job.user_id,
                    channel_id=job.channel_id,
                    job_id=job.id,
                    prompt=job.request.prompt,
                )

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """The Edit modal's submit, whether this process or an earlier one opened it (see EditModal)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: Any = interaction.data or {}
        match = EDIT_MODAL_ID.fullmatch(str(data.get("custom_id", "")))
        if match is None:
            return
        instruction = submitted_text(data.get("components") or [], EDIT_INPUT_ID)
        try:
            await self.on_edit_submit(interaction, match["job_id"], instruction)
        except BananacordError as exc:
            await send_ephemeral(interaction, exc.user_message)

    async def on_edit_submit(self, interaction: discord.Interaction[Any], job_id: str, instruction: str | None) -> None:
        job = await self.bot.services.runner.store.get(job_id)
        if job is None:
            await send_ephemeral(interaction, "That job no longer exists.")
            return
        if not instruction or not instruction.strip():
            await send_ephemeral(interaction, "Say what should change, e.g. “make it night”.")
            return
        image, message_url = self._shown_image(interaction)
        request = derive.edit(job.request, image, instruction, (job.id, message_url))
        await self.start_job(interaction, request, preferred=job.provider)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Imagine(bot))
