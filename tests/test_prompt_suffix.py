"""bot/prompt_suffix.py: a member's suffix, checked when saved and added to each new prompt."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import InvalidRequestError
from bot.prompt_parameters import split_parameters
from bot.prompt_suffix import SUFFIX_MAX_CHARS, checked_suffix, with_suffix


@pytest.mark.parametrize(
    ("prompt", "suffix", "sent", "ratio"),
    [
        ("a fox --ar 16:9", "in watercolour --no text", "a fox, in watercolour, without text", "16:9"),
        ("a fox.", "Watercolour.", "a fox. Watercolour.", None),
        # The member's --no and --tile and the suffix's each said once, the member's first.
        ("a fox --no text --tile", "in ink --tile --no text --no frame", "a fox, in ink, as a seamless", None),
        ("space:: ship::2", "in ink", "space, ship, in ink, with the most emphasis on ship", None),
        # Midjourney's common suffix: --style raw, said in words.
        ("a fox", "cinematic --style raw", "a fox, cinematic, in a plain, photographic look", None),
    ],
)
def test_the_suffix_follows_the_words_and_joins_their_parameters(
    prompt: str, suffix: str, sent: str, ratio: str | None
) -> None:
    typed = with_suffix(split_parameters(prompt), checked_suffix(suffix))
    assert typed.prompt.startswith(sent) and typed.ratio == ratio
    if "frame" in suffix:
        assert typed.prompt.endswith(", without text, without frame")


@pytest.mark.parametrize(
    ("suffix", "refused"),
    [
        ("   ", "A suffix needs some words"),
        ("x" * (SUFFIX_MAX_CHARS + 1), f"at most {SUFFIX_MAX_CHARS} characters"),
        ("in the style of https://cdn.discordapp.com/attachments/1/2/a.png", "not links or custom emojis"),
        ("with <:banana:123456789> everywhere", "not links or custom emojis"),
        ("in {ink, oil}", "choices in braces"),
        ("--no text", "some words besides its parameters"),
        ("cinematic --ar 16:9", "`--ar` in a suffix would fight the command's shape"),
        ("cinematic --r 4", "set `count`"),
        ("cinematic --seed 7", "`--seed` in a suffix"),
        ("cinematic --zoom 2", "`--zoom` is for an edit"),
        ("cinematic --v 6 --style raw", "`--v 6` means nothing to Nano Banana"),
        ("in ink --wide", "`--wide` is not one of Midjourney's parameters"),  # an option set's name: typed in prompts
        ("in ink \u2014Mine soft light", "`--Mine` is not one of Midjourney's parameters"),
    ],
)
def test_a_suffix_that_would_fail_every_prompt_later_is_refused_when_saved(suffix: str, refused: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        checked_suffix(suffix)
    assert refused in raised.value.user_message


def test_a_suffix_is_cleaned_as_a_prompt_is() -> None:
    assert checked_suffix("  in ink\u200b, soft light \n") == "in ink, soft light"


@given(st.text(max_size=60), st.text(alphabet="abc ,.", min_size=1, max_size=30))
def test_the_member_s_words_come_first_and_the_suffix_s_follow(words: str, suffix: str) -> None:
    try:
        added = checked_suffix(suffix)
    except InvalidRequestError:
        return
    typed = split_parameters(words)
    joined = with_suffix(typed, added)
    assert joined.words.startswith(typed.words.rstrip().lstrip()) and joined.words.endswith(added)
    assert (joined.ratio, joined.seed, joined.repeat) == (typed.ratio, typed.seed, typed.repeat)
