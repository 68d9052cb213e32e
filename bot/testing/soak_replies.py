"""Members who reply to the bot's images with an edit, during a fault soak (bench/soak.py, tests/e2e/test_soak.py).

A seeded share of the commands, a moment after their message shows an image (``early`` of them while it is still being
made), get a reply asking for an edit. When the
bot is on the gateway the reply reaches it live; when it is not (killed, restarting), the reply is stored and
sent to nobody, as Discord does, and the bot must find it in the channel's history once it is back
(cogs/replies.py). ``problems`` holds each reply to the rules a member would: it is answered by exactly one
reply of the bot's, which ends showing the edited image or why there is none (or, where the image was deleted or
no answer could be posted, by one private note saying so), and every job the reply caused
is settled (one the bot recorded but never showed ended uncharged). Created- and charged-twice are judged
with the other jobs (``audit``: each reply has its own prompt).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.held_jobs import UNCONFIRMED_AT_RESTART
from bot.render import REFUSED_MARK
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.soak import db_rows, ends_without_an_image, message_verdict, settled_message, shows_an_image

_TERMINAL_SETTLED = ("committed", "refunded")
# How the bot's private note begins when it could not answer a reply in its channel at all (cogs/replies.py,
# FORBIDDEN and UNANSWERED): Discord refused every try of its answer, or the channel forbids its posts.
_COULD_NOT_ANSWER = "I could not answer your reply"


@dataclass
class SoakReply:
    """A member's reply to the image one command brought. ``outcome``: "live" or "while away" (posted with
    the bot on the gateway or not), or why there was none ("no image")."""

    command: FakeInteraction
    text: str
    outcome: str = "pending"
    message: FakeMessage | None = None


class ReplyEdits:
    """Replies with an edit to a seeded ``share`` of the images members get (see the module's doc)."""

    def __init__(
        self,
        discord_fake: FakeDiscord,
        share: float,
        *,
        seed: int,
        patience: float = 120.0,
        delay: tuple[float, float] = (0.0, 8.0),
        early: float = 0.0,
        early_after: tuple[float, float] = (0.3, 3.0),
    ) -> None:
        self.discord = discord_fake
        self.share = share
        # The share of the replies posted while their image is still being made (cogs/early_replies.py: it waits, and
        # is answered once the image shows; with none made, its member told privately), live or while the bot is down.
        self.early = early
        self.early_after = early_after  # how long after the command such a reply comes (the image may show first)
        self.patience = patience
        self.delay = delay  # a member takes a moment to look at the image before replying
        self.replies: list[SoakReply] = []
        self._random = random.Random(f"{seed}-replies")
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def posted(self) -> list[SoakReply]:
        return [r for r in self.replies if r.message is not None]

    def after_sent(self, command: FakeInteraction) -> None:
        if self._random.random() >= self.share or is_batch(command):
            return
        reply = SoakReply(command, f"make it night (reply {len(self.replies) + 1})")
        self.replies.append(reply)
        if self.early and self._random.random() < self.early:
            task = asyncio.create_task(self._early(reply, after=self._random.uniform(*self.early_after)))
        else:
            task = asyncio.create_task(self._reply(reply, after=self._random.uniform(*self.delay)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self, answered_within: float = 30.0) -> None:
        """Wait for the replies still to come, then (up to ``answered_within`` s) for each to be answered
        and its answer to end: a judge that looked before would call a reply being handled unanswered."""
        if self._tasks:
            await asyncio.gather(*self._tasks)
        with contextlib.suppress(TimeoutError):
            await self.discord.wait_for(lambda: all(self._settled(r) for r in self.posted), timeout=answered_within)

    async def reply_to(self, command: FakeInteraction, *, live: bool | None = None) -> SoakReply:
        """Reply to ``command``'s image now (its message must show one); ``live``: post it to a connected
        bot (True) or as one the bot is not there to get (False); None: whichever is the case."""
        reply = SoakReply(command, f"make it night (reply {len(self.replies) + 1})")
        self.replies.append(reply)
        await self._reply(reply, live=live, patience=0.0)
        return reply

    async def _early(self, reply: SoakReply, *, after: float) -> None:
        """Reply to the command's message while its image is still being made; once it shows (or ended without
        one) before the member got to it, as any reply."""
        await asyncio.sleep(after)
        message = self.discord.messages.get(reply.command.original_message_id or -1)
        if (
            message is None
            or message.deleted
            or message.ephemeral
            or shows_an_image(message)
            or ends_without_an_image(message)
            or message.channel_id in self.discord.deleted_channels
        ):
            await self._reply(reply)
            return
        live = await self._post(reply, message, live=self.discord.connected)
        reply.outcome = "early, live" if live else "early, while away"

    async def _post(self, reply: SoakReply, message: FakeMessage, *, live: bool) -> bool:
        """Post ``reply`` to ``message``: to the bot (``live``), else as one it is not there to get (also where it
        went away between the look and the post). Whether it went live."""
        if live:
            try:
                reply.message = await self.discord.post_message(
                    reply.text, reply_to=message.id, user_id=reply.command.user_id
                )
                return True
            except TimeoutError:
                pass  # the bot went away between the look and the post
        reply.message = await self.discord.post_message(
            reply.text, reply_to=message.id, user_id=reply.command.user_id, live=False
        )
        return False

    async def _reply(
        self, reply: SoakReply, *, live: bool | None = None, patience: float | None = None, after: float = 0.0
    ) -> None:
        message = await settled_message(self.discord, reply.command, self.patience if patience is None else patience)
        if message is None or message.deleted or not shows_an_image(message):
            reply.outcome = "no image"
            return
        await asyncio.sleep(after)
        current = self.discord.messages.get(message.id)  # deleted by its member meanwhile?
        if current is None or current.deleted:
            reply.outcome = "no image"
            return
        live = self.discord.connected if live is None else live
        if message.channel_id in self.discord.deleted_channels:  # --channel-delete took it meanwhile
            reply.outcome = "no image"
            return
        live = await self._post(reply, message, live=live)
        reply.outcome = "live" if live else "while away"

    def _answers(self, reply: SoakReply) -> list[FakeMessage]:
        assert reply.message is not None
        return self.discord.bot_replies_to(reply.message.id)

    def _settled(self, reply: SoakReply) -> bool:
        answers = self._answers(reply)
        if (
            self._told_image_gone(reply, answers)
            or self._told_why_unanswered(reply, answers)
            or self._refused_privately(reply, answers)
        ):
            return True
        return len(answers) == 1 and (
            answers[0].deleted or shows_an_image(answers[0]) or ends_without_an_image(answers[0])
        )

    def _told_image_gone(self, reply: SoakReply, answers: list[FakeMessage]) -> bool:
        """The image ``reply`` answers was deleted (by the member actions, bot/testing/soak.py) and the bot
        told the member privately instead of editing it: one note, by DM naming the reply or by a reply to
        it that deleted itself (cogs/replies.py ``_note``)."""
        assert reply.message is not None and reply.message.reference is not None
        image = self.discord.messages.get(int(reply.message.reference["message_id"]))
        return image is not None and image.deleted and self._refused_privately(reply, answers)

    def _told_why_unanswered(self, reply: SoakReply, answers: list[FakeMessage]) -> bool:
        """The bot could not post its answer to ``reply`` (Discord refused every try and shows none) and
        told the member so by one DM naming the reply, its only word on it."""
        dms = [m for m in self._dms_about(reply) if (m.content or "").startswith(_COULD_NOT_ANSWER)]
        return not answers and len(dms) == 1

    def _refused_privately(self, reply: SoakReply, answers: list[FakeMessage]) -> bool:
        """The bot turned ``reply`` down (cogs/replies.py: a quota, a ban, a blocked term) and said why in one
        note: a DM naming the reply, or a reply to it that deleted itself; nothing else. Or, where that
        note had gone to the member minutes before (or Discord took it neither way), it marked the reply
        refused (REFUSED_MARK) and said nothing. ``problems`` also asks that no job came of it."""
        dms = self._dms_about(reply)
        assert reply.message is not None
        if not dms and not answers:
            return REFUSED_MARK in reply.message.reactions
        return len(dms) + len(answers) == 1 and (bool(dms) or answers[0].deleted)

    def _dms_about(self, reply: SoakReply) -> list[FakeMessage]:
        """The bot's DMs to the member that name ``reply`` (a note ends with a link to it)."""
        assert reply.message is not None
        named = f"/{reply.message.id}"
        return [m for m in self.discord.dms_to(reply.message.author_id or 0) if named in (m.content or "")]

    def problems(self, db: Path) -> list[str]:
        """Replies not answered exactly once, answers not final, jobs of a reply left unsettled."""
        jobs = db_rows(db, "SELECT * FROM jobs WHERE reply_to_message_id IS NOT NULL") if db.exists() else []
        by_reply: dict[int, list[dict[str, Any]]] = {}
        for job in jobs:
            by_reply.setdefault(int(job["reply_to_message_id"]), []).append(job)
        # A reply still "pending" was never posted: its task failed (a fault of this harness, not the bot's).
        pending = [r for r in self.replies if r.outcome == "pending"]
        found = [f"reply {r.text!r}: never posted (the harness's task failed)" for r in pending]
        for reply in self.posted:
            assert reply.message is not None
            what = f"reply {reply.message.id} ({reply.text!r}, posted {reply.outcome})"
            answers = self._answers(reply)
            mine = by_reply.get(reply.message.id, [])
            shown = [job for job in mine if job["message_id"] is not None]
            if reply.message.channel_id in self.discord.deleted_channels:
                pass  # its channel was deleted, and whatever the bot answered with it; its jobs are checked below
            elif not shown and (self._told_image_gone(reply, answers) or self._told_why_unanswered(reply, answers)):
                pass  # the image went before the bot acted on the reply, or no answer could be posted: told why
            elif all(job["error_message"] == UNCONFIRMED_AT_RESTART for job in mine) and self._refused_privately(
                reply, answers
            ):
                # Refused (a quota, a ban, a blocked term), the member told why privately. A job of it may come
                # first: taken, then the bot killed before its answer; the restart ends that job unshown and
                # uncharged (checked below) and reads the reply again, which is refused then (seed 141).
                pass
            elif len(answers) != 1 or len(shown) != 1:
                found.append(f"{what}: {len(answers)} answer(s) from the bot, {len(shown)} job(s) shown")
                continue
            elif (why := message_verdict(answers[0], shown[0])) is not None:
                found.append(f"{what}: the bot's answer is not final: {why}")
            for job in mine:
                if job["charge_state"] not in _TERMINAL_SETTLED:
                    found.append(f"{what}: job {job['id']} {job['state']}, charge {job['charge_state']}")
                elif job["message_id"] is None and job["charge_state"] != "refunded":
                    found.append(f"{what}: job {job['id']} never shown, yet {job['charge_state']}")
        return found

    def lines(self, db: Path) -> list[str]:
        """How the replies went and how their jobs ended, for a report."""
        jobs = db_rows(db, "SELECT state, message_id FROM jobs WHERE reply_to_message_id IS NOT NULL")
        made = Counter(r.outcome for r in self.replies)
        ended = Counter(str(job["state"]) + ("" if job["message_id"] else " (never shown)") for job in jobs)
        noted = sum(1 for r in self.posted if self._dms_about(r))
        marked = sum(1 for r in self.posted if r.message is not None and REFUSED_MARK in r.message.reactions)
        return [
            f"replies: {len(self.replies)} (a share of {self.share:.0%} of the commands): "
            + (", ".join(f"{o} {n}" for o, n in sorted(made.items())) or "none"),
            f"  {'':<16}      their jobs ended: " + (", ".join(f"{s} {n}" for s, n in sorted(ended.items())) or "-"),
            f"  {'':<16}      told privately (a DM naming the reply): {noted}; marked refused: {marked}",
        ]


def is_batch(command: FakeInteraction) -> bool:
    """A command for several images: a reply to its message must name one, so the soak leaves it be."""
    options = command.payload.get("data", {}).get("options", [])
    return any(o.get("name") == "count" and int(o.get("value", 1)) > 1 for o in options)
