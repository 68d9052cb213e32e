"""/quota: what a member has left; and the admin controls: set limits, grant units, reset.

Admin subcommands check Manage Server (or the configured admin role) in code, not only through
Discord's command permissions, which a server can change. Each change an admin makes is kept in the audit
log with who made it, and posted to the server's moderation log channel (``record_moderation``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.catalogue import MODEL_NAMES
from bot.errors import InvalidRequestError
from bot.quotas import LIMIT_NAMES, NO_LIMIT, ConflictingLimitsError, Limits, Origin, QuotaStatus, WindowUsage
from bot.render import literal
from bot.server_alerts import ServerAlert
from bot.server_limits import stored_words as server_words
from cogs import server_quota
from cogs.admin import record_admin_change, require_admin
from cogs.moderation import MAX_REASON, record_moderation
from cogs.policy import member_of
from cogs.private_answers import answer_privately

log = logging.getLogger(__name__)

# The most a server's limit may be set to: beyond it a limit means nothing, and SQLite's integers stay far away.
MAX_SERVER_LIMIT = 1_000_000_000
# A display name is at most 32 characters; escaped, at most twice that (an embed title takes 256).
NAME_CHARS = 64
_WINDOW_WORDS = {"daily": "Today", "weekly": "This week", "monthly": "This month"}
# The window a grant made now ends with, as an admin or member reads it.
_CURRENT_WINDOW = {"daily": "today's quota day", "weekly": "this quota week", "monthly": "this quota month"}
_UNIT = {"daily": "day", "weekly": "week", "monthly": "month"}
# What a grant counts in, said wherever one is.
GRANT_RULE = "a grant counts only in the day, week and month it is given in"
# /quota set member: no_limit: — the limits an override lifts to no limit, by the choice's value. A choice,
# not a number such as -1 in daily:, so the admin reads what it does where they pick it.
LIFTS: dict[str, tuple[str, ...]] = {
    "daily": ("daily",),
    "weekly": ("weekly",),
    "monthly": ("monthly",),
    "daily and weekly": ("daily", "weekly"),
    "weekly and monthly": ("weekly", "monthly"),
    "daily, weekly and monthly": ("daily", "weekly", "monthly"),
    "requests at once": ("in_flight",),
}
LIFT_CHOICES = [app_commands.Choice(name=name, value=name) for name in LIFTS]


def granted_words(usage: WindowUsage, first: WindowUsage | None, *, own: bool = False) -> str:
    """The "+N granted" in a window's line of /quota show, with until when the units count.

    Units granted count in each window they were given in until it resets. Beside the first limited window to
    reset, that is until its reset; in a longer window, the units given inside that first window count toward
    its limit too until then, and those given before it no longer do: "This month: +10 granted" the morning
    after a grant read as ten units still to use, while the daily limit had started afresh without them."""
    if usage.granted <= 0:
        return ""
    if first is None:
        return f" · +{usage.granted} granted"
    until = f"<t:{int(first.resets_at)}:f>"
    if usage.window == first.window:
        return f" · +{usage.granted} granted, counted until {until}"
    limit, window = f"{'your' if own else 'their'} {first.window} limit", _CURRENT_WINDOW[first.window]
    # Both windows hold now, and grants are never later than now: the one that started later holds only
    # grants the other holds too. Those in this window but not in the first were given before it began.
    current = min(first.granted, usage.granted)
    earlier = usage.granted - current
    if earlier <= 0:
        return f" · +{usage.granted} granted (they count toward {limit} until {until}, the end of {window})"
    if current <= 0:
        return f" · +{usage.granted} granted (given before {window}: no longer in {limit})"
    return (
        f" · +{usage.granted} granted ({current} count toward {limit} until {until}; {earlier} given before "
        f"{window} no longer do)"
    )


def grant_until_words(status: QuotaStatus, mention: str) -> str:
    """For the admin who granted units to ``mention``: until when the units count, and why no longer."""
    if not status.enforced:
        return f"Quotas are off on this bot ([quotas] enabled = false), so the units change nothing now; {GRANT_RULE}."
    if status.unlimited:
        return (
            f"{mention} is the server owner or holds the unlimited role: nothing limits them, so the units change "
            f"nothing now; {GRANT_RULE}."
        )
    first = status.first_to_reset()
    if first is None:
        return f"{mention} has no daily, weekly or monthly limit now, so the units change nothing; {GRANT_RULE}."
    end = int(first.resets_at)
    return (
        f"They count toward {mention}'s {first.window} limit until <t:{end}:f> (<t:{end}:R>), the end of "
        f"{_CURRENT_WINDOW[first.window]}: {GRANT_RULE}, and the next {_UNIT[first.window]} starts without them."
    )


def limit_words(name: str, value: int | None) -> str:
    """One limit as an admin or member reads it: "daily 25", "no weekly limit", "2 at once"."""
    if name == "in_flight":
        return "no limit on requests at once" if value is None else f"{value} at once"
    return f"no {name} limit" if value is None else f"{name} {value}"


def origin_words(origin: Origin, *, own: bool = False) -> str:
    """Where a limit comes from, in words (a role as its mention, which names it without pinging)."""
    if origin.kind == "member":
        return "your own override" if own else "the member's own override"
    if origin.kind == "role":
        return f"the tier for <@&{origin.role_id}>"
    if origin.kind == "tier":
        return f"the configured tier {origin.tier} (<@&{origin.role_id}>)"
    return "the bot's defaults"


def limits_by_origin(limits: Limits, *, own: bool = False) -> str:
    """Each source of ``limits`` with the limits it gives, one line each: "The tier for @Mod: daily 100, …"."""
    grouped: dict[Origin, list[str]] = {}
    for name in LIMIT_NAMES:
        value = limits.in_flight if name == "in_flight" else limits.for_window(name)
        grouped.setdefault(limits.origin(name), []).append(limit_words(name, value))
    lines = []
    for origin, words in grouped.items():
        source = origin_words(origin, own=own)
        lines.append(f"{source[0].upper()}{source[1:]}: {', '.join(words)}")
    return "\n".join(lines)


def status_embed(
    status: QuotaStatus, costs: dict[str, dict[str, int]], who: str, *, own: bool = False
) -> discord.Embed:
    # ``who`` is a display name, which its owner chooses: shown as written, not as Markdown.
    embed = discord.Embed(title=f"🍌 Quota for {literal(who, NAME_CHARS)}", colour=discord.Colour(0xF5C518))
    if not status.enforced:
        embed.description = "Quotas are off on this bot: nothing is limited; usage is still recorded."
    elif status.unlimited:
        embed.description = "Unlimited (server owner or unlimited role); usage is still recorded."
    first = status.first_to_reset()
    for usage in status.windows:
        granted = granted_words(usage, first, own=own)
        if usage.limit is None:
            value = f"{usage.used} used · no limit"
        elif usage.limit == 0:
            # No reset brings anything back: say who set it, not when it "resets".
            left = f"{granted} · **{usage.remaining} left**" if usage.granted > 0 else ""
            value = f"{usage.used} used · limit 0, set by an admin{left}"
        else:
            value = (
                f"{usage.used} of {usage.limit} used{granted} · **{usage.remaining} left**\n"
                f"resets <t:{int(usage.resets_at)}:R>"
            )
        embed.add_field(name=_WINDOW_WORDS[usage.window], value=value, inline=True)
    if status.in_flight_limit == 0:
        running = f"{status.in_flight} · limit 0, set by an admin"
    else:
        limit = f" of {status.in_flight_limit}" if status.in_flight_limit is not None else ""
        running = f"{status.in_flight}{limit}"
    if status.waiting:
        # Requests taken past that limit or the server's room, each starting in its turn (bot/waiting_requests.py).
        running += f" · {status.waiting} waiting their turn"
    embed.add_field(name="Generating now", value=running, inline=True)
    if status.enforced and not status.unlimited:
        embed.add_field(name="Limits set by", value=limits_by_origin(status.limits, own=own), inline=False)
    lines = [
        f"{MODEL_NAMES.get(model, model)}: " + ", ".join(f"{size} = {units}" for size, units in table.items())
        for model, table in costs.items()
    ]
    embed.add_field(name="Cost in units", value="\n".join(lines) or "—", inline=False)
    footer = "Failed, blocked or cancelled images are refunded."
    if not status.enforced:
        footer = f"Limits: off ([quotas] enabled = false). {footer}"
    embed.set_footer(text=footer)
    return embed


def lifted(given: Mapping[str, int | None], choice: str, for_member: bool) -> dict[str, int | None]:
    """``given`` with the limits the ``no_limit`` choice names set to NO_LIMIT; a clear refusal where the
    choice cannot apply (a role, an unknown value sent by a stale client) or contradicts a number given."""
    lifts = LIFTS.get(choice)
    if lifts is None:
        raise app_commands.CheckFailure(f"`no_limit` takes one of: {', '.join(LIFTS)}.")
    if not for_member:
        raise app_commands.CheckFailure(
            "`no_limit` is for a member's override. In a role's tier, a daily, weekly or monthly limit left out "
            "is already no limit; a tier's requests at once left out stay the bot's default."
        )
    both = [name for name in lifts if given[name] is not None]
    if both:
        said = ", ".join(f"`{name}`" for name in both)
        raise app_commands.CheckFailure(
            f"`no_limit: {choice}` and {said} name the same limit: give a number or no limit, not both."
        )
    return {name: NO_LIMIT if name in lifts else value for name, value in given.items()}


def stored_words(scope: str, stored: Mapping[str, int | None] | None, default_in_flight: int | None) -> str:
    """An override or tier as stored: an override names only what it sets; a tier's windows left out are no
    limit, its in_flight left out the default's (bot/quotas.py merge_limits); an override's NO_LIMIT is no limit."""
    if stored is None:
        return "none"
    if scope == "user":
        named = [
            limit_words(n, None if stored[n] == NO_LIMIT else stored[n]) for n in LIMIT_NAMES if stored[n] is not None
        ]
        return ", ".join(named) or "nothing"
    words = [limit_words(n, stored[n]) for n in LIMIT_NAMES if n != "in_flight"]
    in_flight = stored["in_flight"]
    words.append(
        limit_words("in_flight", in_flight)
        if in_flight is not None
        else f"{limit_words('in_flight', default_in_flight)} (the bot's default)"
    )
    return ", ".join(words)


# On the group: discord.py sends guild_only to Discord for top-level commands only, so the subcommands'
# own decorators left /quota usable in DMs, where it showed a quota of no server ("0 of 25 used").
@app_commands.guild_only()
class Quota(commands.GroupCog, group_name="quota", group_description="Image quotas"):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        super().__init__()

    async def cog_load(self) -> None:
        quotas = self.bot.services.quotas
        quotas.on_server_alert = self._tell_server_alert
        # An alert a stop cut short (the bot died between the reservation and its post) is told now.
        self.bot.services.runner.in_background(quotas.tell_untold(), "untold-server-alerts")

    async def cog_unload(self) -> None:
        if self.bot.services.quotas.on_server_alert == self._tell_server_alert:
            self.bot.services.quotas.on_server_alert = None

    async def _tell_server_alert(self, alert: ServerAlert) -> None:
        """The server's monthly units or budget mostly used, or spent: kept in its audit log and posted to its
        moderation log channel, once a month each (bot/server_alerts.py)."""
        await record_moderation(self.bot, alert.guild_id, "quota_server_alert", alert.words(), reason=alert.level)

    def _require_admin(self, interaction: discord.Interaction[Any]) -> None:
        require_admin(interaction, self.bot.settings.admin.role_id)

    @app_commands.command(name="show")
    @app_commands.guild_only()
    @app_commands.describe(member="(Admins) someone else's quota")
    async def show(self, interaction: discord.Interaction[Any], member: discord.User | None = None) -> None:
        """How many images you have left, when that resets, and what each size costs."""
        # A user, not a Member: one who has left the server comes without member data, and discord.py refused
        # them (TransformerError, "something went wrong"). Shown without roles, as they hold none here now.
        target: discord.abc.User = interaction.user
        subject = member_of(interaction)
        if member is not None and member.id != interaction.user.id:
            self._require_admin(interaction)
            target = member
            subject = member_of(interaction, member)
        status = await self.bot.services.quotas.status(subject)
        own = target.id == interaction.user.id
        embed = status_embed(status, self.bot.settings.quotas.units, target.display_name, own=own)
        if status.enforced and interaction.guild_id is not None:
            # What the server as a whole has left: a member refused by its limits learns of them here too.
            server = await self.bot.services.quotas.server_status(interaction.guild_id)
            embed.insert_field_at(
                len(embed.fields) - 1, name="This server", value=server_quota.members_view(server), inline=False
            )
        if not isinstance(target, discord.Member):
            gone = f"{target.mention} is not in this server now: shown without roles (no role tiers)."
            embed.description = f"{embed.description}\n{gone}" if embed.description else gone
        await answer_privately(interaction, embed=embed)

    @app_commands.command(name="set")
    @app_commands.guild_only()
    @app_commands.describe(
        member="Set an override for this member (limits left out: as their roles or the defaults give)",
        role="Or set a tier for everyone with this role (in place of the defaults)",
        daily="Units per day (a role's tier: empty for no daily limit)",
        weekly="Units per week",
        monthly="Units per month",
        in_flight="Requests generating at once (an /imagine with count counts once)",
        no_limit="(A member) lift these limits to no limit, whatever their roles or the defaults say",
        clear="Remove this member's override or this role's tier instead",
    )
    @app_commands.choices(no_limit=LIFT_CHOICES)
    async def set_(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member | None = None,
        role: discord.Role | None = None,
        daily: app_commands.Range[int, 0] | None = None,
        weekly: app_commands.Range[int, 0] | None = None,
        monthly: app_commands.Range[int, 0] | None = None,
        in_flight: app_commands.Range[int, 0] | None = None,
        no_limit: str | None = None,
        clear: bool = False,
    ) -> None:
        """(Admins) Set a member's quota override or a role tier."""
        self._require_admin(interaction)
        if (member is None) == (role is None):
            raise app_commands.CheckFailure("Name exactly one member or one role.")
        given: dict[str, int | None] = {"daily": daily, "weekly": weekly, "monthly": monthly, "in_flight": in_flight}
        if no_limit is not None:
            given = lifted(given, no_limit, member is not None)
        named = any(value is not None for value in given.values())
        if clear and named:
            raise app_commands.CheckFailure(
                "`clear` removes the override or tier as a whole: leave the limits out, or set them without `clear`."
            )
        if member is not None and not clear and not named:
            raise app_commands.CheckFailure(
                "Name at least one limit (daily, weekly, monthly, in_flight or no_limit), or use `clear` to remove "
                f"{member.mention}'s override. Limits left out stay as their roles or the bot's defaults give them."
            )
        quotas = self.bot.services.quotas
        default_in_flight = self.bot.settings.quotas.in_flight_per_user
        guild_id = interaction.guild_id or 0
        if member is not None:
            scope, target_id, name = "user", member.id, member.mention
        else:
            assert role is not None
            scope, target_id, name = "role", role.id, role.mention
        what = "override" if scope == "user" else "tier"
        if clear:
            before = await quotas.clear_limits(guild_id, scope, target_id)
            if before is None:
                await answer_privately(interaction, f"{name} has no quota {what}; nothing changed.")
                return
            was = stored_words(scope, before, default_in_flight)
            change, reason = f"removed the quota {what} for {name} (it was: {was})", f"removed (it was: {was})"
            text = f"Removed the quota {what} for {name} (it was: {was})."
        else:
            subject = member_of(interaction, member) if member is not None else None
            try:
                before = await quotas.set_limits(
                    guild_id, scope, target_id, **given, by=interaction.user.id, member=subject
                )
            except ConflictingLimitsError as exc:
                raise InvalidRequestError(conflict_words(exc, scope, name), detail=exc.detail) from None
            now = stored_words(scope, given, default_in_flight)
            reason = f"{now} (before: {stored_words(scope, before, default_in_flight)})"
            change = f"set the quota {what} for {name}: {reason}"
            text = f"Quota {what} for {name}: {now}."
        if member is not None:
            text += "\n" + await self._applying(interaction, member)
        else:
            assert role is not None
            if clear:
                text += "\nMembers with this role now get their other tiers' limits, or the bot's defaults."
            else:
                text += (
                    "\nMembers with this role get the tier's limits in place of the bot's defaults; holding several "
                    "tiers, they get the most generous of each limit, and a member's own override comes first."
                )
            moved = await self._relimit_role(interaction, role)
            if moved:
                text += f"\n{moved} request(s) of theirs waiting their turn now wait under their new limits."
        action = f"quota_{what}" + ("_cleared" if clear else "")
        noted = await record_admin_change(self.bot, interaction, action, change, target_id=target_id, reason=reason)
        await answer_privately(interaction, _with_note(text, noted))

    async def _applying(self, interaction: discord.Interaction[Any], member: discord.Member) -> str:
        """What limits ``member`` has now, and where each comes from, for the admin who changed them."""
        status, _ = await self._relimit(interaction, member)
        if not status.enforced:
            return "Quotas are off on this bot ([quotas] enabled = false): nothing limits anyone until they are on."
        if status.unlimited:
            return f"{member.mention} is the server owner or holds the unlimited role: nothing limits them."
        return f"{member.mention}'s limits now:\n{limits_by_origin(status.limits)}"

    async def _relimit(self, interaction: discord.Interaction[Any], member: discord.Member) -> tuple[QuotaStatus, int]:
        """``member``'s quota now; their requests waiting for room among their requests at once wait under the
        limit they have now, not the one they were taken under (bot/waiting_requests.py). With how many moved."""
        status = await self.bot.services.quotas.status(member_of(interaction, member))
        limit = status.in_flight_limit if status.enforced and not status.unlimited else None
        moved = 0
        if interaction.guild_id is not None:
            moved = await self.bot.services.runner.waiting.relimit(interaction.guild_id, member.id, limit)
        return status, moved

    async def _relimit_role(self, interaction: discord.Interaction[Any], role: discord.Role) -> int:
        """After ``role``'s tier changed, the waiting requests of the members holding it wait under their limits as
        they are now. The bot has no list of a role's members (no members intent): it asks Discord for each member
        with a request waiting, a few at most (``waiting_per_user`` each). Returns how many requests moved."""
        guild = interaction.guild
        if guild is None:
            return 0
        moved = 0
        for user_id in await self.bot.services.runner.store.waiting_members(guild.id):
            try:
                member = guild.get_member(user_id) or await guild.fetch_member(user_id)
            except (discord.HTTPException, TimeoutError, aiohttp.ClientError, OSError) as exc:
                # Left under the limit it was taken with, as before tiers moved waiting requests at all.
                log.info(
                    "quota tier of role %s: member %s not read (%s); their waiting requests stay", role.id, user_id, exc
                )
                continue
            if any(held.id == role.id for held in member.roles):
                moved += (await self._relimit(interaction, member))[1]
        return moved

    @app_commands.command(name="grant")
    @app_commands.guild_only()
    @app_commands.describe(member="Who gets the units", units="One-off extra units", reason="Why (kept in the ledger)")
    async def grant(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member,
        units: app_commands.Range[int, 1, 100_000],
        reason: app_commands.Range[str, 1, MAX_REASON] | None = None,
    ) -> None:
        """(Admins) Give a member extra units, once."""
        self._require_admin(interaction)
        await self.bot.services.quotas.grant(
            interaction.guild_id or 0, member.id, units, by=interaction.user.id, reason=reason
        )
        why = f": {literal(reason, MAX_REASON * 2)}" if reason else ""
        noted = await record_admin_change(
            self.bot,
            interaction,
            "quota_grant",
            f"granted {units} unit(s) to {member.mention}{why}",
            target_id=member.id,
            reason=f"{units} unit(s)" + (f": {reason}" if reason else ""),
        )
        status = await self.bot.services.quotas.status(member_of(interaction, member))
        text = f"Granted {units} unit(s) to {member.mention}. {grant_until_words(status, member.mention)}"
        await answer_privately(interaction, _with_note(text, noted))

    @app_commands.command(name="reset")
    @app_commands.guild_only()
    @app_commands.describe(member="Whose usage to forget")
    async def reset(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        """(Admins) Start a member's windows afresh (their past usage stays in reports)."""
        self._require_admin(interaction)
        await self.bot.services.quotas.reset(interaction.guild_id or 0, member.id, by=interaction.user.id)
        noted = await record_admin_change(
            self.bot,
            interaction,
            "quota_reset",
            f"reset {member.mention}'s quota: their usage so far no longer counts against their limits",
            target_id=member.id,
            reason="usage so far no longer counts",
        )
        text = (
            f"Reset {member.mention}'s quota: their usage so far no longer counts against their limits. Units "
            "granted in the current day, week and month still count."
        )
        await answer_privately(interaction, _with_note(text, noted))

    @app_commands.command(name="server")
    @app_commands.guild_only()
    @app_commands.describe(
        in_flight="Images this server's members may have generating at once, together",
        monthly_units="Units this server's members may use in a quota month, together",
        budget_usd="Estimated US dollars this server may spend in a quota month",
        no_limit="Lift this limit to no limit for this server, whatever the bot's configuration says",
        clear="Return these to the bot's configured value",
    )
    @app_commands.choices(no_limit=server_quota.LIFT_CHOICES, clear=server_quota.BACK_CHOICES)
    async def server(
        self,
        interaction: discord.Interaction[Any],
        in_flight: app_commands.Range[int, 0, MAX_SERVER_LIMIT] | None = None,
        monthly_units: app_commands.Range[int, 0, MAX_SERVER_LIMIT] | None = None,
        budget_usd: app_commands.Range[float, 0, MAX_SERVER_LIMIT] | None = None,
        no_limit: str | None = None,
        clear: str | None = None,
    ) -> None:
        """(Admins) Show or set this server's own limits: images at once, units and budget a month."""
        self._require_admin(interaction)
        guild_id = interaction.guild_id or 0
        # The Ranges are told to Discord only; discord.py checks nothing, so a hand-made payload is judged here.
        for option, value in (("in_flight", in_flight), ("monthly_units", monthly_units), ("budget_usd", budget_usd)):
            if value is not None and not 0 <= value <= MAX_SERVER_LIMIT:
                raise InvalidRequestError(
                    f"`{option}` must be from 0 to {MAX_SERVER_LIMIT:,}, not {value}. Nothing was changed.",
                    detail=f"{option} {value} out of range",
                )
        given, back = server_quota.changes(in_flight, monthly_units, budget_usd, no_limit, clear)
        quotas = self.bot.services.quotas
        noted = ""
        if back or any(value is not None for value in given.values()):
            before, after = await quotas.set_server_limits(guild_id, given, back, by=interaction.user.id)
            if after != before:
                action, change = "quota_server", f"set this server's limits: {server_words(after)}"
                if after is None:
                    action, change = (
                        "quota_server_cleared",
                        "returned this server's limits to the bot's configured ones",
                    )
                reason = f"{server_words(after)} (before: {server_words(before)})"
                noted = await record_admin_change(
                    self.bot, interaction, action, f"{change} (before: {server_words(before)})", reason=reason
                )
                # Requests waiting for the server's room look again now: a raised limit starts them, one lowered
                # below a request's images ends it (bot/waiting_requests.py).
                looked = await self.bot.services.runner.waiting.server_changed(guild_id)
                if looked:
                    noted = _with_note(f"The {looked} image(s) waiting their turn here look for room again now.", noted)
            else:
                noted = "Nothing changed: this server's limits were already so."
        status = await quotas.server_status(guild_id)
        name = interaction.guild.name if interaction.guild is not None else "this server"
        embed = server_quota.server_embed(status, literal(name, NAME_CHARS))
        if noted:
            embed.description = _with_note(embed.description or "", noted).strip()
        await answer_privately(interaction, embed=embed)


def conflict_words(exc: ConflictingLimitsError, scope: str, name: str) -> str:
    """Why /quota set refused limits that contradict each other, with the numbers and where each comes from."""
    c = exc.conflict
    never = f"A {c.short} limit above the {c.long} one can never be reached (the {c.long} limit always binds first)"
    if scope != "user":
        return (
            f"Not saved: the tier for {name} would have {c.short} {c.short_limit} and {c.long} {c.long_limit}. "
            f"{never}: lower {c.short} or raise {c.long}. The tier is unchanged."
        )

    def source(window: str) -> str:
        origin = exc.limits.origin(window)
        return "" if origin.kind == "member" else f" (from {origin_words(origin)}, which the override leaves as is)"

    return (
        f"Not saved: with this override {name} would have {c.short} {c.short_limit}{source(c.short)} and "
        f"{c.long} {c.long_limit}{source(c.long)}. {never}: lower {c.short} or raise {c.long} (an override may "
        f"name both). {name}'s limits are unchanged."
    )


def _with_note(text: str, note: str) -> str:
    return f"{text}\n{note}" if note else text


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Quota(bot))
