"""What ``/quota server`` (cogs/quota.py) reads from its options and shows: a server's own limits over the bot's
configured ones (bot/server_limits.py), and how much of each is in use this quota month."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.server_limits import NAMES, NO_LIMIT, ServerLimits, ServerStatus, cents, limit_words, usd

# The limits by the words the admin picks them with, in no_limit: and clear:.
CHOICE_NAMES = {"images at once": "in_flight", "monthly units": "monthly_units", "monthly budget": "budget"}
LIFT_CHOICES = [app_commands.Choice(name=name, value=name) for name in CHOICE_NAMES]
BACK_CHOICES = [app_commands.Choice(name=name, value=name) for name in ("all of them", *CHOICE_NAMES)]
# Each limit by its option, as a refusal names it.
_OPTION = {"in_flight": "`in_flight`", "monthly_units": "`monthly_units`", "budget": "`budget_usd`"}
_LABEL = {"in_flight": "Images at once", "monthly_units": "Monthly units", "budget": "Monthly budget"}


def changes(
    in_flight: int | None, monthly_units: int | None, budget_usd: float | None, no_limit: str | None, back: str | None
) -> tuple[dict[str, int | None], set[str]]:
    """The limits to set (stored values: NO_LIMIT for no limit) and those to return to the config's; refused with a
    clear message where two options name one limit or a choice is unknown (a stale client)."""
    given: dict[str, int | None] = {
        "in_flight": in_flight,
        "monthly_units": monthly_units,
        "budget": None if budget_usd is None else cents(budget_usd),
    }
    if no_limit is not None:
        lifted = _chosen(no_limit, "no_limit", CHOICE_NAMES)
        if given[lifted] is not None:
            raise app_commands.CheckFailure(
                f"{_OPTION[lifted]} and `no_limit: {no_limit}` name the same limit: give a number or no limit."
            )
        given[lifted] = NO_LIMIT
    returned: set[str] = set()
    if back is not None:
        returned = set(NAMES) if back == "all of them" else {_chosen(back, "clear", CHOICE_NAMES)}
        both = [name for name in NAMES if name in returned and given[name] is not None]
        if both:
            said = ", ".join(_OPTION[name] if given[name] != NO_LIMIT else "`no_limit`" for name in both)
            raise app_commands.CheckFailure(
                f"`clear: {back}` returns {_limits(both)} to the bot's configured value, and {said} sets it: "
                "one or the other."
            )
    return given, returned


def _chosen(value: str, option: str, names: dict[str, str]) -> str:
    if value not in names:
        raise app_commands.CheckFailure(f"`{option}` takes one of: {', '.join(names)}.")
    return names[value]


def _limits(names: list[str]) -> str:
    return " and ".join(_LABEL[name].lower() for name in names)


def server_embed(status: ServerStatus, server: str) -> discord.Embed:
    """The server's limits, each with what of it is in use and where it comes from."""
    embed = discord.Embed(title=f"🍌 Limits for {server}", colour=discord.Colour(0xF5C518))
    if not status.enforced:
        embed.description = "Quotas are off on this bot ([quotas] enabled = false): these apply once they are on."
    limits = status.limits
    at_once = f"{status.generating} of {limits.in_flight}" if limits.in_flight is not None else f"{status.generating}"
    if limits.in_flight is None:
        at_once += " · no limit"
    if status.waiting:
        at_once += f" · {status.waiting} waiting for room"
    embed.add_field(name="Images generating now", value=at_once, inline=True)
    resets = f"resets <t:{int(status.resets_at)}:R>"
    units = f"{status.used_units:,}" + (f" of {limits.monthly_units:,}" if limits.monthly_units is not None else "")
    embed.add_field(
        name="Units this month",
        value=f"{units} · {resets}" if limits.monthly_units is not None else f"{units} · no limit",
    )
    spent = usd(status.spent) + (f" of {usd(limits.budget)}" if limits.budget is not None else "")
    embed.add_field(
        name="Spent this month (estimated)",
        value=f"{spent} · {resets}" if limits.budget is not None else f"{spent} · no budget",
    )
    embed.add_field(name="Where each comes from", value=origins(status.own, status.config), inline=False)
    embed.set_footer(
        text="Members' units count toward these from when a request is taken; failed, blocked or cancelled images "
        "are given back. /quota server sets this server's own; clear: returns to the bot's."
    )
    return embed


def members_view(status: ServerStatus) -> str:
    """The server's limits as its members see them in ``/quota show``: its images at once and its month's units,
    its budget as a share (what it costs in dollars is the admins')."""
    limits = status.limits
    lines = [
        f"{status.generating} of {limits.in_flight} images generating now"
        if limits.in_flight is not None
        else f"{status.generating} images generating now (no limit)"
    ]
    if status.waiting:
        lines[0] += f" · {status.waiting} waiting for room"
    if limits.monthly_units is not None:
        lines.append(f"{status.used_units:,} of {limits.monthly_units:,} units used this month")
    if limits.budget is not None:
        share = min(status.spent / limits.budget, 1.0) if limits.budget else 1.0
        lines.append(f"{share:.0%} of its monthly budget used")
    if limits.monthly_units is not None or limits.budget is not None:
        lines.append(f"The month resets <t:{int(status.resets_at)}:R>.")
    return "\n".join(lines)


def origins(own: ServerLimits | None, config: ServerLimits) -> str:
    """Each limit and where it comes from: this server's own (with the bot's beside it) or the bot's config."""
    stored = (own or ServerLimits()).named()
    lines = []
    for name, base in config.named().items():
        mine = stored[name]
        if mine is None:
            lines.append(f"{_LABEL[name]}: {limit_words(name, base)} (the bot's configuration)")
        else:
            lines.append(
                f"{_LABEL[name]}: {limit_words(name, mine)}, set for this server (the bot's: {limit_words(name, base)})"
            )
    return "\n".join(lines)
