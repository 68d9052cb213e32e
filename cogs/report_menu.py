"""The "Report to moderators" message command: a member flags one of the bot's images for the server's moderators.

An image that passed every filter can still be one a member does not want in their server. Discord's own Report goes
to Discord, not to the server's moderators, and the moderators otherwise learn of it only if someone tells them.
Right-click the image's message (long-press on a phone) → **Apps** → **Report to moderators** opens a form asking
what is wrong with it (optional); its submit is kept in the audit log (``/mod log``, kind reports: who reported it,
whose image, the reason, the prompt, as bot/store/reports.py keeps it) and posted to the moderation log channel if
the server has one, with a link to the image (a moderator deletes it with its Delete button, or all of the member's
with ``/mod purge``; or, from the log channel's post, with its **Delete image**, **Purge 24 h** and **Ban** buttons,
which only moderators may press: Ban's form is ``/mod ban``'s options). The image's member is not told who reported
it, nor that it was. One report per member and image, and at most a few an hour per member (bot/store/reports.py
``PER_HOUR``); an image's reports after its first are posted as their count grows (``POSTED_AT``), all kept in ``/mod
log``: a raid of reports cannot flood the log channel. Only the bot's own images: another message is for Discord's
Report.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.errors import InvalidRequestError
from bot.job_list import message_link
from bot.render import literal
from bot.store import reports
from bot.store.jobs import Job
from bot.store.reports import Outcome, Report
from bot.wording import counted
from cogs.ban_form import BanForm, ban_from_form
from cogs.imagine import form_submit
from cogs.jobs import MemberJobs
from cogs.message_menu import MessageMenu
from cogs.moderation import Moderation, is_moderator, post_to_log, record_moderation
from cogs.private_answers import MAX_CONTENT, answer_privately, defer_privately
from cogs.purge import ProgressNote, Purge, delete_shown
from cogs.slow_answers import watched_answer

MENU_NAME = "Report to moderators"
FORM_ID = re.compile(r"bananacord:report:(?P<form_id>[0-9a-f]{16})")
# The buttons under a report's post in the moderation log channel: what they do, to which request.
ACTION_ID = re.compile(r"bananacord:report-act:(?P<action>images|delete|purge|ban):(?P<job_id>[0-9A-Za-z_-]+)")
# The Ban button's form, and its boxes.
BAN_FORM_ID = re.compile(r"bananacord:report-ban:(?P<job_id>[0-9A-Za-z_-]+)")
# The reports of one image posted to the log channel: the first, then as more members report it (the others are in
# /mod log): a raid of accounts reporting one image would otherwise flood the channel.
POSTED_AT = frozenset({1, 3, 10, 25, 100})
# The hours of a member's images the post's Purge button deletes (/mod purge's default).
PURGE_HOURS = 24.0
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
        reporter, reason = interaction.user.id, (typed or "").strip()[:REASON_MAX_CHARS] or None
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
                f"You have reported {counted(reports.PER_HOUR, 'image')} in the last hour, "
                "and the moderators have them all. Tell them directly if there is more.",
            )
            return
        seen = "in `/mod log`"
        if reported.reporters in POSTED_AT:
            posted = await post_to_log(
                self.bot, job.guild_id, summary(reported.reporters), job.request.prompt, view=_actions(job.id)
            )
            seen = "in their log channel and `/mod log`" if posted else seen
        await answer_privately(
            interaction,
            f"Thank you: the moderators see your report {seen}, with your name. The image's maker is not told.",
        )

    @commands.Cog.listener("on_interaction")
    async def on_action(self, interaction: discord.Interaction[Any]) -> None:
        """A moderator pressed a button under a report's post."""
        if interaction.type is not discord.InteractionType.component:
            return
        data: Any = interaction.data or {}
        pressed = ACTION_ID.fullmatch(str(data.get("custom_id", "")))
        if pressed is not None:
            acting = self._act(interaction, pressed["action"], pressed["job_id"])
            await watched_answer(interaction, self.bot.services.db, f"a report's {pressed['action']} button", acting)

    async def _act(self, interaction: discord.Interaction[Any], action: str, job_id: str) -> None:
        if not is_moderator(interaction, self.bot.settings.moderation.moderator_role_id):
            await answer_privately(interaction, "Only the server's moderators can use these buttons.")
            return
        job = await self.bot.services.runner.store.get(job_id)
        if job is None or job.guild_id != interaction.guild_id or job.user_id is None:
            await answer_privately(interaction, "That image is no longer known to the bot.")
            return
        if action == "images":  # what else they made, privately (cogs/jobs.py): the post stays as it is
            member_jobs = self.bot.get_cog("MemberJobs")
            assert isinstance(member_jobs, MemberJobs)
            await member_jobs.of_member(interaction, job.user_id, None)
            return
        if action == "ban":  # a form first: its answer is the form, within Discord's 3 s (no lookups before it)
            form = BanForm(f"bananacord:report-ban:{job.id}", "Ban the image's maker from the bot")
            await interaction.response.send_modal(form)
            return
        await defer_privately(interaction)
        note = ProgressNote(interaction, job.user_id)
        if action == "purge":
            moderation = self.bot.get_cog("Moderation")
            assert isinstance(moderation, Moderation)  # loaded before the menus (bot/app.py EXTENSIONS)
            said = await moderation.purge_logged(interaction, job.user_id, PURGE_HOURS, note)
            done: str | None = f"purged the images of <@{job.user_id}>"
        else:
            said, deleted = await self._delete(interaction, job)
            done = "deleted the image" if deleted else None
        await note.answer(said)
        if done is not None:
            await self._handled(interaction, done)

    @commands.Cog.listener("on_interaction")
    async def on_ban_form(self, interaction: discord.Interaction[Any]) -> None:
        """The Ban button's form sent."""
        sent = form_submit(interaction, BAN_FORM_ID)
        if sent is not None:
            match, components = sent
            banning = self._ban(interaction, match["job_id"], components)
            await watched_answer(interaction, self.bot.services.db, "a report's Ban form", banning)

    async def _ban(self, interaction: discord.Interaction[Any], job_id: str, components: list[Any]) -> None:
        job = await self.bot.services.runner.store.get(job_id)
        if job is None or job.user_id is None or job.guild_id != interaction.guild_id:
            await answer_privately(interaction, "That image is no longer known to the bot.")
            return
        if await ban_from_form(self.bot, interaction, job.user_id, components):
            await self._handled(interaction, f"banned <@{job.user_id}>")

    async def _handled(self, interaction: discord.Interaction[Any], done: str) -> None:
        """The report's post says who did what, its buttons gone."""
        post = interaction.message
        if post is not None:
            words = f"{post.content}\n✅ <@{interaction.user.id}> {done}."
            with contextlib.suppress(discord.HTTPException):
                await post.edit(content=words[:MAX_CONTENT], view=None, allowed_mentions=discord.AllowedMentions.none())

    async def _delete(self, interaction: discord.Interaction[Any], job: Job) -> tuple[str, bool]:
        """Delete the reported image's message; the moderator's answer, and whether it was deleted."""
        if job.message_id is None or job.channel_id is None or job.guild_id is None:
            return "That image has no message to delete.", False
        active, ended = await self.bot.services.runner.store.shown_in([job.message_id])
        shown = [(job_id, True) for job_id in active] + [(job_id, False) for job_id in ended]
        done = Purge()
        by = interaction.user.id
        await delete_shown(self.bot, done, job.guild_id, job.channel_id, job.message_id, shown, by=by)
        if done.refused:
            return "Discord would not let the bot delete it (`/admin check` says what it lacks there).", False
        if not done.messages:
            return "It was deleted already.", False
        await record_moderation(
            self.bot,
            job.guild_id,
            "delete",
            f"<@{by}> deleted a reported image by <@{job.user_id}> (job {job.id}).",
            actor_id=by,
            target_id=job.user_id,
            channel_id=job.channel_id,
            job_id=job.id,
            prompt=job.request.prompt,
        )
        return "Deleted.", True


def _actions(job_id: str) -> discord.ui.View:
    """The buttons under a report's post: what a moderator can do about it there."""
    view = discord.ui.View(timeout=None)
    for action, label, emoji in (
        ("images", "Their images", "🖼️"),
        ("delete", "Delete image", "🗑️"),
        ("purge", f"Purge {PURGE_HOURS:g} h", "🧹"),
        ("ban", "Ban", "🚫"),
    ):
        view.add_item(
            discord.ui.Button(
                label=label,
                emoji=emoji,
                style=discord.ButtonStyle.secondary if action in ("images", "delete") else discord.ButtonStyle.danger,
                custom_id=f"bananacord:report-act:{action}:{job_id}",
            )
        )
    view.stop()  # routed by custom_id in on_action, not kept per message
    return view


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(ReportMenu(bot))
