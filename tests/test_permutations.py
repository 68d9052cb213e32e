"""Choices in braces written out (bot/permutations.py): Midjourney's rules, words in braces left as typed, and
hostile prompts (a billion choices, braces nested thousands deep) counted, never written out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.permutations import COUNT_CEILING, MOST_NESTED, TooManyPrompts, Variant, expand, number_of

Written = list[tuple[str, tuple[str, ...]]]


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("a {red, green} bird", [("a red bird", ("red",)), ("a green bird", ("green",))]),
        # Several groups multiply, in order.
        (
            "a {red, blue} {car, bus}",
            [
                ("a red car", ("red", "car")),
                ("a red bus", ("red", "bus")),
                ("a blue car", ("blue", "car")),
                ("a blue bus", ("blue", "bus")),
            ],
        ),
        # Groups nest: the choice is the option written out.
        ("a {red {car, bus}, bike}", [("a red car", ("red car",)), ("a red bus", ("red bus",)), ("a bike", ("bike",))]),
        # An empty choice leaves no double space.
        ("a {, big} dog", [("a dog", ("",)), ("a big dog", ("big",))]),
        # An escaped comma belongs to its choice.
        ("x {a\\, b, c}", [("x a, b", ("a, b",)), ("x c", ("c",))]),
        # Words in braces with a choice inside keep their braces.
        ("{hello {a,b}}", [("{hello a}", ("a",)), ("{hello b}", ("b",))]),
        ("stray } here {a,b}", [("stray } here a", ("a",)), ("stray } here b", ("b",))]),
    ],
)
def test_choices_are_written_out_as_midjourney_writes_them(typed: str, written: Written) -> None:
    assert expand(typed, most=10) == [Variant(text, picks) for text, picks in written]
    assert number_of(typed) == len(written)


@pytest.mark.parametrize(
    "typed",
    [
        "a sign saying {hello}",
        "a brace { left open",
        "a brace } closed alone",
        'json {"a": 1}',
        "an escaped \\{a, b\\} pair",
        "",
    ],
)
def test_a_prompt_without_a_choice_is_itself_as_typed(typed: str) -> None:
    assert expand(typed, most=1) == [Variant(typed, ())]
    assert number_of(typed) == 1


@given(st.text(alphabet=st.characters(blacklist_characters="{")))
def test_text_without_an_opening_brace_is_never_changed(typed: str) -> None:
    assert expand(typed, most=1) == [Variant(typed, ())]


words = st.text(alphabet="abcdefgh xyz", min_size=1, max_size=12).map(str.strip).filter(bool)


@given(st.lists(words, min_size=2, max_size=6), words, words)
def test_each_choice_is_one_prompt_in_order(choices: list[str], before: str, after: str) -> None:
    typed = f"{before} {{{', '.join(choices)}}} {after}"
    made = expand(typed, most=len(choices))
    assert [variant.picks for variant in made] == [(" ".join(choice.split()),) for choice in choices]
    assert [variant.text for variant in made] == [" ".join(f"{before} {c} {after}".split()) for c in choices]
    with pytest.raises(TooManyPrompts) as too_many:
        expand(typed, most=len(choices) - 1)
    assert too_many.value.count == len(choices)


def test_hostile_prompts_are_counted_not_written_out_and_answered_at_once() -> None:
    with pytest.raises(TooManyPrompts) as billion:
        expand("{a,b}" * 30, most=4)  # 2**30 prompts
    assert billion.value.count == COUNT_CEILING
    # Braces open thousands deep (each re-read from its start, once, was exponential): words, at once.
    for typed in ("{" * 6000, "{a," * 2000 + "}" * 2000, "{" * 3000 + "a,b" + "}" * 3000):
        assert expand(typed, most=4) == [Variant(typed, ())]
    assert number_of("{a,b}" * 3000) == COUNT_CEILING
    nested = "{" * MOST_NESTED + "a,b" + "}" * MOST_NESTED
    assert len(expand(nested, most=4)) == 2
