"""The Discord sink: shows a job's progress and outcome by editing the member's message.

While the interaction token lives (15 minutes) we edit through the interaction webhook; after that, or
when Discord answers 401/50027 (Invalid Webhook Token), we edit the same message with the bot token. A
job started by a member's message (a reply to one of the bot's images) has no token at all: its message
is the bot's reply, always edited with the bot token.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, cast

import discord

from bot import render
from bot.errors import DeliveryError, MessageGoneError, UploadTooLargeError
from bot.events import RunnerEvent
from bot.images import PreparedImage
from bot.imagework import Spool
from bot.job_sink import Delivering
from bot.models import JobState
from bot.providers.base import Capabilities
from bot.store.jobs import Job

log = logging.getLogger(__name__)

INVALID_WEBHOOK_TOKEN = 50027
REQUEST_ENTITY_TOO_LARGE = 40005
# Discord's code for a request the bot's permissions in the channel do not allow (403).
MISSING_PERMISSIONS = 50013
# Discord's JSON error codes for a message that no longer exists, or whose channel does not.
UNKNOWN_MESSAGE = 10008
UNKNOWN_CHANNEL = 10003
# Edit through the bot token a little before the token's nominal expiry, not a second after it.
TOKEN_MARGIN_SECONDS = 30.0
# How many messages after a member's message are searched for the bot's reply to it (a lost answer, a
# restart's recovery; and after an interaction, for its answer once the token is dead), a page of 100 at a
# time, stopping at the reply: Discord may make the answer only on a retry seconds later, and a busy
# channel posts more than 50 messages in that time (at 50, the answer was missed and its job ended as never
# shown while the answer said "Queued..." for good).
REPLY_SEARCH_DEPTH = 1000
# An interaction's answer is looked for in its channel from this long before the interaction was made.
ANSWER_SEARCH_MARGIN = timedelta(seconds=10)
# ... and up to this long after it. Discord takes an interaction's first answer only within 3 s of it (and
# cogs/imagine.py ``start_job`` answers with the job's message itself; a retry later than that is refused),
# so that message, if Discord made it, is among the channel's messages of the first seconds after the
# interaction; a minute leaves room for Discord's clocks to disagree. Without it, a search for an answer
# Discord never made read the channel as far as REPLY_SEARCH_DEPTH: ten requests in a busy channel, per job,
# while a restart waited for them before the bot came online.
ANSWER_SEARCH_SPAN = timedelta(seconds=60)

# The buttons under a job's message in a phase ("progress", "result", "failed"); for a result, the image's width over
# height as delivered (its shape, which may not be the one asked).
ViewFactory = Callable[[Job, str, float | None], discord.ui.View | None]
# The buttons under a batch's message, from its candidates as shown.
BatchViewFactory = Callable[[Sequence[Job]], discord.ui.View | None]


@dataclass(frozen=True, slots=True)
class KeptAttachment:
    """An attachment already on a message, listed by id in an edit so Discord keeps it (an edit's
    ``attachments`` says what the message ends with). discord.py sends each listed item's ``to_dict()``
    and offers no public way to make an Attachment from an id alone."""

    id: int
    # Its alt text, changed by the edit (Discord lets an edit change an existing attachment's description since
    # June 2026); None: as it is.
    description: str | None = None

    def to_dict(self) -> dict[str, str]:
        if self.description is None:
            return {"id": str(self.id)}
        return {"id": str(self.id), "description": self.description}


class DiscordSink:
    """Implements bot.job_sink.JobSink on top of a connected discord.py client."""

    def __init__(
        self,
        client: discord.Client,
        *,
        capabilities: Callable[[Job], Capabilities | None],
        view_for: ViewFactory,
        batch_view_for: BatchViewFactory = lambda batch: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.capabilities = capabilities
        self.view_for = view_for
        self.batch_view_for = batch_view_for
        self.clock = clock
        # How long a job like this usually runs, once learned (the runner's, set when it is built).
        self.typical: Callable[[Job], tuple[float, float] | None] = lambda job: None
        # Whether the bot is stopping, so that nothing starts before it is back (the runner's, set with it).
        self.restarting: Callable[[], bool] = lambda: False
        # Until when a job whose create went unanswered waits for word of its task (None: it does not).
        self.unconfirmed: Callable[[Job], float | None] = lambda job: None
        # After how long a job's end pings its member (None: it will not; cogs/ready_pings.py sets it).
        self.pings_after: Callable[[Job], float | None] = lambda job: None
        # While a job waits its turn, what waits before it (bot/waiting_requests.py ``ahead_of``; the runner's).
        self.ahead: Callable[[Job], int] = lambda job: 0

    async def progress(self, job: Job) -> None:
        """Redraw a running job's message; MessageGoneError if it was deleted (other failures as Discord's)."""
        with _message_gone():
            await self._edit(job, **self.opening([job]), attachments=[])

    def opening(self, jobs: Sequence[Job]) -> dict[str, Any]:
        """The message a new job (or a batch's candidates) starts with: its progress embed and buttons, sent
        as the answer to the command itself, so the member sees it without a first edit."""
        lead = jobs[0]
        caps, now, typical = self.capabilities(lead), self.clock(), self.typical(lead)
        ping_after = self._ping_after(lead, typical)
        if len(jobs) == 1:
            ahead = self.ahead(lead)
            embed = render.progress_embed(lead, caps, now=now, typical=typical, ping_after=ping_after, ahead=ahead)
            view = self.view_for(lead, "progress", None)
        else:
            ahead = self.ahead(lead)
            embed = render.batch_embed(list(jobs), caps, now=now, typical=typical, ping_after=ping_after, ahead=ahead)
            view = self.batch_view_for(jobs)
        self._note_unconfirmed(embed, jobs)
        _note_waiting(embed, jobs, now)
        if self.restarting():
            render.note_restarting(embed)
        return {"embed": embed, "view": view}

    def _ping_after(self, job: Job, typical: tuple[float, float] | None) -> float | None:
        """The ping the member is promised, if any: not where such requests are known to end well before it."""
        after = self.pings_after(job)
        if after is None or (typical is not None and typical[1] < after):
            return None
        return after

    def _note_unconfirmed(self, embed: discord.Embed, jobs: Sequence[Job]) -> None:
        """Say which of ``jobs`` wait for word of a create their provider never answered, and until when."""
        waiting = [(job, until) for job in jobs if (until := self.unconfirmed(job)) is not None]
        if waiting:
            until = max(until for _, until in waiting)
            render.note_unconfirmed(embed, until, [job for job, _ in waiting] if len(jobs) > 1 else ())

    async def deliver(self, job: Job, images: list[PreparedImage]) -> None:
        """Upload ``images`` from their files (streamed by aiohttp, never read whole) and close them."""
        files: list[discord.File] = []
        try:
            _shown_somewhere([job])
            embed = render.result_embed(job, self.capabilities(job), images[0], now=self.clock())
            files = [_upload_file(img, job) for img in images]
            with _upload_errors(self.upload_limit_now(job)):
                shape = images[0].width / images[0].height if images[0].height else None
                view = self.view_for(job, "result", shape)
                await self._edit(job, embed=embed, attachments=files, view=view)
        finally:
            _close(files, images)

    async def show_batch(self, batch: Sequence[Job], delivering: Delivering | None = None) -> list[int]:
        """The batch's one message, drawn whole from its rows: the delivered candidates' images kept by
        id, ``delivering``'s uploaded in its place among them (candidate order), every candidate's state
        in the embed."""
        files: list[discord.File] = []
        images = delivering.images if delivering is not None else []
        try:
            new_id = delivering.job.id if delivering is not None else None
            shown = [replace(job, state=JobState.DELIVERED) if job.id == new_id else job for job in batch]
            placed = [job for job in shown if job.message_id is not None]
            if not placed:
                if delivering is not None:
                    _shown_somewhere([delivering.job])
                return []
            # Through the interaction's token while a candidate still holds it (a finished job's is wiped):
            # the bot token may not reach a channel the bot cannot see, where slash commands still work.
            lead = next((job for job in placed if job.interaction_token), placed[0])
            attachments: list[KeptAttachment | discord.File] = []
            kept: set[int] = set()
            for job in batch:
                if job.id == new_id:
                    files = [_upload_file(img, job) for img in images]
                    attachments.extend(files)
                elif job.state is JobState.DELIVERED:
                    attachments.extend(KeptAttachment(a) for a in job.attachment_ids)
                    kept.update(job.attachment_ids)
            now = self.clock()
            typical = self.typical(lead)
            ping_after = self._ping_after(lead, typical)
            caps, ahead = self.capabilities(lead), self.ahead(lead)
            embed = render.batch_embed(shown, caps, now=now, typical=typical, ping_after=ping_after, ahead=ahead)
            self._note_unconfirmed(embed, shown)
            _note_waiting(embed, shown, now)
            fields: dict[str, Any] = {"embed": embed, "attachments": attachments, "view": self.batch_view_for(shown)}
            if delivering is None:
                with _message_gone_is_final():
                    message = await self._edit(lead, **fields)
            else:
                with _upload_errors(self.upload_limit_now(lead)):
                    message = await self._edit(lead, **fields)
            if message is None:
                return []
            return [a.id for a in message.attachments if a.id not in kept]
        finally:
            _close(files, images)

    def upload_limit_now(self, job: Job) -> int | None:
        """The job's server's upload limit as the gateway last told it (None: the server is not known here).
        It can fall while a job runs (a boost lost), below the one its images are prepared for."""
        guild = self.client.get_guild(job.guild_id) if job.guild_id else None
        return guild.filesize_limit if guild is not None else None

    async def finished(self, job: Job) -> None:
        embed = render.failure_embed(job, self.capabilities(job), now=self.clock())
        with _message_gone_is_final():
            await self._edit(job, embed=embed, view=self.view_for(job, "failed", None), attachments=[])

    async def redraw_erased(self, jobs: Sequence[Job]) -> None:
        """The message of a request whose words were erased (bot/store/erasure.py) drawn again from its rows: its
        embed without them and its images' alt text too, its buttons as they are. ``jobs``: the one job, or every
        candidate of a batch. Raises MessageGoneError where the message was deleted, DeliveryError where it cannot
        be found; anything else Discord answers passes as it is."""
        lead = jobs[0]
        caps = self.capabilities(lead)
        # Drawn as it was when it ended: the times it shows are counted to then, not to now.
        ended = max(job.finished_at or job.updated_at for job in jobs)
        fields: dict[str, Any]
        if lead.batch_id is not None:
            embed = render.batch_embed(list(jobs), caps, now=ended)
            kept = [
                KeptAttachment(a, render.alt_text(job))
                for job in jobs
                if job.state is JobState.DELIVERED
                for a in job.attachment_ids
            ]
            fields = {"embed": embed, "attachments": kept}
        elif lead.state is not JobState.DELIVERED:
            fields = {"embed": render.failure_embed(lead, caps, now=ended)}
        else:
            # A lone image's attachments are not in its row: read from its message, with the note it shows.
            if lead.channel_id is None or lead.message_id is None:
                raise DeliveryError(detail="no message to draw again")
            channel = self.client.get_partial_messageable(lead.channel_id, guild_id=lead.guild_id)
            with _message_gone_is_final():
                message = await channel.fetch_message(lead.message_id)
            images = message.attachments
            old = message.embeds[0] if message.embeds else None
            note = next((f.value for f in old.fields if f.name == "Note"), None) if old is not None else None
            size = (images[0].width or 0, images[0].height or 0) if images else (0, 0)
            embed = render.done_embed(lead, caps, size, images[0].filename if images else "", now=ended, note=note)
            fields = {"embed": embed, "attachments": [KeptAttachment(a.id, render.alt_text(lead)) for a in images]}
        with _message_gone_is_final():
            await self._edit(lead, **fields)

    async def locate(self, job: Job) -> int | None:
        """The message this job is shown in, if Discord ever created it: the interaction's response, or for
        a job started by a member's message, the bot's reply to that message."""
        if job.source != "discord":
            return None
        if job.reply_to_message_id is not None:
            return await self._find_reply(job, job.reply_to_message_id)
        if self._token_usable(job):
            assert job.application_id is not None and job.interaction_token is not None
            webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self.client)
            try:
                message = await webhook.fetch_message("@original")  # type: ignore[arg-type]
            except (discord.NotFound, discord.Forbidden):
                return None
            except discord.HTTPException as exc:
                if exc.status != 401 and exc.code != INVALID_WEBHOOK_TOKEN:
                    raise
                log.info("job %s: interaction token rejected; looking for its message in the channel", job.id)
            else:
                # A job's message is public. A private answer is a refusal (the database was busy, and the
                # job's rows were written after it: cogs/in_time.py), never the job's.
                return None if message.flags.ephemeral else message.id
        # The token is dead (a restart more than 15 minutes after the bot died answering the command), yet
        # Discord may well have made the answer: the member is looking at "Queued" under it. Concluding
        # "no message" from the token alone ended the job uncharged and left that message at "Queued" for
        # good, its Cancel answering "already finished".
        return await self._find_answer(job)

    async def _find_answer(self, job: Job) -> int | None:
        """The interaction's response, read with the bot token: the bot's message whose interaction is the
        job's, among the channel's messages from a little before the interaction to ANSWER_SEARCH_SPAN after
        it, at most REPLY_SEARCH_DEPTH of them (a private answer, a refusal, is never in a channel's history,
        so only a public one is found)."""
        me = self.client.user
        if job.channel_id is None or job.interaction_id is None or me is None:
            return None
        channel = self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        # From the interaction's own id, Discord's clock rather than the bot's (a job's created_at is the
        # bot's): its answer is made after it. A little before, should two of Discord's clocks disagree.
        asked = discord.utils.snowflake_time(job.interaction_id)
        after = discord.Object(discord.utils.time_snowflake(asked - ANSWER_SEARCH_MARGIN))
        latest = asked + ANSWER_SEARCH_SPAN
        try:
            async for message in channel.history(limit=REPLY_SEARCH_DEPTH, after=after, oldest_first=True):
                if message.created_at > latest:
                    break  # oldest first: every message from here on is later still, so no answer to this one
                metadata = message.interaction_metadata
                if (
                    message.author.id == me.id
                    and metadata is not None
                    and metadata.id == job.interaction_id
                    and not message.flags.ephemeral
                ):
                    return message.id
        except (discord.NotFound, discord.Forbidden):
            # The channel is gone, or the bot may not read it (a slash command works where the bot cannot
            # see): nothing to find, as before this look existed.
            return None
        return None

    async def _find_reply(self, job: Job, member_message_id: int) -> int | None:
        """The bot's reply to the member's message: among the next REPLY_SEARCH_DEPTH messages of the
        channel (sent at once, it is usually among the first few)."""
        me = self.client.user
        if job.channel_id is None or me is None:
            return None
        channel = self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        after = discord.Object(member_message_id)
        try:
            async for message in channel.history(limit=REPLY_SEARCH_DEPTH, after=after, oldest_first=True):
                reference = message.reference
                if message.author.id == me.id and reference is not None and reference.message_id == member_message_id:
                    return message.id
        except (discord.NotFound, discord.Forbidden):
            return None
        return None

    def notify(self, event: RunnerEvent) -> None:
        """As a discord.py event: cogs react in ``on_<event.name>`` listeners, each in its own task."""
        self.client.dispatch(event.name, event)

    async def _edit(self, job: Job, **fields: Any) -> discord.Message | None:
        """Edit the job's message; the message as Discord now has it (None: there is none to edit)."""
        if job.source != "discord" or job.message_id is None:
            return None
        view = fields.get("view")
        if view is not None:
            # Buttons are DynamicItems routed by custom_id; a stopped view is not stored per message.
            view.stop()
        fields["allowed_mentions"] = discord.AllowedMentions.none()
        fields["content"] = None
        if self._token_usable(job):
            assert job.application_id is not None and job.interaction_token is not None
            webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self.client)
            try:
                return await webhook.edit_message(job.message_id, **fields)
            except discord.HTTPException as exc:
                if exc.status != 401 and exc.code != INVALID_WEBHOOK_TOKEN:
                    raise
                log.info("job %s: interaction token rejected; editing with the bot token", job.id)
                _rewind_files(fields)
        if job.channel_id is None:
            raise DeliveryError(detail="no channel id to edit through the bot token")
        channel = self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        return await channel.get_partial_message(job.message_id).edit(**fields)

    def _token_usable(self, job: Job) -> bool:
        if not job.interaction_token or job.application_id is None:
            return False
        expires = job.token_expires_at
        return expires is None or self.clock() < expires - TOKEN_MARGIN_SECONDS


def waiting_out(job: Job, now: float) -> float | None:
    """Until when ``job`` waits out its provider's request to be left alone (None: it does not): a queued job
    whose create was refused with a long wait, and put back until then (bot/job_submit.py ``_wait_out``,
    which writes why in ``error_message``, cleared as the create leaves again)."""
    if job.state is not JobState.QUEUED or job.submit_started_at is not None or job.error_message is None:
        return None
    until = job.next_poll_at
    return until if until is not None and until > now else None


def _note_waiting(embed: discord.Embed, jobs: Sequence[Job], now: float) -> None:
    """Say which of ``jobs`` wait out their provider's request, why, and when the bot sends them again: the
    member would otherwise read "Queued" for half a minute or more with nothing moving."""
    waiting = [(job, until) for job in jobs if (until := waiting_out(job, now)) is not None]
    if not waiting:
        return
    which = "this request"
    if len(jobs) > 1:
        labels = [render.candidate_label(job) for job, _ in waiting]
        which = "the request for " + (", ".join(labels[:-1]) + " and " + labels[-1] if len(labels) > 1 else labels[0])
    reason = waiting[0][0].error_message
    until = max(until for _, until in waiting)
    value = f"{reason} The bot sends {which} again <t:{int(until)}:R>. You are charged only for images you get."
    embed.add_field(name="Waiting", value=render.truncate(value, 1024), inline=False)


def _upload_file(image: PreparedImage, job: Job) -> discord.File:
    """``image`` as ``job``'s attachment, described by its alt text (``render.alt_text``)."""
    return as_upload(image, render.alt_text(job))


def as_upload(image: PreparedImage, description: str | None) -> discord.File:
    """``image`` as a file to upload, read from its start, with ``description`` as its alt text."""
    # discord.File remembers the position it is given and goes back to it before every retry
    # (File.reset; _rewind_files below does the same before the bot-token edit).
    source = image.file.upload_source() if isinstance(image.file, Spool) else image.file
    source.seek(0)
    # discord.py accepts any seekable, readable io.IOBase (it checks isinstance at run time); its
    # annotation says BufferedIOBase.
    return discord.File(cast(io.BufferedIOBase, source), filename=image.filename, description=description)


def _is_gone(exc: discord.HTTPException) -> bool:
    """Discord says the message is no more: deleted by its member or a moderator, or with its channel."""
    return exc.status == 404 and exc.code in (UNKNOWN_MESSAGE, UNKNOWN_CHANNEL)


@contextlib.contextmanager
def _message_gone() -> Iterator[None]:
    """A deleted message as MessageGoneError; any other failure passes as it is."""
    try:
        yield
    except discord.NotFound as exc:
        if _is_gone(exc):
            raise MessageGoneError(detail=f"the message is gone: HTTP 404 code {exc.code}") from None
        raise


@contextlib.contextmanager
def _message_gone_is_final() -> Iterator[None]:
    """A 404 for the message as a DeliveryError no retry can mend (MessageGoneError if it was deleted)."""
    try:
        with _message_gone():
            yield
    except discord.NotFound as exc:
        raise DeliveryError(detail=f"no such message: HTTP 404 code {exc.code}") from None


def _shown_somewhere(jobs: Sequence[Job]) -> None:
    """Raise MessageGoneError for a member's job that has no message to show its image in: one the bot
    never learnt the message of (it died answering the command, and a restart did not find the message in
    time). Its image must not count as delivered, and be charged, with nobody shown it."""
    for job in jobs:
        if job.source == "discord" and job.message_id is None:
            raise MessageGoneError(detail="the job has no message: its image was never shown")


@contextlib.contextmanager
def _upload_errors(limit_now: int | None) -> Iterator[None]:
    """Discord's answer to an edit that uploads images, as the runner's DeliveryError (retryable or not);
    ``limit_now``: the server's upload limit as the bot reads it now, for an upload refused as too large."""
    try:
        yield
    except discord.HTTPException as exc:
        if _is_gone(exc):
            raise MessageGoneError(detail=f"the message is gone: HTTP 404 code {exc.code}") from None
        if exc.status == 413 or exc.code == REQUEST_ENTITY_TOO_LARGE:
            raise UploadTooLargeError(limit_now=limit_now, detail=f"upload refused: {exc.status}") from None
        if exc.code == MISSING_PERMISSIONS:
            # The channel's permissions changed while the job ran (Attach Files taken away): said as such, so
            # the member (and whoever they ask) knows what to fix, rather than "could not be delivered".
            raise DeliveryError(
                "The image was made, but the bot may not attach files in this channel any more, so it could not "
                "be shown (you were not charged). A moderator can give the bot the Attach Files permission here.",
                detail=f"upload refused: HTTP {exc.status} code {exc.code} (Missing Permissions)",
            ) from None
        retryable = exc.status >= 500 or exc.status == 429
        raise DeliveryError(detail=f"upload failed: HTTP {exc.status} code {exc.code}", retryable=retryable) from None
    except (discord.DiscordServerError, OSError) as exc:
        raise DeliveryError(detail=f"upload failed: {type(exc).__name__}", retryable=True) from None


def _close(files: list[discord.File], images: list[PreparedImage]) -> None:
    for file in files:
        file.close()  # gives the image's file its own close() back; discord.File swapped it out
    for img in images:
        img.close()  # a retry prepares the images again (bot/jobs.py)


def _rewind_files(fields: dict[str, Any]) -> None:
    """A discord.File is read once per request; rewind before sending it again."""
    for item in fields.get("attachments", []) or []:
        if isinstance(item, discord.File):
            item.reset()
