"""A moderator acting during a soak (bench/soak.py --moderation; tests/e2e/test_soak.py).

Part way through the sending, a moderator blocks a term that some of the prompts carry (``/mod blockterm
add``) and bans one member (``/mod ban``), as a real one would: typing the command again until the bot
confirms it (it may be down, or answer that its database is busy). From the moment the moderator sees a
confirmation, the rule is absolute, kills and restarts notwithstanding: no command made after it by the
banned member, nor any carrying the blocked term, may become a job; nor may a reply the banned member
posts after it (bot/testing/soak_replies.py). ``problems`` names each one that did.
Commands made before the confirmation may go either way (one being recorded while the moderator typed
was legitimately accepted). With --pause, a moderator pauses image making in the whole server for a few seconds
(``/mod pause``, then ``/mod resume``: ``Pauser``): nothing made while it holds may become a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.soak import db_rows, job_prompt, jobs_by_interaction

# The term the moderator blocks; ``carries_term`` says which soak prompts have it.
BLOCKED_TERM = "pineapple"
# Every this-many-th prompt of a soak carries the term.
TERM_EVERY = 7
# How often the moderator types a command the bot did not confirm, and how long each waits for an answer.
ATTEMPTS = 12
ANSWER_WAIT = 10.0
# How long a --pause holds before the moderator lets image making go on.
PAUSE_SECONDS = 4.0


def with_term(prompt: str, index: int) -> str:
    """``prompt`` as the soak sends it: every TERM_EVERY-th one carries BLOCKED_TERM."""
    return f"{prompt} and a {BLOCKED_TERM}" if index % TERM_EVERY == TERM_EVERY - 1 else prompt


@dataclass
class Rule:
    """One moderator command: what it is, what the bot's confirmation says, and when the moderator saw it
    (monotonic clock, as FakeInteraction.created_at; None if the bot never confirmed it)."""

    command: str
    options: dict[str, object]
    confirmed_by: str
    confirmed_at: float | None = None
    confirmed_wall: float | None = None  # the same moment on the wall clock, as message ids carry it
    tries: list[str] = field(default_factory=list)  # what each unconfirmed attempt got


class Moderator:
    def __init__(self, discord_fake: FakeDiscord, banned: int) -> None:
        self.discord = discord_fake
        self.banned = banned
        self.block = Rule("mod blockterm add", {"term": BLOCKED_TERM}, "Blocked")
        self.ban = Rule("mod ban", {"member": banned, "reason": "soak"}, "can no longer use the bot")

    async def act(self, delay: float) -> None:
        """After ``delay`` s, block the term, then ban the member, each until the bot confirms it."""
        await asyncio.sleep(delay)
        for rule in (self.block, self.ban):
            await until_confirmed(self.discord, rule)

    def problems(
        self, db: Path, interactions: Iterable[FakeInteraction], replies: Iterable[FakeMessage] = ()
    ) -> list[str]:
        """Each command or press made after a rule was confirmed that it should have stopped, yet became a
        job: any by the banned member, and any whose job's prompt carries the term (a Re-roll or Vary of an
        older prompt, or an Edit typed with it, as well as a new command)."""
        columns = "interaction_id, id, batch_index, request_json"
        rows = jobs_by_interaction(db_rows(db, f"SELECT {columns} FROM jobs") if db.exists() else [])
        found = []
        for interaction in interactions:
            mine = rows.get(interaction.id)
            if not mine:
                continue
            made = interaction.created_at
            prompt = job_prompt(mine[0])
            ids = ", ".join(str(j["id"]) for j in mine)
            ban, block = self.ban.confirmed_at, self.block.confirmed_at
            if ban is not None and made > ban and interaction.user_id == self.banned:
                found.append(f"job(s) {ids}: made by the banned member {made - ban:.1f} s after the ban")
            if block is not None and made > block and BLOCKED_TERM in prompt:
                found.append(f"job(s) {ids}: {prompt!r} made {made - block:.1f} s after {BLOCKED_TERM!r} was blocked")
        return found + self._replies_after_the_ban(db, replies)

    def _replies_after_the_ban(self, db: Path, replies: Iterable[FakeMessage]) -> list[str]:
        banned_at = self.ban.confirmed_wall
        if banned_at is None or not db.exists():
            return []
        made = {
            int(r["reply_to_message_id"])
            for r in db_rows(db, "SELECT reply_to_message_id FROM jobs")
            if r["reply_to_message_id"] is not None
        }
        found = []
        for reply in replies:
            late = _made_at(reply) - banned_at
            if reply.author_id == self.banned and late > 0 and reply.id in made:
                found.append(f"reply {reply.id}: made a job, posted by the banned member {late:.1f} s after the ban")
        return found

    def lines(self, began: float) -> list[str]:
        """How the moderator's commands went, for a report (``began``: the soak's start, monotonic)."""
        return [_rule_line(rule, began) for rule in (self.block, self.ban)]


async def until_confirmed(discord_fake: FakeDiscord, rule: Rule) -> None:
    """Type ``rule``'s command as the moderator until the bot confirms it (ATTEMPTS at most)."""
    for _ in range(ATTEMPTS):
        try:
            asked = await discord_fake.slash_command(rule.command, rule.options, user_id=discord_fake.moderator_id)
        except TimeoutError:  # no bot on the gateway for a while: type it again once there is
            rule.tries.append("no bot")
            continue
        answer = await _answer(discord_fake, asked)
        if rule.confirmed_by in answer:
            rule.confirmed_at, rule.confirmed_wall = time.monotonic(), time.time()
            return
        rule.tries.append(answer[:80] or "no answer")
        await asyncio.sleep(1.0)


async def _answer(discord_fake: FakeDiscord, asked: FakeInteraction) -> str:
    """What the moderator reads: the answer's text once it is final ("" if none came)."""

    def text() -> str:
        message = discord_fake.messages.get(asked.original_message_id or -1)
        return "" if message is None or message.loading else (message.content or "")

    with contextlib.suppress(TimeoutError):
        await discord_fake.wait_for(lambda: bool(text()), timeout=ANSWER_WAIT)
    return text()


def _rule_line(rule: Rule, began: float) -> str:
    when = f"confirmed at {rule.confirmed_at - began:.1f} s" if rule.confirmed_at else "NEVER confirmed"
    tries = f" after {len(rule.tries)} unconfirmed ({'; '.join(rule.tries)})" if rule.tries else ""
    return f"moderator: /{rule.command} {when}{tries}"


def _made_at(reply: FakeMessage) -> float:
    """A member's message's time on the wall clock: its timestamp, not its id (an id carries whole milliseconds)."""
    return datetime.fromisoformat(reply.timestamp).timestamp()


class Pauser:
    """A moderator who pauses image making in the whole server (``/mod pause``) for PAUSE_SECONDS, then lets it go on
    (``/mod resume``), each typed until the bot confirms it. Between the pause's confirmation and the first try of
    the resume, no command, press or reply may become a job, kills and restarts notwithstanding (the pause is kept in
    SQLite); before and after, either way."""

    def __init__(self, discord_fake: FakeDiscord) -> None:
        self.discord = discord_fake
        self.pause = Rule("mod pause", {"reason": "soak"}, "Image making is paused")
        self.resume = Rule("mod resume", {}, "Image making goes on")
        self.resume_typed: float | None = None  # monotonic, as FakeInteraction.created_at
        self.resume_typed_wall: float | None = None

    async def act(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await until_confirmed(self.discord, self.pause)
        if self.pause.confirmed_at is None:
            return
        await asyncio.sleep(PAUSE_SECONDS)
        self.resume_typed, self.resume_typed_wall = time.monotonic(), time.time()
        await until_confirmed(self.discord, self.resume)

    def problems(
        self, db: Path, interactions: Iterable[FakeInteraction], replies: Iterable[FakeMessage] = ()
    ) -> list[str]:
        """Each command, press or reply made while the server was paused that became a job."""
        paused, paused_wall = self.pause.confirmed_at, self.pause.confirmed_wall
        if paused is None or paused_wall is None or not db.exists():
            return []
        until = self.resume_typed if self.resume_typed is not None else float("inf")
        until_wall = self.resume_typed_wall if self.resume_typed_wall is not None else float("inf")
        rows = jobs_by_interaction(db_rows(db, "SELECT interaction_id, id, batch_index, request_json FROM jobs"))
        found = [
            f"job(s) {', '.join(str(j['id']) for j in rows[i.id])}: made {i.created_at - paused:.1f} s into the pause"
            for i in interactions
            if rows.get(i.id) and paused < i.created_at < until
        ]
        made = {
            int(r["reply_to_message_id"])
            for r in db_rows(db, "SELECT reply_to_message_id FROM jobs")
            if r["reply_to_message_id"] is not None
        }
        found += [
            f"reply {reply.id}: made a job, posted {_made_at(reply) - paused_wall:.1f} s into the pause"
            for reply in replies
            if reply.id in made and paused_wall < _made_at(reply) < until_wall
        ]
        return found

    def lines(self, began: float) -> list[str]:
        return [_rule_line(self.pause, began), _rule_line(self.resume, began)]
