"""Moderation: the safety tolerance scale and its ceilings, each provider's ability to honour a level,
blocked terms (through bot.gate), bans and cooldowns, and the audit trail. No Discord here.

Scale: 1 (strictest) .. 6 (loosest), as Segmind and fal define it. The effective level of a job is
the channel's level if set, else the server's, else the config default, capped by the server's
ceiling for normal channels or, in age-restricted channels, by its NSFW ceiling.

Blocked word terms are kept in bot.gate's folded form (``kept_form``, digits as typed: ``kept_digits`` 1) and
compared by what they match (bot.gate's ``word_key``): "Dragon" after "dragon" is the same term, and removing
"dragon" removes every stored spelling of it, rows kept as typed before this rule included. Rows an older version
stored in bot.gate's ``normalise``'d form (``kept_digits`` 0: "1488" kept as "ia88") are read as it read them
(bot.gate ``Term.normalised``) and found by what was typed (``old_word_key``). A server blocks at most
``MAX_TERMS`` terms, counted in the transaction that adds one, and a word term is at most bot/gate.py
``MAX_WORD_TERM_CHARS`` characters long as typed when added: every prompt is searched for each. A prompt the gate
could not check in full (a term too slow on it, or the request's budget spent, bot/gate.py) is refused, never let
through, and the moderators are told which term was slow, or that the terms together took too long
(``on_slow_pattern``, at most once an hour for each). Every text of a request that goes to a provider is checked,
under one budget: its prompt, and the earlier prompts of the conversation it continues. A text the server's gate
passed in full lately is not checked again by the same gate (``_PassedTexts``): a conversation's earlier prompts
were each checked when they were asked, so a long conversation's budget goes to its new prompt.

Regex terms are compiled off the event loop, both when one is added and when a server's gate is built (the
first prompt after a change or a restart): a short pattern can take seconds to compile (bot/gate.py
``MAX_REGEX_PIECES``). A stored one too big to compile is left out of the gate, and the moderators are told
the same way, with no prompt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bot.errors import InvalidRequestError
from bot.gate import (
    DEFAULT_REGEX_TIMEOUT,
    MAX_WORD_TERM_CHARS,
    NOT_FINISHED,
    GateResult,
    PromptGate,
    RegexTooBigError,
    Term,
    compile_term,
    compile_term_timed,
    kept_form,
    old_word_key,
    regex_shape,
    slow_input,
    word_key,
)
from bot.models import JobState
from bot.providers.base import Capabilities
from bot.store import Database
from bot.store.kept import Kept

log = logging.getLogger(__name__)

MIN_LEVEL, MAX_LEVEL = 1, 6
DEFAULT_LEVEL = 3
DEFAULT_NORMAL_CEILING = 4
DEFAULT_NSFW_CEILING = 6

# Levels a provider can honour for a model. Where its API takes a safety level for that model
# (Capabilities.safety_knob: Segmind's Nano Banana 2 takes the level itself, Gemini maps it to
# safetySettings) it honours the whole scale. Without one (SeaArt, the Kie-style APIs, Segmind's Pro) the
# provider's own filters always apply and cannot be loosened, so only the strict-to-moderate levels are
# honoured there (with the bot's own prompt gate in front); a looser level is refused rather than
# silently ignored.
NO_KNOB_CEILING = 4


def honoured_levels(caps: Capabilities) -> range:
    """The safety levels this provider honours for this model (``caps``)."""
    return range(MIN_LEVEL, (MAX_LEVEL if caps.safety_knob else NO_KNOB_CEILING) + 1)


class BannedError(InvalidRequestError):
    """The member may not use the bot (ban or cooldown)."""


class PausedError(InvalidRequestError):
    """The moderators paused image making where the request was made (/mod pause)."""


class PromptBlockedError(InvalidRequestError):
    """The prompt hit a blocked term; nothing was sent or charged."""


class PromptUncheckedError(InvalidRequestError):
    """A regex term was too slow on the prompt, so it could not be checked in full: refused, not let through
    unchecked (a member who found a slow term could otherwise slip past it at will); nothing sent or charged."""

    user_message = (
        "Your prompt could not be checked against this server's blocked terms in time, so it was not sent "
        "(and you were not charged). The moderators have been told; a shorter or different prompt may get through."
    )


MAX_TERMS = 500
"""The most blocked terms a server may add: every prompt is searched for each (about 4 µs a word term on a prompt of
2,500 characters, up to 1.3 ms on one made to be slow for it). Terms stored before the bound still work."""

# A slow pattern is reported to the server's moderators at most once in this many seconds.
SLOW_REPORT_SECONDS = 3600.0

SlowPatternReport = Callable[[int, str | None, str | None], Awaitable[None]]
"""Tells a server's moderators (guild id, the pattern, the prompt it was slow on); cogs/moderation.py. No prompt:
a stored pattern too big to compile, left out of the gate. No pattern: no one term was too slow, but the request's
budget ran out before every term had run (bot/gate.py ``NOT_FINISHED``)."""


@dataclass(frozen=True, slots=True)
class GuildModeration:
    guild_id: int
    safety_level: int | None
    normal_ceiling: int
    nsfw_ceiling: int
    builtin_terms: bool
    log_channel_id: int | None


@dataclass(frozen=True, slots=True)
class Ban:
    user_id: int
    reason: str | None
    expires_at: float | None
    kind: str
    banned_by: int | None


# A pause's channel_id for the whole server (bot/store/migrations/0033_pauses.sql).
WHOLE_SERVER = 0


@dataclass(frozen=True, slots=True)
class Pause:
    channel_id: int  # WHOLE_SERVER, or the channel paused with its threads
    until_at: float | None  # None: until a moderator lifts it
    reason: str | None
    paused_by: int
    paused_at: float

    def refusal(self) -> str:
        """What a member whose request it refuses is told."""
        where = "in this server" if self.channel_id == WHOLE_SERVER else f"in <#{self.channel_id}>"
        until = f" until <t:{int(self.until_at)}:f>" if self.until_at is not None else ""
        why = f" ({self.reason})" if self.reason else ""
        paused = f"The moderators have paused image making {where}{until}{why}."
        return f"{paused} Nothing was made, and you were not charged."


def effective_level(
    guild: GuildModeration, channel_level: int | None, *, nsfw_channel: bool, default: int = DEFAULT_LEVEL
) -> int:
    """The level a job in this channel runs at: channel, else server, else default; capped by the ceiling."""
    level = channel_level if channel_level is not None else (guild.safety_level or default)
    ceiling = guild.nsfw_ceiling if nsfw_channel else guild.normal_ceiling
    # An NSFW ceiling never exceeds what the server allows at all; a normal channel never exceeds its own.
    return max(MIN_LEVEL, min(level, ceiling, MAX_LEVEL))


class _PassedTexts:
    """The texts a server's gate passed in full lately, by digest (at most ``keep`` of them, the latest kept).

    Every request checks its prompt and the earlier prompts of the conversation it continues under one budget
    (bot/gate.py ``check_all``). Each earlier prompt was checked when it was asked, so in a long conversation on
    a server with many regex terms the texts added up past the budget, and a reply was refused as "could not be
    checked in full" although every text of it had passed. Kept with the gate (``_BuiltGate``), so a change of
    the server's terms, which builds a new gate, checks every text again. Read and written on the event loop."""

    def __init__(self, keep: int = 256) -> None:
        self._keep = keep
        self._digests: OrderedDict[bytes, None] = OrderedDict()

    @staticmethod
    def _digest(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def __contains__(self, text: str) -> bool:
        digest = self._digest(text)
        if digest not in self._digests:
            return False
        self._digests.move_to_end(digest)
        return True

    def add(self, text: str) -> None:
        digest = self._digest(text)
        self._digests[digest] = None
        self._digests.move_to_end(digest)
        while len(self._digests) > self._keep:
            self._digests.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _BuiltGate:
    gate: PromptGate
    too_big: tuple[str, ...]  # stored regex terms left out as too big to compile, told to the moderators
    passed: _PassedTexts = field(default_factory=_PassedTexts)


# The verdict on a text the server's gate passed in full lately (``_PassedTexts``).
_PASSED = GateResult(False, None, "clean")

# The compile time past which a stored regex term is left out of a server's gate: ten times what a new term
# may take (bot/gate.py REGEX_COMPILE_LIMIT), so load on the host cannot silently drop a term that was taken.
STORED_COMPILE_LIMIT = 0.5


def _build_gate(guild_id: int, terms: list[Term], *, builtin: bool) -> _BuiltGate:
    """The server's gate from the stored terms it can use. One a moderator added under older rules may no longer
    compile (a term made only of a Hangul filler, which the gate now drops as invisible), or be too big to compile
    (stored before the bound, bot/gate.py ``MAX_REGEX_PIECES``): it is left out with a warning, not allowed to fail
    every prompt of the server nor stall it. Compiles every regex term: run it in a thread."""
    usable: list[Term] = []
    too_big: list[str] = []
    for term in terms:
        if not term.is_regex:
            # The gate compiles word terms itself (quickly: they are letters, not patterns), once: one with nothing
            # to match is all that could fail it.
            if word_key(term.text) is None:
                log.warning("guild %s: a stored blocked term cannot be used and is ignored: %r", guild_id, term.text)
            else:
                usable.append(term)
            continue
        try:
            # A term the add-time bound took once is not dropped for a slower moment of this host: only one
            # far past it (stored before the bound) is left out.
            compile_term_timed(term, limit=STORED_COMPILE_LIMIT)
        except RegexTooBigError as exc:
            log.warning("guild %s: the stored blocked regex %r is ignored: %s", guild_id, term.text, exc)
            too_big.append(term.text)
            continue
        except ValueError as exc:
            log.warning("guild %s: a stored blocked term cannot be used and is ignored: %s", guild_id, exc)
            continue
        usable.append(term)
    # Compiles them again, out of the `regex` module's cache of what it compiled just now.
    return _BuiltGate(PromptGate(usable, builtin=builtin), tuple(too_big))


def _tried_regex(term: Term) -> str | None:
    """A new regex term compiled, within bot/gate.py's bounds (RegexTooBigError), then tried on the inputs that
    make patterns backtrack (``slow_input``): one it is too slow on, or None. Up to 50 ms for each input tried, and
    a pattern the size check cannot judge may take long to compile: run it in a thread."""
    compile_term_timed(term)
    return slow_input(term)


def _slow_advice(text: str) -> str:
    """How to rewrite a regex term that was too slow on a probe, aimed at what makes it so (bot/gate.py
    ``regex_shape``): a pattern without a repeat inside a repeat is not told to remove one."""
    shape = regex_shape(text)
    if shape is None:  # written in a way the count does not read (verbose mode, fuzzy matching): no guess
        return (
            "Simplify it: fewer repeats (*, +, {m,n}) that can match the same letters, one after another or one "
            "inside another."
        )
    if shape.loose_repeat is not None:
        loose = shape.loose_repeat
        shown = (loose if len(loose) <= 60 else loose[:59] + "…").replace("`", "'")
        return (
            f"`{shown}` repeats a part that can match the same text in more than one way (a repeat, an optional "
            "part or alternatives inside a repeat), and the bot tries every way of sharing a prompt out among its "
            "turns. Rewrite it so text can match only one way: a+ finds what (a+)+ and (a|aa)+ find."
        )
    return (
        "Its repeats one after another can match the same letters (as .* matches any), and the bot tries every way "
        "of sharing a prompt out among them. Use fewer of them, or ones that cannot match the same letters."
    )


def _same_term(stored: list[Term], *terms: Term) -> list[Term]:
    """The stored terms that are ``terms``: a regex by its exact text, a word term by what it matches (``word_key``:
    "Dragon", "dragon", "d.r.a.g.o.n"), as well as any stored with exactly its text. One stored in bot/gate.py's
    ``normalise``'d form (``Term.normalised``) by what that form makes of them (``old_word_key``): "1488" is the
    stored "ia88", and typed again is no second row of it."""
    words = [t for t in terms if not t.is_regex]
    keys = {word_key(t.text) for t in words} - {None}
    old_keys = {old_word_key(t.text) for t in words} - {None}

    def same(s: Term) -> bool:
        if any(s == t for t in terms):
            return True
        if s.is_regex:
            return False
        return (old_word_key(s.text) in old_keys) if s.normalised else (word_key(s.text) in keys)

    return [s for s in stored if same(s)]


# A moderator term's row: kept_digits 0 is a word term an older version stored in normalise()'d form
# (bot/store/migrations/0018_kept_digits.sql).
_TERM_ROWS = "SELECT term, is_regex, kept_digits FROM blocked_terms WHERE guild_id = ? ORDER BY added_at, rowid"


def _term_of(row: Sequence[object]) -> Term:
    is_regex = bool(row[1])
    return Term(str(row[0]), is_regex, normalised=not is_regex and not row[2])


class ModerationStore:
    """Settings, terms, bans and the audit log in SQLite.

    Every /imagine reads the server's settings, its channel levels and its bans: each server's are kept
    in memory after the first read (bot/store/kept.py; three statements fewer per job, bench/load.py) and
    dropped whenever this store writes them. A ban's expiry is judged at each read.
    """

    def __init__(self, db: Database, *, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock
        # Each server's gate, built in a thread (compiling its regex terms can take a while) and kept until its
        # terms or settings change; a change while one is being built leaves that one unkept (bot/store/kept.py).
        self._gates: Kept[int, _BuiltGate] = Kept()
        self._guilds: Kept[int, GuildModeration] = Kept()
        self._levels: Kept[int, dict[int, int]] = Kept()  # guild -> channel -> level
        self._bans: Kept[int, dict[int, Ban]] = Kept()  # guild -> member -> ban, expired ones included
        self._pauses: Kept[int, dict[int, Pause]] = Kept()  # guild -> channel (WHOLE_SERVER) -> pause, lapsed too
        # Who tells moderators of a slow pattern (set by cogs/moderation.py), and when each was last told.
        self.on_slow_pattern: SlowPatternReport | None = None
        self._slow_told: dict[tuple[int, str | None], float] = {}

    async def guild(self, guild_id: int) -> GuildModeration:
        return await self._guilds.get(guild_id, lambda: self._read_guild(guild_id))

    async def _read_guild(self, guild_id: int) -> GuildModeration:
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT safety_level, normal_ceiling, nsfw_ceiling, builtin_terms, log_channel_id FROM mod_settings "
                "WHERE guild_id = ?",
                (guild_id,),
            ) as cur,
        ):
            row = await cur.fetchone()
        if row is None:
            return GuildModeration(guild_id, None, DEFAULT_NORMAL_CEILING, DEFAULT_NSFW_CEILING, True, None)
        return GuildModeration(
            guild_id,
            row[0],
            row[1] if row[1] is not None else DEFAULT_NORMAL_CEILING,
            row[2] if row[2] is not None else DEFAULT_NSFW_CEILING,
            bool(row[3]),
            row[4],
        )

    async def update_guild(self, guild_id: int, *, by: int, **changes: object) -> GuildModeration:
        allowed = {"safety_level", "normal_ceiling", "nsfw_ceiling", "builtin_terms", "log_channel_id"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown moderation settings: {sorted(unknown)}")
        now = self.clock()
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO mod_settings (guild_id, updated_by, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (guild_id) DO NOTHING",
                (guild_id, by, now),
            )
            for key, value in changes.items():
                await conn.execute(
                    f"UPDATE mod_settings SET {key} = ?, updated_by = ?, updated_at = ? WHERE guild_id = ?",
                    (value, by, now, guild_id),
                )
        self._guilds.wrote(guild_id)
        self._gates.wrote(guild_id)
        return await self.guild(guild_id)

    async def forget_log_channel(self, guild_id: int, channel_id: int) -> bool:
        """Stop posting to a log channel that was deleted; False if the server's log channel is another one by
        now (a moderator chose a new one meanwhile), which stays."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE mod_settings SET log_channel_id = NULL, updated_at = ? "
                "WHERE guild_id = ? AND log_channel_id = ?",
                (self.clock(), guild_id, channel_id),
            )
            forgotten = cur.rowcount > 0
        self._guilds.wrote(guild_id)
        return forgotten

    async def channel_level(self, guild_id: int, channel_id: int) -> int | None:
        levels = await self._levels.get(guild_id, lambda: self._read_levels(guild_id))
        return levels.get(channel_id)

    async def set_channel_level(self, guild_id: int, channel_id: int, level: int | None, *, by: int) -> None:
        async with self.db.transaction() as conn:
            if level is None:
                await conn.execute(
                    "DELETE FROM channel_safety WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
                )
            else:
                await conn.execute(
                    """INSERT INTO channel_safety (guild_id, channel_id, safety_level, updated_by, updated_at)
                       VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, channel_id) DO UPDATE SET
                       safety_level = excluded.safety_level, updated_by = excluded.updated_by,
                       updated_at = excluded.updated_at""",
                    (guild_id, channel_id, level, by, self.clock()),
                )
        self._levels.wrote(guild_id)

    async def channel_levels(self, guild_id: int) -> dict[int, int]:
        return dict(await self._levels.get(guild_id, lambda: self._read_levels(guild_id)))

    async def _read_levels(self, guild_id: int) -> dict[int, int]:
        async with (
            self.db.read() as conn,
            conn.execute("SELECT channel_id, safety_level FROM channel_safety WHERE guild_id = ?", (guild_id,)) as cur,
        ):
            rows = await cur.fetchall()
        return {int(r[0]): int(r[1]) for r in rows}

    # ---- blocked terms ----------------------------------------------------------------------

    async def terms(self, guild_id: int) -> list[Term]:
        """The server's terms, oldest first: the order (and so the numbers) /mod blockterm list shows."""
        async with self.db.read() as conn, conn.execute(_TERM_ROWS, (guild_id,)) as cur:
            rows = await cur.fetchall()
        return [_term_of(r) for r in rows]

    async def add_term(self, guild_id: int, term: Term, *, by: int) -> tuple[Term, bool]:
        """Block ``term``: returns the term as stored (a word term in the gate's folded form) and whether it
        is new; if not, the term returned is the one already stored that matches the same. Raises ValueError
        (shown to the moderator) for a pattern that does not compile, is too big to compile (bot.gate.RegexTooBigError)
        or is too slow (bot.gate.slow_input), a word term over MAX_WORD_TERM_CHARS, and a new term past MAX_TERMS."""
        if term.is_regex:
            # Compiled and tried in a thread: compiling alone can take seconds for a short pattern (refused before
            # compiling when bot/gate.py can count it), and each input tried up to 50 ms. Raises ValueError (shown
            # to the moderator) for a pattern that does not compile or is too big to.
            slow = await asyncio.to_thread(_tried_regex, term)
            if slow is not None:
                raise ValueError(
                    f"it takes over {DEFAULT_REGEX_TIMEOUT * 1000:.0f} ms on a prompt such as `{slow[:12]}…{slow[-1]}` "
                    f"({len(slow):,} characters), and a prompt the bot cannot check in time is refused. "
                    + _slow_advice(term.text)
                )
            stored = term
        else:
            compile_term(term)  # raises ValueError (shown to the moderator) for a term with nothing to match
            # Counted as typed (whitespace runs as one): folded, a ligature such as U+FDFA is 18 letters, and a term
            # of a few of them was refused as "108 characters long".
            typed = len(" ".join(term.text.split()))
            if typed > MAX_WORD_TERM_CHARS:
                raise ValueError(
                    f"it is {typed:,} characters long, and a word or phrase may be at most {MAX_WORD_TERM_CHARS} "
                    "(every prompt is searched for it, and the longer it is, the longer that can take). Block a "
                    "shorter part of it."
                )
            stored = Term(kept_form(term.text))
        # The count, the same-term check and the insert in one transaction: read before it, five moderators adding
        # at once with 499 terms stored all passed the count, and left 504.
        async with self.db.transaction() as conn:
            async with conn.execute(_TERM_ROWS, (guild_id,)) as cur:
                terms = [_term_of(r) for r in await cur.fetchall()]
            existing = _same_term(terms, stored)
            if existing:
                return existing[0], False
            if len(terms) >= MAX_TERMS:
                raise ValueError(
                    f"this server blocks {len(terms):,} terms already, the most it may ({MAX_TERMS:,}): every prompt "
                    "is searched for each. Remove some first (`/mod blockterm list`, `/mod blockterm remove`), or "
                    "join several into one regex."
                )
            cur = await conn.execute(
                "INSERT OR IGNORE INTO blocked_terms (guild_id, term, is_regex, kept_digits, added_by, added_at) "
                "VALUES (?, ?, ?, 1, ?, ?)",
                (guild_id, stored.text, int(stored.is_regex), by, self.clock()),
            )
            added = cur.rowcount > 0
        self._gates.wrote(guild_id)
        return stored, added

    async def remove_term(self, guild_id: int, text: str) -> list[Term]:
        """Stop blocking ``text``: the terms stored with exactly that text, and every word term that matches
        the same (whatever its case or spelling, as stored before word terms were normalised, or in an older
        version's normalised form: "1488" removes a stored "ia88"); if none has that text, every word term that
        matches what ``text`` would. Returns the terms removed."""
        stored = await self.terms(guild_id)
        exact = [t for t in stored if t.text == text]
        gone = _same_term(stored, *(exact or [Term(text)]))
        async with self.db.transaction() as conn:
            for term in gone:
                await conn.execute(
                    "DELETE FROM blocked_terms WHERE guild_id = ? AND term = ? AND is_regex = ?",
                    (guild_id, term.text, int(term.is_regex)),
                )
        self._gates.wrote(guild_id)
        return gone

    async def _build(self, guild_id: int) -> _BuiltGate:
        settings = await self.guild(guild_id)
        terms = await self.terms(guild_id)
        # Off the event loop: compiling a stored regex term can take long (one stored before bot/gate.py bounded
        # it held every member's commands 3 s and took 1.5 GB), and a server's first prompt after a change or a
        # restart builds its gate.
        return await asyncio.to_thread(_build_gate, guild_id, terms, builtin=settings.builtin_terms)

    async def check_prompt(self, guild_id: int, prompt: str) -> GateResult:
        """The gate's verdict on ``prompt`` alone (:meth:`check_prompts`)."""
        verdict, _ = await self.check_prompts(guild_id, prompt)
        return verdict

    async def check_prompts(self, guild_id: int, prompt: str, earlier: Sequence[str] = ()) -> tuple[GateResult, str]:
        """The gate's verdict on a request's texts: ``prompt``, then ``earlier`` (the prompts of the conversation it
        continues, which go to the provider with it), all under one budget (bot/gate.py ``check_all``), and the text
        it is about: the one blocked, else the prompt. Raises PromptUncheckedError when a text could not be checked
        in full before any was blocked (a term too slow on it, the budget spent, a text too long), after telling the
        moderators which term was slow, or that the terms together took too long. A stored term too big to compile
        is left out and the moderators told, like a slow one (at most once an hour)."""
        built = await self._gates.get(guild_id, lambda: self._build(guild_id))
        for pattern in built.too_big:
            await self._tell_slow(guild_id, pattern, None)
        texts = [text for text in dict.fromkeys([prompt, *earlier]) if text not in built.passed]
        if not texts:
            return _PASSED, prompt
        # Off the event loop: the request's texts may take up to its budget (bot/gate.py), regex terms on any prompt
        # and word terms on one made to be slow for them, so every other member's command goes on meanwhile.
        verdicts = await asyncio.to_thread(built.gate.check_all, texts)
        for passed, text in verdicts:
            if not passed.blocked and passed.finished:
                built.passed.add(text)
        # Up to the first blocked or unfinished text, which ends the check: only the last can be either.
        verdict, text = verdicts[-1]
        for pattern in verdict.slow_patterns:
            await self._tell_slow(guild_id, pattern, text)
        if verdict.blocked:
            return verdict, text
        if verdict.finished:
            return (verdicts[0][0] if verdicts[0][1] == prompt else _PASSED), prompt
        if not verdict.slow_patterns and verdict.reason == NOT_FINISHED:
            # No term was slow on its own bound: the budget ran out with terms unrun. Not one of them is named (the
            # first of those never ran, and was told as "took too long"): the terms together took too long.
            await self._tell_slow(guild_id, None, text)
        raise PromptUncheckedError(detail=f"guild {guild_id}: a prompt not checked in full ({verdict.reason})")

    async def prompt_author(self, guild_id: int, prompt: str) -> int | None:
        """Who asked for ``prompt`` in the server: the member of its latest image delivered there (an earlier prompt
        of a conversation a reply, an Edit or a Re-roll continues, which holds no one's name; cogs/policy.py), as
        moderation judged it (its request's ``member_words``, else its prompt). None
        when none of the server's latest images had it. Among the latest 5,000 only: read when a prompt is refused
        for its conversation, which must not take long however many images the server has."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT user_id FROM (SELECT user_id, request_json FROM jobs WHERE guild_id = ? AND state = ? "
                "ORDER BY created_at DESC LIMIT 5000) "
                "WHERE coalesce(json_extract(request_json, '$.member_words'), json_extract(request_json, '$.prompt')) "
                "= ? LIMIT 1",
                (guild_id, JobState.DELIVERED.value, prompt),
            ) as cur,
        ):
            row = await cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    async def _tell_slow(self, guild_id: int, pattern: str | None, prompt: str | None) -> None:
        """Tell the moderators that ``pattern`` was slow on ``prompt`` (None: too big to compile, so left out; no
        pattern: the terms together took too long on it), unless they were told within SLOW_REPORT_SECONDS (here, or
        before a restart: the audit log keeps each report, its reason the pattern, NULL for the terms together)."""
        now = self.clock()
        key = (guild_id, pattern)
        if now - self._slow_told.get(key, float("-inf")) < SLOW_REPORT_SECONDS:
            return
        self._slow_told[key] = now  # before any await: prompts checked meanwhile do not tell it again
        report = self.on_slow_pattern
        if report is None:
            return
        try:
            async with (
                self.db.read() as conn,
                conn.execute(
                    "SELECT 1 FROM audit_log WHERE guild_id = ? AND action = 'slow_pattern' AND reason IS ? "
                    "AND created_at >= ? LIMIT 1",
                    (guild_id, pattern, now - SLOW_REPORT_SECONDS),
                ) as cur,
            ):
                if await cur.fetchone() is not None:
                    return
            await report(guild_id, pattern, prompt)
        except Exception:
            # The prompt's own refusal matters more than the report: it goes on, the failure is logged.
            log.exception("guild %s: could not report the slow blocked pattern %r", guild_id, pattern)

    # ---- bans -------------------------------------------------------------------------------

    async def ban(
        self,
        guild_id: int,
        user_id: int,
        *,
        reason: str | None,
        expires_at: float | None,
        by: int | None,
        kind: str = "ban",
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO bans (guild_id, user_id, reason, expires_at, kind, banned_by, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE SET
                   reason = excluded.reason, expires_at = excluded.expires_at, kind = excluded.kind,
                   banned_by = excluded.banned_by, created_at = excluded.created_at""",
                (guild_id, user_id, reason, expires_at, kind, by, self.clock()),
            )
        self._bans.wrote(guild_id)

    async def unban(self, guild_id: int, user_id: int) -> bool:
        async with self.db.transaction() as conn:
            cur = await conn.execute("DELETE FROM bans WHERE guild_id = ? AND user_id = ?", (guild_id, user_id))
            removed = cur.rowcount > 0
        self._bans.wrote(guild_id)
        return removed

    async def active_ban(self, guild_id: int, user_id: int) -> Ban | None:
        bans = await self._bans.get(guild_id, lambda: self._read_bans(guild_id))
        ban = bans.get(user_id)
        return ban if ban is not None and (ban.expires_at is None or ban.expires_at > self.clock()) else None

    async def _read_bans(self, guild_id: int) -> dict[int, Ban]:
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT user_id, reason, expires_at, kind, banned_by FROM bans WHERE guild_id = ?", (guild_id,)
            ) as cur,
        ):
            rows = await cur.fetchall()
        return {int(r[0]): Ban(r[0], r[1], r[2], r[3], r[4]) for r in rows}

    async def bans(self, guild_id: int) -> list[Ban]:
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT user_id, reason, expires_at, kind, banned_by FROM bans WHERE guild_id = ? "
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at",
                (guild_id, self.clock()),
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [Ban(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    # ---- pauses ------------------------------------------------------------------------------

    async def pause(
        self, guild_id: int, channel_id: int, *, until_at: float | None, reason: str | None, by: int
    ) -> None:
        """Pause image making in the server (``WHOLE_SERVER``) or a channel; a pause there already is replaced."""
        async with self.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO pauses (guild_id, channel_id, until_at, reason, paused_by, paused_at)
                   VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, channel_id) DO UPDATE SET
                   until_at = excluded.until_at, reason = excluded.reason, paused_by = excluded.paused_by,
                   paused_at = excluded.paused_at""",
                (guild_id, channel_id, until_at, reason, by, self.clock()),
            )
        self._pauses.wrote(guild_id)

    async def resume(self, guild_id: int, channel_id: int) -> bool:
        """Lift the pause of the server or a channel; False if none was in force there."""
        in_force = any(p.channel_id == channel_id for p in await self.pauses(guild_id))
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM pauses WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id))
        self._pauses.wrote(guild_id)
        return in_force

    async def pauses(self, guild_id: int) -> list[Pause]:
        """The pauses in force in the server: the whole server's first, then the channels' as they were made."""
        kept = await self._pauses.get(guild_id, lambda: self._read_pauses(guild_id))
        now = self.clock()
        live = [p for p in kept.values() if p.until_at is None or p.until_at > now]
        return sorted(live, key=lambda p: (p.channel_id != WHOLE_SERVER, p.paused_at))

    async def pause_at(self, guild_id: int, channel_id: int | None, parent_id: int | None) -> Pause | None:
        """The pause that holds where a request is made: the server's, else its channel's (a thread's: its own, else
        its parent channel's)."""
        places = (WHOLE_SERVER, channel_id, parent_id)
        return next((p for p in await self.pauses(guild_id) if p.channel_id in places), None)

    async def _read_pauses(self, guild_id: int) -> dict[int, Pause]:
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT channel_id, until_at, reason, paused_by, paused_at FROM pauses WHERE guild_id = ?", (guild_id,)
            ) as cur,
        ):
            rows = await cur.fetchall()
        return {int(r[0]): Pause(int(r[0]), r[1], r[2], int(r[3]), float(r[4])) for r in rows}

    # ---- audit ------------------------------------------------------------------------------

    async def audit(
        self,
        guild_id: int,
        action: str,
        *,
        actor_id: int | None = None,
        target_id: int | None = None,
        channel_id: int | None = None,
        job_id: str | None = None,
        prompt: str | None = None,
        reason: str | None = None,
        summary: str | None = None,
    ) -> None:
        """Keep an event in the audit log; ``summary``: its words as the moderation log posts them (/mod log shows
        them, bot/audit_log.py)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO audit_log (guild_id, action, actor_id, target_id, channel_id, job_id, prompt, reason,
                       summary, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (guild_id, action, actor_id, target_id, channel_id, job_id, prompt, reason, summary, self.clock()),
            )

    async def recent_provider_blocks(self, guild_id: int, user_id: int, since: float) -> int:
        """The member's prompts a provider's filter blocked since ``since``: the candidates of one ``/imagine
        count`` (a batch, one prompt sent once) count as one, as they are one request to the in-flight limit.
        Counted by audit row, one blocked batch of three put its member on a cooldown at the default limit."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT COUNT(DISTINCT COALESCE(jobs.batch_id, audit_log.job_id, 'row ' || audit_log.id)) "
                "FROM audit_log LEFT JOIN jobs ON jobs.id = audit_log.job_id "
                "WHERE audit_log.guild_id = ? AND audit_log.target_id = ? AND audit_log.action = 'provider_block' "
                "AND audit_log.created_at >= ?",
                (guild_id, user_id, since),
            ) as cur,
        ):
            row = await cur.fetchone()
        return int(row[0]) if row else 0
