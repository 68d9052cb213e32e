"""/imagine and the job buttons (Cancel, Re-roll, Delete) as persistent DynamicItems."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

import discord
from discord import app_commands
from discord.ext import commands
from pydantic import ValidationError

from bot import render
from bot.app import Bananacord
from bot.catalogue import MODEL_NAMES
from bot.errors import BananacordError, ErrorCategory, InvalidRequestError
from bot.jobs import MAX_CANDIDATES
from bot.models import GenerationRequest, JobState, ReferenceImage
from bot.providers.base import OUTPUT_FORMATS, RESOLUTIONS, THINKING_LEVELS
from bot.providers.families import ASPECT_RATIOS
from bot.quotas import Member
from bot.store.jobs import Job, NewJob
from cogs.errors import send_ephemeral
from cogs.moderation import record_moderation
from cogs.policy import admit, moderate
from cogs.reference_links import linked_images

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
# /imagine's attachment options (Discord allows 25 options per command); more references come by link.
ATTACHMENT_SLOTS = 10
REFERENCES_MAX_CHARS = 2000
# Discord interaction tokens live 15 minutes.
TOKEN_LIFETIME = timedelta(minutes=15)
# Failures where pressing Re-roll with the same input cannot help.
NO_REROLL = {ErrorCategory.BAD_INPUT, ErrorCategory.CONTENT_BLOCKED, ErrorCategory.AUTH}


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:job:(?P<action>cancel|reroll|delete):(?P<job_id>[0-9a-f]{16})"),
):
    """A job message's button; action and job id ride in the custom_id, so it works after a restart."""

    STYLES: ClassVar[dict[str, tuple[str, discord.ButtonStyle, str]]] = {
        "cancel": ("Cancel", discord.ButtonStyle.danger, "✖️"),
        "reroll": ("Re-roll", discord.ButtonStyle.secondary, "🔁"),
        "delete": ("Delete", discord.ButtonStyle.secondary, "🗑️"),
    }

    def __init__(self, action: str, job_id: str) -> None:
        label, style, emoji = self.STYLES[action]
        super().__init__(
            discord.ui.Button(label=label, style=style, emoji=emoji, custom_id=render.custom_id(action, job_id))
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


def build_request(**fields: Any) -> GenerationRequest:
    """The request from the command's options, re-checking what Discord's UI checks (bounds, lengths)."""
    try:
        return GenerationRequest(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "option"
        message = OPTION_RULES.get(name, f"`{name}` has a value the bot cannot use.")
        raise InvalidRequestError(message, detail=f"option {name}: {first['msg']}") from None


def build_view(job: Job, phase: str) -> discord.ui.View | None:
    if phase == "progress":
        actions = ["cancel"]
    elif phase == "result":
        actions = ["reroll", "delete"]
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


def build_batch_view(batch: Sequence[Job]) -> discord.ui.View | None:
    """The buttons under a batch's message: one Cancel for every candidate still running; when all have
    ended, Re-roll (the whole batch again) and Delete (the message)."""
    lead = batch[0]
    if not all(job.terminal for job in batch):
        actions = ["cancel"]
    else:
        delivered = any(job.state is JobState.DELIVERED for job in batch)
        retry = delivered or any(job.error_category not in NO_REROLL for job in batch)
        actions = [*(["reroll"] if retry else []), *(["delete"] if delivered else [])]
    if not actions:
        return None
    view = discord.ui.View(timeout=None)
    for action in actions:
        view.add_item(JobButton(action, lead.id))
    return view


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
        self.bot.view_for = build_view
        self.bot.batch_view_for = build_batch_view

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(JobButton)

    @app_commands.command(name="imagine")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="Describe the image you want",
        model="Which Nano Banana model to use (the server's default if unset)",
        aspect_ratio="Shape of the image (each model offers its own set; auto lets the model choose)",
        resolution="Output size",
        count=f"How many images to make from this prompt, 1 to {MAX_CANDIDATES}, shown together (each costs its own)",
        image1="A reference image (PNG, JPEG or WebP)",
        image2="Another reference image",
        image3="Another reference image",
        image4="Another reference image (Nano Banana Pro takes more than Nano Banana 2)",
        references="Links to messages whose images are references too (Copy Message Link), for up to 14",
        seed="Same seed + same prompt gives a similar image (where the provider supports it)",
        output_format="File format of the result (where the provider lets you choose)",
        thinking="How long the model reasons before drawing (where supported)",
        web_search="Let the model look things up on the web first (where supported)",
        **{f"image{n}": "Another reference image" for n in range(5, ATTACHMENT_SLOTS + 1)},
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
        count: app_commands.Range[int, 1, MAX_CANDIDATES] = 1,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        references: app_commands.Range[str, 1, REFERENCES_MAX_CHARS] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        output_format: str | None = None,
        thinking: str | None = None,
        web_search: bool | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        image7: discord.Attachment | None = None,
        image8: discord.Attachment | None = None,
        image9: discord.Attachment | None = None,
        image10: discord.Attachment | None = None,
    ) -> None:
        """Generate an image with Google's Nano Banana models."""
        attached = (image1, image2, image3, image4, image5, image6, image7, image8, image9, image10)
        images = [a for a in attached if a is not None]
        if references:
            images += await linked_images(interaction, references)
        defaults = await self.bot.services.settings_store.guild_defaults(interaction.guild_id or 0)
        request = build_request(
            model=model or defaults.default_model or self.bot.settings.imagine.default_model,
            prompt=prompt,
            reference_images=tuple(self._reference(a) for a in images),
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            seed=seed,
            output_format=output_format,
            thinking_level=thinking,
            web_search=bool(web_search),
        )
        await self.start_job(interaction, request, preferred=defaults.default_provider, count=count)

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
        count: int = 1,
    ) -> list[Job]:
        """Validate, acknowledge within Discord's 3 s, record the job (or ``count`` candidates of one
        batch, shown in one message), and hand them to the runner."""
        # Each refusal below raises an InvalidRequestError -> ephemeral message; nothing stored, sent or charged.
        await self._check_count(interaction, count)
        request = await self.moderate(interaction, request)
        admission = admit(self.bot, request, member_of(interaction), preferred=preferred)
        provider, caps = admission.provider, admission.caps
        expires = interaction.created_at + TOKEN_LIFETIME
        new = NewJob(
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
        )
        runner = self.bot.services.runner
        # The quota check, the reservations and the job rows are one transaction; a refusal raises
        # QuotaExceededError (ephemeral, naming the limit and its reset) and leaves nothing behind.
        jobs = await runner.create_batch([new] * count, within=admission.reservation, held=True)
        try:
            callback = await interaction.response.defer(thinking=True)
            message_id = callback.message_id if callback is not None else None
            if message_id is None:
                message_id = (await interaction.original_response()).id
        except discord.HTTPException:
            # Discord never saw our answer (the interaction expired): nobody would see these jobs.
            for job in jobs:
                await runner.cancel(job.id, by_user=None)
            raise
        released = [await runner.release(job.id, message_id=message_id) or job for job in jobs]
        await runner.show_progress(jobs[0].id)
        return released

    async def _check_count(self, interaction: discord.Interaction[Any], count: int) -> None:
        cap = (await self.bot.services.settings_store.guild_defaults(interaction.guild_id or 0)).max_count
        cap = min(cap or MAX_CANDIDATES, MAX_CANDIDATES)
        if not 1 <= count <= cap:
            raise InvalidRequestError(
                f"This server allows up to {cap} image(s) per prompt; ask for `count:{cap}` or fewer."
                if count > 1
                else "`count` must be at least 1."
            )

    async def on_button(self, interaction: discord.Interaction[Any], action: str, job_id: str) -> None:
        store = self.bot.services.runner.store
        job = await store.get(job_id)
        if job is None:
            await send_ephemeral(interaction, "That job no longer exists.")
            return
        # A button of a batch's message acts for the whole batch: its candidates share the message.
        batch = await store.batch(job.batch_id) if job.batch_id is not None else [job]
        if action == "reroll":
            await self.start_job(interaction, job.request, preferred=job.provider, count=len(batch))
            return
        if not _can_manage(interaction, job):
            await send_ephemeral(interaction, "Only the member who asked for this image (or a moderator) can do that.")
            return
        if action == "cancel":
            running = [j for j in batch if not j.terminal and j.state is not JobState.SUCCEEDED]
            if not running:
                await send_ephemeral(interaction, "This job has already finished.")
                return
            await interaction.response.defer()
            for candidate in running:
                await self.bot.services.runner.cancel(candidate.id, by_user=interaction.user.id)
        elif action == "delete":
            await interaction.response.defer()
            if interaction.message is not None:
                await interaction.message.delete()
            for candidate in batch:
                await store.mark_deleted(candidate.id, by=interaction.user.id, now=self.bot.clock())
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


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Imagine(bot))
