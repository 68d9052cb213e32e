"""/mod: safety tolerance per server and channel, blocked terms, bans, the log channel, all settings.

Moderators are members with Manage Messages or the configured moderator role; checked here in code,
not only by Discord's command permissions. Every change takes effect for the next job and is logged.
Jobs a provider's filter blocks (a runner event, bot/events.py) are logged too, and repeated ones put
the member on a cooldown.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.events import JobBlocked
from bot.gate import Term
from bot.moderation import HONOURED_LEVELS, MAX_LEVEL, MIN_LEVEL
from bot.render import literal, truncate
from cogs.places import level_at, place_of
from cogs.private_answers import answer_privately

log = logging.getLogger(__name__)

Level = app_commands.Range[int, MIN_LEVEL, MAX_LEVEL]
# Bounds Discord holds typed text to: what the bot repeats (a ban's reason to the banned member on every
# refusal, a term in answers and the moderation log) then always fits one message.
MAX_REASON = 300
MAX_TERM = 1000  # room for a regular expression of many alternatives
TermText = app_commands.Range[str, 1, MAX_TERM]
# A term to remove may be one stored before terms were bounded: Discord's own limit for typed text.
StoredTermText = app_commands.Range[str, 1, 6000]
# How much of a term answers and the moderation log quote.
SHOWN_TERM = 200
_BY_NUMBER = re.compile(r"#(\d{1,4})")


def _shown_term(text: str) -> str:
    """A term in a code span: a backtick would end it, and a long regex is cut."""
    return truncate(text.replace("`", "'"), SHOWN_TERM)


def is_moderator(interaction: discord.Interaction[Any], role_id: int | None) -> bool:
    perms = interaction.permissions
    if perms.manage_messages or perms.administrator or perms.manage_guild:
        return True
    roles = getattr(interaction.user, "roles", [])
    return role_id is not None and any(role.id == role_id for role in roles)


async def record_moderation(bot: Bananacord, guild_id: int, action: str, text: str, **audit: Any) -> None:
    """Store a moderation event and post it to the server's moderation log channel, if it has one."""
    store = bot.services.moderation
    await store.audit(guild_id, action, **audit)
    channel_id = (await store.guild(guild_id)).log_channel_id
    if channel_id is None:
        return
    prompt = audit.get("prompt")
    body = text + (f"\nPrompt: {literal(str(prompt), 1500)}" if prompt else "")
    try:
        await bot.get_partial_messageable(channel_id).send(body, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException as exc:
        log.warning("could not post to the moderation log channel %s: %s", channel_id, exc.status)


def _private(interaction: discord.Interaction[Any], text: str | None = None, **kwargs: Any) -> Any:
    return answer_privately(interaction, text, **kwargs)


@app_commands.guild_only()
@app_commands.default_permissions(manage_messages=True)
class Moderation(commands.GroupCog, group_name="mod", group_description="Moderation for the image bot"):
    safety = app_commands.Group(name="safety", description="Safety tolerance, 1 (strictest) to 6 (loosest)")
    blockterm = app_commands.Group(name="blockterm", description="Terms that block a prompt")

    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.guild_id is None:
            raise app_commands.CheckFailure("Moderation commands work in a server, not in DMs.")
        if not is_moderator(interaction, self.bot.settings.moderation.moderator_role_id):
            raise app_commands.CheckFailure("You need the Manage Messages permission (or the moderator role) for this.")
        return True

    async def _log(self, interaction: discord.Interaction[Any], action: str, text: str, **audit: Any) -> None:
        await record_moderation(
            self.bot,
            interaction.guild_id or 0,
            action,
            f"<@{interaction.user.id}> {text}",
            actor_id=interaction.user.id,
            **audit,
        )

    @commands.Cog.listener()
    async def on_job_blocked(self, event: JobBlocked) -> None:
        """A provider's safety filter blocked a job: log it, and cool the member down if it keeps happening."""
        job = event.job
        if job.guild_id is None or job.user_id is None or job.source != "discord":
            return
        mod, store, now = self.bot.settings.moderation, self.bot.services.moderation, self.bot.clock()
        await record_moderation(
            self.bot,
            job.guild_id,
            "provider_block",
            f"{job.provider} blocked an image for <@{job.user_id}> in <#{job.channel_id}> (job {job.id}).",
            target_id=job.user_id,
            channel_id=job.channel_id,
            job_id=job.id,
            prompt=job.request.prompt,
            reason=job.error_message,
        )
        blocks = await store.recent_provider_blocks(job.guild_id, job.user_id, now - mod.block_window_minutes * 60)
        if blocks >= mod.block_limit and await store.active_ban(job.guild_id, job.user_id) is None:
            until = now + mod.cooldown_minutes * 60
            reason = f"{blocks} provider content blocks within {mod.block_window_minutes:g} minutes"
            await store.ban(job.guild_id, job.user_id, reason=reason, expires_at=until, by=None, kind="cooldown")
            await record_moderation(
                self.bot,
                job.guild_id,
                "cooldown",
                f"<@{job.user_id}> is on a cooldown until <t:{int(until)}:f>: {reason}.",
                target_id=job.user_id,
                reason=reason,
            )

    # ---- safety ----

    @safety.command(name="set")
    @app_commands.describe(
        level="1 strictest .. 6 loosest",
        channel="Set it for one channel instead of the whole server",
        ceiling="Set the server's ceiling for normal channels instead",
        nsfw_ceiling="Set the ceiling for age-restricted channels instead",
    )
    async def safety_set(
        self,
        interaction: discord.Interaction[Any],
        level: Level,
        channel: discord.TextChannel | None = None,
        ceiling: bool = False,
        nsfw_ceiling: bool = False,
    ) -> None:
        """Set the safety tolerance of the server, a channel, or the ceilings."""
        guild_id = interaction.guild_id or 0
        store = self.bot.services.moderation
        if ceiling or nsfw_ceiling:
            key = "nsfw_ceiling" if nsfw_ceiling else "normal_ceiling"
            await store.update_guild(guild_id, by=interaction.user.id, **{key: level})
            what = "age-restricted channels' ceiling" if nsfw_ceiling else "normal channels' ceiling"
        elif channel is not None:
            await store.set_channel_level(guild_id, channel.id, level, by=interaction.user.id)
            what = f"safety level of {channel.mention}"
        else:
            await store.update_guild(guild_id, by=interaction.user.id, safety_level=level)
            what = "server's safety level"
        settings = await store.guild(guild_id)
        note = ""
        if channel is not None:
            cap = settings.nsfw_ceiling if channel.is_nsfw() else settings.normal_ceiling
            if level > cap:
                note = f" It is capped at {cap} by the {'age-restricted' if channel.is_nsfw() else 'normal'} ceiling."
        await self._log(
            interaction, "setting", f"set the {what} to {level}.", channel_id=channel.id if channel else None
        )
        await _private(interaction, f"The {what} is now {level}.{note} It applies from the next image.")

    @safety.command(name="show")
    async def safety_show(self, interaction: discord.Interaction[Any]) -> None:
        """Show the safety levels in force and what each provider honours."""
        await _private(interaction, embed=await self._settings_embed(interaction))

    async def _settings_embed(self, interaction: discord.Interaction[Any]) -> discord.Embed:
        guild_id = interaction.guild_id or 0
        store = self.bot.services.moderation
        settings = await store.guild(guild_id)
        channels = await store.channel_levels(guild_id)
        default = self.bot.settings.moderation.default_level
        embed = discord.Embed(title="🍌 Moderation settings", colour=discord.Colour(0xF5C518))
        embed.add_field(name="Server level", value=str(settings.safety_level or f"{default} (default)"))
        embed.add_field(
            name="Ceilings", value=f"normal {settings.normal_ceiling} · age-restricted {settings.nsfw_ceiling}"
        )
        here = await level_at(self.bot, guild_id, place_of(interaction.channel))
        embed.add_field(name="In this channel", value=str(here))
        if channels:
            embed.add_field(
                name="Channel levels",
                value="\n".join(f"<#{c}>: {lvl}" for c, lvl in channels.items())[:1024],
                inline=False,
            )
        honours = "\n".join(
            f"{p}: {r.start}-{r.stop - 1}" for p, r in HONOURED_LEVELS.items() if p in self.bot.services.providers
        )
        embed.add_field(name="Levels each provider honours", value=honours or "—", inline=False)
        terms = await store.terms(guild_id)
        embed.add_field(
            name="Blocked terms", value=f"{len(terms)} (built-in list {'on' if settings.builtin_terms else 'off'})"
        )
        bans = await store.bans(guild_id)
        embed.add_field(name="Banned or cooling down", value=str(len(bans)))
        embed.add_field(
            name="Log channel", value=f"<#{settings.log_channel_id}>" if settings.log_channel_id else "none"
        )
        return embed

    @app_commands.command(name="settings")
    async def settings_(self, interaction: discord.Interaction[Any]) -> None:
        """Everything in one view."""
        await _private(interaction, embed=await self._settings_embed(interaction))

    # ---- blocked terms ----

    @blockterm.command(name="add")
    @app_commands.describe(term="A word or phrase (whole words), or a regular expression", regex="Treat it as a regex")
    async def blockterm_add(self, interaction: discord.Interaction[Any], term: TermText, regex: bool = False) -> None:
        """Block prompts containing a term."""
        try:
            await self.bot.services.moderation.add_term(
                interaction.guild_id or 0, Term(term, regex), by=interaction.user.id
            )
        except ValueError as exc:
            await _private(interaction, f"That term cannot be used: {exc}")
            return
        shown = _shown_term(term)
        await self._log(interaction, "setting", f"blocked the {'pattern' if regex else 'term'} `{shown}`.")
        await _private(interaction, f"Blocked `{shown}`. It applies from the next prompt.")

    @blockterm.command(name="remove")
    @app_commands.describe(term="The term as it was added, or its number in /mod blockterm list (#3)")
    async def blockterm_remove(self, interaction: discord.Interaction[Any], term: StoredTermText) -> None:
        """Stop blocking a term."""
        guild_id = interaction.guild_id or 0
        store = self.bot.services.moderation
        terms = await store.terms(guild_id)
        number = _BY_NUMBER.fullmatch(term.strip())
        if number and all(t.text != term for t in terms):
            # By its number in the list: a long regex need not be typed out again (the list cuts it).
            index = int(number.group(1)) - 1
            if not 0 <= index < len(terms):
                await _private(interaction, f"There is no term {term.strip()} in `/mod blockterm list`.")
                return
            term = terms[index].text
        removed = await store.remove_term(guild_id, term)
        shown = _shown_term(term)
        if removed:
            await self._log(interaction, "setting", f"unblocked `{shown}`.")
        await _private(interaction, f"Unblocked `{shown}`." if removed else f"`{shown}` was not blocked.")

    @blockterm.command(name="list")
    async def blockterm_list(self, interaction: discord.Interaction[Any]) -> None:
        """The server's blocked terms, numbered (remove one by its number: `#3`)."""
        terms = await self.bot.services.moderation.terms(interaction.guild_id or 0)
        if not terms:
            await _private(interaction, "No blocked terms (the built-in list may apply).")
            return
        lines = [f"#{n} `{_shown_term(t.text)}`" + (" (regex)" if t.is_regex else "") for n, t in enumerate(terms, 1)]
        shown: list[str] = []
        for line in lines:
            if sum(len(s) + 1 for s in shown) + len(line) > 1900:
                shown.append(f"… and {len(lines) - len(shown)} more.")
                break
            shown.append(line)
        await _private(interaction, "\n".join(shown))

    @blockterm.command(name="builtin")
    async def blockterm_builtin(self, interaction: discord.Interaction[Any], enabled: bool) -> None:
        """Turn the built-in minimal list on or off."""
        await self.bot.services.moderation.update_guild(
            interaction.guild_id or 0, by=interaction.user.id, builtin_terms=int(enabled)
        )
        await self._log(interaction, "setting", f"turned the built-in blocked terms {'on' if enabled else 'off'}.")
        await _private(interaction, f"The built-in list is {'on' if enabled else 'off'}.")

    # ---- bans ----

    @app_commands.command(name="ban")
    @app_commands.describe(member="Who", reason="Why (they will see it)", hours="Expire after this many hours")
    async def ban(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member,
        reason: app_commands.Range[str, 1, MAX_REASON] | None = None,
        hours: app_commands.Range[float, 0.01, 8760.0] | None = None,
    ) -> None:
        """Stop a member from using the bot."""
        expires = time.time() + hours * 3600 if hours else None
        await self.bot.services.moderation.ban(
            interaction.guild_id or 0, member.id, reason=reason, expires_at=expires, by=interaction.user.id
        )
        until = f" until <t:{int(expires)}:f>" if expires else ""
        await self._log(
            interaction,
            "ban",
            f"banned <@{member.id}>{until}: {reason or 'no reason given'}.",
            target_id=member.id,
            reason=reason,
        )
        await _private(interaction, f"{member.mention} can no longer use the bot{until}.")

    @app_commands.command(name="unban")
    async def unban(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        """Let a member use the bot again (also ends a cooldown)."""
        removed = await self.bot.services.moderation.unban(interaction.guild_id or 0, member.id)
        if removed:
            await self._log(interaction, "unban", f"unbanned <@{member.id}>.", target_id=member.id)
        await _private(interaction, f"{member.mention} may use the bot again." if removed else "They were not banned.")

    @app_commands.command(name="bans")
    async def bans(self, interaction: discord.Interaction[Any]) -> None:
        """Who is banned or cooling down."""
        rows = await self.bot.services.moderation.bans(interaction.guild_id or 0)
        lines = [
            f"<@{b.user_id}> ({b.kind})"
            + (f" until <t:{int(b.expires_at)}:f>" if b.expires_at else "")
            + (f": {b.reason}" if b.reason else "")
            for b in rows
        ]
        await _private(interaction, "\n".join(lines)[:1900] if lines else "Nobody is banned.")

    @app_commands.command(name="logchannel")
    async def logchannel(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel | None = None
    ) -> None:
        """Where blocks, bans and setting changes are posted (empty: stop posting)."""
        await self.bot.services.moderation.update_guild(
            interaction.guild_id or 0, by=interaction.user.id, log_channel_id=channel.id if channel else None
        )
        await self._log(interaction, "setting", f"set the log channel to {channel.mention if channel else 'none'}.")
        await _private(interaction, f"Moderation log: {channel.mention if channel else 'off'}.")


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Moderation(bot))
