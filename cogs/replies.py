"""Reply to edit: a member replies to one of the bot's images with what to change ("make it night").

The bot runs an edit with that image, and any images attached to the reply, as references, charged to
the member who replied, and answers with a reply of its own: that message shows the progress and then
the result, and can itself be replied to, so the conversation threads. The same moderation, quota,
provider choice and failover apply as for /imagine (docs/architecture.md section 1).

It needs no privileged message-content intent: Discord gives a bot the content of a message that
mentions it, and a reply pings the author of the message it answers unless the member turns the ping
off. A reply that arrives without its content (the ping turned off) gets a short private hint.

Discord does not replay messages to a bot that was not connected: replies sent while it was stopped,
or between gateway sessions, would never be answered. Once connected again it reads the recent history
of the channels where it showed images (CATCH_UP_*) and carries out the replies it missed, as if just
sent; one a job already answers (the previous run got that far) or this run has seen is not done twice,
but one whose job the previous run never showed (it died before posting its answer) is done again,
however long before that run died it was posted. Where the reading starts is kept beside the database
until it has read everything (bot/unread_mark.py), so a catch-up cut short is taken up again. A reply to
one of the bot's images deleted before the bot read it gets a private note: there is nothing to edit.

What is not an edit is left alone, with no answer: a message that is not a reply, a reply to a member
or to a message of the bot without an image (a refusal, a notice; one of an image still being made waits for
it, cogs/early_replies.py), a reply without text, and chat (a reaction such as "lol",
"nice", "W", "10/10", an emoji (the server's own too) or a GIF from Discord's picker, which posts a link,
or a reply that mentions other members). Mentioning the bot's own role is mentioning the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import discord
from discord.ext import commands

from bot import derive
from bot.app import Bananacord
from bot.config import unread_mark_path
from bot.discord_refs import refresh_references
from bot.errors import BananacordError, InvalidRequestError
from bot.models import JobState, ReferenceImage, shown_file_name
from bot.nonces import message_nonce
from bot.option_sets import unknown_name_note
from bot.preferences import model_at, passed_over_note
from bot.prompt_parameters import ignored_note, split_parameters
from bot.render import REFUSED_MARK, candidate_label, truncate
from bot.result_images import result_stem
from bot.routing import require_served
from bot.store.erasure import words_kept
from bot.store.jobs import Job, NewJob
from bot.store.refusals import storage_busy, write_can_wait
from bot.store.reply_notes import NoteInChannel, ReplyNotes
from bot.time_away import TimeAway
from bot.unread_mark import UnreadMark, earliest
from cogs.channel_notes import ChannelNotes
from cogs.early_replies import EarlyReplies
from cogs.editing import attachment_images, edit_request, image_proportion, message_images, unsupported_images
from cogs.errors import storage_answer
from cogs.link_pictures import pictured
from cogs.places import channel_to_read, level_at, place_of_message
from cogs.policy import admitted, as_member, moderate, quota_member
from cogs.private_answers import MAX_CONTENT
from cogs.prompt_choices import one_instruction
from cogs.shape_field import asked_change
from cogs.typed_links import member_option_sets, not_among, typed_links

log = logging.getLogger(__name__)

# The same private note (a refusal, the hint) goes to a member at most once in this many seconds.
NOTE_EVERY_SECONDS = 600.0
# A refusal posted in the channel (the member takes no DMs): what anyone there may read.
PUBLIC_REFUSAL = (
    "This reply was not carried out. The reason is for you only: allow direct messages from this server's "
    "members to read it, or press the image's Edit button to be told privately."
)
# A note that cannot go by DM (the member accepts none) is a reply that deletes itself after this long.
NOTE_SECONDS = 20.0
# A note Discord failed for now (5xx, 429: discord.py does not retry a 503) is tried again after these
# pauses, by DM until the last try; the DM's nonce makes one Discord made but whose answer was lost the
# same DM.
NOTE_RETRY_SECONDS = (2.0, 5.0, 10.0)
# A note whose DM Discord failed every time: the DM's latest messages looked at for it before the channel is told.
NOTES_LOOKED_AT = 10
# Room a note keeps for the line under it that links the member's reply.
NOTE_LINK_ROOM = 200
HINT = (
    "Your reply to my image reached me without its text: Discord shows me only the replies that "
    "mention me. To edit the image, reply again and leave the @ping on (Discord's default), or start "
    "your reply with @{name}."
)
GONE = (
    "The image you replied to was deleted before I could edit it, so nothing was made and nothing was "
    "charged. Reply to an image that is still there, or start again with /imagine."
)
# The bot's answer to a reply could not be posted: the member would otherwise see nothing at all.
FORBIDDEN = (
    "I could not answer your reply: I am not allowed to post in that channel, so nothing was made and you "
    "were not charged. A moderator can let me send messages there."
)
UNANSWERED = (
    "I could not answer your reply: Discord would not take my answer, so nothing was made and you were not "
    "charged. Reply again to try once more."
)
# Replies missed while the bot was away are carried out if at most this old (an edit hours later would
# surprise more than help), looked for in the channels of each server where it showed images in the
# last CATCH_UP_DAYS (the CATCH_UP_CHANNELS most recent), CATCH_UP_MESSAGES messages each (ten pages of
# history: a busy channel posts more than 100 in a few minutes away, and read oldest first, the newest
# replies, those members are waiting on, would be the ones left out). The look starts
# CATCH_UP_MARGIN_SECONDS before the bot was last seen alive: a message posted just before it died may not
# have been handled yet (events wait behind a busy loop), and one that was is skipped by its job or, for
# a refusal, by its note (bot/store/reply_notes.py).
CATCH_UP_SECONDS = 3600.0
CATCH_UP_DAYS = 7
CATCH_UP_CHANNELS = 25
CATCH_UP_MESSAGES = 1000
CATCH_UP_MARGIN_SECONDS = 10.0
# The bot's answer to a reply is posted again after a Discord server error or rate limit, a timeout or a
# dropped connection (once Discord shows none), up to this many tries, waiting 1 s, 2 s, ... between.
ANSWER_TRIES = 4
ANSWER_RETRY_SECONDS = 1.0
# A reply of only "--ar W:H" naming the shape the image has: there is nothing to do.
SAME_SHAPE = (
    "That image has that shape already. Say what should change (“make it night”), or end with another shape: "
    "`--ar 16:9`."
)
# Chat, not instructions: a reply made only of these words (or of emoji and punctuation) is left alone,
# so a member telling a friend "nice!" under an image spends nothing.
# Praise is written with words that would say nothing to the model ("it's perfect", "that's so good", "I
# love it", "looks great"): an apostrophe splits "it's" into "it" and "s", so such pieces are here too, and
# so is chat's slang ("W", "fr fr", "bruh", "mid"). No word that asks for a change (make, add, more, again,
# ...) is, nor a thing an image could be given ("goat", "skull", "hat"): "a goat" asks for one.
_REACTIONS = (
    "lol lmao lmfao rofl haha hahaha hehe xd omg wow nice cool great awesome amazing beautiful gorgeous "
    "perfect love cute wild insane based gg thanks thank thx ty yes yeah yep no nope ok okay same this "
    "you it so very really i s m that thats its is a the looks look good best one super stunning lovely "
    "incredible fantastic wonderful brilliant sweet dope fire damn wtf holy oh ooh aww bro dude man much "
    "w l bruh fr ong ngl tbh lowkey highkey deadass dead ded lit goated slay ate mid cursed cringe "
    "yikes rip lfg sheesh yo ayo yup yea ya mhm hmm huh epic sick neat legendary masterpiece banger "
    "hilarious funny pretty crazy unreal adorable wholesome true facts valid agreed ikr idk smh bet kek "
    "kekw pog poggers pogchamp lul lulw omegalul dang gosh jeez whoa woah k kk bot"
)
REACTION_WORDS = frozenset(_REACTIONS.split())
# Laughter and cheers however long they are drawn out: "hahaha", "lmaooo", "brooo", "yesss", "frfr", "ayyy".
_LAUGHTER = re.compile(
    r"(?:ha)+h?|(?:he)+h?|(?:ah)+|l+o+l+(?:o+l+)*|x+d+|w+o+w+|o+m+g+|n+i+c+e+|c+o+o+l+|y+e+s+|l+m+f*a+o+|r+o+f+l+"
    r"|b+r+u+h+|b+r+o+|o+o+f+|a+w+|a+y+|o+h+|o+o+h+|n+o+|(?:fr)+|w+|l+|h+m+|s+h+e+e+s+h+|p+o+g+|g+g+|y+o+|n+a+h+|y+a+s+"
)
# What a reply holds that is no instruction, whatever it says: a custom emoji (<:kekw:id>, animated
# <a:name:id>), an emoji's :name: that the client left as text, and a link (Discord's GIF picker posts the
# GIF's Tenor or Giphy page as the reply's text).
_NOT_WORDS = re.compile(r"<a?:\w+:\d+>|(?<![\w:]):[\w~+-]{2,32}:(?![\w:])|(?:https?://|www\.)\S+", re.IGNORECASE)
# Words, with a number kept whole with its "." "," ":" "/" ("10/10", "9.5", "16:9"): a rating is chat, a
# shape ("16:9", "16/9") or a size ("4k", "1080p", "2x", a word of its own) is not.
_WORDS = re.compile(r"\d+(?:[.,:/]\d+)*(?![^\W_])|[^\W_]+")
# A number alone ("100", "9.5"), or a score out of 5, 10 or 100 ("10/10", "4/5", "95/100"), up to one more
# than the top ("11/10", praise that goes past it). Any other "/" is a shape: "16/9" and "9/16" were read as
# ratings, and the member's reframe was left unanswered as chat.
_RATING = re.compile(r"(?P<score>\d+(?:[.,]\d+)?)(?:/(?P<top>5|10|100))?")
# A size written apart from its number ("4 K", "2 k", "1080 p"): "4k" written together is one word, no
# reaction, but apart the number passed as a rating and "k" (chat's "ok") as a reaction.
_SIZE_APART = re.compile(r"(?<![\w.,/])\d+(?:[.,]\d+)?\s+[kp](?!\w)")
# Which image of a batch's message a reply means, as the member reads it on the message ("#2"): "#2 make
# it night", "2: ...", "2) ...", "2. ...", "2 - ...", "image 2 ...". A bare "2 cats" is not a choice.
_CANDIDATE = re.compile(
    r"\s*(?:#\s*(\d+)\b|(?:image|img|pic|picture|no\.?|number)\s*#?\s*(\d+)\b|(\d+)\s*[:.)\-\u2013\u2014](?=\s|$))"
    r"[\s:.,)\-\u2013\u2014]*",
    re.IGNORECASE,
)


def is_chatter(text: str) -> bool:
    """A reaction rather than an instruction: no words at all (emoji, a GIF's link), or only a few words of
    reaction, numbers and ratings among them ("10/10", "100")."""
    kept = _NOT_WORDS.sub(" ", text.lower())
    words = _WORDS.findall(kept)
    if not words:
        return True
    if _SIZE_APART.search(kept):
        return False
    return len(words) <= 6 and all(w in REACTION_WORDS or _LAUGHTER.fullmatch(w) or _is_rating(w) for w in words)


def _is_rating(word: str) -> bool:
    """A number alone, or a score out of 5, 10 or 100 no more than one past the top (``_RATING``)."""
    match = _RATING.fullmatch(word)
    if match is None:
        return False
    top = match["top"]
    return top is None or float(match["score"].replace(",", ".")) <= int(top) + 1


def candidate_choice(text: str) -> tuple[int | None, str]:
    """The candidate number a reply starts with, if any, and the instruction after it."""
    match = _CANDIDATE.match(text)
    if match is None:
        return None, text
    number = next(group for group in match.groups() if group is not None)
    return int(number), text[match.end() :].strip()


def _own_role(message: discord.Message) -> int | None:
    """The id of the role Discord made for the bot in the reply's server (its integration's role, which the
    member list's @ menu offers beside the bot itself), if it has one."""
    role = message.guild.self_role if message.guild is not None else None
    return None if role is None else role.id


def instruction(message: discord.Message, me: discord.abc.User) -> str:
    """The reply's text without the bot's own @mention, nor its role's."""
    text = re.sub(rf"<@!?{me.id}>", " ", message.content)
    if (role := _own_role(message)) is not None:
        text = re.sub(rf"<@&{role}>", " ", text)
    return text.strip()


def addresses_others(message: discord.Message, me: discord.abc.User) -> bool:
    """The reply @mentions members (or roles, or everyone) in its text: it is talking to them. The bot's own
    role is the bot: a reply that named it was left alone as if it spoke to other members."""
    others = [uid for uid in message.raw_mentions if uid != me.id]
    roles = [rid for rid in message.raw_role_mentions if rid != _own_role(message)]
    return bool(others or roles or message.mention_everyone)


def _uploads_of(candidate: Job, message: discord.Message) -> list[discord.Attachment]:
    """The attachments of ``message`` (a batch's) that show ``candidate``'s image: those its row names, or
    those uploaded under its name (bot/result_images.py ``result_stem``), as the buttons find them
    (cogs/imagine.py ``shown_attachment``). The row names them only once it says delivered."""
    kept, stem = set(candidate.attachment_ids), result_stem(candidate.id, 1)
    return [a for a in message.attachments if a.id in kept or a.filename.rsplit(".", 1)[0] == stem]


def _shown_in(candidate: Job, message: discord.Message) -> bool:
    """Whether a batch's ``message`` shows ``candidate``'s image: delivered, or succeeded with its upload there.
    The message shows a candidate's image before its row says delivered (bot/job_delivery.py writes that once
    Discord has answered the upload): a reply "#2 ..." sent as soon as #2 showed was refused "That message has no
    image #2" (tests/e2e/test_button_pref_regressions.py)."""
    if candidate.state is JobState.DELIVERED:
        return True
    return derive.results_in_hand(candidate) and bool(_uploads_of(candidate, message))


def _worth_another_try(exc: BaseException) -> bool:
    """A failure that may pass: Discord's 5xx or 429, a timeout, a dropped connection (not a refusal)."""
    if isinstance(exc, discord.HTTPException):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, TimeoutError | aiohttp.ClientError | OSError)


def _answered(job: Job | None) -> bool:
    """A job answers the reply: it was shown to the member, or may still be (unfinished). One that ended
    without ever being shown (the bot died before posting its answer, and the restart cancelled it
    uncharged) answered nothing: the reply is carried out again."""
    return job is not None and (job.message_id is not None or not job.terminal)


class Replies(commands.Cog):
    """Edits asked for by replying to the bot's images."""

    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self.note_seconds = NOTE_SECONDS
        self.note_retries = NOTE_RETRY_SECONDS
        # (guild, member, note) -> when it was last sent; in memory: the rate of notes, not which were sent.
        self._noted: dict[tuple[int, int, str], float] = {}
        self.notes = ReplyNotes(bot.services.db)
        self.channel_notes = ChannelNotes(bot, self.notes)
        # Replies that a catch-up has not read yet begin here (None: none); kept in a file, so that a run
        # killed while catching up leaves the next one the whole stretch to read.
        self._unread = UnreadMark(unread_mark_path(bot.settings))
        # Since when the bot has been away from the gateway (None: connected); the first connection's
        # is when the previous run was last alive, or where that run's unfinished catch-up began.
        self._away = TimeAway(earliest(bot.last_alive, self._unread.read()), "replies-catch-up")
        # Replies to the bot taken up by this run, live or from history (one may come both ways): id -> when.
        self._taken: dict[int, float] = {}
        # Others reading what a catch-up reads (cogs/mention_prompts.py: mentions of the bot missed while away), each
        # given a channel's messages, oldest first, once the replies among them are dealt with.
        self.readers: list[Callable[[list[discord.Message]], Awaitable[None]]] = []
        # Replies to a message of images still being made, waiting for them (cogs/early_replies.py).
        # Its note that no image was made is about that reply's own image (no repeat of another's), and marks it 🚫 if
        # it cannot be sent, as a refusal's does.
        note = functools.partial(self._note, each_reply=True, refusal=True)
        self.early = EarlyReplies(bot, again=self._again, note=note, owe=self._owe, settle=self._settle)

    async def cog_unload(self) -> None:
        # Waited for while the database is still open (the bot closes it after the cogs): a write it had begun is
        # rolled back first. Left running, that rollback met a closed database and the task died with "no active
        # connection", logged by asyncio as never retrieved (a stop in the seconds after a start, during its catch-up).
        ended = await self._away.stop()
        if ended is not None:
            log.warning("catch-up: ended by an error as the bot stopped: %r", ended)
        self.channel_notes.close()

    @commands.Cog.listener()
    async def on_disconnect(self) -> None:
        self._away.disconnected()

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        self._away.resumed()

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        self.channel_notes.resume()  # the notes in channels an earlier run left to delete
        # A new session (a start, or a resume Discord refused): whatever was posted meanwhile is lost.
        since = self._away.new_session()
        if since is None:
            return
        self._unread.extend(since)
        self._away.read_back(self._catch_up_and_mark(since))

    async def _catch_up_and_mark(self, since: float) -> tuple[int, bool]:
        looked, read_all = await self.catch_up(since)
        if read_all and self._away.latest():
            self._unread.clear()  # every reply posted while away has been read (none queued after this)
        return looked, read_all

    async def catch_up(self, since: float) -> tuple[int, bool]:
        """Carry out the replies to the bot's images posted since ``since`` (wall clock, as message ids
        are) that it never saw, and those an earlier run took and died before answering. Returns how
        many messages it looked at, and whether it read all it meant to (False: Discord failed a read
        with an error that may pass, so the next start reads again from the same mark)."""
        now = time.time()
        start = max(since - CATCH_UP_MARGIN_SECONDS, now - CATCH_UP_SECONDS)
        after = discord.Object(id=discord.utils.time_snowflake(datetime.fromtimestamp(start, UTC)))
        oldest = discord.utils.time_snowflake(datetime.fromtimestamp(now - CATCH_UP_SECONDS, UTC))
        looked, read_all = await self._answer_left_unanswered(oldest), True
        store = self.bot.services.runner.store
        # Job rows are stamped by the bot's clock.
        shown_since = self.bot.clock() - CATCH_UP_DAYS * 86400
        for guild in list(self.bot.guilds):
            channels = await store.channels_shown_in(guild.id, since=shown_since, limit=CATCH_UP_CHANNELS)
            for channel_id in channels:
                try:
                    # A thread archived while the bot was away (quiet for an hour or a day) is not among the
                    # active threads the gateway lists at a start: asked of Discord, or its replies were skipped.
                    channel = await channel_to_read(self.bot, channel_id)
                    if channel is None:
                        continue  # gone, or no longer the bot's to see
                    read: list[discord.Message] = []
                    async for message in channel.history(after=after, limit=CATCH_UP_MESSAGES, oldest_first=True):
                        read.append(message)
                        looked += 1
                        try:
                            await self.on_message(message)
                        except Exception as exc:
                            if not write_can_wait(exc):
                                log.exception("catch-up: reply %s", message.id)
                            else:  # as for a live reply (Bananacord.on_error): nothing of it was kept
                                log.warning("catch-up: reply %s: the database refused a write (%s)", message.id, exc)
                    # Only what was posted while the bot was away: a catch-up held up (a note's retries take 17 s)
                    # reads on into messages that came live since, which the others had met (a mention offered then,
                    # or passed over for its member's turn, was offered again, as if missed: found by bench/soak.py).
                    await self._hand_on([m for m in read if m.created_at.timestamp() < now])
                    if len(read) == CATCH_UP_MESSAGES:
                        log.warning(
                            "catch-up: channel %s had more than %d messages while the bot was away; replies "
                            "posted after those were not read",
                            channel_id,
                            CATCH_UP_MESSAGES,
                        )
                except discord.HTTPException as exc:
                    log.warning("catch-up: cannot read channel %s (HTTP %s)", channel_id, exc.status)
                    read_all = read_all and not _worth_another_try(exc)
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    log.warning("catch-up: cannot read channel %s (%s)", channel_id, type(exc).__name__)
                    read_all = False
        log.info("catch-up: looked at %d message(s) posted while away", looked)
        return looked, read_all

    async def _hand_on(self, messages: list[discord.Message]) -> None:
        """Give the other readers (``readers``) a channel's messages read while catching up."""
        for reader in self.readers if messages else []:
            try:
                await reader(messages)
            except Exception as exc:
                if not write_can_wait(exc):
                    log.exception("catch-up: channel %s, read by %s", messages[0].channel.id, reader.__qualname__)
                else:
                    log.warning("catch-up: channel %s: the database refused a write (%s)", messages[0].channel.id, exc)

    async def _answer_left_unanswered(self, after: int) -> int:
        """Carry out again the replies (posted after message id ``after``) that an earlier run took and
        died before answering, wherever they are: that run may have lived on long after taking them, so
        they can be older than the stretch of history read for the time away. Returns how many it read."""
        looked = 0
        unanswered = await self.bot.services.runner.store.replies_left_unanswered(after=after)
        # And the replies whose private note an earlier run was still trying when it stopped.
        owed = await self.notes.owed(after=after)
        for channel_id, message_id in sorted(set(unanswered) | set(owed), key=lambda pair: pair[1]):
            try:
                # A thread archived since is not cached: asked of Discord (it was let go as if gone).
                channel = await channel_to_read(self.bot, channel_id)
                if channel is None:
                    await self._settle(message_id)  # a channel gone, or no longer the bot's to see
                    continue
                message = await channel.fetch_message(message_id)
            except discord.HTTPException as exc:
                # 404: the member deleted the reply; anything else: the reply stays unanswered, as before.
                log.info("catch-up: cannot read reply %s (HTTP %s)", message_id, exc.status)
                if exc.status == 404:
                    await self._settle(message_id)
                continue
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.info("catch-up: cannot read reply %s (%r)", message_id, exc)
                continue  # still unanswered or owed: the next start tries again
            looked += 1
            elsewhere = message.id in self._taken  # this run took it up already (live, or in history)
            try:
                await self.on_message(message)
            except Exception:
                log.exception("catch-up: reply %s", message.id)
                continue
            if not elsewhere and message.id not in self.early.waiting:
                # Told, given up or carried out by now; or nothing to say any more (the edit started, the
                # image is gone from the message): nothing owed either way. (Stopped meanwhile: still owed; and
                # waiting for its image, owed until it is taken up: cogs/early_replies.py.)
                await self._settle(message.id)
        return looked

    async def _again(self, message: discord.Message) -> None:
        """Take up ``message`` as if just sent: a reply that waited for its image (cogs/early_replies.py)."""
        self._taken.pop(message.id, None)
        await self.on_message(message)

    def _take(self, message: discord.Message) -> bool:
        """True the first time this run meets the reply ``message`` (live or in history), False after.
        Forgotten after a while: history reaches back CATCH_UP_SECONDS at most."""
        now = time.monotonic()
        if message.id in self._taken:
            return False
        if len(self._taken) >= 1000:
            self._taken = {mid: at for mid, at in self._taken.items() if now - at < 2 * CATCH_UP_SECONDS}
        self._taken[message.id] = now
        return True

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.guild is None or message.author.bot:
            return
        replied = await self._replied_message(message)
        if isinstance(replied, int):
            await self._replied_to_deleted_image(message, replied, me)
            return
        if replied is None or replied.author.id != me.id or not self._take(message):
            return
        try:
            # Only the bot's images are edited (not a refusal, nor a job still in progress).
            shown = message_images(replied, max_bytes=self.bot.settings.imagine.max_attachment_bytes)
            if not shown:
                # A message still saying "Generating": an edit asked of it is carried out once its image shows.
                text = instruction(message, me)
                if text and not is_chatter(text) and not addresses_others(message, me):
                    await self.early.wait(message, replied)
                return
            if _answered(await self.bot.services.runner.store.answering(message.id)):
                return  # carried out already: by an earlier run, which stopped before this one began
            if await self.notes.sent(message.id):
                return  # the member was told privately why not (a refusal, or no way to answer it here)
            text = instruction(message, me)
            if not text:
                if self._content_withheld(message, me):
                    await self._note(message, HINT.format(name=me.display_name))
                return
            if is_chatter(text) or addresses_others(message, me):
                return
            await self._start(message, replied, shown, text)
        except BananacordError as exc:
            log.info("reply %s refused: %s", message.id, exc.detail or type(exc).__name__)
            await self._note(message, exc.user_message, refusal=True)
        except Exception as exc:
            answer = storage_answer(exc)
            if answer is None:
                raise
            # Nothing was recorded, so nothing starts and nothing is charged; the member is told why. The
            # note's own record is a write too, and may be refused as well.
            log.log(
                logging.WARNING if storage_busy(exc) else logging.ERROR,
                "reply %s: the bot's storage refuses writes (%s)",
                message.id,
                exc,
            )
            with contextlib.suppress(sqlite3.Error):
                await self._note(message, answer, refusal=True)

    async def _replied_message(self, message: discord.Message) -> discord.Message | int | None:
        """The message this one replies to (not forwards), or its id if it was deleted; None if this is not
        a reply, or Discord would not show the replied message."""
        reference = message.reference
        if reference is None or reference.type is not discord.MessageReferenceType.reply:
            return None
        resolved = reference.resolved
        if isinstance(resolved, discord.DeletedReferencedMessage):
            return resolved.id
        if resolved is None and reference.message_id is not None:
            # Discord left the replied message out of the event; ask for it.
            try:
                resolved = await message.channel.fetch_message(reference.message_id)
            except discord.NotFound:
                return reference.message_id
            except discord.HTTPException:
                return None
        return resolved if isinstance(resolved, discord.Message) else None

    async def _replied_to_deleted_image(self, message: discord.Message, deleted: int, me: discord.abc.User) -> None:
        """A reply to one of the bot's images that was deleted before the bot read it (while the bot was
        away, or a moment after the reply): there is nothing to edit, so the member is told privately
        rather than left waiting. The bot knows the message was its own only by a job shown in it."""
        store = self.bot.services.runner.store
        if await store.by_message(deleted) is None or not self._take(message):
            return
        if _answered(await store.answering(message.id)):
            return  # taken up before the image went: the bot's answer says how it ended
        text = instruction(message, me)
        if not text or is_chatter(text) or addresses_others(message, me):
            return
        log.info("reply %s: the image it answers (message %s) was deleted", message.id, deleted)
        await self._note(message, GONE, each_reply=True)  # about this reply's image: not a repeat of another

    def _content_withheld(self, message: discord.Message, me: discord.abc.User) -> bool:
        """Discord sent the message without its content: the bot lacks the intent and was not mentioned."""
        return not self.bot.intents.message_content and me not in message.mentions

    async def _start(
        self, message: discord.Message, replied: discord.Message, shown: list[ReferenceImage], text: str
    ) -> Job | None:
        """Check, reserve and record the edit of the images ``shown`` in the bot's message ``replied``,
        then answer the member with the reply that shows it."""
        bot = self.bot
        guild = message.guild
        assert guild is not None
        max_bytes = bot.settings.imagine.max_attachment_bytes
        original = words_kept(await bot.services.runner.store.by_message(replied.id))
        if original is not None and original.batch_id is not None:
            chosen = await self._candidate(replied, original, shown, text)
            if chosen is None:
                return None
            original, shown, text = chosen
        defaults = await bot.services.settings_store.guild_defaults(guild.id)
        # A reply in a thread discord.py has not cached comes with a PartialMessageable: the thread is looked
        # up, so that it runs at its channel's level, not the server's (cogs/places.py place_of_message).
        place = await place_of_message(guild, message.channel)
        passed_over = None  # why a stored model was passed over, told to the member once the job has started
        if original is not None:
            model = original.request.model
        else:  # an image of the bot's that no job row names: the member's model, else the server's
            # As /imagine chooses it in this channel (bot/preferences.py model_at): one no provider honouring
            # the channel's level serves is passed over, rather than the reply refused for a model not typed.
            prefs = await bot.services.preferences.get(guild.id, message.author.id)
            level = await level_at(bot, guild.id, place)
            choice = model_at(
                bot.services.catalogue,
                prefs,
                server_default=defaults.default_model,
                configured=bot.settings.imagine.default_model,
                level=level,
            )
            model = choice.model
            passed_over = passed_over_note(bot.services.catalogue, choice, level)
        catalogue = bot.services.catalogue
        require_served(catalogue, model)
        # "make it night --ar 9:16", or "--ar 16:9" alone to reframe it: a reply has no form to pick a shape in.
        # The shape the image has: as asked, else as Discord measures it (an "auto" image that came out square).
        shapes = derive.shapes(catalogue, model)
        width_over_height = image_proportion(replied, shown[0])
        # Other images, by their links; one from another site is the reply's embed of it, Discord's copy.
        sets = await member_option_sets(bot, guild.id, message.author.id)
        linked_in = await typed_links(bot, text, guild=guild, here=place, edit=True, shown=True, option_sets=sets)
        one_instruction(linked_in.words)  # one answer, one image (cogs/prompt_choices.py)
        unknown = unknown_name_note(split_parameters(linked_in.words).words, sets)
        text, frame, ignored = asked_change(
            linked_in.words,
            None,
            offered=shapes,
            current=derive.own_shape(original.request.aspect_ratio if original else None, width_over_height, shapes),
            model_name=catalogue.display_name(model),
            nothing=SAME_SHAPE,
        )
        unsupported = unsupported_images(message.attachments)
        if unsupported:
            # The reply's own images are the member's choice: one the providers cannot take is named, not
            # dropped without a word (the image replied to keeps only those they take: cogs/editing.py).
            name, kind = unsupported[0]
            raise InvalidRequestError(
                f"`{shown_file_name(name)}` is not a supported image ({kind}). Attach PNG, JPEG or WebP images."
            )
        # A link to an image elsewhere is Discord's picture of it, which Discord may add to the reply after it came.
        pictured_in = await pictured(bot, message, linked_in.shown)
        references = shown + message_images(pictured_in, max_bytes=max_bytes)
        # A Discord image link in a reply is often shown as an embed of it too: one reference.
        references += not_among(linked_in.images, references)
        limit = derive.reference_limit(bot.services.catalogue, model)
        if len(references) > limit:
            name = bot.services.catalogue.display_name(model)
            raise InvalidRequestError(
                f"{name} takes at most {limit} reference image(s): the image you replied to and up to "
                f"{max(limit - len(shown), 0)} of your own. Your reply attached {len(references) - len(shown)}."
            )
        request = edit_request(
            original, model=model, prompt=text, references=references, frame=frame, by=message.author.id
        )
        # The earlier turns of a thread (Gemini's conversation) point at CDN links that expire in a day.
        request = await refresh_references(bot.http, request, now=bot.clock())
        request = await moderate(bot, request, guild_id=guild.id, place=place, user_id=message.author.id)
        asker = await as_member(guild, message.author)
        if asker is None:
            log.info("reply %s: its author has left the server; not carried out", message.id)
            return None
        preferred = original.provider if original else defaults.default_provider
        # As a button's: a preference the image was made with that no working provider takes now is left out,
        # where admit alone refused the reply over an option the member never typed in it.
        member = quota_member(guild.id, guild.owner_id, asker)
        request, admission = admitted(bot, request, member, preferred=preferred)
        runner = bot.services.runner
        # Held until the reply exists: a fast provider must not finish before there is a message to show it
        # in (a crash meanwhile is recovered by finding that reply, bot/delivery.py).
        job = await runner.create(
            NewJob(
                provider=admission.provider,
                model=request.model,
                request=request,
                guild_id=guild.id,
                channel_id=message.channel.id,
                user_id=message.author.id,
                upload_limit=guild.filesize_limit,
                cost_micro_usd=admission.caps.price_of(request),
                safety_level=request.safety_tolerance,
                reply_to_message_id=message.id,
            ),
            within=admission.reservation,
            held=True,
        )
        for attempt in range(1, ANSWER_TRIES + 1):
            try:
                # Drawn as the runner draws it (with its Cancel button), so no edit is needed to complete it.
                answer = await message.reply(
                    **bot.services.sink.opening([job]),
                    mention_author=False,
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except Exception as exc:
                # Unlike an interaction's answer, a reply can be posted again, once Discord shows none: a
                # 503 (which discord.py does not retry) must not leave the member's reply unanswered.
                if attempt < ANSWER_TRIES and _worth_another_try(exc) and not await self._answer_exists(job):
                    log.warning("reply %s: could not answer (%s); trying again", message.id, type(exc).__name__)
                    await asyncio.sleep(ANSWER_RETRY_SECONDS * attempt)
                    continue
                # The channel refuses the bot's messages (nobody will see this job: it ends uncharged), or
                # Discord posted the reply and lost its answer to us (the job starts in that reply).
                log.warning("reply %s: could not answer (%s); looking for the reply", message.id, type(exc).__name__)
                started = await runner.held.answer_failed([job], exc)
                if not started:
                    await self._note(
                        message, FORBIDDEN if isinstance(exc, discord.Forbidden) else UNANSWERED, each_reply=True
                    )
                return started[0] if started else None
            released = await runner.held.release(job.id, message_id=answer.id, shown=True)
            notes = [note for note in (passed_over, ignored_note(ignored), unknown) if note is not None]
            if notes:
                # As /imagine tells it privately: a reply has no private answer, so a note (a DM, else a reply
                # that deletes itself), at most once in NOTE_EVERY_SECONDS for a member who keeps replying.
                await self._note(message, " ".join(notes))
            return released
        raise AssertionError("unreachable: the last try returns or raises")

    async def _answer_exists(self, job: Job) -> bool:
        """Discord shows the bot's answer to this reply job (or it cannot tell): do not post another."""
        try:
            return await self.bot.services.sink.locate(job) is not None
        except Exception:
            return True  # unknown: answer_failed looks once more, and ends the job if it finds nothing

    async def _candidate(
        self, replied: discord.Message, original: Job, images: list[ReferenceImage], text: str
    ) -> tuple[Job, list[ReferenceImage], str] | None:
        """Of a batch's message, the candidate a reply names ("#2 make it night"), with its image and the
        instruction after the number; the only image needs no number. None: a comment on an image ("#2
        lol"), left alone like any chatter. A missing or wrong number is refused with the numbers shown."""
        assert original.batch_id is not None
        batch = await self.bot.services.runner.store.batch(original.batch_id)
        shown = [job for job in batch if job.message_id == replied.id and _shown_in(job, replied)]
        if not shown:
            return original, images, text  # no delivered candidate on record: the message's images as they are
        labels = ", ".join(candidate_label(job) for job in shown)
        number, rest = candidate_choice(text)
        if number is None:
            if len(shown) != 1:
                example = text.replace("`", "")[:60]
                raise InvalidRequestError(
                    f"That message shows {len(shown)} images ({labels}). Start your reply with the number of "
                    f"the one to change, for example `#{shown[-1].batch_index or 1} {example}`.",
                    detail="a reply to a batch names no image",
                )
            chosen = shown[0]
        else:
            found = [job for job in shown if (job.batch_index or 1) == number]
            if not found:
                raise InvalidRequestError(
                    f"That message has no image #{number}; it shows {labels}.",
                    detail=f"a reply to a batch names #{number}, not shown",
                )
            chosen, text = found[0], rest
            if not text or is_chatter(text):
                return None
        # The bot's own results: held to what a provider takes (routing), not to the members' upload limit.
        images = attachment_images(_uploads_of(chosen, replied), max_bytes=None)
        if not images:
            raise InvalidRequestError(
                f"Image {candidate_label(chosen)} is no longer in that message.",
                detail="the chosen candidate's attachment is not in the message",
            )
        return chosen, images, text

    async def _note(
        self, message: discord.Message, text: str, *, each_reply: bool = False, refusal: bool = False
    ) -> None:
        """Tell the member privately: by DM, else by a reply that deletes itself. One note per reply, ever
        (a restart reads the replies of the last hour again), and never the same note to the same member
        twice within NOTE_EVERY_SECONDS (``each_reply``: a note about this reply's own image is no repeat).
        A ``refusal`` (the reply asked for an edit that will not be made) whose note is not sent, as a
        repeat or because Discord took it neither way, is marked with REFUSED_MARK instead: without it,
        a member whose reply came minutes after the same refusal saw nothing happen at all."""
        assert message.guild is not None
        if await self.notes.sent(message.id):
            return
        now = time.monotonic()
        key = (message.guild.id, message.author.id, f"{text} {message.id}" if each_reply else text)
        if now - self._noted.get(key, -NOTE_EVERY_SECONDS) < NOTE_EVERY_SECONDS:
            if refusal:
                await self._mark_refused(message)
            return
        self._noted = {k: at for k, at in self._noted.items() if now - at < NOTE_EVERY_SECONDS}
        self._noted[key] = now
        owed = False
        for pause in (*self.note_retries, None):
            dealt, in_channel = await self._send_note(message, text, last=pause is None, refusal=refusal)
            if dealt:
                if in_channel is not None:
                    self.channel_notes.delete_later(in_channel)
                await self._record(message.id, in_channel)
                return
            if pause is None:
                break
            if not owed:
                owed = True
                await self._owe(message)
            await asyncio.sleep(pause)
        self._noted.pop(key, None)  # never told: the next such note is no repeat
        if refusal:
            await self._mark_refused(message)
        if owed:
            await self._settle(message.id)

    async def note_to_delete(self, note: discord.Message) -> None:
        """Another cog's note in a channel (cogs/dm_reaction.py's word that a member's DMs are closed), deleted after
        the notes' time as these are, through a restart too: kept under its own id."""
        in_channel = NoteInChannel(note.id, note.channel.id, note.id, time.time() + self.note_seconds)
        await self._record(note.id, in_channel)
        self.channel_notes.delete_later(in_channel)

    async def _record(self, message_id: int, in_channel: NoteInChannel | None) -> None:
        """Keep that the member was told (owed no more). The member has the note either way: a database that
        refuses the write (another program holds its lock) is a warning, not the reply's failure; the next
        start, reading this reply again, may then tell the member once more."""
        try:
            await self.notes.record(message_id, now=time.time(), in_channel=in_channel)
        except sqlite3.Error as exc:
            log.warning("reply %s: told, but could not keep that it was (%s)", message_id, exc)

    async def _owe(self, message: discord.Message) -> None:
        """Keep that a note about ``message`` is waiting to be tried again: a stop during its pauses (about
        17 s when Discord fails the DM) leaves the next start to take the reply up again. Only then: a note
        sent at the first try, most of them, costs no write, and a stop during that try comes seconds after
        the reply, which the next start's look back (CATCH_UP_MARGIN_SECONDS) reads again anyway. A
        database that refuses the write does not hold up the note itself."""
        try:
            await self.notes.owe(message.id, channel_id=message.channel.id, now=time.time())
        except sqlite3.Error as exc:
            log.warning("reply %s: could not keep that a note is owed (%s)", message.id, exc)

    async def _settle(self, message_id: int) -> None:
        try:
            await self.notes.settle(message_id)
        except sqlite3.Error as exc:  # the next start takes the reply up again: at worst one more note
            log.warning("reply %s: could not let go of its owed note (%s)", message_id, exc)

    async def _mark_refused(self, message: discord.Message) -> None:
        """React with REFUSED_MARK; a failure that may pass (a 503, which discord.py does not retry) is tried
        again after the notes' pauses. Adding a reaction twice is one reaction, so a retry cannot double it."""
        for pause in (*self.note_retries, None):
            try:
                await message.add_reaction(REFUSED_MARK)
                return
            except discord.HTTPException as exc:  # no Add Reactions here, the reply deleted, or Discord failing
                if pause is None or not _worth_another_try(exc):
                    log.info("reply %s: could not mark it refused (HTTP %s)", message.id, exc.status)
                    return
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if pause is None:
                    log.info("reply %s: could not mark it refused (%s)", message.id, type(exc).__name__)
                    return
            await asyncio.sleep(pause)

    async def _note_in_dm(self, message: discord.Message) -> bool:
        """Whether the member's DM holds a note about ``message`` (it names the reply's link), which Discord made
        though it answered a failure. Unread (Discord failing still), it is taken as not sent."""
        me = self.bot.user
        try:
            dm = message.author.dm_channel or await message.author.create_dm()
            async for sent in dm.history(limit=NOTES_LOOKED_AT):
                if me is not None and sent.author.id == me.id and message.jump_url in (sent.content or ""):
                    log.info("reply %s: its note reached the member's DM after all", message.id)
                    return True
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("reply %s: the member's DM not read for its note (%s)", message.id, exc)
        return False

    async def _send_note(
        self, message: discord.Message, text: str, *, last: bool, refusal: bool = False
    ) -> tuple[bool, NoteInChannel | None]:
        """Send the note. True once it is dealt with: sent by DM, or as a reply in the channel (returned, to
        delete when its time is up), or refused both ways for good (the member takes no DMs and the channel
        takes no posts from the bot), which no later start could do better. A DM Discord failed for now
        (5xx, 429) is tried again later (False) rather than posted for the channel to see, until the
        ``last`` try."""
        none = discord.AllowedMentions.none()
        dms_refused = False
        # What a refusal quotes (a ban's reason, stored before reasons were bounded) must not make the note
        # longer than Discord takes: refused both ways, it reached nobody.
        text = truncate(text, MAX_CONTENT - NOTE_LINK_ROOM)
        try:
            # The nonce: a note sent again (its record lost to a kill, or its answer to a proxy) is the same DM.
            await message.author.send(
                f"{text}\n-# About your reply: {message.jump_url}",
                nonce=message_nonce("note-dm", message.id),
                allowed_mentions=none,
            )
            return True, None
        except discord.Forbidden:
            dms_refused = True  # the member accepts no DMs from this server's members
        except discord.HTTPException as exc:
            log.warning("reply %s: could not DM the member (HTTP %s)", message.id, exc.status)
            if not last:
                return False, None
            if await self._note_in_dm(message):
                # Discord made the DM and its answer was lost, each try (a 5xx on the way back): the member has
                # it, and a note in the channel would be a second.
                return True, None
        try:
            note = await message.reply(
                # A refusal's reasons are the member's own (a ban and its reason, their quota, the term
                # that blocked them): the channel reads only that the edit was not made, and where to learn why.
                PUBLIC_REFUSAL if refusal else text,
                nonce=message_nonce("note-reply", message.id),
                mention_author=False,
                allowed_mentions=none,
            )
        except discord.HTTPException as exc:
            log.warning("reply %s: could not answer it either (HTTP %s)", message.id, exc.status)
            return dms_refused and isinstance(exc, discord.Forbidden), None
        return True, NoteInChannel(message.id, note.channel.id, note.id, time.time() + self.note_seconds)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Replies(bot))
