"""Prompt cleaning: invisible and control characters never survive, visible text is untouched."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.models import GenerationRequest
from bot.prompt_parameters import split_parameters
from bot.prompts import ZERO_WIDTH_JOINER, clean_prompt


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\u200b\u200b\u200b", ""),
        ("\u2060\ufeff \u200d", ""),
        ("a\x00b\x07c\x1bd", "abcd"),
        ("evil \u202etxt.exe", "evil txt.exe"),
        ("line one\r\nline two\u2028three", "line one\nline two\nthree"),
        ("tab\there", "tab here"),
        ("👩\u200d🚀 astronaut", "👩\u200d🚀 astronaut"),  # a joiner inside an emoji sequence stays
        ("x\u200dy", "xy"),
        ("Cafe\u0301", "Café"),  # NFC
        ("  a banana  ", "a banana"),
    ],
)
def test_examples(raw: str, clean: str) -> None:
    assert clean_prompt(raw) == clean


@given(st.text())
def test_nothing_invisible_survives_and_cleaning_is_stable(text: str) -> None:
    cleaned = clean_prompt(text)
    assert clean_prompt(cleaned) == cleaned
    assert cleaned == cleaned.strip()
    for char in cleaned:
        category = unicodedata.category(char)
        assert category not in ("Cc", "Cs") or char == "\n"
        assert category != "Cf" or char == ZERO_WIDTH_JOINER


@given(st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"], exclude_characters="\xa0"), min_size=1))
def test_visible_text_is_kept(text: str) -> None:
    assert clean_prompt(text) == unicodedata.normalize("NFC", text).strip()


def test_every_request_is_cleaned() -> None:
    request = GenerationRequest(model="nano_banana_2", prompt="\u200ba\x00 fox\u202e")
    assert request.prompt == "a fox"


@pytest.mark.parametrize(
    ("typed", "words", "ratio"),
    [
        ("a fox in the snow --ar 16:9", "a fox in the snow", "16:9"),
        ("a fox --AR 9 : 16  ", "a fox", "9:16"),
        ("a fox --aspect 4:3", "a fox", "4:3"),
        ("--ar 21:9", "", "21:9"),
        ("wide --ar auto", "wide", "auto"),
        ("a fox --ar 16:9 at dusk", "a fox --ar 16:9 at dusk", None),  # only at the end, as Midjourney reads it
        ("a sign saying x--ar 16:9", "a sign saying x--ar 16:9", None),  # glued to a word: not a parameter
        ("a fox --ar wide", "a fox --ar wide", None),
        ("a fox -- ar 16:9", "a fox -- ar 16:9", None),
    ],
)
def test_a_trailing_ar_is_the_shape_asked_for(typed: str, words: str, ratio: str | None) -> None:
    found = split_parameters(typed)
    assert (found.words, found.ratio) == (words, ratio)


@given(st.text())
def test_text_without_the_parameter_is_left_as_it_is(text: str) -> None:
    found = split_parameters(text)
    words, ratio = found.words, found.ratio
    if not re.search("--|[\u2013\u2014]", text):  # "--", or the dash a phone makes of it
        assert (words, ratio) == (text, None)
    elif ratio is not None:
        assert text.startswith(words) and ratio in re.sub(r"\s", "", text.lower())


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("wider --zoom 2", ("wider", None, True)),
        ("--zoom", ("", None, True)),
        ("a lake --ar 16:9 --zoom 1.5", ("a lake", "16:9", True)),
        ("a lake --zoom --ar 16:9", ("a lake", "16:9", True)),
        ("a lake --ar 16:9", ("a lake", "16:9", False)),
        ("zoom in on the cat", ("zoom in on the cat", None, False)),
        ("a --zoomed", ("a --zoomed", None, False)),
        ("a --zoom 2 --zoom", ("a", None, True)),  # the whole run that ends the words
        ("a lake --zoom two", ("a lake --zoom two", None, False)),  # not what --zoom takes
    ],
)
def test_midjourneys_framing_parameters_are_taken_from_the_end(
    typed: str, expected: tuple[str, str | None, bool]
) -> None:
    found = split_parameters(clean_prompt(typed))
    assert (found.prompt, found.ratio, found.zoom) == expected
