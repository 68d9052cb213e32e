"""A slow request pings its member when it has ended: its image is ready, or nothing could be made.

A job's image appears by an edit of the message that showed its progress, and Discord notifies nobody of an edit: a
member who went to another channel while Nano Banana Pro worked for a minute would not know the image is there
(Midjourney's bot posts each result anew, pinging its member), nor that the request failed and could be sent again. So
a request that took at least ``[imagine] ping_after_seconds`` is followed by a short reply to its message mentioning
the member, who turns it off with ``/preferences ping:False`` (a server's admins, for everyone there, with ``/admin
defaults pings:False``, or on where the bot's configuration has it off). Once per request: a lone job's end, a batch's
first image (the others follow in the same message, bot/job_delivery.py), or a batch's last end when none of its
images came, saying why. Not for a cancel: whoever cancelled it knows. Once: the ping is owed in SQLite
(bot/store/owed_pings.py) before it is sent, after the end is written; one Discord failed (a 5xx, no answer) is tried
again after the final edits' waits, and one a stop left behind by the next start, while it is fresh
(PING_FRESH_SECONDS), as is one a stop came before the row of (the start's sweep of recent ends); its nonce, naming
the request, makes a send Discord took twice one message. It mentions the member and nobody else: the prompt is not in
it. Under it, "Stop these pings" turns them off for that member in one click (the same as ``/preferences
ping:False``): a ping is noise to whoever does not want it, and a member pinged for the first time would not know
where to look.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.config import ImagineSettings
from bot.events import ImageReady, NothingMade
from bot.models import JobState
from bot.nonces import message_nonce
from bot.render import candidate_fate, candidate_label, outcome_title, truncate
from bot.store.jobs import Job
from bot.store.owed_pings import OwedPing, OwedPings
from bot.store.settings import GuildDefaults
from cogs.errors import send_ephemeral
from cogs.slow_answers import watched_answer

log = logging.getLogger(__name__)

# How late a ping owed (Discord failed it, or the bot stopped first) may still be sent: later, the member has
# most likely seen the message by now, and Discord may no longer take its nonce as the same message's.
PING_FRESH_SECONDS = 180.0


def server_pings(defaults: GuildDefaults, imagine: ImagineSettings) -> bool:
    """Whether a server's members are pinged at all: as its admins set it (/admin defaults pings), else as the
    bot's configuration. A member may turn it off for themselves, not on where it is off."""
    return imagine.ping_when_ready if defaults.pings is None else defaults.pings


def slow_requests(imagine: ImagineSettings) -> str:
    """Which requests ping, as a member or an admin reads it."""
    after = imagine.ping_after_seconds
    return "every request" if after <= 0 else f"requests that take {after:g} s or more"


def pings_line(defaults: GuildDefaults, imagine: ImagineSettings) -> str:
    """/admin defaults' word on pings in this server."""
    whose = " (bot default)" if defaults.pings is None else ""
    if not server_pings(defaults, imagine):
        return f"off: nobody here is pinged{whose}"
    return f"on for {slow_requests(imagine)}{whose}; each member may turn it off (`/preferences ping`)"


class PingsOffButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:pings-off:(?P<user_id>[0-9]{1,20})"),
):
    """The "Stop these pings" button under a ping: the member it names turns their pings off in this server. The
    member's id rides in the custom_id, so it works after a restart, and nobody else's click changes anything."""

    def __init__(self, user_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Stop these pings",
                style=discord.ButtonStyle.secondary,
                emoji="🔕",
                custom_id=f"bananacord:pings-off:{user_id}",
            )
        )
        self.user_id = user_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PingsOffButton:
        return cls(int(match["user_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog("ReadyPings")
        assert isinstance(cog, ReadyPings)
        where = f"the pings-off button of member {self.user_id}"
        await watched_answer(interaction, cog.bot.services.db, where, cog.turn_off(interaction, self.user_id))


# Room in a ping for why nothing came (a message holds 2,000 characters; the mention and the rest take < 100).
WHY_CHARS = 1500


def nothing_made(jobs: list[Job]) -> str:
    """A ping's words for a request that brought no image: why, in the ping itself, for a member who was not
    watching; its message says so too, but that edit may be the one Discord failed."""
    reasons = list(dict.fromkeys(job.error_message or f"{outcome_title(job)}." for job in jobs))
    said = "your image could not be made" if len(jobs) == 1 else f"none of your {len(jobs)} images could be made"
    if len(reasons) == 1:
        return truncate(f"{said}. {reasons[0]}", WHY_CHARS)
    fates = "; ".join(f"{candidate_label(job)} {candidate_fate(job)}" for job in jobs)
    return truncate(f"{said}: {fates}.", WHY_CHARS)


FIRST_READY = "your first image is ready; the others follow in the same message."


def images_ready(batch: list[Job]) -> str:
    """A ping's words for a batch whose first image has come: whether the others follow, came, or will not (a
    batch's first image may come after the others failed; a swept ping comes when all may have ended)."""
    total = len(batch)
    delivered = sum(job.state is JobState.DELIVERED for job in batch)
    some = f"{delivered} of your {total} images {'is' if delivered == 1 else 'are'} ready"
    if any(not job.terminal for job in batch):
        return FIRST_READY if delivered <= 1 else f"{some}; the others follow in the same message."
    if delivered == total:
        return f"your {total} images are ready."
    fates = "; ".join(
        f"{candidate_label(job)} {candidate_fate(job)}" for job in batch if job.state is not JobState.DELIVERED
    )
    return truncate(f"{some}; {fates}.", WHY_CHARS)


def _ended_at(job: Job) -> float:
    return job.finished_at if job.finished_at is not None else float("inf")


def _pings_off(user_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None).add_item(PingsOffButton(user_id))
    # Its button is a DynamicItem routed by custom_id: a stopped view is not kept in memory per ping sent.
    view.stop()
    return view


class ReadyPings(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self._owed = OwedPings(bot.services.db)
        self._resumed = False

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PingsOffButton)
        self.bot.services.sink.pings_after = self.pings_after

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(PingsOffButton)
        self.bot.services.sink.pings_after = lambda job: None

    def pings_after(self, job: Job) -> float | None:
        """After how long ``job``'s end pings its member, for its progress message to say so (None: it will not, or
        the bot cannot tell without waiting). Drawn where nothing may wait on the database, so from what the request's
        own command kept in memory (the server's defaults, the member's preferences): promised only where ``_ping``
        will find the same, and the channel lets the bot post."""
        guild_id, user_id = job.guild_id, job.user_id
        if guild_id is None or user_id is None or job.channel_id is None:
            return None
        services = self.bot.services
        defaults = services.settings_store.kept_defaults(guild_id)
        prefs = services.preferences.kept(guild_id, user_id)
        if defaults is None or prefs is None:
            return None
        if not server_pings(defaults, self.bot.settings.imagine) or prefs.ping is False:
            return None
        # A slash command needs no right to post, and works in a channel the bot cannot see (Discord sends no such
        # channel to it): promised only in one it knows it may post in, and reply in (a reply needs the history:
        # Discord's 160002).
        channel = self.bot.get_channel(job.channel_id)
        if not isinstance(channel, discord.abc.GuildChannel | discord.Thread) or channel.guild.me is None:
            return None
        perms = channel.permissions_for(channel.guild.me)
        post = perms.send_messages_in_threads if isinstance(channel, discord.Thread) else perms.send_messages
        if not (post and perms.read_message_history):
            return None
        return self.bot.settings.imagine.ping_after_seconds

    async def turn_off(self, interaction: discord.Interaction[Any], user_id: int) -> None:
        """A "Stop these pings" click: the member it names saves ``ping`` off (their other preferences kept)."""
        guild_id = interaction.guild_id
        if guild_id is None:  # a ping is only ever posted in a server's channel; a forged click is told so
            await send_ephemeral(interaction, "Pings are turned off in a server, with `/preferences ping`.")
            return
        if interaction.user.id != user_id:
            await send_ephemeral(
                interaction, "This button stops the pings of the member it is for. Yours: `/preferences ping`."
            )
            return
        store = self.bot.services.preferences
        current = await store.get(guild_id, user_id)
        if current.ping is not False:
            await store.save(guild_id, user_id, replace(current, ping=False), now=self.bot.clock())
            log.info("member %s in guild %s turned their pings off", user_id, guild_id)
        await send_ephemeral(
            interaction,
            "🔕 You will not be pinged here when a request ends. `/preferences ping:True` turns it back on.",
        )

    @commands.Cog.listener()
    async def on_image_ready(self, event: ImageReady) -> None:
        job = event.job
        if job.batch_id is None:
            await self._ping(job, "your image is ready.")
            return
        if not self._slow(job):
            return  # before reading the batch: most requests are quick
        try:
            said = images_ready(await self.bot.services.runner.store.batch(job.batch_id))
        except Exception as exc:  # the database refusing a read: said as the first image's arrival
            log.warning("job %s: could not read its batch for its ping (%s)", job.id, type(exc).__name__)
            said = FIRST_READY
        await self._ping(job, said)

    @commands.Cog.listener()
    async def on_nothing_made(self, event: NothingMade) -> None:
        job = event.job
        if job.batch_id is None:
            await self._ping(job, nothing_made([job]))
            return
        if not self._slow(job):
            return  # before reading the batch: most requests are quick
        try:
            batch = await self.bot.services.runner.store.batch(job.batch_id)
        except Exception as exc:  # the database refusing a read: the end is in its message all the same
            log.warning("job %s: could not read its batch to ping its member (%s)", job.id, type(exc).__name__)
            return
        # Told once, by the end that leaves none running; a batch with an image was told by its first.
        if all(each.terminal for each in batch) and not any(each.state is JobState.DELIVERED for each in batch):
            await self._ping(job, nothing_made(batch))

    def _slow(self, job: Job) -> bool:
        """Whether ``job``'s request took long enough that its member may have gone elsewhere meanwhile: until it
        ended (a sweep's end, read back), else until now (an end as it happens)."""
        ended = job.finished_at if job.finished_at is not None else self.bot.clock()
        return ended - job.created_at >= self.bot.settings.imagine.ping_after_seconds

    async def _ping(self, job: Job, said: str) -> None:
        """A reply to ``job``'s message mentioning its member: ``said`` after the mention. Owed in SQLite before
        it is sent (``OwedPings``), so that a Discord failure or a stop meanwhile leaves it to a later try."""
        guild_id, channel_id, user_id, message_id = job.guild_id, job.channel_id, job.user_id, job.message_id
        if guild_id is None or channel_id is None or user_id is None or message_id is None:
            return  # shown in no message of a channel (the CLI's jobs)
        if not self._slow(job):
            return  # the member was most likely watching it
        ping = OwedPing(job.batch_id or job.id, guild_id, channel_id, user_id, message_id, said, self.bot.clock())
        try:
            defaults = await self.bot.services.settings_store.guild_defaults(guild_id)
            if not server_pings(defaults, self.bot.settings.imagine):
                return
            if (await self.bot.services.preferences.get(guild_id, user_id)).ping is False:
                return
            if not await self._owed.owe(ping):
                return  # this request's ping is on its way already
        except Exception as exc:  # the database refusing: the end is in its message all the same
            log.warning("job %s: its member was not pinged that it ended (%s)", job.id, type(exc).__name__)
            return
        if not await self._send(ping):
            self._try_again(ping)

    def _try_again(self, ping: OwedPing) -> None:
        """Send ``ping`` again after the final edits' waits while it is fresh; left owed when the bot stops."""
        runner = self.bot.services.runner
        if not runner.stopping:
            runner.in_background(self._retry(ping), f"ping-{ping.request_key}", resumable=True)

    async def _retry(self, ping: OwedPing) -> None:
        for wait in self.bot.settings.jobs.final_edit_retry_seconds:
            if self.bot.clock() + wait > ping.owed_at + PING_FRESH_SECONDS:
                break
            await asyncio.sleep(wait)
            if await self._send(ping):
                return
        log.info("request %s: gave up pinging its member (Discord kept failing)", ping.request_key)
        await self._paid(ping)

    async def _send(self, ping: OwedPing) -> bool:
        """Send an owed ping; True when nothing is owed any more (Discord has it, or refused it for good), False
        when Discord failed it (5xx, no answer): still owed. Its nonce names the request, so a ping Discord made
        but whose answer was lost, sent again, is the same message."""
        channel = self.bot.get_partial_messageable(ping.channel_id, guild_id=ping.guild_id)
        try:
            await channel.send(
                f"<@{ping.user_id}> {ping.said}",
                # A reply to its message, which must still be there: one deleted meanwhile (the member deleted the
                # image) is refused by Discord, and a ping that would point at nothing is not made.
                reference=discord.MessageReference(
                    message_id=ping.message_id, channel_id=ping.channel_id, fail_if_not_exists=True
                ),
                mention_author=False,
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=[discord.Object(ping.user_id)], replied_user=False
                ),
                nonce=message_nonce("ready-ping", ping.request_key),
                view=_pings_off(ping.user_id),
            )
        except discord.HTTPException as exc:
            if exc.status >= 500:
                log.info("request %s: Discord failed its ping (HTTP %s); owed", ping.request_key, exc.status)
                return False
            # No right to post here (a slash command needs none), or the channel gone: the end is in its
            # message all the same. Or that message gone: nothing to point at.
            gone = "message_reference" in str(exc.text)
            why = "its message was deleted" if gone else f"HTTP {exc.status}"
            log.info("request %s: its member was not pinged that it ended (%s)", ping.request_key, why)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("request %s: its ping got no answer (%s); owed", ping.request_key, type(exc).__name__)
            return False
        except Exception as exc:  # anything else discord.py raises: still owed, tried again while fresh
            log.warning("request %s: its ping failed (%s); owed", ping.request_key, type(exc).__name__)
            return False
        await self._paid(ping)
        return True

    async def _paid(self, ping: OwedPing) -> None:
        try:
            await self._owed.paid(ping.request_key, now=self.bot.clock())
        except Exception as exc:  # still owed: the next start finds it sent (its nonce) or too old
            log.warning("request %s: could not clear its owed ping (%s)", ping.request_key, type(exc).__name__)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """The pings the last run owed (Discord failed them, or it stopped before them): sent while fresh; then
        the ends it never owed one to (``_sweep``). Once per process (on_ready comes again after a reconnect)."""
        if self._resumed:
            return
        self._resumed = True
        try:
            owed = await self._owed.all()
        except Exception as exc:
            log.warning("could not read the pings owed (%s)", type(exc).__name__)
            return
        for ping in owed:
            # Judged as each goes: many owed in one channel wait on Discord's rate limit one after another.
            late = self.bot.clock() - ping.owed_at
            if late > PING_FRESH_SECONDS:
                log.info("request %s: its ping is %.0f s late; not sent", ping.request_key, late)
                await self._paid(ping)
            elif not await self._send(ping):
                self._try_again(ping)
        await self._sweep()

    async def _sweep(self) -> None:
        """Owe a ping to each end of the last ``PING_FRESH_SECONDS`` that has no row: the run before stopped
        between writing the end and the row owing its ping, so neither a later try nor this start knew of it.
        Judged as the end would have been (a lone job's end, a batch's first image, a batch's last end when
        none came and it was no cancel; slow, pings on), and owed as any ping is: once per request."""
        now = self.bot.clock()
        store = self.bot.services.runner.store
        try:
            await self._owed.prune(now=now)
            ended = await store.ended_since(max(now - PING_FRESH_SECONDS, await self._owed.sweep_since()))
        except Exception as exc:
            log.warning("could not read the last ends for pings never owed (%s)", type(exc).__name__)
            return
        swept: set[str] = set()
        for job in ended:
            key = job.batch_id or job.id
            if key in swept:
                continue
            swept.add(key)
            try:
                if await self._owed.known(key):
                    continue
                batch = await store.batch(job.batch_id) if job.batch_id is not None else [job]
            except Exception as exc:
                log.warning("request %s: could not read whether its ping was owed (%s)", key, type(exc).__name__)
                continue
            delivered = [each for each in batch if each.state is JobState.DELIVERED]
            if delivered:
                await self.on_image_ready(ImageReady(min(delivered, key=_ended_at)))
            elif all(each.terminal for each in batch):
                last = max(batch, key=_ended_at)
                if last.state is not JobState.CANCELLED:  # whoever cancelled it knows
                    await self.on_nothing_made(NothingMade(last))


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(ReadyPings(bot))
