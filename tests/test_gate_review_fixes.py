"""The prompt gate after the moderation review: word terms cannot hold a prompt (or the event loop) for seconds and
are bounded when added, every earlier prompt of a conversation is checked, regex terms match the prompt as typed,
spaced-out letters are joined only when every letter is apart (ordinary words never), a standalone number is never
read as letters, a 1 stands for l as well as i, and letters with a stroke fold like accented ones (for the built-in
list). Each test here fails on the code before these fixes."""

from __future__ import annotations

import asyncio
import itertools
import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.gate import PromptGate, Term, normalise
from bot.moderation import ModerationStore, PromptUncheckedError
from bot.prompts import clean_prompt
from bot.store import Database
from tests.conftest import Clock

GUILD = 10
# The bounds on what a moderator may add (bot/gate.py MAX_WORD_TERM_CHARS, bot/moderation.py MAX_TERMS), written
# out so that this file runs on the code before them too, and fails there.
MAX_WORD_TERM_CHARS = 100
MAX_TERMS = 500
# A prompt made to be slow for long word terms: each term's letters spelled out from every letter on.
SPACED = " ".join(["a"] * 2999)  # 5,997 characters, about the longest prompt (cogs/imagine.py)


# Long word terms stored before word terms were bounded, enough that checking ``SPACED`` against every one of them
# takes several times the gate's budget on any machine: on 2026-12-06 this machine, faster that day, checked 60
# of them in 0.17 s, within the 0.25 s budget (the tests below, written with 60, found the check finished), and
# 600 in 1.65 s.
SLOW_TERMS = 600


def long_terms(count: int, letters: int) -> list[str]:
    """``count`` different terms of ``letters`` letters, all but the last three "a", none of which ``SPACED``
    holds."""
    tails = ("".join(tail) for tail in itertools.product(string.ascii_lowercase[1:], repeat=3))
    return ["a" * (letters - 3) + next(tails) for _ in range(count)]


def blocked(prompt: str, *terms: str, builtin: bool = False, regex: bool = False) -> bool:
    gate = PromptGate([Term(t, is_regex=regex) for t in terms], builtin=builtin)
    return gate.check(clean_prompt(prompt)).blocked


async def stored(db: Database, *terms: str) -> None:
    """Rows as a moderator added them before word terms were bounded."""
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO blocked_terms (guild_id, term, is_regex, added_by, added_at) VALUES (?, ?, 0, 1, ?)",
            [(GUILD, term, float(n)) for n, term in enumerate(terms)],
        )


# ---- 1. word terms are bounded ------------------------------------------------------------------------------


def test_long_word_terms_stored_before_the_bound_cannot_hold_a_prompt_for_seconds() -> None:
    """Word terms had no time bound: 30 terms of 1,000 letters held this prompt 3.4 s, 60 of them 7 s (on the
    event loop, for every server). They share the prompt's budget with regex terms now; what the budget left
    unrun is named, so the prompt is refused rather than let through (bot/moderation.py)."""
    gate = PromptGate([Term(t) for t in long_terms(SLOW_TERMS, 1000)], builtin=False)
    started = time.monotonic()
    verdict = gate.check(SPACED)
    took = time.monotonic() - started
    assert took < 1.0, f"{SLOW_TERMS} long word terms held one prompt {took:.2f} s"
    assert not verdict.blocked and not verdict.finished
    assert verdict.unchecked


def test_a_server_at_the_bounds_is_checked_or_refused_within_a_second() -> None:
    """The most a moderator may add (MAX_TERMS terms of MAX_WORD_TERM_CHARS) on the prompt made to be slowest for
    them: 11 s of one thread before."""
    gate = PromptGate([Term(t) for t in long_terms(MAX_TERMS, MAX_WORD_TERM_CHARS)], builtin=False)
    started = time.monotonic()
    verdict = gate.check(SPACED)
    assert time.monotonic() - started < 1.0
    assert not verdict.blocked
    # An ordinary prompt is checked in full, and quickly.
    started = time.monotonic()
    assert gate.check("a banana on a beach " * 300).finished
    assert time.monotonic() - started < 0.25


async def test_word_terms_are_bounded_when_added_and_stored_ones_still_work(db: Database) -> None:
    store = ModerationStore(db, clock=Clock())
    with pytest.raises(ValueError, match=f"at most {MAX_WORD_TERM_CHARS}"):
        await store.add_term(GUILD, Term("x" * (MAX_WORD_TERM_CHARS + 1)), by=1)
    assert await store.terms(GUILD) == []
    taken, added = await store.add_term(GUILD, Term("y" * MAX_WORD_TERM_CHARS), by=1)
    assert added and taken.text == "y" * MAX_WORD_TERM_CHARS
    # Stored before the bound: a long term still blocks, and past MAX_TERMS every stored term still applies.
    await stored(db, "z" * 300, *(f"word{n:04d}" for n in range(MAX_TERMS)))
    assert (await store.check_prompt(GUILD, "a " + "z" * 300)).blocked
    assert (await store.check_prompt(GUILD, "a word0499 here")).blocked
    with pytest.raises(ValueError, match=f"the most it may \\({MAX_TERMS}\\)"):
        await store.add_term(GUILD, Term("dragon"), by=1)
    with pytest.raises(ValueError, match="the most it may"):
        await store.add_term(GUILD, Term("dragon", is_regex=True), by=1)
    # A term blocked already is no new term: told so, not refused.
    assert await store.add_term(GUILD, Term("WORD0007"), by=1) == (Term("word0007"), False)


async def test_a_prompt_long_word_terms_cannot_check_in_time_is_refused_off_the_event_loop(db: Database) -> None:
    """With no regex term the check ran on the event loop, and nothing bounded word terms: this held it 7 s."""
    store = ModerationStore(db, clock=Clock())
    await stored(db, *long_terms(SLOW_TERMS, 1000))
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    await store.check_prompt(GUILD, "warm up")  # the gate is built (compiled) on the first prompt
    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    try:
        with pytest.raises(PromptUncheckedError):
            await store.check_prompt(GUILD, SPACED)
    finally:
        ticker.cancel()
    # 7 s before; 1 s, as tests/e2e/test_moderation_slow_terms.py allows: on a loaded machine the scheduler alone
    # kept a loop off its core over half a second (tests/e2e/test_moderation_gate_review.py, once).
    assert max(gaps) < 1.0, f"the event loop stood still {max(gaps):.2f} s"


# ---- 2. the earlier prompts of a conversation -----------------------------------------------------------------


async def test_every_earlier_prompt_of_a_conversation_is_checked(db: Database) -> None:
    store = ModerationStore(db, clock=Clock())
    await store.add_term(GUILD, Term("sofa"), by=1)
    verdict, judged = await store.check_prompts(GUILD, "make it night", ["a cat in a garden", "a cat on a sofa"])
    assert verdict.blocked and verdict.term == "sofa" and judged == "a cat on a sofa"
    verdict, judged = await store.check_prompts(GUILD, "make it night", ["a cat in a garden"])
    assert not verdict.blocked and judged == "make it night"


# ---- 3. regex terms see the prompt as typed -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "prompt"),
    [
        (r"\b(1[0-7]|[1-9]) ?(yo|years? old)\b", "a 15 year old girl"),  # normalised: "a is year old girl"
        (r"\b1[0-7] ?yo\b", "a 13yo"),
        (r"\d{3}-\d{4}", "call 555-1234"),
        ("scheiße", "SCHEISSE"),  # casefolded, and matched as full case folding reads "ß"
        ("scheiße", "scheiße"),
        ("секс", "СЕКС"),  # normalised: "cekc" (Cyrillic look-alikes made Latin)
        ("секс", "се\u200bкс"),  # invisible characters are gone in the form as typed too
        ("πορνο", "πορνο"),
    ],
)
def test_a_regex_term_matches_the_prompt_as_typed(pattern: str, prompt: str) -> None:
    assert blocked(prompt, pattern, regex=True)


def test_a_regex_term_still_sees_through_evasions() -> None:
    assert blocked("G0R3FEST", r"\bgore\w*", regex=True)
    assert blocked("ɢᴏʀᴇ", r"\bgore\w*", regex=True)
    assert not blocked("a quiet harbour at 5 o'clock", r"\bgore\w*|\d{3}-\d{4}", regex=True)


# ---- 4. spaced letters and numbers: no false positives, evasions still caught -----------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "make it darker lol i hate the red",  # built-in "loli"
        "lol, I meant blue",
        "a lol icon for a chat app",  # built-in "lolicon"
        "an old CS AM radio dial",  # built-in "csam"
    ],
)
def test_innocent_prompts_pass_the_builtin_list(prompt: str) -> None:
    assert not blocked(prompt, builtin=True)


@pytest.mark.parametrize(
    ("term", "prompt"),
    [
        ("shit", "a poster for the band's hit single"),
        ("anal", "portrait of an Al Capone lookalike"),
        ("ass", "a 55 gallon drum"),  # a number is not letters
        ("ass", "a 455 gallon drum"),
        ("sex", "a size 5 ex-army boot"),
        ("leet", "the year 1337"),
        ("nsfw", "a 5-star review of n fw"),
    ],
)
def test_innocent_prompts_pass_ordinary_terms(term: str, prompt: str) -> None:
    assert not blocked(prompt, term)


@pytest.mark.parametrize(
    ("term", "prompt"),
    [
        ("nsfw", "n s f w"),
        ("nsfw", "N.S.F.W"),
        ("nsfw", "n 5 f w"),  # a digit spelled out among letters is a letter
        ("nsfw", "make it n-s-f-w art"),
        ("loli", "l o l i"),
        ("kill", "k1ll"),
        ("sex", "s3x"),
        ("sex", "5ex"),
        ("ass", "a$$"),
        ("blood bath", "b.l.o.o.d b.a.t.h"),
        ("blood bath", "bloodbath"),
        ("area 51", "area 51"),  # a number in a term is a number
        ("area 51", "AREA51"),
        ("child porn", "CH1LD P0RN"),
    ],
)
def test_spaced_out_and_leet_evasions_are_still_caught(term: str, prompt: str) -> None:
    assert blocked(prompt, term, builtin=term == "child porn")


@given(st.text(alphabet="bcdfghjkmnpqrwxyz", min_size=3, max_size=12), st.data())
@settings(max_examples=200)
def test_two_ordinary_words_are_never_joined_into_a_term(term: str, data: st.DataObject) -> None:
    """A term split into two words, one of them longer than a letter, is two words; the term spelled out one
    letter at a time is the term. (Letters no leet digit or look-alike stands for, so only the spacing counts.)"""
    cut = data.draw(st.integers(1, len(term) - 1))
    gate = PromptGate([Term(term)], builtin=False)
    assert not gate.check(f"x {term[:cut]} {term[cut:]} y").blocked
    assert gate.check(f"x {' '.join(term)} y").blocked
    assert gate.check(f"x {term} y").blocked


# ---- 5. a 1 stands for l as well as i ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "prompt"), [("kill", "ki11 him"), ("loli", "1o1i art"), ("hell", "HE11"), ("kill", "K1L1")]
)
def test_one_stands_for_l_too(term: str, prompt: str) -> None:
    assert blocked(prompt, term, builtin=term == "loli")


# ---- 6. letters with a stroke fold as accented ones do, for the built-in list ---------------------------------------
# Folded for every term, they made ordinary Danish and Polish words into terms ("gøre" was "gore"): only the built-in
# list reads them as plain letters now (tests/test_gate_regressions.py).


@pytest.mark.parametrize("prompt", ["łoli art", "ŁOLI", "ł0łi", "ŁÓLI"])
def test_letters_with_a_stroke_are_plain_letters_to_the_builtin_list(prompt: str) -> None:
    assert blocked(prompt, builtin=True)
    assert normalise(prompt) != normalise(prompt.translate(str.maketrans("łŁ", "lL")))
