"""Midjourney's parameters at the end of a prompt (bot/prompt_parameters.py): what is read, what is left as
words, and that reading them stays one pass over any prompt."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.prompt_parameters import (
    IMAGE_WEIGHT_ALONE,
    IN_WORDS,
    REFERENCE_ROLE,
    WEIGHT_ALONE,
    Parameters,
    ignored_note,
    image_weight_sentence,
    split_parameters,
    with_image_weight,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a fox", Parameters("a fox")),
        ("a fox --ar 16:9", Parameters("a fox", ratio="16:9")),
        ("a fox --AR 16 : 9", Parameters("a fox", ratio="16:9")),
        ("a fox \u2014ar 4:3 \u2013seed 7", Parameters("a fox", ratio="4:3", seed=7)),  # a phone's dashes
        ("a fox --aspect auto --ar 1:1", Parameters("a fox", ratio="1:1")),  # the last one, as Midjourney
        # --style raw is said in words (IN_WORDS), a --stylize between its ends is left out.
        ("a fox --v 6.1 --style raw --s 250", Parameters("a fox", ignored=("--v 6.1", "--s 250"), said=("raw",))),
        ("a fox --niji --tile --q .5", Parameters("a fox", ignored=("--q .5",), said=("niji", "tile"))),
        ("a fox --niji 6 --tile --tile --no text", Parameters("a fox", left_out=("text",), said=("niji", "tile"))),
        (
            "a fox --sref https://x.example/a.png 12 --p",
            Parameters("a fox", ignored=("--sref https://x.example/a.png 12", "--p")),
        ),
        ("a fox --no text, watermark", Parameters("a fox", left_out=("text, watermark",))),
        ("a fox --no text --no people", Parameters("a fox", left_out=("text", "people"))),
        # Not a run that ends the prompt, or not what the parameter takes: words, as typed.
        ("a sign saying --tile here", Parameters("a sign saying --tile here")),
        ("a fox --ar 16:9 in the snow", Parameters("a fox --ar 16:9 in the snow")),
        ("a fox --ar wide", Parameters("a fox --ar wide")),
        ("a fox --seed", Parameters("a fox --seed")),
        ("a fox --v six", Parameters("a fox --v six")),
        ("a fox--ar 16:9", Parameters("a fox--ar 16:9")),  # no space before the dashes
        ("a fox \u2014 ar 16:9", Parameters("a fox \u2014 ar 16:9")),
        ("a fox --ar \u0661\u0666:\u0669", Parameters("a fox --ar \u0661\u0666:\u0669")),  # Arabic-Indic digits
        ("a fox --\u212aeep 2", Parameters("a fox --\u212aeep 2")),  # the Kelvin sign is no "k"
        ("a fox --zoom 2 --ar 1:1", Parameters("a fox", ratio="1:1", zoom=True)),
        ("a fox --r 3", Parameters("a fox", repeat=3)),
        ("a fox --repeat 40 --v 7", Parameters("a fox", repeat=40, ignored=("--v 7",))),
        ("a fox --repeat many", Parameters("a fox --repeat many")),
        # A name not listed ends the run.
        ("a fox --foo 2 --v 6", Parameters("a fox --foo 2", ignored=("--v 6",))),
        ("--ar 16:9", Parameters("", ratio="16:9")),
    ],
)
def test_the_run_of_parameters_ending_a_prompt_is_read(text: str, expected: Parameters) -> None:
    assert split_parameters(text) == expected


def test_the_prompt_sent_says_no_in_words() -> None:
    typed = split_parameters("a fox in the snow --no text, watermark --no people --v 6")
    assert typed.prompt == "a fox in the snow, without text, watermark, without people"
    assert typed.has_parameters
    assert not split_parameters("a fox").has_parameters
    assert split_parameters("a fox").prompt == "a fox"
    assert split_parameters("a fox, --no text").prompt == "a fox, without text"


def test_tile_and_niji_are_said_in_words() -> None:
    """``--tile`` (Midjourney's seamless pattern) and ``--niji`` (its anime model) asked of Nano Banana in words, as
    ``--no`` is, rather than left out: a member who asked for a wallpaper tile got a picture whose edges did not
    meet."""
    typed = split_parameters("a wallpaper of lemons --tile --no leaves --niji 6")
    assert typed.prompt == (
        "a wallpaper of lemons, as a seamless, tileable pattern whose edges wrap around, in a Japanese anime "
        "illustration style, without leaves"
    )
    assert typed.ignored == () and typed.has_parameters
    assert split_parameters("a sign saying --tile here").prompt == "a sign saying --tile here"  # no run: words
    assert ignored_note(split_parameters("a fox --tile --v 6").ignored) == (
        "Left out `--v 6`: Midjourney's parameters, which mean nothing to Nano Banana."
    )


@given(st.text(alphabet=st.characters(blacklist_characters="-\u2013\u2014"), max_size=200))
def test_a_prompt_without_dashes_is_all_words(text: str) -> None:
    typed = split_parameters(text)
    assert (typed.words, typed.has_parameters) == (text, False)


@given(st.lists(st.sampled_from(["--v", "6", "--ar", "16:9", "--no", "text", "fox", "--foo", "\u2014seed", "7"])))
def test_the_words_are_what_the_prompt_starts_with(tokens: list[str]) -> None:
    text = " ".join(tokens)
    typed = split_parameters(text)
    assert text.startswith(typed.words)
    assert typed.has_parameters == (typed.words != text)


def test_a_long_run_of_parameters_is_read_whole() -> None:
    """6,000 characters of parameters: every one read (the prompt is cut at each name once, then the run is
    walked back once, so no piece is read again from each name on)."""
    typed = split_parameters("a fox " + "--v 6 " * 999)
    assert (typed.words, typed.ignored) == ("a fox", ("--v 6",) * 999)
    assert split_parameters("a " + "--no x " * 850).left_out == ("x",) * 850
    assert split_parameters("--foo " * 1000 + "--v 6").ignored == ("--v 6",)


def test_the_note_names_a_link_by_its_file_and_says_how_to_give_a_style_reference() -> None:
    signed = "https://cdn.discordapp.com/attachments/1/2/style.png?ex=6b&is=6a&hm=0123456789abcdef&"
    note = ignored_note([f"--sref {signed}", "--v 6"])
    assert note is not None and note.startswith("Left out `--sref style.png --v 6`: ")
    assert "hm=" not in note and "0123456789abcdef" not in note and note.endswith(REFERENCE_ROLE)
    assert ignored_note(["--cref https://example.com/"]) == (
        f"Left out `--cref example.com`: Midjourney's parameters, which mean nothing to Nano Banana. {REFERENCE_ROLE}"
    )
    assert ignored_note(["—oref https://example.com/a/b/c"]) is not None
    assert "<link>" in (ignored_note(["--oref https://example.com/a/b/c"]) or "")
    # Other parameters are only named.
    assert (
        ignored_note(["--style 4b"])
        == "Left out `--style 4b`: Midjourney's parameters, which mean nothing to Nano Banana."
    )
    assert ignored_note([]) is None


def test_a_weight_with_no_image_of_its_role_is_named_with_where_it_goes() -> None:
    """``--sw 300`` with no ``--sref <link>`` in the same words weighs nothing (bot/prompt_links.py takes the ones
    that do): named back, with how to give it; with a code after --sref, the link's note is the one owed."""
    assert ignored_note(["--sw 300"]) == (
        f"Left out `--sw 300`: Midjourney's parameters, which mean nothing to Nano Banana. {WEIGHT_ALONE}"
    )
    assert (ignored_note(["--sref 1234", "--sw 50"]) or "").endswith(REFERENCE_ROLE)


def test_iw_is_read_and_said_as_how_much_the_references_count() -> None:
    """Midjourney's image weight: read from the run (and named as left out where nothing takes it), said in words
    by /imagine where it has references to weigh (cogs/imagine.py); Midjourney's default (1) says nothing."""
    typed = split_parameters("a fox --iw 2 --ar 16:9")
    assert (typed.image_weight, typed.ratio, typed.ignored) == (2.0, "16:9", ("--iw 2",))
    assert with_image_weight("a fox, without text", 2.0) == (
        "a fox, without text. Follow the reference images closely: they count more than the words."
    )
    assert with_image_weight("a fox", 0.25).endswith(
        "Use the reference images only loosely, as inspiration: the words count more."
    )
    assert with_image_weight("a fox", 1) == "a fox" and image_weight_sentence(0.5) is not None
    assert (ignored_note(["--iw 2"]) or "").endswith(IMAGE_WEIGHT_ALONE)


@pytest.mark.parametrize(
    ("typed", "said", "ignored"),
    [
        ("a fox --style raw", ("raw",), ()),
        ("a fox --raw", ("raw",), ()),
        ("a fox --s 50", ("literal",), ()),
        ("a fox --stylize 51", (), ("--stylize 51",)),
        ("a fox --s 499", (), ("--s 499",)),
        ("a fox --s 500", ("stylised",), ()),
        ("a fox --weird 249", (), ("--weird 249",)),
        ("a fox --w 250", ("offbeat",), ()),
        ("a fox --style 4b --s 1000 --weird 3000", ("stylised", "offbeat"), ("--style 4b",)),
        ("a fox --chaos 49", (), ("--chaos 49",)),
        ("a fox --c 50", ("unexpected",), ()),
        ("a fox --chaos 100 --w 3000", ("unexpected", "offbeat"), ()),
    ],
)
def test_style_raw_and_stylize_or_weird_at_their_ends_are_said_in_words(
    typed: str, said: tuple[str, ...], ignored: tuple[str, ...]
) -> None:
    """Midjourney's --style raw (a plain photographic look), --stylize at 50 or under (literal) or 500 or over
    (strongly stylised), --weird at 250 or over (offbeat) and --chaos at 50 or over (an unexpected composition):
    said in words, as --tile is; between, left out."""
    parameters = split_parameters(typed)
    assert (parameters.said, parameters.ignored) == (said, ignored)
    assert all(IN_WORDS[name] in parameters.prompt for name in said)
