"""Prompt gate (issue 5): normalisation, whole-word matching with evasions, built-ins, regex terms."""

from __future__ import annotations

import logging
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.gate import (
    BUILTIN_TERMS,
    MAX_REGEX_PIECES,
    GateResult,
    PromptGate,
    RegexShape,
    RegexTooBigError,
    Term,
    compile_term,
    compile_term_timed,
    light_form,
    normalise,
    regex_shape,
)
from bot.thread_cpu import counting_own_work, work_time

# A pattern the `regex` module really does backtrack on: it optimises the classic `(a+)+$`
# (checked below), but not an alternation whose branches overlap.
CATASTROPHIC = r"(a|aa)+$"
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad", "\u2060", "\u3164", "\uffa0", "\u115f", "\u1160")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ｎｓｆｗ", "nsfw"),  # full-width
        ("NSFW", "nsfw"),
        ("nsfẃ", "nsfw"),  # accent
        ("Crème Brûlée", "creme brulee"),
        ("nѕfw", "nsfw"),  # Cyrillic dze
        ("рорсоrn", "popcorn"),  # Cyrillic р о с
        ("αβγ", "abγ"),  # Greek look-alikes only
        ("n\u200bs\u200df\ufeffw\u00ad", "nsfw"),  # zero-width and soft hyphen
        ("l33t h4x0r $p3@k 1t 5", "leet haxor speak it s"),  # leetspeak
        ("  a \t b\n\n c  ", "a b c"),
        ("Straße", "strasse"),
        ("", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


NSFW_EVASIONS = [
    "nsfw",
    "N.S.F.W",
    "ｎｓｆｗ",
    "ns\u200bfw",
    "nѕfw",
    "NSFW!!!",
    "n s f w",
    "n-s-f-w",
    "n_s_f_w",
    "nsfẃ",
    "N$FW",
    "make it (nsfw) please",
    "nsfw.",
    "very.nsfw",
    # Small capitals, which NFKC and casefolding leave alone.
    "ɴꜱꜰᴡ",
    "nꜱfw",
    # Hangul fillers: invisible, yet letters to Unicode, so they joined the word instead of splitting it.
    "n\u3164sfw",
    "ns\uffa0fw",
    "n\u115fs\u1160fw",
]


@pytest.mark.parametrize("prompt", NSFW_EVASIONS)
def test_word_term_evasions_are_caught(prompt: str) -> None:
    result = PromptGate([Term("nsfw")], builtin=False).check(prompt)
    assert result == GateResult(True, "nsfw", "matched blocked term 'nsfw'", ())


@pytest.mark.parametrize(
    ("term", "prompt", "blocked"),
    [
        # The term as a substring of a longer word is benign.
        ("ass", "a class photo", False),
        ("ass", "my assistant", False),
        ("ass", "a bass guitar", False),
        ("ass", "cl@ss", False),
        ("ass", "grass", False),
        ("ass", "kick ass", True),
        ("ass", "a s s", True),
        ("ass", "a$$", True),
        ("ass", "ASS!", True),
        ("nsfw", "nsfwx", False),
        ("nsfw", "xnsfw", False),
        ("cunt", "scunthorpe united", False),
        ("cunt", "Scunthorpe", False),
        # Multi-word terms match across any separators, but still as whole words.
        ("blood bath", "a blood bath", True),
        ("blood bath", "a bloodbath", True),
        ("blood bath", "blood-bath", True),
        ("blood bath", "blood...  bath", True),
        ("blood bath", "b.l.o.o.d b.a.t.h", True),
        ("blood bath", "bloodbaths", False),
        ("blood bath", "a bath of blood", False),
        # Terms are normalised the same way as prompts.
        ("ＮＳＦＷ", "nsfw", True),
        ("n.s.f.w", "nsfw", True),
        ("crème", "creme brulee", True),
        ("l33t", "leet speak", True),
    ],
)
def test_word_matching(term: str, prompt: str, blocked: bool) -> None:
    result = PromptGate([Term(term)], builtin=False).check(prompt)
    assert result.blocked is blocked
    assert result.term == (term if blocked else None)


def test_clean_prompt_result() -> None:
    assert PromptGate([Term("nsfw")]).check("a banana on a beach") == GateResult(False, None, "clean", ())


def test_first_blocking_term_is_reported() -> None:
    gate = PromptGate([Term("gore"), Term("nsfw")], builtin=False)
    assert gate.check("nsfw gore").term == "gore"


@pytest.mark.parametrize("prompt", ["child porn", "CH1LD P0RN", "c.s.a.m", "loli art"])
def test_builtin_terms(prompt: str) -> None:
    result = PromptGate([]).check(prompt)
    assert result.blocked
    assert result.term in BUILTIN_TERMS
    assert "built-in" in result.reason
    assert not PromptGate([], builtin=False).check(prompt).blocked


def test_builtin_list_is_minimal() -> None:
    assert 0 < len(BUILTIN_TERMS) <= 10
    assert PromptGate([]).check("a lollipop for the children").blocked is False


def test_regex_terms() -> None:
    gate = PromptGate([Term(r"\bgore\w*", is_regex=True)], builtin=False)
    assert gate.check("GOREFEST") == GateResult(True, r"\bgore\w*", r"matched blocked pattern '\\bgore\\w*'", ())
    # Regexes see the normalised prompt, so evasions are undone for them too.
    assert gate.check("g0r3").blocked
    assert not gate.check("gregore").blocked


def test_word_and_regex_terms_together() -> None:
    gate = PromptGate([Term("nsfw"), Term(r"blood\s*bath", is_regex=True)], builtin=False)
    assert gate.check("nsfw").term == "nsfw"
    assert gate.check("bloodbath").term == r"blood\s*bath"
    assert not gate.check("a banana").blocked


@pytest.mark.parametrize("pattern", ["(unclosed", "[a-", "*oops", "a{2,1}"])
def test_invalid_regex_raises_value_error(pattern: str) -> None:
    with pytest.raises(ValueError, match="invalid blocked regex"):
        compile_term(Term(pattern, is_regex=True))
    with pytest.raises(ValueError, match="invalid blocked regex"):
        PromptGate([Term(pattern, is_regex=True)])


@pytest.mark.parametrize("term", [Term(""), Term("  !!! "), Term("", is_regex=True), Term("  ", is_regex=True)])
def test_empty_terms_raise_value_error(term: Term) -> None:
    with pytest.raises(ValueError):
        compile_term(term)


def test_compile_term_word_pattern() -> None:
    compiled = compile_term(Term("ass"))
    assert compiled.term == Term("ass")
    assert compiled.pattern.search(normalise("a s s")) is not None
    assert compiled.pattern.search(normalise("class")) is None


def test_slow_regex_is_skipped_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    # The bound per term (0.05 s) is what this is about. The prompt's budget, which also stops a check once
    # three times it has gone by in wall time, is wide here: on a loaded machine the slow term's search
    # alone can take that long, and the next term would be left unchecked (tests/e2e/test_moderation_slow_terms.py
    # is about the budget).
    terms = [Term(CATASTROPHIC, is_regex=True), Term("b+", is_regex=True)]
    gate = PromptGate(terms, builtin=False, prompt_budget=10.0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.gate"):
        result = gate.check("a" * 50 + "!")
    assert time.monotonic() - started < 10  # safety net only; the bound is 0.05 s
    assert result == GateResult(False, None, "clean", (CATASTROPHIC,))
    assert CATASTROPHIC in caplog.text
    # Later patterns still run after a slow one.
    assert gate.check("a" * 50 + "! b").term == "b+"
    assert gate.check("a" * 50 + "! b").slow_patterns == (CATASTROPHIC,)


def test_slow_regex_blocks_when_configured() -> None:
    gate = PromptGate([Term(CATASTROPHIC, is_regex=True)], builtin=False, block_on_timeout=True)
    assert gate.check("a" * 50 + "!") == GateResult(True, CATASTROPHIC, "pattern too slow", (CATASTROPHIC,))


def test_classic_nested_quantifier_returns_promptly() -> None:
    gate = PromptGate([Term("(a+)+$", is_regex=True)], builtin=False, regex_timeout=0.05)
    started = time.monotonic()
    result = gate.check("a" * 50 + "!")
    assert time.monotonic() - started < 10  # safety net only; the bound is 0.05 s
    assert not result.blocked  # `regex` either answers at once or reports it as slow
    assert result.slow_patterns in ((), ("(a+)+$",))


@pytest.mark.parametrize(
    ("pattern", "shape"),
    [
        # Each letter, escape, set and group one piece, times the counts of the repeats around it.
        ("(?:(?:a{1000}){1000}){5}", RegexShape(5_005_005, None)),
        ("a{10000}", RegexShape(10_000, None)),
        ("a{0,10001}", RegexShape(10_001, None)),  # the upper count: erring towards more, never fewer
        ("a{5,}b+c*d?", RegexShape(8, None)),  # an open count its lower one; + * ? write nothing out
        ("(?:(a)(b)(c)){4000}", RegexShape(28_000, None)),  # groups one after another inside a count add up
        ("a{,3}", RegexShape(3, None)),
        ("a{}", RegexShape(3, None)),  # "{}" is two letters to the `regex` module
        ("\\p{Letter}{3}\\N{BULLET}", RegexShape(4, None)),  # an escape's braces are no count
        ("[]{}a]{3}[[:alpha:]]{2}", RegexShape(5, None)),
        ("(?i)(?#x{9}) (?P<w>a)(?P=w){3}(?<=b{2})", RegexShape(9, None)),
        ("\\bgore\\w*", RegexShape(6, None)),
        ("(sex|porn).*(teen|young)", RegexShape(19, None)),
        ("k+i+l+l+", RegexShape(4, None)),
        # A repeated group that can match the same text in more than one way is named.
        ("(a|aa)+$", RegexShape(5, "(a|aa)+")),
        ("x(\\w+\\s?)+$", RegexShape(5, "(\\w+\\s?)+")),
        ("(?:(a+)b){2,}", RegexShape(8, "(?:(a+)b){2,}")),
        ("(a|aa){0,1}(a+)?", RegexShape(6, None)),  # at most once: nothing to share out
        # Not read: compiled and timed instead.
        ("(?x) a {3}", None),  # verbose mode: spaces and "#" mean something else
        ("(?:ab){e<=1}", None),  # fuzzy matching
        ("a{ 5}", None),
        ("[a[b]]", None),  # a set inside a set
        ("(a)(?1){3}", None),  # recursion
        ("(?(1)a|b)", None),  # a conditional
        ("(a", None),
        ("a)", None),
    ],
)
def test_regex_shape_counts_what_compiling_writes_out(pattern: str, shape: RegexShape | None) -> None:
    assert regex_shape(pattern) == shape


def test_a_regex_too_big_to_compile_is_refused_before_it_is_compiled() -> None:
    """The `regex` module writes counted repeats out when it compiles: this one took 0.2 s and 260 MB, and with
    one more {5} around it 3 s and 1.5 GB."""
    too_big = Term("(?:a{1000}){1000}", is_regex=True)
    with pytest.raises(RegexTooBigError, match="too big to compile"):
        compile_term(too_big)
    with pytest.raises(ValueError, match="1,001,000 pieces"):
        PromptGate([too_big])
    assert compile_term(Term(f"a{{{MAX_REGEX_PIECES}}}", is_regex=True)).pattern.search("a" * MAX_REGEX_PIECES)


def test_a_regex_the_count_cannot_read_is_not_compiled_if_it_has_counts() -> None:
    """Verbose mode or fuzzy matching are not read (regex_shape is None), and a compile cannot be stopped part
    way: timed afterwards, `(?x)` in front of `(?:(?:a{1000}){1000}){5}` compiled all the same, 3.4 s of CPU and
    1.6 GB. Such a pattern with counts in it is refused before it is compiled; one without is compiled, timed
    in the thread's own CPU time (a busy machine does not make an ordinary pattern look slow)."""
    evading_patterns = (
        "(?x)(?:(?:a{1000}){1000}){5}",
        "(?x)(?:(?:a{ 1000 }){ 1000 }){ 5 }",  # verbose mode reads a count with spaces in it too
        "(?:(?:a{1000}){1000}){5}(?:x){e<=1}",
        "(?x) (?: a{1000} ){1000}",
    )
    for evading in evading_patterns:
        # This thread's CPU time, where the compile would run: the process's counts every other thread of the
        # test run's worker too.
        with counting_own_work():
            started = work_time()
            with pytest.raises(RegexTooBigError, match="cannot size before compiling"):
                compile_term_timed(Term(evading, is_regex=True))
            assert work_time() - started < 0.05, evading  # refused, not compiled
    quick = compile_term_timed(Term("(?x) \\b gore \\w*  # any word that starts so", is_regex=True))
    assert quick.pattern.search("gorefest") is not None
    assert compile_term_timed(Term("nsfw")).pattern.search("n.s.f.w") is not None  # word terms are not timed


def test_regex_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="regex_timeout"):
        PromptGate([], regex_timeout=0)


def test_many_terms_on_long_prompt() -> None:
    terms = [Term(f"term{chr(97 + i % 26)}{chr(97 + i // 26)}x") for i in range(200)]
    gate = PromptGate(terms, builtin=False)
    assert not gate.check("a banana on a beach " * 125).blocked
    assert gate.check("a banana " * 270 + "t e r m z g x").term == "termzgx"


# Property tests -----------------------------------------------------------------------------------

WORD_TERMS = ["nsfw", "ass", "blood bath", "gore"]
GATE = PromptGate([Term(t) for t in WORD_TERMS], builtin=False)
# Prompts built from pieces that sit near the terms, so both verdicts come up often.
pieces = st.sampled_from(
    ["nsfw", "ass", "class", "blood", "bath", "gore", "n", "s", "f", "w", "a", " ", ".", "-", "_", "!", "é", "х"]
)
prompts = st.lists(pieces | st.text(max_size=3), max_size=12).map("".join)


@given(st.text())
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_light_form_of_ascii_takes_a_short_way_to_the_same_form(text: str) -> None:
    """light_form skips NFKC and the format characters on ASCII text (``/jobs search:`` folds thousands of
    prompts with it): the same form as the long way, which a non-ASCII letter beside the text takes."""
    assert light_form(text) == " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    assert light_form("é " + text) == " ".join(["é", light_form(text)]).strip()


@given(prompts, st.data())
@settings(max_examples=300)
def test_zero_width_characters_never_change_the_verdict(prompt: str, data: st.DataObject) -> None:
    positions = data.draw(st.lists(st.integers(0, len(prompt)), max_size=5))
    noisy = prompt
    for pos in sorted(positions, reverse=True):
        noisy = noisy[:pos] + data.draw(st.sampled_from(ZERO_WIDTH)) + noisy[pos:]
    assert GATE.check(noisy).blocked == GATE.check(prompt).blocked


@given(prompts)
@settings(max_examples=300)
def test_case_never_changes_the_verdict(prompt: str) -> None:
    verdict = GATE.check(prompt).blocked
    assert GATE.check(prompt.upper()).blocked == verdict
    assert GATE.check(prompt.lower()).blocked == verdict
    assert GATE.check(prompt.swapcase()).blocked == verdict
