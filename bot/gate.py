"""Prompt gate: the pure, synchronous core that checks a prompt against a server's blocked terms.

Moderators block terms per server (issue 5); the bot runs :meth:`PromptGate.check` on every prompt
BEFORE any quota reservation or provider call, so a blocked prompt costs nothing. Nothing here knows
about Discord or the database: callers build a :class:`PromptGate` from stored :class:`Term` rows
(and cache it until the terms change, since compiling is the expensive part).

Prompts are folded before they are compared (case, full-width letters, accents, look-alike letters, zero-width
characters). Word terms are compared with the prompt's :func:`word_form`: its words (only whitespace parts two words;
marks, symbols and emoji inside a word are seen through: "lo.li", "n💦sfw"), digits read as letters inside a word
with a letter ("s3x", "k1ll", a 1 for l or i) but a number standing alone kept a number ("a 55 gallon drum"). A word
term matches whole words only, each of its words written together or spelled out one letter at a time ("N.S.F.W",
"n s f w"), never two ordinary words joined ("lol i" is not "loli"). Letters with a stroke ("ł", "ø") are read as
plain letters for the built-in list alone: they are letters of real alphabets ("gøre" is Danish). Regex terms are
searched in :func:`normalise`'d form (leetspeak and look-alikes undone) and, a pattern that can tell the two apart
(digits, non-ASCII letters: :func:`_reads_as_typed`), as typed too (:func:`light_form`), a match in either blocking.
Every term runs under time bounds, in the checking thread's own CPU time (other busy threads do not make a pattern
slow; ``STOP_AFTER`` stops a regex search): each term at most ``regex_timeout`` on a prompt, and all of them together
at most ``prompt_budget`` for all the texts of one request (:meth:`PromptGate.check_all`: a prompt and the earlier
prompts of its conversation), folding them included, so many slow terms or texts cannot add up (60 regex terms once
held one prompt 3 s; 30 word terms of 1,000 letters 3.4 s; nine texts each with its own budget 1.7 s). A term that
hit a bound is named in the verdict (``slow_patterns``), and the terms the budget left unrun too (``unchecked``):
what to do with a prompt that could not be checked in full is the caller's decision (bot/moderation.py refuses
it). :func:`slow_input` tries a new regex term on the inputs that make patterns backtrack without end, before a
moderator's term is stored; a word term cannot backtrack, and its length is bounded when it is added
(``MAX_WORD_TERM_CHARS``).

Compiling is bounded too: the `regex` module writes counted repeats out when it compiles, so a short pattern
can take seconds and gigabytes to compile. :func:`regex_shape` counts what a pattern writes out before it is
compiled, and one that comes to over ``MAX_REGEX_PIECES`` is refused (:class:`RegexTooBigError`);
:func:`compile_term_timed` bounds the compile of one it cannot count.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import regex

from bot.prompts import INVISIBLE_LETTERS
from bot.thread_cpu import counting_own_work, work_time

log = logging.getLogger(__name__)

DEFAULT_REGEX_TIMEOUT = 0.05
"""Seconds one regex term may spend on one prompt; a moderator's pattern must never stall the bot."""

DEFAULT_PROMPT_BUDGET = 0.25
"""Seconds all of a server's regex terms together may spend on one prompt: the bound per term alone let
many slow terms add up (100 terms of 50 ms, 5 s for one prompt)."""

PROBE_CHARS = 1000
"""How long the inputs :func:`slow_input` tries are. Long enough that a pattern that backtracks without end
takes far over its bound ((a|aa)+$ takes 0.6 s on 30 letters, (\\w+\\s?)+$ 0.4 s on 500), short enough that an
ordinary pattern whose time grows with the square of the prompt takes a small part of it: (sex|porn).*(teen|young)
takes about 4 ms on 1,000 characters of its own letters, but 140 ms on 6,000 (the longest prompt, PROMPT_MAX_CHARS
in cogs/imagine.py), and probing at that length refused it. A pattern slow only on a prompt that long still
meets the bounds when prompts are checked: that prompt is refused, never let through."""

MAX_WORD_TERM_CHARS = 100
"""The longest word term a moderator may add (bot/moderation.py), in characters as typed (a ligature such as U+FDFA,
18 letters once folded, is one character to whoever typed it). A word
term's search costs up to its length times the prompt's: 30 terms of 1,000 letters held one prompt of 6,000
characters of spaced-out letters 3.4 s. At 100, a search takes at most about 1.3 ms (10 ms at 1,000). Terms stored
longer before still work, within the prompt's budget like every other term."""

MAX_FOLDED_CHARS = 12_000
"""The longest a text may come to once folded (NFKC) for the gate to check it: twice the longest prompt
(PROMPT_MAX_CHARS in cogs/imagine.py). Ordinary text of any script folds to about its own length; only
compatibility characters written over and over go past it (6,000 of U+FDFA come to 108,000 letters, and folding and
searching that held one text 0.4 s). A longer one is not checked (``GateResult.unchecked``): refused, never let
through."""

MAX_REGEX_PIECES = 10_000
"""The most pieces a regex term may come to once its counted repeats are written out (:func:`regex_shape`).
The `regex` module writes them out when it compiles: (?:(?:a{1000}){1000}){5}, 24 characters, took the bot
from 91 MB to 1.6 GB and 3 s to compile, on the event loop. 10,000 pieces compile in a few milliseconds, and
no pattern meant to find words needs more."""

STOP_AFTER = 3
"""A regex search is stopped once the whole process has spent this many times its bound in CPU during it, and
a prompt's check once this many times its budget has gone by. The bounds above count the searching thread's
own CPU time, but the `regex` module's timeout, which stops a search, counts the process's (C's clock()):
with the event loop or other checks busy in other threads it ran out two or three times as fast, and an
ordinary pattern was refused when added, or a prompt refused as not checked in time, whenever the bot was
busy. Three times leaves two other busy threads their share, while a search that never ends costs at most
three times its bound (150 ms) before it is stopped."""

STOP_TRIES = 3
"""How many times a search stopped before its thread had used half its bound is run, each time with twice the
stop of the try before (:func:`_bounded_search`): a search held up by the other threads gets through, while one
that never ends costs at most 1 + 2 + 4 times its stop (1.05 s of the process's CPU) even when it too is held up."""

REGEX_COMPILE_LIMIT = 0.05
"""Seconds of CPU one regex term may take to compile (:func:`compile_term_timed`): the bound for a pattern
:func:`regex_shape` cannot count. Counted in the compiling thread's own CPU time, so a busy machine does not
make an ordinary pattern look slow."""

# At most this many of a pattern's own letters are tried as runs (each run is one or two searches).
_PROBE_LETTERS = 12

BUILTIN_TERMS: tuple[str, ...] = (
    # Deliberately minimal: only terms for child sexual abuse material, which no server should allow.
    # Servers can turn the list off (``PromptGate(..., builtin=False)``) and manage their own terms.
    "csam",
    "child porn",
    "child pornography",
    "child sexual abuse material",
    "loli",
    "lolicon",
    # Two words, so "shota con" too; a word term's words may be together ("shotacon") or apart. "loli con" needs no
    # term of its own: "loli" is a whole word in it.
    "shota con",
)

# Look-alike characters mapped to the Latin letter they imitate. Kept small and explicit on purpose:
# a full confusables table (Unicode TR39) would also rewrite legitimate non-Latin text, and every
# entry here widens what word terms can match. Applied after casefolding, so lower case suffices.
_LOOKALIKES: dict[str, str] = {
    # Cyrillic
    "а": "a",
    "в": "b",
    "е": "e",
    "ё": "e",
    "к": "k",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "с": "c",
    "т": "t",
    "у": "y",
    "х": "x",
    "ѕ": "s",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "ԁ": "d",
    "һ": "h",
    "ӏ": "l",
    # Greek
    "α": "a",
    "β": "b",
    "ε": "e",
    "η": "n",
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    # Latin letters that casefolding leaves alone but that read as plain letters; "ı" also keeps
    # the verdict independent of case, since "ı".upper() == "I", which folds to "i".
    "ı": "i",
    "ĸ": "k",
    # Small capitals: NFKC and casefolding leave them alone, and they read as the letter ("ʟoli").
    "ᴀ": "a",
    "ʙ": "b",
    "ᴄ": "c",
    "ᴅ": "d",
    "ᴇ": "e",
    "ꜰ": "f",
    "ɢ": "g",
    "ʜ": "h",
    "ɪ": "i",
    "ᴊ": "j",
    "ᴋ": "k",
    "ʟ": "l",
    "ᴍ": "m",
    "ɴ": "n",
    "ᴏ": "o",
    "ᴘ": "p",
    "ꞯ": "q",
    "ʀ": "r",
    "ꜱ": "s",
    "ᴛ": "t",
    "ᴜ": "u",
    "ᴠ": "v",
    "ᴡ": "w",
    "ʏ": "y",
    "ᴢ": "z",
    # Symbols used as letters (leetspeak): not letters or digits, they would otherwise split a word ("a$$").
    "@": "a",
    "$": "s",
}

# Digits used as letters (leetspeak). normalise() reads them so everywhere; word terms only inside a word with a
# letter in it, or spelled out among single letters ("n 5 f w"), never in a number standing alone (word_form).
_LEET_DIGITS: dict[str, str] = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"}


def _letters_with_marks() -> dict[str, str]:
    """Latin letters with a stroke, bar, hook or other mark drawn through or onto them, which Unicode does not
    decompose, so dropping accents after NFKD leaves them whole ("ł", "ø", "đ", "ħ", "ŧ", "ɨ", "ƀ", "ɗ"): each
    mapped to its plain letter, as an accented letter is. Read from the characters' names (every "LATIN SMALL
    LETTER L WITH STROKE" and the like that NFKD leaves alone), so none of the many is left out by hand."""
    table: dict[str, str] = {}
    for code in (code for first, last in _LATIN_BLOCKS for code in range(first, last + 1)):
        char = chr(code)
        named = _MARKED_LETTER.fullmatch(unicodedata.name(char, ""))
        if named is not None and unicodedata.normalize("NFKD", char) == char:
            table[char] = named[1].lower()
    return table


_MARKED_LETTER = re.compile(r"LATIN (?:SMALL|CAPITAL) LETTER ([A-Z]) WITH .+")
# The blocks that hold Latin letters beyond ASCII (Latin-1 Supplement to IPA Extensions, Phonetic Extensions and
# their Supplement, Latin Extended Additional, -C, -D, -E, -F and -G): reading every character's name took 0.2 s.
_LATIN_BLOCKS = (
    (0x0080, 0x02AF),
    (0x1D00, 0x1DBF),
    (0x1E00, 0x1EFF),
    (0x2C60, 0x2C7F),
    (0xA720, 0xA7FF),
    (0xAB30, 0xAB6F),
    (0x10780, 0x107BF),
    (0x1DF00, 0x1DFFF),
)
_FOLD_TABLE = str.maketrans(_LOOKALIKES)
# Letters with a stroke, read as plain letters for the built-in list only (PromptGate.check_all). They are letters of
# real alphabets: folded for every term, "gore" blocked the Danish "hvad skal jeg gøre", "dod" "en død fugl", and a
# moderator who means "gøre" can block it as typed. The built-in terms are no words of those languages, and "łoli"
# or "ł0łi" is an evasion of one.
_STROKE_TABLE = str.maketrans(_letters_with_marks())
_DIGIT_TABLE = str.maketrans(_LEET_DIGITS)
# Inside a word of a prompt, the leet digits but 1, which stands for l as often as for i ("ki11", "1o1i"): it is
# kept, and a word term's pattern takes it for either (_letter_piece).
_WORD_DIGIT_TABLE = str.maketrans({digit: letter for digit, letter in _LEET_DIGITS.items() if digit != "1"})
# A number standing alone in a prompt ("a 55 gallon drum") is written in full-width digits in word_form: no letter
# of a word term matches them, while a number in a word term is looked for in them (_number_piece).
_NUMBER_TABLE = str.maketrans({str(digit): chr(0xFF10 + digit) for digit in range(10)})

# A word: a run of letters and digits, as str.isalnum reads them ("_" is punctuation here).
_WORD = re.compile(r"[^\W_]+")
# What is neither a letter or digit nor whitespace: marks, symbols and emoji ("_" among them).
_MARKS = re.compile(r"(?:[^\w\s]|_)+")
# What word_form writes for the marks inside a word ("lo.li", "n💦sfw", "shota-con"): a word term's letters may have
# one between any two of them, and a word may begin or end there ("very.nsfw", "nsfw's").
_JOIN = "-"


@dataclass(frozen=True, slots=True)
class _Marks:
    """How a word term's pattern finds what lies between words, in the text it searches."""

    apart: str  # between the letters of a word spelled out ("n s f w", "l o l i")
    within: str  # between the letters of a word written together ("lo.li", "n-sfw")
    between: str  # between the words of a term: any separators, or none ("blood-bath", "bloodbath")
    after_start: str  # after a term's first letter: it began a word
    end: str  # after its last: a word ends there


# Word boundaries use the same notion of "letter or digit" as the separators, so "class" is one word and "ass"
# inside it is not a match. The start check sits AFTER the term's first letter (a two-character lookbehind) rather
# than before it: a pattern that begins with a literal lets the engine skip ahead to candidate positions, many
# times faster than one that begins with a lookbehind. Possessive separators: a failed match never backtracks into
# them.
_IN_ANY_TEXT = _Marks(apart=r"[\W_]++", within="", between=r"[\W_]*+", after_start=r"(?<![^\W_].)", end=r"(?![^\W_])")
# In word_form, where one space (whitespace typed) or one _JOIN (marks inside a word) is all that ever lies between
# two pieces: a search took ten times as long over [\W_] as over a space (12 ms against 1.3 ms for a term of 100
# letters on 6,000 characters of spaced-out ones). A word is spelled out over spaces and written together over
# _JOIN or nothing: the two never match the same text, so a term still matches at any place in one way only
# (_word_term_search).
_IN_WORD_FORM = _Marks(apart=" ", within=r"\-?", between=r"[ \-]?", after_start=r"(?<![^ \-].)", end=r"(?![^ \-])")


# Invisible characters Unicode counts as letters (Default_Ignorable_Code_Point, category Lo): the Hangul
# fillers. As letters they would join a word rather than split it ("l\u3164oli"), so no separator-tolerant
# term could see through them; they are dropped with the format characters. (Variation selectors and the
# combining grapheme joiner, ignorable too, are nonspacing marks, dropped after NFKD.) The list is
# bot/prompts.py's, whose emptiness test counts them as nothing too.
_INVISIBLE_LETTERS = INVISIBLE_LETTERS


# Category Cf: zero-width space/joiners, BOM, soft hyphen, bidi controls, tags. Invisible, so they only ever serve to
# split a word without the reader seeing it. As one set of the `regex` module's, and the nonspacing marks (Mn) too:
# a loop over the characters took ten times as long (1.6 ms on 6,000 of them), on every text of every request. Its
# Unicode tables are newer than unicodedata's: a format character or mark assigned since is dropped too.
_FORMAT = regex.compile("[\\p{Cf}" + "".join(map(regex.escape, sorted(_INVISIBLE_LETTERS))) + "]+")
_NONSPACING = regex.compile(r"\p{Mn}+")


def _strip_format(text: str) -> str:
    return _FORMAT.sub("", text)


def _fold_once(text: str) -> str:
    if text.isascii():
        # What the steps below come to on ASCII, which has no format characters or marks, and which NFKC and NFKD
        # leave alone (most prompts): ten times as fast.
        return " ".join(text.lower().translate(_FOLD_TABLE).split())
    text = _strip_format(text)
    # NFKC first so compatibility forms (full-width "ｎ", ligatures, circled letters) become plain
    # letters before casefolding; casefold rather than lower handles "ß" -> "ss" and friends.
    text = unicodedata.normalize("NFKC", text).casefold()
    # Decompose and drop nonspacing marks: "ẃ" -> "w". Casefold can introduce marks ("İ" -> "i̇"),
    # so this has to come after it.
    text = _NONSPACING.sub("", unicodedata.normalize("NFKD", text))
    text = text.translate(_FOLD_TABLE)
    return " ".join(text.split())


def _fold(text: str) -> str:
    """:func:`normalise` but for the digits, which are left as they are."""
    # Unicode steps do not always reach a fixed point in one pass (NFKC can recompose what NFKD
    # split, e.g. Hangul), so repeat until stable; in practice the second pass changes nothing.
    for _ in range(4):
        again = _fold_once(text)
        if again == text:
            break
        text = again
    return text


def normalise(text: str) -> str:
    """The form prompts are compared with regex terms in (besides :func:`light_form`).

    NFKC, casefold, accents stripped, look-alikes and leetspeak (every 0 1 3 4 5 7 @ $) mapped to Latin letters,
    format characters (zero-width, soft hyphen, BOM) removed, whitespace collapsed to single spaces. Letters with a
    stroke ("ł", "ø") are left as they are: letters of real alphabets (``_STROKE_TABLE``). Idempotent:
    ``normalise(normalise(s)) == normalise(s)``.
    """
    return _fold(text).translate(_DIGIT_TABLE)


def kept_form(text: str) -> str:
    """How a word term is kept: folded as :func:`normalise` folds it (case, accents, look-alikes, invisible
    characters), its digits as typed, since a number in a term stays a number (:func:`word_form`)."""
    return _fold(text)


@dataclass(frozen=True, slots=True)
class _Forms:
    """A text folded once for every search of it (:meth:`PromptGate.check_all`)."""

    folded: str  # _fold(text): word_form and normalise are made from it
    light: str  # light_form(text)


def _forms(text: str) -> _Forms | None:
    """``text`` folded (:func:`kept_form`) and as typed (:func:`light_form`), or None when it is longer than
    ``MAX_FOLDED_CHARS`` once its compatibility characters are written out, told before anything longer is done."""
    if text.isascii():
        # NFKC and casefolding leave ASCII as it is, and nothing in it is a format character or a mark.
        if len(text) > MAX_FOLDED_CHARS:
            return None
        light = " ".join(text.lower().split())
        return _Forms(light.translate(_FOLD_TABLE), light)
    composed = unicodedata.normalize("NFKC", _strip_format(text))
    if len(composed) > MAX_FOLDED_CHARS:
        return None
    light = " ".join(composed.casefold().split())
    # Folding what light_form wrote comes to what folding the text does (_fold repeats to a fixed point), without
    # doing its first steps again.
    return _Forms(_fold(light), light)


def light_form(text: str) -> str:
    """The prompt as typed, for regex terms: NFKC, casefolded, format and invisible characters removed, whitespace
    collapsed, and nothing more. :func:`normalise` rewrites digits, accents and Cyrillic or Greek letters, so a
    pattern written for them (``\\b1[0-7] ?yo\\b``, ``секс``) could never match there; a regex term that can tell
    the two apart (:func:`_reads_as_typed`) is searched in both forms, and a match in either blocks."""
    if text.isascii():
        # What the steps below come to on ASCII, which has no format characters and which NFKC leaves alone (most
        # prompts; /jobs search: folds up to 5,000 of them per word): three times as fast.
        return " ".join(text.lower().split())
    return " ".join(unicodedata.normalize("NFKC", _strip_format(text)).casefold().split())


@dataclass(frozen=True)
class Term:
    """One blocked term as a moderator entered it."""

    text: str
    is_regex: bool = False
    normalised: bool = field(default=False, compare=False)
    """A word term an older version stored in :func:`normalise`'d form, every 0 1 3 4 5 7 written as o i e a s t
    ("1488" kept as "ia88", "under 18" as "under i8"): its o i e a s t are read as those letters or digits, as that
    version read them (:func:`_word_ways`), so that it blocks what it blocked then. The same term whichever it is
    (``==``): what it is, not how it is kept (bot/moderation.py, bot/store/migrations/0018_kept_digits.sql)."""


@dataclass(frozen=True)
class GateResult:
    """The verdict for one prompt.

    ``term`` is the blocking term as entered (None when not blocked); ``slow_patterns`` lists terms that hit
    their own time bound, so moderators can be told to fix them even when the prompt passes; ``unchecked`` the
    terms never run (or cut short) because the request's budget was spent, or every term when the text was too long
    to check (``MAX_FOLDED_CHARS``, reason ``TOO_LONG``). With either, a prompt not blocked was not checked in full.
    """

    blocked: bool
    term: str | None
    reason: str
    slow_patterns: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        """Whether every term had its say: none too slow, none left unrun."""
        return not self.slow_patterns and not self.unchecked


@dataclass(frozen=True)
class CompiledTerm:
    """A term and the pattern that finds it in a normalised prompt."""

    term: Term
    pattern: re.Pattern[str] | regex.Pattern[str]


class RegexTooBigError(ValueError):
    """A regex term too big to compile without stalling the bot (MAX_REGEX_PIECES, REGEX_COMPILE_LIMIT). Stored
    ones are left out of the gate and the moderators told (bot/moderation.py)."""


@dataclass(frozen=True)
class RegexShape:
    """What :func:`regex_shape` reads in a pattern without compiling it."""

    pieces: int
    """How many pieces the pattern comes to once its counted repeats are written out, as the `regex` module
    does when it compiles: each letter, escape, set and group one, times the counts of the repeats around it.
    A count's upper bound is taken ({0,1000} as 1000), or its lower one when it has none ({5,} as 5); + and *
    write nothing out, so count one."""
    loose_repeat: str | None
    """The first repeat (of more than one turn) of a group that can itself match the same text in more than one
    way, having a repeat, an optional part or alternatives inside, as written: `(a|aa)+`, `(\\w+\\s?)+`. Such
    a repeat can share a text out among its turns in very many ways, and trying them all is what makes a
    pattern backtrack without end. None when the pattern has none."""


class _Run:
    """The inside of one group (or the whole pattern) as :func:`regex_shape` reads it."""

    __slots__ = ("last", "last_loose", "last_start", "loose", "pieces", "start")

    def __init__(self, start: int) -> None:
        self.start = start  # where its "(" is
        self.pieces = 0
        self.loose = False  # holds a repeat, an optional part or alternatives
        self.last = 0  # pieces of the item a quantifier after it repeats; 0 when there is none
        self.last_start = start
        self.last_loose = False

    def add(self, pieces: int, start: int, *, loose: bool = False) -> None:
        self.pieces += pieces
        self.last, self.last_start, self.last_loose = pieces, start, loose
        self.loose = self.loose or loose


# A count: {n}, {m,n}, {m,} or {,n} (the `regex` module reads {,} as *, and "{}" or "{ 5}" as letters).
_COUNT = re.compile(r"\{(\d*)(,?)(\d*)\}")
# A count as verbose mode (?x) reads one too, spaces allowed ("{ 1000 }"): in a pattern regex_shape does not
# read, any such brace is taken for a count.
_SPACED_COUNT = re.compile(r"\{[\s\d,]*\d[\s\d,]*\}")
# Groups whose inside is read like the pattern's: (?:, atomic, lookarounds, branch reset, named.
_GROUP_OPENERS = re.compile(r"\(\?(?::|>|=|!|<=|<!|\||P?<[^\W\d]\w*>|'[^\W\d]\w*')")
# Inline flags, scoped "(?i:" or to the end "(?i)". Verbose mode (x) is left unread: it makes spaces and "#"
# mean something else.
_FLAGS = re.compile(r"\(\?((?:[abefiLmprsuw]|V[01])*)(?:-((?:[abefiLmprsuw])*))?([:)])")
_BACKREF = re.compile(r"\(\?P=[^\W\d]\w*\)")
_POSIX_CLASS = re.compile(r"\[:\^?[a-z]+:\]")


def _escape_end(text: str, at: int) -> int | None:
    """Where the escape starting at ``at`` ends; None for a lone backslash at the end."""
    if at + 1 >= len(text):
        return None
    kind = text[at + 1]
    # \p{Letter} and \N{name} take braces that are no count, \g<name> and \L<list> angle brackets.
    if (kind in "pPN" and text.startswith("{", at + 2)) or (kind in "gL" and text.startswith("<", at + 2)):
        end = text.find("}" if text[at + 2] == "{" else ">", at + 3)
        return None if end < 0 else end + 1
    return at + 2


def _set_end(text: str, at: int) -> int | None:
    """Where the set starting at ``at`` ends; None for one not read safely (a set inside a set, which only the
    `regex` module's version 1 has, or "[" as a member, which version 0 allows)."""
    i = at + 1
    if text.startswith("^", i):
        i += 1
    if text.startswith("]", i):  # a "]" first is a member, not the end
        i += 1
    while i < len(text):
        ch = text[i]
        if ch == "]":
            return i + 1
        if ch == "\\":
            end = _escape_end(text, i)
            if end is None:
                return None
            i = end
        elif ch == "[":
            posix = _POSIX_CLASS.match(text, i)
            if posix is None:
                return None
            i = posix.end()
        else:
            i += 1
    return None


def regex_shape(text: str) -> RegexShape | None:
    """How big ``text`` comes to once compiled, and any repeat in it that can backtrack without end, read without
    compiling it; None for a pattern this reading does not follow (verbose mode, fuzzy constraints, conditionals,
    recursion, sets inside sets, a brace that is neither a count nor an escape's, unbalanced parentheses), which
    is compiled and timed instead (:func:`compile_term_timed`). It errs towards more pieces, never fewer."""
    runs = [_Run(-1)]
    loose_repeat: str | None = None
    i = 0
    while i < len(text):
        run = runs[-1]
        ch = text[i]
        if ch == "\\":
            end = _escape_end(text, i)
            if end is None:
                return None
            run.add(1, i)
            i = end
        elif ch == "[":
            end = _set_end(text, i)
            if end is None:
                return None
            run.add(1, i)
            i = end
        elif ch == "(":
            if not text.startswith("(?", i):
                runs.append(_Run(i))
                i += 1
            elif text.startswith("(?#", i):  # a comment
                end = text.find(")", i)
                if end < 0:
                    return None
                i = end + 1
            elif opener := _GROUP_OPENERS.match(text, i):
                runs.append(_Run(i))
                i = opener.end()
            elif backref := _BACKREF.match(text, i):
                run.add(1, i)
                i = backref.end()
            elif flags := _FLAGS.match(text, i):
                if flags[3] == ":":
                    runs.append(_Run(i))
                i = flags.end()
            else:
                return None
        elif ch == ")":
            if len(runs) == 1:
                return None
            group = runs.pop()
            runs[-1].add(group.pieces + 1, group.start, loose=group.loose)
            i += 1
        elif ch == "|":
            run.loose = True
            run.last = 0
            i += 1
        elif ch in "*+?{":
            if ch == "{":
                count = _COUNT.match(text, i)
                if count is None:
                    return None  # a fuzzy constraint ({e<=1}), or a brace read as a letter: not judged
                if not (count[1] or count[2] or count[3]):  # "{}" is two letters
                    run.add(1, i)
                    run.add(1, i + 1)
                    i += 2
                    continue
                low = int(count[1] or 0)
                high = int(count[3]) if count[3] else (None if count[2] else low)
                end = count.end()
            else:
                low, high = (0, None) if ch == "*" else (1, None) if ch == "+" else (0, 1)
                end = i + 1
            if run.last == 0:
                if ch in "?+":  # marks the quantifier before it lazy or possessive
                    i += 1
                    continue
                return None  # a quantifier with nothing to repeat: compiling reports it
            times = max(high if high is not None else low, 1)
            run.pieces += run.last * (times - 1)
            repeats = high is None or high > 1
            if repeats and run.last_loose and loose_repeat is None:
                loose_repeat = text[run.last_start : end]
            run.loose = run.loose or low != high
            run.last = 0  # a second quantifier is a lazy or possessive mark, or an error
            i = end
        else:
            run.add(1, i)
            i += 1
    if len(runs) != 1:
        return None
    return RegexShape(runs[0].pieces, loose_repeat)


def word_form(text: str) -> str:
    """The form prompts are compared with word terms in: the words of the folded prompt (as :func:`normalise` folds
    it: case, accents, look-alikes, invisible characters), one space between each, where only whitespace parts two
    words. Marks, symbols and emoji inside a word are one ``_JOIN`` ("lo.li" is "lo-li", "n💦sfw" "n-sfw"), which a
    word term's letters see through and a word term may begin or end at; at a word's start or end they are dropped
    ("(nsfw)!"). In a piece with a letter, and in a word spelled out among single letters or pieces, digits are read
    as the letters they stand for ("s3x", "n 5 f w", "n.5.f.w"), but 1 stays 1, for l or i; a number standing alone
    ("a 55 gallon", "a-55-gallon") is kept a number, in full-width digits no letter of a term matches."""
    return _word_form(_fold(text))


def _word_form(folded: str) -> str:
    """:func:`word_form` of a text already folded."""
    # Only whitespace parts words: a mark inside a word split it before, and "lo.li", "lo-li", "n💦sfw", "po.rn" and
    # "shota-con" passed terms and the built-in list they were blocked by when every separator was seen through.
    # Every run of marks is one _JOIN; those next to a space (or an end) are then dropped: the text is folded, so
    # one space is all the whitespace between two words.
    if "'" in folded or "\u2019" in folded or "\u02bc" in folded:
        # A contraction is two words ("he'll", "we're", "she'd", "i'll"): a join there let "hell", "were", "shed"
        # and "ill" block them. "lo'li" is no contraction, and stays one word.
        folded = _CONTRACTION.sub(_contraction_break, folded)
    text = f" {_MARKS.sub(_JOIN, folded)} ".replace(" " + _JOIN, " ").replace(_JOIN + " ", " ")
    text = " ".join(text.split())
    if _JOIN in text and " " in text:
        # Letters spelled out over a mix of spaces and marks ("l.o l.i", "c.s a.m") are spelled out: a word term is
        # either apart or together (_spellings), and this was neither once a mark no longer split a word.
        text = _SPELLED_MIXED.sub(_spelled_out, text)
    if _HAS_DIGIT.search(text) is None:
        return text
    return _DIGIT_PIECES.sub(_read_digits, text)


# An apostrophe inside a word before the ending of a contraction that ends the word (in the folded text): 's after
# any word ("the boss's hit list"); 'll 're 've 'd only after the pronouns and question words that take them
# ("he'll", "we're", "they'd"), 't only as n't and 'm only as "i'm". After any word they let "ki'll", "go're" and
# "bloo'd" through, as "shi't" and "cu'm". An ending of one letter is not left a word of one letter: such words
# next to each other are a word spelled out, and "it's a cat" read "it s a cat", which a term "sa" blocked ("I'm a"
# was "i m a", "ima"). 's is dropped (it is "is" or a possessive), 'm 'd n't are written out (am, would, not).
_APOSTROPHE = "['\u2019\u02bc]"
_TAKES_CONTRACTIONS = "i|you|he|she|it|we|they|who|what|that|there|here|where|how|why|when|this|these|those|one|y|ya|u"
_CONTRACTION = re.compile(
    rf"(?<=[^\W_]){_APOSTROPHE}s(?![^\W_])"
    rf"|(?<=n){_APOSTROPHE}t(?![^\W_])"
    rf"|(?<=\bi){_APOSTROPHE}m(?![^\W_])"
    rf"|(?<![^\W_])((?:{_TAKES_CONTRACTIONS})){_APOSTROPHE}(?=(?:ll|re|ve)(?![^\W_]))"
    rf"|(?<![^\W_])((?:{_TAKES_CONTRACTIONS})){_APOSTROPHE}d(?![^\W_])"
)
# What a contraction's ending of one letter becomes: a word of its own that joins no letters spelled out.
_ENDING_WORDS = {"s": "", "t": " not", "m": " am", "d": " would"}


def _contraction_break(found: re.Match[str]) -> str:
    # The pronoun (group 1 or 2) is kept; the apostrophe becomes the word break, and an ending of one letter a word.
    pronoun = found[1] or found[2] or ""
    ending = found[0][-1]
    return f"{pronoun}{_ENDING_WORDS[ending]} " if ending in _ENDING_WORDS else f"{pronoun} "


# In word_form: whole words of single characters joined by _JOIN, two or more of them over spaces ("l-o l-i").
_SPELLED_MIXED = re.compile(r"(?<![^ ])[^ \-](?:[ \-][^ \-])+(?![^ ])")


def _spelled_out(found: re.Match[str]) -> str:
    text = found[0]
    return text.replace(_JOIN, " ") if " " in text and _JOIN in text else text


# In word_form: a run of two or more pieces of one character ("n 5 f w", "a-5-5"), else a piece with a digit in it.
_DIGIT_PIECES = re.compile(r"(?<![^ \-])(?:[^ \-](?:[ \-][^ \-])+(?![^ \-])|[^ \-]*\d[^ \-]*)")


def _read_digits(found: re.Match[str]) -> str:
    """A piece with a digit, or a run of pieces of one character, as word_form writes it: digits are letters in a
    piece with a letter and in a run of two or more with a letter among them (spelled out: "n 5 f w", not "1 2 3"),
    a number elsewhere."""
    text = found[0]
    if _HAS_DIGIT.search(text) is None:
        return text
    spelled = len(text) > 1 and text[1] in " -"
    number = text.isdigit() if not spelled else not any(ch.isalpha() for ch in text)
    return text.translate(_NUMBER_TABLE if number else _WORD_DIGIT_TABLE)


_HAS_DIGIT = re.compile(r"\d")


def _term_words(text: str) -> list[str]:
    """The words a word term is made of, as :func:`word_form` would write them in a prompt: folded, a run of single
    letters taken as one word spelled out ("n.s.f.w" is "nsfw"), and in a word with a letter, digits read as the
    letters they stand for ("l33t" is "leet"), but 1 kept, for l or i. A number stays a number."""
    words: list[str] = []
    run = ""
    folded = _fold(text)
    if "'" in folded or "\u2019" in folded or "\u02bc" in folded:
        folded = _CONTRACTION.sub(_contraction_break, folded)  # as word_form reads the prompt's
    for word in [*_WORD.findall(folded), ""]:
        if len(word) == 1:
            run += word
            continue
        if run:
            words.append(run)
            run = ""
        if word:
            words.append(word)
    return [word if word.isdigit() else word.translate(_WORD_DIGIT_TABLE) for word in words]


def word_key(text: str) -> str | None:
    """What makes two word terms the same to the gate ("Dragon", "dragon" and "d.r.a.g.o.n" all match the same
    prompts, and so do "l33t" and "leet"): their words (:func:`_term_words`), a 1 read as i in a word with a
    letter. None for a term with no letters or digits (never usable)."""
    words = [word if word.isdigit() else word.replace("1", "i") for word in _term_words(text)]
    return " ".join(words) or None


def old_word_key(text: str) -> str | None:
    """:func:`word_key` as an older version read word terms, every 0 1 3 4 5 7 a letter (:func:`normalise`): what
    makes a term typed now the same as one stored in that form (``Term.normalised``: "1488" and a stored "ia88")."""
    return word_key(normalise(text))


def _one_of(options: str) -> str:
    options = "".join(dict.fromkeys(options))
    if len(options) == 1:
        return re.escape(options)
    return "[" + "".join(re.escape(ch) for ch in options) + "]"


def _letter_piece(char: str) -> str:
    """What stands for ``char``, of a word with a letter in it, in a prompt's :func:`word_form`: itself, or a 1 for
    an l or an i (a 1 in a term for either)."""
    return _one_of({"i": "i1", "l": "l1", "1": "1il"}.get(char, char))


# The digit each letter of a word term stored in normalise()'d form may have been typed as (Term.normalised).
_DIGIT_OF = {letter: digit for digit, letter in _LEET_DIGITS.items()}


def _word_ways(word: str, *, old: bool) -> list[list[str]]:
    """The ways a word of a term is written in a prompt's :func:`word_form`, each as the pieces of a pattern, one a
    letter: its letters (a 1 for an l or an i) or, a number, its digits (:func:`_number_piece`). ``old``: a word
    stored in :func:`normalise`'d form (``Term.normalised``) is read as the version that stored it read it, as the
    number it may have been typed as too, when every letter of it is one of o i e a s t (a digit then) and the rest
    digits, of which it has one: "ia88" was "1488", and "a 1488 banner" is blocked by it again. Inside a word, those
    digits are letters in word_form already ("s3x", "1a88")."""
    ways = [[(_number_piece if word.isdigit() else _letter_piece)(char) for char in word]]
    # Only a word with a digit left in it shows it was typed as a number ("ia88" was "1488"): one of letters alone
    # ("ass", "tit") was a word, and read as 455 or 717 too it blocked "a 455 nm laser" and "area code 717".
    if (
        old
        and not word.isdigit()
        and any(char.isdigit() for char in word)
        and all(char.isdigit() or char in _DIGIT_OF for char in word)
    ):
        # Written out as literals, not as a set of letter and digit for each: a set with a full-width digit in it
        # took `re` about a millisecond to compile, and a stored term of 1,000 letters 0.8 s.
        ways.append([re.escape(_DIGIT_OF.get(char, char).translate(_NUMBER_TABLE)) for char in word])
    return ways


def _number_piece(char: str) -> str:
    """What stands for the digit ``char`` of a number in a word term: the digit of a number standing alone in a
    prompt (full-width in :func:`word_form`), or the same digit inside a word, read as a letter there ("area51")."""
    return _one_of(char.translate(_WORD_DIGIT_TABLE) + char.translate(_NUMBER_TABLE))


def _spellings(pieces: list[str], marks: _Marks, *, after_first: bool = False) -> str:
    """A word of a term written together ("nsfw") or spelled out, each letter apart ("n s f w", "N.S.F.W"); only
    ever whole: "lol i" is not "loli", nor "cs am" "csam". ``after_first``: the pieces after a word's first letter
    (which the pattern has begun with), so a separator comes before each."""
    if not pieces:
        return ""
    if after_first:
        together = "".join(marks.within + piece for piece in pieces)
        apart = "".join(marks.apart + piece for piece in pieces)
    else:
        together, apart = marks.within.join(pieces), marks.apart.join(pieces)
    return together if together == apart else f"(?:{together}|{apart})"


def _word_pattern_source(text: str, marks: _Marks = _IN_ANY_TEXT, *, old: bool = False) -> str:
    """``old``: a term stored in normalise()'d form (``Term.normalised``, :func:`_word_ways`)."""
    words = _term_words(text)
    if not words:
        raise ValueError(f"blocked term {text!r} has no letters or digits to match")
    first, *rest = [_word_ways(word, old=old) for word in words]
    # Each word whole, together or spelled out; between words any separators or none. The pattern begins with a
    # literal (the first letter) wherever it can: see _IN_ANY_TEXT.
    source = _either([way[0] + marks.after_start + _spellings(way[1:], marks, after_first=True) for way in first])
    source += "".join(marks.between + _either([_spellings(way, marks) for way in ways]) for ways in rest)
    return source + marks.end


def _either(sources: list[str]) -> str:
    return sources[0] if len(sources) == 1 else "(?:" + "|".join(sources) + ")"


def compile_term(term: Term) -> CompiledTerm:
    """Compile one term, raising ValueError with a readable message if it cannot be used.

    Call this when a moderator adds a term, so mistakes are reported then, not at check time.
    """
    if term.is_regex:
        return CompiledTerm(term, _compile_regex(term.text))
    return CompiledTerm(term, re.compile(_word_pattern_source(term.text, old=term.normalised)))


def compile_term_timed(term: Term, *, limit: float = REGEX_COMPILE_LIMIT) -> CompiledTerm:
    """:func:`compile_term`, raising RegexTooBigError for a regex term whose compile took over ``limit`` seconds
    of this thread's CPU. A pattern :func:`regex_shape` can count is refused before it is compiled; one it cannot
    may take long and a lot of memory to compile: run this in a thread, never on the event loop."""
    with counting_own_work():
        started = work_time()
        compiled = compile_term(term)
        took = work_time() - started
    if term.is_regex and took > limit:
        # The `regex` module keeps what it compiled for reuse: let go of this one, it will not be used.
        regex.purge()
        raise RegexTooBigError(
            f"it is too big to compile. Compiling it took {took * 1000:,.0f} ms (at most {limit * 1000:.0f} ms), and "
            "the bot would stall each time it compiled it. Use smaller counts ({n}, {m,n}), or + and * instead."
        )
    return compiled


def _compile_regex(text: str) -> regex.Pattern[str]:
    if not text.strip():
        raise ValueError("blocked regex is empty")
    shape = regex_shape(text)
    if shape is None and _SPACED_COUNT.search(text):
        # A pattern the count cannot read (verbose mode, fuzzy matching, ...) with counted repeats in it may be
        # written out as big as one it can: `(?x)` in front made `(?:(?:a{1000}){1000}){5}` compile to 1.6 GB.
        # A compile cannot be stopped part way, so such a pattern is not compiled at all.
        raise RegexTooBigError(
            "it has counted repeats ({n}, {m,n}) in a form the bot cannot size before compiling (verbose mode, "
            "fuzzy matching, conditionals, sets inside sets). Write it without that form, or with + and * instead "
            "of counts."
        )
    if shape is not None and shape.pieces > MAX_REGEX_PIECES:
        # Refused before compiling: the compile itself is what would take the time and the memory.
        raise RegexTooBigError(
            f"it is too big to compile. Its counted repeats ({{n}}, {{m,n}}), inside one another and one after "
            f"another, come to {shape.pieces:,} pieces written out (at most {MAX_REGEX_PIECES:,}), and compiling that "
            "would stall the bot. Use smaller counts, or + and * (which write nothing out)."
        )
    try:
        # IGNORECASE rather than casefolding the pattern: folding would change escapes ("\D"). FULLCASE too, as
        # casefolding the prompt does: light_form writes "scheiße" as "scheisse", which `scheiße` then matches.
        return regex.compile(text, regex.IGNORECASE | regex.FULLCASE)
    except regex.error as exc:
        raise ValueError(f"invalid blocked regex {text!r}: {exc}") from exc


NOT_FINISHED = "not finished"
"""A verdict's reason when the request's budget ran out before every term had run on the text."""

TOO_LONG = "too long to check"
"""A verdict's reason for a text longer than ``MAX_FOLDED_CHARS`` once folded: no term was run on it."""

# What lets a regex term tell the prompt as typed (light_form) from its normalised form, which writes digits, "@" and
# "$" as letters and folds accents and look-alikes: a digit (a count's "{2,3}" aside), "@", a "$" that is no anchor,
# a non-ASCII character, an escape for digits or for characters by code or property (\d \D \p \P \N \x \u \U), or
# what matches a digit or a symbol and not the letter normalise writes for it (\W, a negated set "[^"). A pattern
# without any of these was written for letters, as normalise writes them, and reads the same in the light form where
# it matters: it is searched once, as before the light form (a second search of every term on a prompt with a digit or
# an accent refused ordinary prompts for servers of 160 terms as not checked in time).
_AS_TYPED = regex.compile(r"[^\x00-\x7f]|[0-9@]|\\[dDpPNxuUW$]|(?<!\\)\$(?![|)]|$)|\[\^")


# What in a regex term tells a word character from another (\b \B \w \W) or finds an end (^ $): "@" and "$" are
# neither letters nor digits as typed but letters once normalised, so \bporn\b missed "porn@home" and "$porn"
# searched normalised alone ("pornahome", "sporn").
_BOUNDED = regex.compile(r"\\[bBwW]|(?<!\\)[$^]")
# The characters normalise turns from what is no letter or digit into a letter (_LOOKALIKES: "@", "$"). A digit is
# a word character in both forms, so it does not move a boundary: a prompt with digits alone stays one search.
_TURNS_LETTER = re.compile("[" + "".join(re.escape(ch) for ch in _LOOKALIKES if not re.match(r"\w", ch)) + "]")


def _reads_as_typed(pattern: str) -> bool:
    """Whether the regex term ``pattern`` can match the prompt as typed where it does not match its normalised form
    (``_AS_TYPED``), and so is searched in both (:meth:`PromptGate.check_all`). Decided once, when it is compiled."""
    return _AS_TYPED.search(_COUNT.sub("", pattern)) is not None


class _Spend:
    """One request's budget (:meth:`PromptGate.check_all`): ``budget`` seconds of the checking thread's own CPU, and
    STOP_AFTER times that of time gone by, for every text of the request, their folding included. Made inside
    counting_own_work()."""

    __slots__ = ("budget", "cpu_started", "deadline", "per_term", "started")

    def __init__(self, budget: float, per_term: float) -> None:
        self.budget = budget
        self.per_term = per_term
        self.cpu_started = work_time()
        self.started = time.monotonic()
        self.deadline = self.started + budget * STOP_AFTER

    def left(self) -> tuple[float, float]:
        """What is left of the budget, and the time now (``time.monotonic()``)."""
        now = time.monotonic()
        # The thread's own CPU time never runs ahead of the time gone by, so it is read (2 µs, as long as a word
        # term's search) only once that is near the budget.
        left = self.budget - (now - self.started)
        if left < self.per_term:
            left = min(self.budget - (work_time() - self.cpu_started), self.deadline - now)
        return left, now


class PromptGate:
    """Checks prompts against one server's terms; build once per change of terms, then reuse."""

    def __init__(
        self,
        terms: Iterable[Term],
        *,
        builtin: bool = True,
        regex_timeout: float = DEFAULT_REGEX_TIMEOUT,
        prompt_budget: float = DEFAULT_PROMPT_BUDGET,
        block_on_timeout: bool = False,
    ) -> None:
        if regex_timeout <= 0:
            raise ValueError("regex_timeout must be positive")
        if prompt_budget <= 0:
            raise ValueError("prompt_budget must be positive")
        self._regex_timeout = regex_timeout
        self._prompt_budget = prompt_budget
        self._block_on_timeout = block_on_timeout
        self._builtin = builtin
        # Built-ins first, so a prompt that hits both is reported as the built-in term.
        builtins = [Term(text) for text in BUILTIN_TERMS] if builtin else []
        self._words: list[_Search] = [_word_search(term, "built-in term", strokes=True) for term in builtins]
        self._regexes: list[_Search] = []
        # Compile (and so validate) everything now, so a bad term fails here and never mid-check.
        for term in terms:
            if term.is_regex:
                rx = _compile_regex(term.text)
                reason = f"matched blocked pattern {term.text!r}"
                as_typed, bounded = _reads_as_typed(term.text), _BOUNDED.search(term.text) is not None
                self._regexes.append(_Search(term.text, rx, reason, as_typed=as_typed, bounded=bounded))
            else:
                self._words.append(_word_search(term, "blocked term"))
        # One search per word term: each pattern starts with a literal wherever it can, so the engine scans
        # quickly (200 terms on a 2,500-character prompt take about a millisecond). A single big alternation
        # looked attractive but was tens of times slower.
        self._names = tuple(dict.fromkeys(search.term for search in (*self._words, *self._regexes)))

    @property
    def has_regexes(self) -> bool:
        """Whether the server has regex terms, which can take up to the prompt's budget on any prompt. Word terms
        can too, on a prompt made to be slow for them, so every check runs in a thread (bot/moderation.py)."""
        return bool(self._regexes)

    def check(self, prompt: str) -> GateResult:
        """The verdict on ``prompt`` alone (:meth:`check_all`)."""
        return self.check_all([prompt])[0][0]

    def check_all(self, texts: Sequence[str]) -> list[tuple[GateResult, str]]:
        """Each text's verdict, in order, up to the first that is blocked or not checked in full: the request they
        make up is refused then, and the texts after it are not looked at. Word terms first, in :func:`word_form`
        (the built-in list with letters with a stroke read as plain letters); then regex terms, each in
        :func:`normalise`'d form and, one that can tell them apart, as typed (:func:`light_form`), as is one with
        word boundaries or anchors on a text with "@" or "$" (``_BOUNDED``). Every text's
        folding and searches share one budget (``prompt_budget``): a request of nine texts (a reply and the
        earlier prompts of its conversation, bot/moderation.py) each checked with a budget of its own held a
        thread 1.7 s. Thread-safe: the patterns are only read."""
        verdicts: list[tuple[GateResult, str]] = []
        with counting_own_work():
            spend = _Spend(self._prompt_budget, self._regex_timeout)
            for text in texts:
                verdict = self._check_text(text, spend)
                verdicts.append((verdict, text))
                if verdict.blocked or not verdict.finished:
                    break
        return verdicts

    def _check_text(self, text: str, spend: _Spend) -> GateResult:
        """One text of a request, within what is left of its budget (inside counting_own_work)."""
        if spend.left()[0] <= 0:
            return self._unfinished((), self._names, NOT_FINISHED)
        # Folded under the budget, and at most MAX_FOLDED_CHARS of it: 6,000 of U+FDFA came to 108,000 letters,
        # folded three times over outside any budget (0.4 s).
        forms = _forms(text)
        if forms is None:
            log.warning(
                "a text of %d characters comes to over %d once folded; not checked", len(text), MAX_FOLDED_CHARS
            )
            return self._unfinished((), self._names, TOO_LONG)
        words = _word_form(forms.folded)
        plain = words.translate(_STROKE_TABLE) if self._builtin else words
        searches = [(search, plain if search.strokes else words) for search in self._words]
        if self._regexes:
            folded, typed = forms.folded.translate(_DIGIT_TABLE), forms.light
            differ = typed != folded
            # Checked once a text, and only when the forms differ: a prompt of letters is searched once.
            moved = differ and _TURNS_LETTER.search(typed) is not None
            for search in self._regexes:
                searches.append((search, folded))
                if differ and (search.as_typed or (search.bounded and moved)):
                    searches.append((search, typed))
        return self._check(searches, spend)

    def _unfinished(self, slow: Sequence[str], unchecked: tuple[str, ...], reason: str) -> GateResult:
        if self._block_on_timeout and unchecked:
            return GateResult(True, unchecked[0], "patterns too slow", tuple(slow), unchecked)
        return GateResult(False, None, reason, tuple(slow), unchecked)

    def _check(self, searches: list[tuple[_Search, str]], spend: _Spend) -> GateResult:
        """Each search on its text, in order, within the bounds (inside counting_own_work): each at most
        ``regex_timeout``, and all the request's together at most ``prompt_budget``."""
        slow: list[str] = []
        for index, (search, text) in enumerate(searches):
            if search.term in slow:  # too slow on one form of the prompt: not tried on the other
                continue
            left, now = spend.left()
            if left > 0:
                bound = min(self._regex_timeout, left)
                found: re.Match[str] | regex.Match[str] | None
                if isinstance(search.pattern, re.Pattern):
                    found, too_slow = _word_term_search(search.pattern, text, bound, letters=search.letters)
                else:
                    stop = min(bound * STOP_AFTER, spend.deadline - now)
                    found, too_slow = _bounded_search(search.pattern, text, bound, stop=stop, deadline=spend.deadline)
                if found is not None:
                    return GateResult(True, search.term, search.reason, tuple(slow))
                if not too_slow:
                    continue
                if bound >= self._regex_timeout:
                    # Default: a slow term neither blocks nor stalls; it is skipped and reported so moderators can
                    # fix it (bot/moderation.py refuses the prompt, as not checked in full). block_on_timeout fails
                    # closed here.
                    log.warning("blocked term %r took over %ss; skipped", search.term, bound)
                    slow.append(search.term)
                    if self._block_on_timeout:
                        return GateResult(True, search.term, "pattern too slow", tuple(slow))
                    continue
                # Cut short by what was left of the budget, not slow on its own bound: it is one of the terms the
                # budget left unrun, not a term to tell the moderators to fix.
            unchecked = tuple(dict.fromkeys(s.term for s, _ in searches[index:] if s.term not in slow))
            log.warning("blocked terms took over %ss on one request; %d not run", self._prompt_budget, len(unchecked))
            return self._unfinished(slow, unchecked, NOT_FINISHED)
        return GateResult(False, None, "clean", tuple(slow))


@dataclass(frozen=True, slots=True)
class _Search:
    """One term of a gate, compiled: a word term with `re`, a regex term with `regex`."""

    term: str  # as entered
    pattern: re.Pattern[str] | regex.Pattern[str]
    reason: str  # the verdict's when it matches
    letters: int = 0  # a word term's letters and digits (its search costs up to this times the prompt's length)
    strokes: bool = False  # a built-in word term: searched with letters with a stroke read as plain letters
    as_typed: bool = False  # a regex term searched as typed too (_reads_as_typed)
    bounded: bool = False  # a regex term searched as typed too on a prompt with "@" or "$" (_BOUNDED)


# A word term's search on a prompt steps through at most about the term's letters times the prompt's characters
# (its letters spelled out from each letter of the prompt on: "aaaa…b" on "a a a a …"), some 500,000 a millisecond.
# Up to this many, the search is not timed (_word_term_search).
_QUICK_STEPS = 500_000


def _word_term_search(
    pattern: re.Pattern[str], text: str, bound: float, *, letters: int
) -> tuple[re.Match[str] | None, bool]:
    """A word term's search in a prompt's :func:`word_form`, and whether it took over ``bound`` seconds of this
    thread's own CPU. It needs no timeout to stop it: its pattern can match at any place in one way only (each
    word of the term together or spelled out, which cannot both match there, and nothing repeated but a space), so
    it takes at most about ``letters`` times the prompt's length in steps: 10 ms for a term of 1,000 letters on
    6,000 characters, 1.3 ms for one of 100. With `re` rather than `regex`: four times as fast to search and to
    compile, and it holds the GIL only that long. A search that short is not timed at all: reading this thread's
    CPU time (a system call) took longer than the search."""
    if len(text) * letters <= _QUICK_STEPS:
        return pattern.search(text), False
    started = work_time()
    found = pattern.search(text)
    return found, work_time() - started > bound


def _word_search(term: Term, kind: str, *, strokes: bool = False) -> _Search:
    pattern = re.compile(_word_pattern_source(term.text, _IN_WORD_FORM, old=term.normalised))
    letters = sum(map(len, _term_words(term.text)))
    return _Search(term.text, pattern, f"matched {kind} {term.text!r}", letters, strokes=strokes)


def _bounded_search(
    rx: regex.Pattern[str], text: str, bound: float, *, stop: float, deadline: float | None = None
) -> tuple[regex.Match[str] | None, bool]:
    """``rx.search(text)`` and whether it was too slow: over ``bound`` seconds of this thread's own CPU
    (bot/thread_cpu.py). The `regex` module stops it once the process has spent ``stop`` seconds of CPU
    (STOP_AFTER). Stopped while this try had used under half its bound, the other threads ran the clock out (it
    waited for a core, or for the GIL the search takes back every 256 steps while another thread ran a
    collector pass): it is tried again with twice the stop, ``STOP_TRIES`` times at most, and never past
    ``deadline`` (``time.monotonic()``; a prompt's check: its tries took one slow term to 1.05 s of a prompt's
    0.75 s). A match found is returned even when slow: it is a match."""
    for attempt in range(STOP_TRIES):
        timeout = max(stop, bound) * 2**attempt
        if deadline is not None:
            left = deadline - time.monotonic()
            if attempt and left <= 0:
                return None, True
            timeout = min(timeout, max(left, bound))
        started = work_time()
        try:
            # concurrent: the search lets go of the GIL, so a check run in a thread (bot/moderation.py) leaves
            # the event loop free while it lasts, and this thread's CPU time counts the search alone.
            found = rx.search(text, timeout=timeout, concurrent=True)
        except TimeoutError:
            if work_time() - started >= bound / 2:
                return None, True
            continue
        return found, work_time() - started > bound
    return None, True


def _probes(pattern: str) -> Iterator[str]:
    """Inputs on which a pattern that backtracks without end shows it: long runs of one letter (the
    pattern's own, and a few common ones), of words, and of the pattern's letters, each ended by a
    character that makes an anchored or longer match fail and the engine try every other way first.
    Prompts are searched in :func:`normalise`'d form, so the inputs are too."""
    own = list(dict.fromkeys(ch for ch in normalise(pattern) if ch.isalnum()))[:_PROBE_LETTERS]
    for ch in dict.fromkeys([*own, "a", "2"]):
        yield ch * PROBE_CHARS + "!"
        yield (ch + " ") * (PROBE_CHARS // 2) + "!"
    if own:
        word = "".join(own)
        yield (word * (PROBE_CHARS // len(word) + 1))[:PROBE_CHARS] + "!"
        yield ((word + " ") * (PROBE_CHARS // (len(word) + 1) + 1))[:PROBE_CHARS] + "!"
    yield ".-" * (PROBE_CHARS // 2) + "a"


def slow_input(term: Term, *, timeout: float = DEFAULT_REGEX_TIMEOUT) -> str | None:
    """An input on which the regex ``term`` takes longer than ``timeout`` (the bound a prompt gives each
    term), or None when it takes none of them that long; None for a word term, which cannot backtrack.
    Raises ValueError for a pattern that does not compile. Takes up to ``timeout`` of CPU per input (at most
    STOP_AFTER times that of the process's CPU): run it in a thread."""
    if not term.is_regex:
        return None
    rx = _compile_regex(term.text)
    with counting_own_work():
        for probe in _probes(term.text):
            _, too_slow = _bounded_search(rx, probe, timeout, stop=timeout * STOP_AFTER)
            if too_slow:
                return probe
    return None
