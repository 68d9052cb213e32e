"""The "Report to moderators" message command: a member flags one of the bot's images for the server's moderators.

An image that passed every filter can still be one a member does not want in their server. Discord's own Report goes
to Discord, not to the server's moderators, and the moderators otherwise learn of it only if someone tells them.
Right-click the image's message (long-press on a phone) → **Apps** → **Report to moderators** opens a form asking
what is wrong with it (optional); its submit is kept in the audit log (``/mod log``, kind reports: who reported it,
whose image, the reason, the prompt, as bot/store/reports.py keeps it) and posted to the moderation log channel if
the server has one, with a link to the image (a moderator deletes it with its Delete button, or all of the member's
with ``/mod purge``). The image's member is not told who reported it, nor that it was. One report per member and
image, and at most a few an hour per member (bot/store/reports.py ``PER_HOUR``): a raid of reports cannot flood the
log channel. Only the bot's own images: another message is for Discord's Report.
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.errors import InvalidRequestError
from bot.job_list import message_link
from bot.render import literal
from bot.store import reports
from bot.store.reports import Outcome, Report
from cogs.message_menu import MessageMenu
from cogs.moderation import post_to_log
from cogs.private_answers import answer_privately

MENU_NAME = "Report to moderators"
FORM_ID = re.compile(r"bananacord:report:(?P<form_id>[0-9a-f]{16})")
REASON_INPUT_ID = "reason"
# The reason's length, as a ban's (cogs/moderation.py MAX_REASON).
REASON_MAX_CHARS = 300
NOT_AN_IMAGE = (
    "Only the images this bot made can be reported with this. For another message, tell the server's moderators, "
    "or use Discord's own Report (it goes to Discord, not to them)."
)


class ReportForm(discord.ui.Modal):
    """What is wrong with the image, in the reporter's words (optional)."""

    def __init__(self, form_id: str) -> None:
        super().__init__(title=MENU_NAME, custom_id=f"bananacord:report:{form_id}", timeout=None)
        self.add_item(
            discord.ui.TextInput(
                label="What is wrong with it? (optional)",
                custom_id=REASON_INPUT_ID,
                style=discord.TextStyle.paragraph,
                required=False,
                max_length=REASON_MAX_CHARS,
                placeholder="Only the server's moderators see this, with your name.",
            )
        )
        self.stop()  # answered by on_interaction, as a form opened before a restart is


class ReportMenu(MessageMenu):
    """The "Report to moderators" message command."""

    FORM = FORM_ID
    TYPED = REASON_INPUT_ID

    def __init__(self, bot: Bananacord) -> None:
        super().__init__(bot, MENU_NAME, self.open)

    async def open(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """Report this image: a form asks why."""
        me = self.bot.user
        job = await self.bot.services.runner.store.by_message(message.id)
        if me is None or message.author.id != me.id or job is None or job.guild_id != interaction.guild_id:
            raise InvalidRequestError(NOT_AN_IMAGE)
        form_id = await self.keep_form(interaction, {"job_id": job.id})
        await interaction.response.send_modal(ReportForm(form_id))

    async def submitted(
        self, interaction: discord.Interaction[Any], body: dict[str, Any], components: list[Any], typed: str | None
    ) -> None:
        job = await self.bot.services.runner.store.get(str(body["job_id"]))
        if job is None or job.guild_id is None:
            raise InvalidRequestError("That image is no longer known to the bot: nothing was reported.")
        reporter, reason = interaction.user.id, (typed or "").strip() or None
        link = message_link(job)
        where = f"[an image]({link})" if link else "an image (its message since deleted)"
        why = f": {literal(reason, REASON_MAX_CHARS)}" if reason else " (no reason given)"

        def summary(reporters: int) -> str:
            more = f" It has been reported by {reporters} members." if reporters > 1 else ""
            return f"🚩 <@{reporter}> reported {where} by <@{job.user_id}> (job {job.id}){why}.{more}"

        kept = Report(job.guild_id, job.id, reporter, job.user_id, job.channel_id, job.request.prompt, reason)
        reported = await reports.report(self.bot.services.db, kept, summary, now=self.bot.clock())
        if reported.outcome is Outcome.ALREADY:
            await answer_privately(interaction, "You have reported this image already: the moderators have it.")
            return
        if reported.outcome is Outcome.TOO_MANY:
            await answer_privately(
                interaction,
                f"You have reported {reports.PER_HOUR} image{'s' if reports.PER_HOUR != 1 else ''} in the last hour, "
                "and the moderators have them all. Tell them directly if there is more.",
            )
            return
        posted = await post_to_log(self.bot, job.guild_id, summary(reported.reporters), job.request.prompt)
        seen = "in their log channel and `/mod log`" if posted else "in `/mod log`"
        await answer_privately(
            interaction,
            f"Thank you: the moderators see your report {seen}, with your name. The image's maker is not told.",
        )


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(ReportMenu(bot))
