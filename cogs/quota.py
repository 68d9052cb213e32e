"""/quota: what a member has left; and the admin controls: set limits, grant units, reset.

Admin subcommands check Manage Server (or the configured admin role) in code, not only through
Discord's command permissions, which a server can change.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.catalogue import MODEL_NAMES
from bot.quotas import QuotaStatus
from cogs.admin import require_admin
from cogs.imagine import member_of
from cogs.private_answers import answer_privately

log = logging.getLogger(__name__)

_WINDOW_WORDS = {"daily": "Today", "weekly": "This week", "monthly": "This month"}


def status_embed(status: QuotaStatus, costs: dict[str, dict[str, int]], who: str) -> discord.Embed:
    embed = discord.Embed(title=f"🍌 Quota for {who}", colour=discord.Colour(0xF5C518))
    if not status.enforced:
        embed.description = "Quotas are off on this bot: nothing is limited; usage is still recorded."
    elif status.unlimited:
        embed.description = "Unlimited (server owner or unlimited role); usage is still recorded."
    for usage in status.windows:
        granted = f" · +{usage.granted} granted" if usage.granted > 0 else ""
        if usage.limit is None:
            value = f"{usage.used} used · no limit"
        else:
            value = (
                f"{usage.used} of {usage.limit} used{granted} · **{usage.remaining} left**\n"
                f"resets <t:{int(usage.resets_at)}:R>"
            )
        embed.add_field(name=_WINDOW_WORDS[usage.window], value=value, inline=True)
    running = f"{status.in_flight}" + (f" of {status.in_flight_limit}" if status.in_flight_limit is not None else "")
    embed.add_field(name="Generating now", value=running, inline=True)
    lines = [
        f"{MODEL_NAMES.get(model, model)}: " + ", ".join(f"{size} = {units}" for size, units in table.items())
        for model, table in costs.items()
    ]
    embed.add_field(name="Cost in units", value="\n".join(lines) or "—", inline=False)
    source = status.limits.source if status.enforced else "off ([quotas] enabled = false)"
    embed.set_footer(text=f"Limits: {source}. Failed, blocked or cancelled images are refunded.")
    return embed


class Quota(commands.GroupCog, group_name="quota", group_description="Image quotas"):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        super().__init__()

    def _require_admin(self, interaction: discord.Interaction[Any]) -> None:
        require_admin(interaction, self.bot.settings.admin.role_id)

    @app_commands.command(name="show")
    @app_commands.guild_only()
    @app_commands.describe(member="(Admins) someone else's quota")
    async def show(self, interaction: discord.Interaction[Any], member: discord.Member | None = None) -> None:
        """How many images you have left, when that resets, and what each size costs."""
        target = interaction.user
        subject = member_of(interaction)
        if member is not None and member.id != interaction.user.id:
            self._require_admin(interaction)
            target = member
            subject = type(subject)(
                guild_id=subject.guild_id,
                user_id=member.id,
                role_ids=tuple(r.id for r in member.roles),
                is_owner=interaction.guild is not None and interaction.guild.owner_id == member.id,
            )
        status = await self.bot.services.quotas.status(subject)
        embed = status_embed(status, self.bot.settings.quotas.units, target.display_name)
        await answer_privately(interaction, embed=embed)

    @app_commands.command(name="set")
    @app_commands.guild_only()
    @app_commands.describe(
        member="Set an override for this member",
        role="Or set a tier for everyone with this role",
        daily="Units per day (empty: no daily limit)",
        weekly="Units per week",
        monthly="Units per month",
        in_flight="Requests generating at once (an /imagine with count counts once)",
        clear="Remove this member's or role's override instead",
    )
    async def set_(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member | None = None,
        role: discord.Role | None = None,
        daily: app_commands.Range[int, 0] | None = None,
        weekly: app_commands.Range[int, 0] | None = None,
        monthly: app_commands.Range[int, 0] | None = None,
        in_flight: app_commands.Range[int, 0] | None = None,
        clear: bool = False,
    ) -> None:
        """(Admins) Set a member's quota override or a role tier."""
        self._require_admin(interaction)
        if (member is None) == (role is None):
            raise app_commands.CheckFailure("Name exactly one member or one role.")
        guild_id = interaction.guild_id or 0
        scope, target_id, name = ("user", member.id, member.mention) if member else ("role", role.id, role.mention)  # type: ignore[union-attr]
        if clear:
            await self.bot.services.quotas.clear_limits(guild_id, scope, target_id)
            text = f"Removed the quota override for {name}."
        else:
            await self.bot.services.quotas.set_limits(
                guild_id,
                scope,
                target_id,
                daily=daily,
                weekly=weekly,
                monthly=monthly,
                in_flight=in_flight,
                by=interaction.user.id,
            )
            parts = [
                f"{k} {v if v is not None else 'unlimited'}"
                for k, v in (("daily", daily), ("weekly", weekly), ("monthly", monthly), ("in flight", in_flight))
            ]
            text = f"Quota for {name}: " + ", ".join(parts) + "."
        log.info("guild %s: %s by %s", guild_id, text, interaction.user.id)
        await answer_privately(interaction, text)

    @app_commands.command(name="grant")
    @app_commands.guild_only()
    @app_commands.describe(member="Who gets the units", units="One-off extra units", reason="Why (kept in the ledger)")
    async def grant(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member,
        units: app_commands.Range[int, 1, 100_000],
        reason: str | None = None,
    ) -> None:
        """(Admins) Give a member extra units, once."""
        self._require_admin(interaction)
        await self.bot.services.quotas.grant(
            interaction.guild_id or 0, member.id, units, by=interaction.user.id, reason=reason
        )
        await answer_privately(
            interaction,
            f"Granted {units} unit(s) to {member.mention}.",
        )

    @app_commands.command(name="reset")
    @app_commands.guild_only()
    @app_commands.describe(member="Whose usage to forget")
    async def reset(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        """(Admins) Start a member's windows afresh (their past usage stays in reports)."""
        self._require_admin(interaction)
        await self.bot.services.quotas.reset(interaction.guild_id or 0, member.id, by=interaction.user.id)
        await answer_privately(interaction, f"Reset {member.mention}'s quota.")


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Quota(bot))
