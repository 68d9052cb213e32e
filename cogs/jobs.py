"""/jobs: a member's own images in this server, privately: what is generating now and the latest that
ended, each with a link to its message (bot/job_list.py draws it). In a busy channel a member's messages
scroll away; this finds them again. Earlier turns the list's page back, five requests at a time, by the
creation time of the oldest the page shows (in its custom_id); Latest draws the first page again.

Under the list, "Cancel N generating" stops the member's unfinished jobs that the list showed, as their
own Cancel buttons would: each cancel is written before the click is answered, then carried out (the
provider asked to stop, the job's message shown cancelled, nothing charged). The button carries the
moment the list was drawn and the newest job's row number then (ListedUpTo), so a job started after it is
never cancelled by it; it acts for whoever clicks, on their own jobs only.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.errors import InvalidRequestError
from bot.job_list import (
    ENDED_SHOWN,
    SEARCH_MAX_CHARS,
    SEARCH_SHOWN,
    STARRED_SHOWN,
    Request,
    earlier_embed,
    jobs_embed,
    latest_finished,
    message_link,
    requests,
    search_embed,
    starred_embed,
)
from bot.jobs import MAX_CANDIDATES
from bot.prompts import clean_prompt
from bot.store.jobs import Job
from bot.store.starred import Starred
from cogs.in_time import record_in_time
from cogs.moderation import REFUSED, is_moderator
from cogs.private_answers import answer_privately
from cogs.slow_answers import watched_answer

log = logging.getLogger(__name__)

CANCEL_ID = "bananacord:jobs:cancel:{at}:{rows}"
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


class EarlierListed(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:jobs:earlier:(?P<before>[0-9]{1,16})(?::(?P<member>[0-9]{1,20}))?"),
):
    """The list's next page: the member's finished requests made before ``before`` (milliseconds), the oldest one
    the page showed; in the custom_id, so a list opened before a restart still turns its page. ``member``: whose,
    in a moderator's list of another member's (``/mod images``); none, the presser's own."""

    def __init__(self, before: int, member: int | None = None) -> None:
        custom_id = f"bananacord:jobs:earlier:{before}" + (f":{member}" if member is not None else "")
        super().__init__(discord.ui.Button(label="Earlier", emoji="◀️", custom_id=custom_id))
        self.before = before
        self.member = member

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> EarlierListed:
        return cls(int(match["before"]), int(match["member"]) if match["member"] else None)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog("MemberJobs")
        assert isinstance(cog, MemberJobs)
        whose = cog.whose(interaction, self.member)
        await watched_answer(
            interaction, cog.bot.services.db, "/jobs' Earlier", cog.earlier(interaction, self.before, whose)
        )


class LatestListed(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:jobs:latest(?::(?P<member>[0-9]{1,20}))?"),
):
    """Back from an earlier page to the list as /jobs (or ``/mod images``, for ``member``) draws it."""

    def __init__(self, member: int | None = None) -> None:
        custom_id = "bananacord:jobs:latest" + (f":{member}" if member is not None else "")
        super().__init__(discord.ui.Button(label="Latest", emoji="⏩", custom_id=custom_id))
        self.member = member

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> LatestListed:
        return cls(int(match["member"]) if match["member"] else None)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog("MemberJobs")
        assert isinstance(cog, MemberJobs)
        whose = cog.whose(interaction, self.member)
        await watched_answer(interaction, cog.bot.services.db, "/jobs' Latest", cog.latest(interaction, whose))


@dataclass(frozen=True, slots=True)
class Whose:
    """Whose images a list shows: the presser's own (``of`` None), or, for a moderator, another member's (named)."""

    user_id: int
    of: str | None = None


class MemberJobs(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelListed, EarlierListed, LatestListed)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(CancelListed, EarlierListed, LatestListed)

    @app_commands.command(name="jobs")
    @app_commands.guild_only()
    @app_commands.describe(
        search="Find your earlier images whose prompt has these words",
        starred="The images you starred with a ⭐ reaction (yours or anyone's)",
    )
    async def jobs(
        self,
        interaction: discord.Interaction[Any],
        search: app_commands.Range[str, 1, SEARCH_MAX_CHARS] | None = None,
        starred: bool = False,
    ) -> None:
        """Your images in this server: what is generating now and the latest ones, with links to them."""
        if search is not None and starred:
            raise InvalidRequestError("Ask for your starred images or search yours, one at a time.")
        if search is not None:
            await self._search(interaction, search)
            return
        if starred:
            await self._starred(interaction)
            return
        # The mark first: a job recorded while the list is read is then spared by its Cancel, never taken.
        mark = await self.bot.services.runner.store.newest_mark()
        own = Whose(interaction.user.id)
        active, ended = await self._of(interaction, own)
        view = await self._view(interaction, active, ended, mark, own)
        await answer_privately(interaction, embed=jobs_embed(active, ended, ahead=self._ahead), view=view)

    async def of_member(self, interaction: discord.Interaction[Any], member: int, search: str | None) -> None:
        """``/mod images`` (and a report post's Their images): another member's list, as /jobs shows them theirs (or
        their requests matching ``search``), for a moderator looking into a report or before a purge. Read only: no
        Cancel (a moderator cancels an image from its message, or all of a member's with ``/mod ban``)."""
        whose = Whose(member, of=f"<@{member}>")
        if search is not None:
            await self._search(interaction, search, whose)
            return
        active, ended = await self._of(interaction, whose)
        view = await self._view(interaction, active, ended, 0, whose)
        embed = jobs_embed(active, ended, ahead=self._ahead, of=whose.of)
        await answer_privately(interaction, embed=embed, view=view)

    def whose(self, interaction: discord.Interaction[Any], member: int | None) -> Whose | None:
        """Whose list a page button turns: the presser's own, or, for a moderator only, ``member``'s (None: the
        presser may not read it)."""
        if member is None or member == interaction.user.id:
            return Whose(interaction.user.id)
        if not is_moderator(interaction, self.bot.settings.moderation.moderator_role_id):
            return None
        return Whose(member, of=f"<@{member}>")

    def _ahead(self, job: Job) -> int:
        """What waits before ``job``, waiting its turn (bot/waiting_requests.py), for its line."""
        return self.bot.services.runner.waiting.ahead_of(job)

    async def latest(self, interaction: discord.Interaction[Any], whose: Whose | None) -> None:
        """Back to the list's first page, drawn afresh."""
        if whose is None:
            await answer_privately(interaction, REFUSED)
            return
        mark = await self.bot.services.runner.store.newest_mark()
        active, ended = await self._of(interaction, whose)
        view = await self._view(interaction, active, ended, mark, whose)
        await interaction.response.edit_message(
            embed=jobs_embed(active, ended, ahead=self._ahead, of=whose.of),
            view=view,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def earlier(self, interaction: discord.Interaction[Any], before: int, whose: Whose | None) -> None:
        """The member's finished requests made before ``before`` (milliseconds), a page as long as the list's
        Latest, each batch whole; with Earlier again while there are more, and Latest."""
        if whose is None:
            await answer_privately(interaction, REFUSED)
            return
        store = self.bot.services.runner.store
        guild_id, user_id = interaction.guild_id or 0, whose.user_id
        # Enough rows for a page even if every request on it was a full batch; a batch's candidates share their
        # creation time, so none is split between pages, and one cut short by the limit is read whole.
        rows = await store.finished_before(guild_id, user_id, before / 1000, limit=ENDED_SHOWN * MAX_CANDIDATES)
        shown: list[Request] = []
        for request in requests(rows):
            whole = await self._whole(request)
            if whole is not None:  # a batch still running is the first page's, under Generating
                shown.append(whole)
            if len(shown) == ENDED_SHOWN:
                break
        view = discord.ui.View(timeout=None)
        view.add_item(LatestListed(_member(whose)))
        await self._add_earlier(view, guild_id, whose, shown)
        await interaction.response.edit_message(
            embed=earlier_embed(shown, of=whose.of), view=view, allowed_mentions=discord.AllowedMentions.none()
        )

    async def _whole(self, request: Request) -> Request | None:
        """``request`` with every candidate of its batch, which the rows' limit may have cut; None while one of
        them still runs."""
        batch_id = request.first.batch_id
        if batch_id is None:
            return request
        batch = await self.bot.services.runner.store.batch(batch_id)
        if not all(job.terminal for job in batch):
            return None
        return Request(tuple(sorted(batch, key=lambda job: job.batch_index or 0)))

    async def _add_earlier(self, view: discord.ui.View, guild_id: int, whose: Whose, shown: list[Request]) -> None:
        """Earlier under a page, where the member has finished requests before the oldest it shows."""
        if not shown:
            return
        oldest = min(request.first.created_at for request in shown)
        if await self.bot.services.runner.store.finished_before(guild_id, whose.user_id, oldest, limit=1):
            view.add_item(EarlierListed(math.floor(oldest * 1000), _member(whose)))

    async def _search(self, interaction: discord.Interaction[Any], search: str, whose: Whose | None = None) -> None:
        """The member's finished requests whose prompt holds every word of ``search``: an image from last week,
        scrolled away in a busy channel, found again to keep working on."""
        words = clean_prompt(search).split()[:SEARCH_WORDS]
        if not words:
            raise InvalidRequestError("`search` needs a word to look for in the prompts.")
        # Enough rows for SEARCH_SHOWN requests even if every one was a full batch (its candidates share a prompt).
        whose = whose or Whose(interaction.user.id)
        found = await self.bot.services.runner.store.matching(
            interaction.guild_id or 0, whose.user_id, words, limit=SEARCH_SHOWN * MAX_CANDIDATES
        )
        await answer_privately(interaction, embed=search_embed(" ".join(words), found, of=whose.of))

    async def _starred(self, interaction: discord.Interaction[Any]) -> None:
        """The images the member starred (cogs/star_reaction.py), read by their ids; one whose message was deleted
        since is left out (nothing to go back to)."""
        store = self.bot.services.runner.store
        # Some to spare for those deleted since.
        starred = Starred(self.bot.services.db)
        ids = await starred.of(interaction.guild_id or 0, interaction.user.id, limit=STARRED_SHOWN * 3)
        found = [job for job in [await store.get(job_id) for job_id in ids] if job is not None and message_link(job)]
        await answer_privately(interaction, embed=starred_embed(found))

    async def _of(self, interaction: discord.Interaction[Any], whose: Whose) -> tuple[list[Job], list[Job]]:
        """The member's unfinished jobs, and the finished ones the list shows: the latest, and every ended
        candidate of the batches it lists (bot/job_list.py groups them)."""
        store = self.bot.services.runner.store
        # Enough finished rows for ENDED_SHOWN requests even if every one was a full batch.
        active, ended = await store.of_member(
            interaction.guild_id or 0, whose.user_id, ended=ENDED_SHOWN * MAX_CANDIDATES
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

    async def _view(
        self, interaction: discord.Interaction[Any], active: list[Job], ended: list[Job], mark: int, whose: Whose
    ) -> discord.ui.View:
        """The Cancel button when something of the presser's own can still be cancelled, Earlier when there are
        finished requests before those listed (an empty view shows no buttons)."""
        view = discord.ui.View(timeout=None)
        count = sum(1 for request in requests(active) if request.cancellable)
        if count and whose.of is None:
            view.add_item(CancelListed(ListedUpTo(int(self.bot.clock() * 1000) + 1, mark), count))
        await self._add_earlier(view, interaction.guild_id or 0, whose, latest_finished(active, ended))
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
        own = Whose(interaction.user.id)
        active, _ = await self._of(interaction, own)
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
        active, ended = await self._of(interaction, own)
        view = await self._view(interaction, active, ended, mark, own)
        try:
            await interaction.response.edit_message(
                embed=jobs_embed(active, ended, note=note, ahead=self._ahead),
                view=view,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            # The cancels are written and will be carried out; the member asked for them.
            log.warning("/jobs: a Cancel's answer failed (HTTP %s, code %s); going on", exc.status, exc.code)
        for job in taken:
            await runner.cancel(job.id, by_user=interaction.user.id)


def _member(whose: Whose) -> int | None:
    """The member a page button names: none for the presser's own list."""
    return whose.user_id if whose.of is not None else None


async def setup(bot: Bananacord) -> None:
    await bot.add_cog(MemberJobs(bot))
