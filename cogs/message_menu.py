"""What the bot's message commands ("Apps → …" on a message) share: each opens a form on a message (cogs/remix.py's
Edit with Nano Banana, cogs/imagine_menu.py's Imagine this), in servers only, and answers on its own (the form, after
``record_in_time``), registered with the command tree while its cog is loaded. What the form needs of the message is
kept in SQLite (bot/store/forms.py), not in the form's object: a member's message read again later comes back without
its images unless the bot has the message-content intent, and a form opened before a restart is sent after it."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.errors import InvalidRequestError
from bot.store.forms import FormStore
from cogs.imagine import Imagine, form_submit, submitted_text
from cogs.in_time import record_in_time
from cogs.slow_answers import ANSWERS_ON_ITS_OWN, watched_answer

MenuCallback = Callable[[discord.Interaction[Any], discord.Message], Coroutine[Any, Any, None]]


class MessageMenu(commands.Cog):
    """A message command whose form's submit (``FORM``: its custom_id, the form's id in group ``form_id``; ``TYPED``:
    the text input whose words a slow answer quotes) is answered by ``submitted`` with the body kept for it."""

    FORM: re.Pattern[str]
    TYPED: str

    def __init__(self, bot: Bananacord, name: str, callback: MenuCallback) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name=name, callback=callback, extras={ANSWERS_ON_ITS_OWN: True})
        self.menu.guild_only = True

    @property
    def imagine(self) -> Imagine:
        cog = self.bot.get_cog("Imagine")
        assert isinstance(cog, Imagine)  # loaded before the menus (bot/app.py EXTENSIONS)
        return cog

    @property
    def forms(self) -> FormStore:
        return FormStore(self.bot.services.db)

    async def keep_form(self, interaction: discord.Interaction[Any], body: dict[str, Any]) -> str:
        """A new form's id, ``body`` kept for its submit within Discord's 3 s, or the member told that the database is
        busy (a form written later just expires)."""
        form_id = secrets.token_hex(8)
        await record_in_time(
            interaction, self.bot.services.db, lambda: self.forms.put(form_id, body, now=self.bot.clock())
        )
        return form_id

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """The form's submit, whether this process or an earlier one opened it. Refusals (quota, moderation, the
        model's limits) are answered privately, like every other refusal."""
        sent = form_submit(interaction, self.FORM)
        if sent is None:
            return
        match, components = sent
        typed = submitted_text(components, self.TYPED)
        taken = self._taken(interaction, match["form_id"], components, typed)
        await watched_answer(interaction, self.bot.services.db, f"the {self.menu.name} form", taken, typed=typed)

    async def _taken(
        self, interaction: discord.Interaction[Any], form_id: str, components: list[Any], typed: str | None
    ) -> None:
        body = await self.forms.take(form_id, now=self.bot.clock())
        if body is None:
            raise InvalidRequestError(
                f"This form has expired. Use **{self.menu.name}** on the message again (you were not charged)."
            )
        await self.submitted(interaction, body, components, typed)

    async def submitted(
        self, interaction: discord.Interaction[Any], body: dict[str, Any], components: list[Any], typed: str | None
    ) -> None:
        """The form sent: ``body`` is what ``keep_form`` kept when it opened, ``typed`` the words in ``TYPED``."""
        raise NotImplementedError

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
