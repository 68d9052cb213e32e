"""The bot's slash commands sent to Discord at start, only when they changed since the last time.

discord.py's ``CommandTree.sync`` replaces the whole list at every call. Discord limits that route tightly, and
the bot sent it at every start: a bot restarted in a loop (a supervisor restarting it after each crash) sent it
each time, and could meet 429s and, kept up, a ban at Discord's edge. The digest of the list sent (the JSON
discord.py sends, from each command's ``to_dict``) is now kept per application and scope (bot/store/
command_syncs.py). A start whose list is the same does not send it. ``[discord] sync_commands = "always"``
sends it at every start. A start also reads the names of the commands Discord holds (a read is not limited as a
sync is), and sends the list when they differ: commands deleted or replaced outside the bot (the Developer
Portal, another program using the token) come back at the next start. A description changed outside the bot
does not show in the names: ``always`` sends the list. A list that failed to go is not recorded, so the next
start sends it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands

from bot.store.command_syncs import GLOBAL_SCOPE, CommandSyncs

log = logging.getLogger(__name__)


def payload(tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None) -> list[dict[str, Any]]:
    """What ``tree.sync(guild=guild)`` would send."""
    return [command.to_dict(tree) for command in tree.get_commands(guild=guild)]


def digest(commands: list[dict[str, Any]]) -> str:
    """A payload as one SHA-256 hex digest."""
    text = json.dumps(commands, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def names(commands: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """Each command's name and type (1: a slash command, 2 and 3: a context menu's)."""
    return {(str(command["name"]), int(command.get("type", 1))) for command in commands}


async def held_by_discord(
    tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None
) -> set[tuple[str, int]] | None:
    """The names and types of the commands Discord holds there (a read, which Discord does not limit as it
    does a sync); None if it would not say."""
    try:
        held = await tree.fetch_commands(guild=guild)
    except discord.HTTPException as exc:
        log.warning("could not read the slash commands Discord holds (%s): taking the record's word", exc)
        return None
    return {(command.name, command.type.value) for command in held}


async def sync_commands(
    tree: app_commands.CommandTree[Any],
    syncs: CommandSyncs,
    *,
    application_id: int,
    guild_ids: Sequence[int],
    always: bool,
    now: float,
) -> None:
    """Send the commands to each guild of ``guild_ids`` (the global ones copied in), or globally if none, where
    they differ from what was last sent there (or ``always``)."""
    scopes: list[discord.Object | None] = [discord.Object(id=guild_id) for guild_id in guild_ids] or [None]
    for guild in scopes:
        if guild is not None:
            tree.copy_global_to(guild=guild)
        scope = GLOBAL_SCOPE if guild is None else guild.id
        where = "global" if guild is None else f"guild {guild.id}"
        commands = payload(tree, guild)
        current = digest(commands)
        if not always and await _last(syncs, application_id, scope) == current:
            # Unchanged since sent, unless someone deleted or replaced them at Discord since (the Developer
            # Portal, another program with the token): the names Discord holds tell that much.
            held = await held_by_discord(tree, guild)
            if held is None or held == names(commands):
                log.info("slash commands (%s) unchanged since they were last sent to Discord: not sent again", where)
                continue
            log.warning("the slash commands Discord holds (%s) are not those last sent: sending them again", where)
        await tree.sync(guild=guild)
        try:
            await syncs.record(application_id, scope, current, now=now)
        except sqlite3.Error as exc:
            # The list went; only the note of it did not. Not worth a start: the next one sends it again.
            log.warning("slash commands (%s) sent to Discord, but not recorded (%s): sent again next start", where, exc)
        else:
            log.info("slash commands (%s) sent to Discord", where)


async def _last(syncs: CommandSyncs, application_id: int, scope: int) -> str | None:
    """The digest last recorded, or None (send) if the database would not say."""
    try:
        return await syncs.last(application_id, scope)
    except sqlite3.Error as exc:
        log.warning("could not read which slash commands were last sent (%s): sending them", exc)
        return None
