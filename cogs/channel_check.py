"""``/admin check``'s answer: where in the server the bot lacks a permission it uses, and what that costs.

The rights and their costs are bot/channel_rights.py's; this draws them for an admin, from discord.py's view of
the server (its roles and every channel's overwrites, kept current by the gateway), so it asks Discord nothing.
"""

from __future__ import annotations

import discord

from bot.channel_rights import (
    EVERY_RIGHT,
    POSTING,
    POSTING_IN_THREAD,
    SHOWING,
    SHOWING_IN_THREAD,
    VIEW,
    Place,
    Right,
    Shortfall,
    implied,
    in_order,
    lacking,
    names,
    permissions_in,
    rights_for,
    shortfalls,
)
from bot.render import EMBED_CHARS, truncate

BANANA = discord.Colour(0xF5C518)
WARNING = discord.Colour.orange()
FIELD_CHARS = 1024
# Channels named in one group before "and N more": a server of 200 channels all lacking one right is one line.
MENTIONS = 15
# Room kept in the embed for the last field saying what did not fit (its name and a line). Its 6,000 characters run
# out before Discord's 25 fields: a group's field names at least one right and its cost, 150 characters and more
# (tests/e2e/test_admin_check.py fills it with the shortest).
LAST_FIELD_ROOM = 200


def _role(me: discord.Member) -> str:
    role = me.guild.self_role
    return f"**{role.name}**" if role is not None else "the bot's role"


def _costs(rights: tuple[Right, ...]) -> str:
    return "\n".join(f"**{right.name}**: {right.costs}." for right in rights)


def _mentions(channels: tuple[Place, ...]) -> str:
    shown = " ".join(channel.mention for channel in channels[:MENTIONS])
    rest = len(channels) - MENTIONS
    return shown + (f" and {rest} more" if rest > 0 else "")


def _group_field(group: Shortfall) -> tuple[str, str]:
    name = truncate(f"Without {names(group.rights)}", 256)
    return name, truncate(f"{_mentions(group.channels)}\n{_costs(group.rights)}", FIELD_CHARS)


def _posting_line(me: discord.Member, channel_id: int | None, unset: str, *, images: bool = False) -> str:
    """Whether posts reach a channel the bot posts in (the moderation log, the providers' alerts; ``images``: the
    gallery, whose posts are a card with an image)."""
    if channel_id is None:
        return unset
    place = me.guild.get_channel_or_thread(channel_id)
    if place is None:
        return f"<#{channel_id}>: not a channel of this server the bot can find, so nothing reaches it."
    rights: tuple[Right, ...]
    if images:
        rights = SHOWING_IN_THREAD if isinstance(place, discord.Thread) else SHOWING
    else:
        rights = POSTING_IN_THREAD if isinstance(place, discord.Thread) else POSTING
    missing = lacking(place.permissions_for(me), rights)
    if missing:
        return f"⚠️ {place.mention}: the bot lacks {names(missing)} there, so nothing it posts reaches it."
    return f"✅ {place.mention}: its posts reach it."


def _again(invite: str | None) -> str:
    """Where the bot's roles lack a right in the whole server: the other way to give it back. Discord gives the bot's
    own role what an invite link asks for when the bot is added again (bot/invite.py: every right it uses)."""
    return f", or [add the bot again]({invite}) (its role is given what it uses)" if invite else ""


def server_check(
    me: discord.Member,
    *,
    log_channel_id: int | None,
    alert_channel_id: int | None,
    gallery_id: int | None = None,
    invite: str | None = None,
) -> discord.Embed:
    """The whole server: the channels that lack something, grouped by what they lack, and the channels the bot
    posts in for the moderators and admins (``invite``: the link that adds it with what it uses)."""
    guild = me.guild
    places = in_order(guild)
    groups = shortfalls(places, me)
    lacking_somewhere = sum(len(group.channels) for group in groups)
    embed = discord.Embed(title="🍌 What the bot may do in this server", colour=WARNING if groups else BANANA)
    if not groups:
        embed.description = (
            f"✅ In each of the {len(places)} channels where members talk, the bot has what it uses: "
            f"{names(EVERY_RIGHT)}."
        )
    else:
        lines = [
            f"⚠️ {lacking_somewhere} of {len(places)} channels lack a permission the bot uses. Its commands work "
            "there all the same (Discord carries them to the bot and its answers back); what each lacks costs what "
            f"is said under it. Give it to the bot's role, {_role(me)}, in the channel's Permissions (or its "
            "category's)."
        ]
        server_wide = lacking(me.guild_permissions, EVERY_RIGHT)
        if server_wide:
            lines.append(
                f"Its roles lack {names(server_wide)} in the whole server, so every channel lacks it unless the "
                f"channel gives it: Server Settings → Roles → {_role(me)}{_again(invite)}."
            )
        embed.description = "\n\n".join(lines)
    log_line = _posting_line(
        me, log_channel_id, "none: blocks, bans and changes are kept in `/mod log` only (`/mod logchannel` sets one)."
    )
    embed.add_field(name="Moderation log", value=log_line, inline=False)
    if alert_channel_id is not None and (place := guild.get_channel_or_thread(alert_channel_id)) is not None:
        # The configured alert channel may be in another server the bot is in: told only where it is.
        embed.add_field(name="Provider alerts", value=_posting_line(me, place.id, ""), inline=False)
    if gallery_id is not None:
        embed.add_field(name="Gallery", value=_posting_line(me, gallery_id, "", images=True), inline=False)
    for index, group in enumerate(groups):
        name, value = _group_field(group)
        if len(embed) + len(name) + len(value) > EMBED_CHARS - LAST_FIELD_ROOM:
            rest = sum(len(g.channels) for g in groups[index:])
            embed.add_field(
                name="And more",
                value=f"{rest} more channels lack other permissions: `/admin check channel:` says what one lacks.",
                inline=False,
            )
            break
        embed.add_field(name=name, value=value, inline=False)
    return embed


def channel_check(place: Place, me: discord.Member, invite: str | None = None) -> discord.Embed:
    """One channel or thread: each right the bot uses there, had or not, and where a missing one is taken away."""
    rights = rights_for(place)
    permissions = permissions_in(place, me)
    missing = lacking(permissions, rights)
    lines = []
    for right in rights:
        if right in missing:
            lines.append(f"❌ **{right.name}**: {right.costs}.")
        elif getattr(permissions, right.flag):
            lines.append(f"✅ {right.name}")
        elif (goes_with := implied(right, rights)) is not None and VIEW not in missing:
            lines.append(f"➖ {right.name}: Discord gives it back with {goes_with.name}")
    if not missing:
        lines.append("\nThe bot has everything it uses here.")
    else:
        server_wide = lacking(me.guild_permissions, missing)
        here = [right for right in missing if right not in server_wide]
        # A thread has its channel's permissions (discord.py reads them from the parent): changed there.
        where = f"<#{place.parent_id}>'s" if isinstance(place, discord.Thread) else "this channel's"
        if here:
            lines.append(
                f"\n{names(here)}: taken away in {where} Permissions (or its category's): allow it there for "
                f"{_role(me)}."
            )
        if server_wide:
            lines.append(
                f"\n{names(server_wide)}: the bot's roles lack it in the whole server: Server Settings → Roles → "
                f"{_role(me)}{_again(invite)}."
            )
    return discord.Embed(
        title=truncate(f"🍌 What the bot may do in #{place.name}", 256),
        description=truncate("\n".join(lines), 4096),
        colour=WARNING if missing else BANANA,
    )


def refusal_note(guild: discord.Guild) -> str | None:
    """A line for the admins (their ``/help``, the welcome) when some channel refuses the bot a permission it uses;
    None when none does, or the server is not known yet."""
    me: discord.Member | None = guild.me  # typed as always there; None until the server's members arrive
    if me is None:
        return None
    refusing = sum(len(group.channels) for group in shortfalls(in_order(guild), me))
    if not refusing:
        return None
    return (
        f"⚠️ {refusing} channel(s) refuse the bot a permission it uses (replies to images there go unanswered, slow "
        "images ping nobody): `/admin check` names them."
    )
