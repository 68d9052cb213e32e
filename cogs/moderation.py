"""/mod: safety tolerance per server and channel, blocked terms, bans, the log channel, all settings.

Moderators are members with Manage Messages (or Manage Server, or Administrator) across the server, from
their roles, or the configured moderator role; checked here in code, not only by Discord's command
permissions, which a channel's permission overwrite satisfies in that channel alone. Every change takes
effect for the next job and is logged. Jobs a provider's filter blocks (a runner event, bot/events.py)
are logged too, and repeated ones put the member on a cooldown (the candidates of one `/imagine count`,
one prompt, count once and are one post in the log). A ban cancels the member's images still
being made (uncharged); the bot itself, the server's owner and its admins cannot be banned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot import audit_log
from bot.app import Bananacord
from bot.catalogue import Catalogue
from bot.delivery import UNKNOWN_CHANNEL
from bot.errors import InvalidRequestError
from bot.events import JobBlocked
from bot.gate import MAX_WORD_TERM_CHARS, Term
from bot.job_list import SEARCH_MAX_CHARS, queue_heading, requests
from bot.job_list import line as request_line
from bot.models import JobState
from bot.moderation import (
    MAX_LEVEL,
    MIN_LEVEL,
    WHOLE_SERVER,
    GuildModeration,
    effective_level,
    honoured_levels,
)
from bot.nonces import message_nonce
from bot.render import literal, truncate
from bot.store.jobs import Job
from bot.store.usage import instant
from bot.wording import counted
from cogs.discord_again import TRIES_AGAIN, again_on_failure
from cogs.places import Place, level_at, place_of
from cogs.private_answers import MAX_CONTENT, answer_privately, defer_privately
from cogs.purge import ProgressNote
from cogs.purge import purge as purge_images

log = logging.getLogger(__name__)

Level = app_commands.Range[int, MIN_LEVEL, MAX_LEVEL]
# Bounds Discord holds typed text to: what the bot repeats (a ban's reason to the banned member on every
# refusal, a term in answers and the moderation log) then always fits one message.
MAX_REASON = 300
MAX_TERM = 1000  # room for a regular expression of many alternatives
TermText = app_commands.Range[str, 1, MAX_TERM]
# A term to remove may be one stored before terms were bounded: Discord's own limit for typed text.
StoredTermText = app_commands.Range[str, 1, 6000]
# How much of a term answers and the moderation log quote.
SHOWN_TERM = 200
# How much of a prompt a moderation log post quotes (the event's own words get the rest of a message).
LOG_PROMPT_CHARS = 1500
_BY_NUMBER = re.compile(r"#(\d{1,4})")
# What one page of a list (/mod blockterm list, /mod bans) holds: whole lines, under Discord's 2,000 with
# room for the page's last line ("Page 2 of 5: … and 120 more, `/mod blockterm list page:3`.").
PAGE_CHARS = 1850
# /mod queue reads at most this many of the server's unfinished images, the oldest (a page holds a few).
QUEUE_READ = 500
# The most unfinished jobs `/mod pause cancel:` reads to cancel: a server's, however many a raid queued.
CANCEL_READ = 100_000
# Batches whose one log post is kept to edit as more of their candidates are blocked: a batch's candidates
# end within its deadline, so only the latest few are ever edited.
BATCH_POSTS_KEPT = 64
Page = app_commands.Range[int, 1, 10_000]
# An embed field's value holds at most this many characters (/mod settings' channel levels).
FIELD_CHARS = 1024
# The member option of the commands about a member's images.
WHOSE_IMAGES = "Whose images (someone who has left too, by ID)"
REFUSED = (
    "You need the Manage Messages permission across the server (from a role, not one channel's), "
    "or the moderator role, for this."
)


def _shown_term(text: str) -> str:
    """A term in a code span: a backtick would end it, and a long regex is cut."""
    return truncate(text.replace("`", "'"), SHOWN_TERM)


def server_permissions(user: object) -> discord.Permissions | None:
    """What a member may do across the server, from their roles (the owner, and Administrator: everything);
    None for someone who is not a member here, or when the server's roles are not known (not cached)."""
    if not isinstance(user, discord.Member):
        return None
    guild = user.guild
    if guild.owner_id == user.id:
        return discord.Permissions.all()
    if guild.get_role(guild.id) is None:  # no @everyone: the server's roles are not in discord.py's cache
        return None
    return user.guild_permissions


def _honoured_by(catalogue: Catalogue, provider: str) -> str:
    """ "segmind: 1-6 for Nano Banana 2, 1-4 for Nano Banana Pro", or one range when every model shares it."""
    spans: dict[str, list[str]] = {}
    for model in catalogue.models():
        caps = catalogue.capabilities(provider, model)
        if caps is not None:
            levels = honoured_levels(caps)
            spans.setdefault(f"{levels.start}-{levels.stop - 1}", []).append(catalogue.display_name(model))
    if len(spans) == 1:
        return f"{provider}: {next(iter(spans))}"
    return f"{provider}: " + ", ".join(f"{span} for {' and '.join(models)}" for span, models in spans.items())


def is_moderator(interaction: discord.Interaction[Any], role_id: int | None) -> bool:
    """A moderator of the whole server: Manage Messages (or Manage Server, or Administrator) from their roles,
    or the moderator role. Not ``interaction.permissions``: those are this channel's, and a channel's
    overwrite gives Manage Messages there alone (cogs/imagine.py lets that manage a job's message in that
    channel, which the member could delete in Discord anyway; nothing server-wide)."""
    perms = server_permissions(interaction.user)
    if perms is not None and (perms.manage_messages or perms.administrator or perms.manage_guild):
        return True
    roles = getattr(interaction.user, "roles", [])
    return role_id is not None and any(role.id == role_id for role in roles)


class _ChannelAsSent(app_commands.Transformer[Any]):
    """A channel or thread option taken as Discord sends it (resolved data, not discord.py's cache): one the
    cache lacks (an archived thread, a channel the bot cannot see) failed to convert, and the moderator read
    "something went wrong". Each subclass names the kinds it offers."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    async def transform(
        self, interaction: discord.Interaction[Any], value: Any, /
    ) -> app_commands.AppCommandChannel | app_commands.AppCommandThread:
        if not isinstance(value, app_commands.AppCommandChannel | app_commands.AppCommandThread):
            raise app_commands.TransformerError(value, self.type, self)
        return value


class LevelPlace(_ChannelAsSent):
    """The places a safety level is read for (cogs/places.py, level_at): a channel members write in (text,
    announcement, a voice or stage channel's chat), a thread, or a forum or media channel, whose posts are
    threads that answer to it. Not a category: level_at never reads one."""

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        kinds = discord.ChannelType
        return [
            kinds.text,
            kinds.news,
            kinds.voice,
            kinds.stage_voice,
            kinds.forum,
            kinds.media,
            kinds.public_thread,
            kinds.private_thread,
            kinds.news_thread,
        ]


class LogPlace(_ChannelAsSent):
    """A channel the moderation log can be posted in, or a thread (a private one for the moderators is a common
    choice): the bot must be able to post there, which the test post tells."""

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        kinds = discord.ChannelType
        return [kinds.text, kinds.news, kinds.public_thread, kinds.private_thread, kinds.news_thread]


LogChannel = app_commands.Transform[app_commands.AppCommandChannel | app_commands.AppCommandThread, LogPlace]
LevelChannel = app_commands.Transform[app_commands.AppCommandChannel | app_commands.AppCommandThread, LevelPlace]


def _fitted(lines: list[str], limit: int) -> str:
    """As many whole lines as fit in ``limit`` characters, then "… and N more." for the rest (which fits too)."""
    reserve = len(f"\n… and {len(lines)} more.")
    shown: list[str] = []
    size = -1
    for index, line in enumerate(lines):
        last = index == len(lines) - 1
        if size + 1 + len(line) + (0 if last else reserve) > limit:
            shown.append(f"… and {len(lines) - index} more.")
            break
        shown.append(line)
        size += 1 + len(line)
    return "\n".join(shown)


# A message's link (Copy Message Link), its id alone, or a Discord timestamp (<t:1764547200:f>): what a moderator has
# at hand when asking what happened before something they see.
_MESSAGE_LINK = re.compile(r"https?://(?:\w+\.)?discord(?:app)?\.com/channels/(?:\d+|@me)/\d+/(\d{15,20})/?")
_SNOWFLAKE = re.compile(r"\d{15,20}")
_TIMESTAMP = re.compile(r"<t:(\d{1,12})(?::[tTdDfFR])?>")


def moment_of(text: str) -> float | None:
    """The moment a message's link or id names (when it was posted), or a Discord timestamp's; None for other text."""
    text = text.strip()
    if (link := _MESSAGE_LINK.fullmatch(text)) is not None or _SNOWFLAKE.fullmatch(text) is not None:
        return discord.utils.snowflake_time(int(link[1] if link is not None else text)).timestamp()
    if (stamp := _TIMESTAMP.fullmatch(text)) is not None:
        return float(stamp[1])
    return None


def older_than(at: float, tz: str) -> str:
    """A ``before:`` that reaches the events before one at ``at``: its second, rounded up, as wall-clock time in
    the zone /mod log reads dates in (the quota time zone), so typing it back gives that moment."""
    moment = datetime.fromtimestamp(math.ceil(at), ZoneInfo(tz)).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def _paged(lines: list[str], page: int, command: str, heading: str = "") -> str:
    """Page ``page`` of ``lines`` cut into pages of whole lines (each page as many as fit), with a last line
    saying how many follow and how to see them; the lines keep their own numbering. ``heading``: a first line
    every page starts with."""
    pages: list[list[str]] = [[heading]] if heading else [[]]
    size = len(heading)
    for line in lines:
        if len(pages[-1]) > bool(heading) and size + 1 + len(line) > PAGE_CHARS:
            pages.append([heading] if heading else [])
            size = len(heading)
        pages[-1].append(line)
        size += 1 + len(line)
    if page > len(pages):
        only = "is only 1 page" if len(pages) == 1 else f"are only {len(pages)} pages"
        return f"There {only}: `{command} page:{len(pages)}` is the last."
    text = "\n".join(pages[page - 1])
    if len(pages) > 1:
        later = sum(len(p) - bool(heading) for p in pages[page:])
        more = f": … and {later} more, `{command} page:{page + 1}`." if later else "."
        text += f"\nPage {page} of {len(pages)}{more}"
    return text


def _in_force(settings: GuildModeration, default: int) -> str:
    """The levels channels without one of their own run at now: the server's, capped by each ceiling. The
    server's level alone says nothing of it: at 6 under a normal ceiling of 4, normal channels run at 4."""
    normal = effective_level(settings, None, nsfw_channel=False, default=default)
    nsfw = effective_level(settings, None, nsfw_channel=True, default=default)
    server = settings.safety_level or default
    said = f" Channels without a level of their own run at {normal} (normal) and {nsfw} (age-restricted)."
    if normal < server:
        said += (
            f" The normal channels' ceiling ({settings.normal_ceiling}) caps the server's level ({server}):"
            f" `/mod safety set level:{server} ceiling:True` raises it."
        )
    return said


def _is_nsfw(channel: object) -> bool:
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


async def record_moderation(bot: Bananacord, guild_id: int, action: str, text: str, **audit: Any) -> None:
    """Store a moderation event and post it to the server's moderation log channel, if it has one.

    The post goes in the background, after the audit row: the answer to the member or moderator must not wait on
    it. A log channel rate-limited by a flood of blocked prompts (Discord's 429, retry_after 4 s) made their
    answers miss Discord's 3 s, and a network error there became "something went wrong" for the member."""
    await bot.services.moderation.audit(guild_id, action, summary=text, **audit)
    await post_to_log(bot, guild_id, text, audit.get("prompt"))


async def post_to_log(
    bot: Bananacord, guild_id: int, text: str, prompt: object = None, *, view: discord.ui.View | None = None
) -> bool:
    """Post ``text`` (and the ``prompt`` it concerns, quoted) to the server's moderation log channel, in the
    background, with ``view``'s buttons; whether it has one."""
    channel_id = (await bot.services.moderation.guild(guild_id)).log_channel_id
    if channel_id is None:
        return False
    body = _log_body(text, prompt)
    post = _post_to_log(bot, guild_id, channel_id, body, view=view)
    bot.services.runner.in_background(post, f"moderation-log-{guild_id}")
    return True


def _log_body(text: str, prompt: object) -> str:
    """A moderation log post: ``text``, then the prompt quoted (if any)."""
    quoted = f"\nPrompt: {literal(str(prompt), LOG_PROMPT_CHARS)}" if prompt else ""
    # Fitted to a message: a verdict quoting a 1,000-character term beside a long prompt went over Discord's
    # 2,000 and was refused (400), so a member could pad a blocked prompt to keep it out of the log.
    return truncate(text, MAX_CONTENT - len(quoted)) + quoted


async def _post_to_log(
    bot: Bananacord,
    guild_id: int,
    channel_id: int,
    body: str,
    *,
    edit: discord.Message | None = None,
    view: discord.ui.View | None = None,
) -> discord.Message | None:
    """Post ``body`` to the log channel (or ``edit``: change that post of the bot's to it), with ``view``'s buttons;
    the post, or None if Discord refused it. One Discord failed (a 503, no answer) is made again
    (cogs/discord_again.py), a post with its own nonce: made but its answer lost, it is the same post."""
    waits = bot.settings.jobs.final_edit_retry_seconds[:TRIES_AGAIN]
    nonce = message_nonce("moderation-log", f"{channel_id}:{time.time_ns()}")
    try:
        if edit is not None:
            return await again_on_failure(
                lambda: edit.edit(content=body, allowed_mentions=discord.AllowedMentions.none()),
                waits,
                what="a moderation log post's edit",
            )
        channel = bot.get_partial_messageable(channel_id)
        return await again_on_failure(
            lambda: channel.send(
                body, allowed_mentions=discord.AllowedMentions.none(), nonce=nonce, view=view or discord.utils.MISSING
            ),
            waits,
            what="a moderation log post",
        )
    except discord.NotFound as exc:
        if exc.code == UNKNOWN_CHANNEL:
            # Deleted while the bot was away (no CHANNEL_DELETE reached it): every later event warned again.
            await forget_log_channel(bot, guild_id, channel_id)
        else:
            log.warning("could not post to the moderation log channel %s: %s", channel_id, exc.status)
    except discord.HTTPException as exc:
        log.warning("could not post to the moderation log channel %s: %s", channel_id, exc.status)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.warning("could not post to the moderation log channel %s: %s", channel_id, type(exc).__name__)
    return None


@dataclass(slots=True)
class _BatchLogPost:
    """The one log post about a batch's blocked candidates, edited as more of them are blocked."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    message: discord.Message | None = None
    body: str | None = None


def _batch_block_text(job: Job, batch: list[Job]) -> str:
    """The log's words for a batch whose candidates a provider's filter blocked (as many as are blocked now)."""
    blocked = [c for c in batch if c.state is JobState.BLOCKED] or [job]
    providers = " and ".join(dict.fromkeys(c.provider for c in blocked))
    of = f"{len(blocked)} of the {len(batch)} images" if len(blocked) < len(batch) else f"all {len(batch)} images"
    ids = ", ".join(c.id for c in blocked)
    return (
        f"{providers} blocked {of} of one /imagine for <@{job.user_id}> in <#{job.channel_id}> (jobs {ids}): "
        "one prompt, counted as one block."
    )


async def forget_log_channel(bot: Bananacord, guild_id: int, channel_id: int) -> None:
    """The server's log channel was deleted: stop posting there, with a row in the audit trail saying so (`/mod
    settings` then shows no log channel, and `/mod logchannel` sets a new one)."""
    store = bot.services.moderation
    if await store.forget_log_channel(guild_id, channel_id):
        await store.audit(
            guild_id,
            "log_channel_gone",
            channel_id=channel_id,
            reason="the channel was deleted",
            summary=f"The moderation log channel <#{channel_id}> was deleted; nothing is posted until one is set.",
        )
        log.warning(
            "the moderation log channel %s of server %s was deleted; no longer posting there", channel_id, guild_id
        )


def _private(interaction: discord.Interaction[Any], text: str | None = None, **kwargs: Any) -> Any:
    return answer_privately(interaction, text, **kwargs)


@app_commands.guild_only()
@app_commands.default_permissions(manage_messages=True)
class Moderation(commands.GroupCog, group_name="mod", group_description="Moderation for the image bot"):
    safety = app_commands.Group(name="safety", description="Safety tolerance, 1 (strictest) to 6 (loosest)")
    blockterm = app_commands.Group(name="blockterm", description="Terms that block a prompt")

    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self._blocks = asyncio.Lock()
        # The log post of each batch lately blocked, by batch id (the oldest forgotten past BATCH_POSTS_KEPT).
        self._batch_posts: OrderedDict[str, _BatchLogPost] = OrderedDict()
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.guild_id is None:
            raise app_commands.CheckFailure("Moderation commands work in a server, not in DMs.")
        if not is_moderator(interaction, self.bot.settings.moderation.moderator_role_id):
            raise app_commands.CheckFailure(REFUSED)
        return True

    async def cog_load(self) -> None:
        self.bot.services.moderation.on_slow_pattern = self._report_slow_pattern

    async def cog_unload(self) -> None:
        if self.bot.services.moderation.on_slow_pattern == self._report_slow_pattern:
            self.bot.services.moderation.on_slow_pattern = None

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        await forget_log_channel(self.bot, channel.guild.id, channel.id)

    @commands.Cog.listener()
    async def on_raw_thread_delete(self, payload: discord.RawThreadDeleteEvent) -> None:
        await forget_log_channel(self.bot, payload.guild_id, payload.thread_id)

    async def _report_slow_pattern(self, guild_id: int, pattern: str | None, prompt: str | None) -> None:
        """A stored term was too slow on a prompt, (no prompt) a regex term too big to compile, so left out of the
        gate, or (no pattern) the terms together took too long on a prompt (bot/moderation.py, at most once an hour
        for each)."""
        if pattern is None:
            # The budget ran out with no term slow on its own bound: naming the first term left unrun (as this once
            # did) blamed one that never ran.
            terms = await self.bot.services.moderation.terms(guild_id)
            text = (
                "Checking a prompt against this server's blocked terms took too long, so the prompt was refused: a "
                "prompt that cannot be checked against every term is not let through. No one term was slow: the "
                f"{len(terms):,} terms together took longer than the bot allows a request. Remove terms no longer "
                "needed, or join several into one regex (`/mod blockterm list`, `/mod blockterm remove`). Told at "
                "most once an hour."
            )
        elif prompt is None:
            # Not "the prompt was refused": the server's prompts go on, unchecked against this one pattern.
            text = (
                f"The blocked pattern `{_shown_term(pattern)}` is too big to compile without stalling the bot (its "
                "counted repeats, such as {1000}, write it out too many times), so it is ignored: prompts are not "
                "checked against it. Rewrite it with smaller counts and add it again, or remove it "
                "(`/mod blockterm remove`). Told at most once an hour for each pattern."
            )
        else:
            # A word term can be too slow too (bot/gate.py: a long one stored before MAX_WORD_TERM_CHARS, on a prompt
            # made to be slow for it): named as what it is, and the advice fits it.
            terms = await self.bot.services.moderation.terms(guild_id)
            if Term(pattern, is_regex=True) in terms:
                kind, fix = "pattern", "Simplify the pattern or remove it (`/mod blockterm remove`)."
            elif len(pattern) > MAX_WORD_TERM_CHARS:
                kind, fix = "term", "Remove it (`/mod blockterm remove`) and block a shorter part of it instead."
            else:
                # A short word costs little on any prompt: nothing to shorten, it was the prompt (or a busy host).
                kind, fix = "term", "It is short, so the prompt was most likely made to be slow to check."
            text = (
                f"The blocked {kind} `{_shown_term(pattern)}` took too long to check a prompt, so the prompt was "
                f"refused: a prompt that cannot be checked against every term is not let through. {fix} Told at "
                f"most once an hour for each {kind}."
            )
        await record_moderation(self.bot, guild_id, "slow_pattern", text, reason=pattern, prompt=prompt)

    async def _log(self, interaction: discord.Interaction[Any], action: str, text: str, **audit: Any) -> None:
        await record_moderation(
            self.bot,
            interaction.guild_id or 0,
            action,
            f"<@{interaction.user.id}> {text}",
            actor_id=interaction.user.id,
            **audit,
        )

    @commands.Cog.listener()
    async def on_job_blocked(self, event: JobBlocked) -> None:
        """A provider's safety filter blocked a job: log it, and cool the member down if it keeps happening.

        The candidates of one ``/imagine count`` share one prompt, sent once: blocked together they are one
        block (bot/moderation.py ``recent_provider_blocks``) and one post in the log, edited as each is
        blocked. Counted apart, one blocked batch of three put its member on a cooldown (the default
        limit is 3), and the log read as three prompts."""
        job = event.job
        if job.guild_id is None or job.user_id is None or job.source != "discord":
            return
        mod, store, now = self.bot.settings.moderation, self.bot.services.moderation, self.bot.clock()
        audit: dict[str, Any] = {
            "target_id": job.user_id,
            "channel_id": job.channel_id,
            "job_id": job.id,
            "prompt": job.request.prompt,
            "reason": job.error_message,
        }
        # One block at a time: a batch's candidates blocked at once each read the count, and each found no
        # cooldown yet to take one.
        async with self._blocks:
            if job.batch_id is None:
                text = f"{job.provider} blocked an image for <@{job.user_id}> in <#{job.channel_id}> (job {job.id})."
                await record_moderation(self.bot, job.guild_id, "provider_block", text, **audit)
            else:
                await store.audit(job.guild_id, "provider_block", **audit)  # each candidate's row: the trail
                self._log_batch_block(job)
            since = now - mod.block_window_minutes * 60
            blocks = await store.recent_provider_blocks(job.guild_id, job.user_id, since)
            if blocks >= mod.block_limit and await store.active_ban(job.guild_id, job.user_id) is None:
                until = now + mod.cooldown_minutes * 60
                prompts = "prompt" if blocks == 1 else "prompts"
                reason = f"{blocks} {prompts} blocked by a provider within {mod.block_window_minutes:g} minutes"
                await store.ban(job.guild_id, job.user_id, reason=reason, expires_at=until, by=None, kind="cooldown")
                await record_moderation(
                    self.bot,
                    job.guild_id,
                    "cooldown",
                    f"<@{job.user_id}> is on a cooldown until <t:{int(until)}:f>: {reason}.",
                    target_id=job.user_id,
                    reason=reason,
                )

    def _log_batch_block(self, job: Job) -> None:
        """Post (in the background, as record_moderation does) the batch's one log post, or edit it to count
        this candidate too."""
        assert job.batch_id is not None and job.guild_id is not None
        post = self._batch_posts.get(job.batch_id)
        if post is None:
            post = self._batch_posts[job.batch_id] = _BatchLogPost()
            while len(self._batch_posts) > BATCH_POSTS_KEPT:
                self._batch_posts.popitem(last=False)
        self.bot.services.runner.in_background(self._show_batch_block(job, post), f"moderation-log-{job.guild_id}")

    async def _show_batch_block(self, job: Job, post: _BatchLogPost) -> None:
        assert job.batch_id is not None and job.guild_id is not None
        async with post.lock:  # in turn: the last to take it reads every candidate blocked before it
            channel_id = (await self.bot.services.moderation.guild(job.guild_id)).log_channel_id
            if channel_id is None:
                return
            batch = await self.bot.services.runner.store.batch(job.batch_id)
            body = _log_body(_batch_block_text(job, batch), job.request.prompt)
            if body == post.body:
                return
            moved = post.message is not None and post.message.channel.id != channel_id
            edit = None if moved else post.message
            sent = await _post_to_log(self.bot, job.guild_id, channel_id, body, edit=edit)
            if sent is None and edit is not None:
                # The post could not be edited (a moderator deleted it, tidying the log): a new one, or this
                # candidate and every later one of the batch were left out of the log.
                sent = await _post_to_log(self.bot, job.guild_id, channel_id, body)
            if sent is not None:
                post.message, post.body = sent, body
            else:
                post.message, post.body = None, None

    # ---- safety ----

    @safety.command(name="set")
    @app_commands.describe(
        level="1 strictest .. 6 loosest",
        channel="Set it for one channel, thread, forum or voice channel's chat instead of the whole server",
        ceiling="Set the server's ceiling for normal channels instead",
        nsfw_ceiling="Set the ceiling for age-restricted channels instead",
        clear="Go back to the default instead of setting a level",
    )
    async def safety_set(
        self,
        interaction: discord.Interaction[Any],
        level: Level | None = None,
        channel: LevelChannel | None = None,
        ceiling: bool = False,
        nsfw_ceiling: bool = False,
        clear: bool = False,
    ) -> None:
        """Set (or clear) the safety tolerance of the server, a channel, or the ceilings."""
        if clear == (level is not None):
            await _private(
                interaction,
                "Give a level, 1 (strictest) to 6 (loosest), or `clear:True` to go back to the default, not both."
                if clear
                else "Give a level, 1 (strictest) to 6 (loosest), or `clear:True` to go back to the default.",
            )
            return
        if ceiling + nsfw_ceiling + (channel is not None) > 1:
            await _private(interaction, "Set one thing at a time: a channel's level, or one of the two ceilings.")
            return
        guild_id = interaction.guild_id or 0
        store = self.bot.services.moderation
        default = self.bot.settings.moderation.default_level
        if ceiling or nsfw_ceiling:
            key = "nsfw_ceiling" if nsfw_ceiling else "normal_ceiling"
            settings = await store.update_guild(guild_id, by=interaction.user.id, **{key: level})
            what = "age-restricted channels' ceiling" if nsfw_ceiling else "normal channels' ceiling"
            now = settings.nsfw_ceiling if nsfw_ceiling else settings.normal_ceiling
            said = f"The {what} is back to the default, {now}." if clear else f"The {what} is now {level}."
            said += _in_force(settings, default)
        elif channel is not None:
            await store.set_channel_level(guild_id, channel.id, level, by=interaction.user.id)
            what = f"safety level of {channel.mention}"
            place = self._place_of(interaction, channel)
            runs = await level_at(self.bot, guild_id, place)
            settings = await store.guild(guild_id)
            kind = "age-restricted" if place.nsfw else "normal"
            cap = settings.nsfw_ceiling if place.nsfw else settings.normal_ceiling
            if level is None:  # clear
                follows = "its channel's level or the server's" if place.parent_id is not None else "the server's level"
                said = f"{channel.mention} has no level of its own now: it follows {follows}, {runs} there."
            else:
                said = f"The {what} is now {level}."
                if runs < level:
                    said += f" It runs at {runs} there, capped by the {kind} channels' ceiling ({cap})."
        else:
            settings = await store.update_guild(guild_id, by=interaction.user.id, safety_level=level)
            what = "server's safety level"
            said = f"The {what} is back to the default, {default}." if clear else f"The {what} is now {level}."
            said += _in_force(settings, default)
        done = f"cleared the {what}" if clear else f"set the {what} to {level}"
        await self._log(interaction, "setting", f"{done}.", channel_id=channel.id if channel else None)
        await _private(interaction, f"{said} It applies from the next image.")

    def _place_of(
        self,
        interaction: discord.Interaction[Any],
        channel: app_commands.AppCommandChannel | app_commands.AppCommandThread,
    ) -> Place:
        """Where a job in ``channel`` is made, as /imagine sees it (cogs/places.py), for the level it runs at."""
        guild = interaction.guild
        cached = guild.get_channel_or_thread(channel.id) if guild is not None else None
        if cached is not None:
            return place_of(cached)
        if isinstance(channel, app_commands.AppCommandThread):
            # A thread is age-restricted when its channel is (cogs/places.py).
            parent = guild.get_channel(channel.parent_id) if guild is not None else None
            return Place(channel.id, channel.parent_id, _is_nsfw(parent))
        return Place(channel.id, None, channel.is_nsfw())

    @safety.command(name="show")
    async def safety_show(self, interaction: discord.Interaction[Any]) -> None:
        """Show the safety levels in force and what each provider honours."""
        await _private(interaction, embed=await self._settings_embed(interaction))

    async def _settings_embed(self, interaction: discord.Interaction[Any]) -> discord.Embed:
        guild_id = interaction.guild_id or 0
        store = self.bot.services.moderation
        settings = await store.guild(guild_id)
        channels = await store.channel_levels(guild_id)
        default = self.bot.settings.moderation.default_level
        embed = discord.Embed(title="🍌 Moderation settings", colour=discord.Colour(0xF5C518))
        server = str(settings.safety_level or f"{default} (default)")
        normal = effective_level(settings, None, nsfw_channel=False, default=default)
        if normal < (settings.safety_level or default):
            server += f" (normal channels run at {normal}, their ceiling)"
        embed.add_field(name="Server level", value=server)
        embed.add_field(
            name="Ceilings", value=f"normal {settings.normal_ceiling} · age-restricted {settings.nsfw_ceiling}"
        )
        here = await level_at(self.bot, guild_id, place_of(interaction.channel))
        embed.add_field(name="In this channel", value=str(here))
        if channels:
            embed.add_field(
                name="Channel levels",
                value=_fitted([f"<#{c}>: {lvl}" for c, lvl in channels.items()], FIELD_CHARS),
                inline=False,
            )
        catalogue = self.bot.services.catalogue
        honours = "\n".join(_honoured_by(catalogue, p) for p in catalogue.providers)
        embed.add_field(name="Levels each provider honours", value=honours or "—", inline=False)
        terms = await store.terms(guild_id)
        embed.add_field(
            name="Blocked terms", value=f"{len(terms)} (built-in list {'on' if settings.builtin_terms else 'off'})"
        )
        bans = await store.bans(guild_id)
        embed.add_field(name="Banned or cooling down", value=str(len(bans)))
        pauses = await store.pauses(guild_id)
        if pauses:
            lines = [
                ("The whole server" if p.channel_id == WHOLE_SERVER else f"<#{p.channel_id}>")
                + (f" until <t:{int(p.until_at)}:f>" if p.until_at is not None else " until `/mod resume`")
                + f", by <@{p.paused_by}>"
                + (f": {p.reason}" if p.reason else "")
                for p in pauses
            ]
            embed.add_field(name="Paused", value=_fitted(lines, FIELD_CHARS), inline=False)
        embed.add_field(
            name="Log channel", value=f"<#{settings.log_channel_id}>" if settings.log_channel_id else "none"
        )
        return embed

    @app_commands.command(name="settings")
    async def settings_(self, interaction: discord.Interaction[Any]) -> None:
        """Everything in one view."""
        await _private(interaction, embed=await self._settings_embed(interaction))

    # ---- blocked terms ----

    @blockterm.command(name="add")
    @app_commands.describe(term="A word or phrase (whole words), or a regular expression", regex="Treat it as a regex")
    async def blockterm_add(self, interaction: discord.Interaction[Any], term: TermText, regex: bool = False) -> None:
        """Block prompts containing a term."""
        try:
            stored, added = await self.bot.services.moderation.add_term(
                interaction.guild_id or 0, Term(term, regex), by=interaction.user.id
            )
        except ValueError as exc:
            await _private(interaction, f"That term cannot be used: {exc}")
            return
        shown = _shown_term(stored.text)
        if not added:
            # "Blocked" first: a moderator typing the command again (bot/testing/soak_moderation.py) reads it done.
            await _private(interaction, f"Blocked already, as `{shown}`: nothing changed.")
            return
        await self._log(interaction, "setting", f"blocked the {'pattern' if regex else 'term'} `{shown}`.")
        kept = "" if stored.text == term else " (kept as prompts are compared: lower case, no accents or look-alikes)"
        await _private(interaction, f"Blocked `{shown}`{kept}. It applies from the next prompt.")

    @blockterm.command(name="remove")
    @app_commands.describe(term="The term (any case or spelling of a word), or its number in /mod blockterm list (#3)")
    async def blockterm_remove(self, interaction: discord.Interaction[Any], term: StoredTermText) -> None:
        """Stop blocking a term."""
        guild_id = interaction.guild_id or 0
        store = self.bot.services.moderation
        terms = await store.terms(guild_id)
        number = _BY_NUMBER.fullmatch(term.strip())
        if number and all(t.text != term for t in terms):
            # By its number in the list: a long regex need not be typed out again (the list cuts it).
            index = int(number.group(1)) - 1
            if not 0 <= index < len(terms):
                await _private(interaction, f"There is no term {term.strip()} in `/mod blockterm list`.")
                return
            term = terms[index].text
        removed = await store.remove_term(guild_id, term)
        if not removed:
            await _private(interaction, f"`{_shown_term(term)}` was not blocked.")
            return
        # Every stored spelling of a word goes (rows kept as typed before terms were normalised): named, a few.
        shown = ", ".join(f"`{_shown_term(t.text)}`" for t in removed[:5])
        if len(removed) > 5:
            shown += f" and {len(removed) - 5} more"
        await self._log(interaction, "setting", f"unblocked {shown}.")
        await _private(interaction, f"Unblocked {shown}.")

    @blockterm.command(name="list")
    @app_commands.describe(page="Which page, when there are more terms than one message holds")
    async def blockterm_list(self, interaction: discord.Interaction[Any], page: Page = 1) -> None:
        """The server's blocked terms, numbered (remove one by its number: `#3`)."""
        terms = await self.bot.services.moderation.terms(interaction.guild_id or 0)
        if not terms:
            await _private(interaction, "No blocked terms (the built-in list may apply).")
            return
        lines = [f"#{n} `{_shown_term(t.text)}`" + (" (regex)" if t.is_regex else "") for n, t in enumerate(terms, 1)]
        await _private(interaction, _paged(lines, page, "/mod blockterm list"))

    @blockterm.command(name="builtin")
    async def blockterm_builtin(self, interaction: discord.Interaction[Any], enabled: bool) -> None:
        """Turn the built-in minimal list on or off."""
        await self.bot.services.moderation.update_guild(
            interaction.guild_id or 0, by=interaction.user.id, builtin_terms=int(enabled)
        )
        await self._log(interaction, "setting", f"turned the built-in blocked terms {'on' if enabled else 'off'}.")
        await _private(interaction, f"The built-in list is {'on' if enabled else 'off'}.")

    # ---- bans ----

    @app_commands.command(name="ban")
    @app_commands.describe(
        member="Who",
        reason="Why (they will see it)",
        hours="Expire after this many hours",
        delete_images="Also delete their images of the last this many hours, as /mod purge does (up to a week)",
    )
    async def ban(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member,
        reason: app_commands.Range[str, 1, MAX_REASON] | None = None,
        hours: app_commands.Range[float, 0.01, 8760.0] | None = None,
        delete_images: app_commands.Range[float, 0.1, 168.0] | None = None,
    ) -> None:
        """Stop a member from using the bot, and cancel their images still being made."""
        await self.ban_member(interaction, member, reason, hours, delete_images)

    async def ban_member(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member,
        reason: str | None,
        hours: float | None,
        delete_images: float | None,
    ) -> bool:
        """``/mod ban``, also from its form (cogs/ban_form.py: a report's post, a member's menu), answered; whether the
        member was banned."""
        refusal = self._cannot_ban(interaction, member)
        if refusal is not None:
            await _private(interaction, refusal)
            return False
        note = ProgressNote(interaction, member.id)
        if delete_images is not None:
            await defer_privately(interaction)  # a purge takes a while (cogs/purge.py)
        guild_id = interaction.guild_id or 0
        expires = time.time() + hours * 3600 if hours else None
        await self.bot.services.moderation.ban(
            guild_id, member.id, reason=reason, expires_at=expires, by=interaction.user.id
        )
        # Before the cancels below, which are then those of their requests older than its hours (or with no message).
        purged = ""
        if delete_images is not None:
            purged = " " + await self.purge_logged(interaction, member.id, delete_images, note)
        # Written after the ban, so no new job of theirs starts meanwhile.
        cancelled, arriving = await self._cancel_jobs_of(guild_id, member.id, by=interaction.user.id)
        until = f" until <t:{int(expires)}:f>" if expires else ""
        jobs = ""
        if cancelled:
            jobs += f" Cancelled {counted(len(cancelled), 'image')} of theirs still being made (not charged)."
        if arriving:
            verb = "is" if arriving == 1 else "are"
            jobs += f" {counted(arriving, 'image')} of theirs already made {verb} still being delivered."
        await self._log(
            interaction,
            "ban",
            f"banned <@{member.id}>{until}: {reason or 'no reason given'}.{jobs}",
            target_id=member.id,
            reason=reason,
        )
        await note.answer(f"{member.mention} can no longer use the bot{until}.{jobs}{purged}")
        runner = self.bot.services.runner
        for job in cancelled:  # after the answer: each may wait on its provider (as /jobs' Cancel does)
            await runner.cancel(job.id, by_user=interaction.user.id)
        return True

    def _cannot_ban(self, interaction: discord.Interaction[Any], member: discord.Member) -> str | None:
        """Why ``member`` cannot be banned from the bot, or None: the bot itself, the server's owner, an admin
        (Manage Server or Administrator, or the bot's admin role) or a moderator (Manage Messages across the
        server, or the bot's moderator role), who could lift any ban anyway."""
        me = self.bot.user
        if me is not None and member.id == me.id:
            return "That is this bot: it cannot be banned from itself."
        guild = interaction.guild
        if guild is not None and guild.owner_id == member.id:
            return f"{member.mention} owns this server: the owner cannot be banned from the bot."
        perms = server_permissions(member)
        admin_role = self.bot.settings.admin.role_id
        if (perms is not None and (perms.administrator or perms.manage_guild)) or (
            admin_role is not None and any(role.id == admin_role for role in member.roles)
        ):
            return (
                f"{member.mention} is an admin here (Manage Server or Administrator, or the bot's admin role): "
                "admins cannot be banned from the bot."
            )
        moderator_role = self.bot.settings.moderation.moderator_role_id
        if (perms is not None and perms.manage_messages) or (
            moderator_role is not None and any(role.id == moderator_role for role in member.roles)
        ):
            # Taken, the ban was undone by its target with /mod unban a moment later: a moderator's is refused,
            # as an admin's is, naming what to take away first.
            return (
                f"{member.mention} is a moderator here (Manage Messages, or the bot's moderator role) and could lift "
                "the ban at once. Take that away first, then ban them."
            )
        return None

    async def _cancel_jobs_of(self, guild_id: int, user_id: int, *, by: int) -> tuple[list[Job], int]:
        """Write a cancel for each of the member's jobs still being made in this server (not charged, as a
        Cancel is: cogs/jobs.py), and count those whose image is already made, which are still delivered.
        Returns the jobs to cancel (runner.cancel carries each out) and that count."""
        active, _ = await self.bot.services.runner.store.of_member(guild_id, user_id, ended=0)
        return await self._cancel_these(active, by=by)

    async def _cancel_jobs_in(
        self, guild: discord.Guild | None, guild_id: int, channel_id: int, *, by: int
    ) -> tuple[list[Job], int]:
        """As ``_cancel_jobs_of``, for every member's jobs in the server (``WHOLE_SERVER``) or in a channel and its
        threads (a thread's parent as discord.py knows it)."""
        active = await self.bot.services.runner.store.unfinished_in_server(guild_id, limit=CANCEL_READ)
        parents: dict[int, int | None] = {}

        async def parent_of(place_id: int) -> int | None:
            """The channel a thread hangs from (None for a channel): from discord.py's cache, else asked of Discord
            once per place (a thread made while the bot was away, an archived one, is in no cache)."""
            if place_id not in parents:
                place = guild.get_channel_or_thread(place_id) if guild is not None else None
                if place is None and guild is not None:
                    with contextlib.suppress(discord.HTTPException):
                        place = await guild.fetch_channel(place_id)
                parents[place_id] = place.parent_id if isinstance(place, discord.Thread) else None
            return parents[place_id]

        here = [
            job
            for job in active
            if channel_id in (WHOLE_SERVER, job.channel_id)
            or (job.channel_id is not None and await parent_of(job.channel_id) == channel_id)
        ]
        return await self._cancel_these(here, by=by)

    async def _cancel_these(self, active: list[Job], *, by: int) -> tuple[list[Job], int]:
        runner = self.bot.services.runner
        taken: list[Job] = []
        for request in requests(active):
            if not request.cancellable:
                continue
            # A batch's candidates written together, so its message is drawn cancelled in one edit.
            written = await runner.cancels.request_batch(
                [job.id for job in request.cancellable], batch_id=request.first.batch_id, by_user=by
            )
            taken += [j for j in written if j is not None and not j.terminal and j.cancel_requested is not None]
        ids = {job.id for job in taken}
        arriving = sum(1 for job in active if job.id not in ids and job.state is JobState.SUCCEEDED)
        return taken, arriving

    @app_commands.command(name="unban")
    async def unban(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        """Let a member use the bot again (also ends a cooldown)."""
        removed = await self.bot.services.moderation.unban(interaction.guild_id or 0, member.id)
        if removed:
            await self._log(interaction, "unban", f"unbanned <@{member.id}>.", target_id=member.id)
        await _private(interaction, f"{member.mention} may use the bot again." if removed else "They were not banned.")

    @app_commands.command(name="bans")
    @app_commands.describe(page="Which page, when there are more than one message holds")
    async def bans(self, interaction: discord.Interaction[Any], page: Page = 1) -> None:
        """Who is banned or cooling down."""
        rows = await self.bot.services.moderation.bans(interaction.guild_id or 0)
        if not rows:
            await _private(interaction, "Nobody is banned.")
            return
        lines = [
            f"<@{b.user_id}> ({b.kind})"
            + (f" until <t:{int(b.expires_at)}:f>" if b.expires_at else "")
            + (f": {b.reason}" if b.reason else "")
            for b in rows
        ]
        await _private(interaction, _paged(lines, page, "/mod bans"))

    @app_commands.command(name="purge")
    @app_commands.describe(
        member=WHOSE_IMAGES,
        hours="Those asked for in the last this many hours (24; up to a week)",
    )
    async def purge(
        self,
        interaction: discord.Interaction[Any],
        member: discord.User,
        hours: app_commands.Range[float, 0.1, 168.0] = 24.0,
    ) -> None:
        """Delete a member's images of the last hours from this server, and cancel those still being made."""
        await defer_privately(interaction)  # a few deletions a second: a big purge takes minutes
        note = ProgressNote(interaction, member.id)
        await note.answer(await self.purge_logged(interaction, member.id, hours, note))

    async def purge_logged(
        self, interaction: discord.Interaction[Any], user_id: int, hours: float, note: ProgressNote
    ) -> str:
        """Purge ``user_id``'s images of the last ``hours`` (cogs/purge.py), logged if it did anything; its words."""
        since, guild_id = self.bot.clock() - hours * 3600, interaction.guild_id or 0
        by = interaction.user.id
        done = await purge_images(self.bot, guild_id, user_id, since=since, by=by, progress=note.progress)
        said = done.words(user_id, hours)
        if done.messages or done.cancelled:
            await self._log(interaction, "purge", f"purged: {said[0].lower()}{said[1:]}", target_id=user_id)
        return said

    @app_commands.command(name="images")
    @app_commands.describe(
        member=WHOSE_IMAGES,
        search="Only their requests whose prompt has these words",
    )
    async def images(
        self,
        interaction: discord.Interaction[Any],
        member: discord.User,
        search: app_commands.Range[str, 1, SEARCH_MAX_CHARS] | None = None,
    ) -> None:
        """A member's images in this server, with links: what they have generating and their latest ones."""
        from cogs.jobs import MemberJobs  # not at the top: cogs/jobs.py imports this module for its moderator check

        cog = self.bot.get_cog("MemberJobs")
        assert isinstance(cog, MemberJobs)
        await cog.of_member(interaction, member.id, search)

    # ---- pauses ----

    @app_commands.command(name="pause")
    @app_commands.describe(
        channel="Only this channel (and its threads, or a forum's posts); left out: the whole server",
        hours="Go on by itself after this many hours (left out: until /mod resume)",
        reason="Why (members whose requests it refuses see it)",
        cancel="Also cancel the requests generating and waiting there now (not charged)",
    )
    async def pause(
        self,
        interaction: discord.Interaction[Any],
        channel: LevelChannel | None = None,
        hours: app_commands.Range[float, 0.01, 8760.0] | None = None,
        reason: app_commands.Range[str, 1, MAX_REASON] | None = None,
        cancel: bool = False,
    ) -> None:
        """Stop taking new image requests in the server or a channel, for a while or until resumed."""
        guild_id = interaction.guild_id or 0
        target = WHOLE_SERVER if channel is None else channel.id
        until = self.bot.clock() + hours * 3600 if hours else None
        store = self.bot.services.moderation
        await store.pause(guild_id, target, until_at=until, reason=reason, by=interaction.user.id)
        where = "in this server" if channel is None else f"in <#{target}>"
        when = f" until <t:{int(until)}:f>" if until is not None else ""
        cancelled: list[Job] = []
        if cancel:  # after the pause is written, so nothing new starts there meanwhile
            cancelled, arriving = await self._cancel_jobs_in(
                interaction.guild, guild_id, target, by=interaction.user.id
            )
            jobs = f" Cancelled {counted(len(cancelled), 'image')} being made or waiting there (not charged)."
            if arriving:
                verb = "is" if arriving == 1 else "are"
                jobs += f" {counted(arriving, 'image')} already made {verb} still being delivered."
        else:
            jobs = " Those already made go on (`/mod queue` lists them, each with its Cancel)."
        await self._log(
            interaction,
            "pause",
            f"paused image making {where}{when}: {reason or 'no reason given'}.{jobs if cancel else ''}",
            channel_id=None if channel is None else target,
            reason=reason,
        )
        resume = "`/mod resume" + ("" if channel is None else f" channel:<#{target}>") + "` lifts it."
        await _private(
            interaction,
            f"Image making is paused {where}{when}. New requests there (commands, buttons, replies, forms) are "
            f"refused, saying so.{jobs} {resume}",
        )
        runner = self.bot.services.runner
        for job in cancelled:  # after the answer: each may wait on its provider (as /mod ban's are)
            await runner.cancel(job.id, by_user=interaction.user.id)

    @app_commands.command(name="resume")
    @app_commands.describe(channel="The channel whose pause to lift; left out: the whole server's")
    async def resume(self, interaction: discord.Interaction[Any], channel: LevelChannel | None = None) -> None:
        """Take new image requests again where /mod pause stopped them."""
        guild_id = interaction.guild_id or 0
        target = WHOLE_SERVER if channel is None else channel.id
        where = "in this server" if channel is None else f"in <#{target}>"
        if not await self.bot.services.moderation.resume(guild_id, target):
            others = await self.bot.services.moderation.pauses(guild_id)
            listed = ", ".join(
                "the whole server" if p.channel_id == WHOLE_SERVER else f"<#{p.channel_id}>" for p in others
            )
            await _private(
                interaction, f"Image making was not paused {where}." + (f" Paused now: {listed}." if listed else "")
            )
            return
        await self._log(
            interaction, "resume", f"let image making go on {where}.", channel_id=None if channel is None else target
        )
        await _private(interaction, f"Image making goes on {where}: new requests are taken again.")

    @app_commands.command(name="queue")
    @app_commands.describe(page="Which page, when there are more than one message holds")
    async def queue(self, interaction: discord.Interaction[Any], page: Page = 1) -> None:
        """What the server's members have generating and waiting their turn now, oldest first."""
        guild_id = interaction.guild_id or 0
        active = await self.bot.services.runner.store.unfinished_in_server(guild_id, limit=QUEUE_READ)
        if not active:
            await _private(interaction, "Nothing is generating or waiting in this server now.")
            return
        now = requests(active)
        at_once = await self.bot.services.quotas.server_at_once(guild_id)
        waiting = self.bot.services.runner.waiting
        # Counted over all of them, not only the rows read: the heading holds for a server past QUEUE_READ too.
        generating, waiting_now = await self.bot.services.runner.store.unfinished_counts(guild_id)
        cut = QUEUE_READ if len(active) >= QUEUE_READ else None
        heading = queue_heading(generating, waiting_now, len(now), at_once, cut_at=cut)
        await _private(
            interaction,
            _paged(
                [request_line(r, whose=True, ahead=waiting.ahead_of(r.first)) for r in now], page, "/mod queue", heading
            ),
        )

    @app_commands.command(name="log")
    @app_commands.describe(
        member="Only what they did or what was done to them (someone who has left too, by ID)",
        kind="Only events of this kind",
        before="Only events before this: a date (2026-11-01), a time (2026-11-01T18:00) or a message's link",
        page="Which page, when there are more than one message holds",
    )
    @app_commands.choices(kind=[app_commands.Choice(name=kind, value=kind) for kind in audit_log.KINDS])
    async def log(
        self,
        interaction: discord.Interaction[Any],
        member: discord.User | None = None,
        kind: str | None = None,
        before: app_commands.Range[str, 1, 200] | None = None,
        page: Page = 1,
    ) -> None:
        """The audit log: blocks, bans, moderators' actions and changes to settings and quotas, newest first."""
        quotas = self.bot.settings.quotas
        until = None
        if before is not None:
            until = moment_of(before)
            if until is None:
                try:
                    until = instant(before, "before", tz=quotas.timezone, reset_hour=quotas.reset_hour)
                except ValueError as exc:
                    raise InvalidRequestError(
                        f"{exc}. `before:` also takes a message's link (Copy Message Link) or a Discord timestamp "
                        "(<t:1764547200>)."
                    ) from None
        entries = await audit_log.newest_entries(
            self.bot.services.db,
            interaction.guild_id or 0,
            member=member.id if member else None,
            kind=kind,
            before=until,
        )
        narrowed = (
            (f" by or about {member.mention}" if member else "")
            + (f" of the kind {kind}" if kind else "")
            + (f" before <t:{math.ceil(until)}:f>" if until is not None else "")
        )
        if not entries:
            # "yet" only of the whole log so far: nothing before a date stays nothing.
            await _private(interaction, f"Nothing in the audit log{narrowed}{'' if until else ' yet'}.")
            return
        newest = "all"
        if len(entries) == audit_log.NEWEST:
            # Rounded up to the second: the next list may repeat an event of this one's last second, but skips
            # none (before: keeps only events strictly earlier).
            older = older_than(entries[-1].at, quotas.timezone)
            newest = f"the newest {audit_log.NEWEST:,}; older ones: `before:{older}`"
        heading = f"Audit log{narrowed}, newest first ({newest}; times in your time zone):"
        command = (
            "/mod log"
            + (f" member:{member.name}" if member else "")
            + (f" kind:{kind}" if kind else "")
            + (f" before:{before.strip()}" if before is not None else "")
        )
        await _private(interaction, _paged([e.line() for e in entries], page, command, heading))

    @app_commands.command(name="logchannel")
    async def logchannel(self, interaction: discord.Interaction[Any], channel: LogChannel | None = None) -> None:
        """Where blocks, bans and setting changes are posted (empty: stop posting)."""
        guild_id = interaction.guild_id or 0
        store = self.bot.services.moderation
        if channel is None:
            await store.update_guild(guild_id, by=interaction.user.id, log_channel_id=None)
            await self._log(interaction, "setting", "set the log channel to none.")
            await _private(interaction, "Moderation log: off.")
            return
        # Tried before it is kept: a channel the bot may not see or post in took every post after it, each a
        # warning in the bot's log, and the moderators were never told.
        try:
            await self.bot.get_partial_messageable(channel.id, guild_id=guild_id).send(
                f"<@{interaction.user.id}> set the moderation log to this channel.",
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except (discord.HTTPException, TimeoutError, aiohttp.ClientError, OSError) as exc:
            why = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
            log.info("guild %s: the log channel %s refused a post (%s)", guild_id, channel.id, why)
            await _private(
                interaction,
                f"The bot cannot post in {channel.mention}, so nothing changed. Give it View Channel and Send "
                "Messages there, then try again.",
            )
            return
        await store.update_guild(guild_id, by=interaction.user.id, log_channel_id=channel.id)
        await store.audit(
            guild_id,
            "setting",
            actor_id=interaction.user.id,
            channel_id=channel.id,
            summary=f"<@{interaction.user.id}> set the moderation log to <#{channel.id}>.",
        )
        await _private(interaction, f"Moderation log: {channel.mention}.")


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Moderation(bot))
