"""A member who @mentions the bot with words ("@Bananacord a fox in the snow") is offered to make them an image.

Members talk to bots that way, on a phone most of all, where a slash command's options are a chore; without this the
bot said nothing at all, and the member was left to guess. The bot answers with a short reply (pinging nobody): how
to make it, with an **Imagine this** button. Only the member who wrote it may press it: it opens a form holding their
words (to change first, if they like) and the Model list of the Use as reference form; the form's submit is an
``/imagine`` of those words (cogs/imagine.py ``Imagine.make``: their preferences, the suffix, the checks, moderation,
quotas, the job's own message), with the images attached to their message as references. The button and the form
carry the member's and the message's ids, so one opened before a restart still works; the words and images are read
again from the message then, so a message edited since makes what it now says.

A member who mentions the bot replying to another member's message (a friend's picture: "@Bananacord make this a
watercolour") gets the offer too, with a line saying how to edit that message's image (its **Edit with Nano Banana**
menu): a reply edits only the bot's own images.

The reply is only an offer: nothing is made or charged until the member sends the form. A member who replies to
their offer with other words ("@Bananacord no, a wolf") gets a new one at once, in its place. It is not offered for a
reply to the bot's own message (an edit of its image: cogs/replies.py), for chatter ("thanks @Bananacord", "lol"; but
"@Bananacord" alone with a picture, the member's or the one they reply to, is offered, the words left to the form),
for a message that also mentions others (it speaks to them), where the moderators paused image making (/mod pause),
for a member they banned from the bot (/mod ban),
nor more often than once every OFFER_EVERY_SECONDS per member and OFFERS_PER_CHANNEL_MINUTE a minute per channel (a
raid of mentions), and it is deleted once its image is asked for, or after
OFFER_SECONDS: the offer is kept with the notes about replies (bot/store/reply_notes.py), so one a stop left behind is
deleted by the next start (cogs/channel_notes.py), and a message is offered once however often it is read.

Discord does not send a bot the messages posted while it was away. The replies' catch-up (cogs/replies.py) reads the
recent history of the channels where the bot showed images and hands each channel's messages here: each member's
latest mention there that nothing answered since (no offer of the bot's replies to it, the member has not used a
command since) is offered then, saying the bot was away.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from bot.app import Bananacord
from bot.errors import InvalidRequestError
from bot.nonces import message_nonce
from bot.store.reply_notes import NoteInChannel
from cogs.discord_again import TRIES_AGAIN, again_on_failure
from cogs.imagine import Imagine, form_submit, submitted_text
from cogs.private_answers import answer_privately
from cogs.reference_form import PROMPT_INPUT_ID, prompt_box
from cogs.replies import Replies, addresses_others, instruction, is_chatter
from cogs.slow_answers import watched_answer

log = logging.getLogger(__name__)

# The button under the offer, and the form it opens: the member it is for and their message.
BUTTON_ID = re.compile(r"bananacord:imagine-this:(?P<user_id>\d+):(?P<message_id>\d+)")
FORM_ID = re.compile(r"bananacord:imagine-this-form:(?P<user_id>\d+):(?P<message_id>\d+)")
# A member mentioning the bot again and again (a chat with it) gets one offer in this time.
OFFER_EVERY_SECONDS = 30.0
# And a channel at most this many offers a minute: a raid of mentions would otherwise have the bot post hundreds of
# replies, queued behind Discord's limit on a channel's posts with the images members are waiting for there.
OFFERS_PER_CHANNEL_MINUTE = 6
# An offer nobody took is deleted after this long (by the next start, if the bot stopped meanwhile).
OFFER_SECONDS = 600.0
# Above the offer to a mention the bot missed while it was away (read back at its return): the member waited.
LATE = "Sorry for the wait: I was offline when you wrote this."
OFFER = (
    "🎨 To make an image of that, press **Imagine this** (you can change the words first), or use `/imagine` "
    "(type `/`). To change one of my images, reply to it."
)
# The offer to a mention with a picture and no words ("@Bananacord" and a photo): what to make of it is still to say.
OFFER_PICTURE = (
    "🎨 To make an image from that, press **Imagine this** and say what to make of it, or use `/imagine` with the "
    "image attached (type `/`)."
)
# Added for a member who mentions the bot replying to another member's message (its picture, as like as not): a reply
# edits only the bot's own images, and that message's menu is how to edit it.
ON_A_MESSAGE = (
    "To edit an image of the message you replied to, use its menu instead: right-click it (long-press on a phone) → "
    "**Apps** → **Edit with Nano Banana**."
)


def _asks(message: discord.Message, me: discord.abc.User) -> bool:
    """Whether ``message`` asks the bot for something an image could be: it mentions the bot with words, speaking to
    it alone, and is no reply to the bot's own message (an edit of its image: cogs/replies.py) but for the member's
    own offer (other words: "no, a wolf")."""
    if message.guild is None or message.author.bot:
        return False
    replied = message.reference.resolved if message.reference is not None else None
    # A reply to a message Discord did not send along is of unknown kind: no offer either.
    if message.reference is not None and not isinstance(replied, discord.Message):
        return False
    # The bot's own message: an image to edit (cogs/replies.py), or the member's offer, to give it other words.
    author = message.author.id
    if isinstance(replied, discord.Message) and replied.author.id == me.id and _offered_to(replied) != author:
        return False
    role = message.guild.self_role
    if me not in message.mentions and (role is None or role not in message.role_mentions):
        return False
    if addresses_others(message, me):
        return False
    words = instruction(message, me)
    # "@Bananacord" and a picture, theirs or the one they reply to: something to make of it, words to come.
    return not is_chatter(words) or (not words and (_pictured(message) or _pictured(replied)))


def _offered_to(message: discord.Message) -> int | None:
    """The member ``message`` (the bot's) offers Imagine this to, if it is such an offer."""
    for row in message.components:
        for item in getattr(row, "children", []):
            pressed = BUTTON_ID.fullmatch(str(getattr(item, "custom_id", None) or ""))
            if pressed is not None:
                return int(pressed["user_id"])
    return None


def _pictured(message: discord.Message | discord.DeletedReferencedMessage | None) -> bool:
    if not isinstance(message, discord.Message):
        return False
    return any((a.content_type or "").startswith("image/") for a in message.attachments)


def _button(user_id: int, message_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(
            label="Imagine this",
            emoji="🎨",
            style=discord.ButtonStyle.primary,
            custom_id=f"bananacord:imagine-this:{user_id}:{message_id}",
        )
    )
    view.stop()  # routed by custom_id in on_interaction, not kept per message
    return view


class ImagineThisForm(discord.ui.Modal):
    """The member's words, to send as an /imagine."""

    def __init__(self, user_id: int, message_id: int, words: str, model: discord.ui.Label[Any] | None) -> None:
        super().__init__(
            title="Imagine this", custom_id=f"bananacord:imagine-this-form:{user_id}:{message_id}", timeout=None
        )
        description = "Your words from the message; the images attached to it go along as references."
        self.add_item(prompt_box(description, "a fox in the snow, at dawn --ar 16:9", words=words))
        if model is not None:
            self.add_item(model)
        self.stop()  # answered by on_interaction, as a form opened before a restart is


class MentionPrompts(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self._offered: dict[tuple[int, int], float] = {}  # (server, member) -> when last offered
        self._channel_offers: dict[int, list[float]] = {}  # channel -> when its offers of the last minute were made
        replies = bot.get_cog("Replies")
        assert isinstance(replies, Replies)  # loaded before this cog (bot/app.py EXTENSIONS)
        self._replies = replies

    async def cog_load(self) -> None:
        self._replies.readers.append(self.read_back)

    async def cog_unload(self) -> None:
        self._replies.readers.remove(self.read_back)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is not None and _asks(message, me):
            await self._offer(message, me, late=False)

    async def read_back(self, messages: list[discord.Message]) -> None:
        """A channel's messages posted while the bot was away, oldest first (cogs/replies.py's catch-up): each
        member's latest mention of the bot that nothing answered since is offered now."""
        me = self.bot.user
        if me is None:
            return
        waiting: dict[int, discord.Message] = {}  # member -> their latest mention
        for message in messages:
            if message.author.id == me.id:
                # Answered: an offer a run posted and stopped before keeping, or a command the member used since.
                answered = message.reference.message_id if message.reference is not None else None
                waiting = {member: m for member, m in waiting.items() if m.id != answered}
                if message.interaction_metadata is not None:
                    waiting.pop(message.interaction_metadata.user.id, None)
            elif _asks(message, me):
                waiting[message.author.id] = message
        for message in sorted(waiting.values(), key=lambda m: m.id):
            await self._offer(message, me, late=True)

    def _in_turn(self, message: discord.Message, *, answer: bool = False) -> bool:
        """Whether the member was offered nothing in the last OFFER_EVERY_SECONDS (a chat with the bot gets one;
        ``answer``: a reply to their offer, which may come at once), and the channel has room for an offer."""
        assert message.guild is not None
        key, now = (message.guild.id, message.author.id), time.monotonic()
        if not answer and now - self._offered.get(key, -OFFER_EVERY_SECONDS) < OFFER_EVERY_SECONDS:
            return False
        recent = [at for at in self._channel_offers.get(message.channel.id, []) if now - at < 60.0]
        if len(recent) >= OFFERS_PER_CHANNEL_MINUTE:
            log.info("message %s mentions the bot; no offer: its channel had %d this minute", message.id, len(recent))
            return False
        if len(self._offered) > 1000:  # only the last OFFER_EVERY_SECONDS count
            self._offered = {k: at for k, at in self._offered.items() if now - at < OFFER_EVERY_SECONDS}
        if len(self._channel_offers) > 1000:
            self._channel_offers = {c: ats for c, ats in self._channel_offers.items() if now - ats[-1] < 60.0}
        self._offered[key] = now
        self._channel_offers[message.channel.id] = [*recent, now]
        return True

    async def _offer(self, message: discord.Message, me: discord.abc.User, *, late: bool) -> None:
        assert message.guild is not None
        # Paused by the moderators (/mod pause; a raid, as like as not): no offer to add to the channel's noise.
        parent = getattr(message.channel, "parent_id", None)
        if await self.bot.services.moderation.pause_at(message.guild.id, message.channel.id, parent) is not None:
            return
        if await self.bot.services.moderation.active_ban(message.guild.id, message.author.id) is not None:
            return  # banned from the bot (/mod ban): its form would only be refused
        if await self._replies.notes.sent(message.id):
            return  # offered by an earlier run (a restart reads the last stretch of history again)
        replied = message.reference.resolved if message.reference is not None else None
        # Other words for the offer a member was just made: at once, as an answer to the bot is no chat with it.
        earlier = replied if isinstance(replied, discord.Message) and replied.author.id == me.id else None
        if not self._in_turn(message, answer=earlier is not None):
            return
        text = OFFER if instruction(message, me) else OFFER_PICTURE
        text = text if replied is None or earlier is not None else f"{text}\n{ON_A_MESSAGE}"
        try:
            # Made again after a 503 or no answer (discord.py retries neither: cogs/discord_again.py); sent again
            # (its record lost to a kill, its answer to a proxy), it is the same message, within Discord's window
            # for nonces (bot/nonces.py).
            offer = await again_on_failure(
                lambda: message.reply(
                    f"{LATE}\n{text}" if late else text,
                    view=_button(message.author.id, message.id),
                    mention_author=False,
                    allowed_mentions=discord.AllowedMentions.none(),
                    nonce=message_nonce("imagine-this", message.id),
                ),
                self.bot.settings.jobs.final_edit_retry_seconds[:TRIES_AGAIN],
                what="an Imagine this offer",
            )
        except (discord.HTTPException, TimeoutError, aiohttp.ClientError, OSError) as exc:
            # A channel the bot may not post in (`/admin check` names it): the member is left as before.
            why = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
            log.info("message %s mentions the bot; could not offer to imagine it (%s)", message.id, why)
            return
        note = NoteInChannel(message.id, offer.channel.id, offer.id, time.time() + OFFER_SECONDS)
        self._replies.channel_notes.delete_later(note)
        try:
            await self._replies.notes.record(message.id, now=time.time(), in_channel=note)
        except sqlite3.Error as exc:  # deleted by this run's timer all the same; a restart may offer it again
            log.warning("message %s: offered to imagine it, but could not keep that (%s)", message.id, exc)
        if earlier is not None and earlier.reference is not None and earlier.reference.message_id is not None:
            await self._withdraw(earlier, earlier.reference.message_id)  # the new one holds the member's words now

    async def _withdraw(self, offer: discord.Message, mention_id: int) -> None:
        """Delete ``offer`` (made to the mention ``mention_id``), taken or outdone; its timer and row let go."""
        try:
            await offer.delete()
        except discord.NotFound:
            pass  # deleted already (its time was up, a moderator)
        except discord.HTTPException as exc:
            log.info("could not delete the offer %s (HTTP %s)", offer.id, exc.status)
            return  # its timer deletes it when its time is up
        try:
            await self._replies.channel_notes.taken_away(mention_id)
        except sqlite3.Error as exc:  # the next start finds it gone
            log.warning("offer %s: deleted, but not recorded so (%s)", offer.id, exc)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is discord.InteractionType.component:
            data: Any = interaction.data or {}
            custom_id = str(data.get("custom_id", ""))
            pressed = BUTTON_ID.fullmatch(custom_id)
            if pressed is not None:
                where = f"the Imagine this button of message {pressed['message_id']}"
                opening = self._open_form(interaction, int(pressed["user_id"]), int(pressed["message_id"]))
                await watched_answer(interaction, self.bot.services.db, where, opening)
            return
        sent = form_submit(interaction, FORM_ID)
        if sent is None:
            return
        match, components = sent
        words = submitted_text(components, PROMPT_INPUT_ID) or ""
        where = f"the Imagine this form of message {match['message_id']}"
        submit = self._imagine(interaction, int(match["user_id"]), int(match["message_id"]), words, components)
        await watched_answer(interaction, self.bot.services.db, where, submit, typed=words)

    async def _open_form(self, interaction: discord.Interaction[Any], user_id: int, message_id: int) -> None:
        if interaction.user.id != user_id:
            await answer_privately(
                interaction, f"This is <@{user_id}>'s to press. To make an image of your own, use `/imagine`."
            )
            return
        message = await self._message(interaction, message_id)
        me = self.bot.user
        if message is None or me is None:
            await answer_privately(interaction, "Your message is gone, and its words with it: use `/imagine`.")
            return
        imagine = self.bot.get_cog("Imagine")
        assert isinstance(imagine, Imagine)  # loaded before this cog (bot/app.py EXTENSIONS)
        form = ImagineThisForm(user_id, message_id, instruction(message, me), await imagine.model_choice(interaction))
        await interaction.response.send_modal(form)

    async def _message(self, interaction: discord.Interaction[Any], message_id: int) -> discord.Message | None:
        """The member's message, read again (its words may have been edited, its images are read as they are now)."""
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            return None
        try:
            return await channel.fetch_message(message_id)
        except discord.NotFound:
            return None
        except discord.Forbidden:
            raise InvalidRequestError(
                "The bot may not read this channel's messages (Read Message History), so it cannot read yours: use "
                "`/imagine`. (An admin's `/admin check` names what the bot lacks here.)"
            ) from None

    async def _imagine(
        self, interaction: discord.Interaction[Any], user_id: int, message_id: int, words: str, components: list[Any]
    ) -> None:
        """The form sent: an /imagine of its words, with the message's images attached, as the member's own."""
        if interaction.user.id != user_id:  # the form opens only for them: a forged submit
            raise InvalidRequestError("This form is another member's. Use `/imagine` for your own.")
        message = await self._message(interaction, message_id)
        if message is None:  # deleted while the form was open: its images are gone, and the words may count on them
            raise InvalidRequestError(
                "Your message was deleted, and any images it had with it. Use `/imagine` (with the images attached)."
            )
        imagine = self.bot.get_cog("Imagine")
        assert isinstance(imagine, Imagine)
        model = imagine.picked_model(components)
        await imagine.make(interaction, words, model=model, attached=list(message.attachments), suffixed=True)
        offer = interaction.message
        if offer is None:
            return
        try:
            # Taken once the answer is public, the job's own message: a private one refused, or asks the member to
            # choose (an option and a parameter that disagree), and the offer stays for another try.
            if (await interaction.original_response()).flags.ephemeral:
                return
        except discord.HTTPException as exc:
            log.info("could not read the answer to the offer %s's form (HTTP %s)", offer.id, exc.status)
            return  # its timer deletes it when its time is up
        await self._withdraw(offer, message_id)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(MentionPrompts(bot))
