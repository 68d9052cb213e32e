"""bot/multi_prompts.py: Midjourney's ``::`` parts and their weights said in words Nano Banana takes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.multi_prompts import _SEPARATOR, MultiPrompt, read_multi_prompt
from bot.prompt_parameters import split_parameters


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        # Midjourney's own example: space and a ship, not a spaceship.
        ("space:: ship", MultiPrompt("space, ship")),
        ("a cat::2 a dog", MultiPrompt("a cat, a dog, with the most emphasis on a cat")),
        ("a cat::0.5 a dog", MultiPrompt("a cat, a dog, with the most emphasis on a dog")),
        ("a cat::2, a hat::2 a dog::.5", MultiPrompt("a cat, a hat, a dog, with the most emphasis on a cat and a hat")),
        # A weight below zero leaves its part out, as --no does.
        ("hot dog::1.5 food::-1", MultiPrompt("hot dog", ("food",))),
        ("still life:: fruit::-.5 flowers::0", MultiPrompt("still life", ("fruit", "flowers"))),
        # Weights adding up to nothing: the parts as typed, weights aside.
        ("food::-1", MultiPrompt("food")),
        ("a cat :: ", MultiPrompt("a cat")),
        ("::2", MultiPrompt("")),
    ],
)
def test_parts_are_listed_the_heaviest_named_and_those_weighed_out_left_out(typed: str, read: MultiPrompt) -> None:
    assert read_multi_prompt(typed) == read


@pytest.mark.parametrize(
    "typed",
    [
        "std::vector in a::b",
        "C++::std::string",
        "a poster reading http://[1::1 in neon",
        "at [::1]:: ok",
        "a cat::- a dog",
        "no parts here",
    ],
)
def test_words_without_a_separator_are_left_as_typed(typed: str) -> None:
    assert read_multi_prompt(typed) == MultiPrompt(typed)


def test_the_prompt_sent_says_the_parts_with_the_parameters_after_them() -> None:
    typed = split_parameters("hot dog::1.5 food::-1 --tile --no text --ar 16:9")
    assert typed.ratio == "16:9"
    assert typed.prompt == (
        "hot dog, as a seamless, tileable pattern whose edges wrap around, without food, without text"
    )
    assert split_parameters("::2 --ar 1:1").drawn == ""  # nothing to draw: /imagine refuses it (cogs/imagine.py)


@given(
    st.lists(st.sampled_from(["a", " cat", "::", "::2", "::-1", "::.5", " ", ",", "\n", ":", "-", "9"]), max_size=30)
)
def test_any_words_are_read_and_no_separator_is_sent(pieces: list[str]) -> None:
    """Whatever is typed, the reading ends in words, never an error; where a part was split off, no separator with
    a space after it reaches the model."""
    words = "".join(pieces)
    read = read_multi_prompt(words)
    if read != MultiPrompt(words):
        parts = " | ".join([read.drawn, *read.left_out])
        assert _SEPARATOR.search(parts) is None, (words, read)
