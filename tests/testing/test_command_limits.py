"""The fake Discord refuses a command overwrite past Discord's combined-size limit, as Discord does (every command of
the bot would be left unregistered); the bot's own commands stay well within it."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.testing.discord.validation import validate_commands
from cogs.blend import Blend
from cogs.imagine import Imagine
from cogs.preferences import MemberPreferences


def test_a_command_past_the_combined_size_is_refused() -> None:
    option = {"type": 3, "name": "style", "description": "x" * 100}
    choices = [{"name": "n" * 90, "value": f"v{i}"} for i in range(25)]
    big = {"type": 1, "name": "big", "description": "d", "options": [{**option, "choices": choices}] * 2}
    problems = validate_commands([big])
    assert problems and "exceeds maximum size" in problems[0][1]
    assert validate_commands([{**big, "options": [option]}]) == []


def test_the_bots_largest_commands_are_within_the_limit() -> None:
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))
    commands = [Imagine.imagine.to_dict(tree), MemberPreferences.preferences.to_dict(tree), Blend.blend.to_dict(tree)]
    assert validate_commands(commands) == []
