"""Members who @mention the bot with words during a fault soak (bench/soak.py --mentions).

A seeded share of the commands is followed, a moment later, by a member writing to the bot in the same channel
(the command's own, or half the time one of two bystanders who send no commands): "@Bananacord a paper boat at
sea", or now and then chatter ("thanks @Bananacord!"). When the bot is on the gateway
the message reaches it live; when it is not (killed, restarting), Discord keeps it from the bot, which must find it in
the channel's history once back (cogs/replies.py's catch-up hands it to cogs/mention_prompts.py). ``problems`` holds
the offers to what a member would accept: no mention offered twice, however many kills and readings of the history
came between (an offer is kept in SQLite once posted; one a kill cut off before that is found in the history as the
bot's reply to the mention, and its nonce makes Discord hand back the same message); none for chatter; each offer a
reply to the mention, saying it is late only if it is, never pinging. Whether a mention is offered at all depends on
what came between (the member's command since, a mention of theirs half a minute before, a pause), so none is owed.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from cogs.mention_prompts import LATE, OFFER

# A share of the mentions is chatter, which must get no offer.
CHATTER = 0.2


@dataclass
class SoakMention:
    """A member's mention of the bot after one command, in its channel. ``outcome``: "live" or "while away"."""

    command: FakeInteraction
    text: str
    chatter: bool
    author: int
    outcome: str = "pending"
    message: FakeMessage | None = None
    sessions: int = 0  # gateway sessions the bot had begun when it was posted


class Mentions:
    """Mentions of the bot with words after a seeded ``share`` of the commands (see the module's doc)."""

    def __init__(self, discord_fake: FakeDiscord, share: float, *, seed: int, delay: tuple[float, float] = (0, 6)):
        self.discord = discord_fake
        self.share = share
        self.delay = delay
        self.mentions: list[SoakMention] = []
        self._random = random.Random(f"{seed}-mentions")
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def posted(self) -> list[SoakMention]:
        return [m for m in self.mentions if m.message is not None]

    def after_sent(self, command: FakeInteraction) -> None:
        if self.share <= 0 or self._random.random() >= self.share:
            return
        bot, n = self.discord.bot_user_id, len(self.mentions) + 1
        chatter = self._random.random() < CHATTER
        text = f"thanks <@{bot}>!" if chatter else f"<@{bot}> a paper boat at sea (mention {n})"
        bystanders = (self.discord.other_member_id, self.discord.admin_id)
        author = command.user_id if self._random.random() < 0.5 else self._random.choice(bystanders)
        mention = SoakMention(command, text, chatter, author)
        self.mentions.append(mention)
        task = asyncio.create_task(self._post(mention, after=self._random.uniform(*self.delay)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self, within: float = 15.0) -> None:
        """Wait for the mentions still to come, then up to ``within`` s for the offers to those posted live."""
        if self._tasks:
            await asyncio.gather(*self._tasks)
        await asyncio.sleep(min(within, 2.0))  # an offer is one post; a second one, were it coming, comes as soon

    async def _post(self, mention: SoakMention, *, after: float) -> None:
        await asyncio.sleep(after)
        channel = mention.command.channel_id
        if channel in self.discord.deleted_channels:  # --channel-delete took it meanwhile
            mention.outcome = "channel deleted"
            return
        live = self.discord.connected
        mention.sessions = self.discord.identify_count
        if live:
            try:
                mention.message = await self.discord.post_message(
                    mention.text, channel_id=channel, user_id=mention.author
                )
            except TimeoutError:
                live = False  # the bot went away between the look and the post
        if not live:
            mention.message = await self.discord.post_message(
                mention.text, channel_id=channel, user_id=mention.author, live=False
            )
        mention.outcome = "live" if live else "while away"

    def _offers(self, mention: SoakMention) -> list[FakeMessage]:
        assert mention.message is not None
        return self.discord.bot_replies_to(mention.message.id)

    def problems(self) -> list[str]:
        """Mentions offered twice, chatter offered, offers that are not what an offer says."""
        # A mention still "pending" was never posted: its task failed (a fault of this harness, not the bot's).
        pending = [m for m in self.mentions if m.outcome == "pending"]
        found = [f"mention {m.text!r}: never posted (the harness's task failed)" for m in pending]
        for mention in self.posted:
            assert mention.message is not None
            what = f"mention {mention.message.id} ({mention.text!r}, posted {mention.outcome})"
            offers = self._offers(mention)
            if mention.chatter and offers:
                found.append(f"{what}: chatter, yet offered")
            if len(offers) > 1:
                found.append(f"{what}: offered {len(offers)} times")
            for offer in offers:
                if offer.content not in (OFFER, f"{LATE}\n{OFFER}"):
                    found.append(f"{what}: offer {offer.id} says {offer.content!r}")
                elif offer.content != OFFER and mention.outcome == "live" and not self._restarted_between(mention):
                    found.append(f"{what}: offer {offer.id} says it is late, with the bot there all along")
                if offer.allowed_mentions != {"parse": [], "replied_user": False}:
                    found.append(f"{what}: offer {offer.id} may ping ({offer.allowed_mentions})")
        return found

    def _restarted_between(self, mention: SoakMention) -> bool:
        """Whether a new gateway session began after ``mention`` was posted live (the bot that had it taken away
        before it answered: the next one reads it late)."""
        return self.discord.identify_count > mention.sessions

    def lines(self) -> list[str]:
        """How the mentions went, for a report."""
        made = Counter(m.outcome for m in self.mentions)
        offered = Counter(
            ("late" if any(o.content != OFFER for o in offers) else "live") if offers else "none"
            for m in self.posted
            if not m.chatter
            for offers in [self._offers(m)]
        )
        chatter = sum(1 for m in self.mentions if m.chatter)
        return [
            f"mentions: {len(self.mentions)} (a share of {self.share:.0%} of the commands; {chatter} chatter): "
            + (", ".join(f"{o} {n}" for o, n in sorted(made.items())) or "none"),
            f"  {'':<16}      offered (not chatter): "
            + (", ".join(f"{o} {n}" for o, n in sorted(offered.items())) or "-"),
        ]
