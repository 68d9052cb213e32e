"""A member's option sets (bot/option_sets.py, Midjourney's /prefer option set): what may be saved, and how a name in
a prompt is replaced by its parameters before the prompt is read for them (bot/prompt_parameters.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import InvalidRequestError
from bot.option_sets import (
    OPTION_SET_MAX_CHARS,
    asked_option_set,
    option_sets_of,
    stored_option_sets,
    unknown_name_note,
    with_option_sets,
)
from bot.prompt_parameters import split_parameters


@pytest.mark.parametrize(
    ("typed", "asked"),
    [
        ("wide --ar 21:9 --style raw", ("wide", "--ar 21:9 --style raw")),
        ("--Wide   --ar 21:9", ("wide", "--ar 21:9")),  # the dashes and the case as members type them
        ("\u2014my-look2 --no text --tile", ("my-look2", "--no text --tile")),
        ("pair --repeat 2 --seed 7 --iw 2", ("pair", "--repeat 2 --seed 7 --iw 2")),  # typed where wanted: welcome
        ("wide", ("wide", None)),  # the name alone: drop it
    ],
)
def test_a_set_is_a_name_and_parameters_nano_banana_takes(typed: str, asked: tuple[str, str | None]) -> None:
    assert asked_option_set(typed) == asked


@pytest.mark.parametrize(
    ("typed", "refused"),
    [
        ("-- --ar 21:9", "Start with the set's name"),
        ("2wide --ar 21:9", "Start with the set's name"),
        ("ar --ar 21:9", "`--ar` is one of Midjourney's own parameters"),
        ("tile --ar 1:1", "`--tile` is one of Midjourney's own parameters"),
        ("wide a fox --ar 21:9", "holds parameters only"),
        ("wide --ar 21:9 --other", "not the names of other sets"),
        ("wide --v 6 --ar 21:9", "`--v 6` means nothing to Nano Banana"),
        ("wide --sref https://cdn.discordapp.com/attachments/1/2/a.png", "not links"),
        ("wide --ar {1:1, 16:9}", "choices in braces"),
        ("wide --no " + "x" * OPTION_SET_MAX_CHARS, f"at most {OPTION_SET_MAX_CHARS} characters"),
    ],
)
def test_a_set_that_would_fail_or_mislead_every_prompt_is_refused_when_saved(typed: str, refused: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        asked_option_set(typed)
    assert refused in caught.value.user_message


def test_a_name_in_a_prompt_stands_for_its_parameters_wherever_it_is_a_whole_word() -> None:
    sets = {"wide": "--ar 21:9 --style raw", "clean": "--no text, watermark"}
    typed = with_option_sets("a fox in snow --WIDE --clean", sets)
    assert typed == "a fox in snow --ar 21:9 --style raw --no text, watermark"
    read = split_parameters(typed)
    assert (read.words, read.ratio, read.said, read.left_out) == (
        "a fox in snow",
        "21:9",
        ("raw",),
        ("text, watermark",),
    )
    # Not inside a word or a link, and a name no set has stays as typed.
    for kept in ("a--wide fox", "https://example.com/--wide", "a fox --wider", "a fox --narrow"):
        assert with_option_sets(kept, sets) == kept
    assert with_option_sets("a fox \u2014wide", sets) == "a fox --ar 21:9 --style raw"
    assert with_option_sets("a fox --wide", {}) == "a fox --wide"


@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9-]{0,23}", fullmatch=True), st.text(max_size=40), max_size=5))
def test_sets_stored_are_read_back_as_they_were(sets: dict[str, str]) -> None:
    assert option_sets_of(stored_option_sets(sets)) == sets


def test_a_row_that_is_not_a_json_object_of_strings_counts_as_no_sets() -> None:
    for stored in (None, "", "not json", "[1, 2]", '{"wide": 3}'):
        assert option_sets_of(stored) == {}


def test_names_that_take_the_words_past_what_is_sent_are_refused_at_once() -> None:
    """A 6,000-character prompt of a 150-character set's name, 1,500 times: 226,500 characters for every later step
    to read, refused before any of them."""
    sets = {"a": "--no " + "x" * (OPTION_SET_MAX_CHARS - 5)}
    with pytest.raises(InvalidRequestError) as caught:
        with_option_sets("--a " * 1500, sets)
    assert "come to 226,500 characters; at most 6,000 are sent" in caught.value.user_message
    assert len(with_option_sets("a fox --a", sets)) == len("a fox ") + OPTION_SET_MAX_CHARS


def test_a_name_ending_the_words_that_is_no_set_and_no_parameter_is_named_to_the_member() -> None:
    sets = {"wide": "--ar 21:9"}
    assert "`--wdie` is not one of Midjourney's parameters nor one of your option sets (`--wide`)" in (
        unknown_name_note("a fox --wdie", sets) or ""
    )
    assert "`--mine` is not one of Midjourney's parameters, so it went" in (
        unknown_name_note("a fox --mine,", {}) or ""
    )
    # Words that merely hold a name, a parameter left as words (no value), a set's name: nothing to say.
    for words in ("a sign saying --mine here", "a fox --ar", "a fox --wide", "a fox", "x--mine"):
        assert unknown_name_note(words, sets) is None, words
