"""What the bot's message commands ("Apps → …" on a message) share: each opens a form on a message (cogs/remix.py's
Edit with Nano Banana, cogs/imagine_menu.py's Imagine this), in servers only, and answers on its own (the form, after
``record_in_time``), registered with the command tree while its cog is loaded."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from cogs.imagine import Imagine
from cogs.slow_answers import ANSWERS_ON_ITS_OWN

MenuCallback = Callable[[discord.Interaction[Any], discord.Message], Coroutine[Any, Any, None]]


class MessageMenu(commands.Cog):
    def __init__(self, bot: Bananacord, name: str, callback: MenuCallback) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name=name, callback=callback, extras={ANSWERS_ON_ITS_OWN: True})
        self.menu.guild_only = True

    @property
    def imagine(self) -> Imagine:
        cog = self.bot.get_cog("Imagine")
        assert isinstance(cog, Imagine)  # loaded before the menus (bot/app.py EXTENSIONS)
        return cog

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
