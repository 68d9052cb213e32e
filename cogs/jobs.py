"""/jobs: a member's own images in this server, privately: what is generating now and the latest that
ended, each with a link to its message (bot/job_list.py draws it). In a busy channel a member's messages
scroll away; this finds them again.

Under the list, "Cancel N generating" stops the member's unfinished jobs that the list showed, as their
own Cancel buttons would: each cancel is written before the click is answered, then carried out (the
provider asked to stop, the job's message shown cancelled, nothing charged). The button carries the
moment the list was drawn and the newest job's row number then (ListedUpTo), so a job started after it is
never cancelled by it; it acts for whoever clicks, on their own jobs only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.errors import InvalidRequestError
from bot.job_list import ENDED_SHOWN, SEARCH_SHOWN, Request, jobs_embed, requests, search_embed
from bot.jobs import MAX_CANDIDATES
from bot.prompts import clean_prompt
from bot.store.jobs import Job
from cogs.in_time import record_in_time
from cogs.private_answers import answer_privately
from cogs.slow_answers import watched_answer

log = logging.getLogger(__name__)

CANCEL_ID = "bananacord:jobs:cancel:{at}:{rows}"
SEARCH_MAX_CHARS = 100
SEARCH_WORDS = 8  # each is one more condition on every row of the member's


@dataclass(frozen=True, slots=True)
class ListedUpTo:
    """Which jobs a list showed: those created up to ``at`` (milliseconds of the bot's clock) and recorded up to
    row ``rows`` (JobStore.newest_mark). Either alone can take a job started after the list: the clock set back
    meanwhile (NTP stepping the machine's time) makes it look older, and a `db restore` of an older copy hands
    its row numbers out again. A button drawn by a bot from before row marks carries the time alone."""

    at: int
    rows: int | None = None


class CancelListed(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:jobs:cancel:(?P<at>[0-9]{1,16})(?::(?P<rows>[0-9]{1,16}))?"),
):
    """The list's Cancel; what the list showed rides in the custom_id, so a list opened before a restart
    still works, and still spares the jobs started after it."""

    def __init__(self, listed: ListedUpTo, count: int = 0) -> None:
        label = f"Cancel {count} generating" if count else "Cancel generating"
        custom_id = (
            f"bananacord:jobs:cancel:{listed.at}"
            if listed.rows is None
            else CANCEL_ID.format(at=listed.at, rows=listed.rows)
        )
        super().__init__(
            discord.ui.Button(label=label, style=discord.ButtonStyle.danger, emoji="✖️", custom_id=custom_id)
        )
        self.listed = listed

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CancelListed:
        rows = match["rows"]
        return cls(ListedUpTo(int(match["at"]), None if rows is None else int(rows)))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog("MemberJobs")
        assert isinstance(cog, MemberJobs)
        await watched_answer(
            interaction, cog.bot.services.db, "/jobs' Cancel", cog.cancel_listed(interaction, self.listed)
        )


class MemberJobs(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelListed)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(CancelListed)

    @app_commands.command(name="jobs")
    @app_commands.guild_only()
    @app_commands.describe(search="Find your earlier images whose prompt has these words")
    async def jobs(
        self,
        interaction: discord.Interaction[Any],
        search: app_commands.Range[str, 1, SEARCH_MAX_CHARS] | None = None,
    ) -> None:
        """Your images in this server: what is generating now and the latest ones, with links to them."""
        if search is not None:
            await self._search(interaction, search)
            return
        # The mark first: a job recorded while the list is read is then spared by its Cancel, never taken.
        mark = await self.bot.services.runner.store.newest_mark()
        active, ended = await self._of(interaction)
        await answer_privately(interaction, embed=jobs_embed(active, ended), view=self._view(active, mark))

    async def _search(self, interaction: discord.Interaction[Any], search: str) -> None:
        """The member's finished requests whose prompt holds every word of ``search``: an image from last week,
        scrolled away in a busy channel, found again to keep working on."""
        words = clean_prompt(search).split()[:SEARCH_WORDS]
        if not words:
            raise InvalidRequestError("`search` needs a word to look for in your prompts.")
        # Enough rows for SEARCH_SHOWN requests even if every one was a full batch (its candidates share a prompt).
        found = await self.bot.services.runner.store.matching(
            interaction.guild_id or 0, interaction.user.id, words, limit=SEARCH_SHOWN * MAX_CANDIDATES
        )
        await answer_privately(interaction, embed=search_embed(" ".join(words), found))

    async def _of(self, interaction: discord.Interaction[Any]) -> tuple[list[Job], list[Job]]:
        """The member's unfinished jobs, and the finished ones the list shows: the latest, and every ended
        candidate of the batches it lists (bot/job_list.py groups them)."""
        store = self.bot.services.runner.store
        # Enough finished rows for ENDED_SHOWN requests even if every one was a full batch.
        active, ended = await store.of_member(
            interaction.guild_id or 0, interaction.user.id, ended=ENDED_SHOWN * MAX_CANDIDATES
        )
        return active, await self._whole_batches(active, ended)

    async def _whole_batches(self, active: list[Job], ended: list[Job]) -> list[Job]:
        """``ended`` with every ended candidate of the batches the list shows, read by their batch: a running
        batch's, and a finished one's among the latest. From the latest finished rows alone, a batch started
        before the member's twenty other images had its ended candidates pushed out, and a running "1 of 4
        ready" was listed as "Generating"; a finished batch at the rows' end was cut short the same way."""
        store = self.bot.services.runner.store
        running = list(dict.fromkeys(job.batch_id for job in active if job.batch_id is not None))
        latest = [r.first.batch_id for r in requests(j for j in ended if j.batch_id not in running)[:ENDED_SHOWN]]
        batches = [*running, *(b for b in latest if b is not None)]
        if not batches:
            return ended
        unfinished = {job.id for job in active}
        read = {
            batch_id: [job for job in await store.batch(batch_id) if job.terminal and job.id not in unfinished]
            for batch_id in batches
        }
        # In the order the store read them (newest first), each batch whole where its first row was.
        whole: list[Job] = []
        placed: set[str] = set()  # batches added whole already: their other rows are in them
        for job in ended:
            if job.batch_id is None or job.batch_id not in read:
                whole.append(job)
            elif job.batch_id not in placed:
                placed.add(job.batch_id)
                whole += read[job.batch_id]
        for batch_id, rest in read.items():  # a running batch none of whose ended candidates was among the rows
            if batch_id not in placed:
                whole += rest
        return whole

    def _view(self, active: list[Job], mark: int) -> discord.ui.View:
        """The Cancel button when something can still be cancelled (an empty view shows no buttons)."""
        view = discord.ui.View(timeout=None)
        count = sum(1 for request in requests(active) if request.cancellable)
        if count:
            view.add_item(CancelListed(ListedUpTo(int(self.bot.clock() * 1000) + 1, mark), count))
        return view

    async def _shown(self, active: list[Job], listed: ListedUpTo) -> list[Request]:
        """The requests in ``active`` that the list showed and a Cancel can still stop."""
        cancellable = [r for r in requests(active) if r.cancellable and r.first.created_at * 1000 <= listed.at]
        if listed.rows is None:
            return cancellable
        recorded = await self.bot.services.runner.store.recorded_by([r.first.id for r in cancellable], listed.rows)
        return [r for r in cancellable if r.first.id in recorded]

    async def cancel_listed(self, interaction: discord.Interaction[Any], listed: ListedUpTo) -> None:
        runner = self.bot.services.runner
        active, _ = await self._of(interaction)
        chosen = await self._shown(active, listed)

        async def write() -> list[Job]:
            taken: list[Job] = []
            for request in chosen:
                # As the job message's own Cancel does (cogs/imagine.py): kept before the click is answered,
                # a batch's candidates written together so its message is drawn cancelled in one edit.
                written = await runner.cancels.request_batch(
                    [job.id for job in request.cancellable],
                    batch_id=request.first.batch_id,
                    by_user=interaction.user.id,
                )
                taken += [j for j in written if j is not None and not j.terminal and j.cancel_requested is not None]
            return taken

        # Past Discord's window, with the database held up, the member reads that it is busy; cancels
        # written after that are carried out all the same (each job's next step finds its own), as asked.
        taken = await record_in_time(interaction, self.bot.services.db, write)
        cancelled = len({job.batch_id or job.id for job in taken})
        if cancelled:
            many = cancelled != 1
            note = (
                f"✖️ Cancelling {cancelled} request{'s' if many else ''}: "
                f"you will not be charged for {'them' if many else 'it'}."
            )
        else:
            note = "Nothing left to cancel: what the list showed has finished or is already on its way."
        mark = await runner.store.newest_mark()
        active, ended = await self._of(interaction)
        try:
            await interaction.response.edit_message(
                embed=jobs_embed(active, ended, note=note),
                view=self._view(active, mark),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            # The cancels are written and will be carried out; the member asked for them.
            log.warning("/jobs: a Cancel's answer failed (HTTP %s, code %s); going on", exc.status, exc.code)
        for job in taken:
            await runner.cancel(job.id, by_user=interaction.user.id)


async def setup(bot: Bananacord) -> None:
    await bot.add_cog(MemberJobs(bot))
