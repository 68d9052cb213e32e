"""The moderators' user commands: right-click a member (Apps) to ban them from the bot, or to see their images.

Moderators act on a member from the member's own menu (Discord's Timeout, Kick and Ban are there); ``/mod ban`` and
``/mod images`` meant typing the command and finding the member again. "Ban from the image bot" opens ``/mod ban``'s
options as a form (cogs/ban_form.py: why, for how many hours, their images of how many hours to delete), carried out
as the command is; "Images by this member" answers with their list as ``/mod images`` does (cogs/jobs.py). Shown
only to members with Manage Messages (as ``/mod`` is), and checked again in code, on the form's submit too.
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from cogs.ban_form import NOT_A_MODERATOR, BanForm, ban_from_form
from cogs.imagine import form_submit
from cogs.jobs import MemberJobs
from cogs.moderation import is_moderator
from cogs.private_answers import answer_privately
from cogs.slow_answers import ANSWERS_ON_ITS_OWN, watched_answer

MENU_NAME = "Ban from the image bot"
IMAGES_MENU_NAME = "Images by this member"
FORM_ID = re.compile(r"bananacord:member-ban:(?P<user_id>\d+)")


class MemberMenu(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.open, extras={ANSWERS_ON_ITS_OWN: True})
        self.menu.guild_only = True
        self.menu.default_permissions = discord.Permissions(manage_messages=True)
        self.images_menu = app_commands.ContextMenu(
            name=IMAGES_MENU_NAME, callback=self.images, extras={ANSWERS_ON_ITS_OWN: True}
        )
        self.images_menu.guild_only = True
        self.images_menu.default_permissions = discord.Permissions(manage_messages=True)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)
        self.bot.tree.add_command(self.images_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
        self.bot.tree.remove_command(self.images_menu.name, type=self.images_menu.type)

    async def images(self, interaction: discord.Interaction[Any], member: discord.Member | discord.User) -> None:
        """This member's images here, with links, privately (as /mod images lists them)."""
        if not is_moderator(interaction, self.bot.settings.moderation.moderator_role_id):
            await answer_privately(interaction, "Only the server's moderators can list a member's images.")
            return
        member_jobs = self.bot.get_cog("MemberJobs")
        assert isinstance(member_jobs, MemberJobs)
        listing = member_jobs.of_member(interaction, member.id, None)
        await watched_answer(interaction, self.bot.services.db, "the Images by this member menu", listing)

    async def open(self, interaction: discord.Interaction[Any], member: discord.Member | discord.User) -> None:
        """Ban this member from the bot: a form asks why and for how long."""
        if not is_moderator(interaction, self.bot.settings.moderation.moderator_role_id):
            await answer_privately(interaction, NOT_A_MODERATOR)
            return
        name = f"Ban {member.display_name} from the bot"
        await interaction.response.send_modal(BanForm(f"bananacord:member-ban:{member.id}", name))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        sent = form_submit(interaction, FORM_ID)
        if sent is not None:
            match, components = sent
            banning = ban_from_form(self.bot, interaction, int(match["user_id"]), components)
            await watched_answer(interaction, self.bot.services.db, "the Ban from the image bot form", banning)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(MemberMenu(bot))
