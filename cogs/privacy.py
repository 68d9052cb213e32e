"""/privacy: what the bot keeps about a member in this server, privately, with a button that erases their words.

A member's prompts sit in the bot's database for /jobs, Re-roll and the rest; a member who wants them gone asks here
rather than an operator. The button is the confirmation (the command alone changes nothing), acts only in this
server, for the member it was drawn for (pressed by them, or by an admin who drew it with ``member:`` for someone
who asked and has left the server: kept in the audit log then), and rides in its custom_id, so an answer drawn before
a restart still works. What is erased and what stays is bot/store/erasure.py's.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.app import Bananacord
from bot.erased_messages import ErasedMessages
from bot.errors import InvalidRequestError
from bot.render import byte_size, truncate
from bot.store.erasure import Erasure, KeptAbout, erase, erase_ended_before, kept_about, requests_csv
from bot.store.refusals import log_refused_or_error
from cogs.admin import is_admin, record_admin_change, require_admin
from cogs.errors import send_ephemeral
from cogs.in_time import AnsweredBusy, record_in_time
from cogs.private_answers import answer_privately
from cogs.slow_answers import watched_answer

log = logging.getLogger(__name__)

COLOUR = discord.Colour(0xF5C518)
# How often the words past [privacy] keep_words_days are looked for (and at start).
SWEEP_SECONDS = 3600.0
KEPT_FOR_SERVER = (
    "What was charged and for what (units, model, provider, size: the server's accounting, `/usage`), and the "
    "moderation log's records about {whom} (which quote a prompt a blocked term refused) and of the images reported "
    "to them (a report's words among them), for its moderators. An erasure keeps these."
)
IMAGES_STAY = (
    "They stay in this server's channels. Once a request's words are erased, the bot draws its message again "
    "without them (its embed and its images' alt text), in the background, and the copies it sent by DM (a ✉️ "
    "copy, a note of how it ended) too. Delete {whose} own with its 🗑️ **Delete** button or a ❌ reaction (its "
    "post in the server's gallery, if it has one, goes with it; a ❌ on that post takes the post alone down)."
)
ERASURE_WAITS = (
    "The bot's database is busy just now (another program is holding it), so the erasure has not finished. It goes on "
    "by itself if the database is freed within a few seconds; run `/privacy` again in a minute to see what is kept."
)
NOT_YOURS_TO_DOWNLOAD = "This button downloads the requests of the member it was drawn for. Use `/privacy` for yours."
NOT_YOURS = "This button erases the words of the member it was drawn for. Use `/privacy` for your own."


def requests_line(kept: KeptAbout, yours: bool) -> str:
    if kept.requests:
        since = f" since <t:{int(kept.oldest)}:D>" if kept.oldest is not None else ""
        what = "your prompts, the words of your edits, the images you gave" if yours else "prompts, edits, images"
        line = f"{kept.requests} with their words ({what}){since}"
    else:
        line = "None with their words"
    if kept.unfinished:
        line += f"; {kept.unfinished} still generating or waiting (their words stay until they end)"
    if kept.erased:
        line += f"; {kept.erased} erased before"
    return line


def erasable(kept: KeptAbout) -> bool:
    return bool(kept.requests or kept.preferences or kept.stars)


def kept_embed(kept: KeptAbout, whom: discord.abc.User | None = None, *, keep_days: int | None = None) -> discord.Embed:
    """What the bot keeps about the member who asked (``whom`` None), or, for an admin, about ``whom``; ``keep_days``:
    how long this bot keeps anyone's words ([privacy] keep_words_days)."""
    if whom is None:
        title, nothing = "What the bot keeps about you here", "Nothing of your words is kept here."
        description = (
            "**Erase my words here** erases your requests' words, your `/preferences` (suffix and option sets "
            "included) and your ⭐ stars in this server. It cannot be undone: nothing can be made again from those "
            "requests afterwards (Re-roll, Vary, Edit, re-renders), by you or anyone. **Download my requests** gives "
            "you them first as a CSV file, to keep."
        )
    else:
        title, nothing = (
            f"What the bot keeps about {whom.display_name} here",
            f"Nothing of {whom.mention}'s words is kept here.",
        )
        description = (
            f"**Erase their words here** erases {whom.mention}'s requests' words, preferences and stars in this "
            "server, as their own `/privacy` would (for a member who asked for it and can no longer, having left). "
            "It cannot be undone, and it is kept in the audit log and posted to the moderation log channel."
        )
    yours = whom is None
    embed = discord.Embed(
        title=truncate(title, 256), description=description if erasable(kept) else nothing, colour=COLOUR
    )
    embed.add_field(name="Requests", value=requests_line(kept, yours), inline=False)
    if keep_days is not None:
        embed.add_field(
            name="How long",
            value=f"This bot erases every request's words {keep_days} days after it ends.",
            inline=False,
        )
    own = "Yours are set (`/preferences`)" if yours else "Set"
    embed.add_field(name="Preferences", value=own if kept.preferences else "None", inline=True)
    embed.add_field(name="Stars", value=f"{kept.stars} image(s) starred" if kept.stars else "None", inline=True)
    embed.add_field(
        name="Kept for the server", value=KEPT_FOR_SERVER.format(whom="you" if yours else "them"), inline=False
    )
    embed.add_field(name="Images", value=IMAGES_STAY.format(whose="your" if yours else "their"), inline=False)
    return embed


def erased_embed(done: Erasure, whom: int | None = None) -> discord.Embed:
    """What an erasure took, told to the member (``whom`` None) or to the admin who erased ``whom``'s."""
    yours = whom is None
    parts = [f"the words of {done.requests} request(s)"] if done.requests else []
    if done.preferences:
        parts.append("your preferences" if yours else "their preferences")
    if done.stars:
        parts.append(f"{done.stars} star(s)")
    said = ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else "".join(parts)
    of = "" if yours else f" for <@{whom}>"
    # Nothing: pressed a second time, or on an answer drawn before an earlier erasure.
    description = f"Erased from this server's records{of}: {said}." if said else f"Nothing was left to erase{of}."
    if done.unfinished:
        description += (
            f" {done.unfinished} request(s) still generating or waiting keep their words until they end: run "
            "`/privacy` again then."
        )
    embed = discord.Embed(title="Erased", description=description, colour=COLOUR)
    embed.add_field(
        name="Kept for the server", value=KEPT_FOR_SERVER.format(whom="you" if yours else "them"), inline=False
    )
    embed.add_field(name="Images", value=IMAGES_STAY.format(whose="your" if yours else "their"), inline=False)
    return embed


class EraseWords(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:privacy:erase:(?P<user>[0-9]{1,20})"),
):
    """/privacy's button: whose words it erases rides in the custom_id (its label is drawn once, and Discord keeps
    it; one built again from a click only acts)."""

    def __init__(self, user_id: int, *, own: bool = True) -> None:
        super().__init__(
            discord.ui.Button(
                label="Erase my words here" if own else "Erase their words here",
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


class DownloadRequests(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:privacy:download:(?P<user>[0-9]{1,20})"),
):
    """/privacy's download of the member's requests (before an erasure, say): whose rides in the custom_id."""

    def __init__(self, user_id: int, *, own: bool = True) -> None:
        label = "Download my requests" if own else "Download their requests"
        super().__init__(discord.ui.Button(label=label, emoji="📥", custom_id=f"bananacord:privacy:download:{user_id}"))
        self.user_id = user_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> DownloadRequests:
        return cls(int(match["user"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog("Privacy")
        assert isinstance(cog, Privacy)
        await watched_answer(
            interaction, cog.bot.services.db, "/privacy's Download", cog.download(interaction, self.user_id)
        )


class Privacy(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self.redraws = ErasedMessages(bot.services.runner, bot.services.db, bot.clock)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(EraseWords, DownloadRequests)
        if self.bot.settings.privacy.keep_words_days is not None:
            self.sweep.start()
        self.redraws.soon()  # what the last run erased and had not drawn again yet

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(EraseWords, DownloadRequests)
        self.sweep.cancel()

    @tasks.loop(seconds=SWEEP_SECONDS)
    async def sweep(self) -> None:
        """``[privacy] keep_words_days``: the words of requests that ended longer ago than that are erased, at start
        and hourly after (bot/store/erasure.py ``erase_ended_before``). A sweep that fails (the database held by
        another program) is logged and tried again at the next."""
        days = self.bot.settings.privacy.keep_words_days
        if days is None:
            return
        now = self.bot.clock()
        try:
            erased = await erase_ended_before(self.bot.services.db, now - days * 86_400, now=now)
        except Exception as exc:
            log_refused_or_error(log, exc, "privacy: the words of requests past %d days were not erased now", days)
            return
        if erased:
            log.info("privacy: erased the words of %d request(s) that ended more than %d days ago", erased, days)
            self.redraws.soon()

    @app_commands.command(name="privacy")
    @app_commands.guild_only()
    @app_commands.describe(member="(Admins) another member's, one who has left the server included")
    async def privacy(self, interaction: discord.Interaction[Any], member: discord.User | None = None) -> None:
        """What the bot keeps about you in this server, and a button that erases your words."""
        whom: discord.abc.User | None = None
        if member is not None and member.id != interaction.user.id:
            # A user, not a Member: a member who has left (and asked an admin, having no /privacy of their own now).
            require_admin(interaction, self.bot.settings.admin.role_id)
            whom = member
        target = interaction.user.id if whom is None else whom.id
        kept = await kept_about(self.bot.services.db, interaction.guild_id or 0, target)
        view = discord.ui.View(timeout=None)
        if erasable(kept):
            view.add_item(EraseWords(target, own=whom is None))
        if kept.requests or kept.unfinished or kept.erased:
            view.add_item(DownloadRequests(target, own=whom is None))
        keep_days = self.bot.settings.privacy.keep_words_days
        await answer_privately(interaction, embed=kept_embed(kept, whom, keep_days=keep_days), view=view)

    async def download(self, interaction: discord.Interaction[Any], user_id: int) -> None:
        """The member's requests in this server as a CSV file, privately: their own, or, for an admin, those of the
        member the button was drawn for (one who has left and asked for them), kept in the audit log."""
        own = interaction.user.id == user_id
        if interaction.guild_id is None or not (own or is_admin(interaction, self.bot.settings.admin.role_id)):
            await send_ephemeral(interaction, NOT_YOURS_TO_DOWNLOAD)
            return
        count, text = await requests_csv(self.bot.services.db, interaction.guild_id, user_id)
        data = text.encode("utf-8")
        name = f"bananacord-requests-{interaction.guild_id}"
        if len(data) > interaction.filesize_limit:
            # Prompts compress several times over; off the loop, a long history is megabytes.
            data, name = await asyncio.to_thread(gzip.compress, data, mtime=0), f"{name}.csv.gz"
        else:
            name += ".csv"
        if len(data) > interaction.filesize_limit:
            raise InvalidRequestError(
                f"{'Your' if own else 'Their'} {count:,} request(s) here come to {byte_size(len(data))} even "
                f"compressed, over the {byte_size(interaction.filesize_limit)} this channel takes: ask the bot's "
                "operator."
            )
        if not own:
            await record_admin_change(
                self.bot,
                interaction,
                "privacy_downloaded",
                f"downloaded the {count} request(s) of <@{user_id}> (`/privacy`)",
                target_id=user_id,
            )
        whose = "Your" if own else f"<@{user_id}>'s"
        await answer_privately(
            interaction,
            f"{whose} {count:,} request(s) in this server, as CSV.",
            file=discord.File(io.BytesIO(data), name),
        )

    async def erase(self, interaction: discord.Interaction[Any], user_id: int) -> None:
        """The button: the member's own words, or, pressed by an admin, those of the member it was drawn for."""
        own = interaction.user.id == user_id
        if interaction.guild_id is None or not (own or is_admin(interaction, self.bot.settings.admin.role_id)):
            await send_ephemeral(interaction, NOT_YOURS)
            return
        guild_id, services = interaction.guild_id, self.bot.services

        async def write() -> Erasure:
            done = await erase(services.db, guild_id, user_id, now=self.bot.clock())
            # Here, so that an erasure finished after a "busy" answer is followed through too.
            services.preferences.erased(guild_id, user_id)
            self.redraws.soon()
            return done

        try:
            done = await record_in_time(interaction, services.db, write)
        except AnsweredBusy:
            # Not taken back if it finishes later: it is what was asked. Said as it is.
            await send_ephemeral(interaction, ERASURE_WAITS)
            return
        log.info("guild %s: the words of %d request(s) of user %s erased", guild_id, done.requests, user_id)
        embed = erased_embed(done, None if own else user_id)
        if not own and (done.requests or done.preferences or done.stars):
            # An admin's erasure of another member's words is theirs to answer for, as every admin change is.
            noted = await record_admin_change(
                self.bot,
                interaction,
                "privacy_erased",
                f"erased the words of {done.requests} request(s) of <@{user_id}> (`/privacy`)",
                target_id=user_id,
            )
            if noted:
                embed.set_footer(text=noted)
        await interaction.response.edit_message(embed=embed, view=None, allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Privacy(bot))
