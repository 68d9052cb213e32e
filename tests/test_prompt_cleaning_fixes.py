"""Prompt cleaning, the typed ratio and the Re-roll seed: text that shows nothing is empty (while the same
characters beside visible text keep their meaning), a phone's "—ar" is Midjourney's "--ar", the Edit form's
suffix is read after cleaning, the prompt option's 6,000 characters are held to, and a Re-roll draws a new seed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import derive
from bot.errors import InvalidRequestError
from bot.models import GenerationRequest
from bot.prompt_parameters import split_parameters
from bot.prompts import clean_prompt
from bot.providers.base import validate
from bot.providers.seaart import SEAART_MODELS
from cogs.imagine import build_request

BLANKS = "\u3164\u115f\u1160\uffa0\u2800\u034f\ufe0f\ufe00\U000e0100\u180b\u17b4 \t\n\u3000"


@pytest.mark.parametrize(
    ("blank", "beside_text"),
    [
        ("\ufe0f", "\u2764\ufe0f a heart"),  # the red emoji heart, not the text one
        ("\u2800", "\u2813\u2811\u2807\u2807\u2815\u2800\u283a\u2815\u2817\u2807\u2819"),  # braille's space
        ("\u034f", "\u05d0\u034f\u05b7 a letter kept apart from its mark"),
        ("\u1160", "\u1100\u1160 old hangul, a syllable with its vowel missing"),
        ("\u3164", "a\u3164fox"),
        ("\uffa0", "a\uffa0fox"),
        ("\u115f\u1160", "\u115f\u1161 a syllable with its consonant missing"),
    ],
)
def test_a_blank_alone_is_empty_and_beside_visible_text_keeps_its_meaning(blank: str, beside_text: str) -> None:
    assert clean_prompt(blank) == clean_prompt(f" {blank} {blank}\n") == ""
    assert clean_prompt(beside_text) == beside_text


def test_blanks_that_stand_alone_are_trimmed_from_the_ends() -> None:
    assert clean_prompt("\u3164a fox\u2800 \uffa0") == "a fox"
    assert clean_prompt("a fox --ar 16:9\u3164") == "a fox --ar 16:9"


@given(st.text(alphabet=BLANKS, min_size=1))
def test_any_mix_of_blanks_is_an_empty_prompt_refused_as_empty(text: str) -> None:
    request = GenerationRequest(model="nano_banana_2", prompt=text)
    assert request.prompt == ""
    with pytest.raises(InvalidRequestError, match="The prompt is empty"):
        validate(request, SEAART_MODELS["nano_banana_2"])


def ratio_typed(text: str) -> tuple[str, str | None]:
    found = split_parameters(text)
    return found.words, found.ratio


def test_a_phone_s_dash_starts_a_ratio_too() -> None:
    assert ratio_typed("a fox \u2014ar 16:9") == ("a fox", "16:9")  # iOS smart punctuation's "--"
    assert ratio_typed("a fox \u2013aspect 4:3") == ("a fox", "4:3")
    # As with "--": not glued to a word, and not apart from the parameter's name.
    assert ratio_typed("a fox\u2014ar 16:9") == ("a fox\u2014ar 16:9", None)
    assert ratio_typed("a fox \u2014 ar 16:9") == ("a fox \u2014 ar 16:9", None)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("at night --ar 16:9\u200b", ("at night", "16:9", False)),
        ("wider \u2014zoom 2\u3164", ("wider", None, True)),
        ("\u3164 --ar 1:1", ("", "1:1", False)),
    ],
)
def test_framing_parameters_are_read_after_cleaning(typed: str, expected: tuple[str, str | None, bool]) -> None:
    found = split_parameters(clean_prompt(typed))
    assert (found.prompt, found.ratio, found.zoom) == expected


def test_the_prompt_option_is_held_to_6000_characters_as_sent() -> None:
    assert len(build_request(model="nano_banana_2", prompt="a" * 6000).prompt) == 6000
    # Invisible characters do not count: they are not sent.
    assert len(build_request(model="nano_banana_2", prompt="a" * 6000 + "\u200b" * 50).prompt) == 6000
    with pytest.raises(InvalidRequestError) as refused:
        build_request(model="nano_banana_2", prompt="a" * 6001)
    assert refused.value.user_message == "`prompt` must be 1 to 6,000 characters of text; yours has 6,001."


def test_a_re_roll_keeps_the_request_but_its_seed() -> None:
    seeded = GenerationRequest(model="nano_banana_2", prompt="a fox", seed=7, aspect_ratio="16:9", resolution="2K")
    rolled = derive.reroll(seeded)
    assert rolled.seed is not None and rolled.seed != 7 and 0 <= rolled.seed <= 2**31 - 1
    assert rolled.model_dump(exclude={"seed"}) == seeded.model_dump(exclude={"seed"})
    unseeded = seeded.model_copy(update={"seed": None})
    assert derive.reroll(unseeded) == unseeded
