"""/privacy: what the bot keeps about a member in this server, privately, with a button that erases their words.

A member's prompts sit in the bot's database for /jobs, Re-roll and the rest; a member who wants them gone asks here
rather than an operator. The button is the confirmation (the command alone changes nothing), acts for the member who
pressed it and only in this server, and rides in its custom_id, so an answer drawn before a restart still works.
What is erased and what stays is bot/store/erasure.py's.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.store.erasure import Erasure, KeptAbout, erase, kept_about
from cogs.errors import send_ephemeral
from cogs.in_time import record_in_time
from cogs.private_answers import answer_privately
from cogs.slow_answers import watched_answer

log = logging.getLogger(__name__)

COLOUR = discord.Colour(0xF5C518)
IMAGES_STAY = (
    "They are messages in this server's channels, and stay until deleted: delete any of yours with its 🗑️ **Delete** "
    "button or a ❌ reaction."
)
KEPT_FOR_SERVER = (
    "What you were charged and for what (units, model, provider, size: the server's accounting, `/usage`), and the "
    "moderation log's records about you (which quote a prompt a blocked term refused), for its moderators. An "
    "erasure keeps these."
)
NOT_YOURS = "This button erases the words of the member who asked for it. Use `/privacy` for your own."


def requests_line(kept: KeptAbout) -> str:
    if kept.requests:
        since = f" since <t:{int(kept.oldest)}:D>" if kept.oldest is not None else ""
        line = f"{kept.requests} with their words (your prompts, the words of your edits, the images you gave){since}"
    else:
        line = "None with their words"
    if kept.unfinished:
        line += f"; {kept.unfinished} still generating or waiting (their words stay until they end)"
    if kept.erased:
        line += f"; {kept.erased} erased before"
    return line


def kept_embed(kept: KeptAbout) -> discord.Embed:
    erasable = kept.requests or kept.preferences or kept.stars
    description = (
        "**Erase my words here** erases your requests' words, your `/preferences` (suffix and option sets included) "
        "and your ⭐ stars in this server. It cannot be undone: nothing can be made again from those requests "
        "afterwards (Re-roll, Vary, Edit, re-renders), by you or anyone."
        if erasable
        else "Nothing of your words is kept here."
    )
    embed = discord.Embed(title="What the bot keeps about you here", description=description, colour=COLOUR)
    embed.add_field(name="Your requests", value=requests_line(kept), inline=False)
    embed.add_field(
        name="Preferences",
        value="Yours are set (`/preferences`)" if kept.preferences else "None",
        inline=True,
    )
    embed.add_field(name="Stars", value=f"{kept.stars} image(s) you starred" if kept.stars else "None", inline=True)
    embed.add_field(name="Kept for the server", value=KEPT_FOR_SERVER, inline=False)
    embed.add_field(name="Your images", value=IMAGES_STAY, inline=False)
    return embed


def erased_embed(done: Erasure) -> discord.Embed:
    parts = [f"the words of {done.requests} request(s)"]
    if done.preferences:
        parts.append("your preferences")
    if done.stars:
        parts.append(f"{done.stars} star(s)")
    said = ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]
    description = f"Erased from this server's records: {said}."
    if done.unfinished:
        description += (
            f" {done.unfinished} request(s) still generating or waiting keep their words until they end: run "
            "`/privacy` again then."
        )
    embed = discord.Embed(title="Erased", description=description, colour=COLOUR)
    embed.add_field(name="Kept for the server", value=KEPT_FOR_SERVER, inline=False)
    embed.add_field(name="Your images", value=IMAGES_STAY, inline=False)
    return embed


class EraseWords(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:privacy:erase:(?P<user>[0-9]{1,20})"),
):
    """/privacy's button: whose words it erases rides in the custom_id."""

    def __init__(self, user_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Erase my words here",
                style=discord.ButtonStyle.danger,
                emoji="🧹",
                custom_id=f"bananacord:privacy:erase:{user_id}",
            )
        )
        self.user_id = user_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> EraseWords:
        return cls(int(match["user"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog("Privacy")
        assert isinstance(cog, Privacy)
        await watched_answer(interaction, cog.bot.services.db, "/privacy's Erase", cog.erase(interaction, self.user_id))


class Privacy(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(EraseWords)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(EraseWords)

    @app_commands.command(name="privacy")
    @app_commands.guild_only()
    async def privacy(self, interaction: discord.Interaction[Any]) -> None:
        """What the bot keeps about you in this server, and a button that erases your words."""
        kept = await kept_about(self.bot.services.db, interaction.guild_id or 0, interaction.user.id)
        view = discord.ui.View(timeout=None)
        if kept.requests or kept.preferences or kept.stars:
            view.add_item(EraseWords(interaction.user.id))
        await answer_privately(interaction, embed=kept_embed(kept), view=view)

    async def erase(self, interaction: discord.Interaction[Any], user_id: int) -> None:
        if interaction.user.id != user_id or interaction.guild_id is None:
            await send_ephemeral(interaction, NOT_YOURS)
            return
        guild_id, services = interaction.guild_id, self.bot.services

        async def write() -> Erasure:
            done = await erase(services.db, guild_id, user_id, now=self.bot.clock())
            services.preferences.erased(guild_id, user_id)  # here: a write taken after a "busy" answer too
            return done

        done = await record_in_time(interaction, services.db, write)
        log.info("member %s erased the words of %d request(s) in server %s", user_id, done.requests, guild_id)
        await interaction.response.edit_message(
            embed=erased_embed(done), view=None, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Privacy(bot))
