"""/usage for admins: a server's usage over a period, one member's, and a CSV export of the ledger.

Figures come from bot.store.usage, which reads the ledger; they are the same the shell prints with
`bananacord usage`. Permission is checked here in code (Manage Server or the admin role).
"""

from __future__ import annotations

import asyncio
import gzip
import io
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.catalogue import MODEL_NAMES, usd
from bot.errors import InvalidRequestError
from bot.render import literal
from bot.store.usage import (
    GroupUsage,
    Usage,
    UsageReports,
    period_bounds,
    period_words,
    report_period,
    to_csv,
)
from cogs.admin import AdminsOnlyGroup
from cogs.private_answers import answer_privately

# A display name is at most 32 characters; escaped, at most twice that (an embed title takes 256).
NAME_CHARS = 64

PERIODS = [
    app_commands.Choice(name=n, value=v) for n, v in (("today", "day"), ("this week", "week"), ("this month", "month"))
]


def _usage(u: Usage) -> str:
    return f"{u.images} image(s) · {u.units} unit(s) · {usd(u.cost_micro_usd)}"


def _groups(groups: tuple[GroupUsage, ...], names: dict[str, str] | None = None) -> str:
    lines = [
        f"{(names or {}).get(g.name or '', g.name or '—')}: {g.images} · {g.units}u · {usd(g.cost_micro_usd)}"
        for g in groups
    ]
    return "\n".join(lines)[:1024] or "—"


class UsageCog(AdminsOnlyGroup, group_name="usage", group_description="Usage reports (admins)"):
    def _bounds(self, period: str | None, since: str | None, until: str | None, now: float) -> tuple[float, float]:
        """The period asked for, as ``bananacord usage`` reads it: a period named with since/until is refused
        (it was ignored), and so is a bound the report cannot show (it was "something went wrong")."""
        q = self.bot.settings.quotas
        try:
            return period_bounds(
                report_period(period, since, until),
                now,
                tz=q.timezone,
                reset_hour=q.reset_hour,
                since=since,
                until=until,
            )
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None

    @app_commands.command(name="report")
    @app_commands.describe(
        period="Which window (default: this month; leave out with since/until)",
        member="One member's usage instead of the server's",
        since="Custom start, ISO date like 2026-11-01",
        until="Custom end (exclusive), ISO date",
    )
    @app_commands.choices(period=PERIODS)
    async def report(
        self,
        interaction: discord.Interaction[Any],
        period: str | None = None,
        # A user, not a Member: one who has left the server comes without member data, and discord.py
        # refused them (TransformerError, "something went wrong"); their charges are still in the ledger.
        member: discord.User | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> None:
        """Images, units and estimated cost: totals, top members, per model and provider, failures."""
        now = self.bot.clock()
        start, end = self._bounds(period, since, until, now)
        reports = UsageReports(self.bot.services.db)
        guild_id = interaction.guild_id or 0
        q = self.bot.settings.quotas
        when = period_words(start, end, now, tz=q.timezone, reset_hour=q.reset_hour)
        embed = discord.Embed(colour=discord.Colour(0xF5C518))
        if member is not None:
            user = await reports.user_report(guild_id, member.id, start, end)
            embed.title = f"🍌 Usage of {literal(member.display_name, NAME_CHARS)}"
            embed.description = when
            embed.add_field(name="Charged", value=_usage(user.charged), inline=False)
            embed.add_field(name="Refunded", value=_usage(user.refunded), inline=False)
            embed.add_field(name="Per model", value=_groups(user.by_model, MODEL_NAMES))
            embed.add_field(name="Per provider", value=_groups(user.by_provider))
            embed.add_field(
                name="Outcomes",
                value=f"{user.failed} failed · {user.blocked} blocked · {user.cancelled} cancelled · "
                f"{user.in_flight} generating{_waiting(user.waiting)} · {user.grants_units} unit(s) granted",
                inline=False,
            )
        else:
            guild = await reports.guild_report(guild_id, start, end)
            embed.title = "🍌 Server usage"
            embed.description = when
            embed.add_field(name="Charged", value=_usage(guild.charged), inline=False)
            embed.add_field(name="Unlimited members (recorded)", value=_usage(guild.bypass), inline=False)
            top = "\n".join(
                f"<@{u.user_id}>: {u.images} · {u.units}u · {usd(u.cost_micro_usd)}" for u in guild.top_users
            )
            embed.add_field(name="Top members", value=top[:1024] or "—", inline=False)
            embed.add_field(name="Per model", value=_groups(guild.by_model, MODEL_NAMES))
            embed.add_field(name="Per provider", value=_groups(guild.by_provider))
            embed.add_field(
                name="Outcomes",
                value=f"{guild.failed} failed · {guild.blocked} blocked · {guild.cancelled} cancelled · "
                f"{guild.in_flight} generating{_waiting(guild.waiting)} · {guild.grants_units} unit(s) granted",
                inline=False,
            )
        embed.set_footer(text="Costs are estimates from the configured price table.")
        await answer_privately(interaction, embed=embed)

    @app_commands.command(name="export")
    @app_commands.describe(
        period="Which window (default: this month; leave out with since/until)",
        since="Custom start (ISO date)",
        until="Custom end",
    )
    @app_commands.choices(period=PERIODS)
    async def export(
        self,
        interaction: discord.Interaction[Any],
        period: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> None:
        """Every ledger row of the period as a gzip-compressed CSV file."""
        start, end = self._bounds(period, since, until, self.bot.clock())
        rows = await UsageReports(self.bot.services.db).export_rows(interaction.guild_id or 0, start, end)
        # Compressed: a busy server's month is megabytes of CSV (60,000 rows are ~11 MB, refused by Discord
        # with 413 and shown as "something went wrong"); its repetitive text shrinks several times over.
        # Off the event loop: compressing megabytes takes a moment.
        data = await asyncio.to_thread(lambda: gzip.compress(to_csv(rows).encode("utf-8"), mtime=0))
        # The channel's upload limit as Discord states it with the interaction (boosts raise it).
        limit = interaction.filesize_limit
        if len(data) > limit:
            raise InvalidRequestError(
                f"The export of {len(rows):,} ledger row(s) is {len(data) / 1_048_576:.1f} MiB compressed, over "
                f"the {limit / 1_048_576:.0f} MiB this channel takes. Pick a shorter period (`period`, or "
                "`since`/`until`), or run `bananacord usage --format csv` where the bot runs.",
                detail=f"usage export of {len(data)} bytes over the upload limit {limit}",
            )
        file = discord.File(io.BytesIO(data), filename=f"bananacord-usage-{interaction.guild_id}.csv.gz")
        await answer_privately(interaction, f"{len(rows):,} ledger row(s), as a gzip-compressed CSV.", file=file)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(UsageCog(bot))


def _waiting(images: int) -> str:
    """The images waiting their turn (bot/waiting_requests.py), said only when there are any."""
    return f" · {images} waiting their turn" if images else ""
