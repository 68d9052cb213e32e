"""Admin commands: the server's default model and provider, and the providers' state, which this cog
also records (and reports in ``[admin] alert_channel_id``) when the runner says a provider needs its
owner or works again (bot/events.py).

Permission is enforced here, in code (Manage Server, or the configured admin role), not only by
Discord's default_permissions, which a server can override in its integration settings.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.catalogue import usd
from bot.config import PROVIDER_NAMES
from bot.errors import InvalidRequestError
from bot.events import ProviderProblem, ProviderRecovered
from bot.jobs import MAX_CANDIDATES
from cogs.imagine import MODEL_CHOICES
from cogs.private_answers import answer_privately

log = logging.getLogger(__name__)

PROVIDER_CHOICES = [app_commands.Choice(name=name, value=name) for name in PROVIDER_NAMES]


def is_admin(interaction: discord.Interaction[Any], admin_role_id: int | None) -> bool:
    perms = interaction.permissions
    if perms.manage_guild or perms.administrator:
        return True
    roles = getattr(interaction.user, "roles", [])
    return admin_role_id is not None and any(role.id == admin_role_id for role in roles)


def require_admin(interaction: discord.Interaction[Any], admin_role_id: int | None) -> None:
    """Refuse (ephemerally, through the error handler) anyone who is not a bot admin in this server."""
    if interaction.guild_id is None:
        raise app_commands.CheckFailure("Admin commands work in a server, not in DMs.")
    if not is_admin(interaction, admin_role_id):
        raise app_commands.CheckFailure("You need the Manage Server permission (or the bot's admin role) for this.")


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminsOnlyGroup(commands.GroupCog):
    """A slash command group for the server's admins (/admin, /usage): hidden from others by default, and
    checked in code on every command, since a server can override the default in its integration settings.
    Subclasses name the group (``group_name=``); the decorators here carry over to their groups."""

    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        require_admin(interaction, self.bot.settings.admin.role_id)
        return True


class Admin(AdminsOnlyGroup, group_name="admin", group_description="Bananacord settings for this server"):
    @app_commands.command(name="defaults")
    @app_commands.describe(
        model="Model /imagine uses when a member picks none",
        provider="Provider tried first (others remain as failover)",
        max_count=f"Most images a member may ask for with one /imagine (count), 1 to {MAX_CANDIDATES}",
        reset="Forget this server's defaults and use the bot's configuration",
    )
    @app_commands.choices(model=MODEL_CHOICES, provider=PROVIDER_CHOICES)
    async def defaults(
        self,
        interaction: discord.Interaction[Any],
        model: str | None = None,
        provider: str | None = None,
        max_count: app_commands.Range[int, 1, MAX_CANDIDATES] | None = None,
        reset: bool = False,
    ) -> None:
        """Show or set this server's defaults: model, provider, images per /imagine."""
        assert interaction.guild_id is not None
        store = self.bot.services.settings_store
        catalogue = self.bot.services.catalogue
        current = await store.guild_defaults(interaction.guild_id)
        if reset or model is not None or provider is not None or max_count is not None:
            if model is not None and model not in catalogue.models():
                offered = ", ".join(catalogue.display_name(m) for m in catalogue.models())
                raise InvalidRequestError(f"`{model}` is not served by any enabled provider. Available: {offered}.")
            if provider is not None and provider not in catalogue.providers:
                raise InvalidRequestError(
                    f"`{provider}` is not enabled on this bot. Enabled: {', '.join(catalogue.providers)}."
                )
            chosen_model = None if reset else (model or current.default_model)
            chosen_provider = None if reset else (provider or current.default_provider)
            chosen_count = None if reset else (max_count or current.max_count)
            if chosen_model and chosen_provider and not catalogue.capabilities(chosen_provider, chosen_model):
                raise InvalidRequestError(
                    f"{chosen_provider} does not serve {catalogue.display_name(chosen_model)}; "
                    f"it will still be used as failover where it can."
                )
            current = await store.set_guild_defaults(
                interaction.guild_id,
                model=chosen_model,
                provider=chosen_provider,
                by=interaction.user.id,
                now=self.bot.clock(),
                max_count=chosen_count,
            )
            log.info(
                "guild %s defaults set by %s: model=%s provider=%s max_count=%s",
                interaction.guild_id,
                interaction.user.id,
                chosen_model,
                chosen_provider,
                chosen_count,
            )
        model_name = current.default_model or self.bot.settings.imagine.default_model
        first = current.default_provider or self.bot.settings.imagine.default_provider
        embed = discord.Embed(title="🍌 Server defaults", colour=discord.Colour(0xF5C518))
        embed.add_field(
            name="Model",
            value=f"{catalogue.display_name(model_name)}{'' if current.default_model else ' (bot default)'}",
        )
        embed.add_field(
            name="Provider order",
            value=" → ".join(catalogue.route(model_name, first=first)) or "none enabled",
            inline=False,
        )
        cap = current.max_count or MAX_CANDIDATES
        embed.add_field(
            name="Images per /imagine",
            value=f"up to {cap} (`count`){'' if current.max_count else ' (bot maximum)'}",
            inline=False,
        )
        if current.updated_by:
            embed.set_footer(text=f"Last changed by user {current.updated_by}")
        await answer_privately(interaction, embed=embed)

    @commands.Cog.listener()
    async def on_provider_problem(self, event: ProviderProblem) -> None:
        """A provider's key was rejected or its credit ran out: record it and tell the admins once."""
        exc = event.error
        changed = await self.bot.services.settings_store.mark_provider(
            event.provider, healthy=False, category=str(exc.category), detail=exc.user_message, now=self.bot.clock()
        )
        log.error("provider %s needs attention (%s): %s", event.provider, exc.category, exc.detail)
        channel_id = self.bot.settings.admin.alert_channel_id
        if not changed or channel_id is None:
            return
        try:
            await self.bot.get_partial_messageable(channel_id).send(
                f"⚠️ Provider **{event.provider}** needs attention: {exc.user_message} "
                "Jobs fail over to the next provider meanwhile. `/admin providers` shows the state.",
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as failed:  # the channel gone, the bot's permission taken, Discord down
            log.warning(
                "could not post the alert about provider %s to channel %s (HTTP %s); /admin providers shows it",
                event.provider,
                channel_id,
                failed.status,
            )

    @commands.Cog.listener()
    async def on_provider_recovered(self, event: ProviderRecovered) -> None:
        await self.bot.services.settings_store.mark_provider(
            event.provider, healthy=True, category=None, detail="accepted a job again", now=self.bot.clock()
        )
        log.info("provider %s works again", event.provider)

    @app_commands.command(name="providers")
    async def providers(self, interaction: discord.Interaction[Any]) -> None:
        """Enabled providers: their models, prices and health."""
        catalogue = self.bot.services.catalogue
        health = await self.bot.services.settings_store.provider_health()
        embed = discord.Embed(title="🍌 Providers", colour=discord.Colour(0xF5C518))
        for name in catalogue.providers:
            state = health.get(name)
            status = "✅ working" if state is None or state.healthy else f"⚠️ {state.detail or state.category}"
            lines = [status]
            for model in catalogue.models():
                caps = catalogue.capabilities(name, model)
                if caps is None:
                    continue
                prices = ", ".join(f"{size} {usd(micro)}" for size, micro in caps.prices_micro_usd)
                lines.append(f"{caps.display_name}: {prices or 'price unknown'}")
            embed.add_field(name=name, value="\n".join(lines)[:1024], inline=False)
        await answer_privately(interaction, embed=embed)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Admin(bot))
