"""Midjourney's parameters at the end of a prompt, as members coming from Midjourney type them.

"a fox in the snow --ar 16:9 --v 6 --style raw --no text" is how a Midjourney user asks for an image. Only
``--ar`` at the very end was read before; with anything after it the whole line went to the model as words,
``--v 6`` and all, and the shape asked for was not the one made. :func:`split_parameters` reads the run of
parameters that ends the prompt, as Midjourney reads them:

* ``--ar W:H`` (``--aspect``) is the image's shape, ``--seed N`` its seed and ``--repeat N`` (``--r``) how many
  images, as the command's own options (``count`` for the last);
  ``--zoom`` (any factor) a zoom out, in an edit of an image (cogs/shape_field.py);
* ``--no X`` asks for X to be left out: Nano Banana takes that in words, so it goes on as ", without X"; ``--tile``
  (a seamless pattern) and ``--niji`` (Midjourney's anime model) are said in words too (``IN_WORDS``), as are
  ``--style raw``, ``--stylize`` at its ends and a high ``--weird`` or ``--chaos`` (``_said_by_value``);
* ``--sref``, ``--cref`` and ``--oref`` with an image's link on Discord are taken out before (bot/prompt_links.py:
  the image is a reference with that role, bot/reference_roles.py), with their weights (``--sw``, ``--cw``,
  ``--ow``); with Midjourney's codes they are left out, as is a weight with no such link;
* ``::`` parts before the run (``space:: ship``, ``a cat::2 a dog``) are said in words too (bot/multi_prompts.py);
* ``--iw`` (how much the reference images count) is said in words where the request has references
  (``image_weight_sentence``, cogs/imagine.py), and named as left out where it has none;
* the rest (``--v``, ``--style``, ``--stylize``, ``--chaos``, ``--quality``, ``--raw`` and the like)
  mean nothing to Nano Banana: they are taken out and named back to the member (cogs/imagine.py).

A parameter starts with "--", or with the one dash a phone's smart punctuation makes of it (iOS turns "--" into
"—"), after a space, and only a run that ends the prompt counts, each parameter with the values it takes: in
"a sign saying --tile here" nothing is taken, and a name not listed here ends the run (of "--foo 2 --v 6" only
"--v 6" is taken). Parsing is one pass over the prompt's words, whatever the prompt holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.multi_prompts import read_multi_prompt

# "--name" (or "—name", "–name") standing as a word of its own.
# ASCII only: U+212A (the Kelvin sign) is no "k" here, nor an Arabic-Indic digit a digit of a ratio.
# A parameter's dashes as members type them: two, or the one dash Discord's clients may make of two.
DASHES = r"(?:--|[\u2013\u2014])"
_NAME = re.compile(rf"{DASHES}([a-z]+)", re.IGNORECASE | re.ASCII)
_NUMBER = re.compile(r"[0-9]{0,6}(?:\.[0-9]{1,4})?")
_RATIO = re.compile(r"[0-9]{1,3}:[0-9]{1,3}|auto")
_SEED = re.compile(r"[0-9]{1,20}")
_WORD = re.compile(r"[a-z0-9][a-z0-9-]{0,30}", re.IGNORECASE | re.ASCII)

RATIO_NAMES = frozenset({"ar", "aspect"})
SEED_NAMES = frozenset({"seed", "sameseed"})
REPEAT_NAMES = frozenset({"r", "repeat"})
NO_NAME = "no"
ZOOM_NAME = "zoom"
# Midjourney's image weight: how much the reference images count against the words (0 to 3, 1 its default).
IMAGE_WEIGHT_NAME = "iw"
# Midjourney's parameters that Nano Banana has no use for, by what value each takes.
_NUMERIC = frozenset(
    {"v", "version", "s", "stylize", "q", "quality", "c", "chaos", "w", "weird", IMAGE_WEIGHT_NAME}
    | {"sw", "cw", "ow", "sv", "stop", "exp", "bs"}
)
_MAYBE_NUMBER = frozenset({"niji", ZOOM_NAME})
_BARE = frozenset(
    {"tile", "raw", "hd", "fast", "relax", "turbo", "draft", "video", "loop", "test", "testp", "creative"}
    | {"uplight", "upbeta", "upanime"}
)
_ONE_WORD = frozenset({"style", "motion"})
_ANY_VALUES = frozenset({"p", "profile", "personalize"})  # a profile's codes, or none (the default profile)
_SOME_VALUES = frozenset({"sref", "cref", "oref"})  # links or codes
# Midjourney's parameters whose meaning Nano Banana takes in words, as ``--no``'s: ``--tile`` a seamless pattern,
# ``--niji`` (its anime model, any version) an anime illustration. Said after the words, once each.
IN_WORDS = {
    "tile": "as a seamless, tileable pattern whose edges wrap around",
    "niji": "in a Japanese anime illustration style",
    # By their values (``_said_by_value``; keyed apart from the names, but ``--raw``'s own): ``--style raw``,
    # ``--stylize`` at its ends, a high ``--weird`` or ``--chaos``.
    "raw": "in a plain, photographic look, without added artistic embellishment",
    "literal": "rendered literally, with little added artistic styling",
    "stylised": "with a strongly artistic, stylised interpretation",
    "offbeat": "with an offbeat, unconventional, surreal twist",
    # Midjourney's high --chaos makes its grid's images unlike each other, in unexpected compositions; each image
    # here is drawn on its own, so what can be asked is the unexpected take.
    "unexpected": "in an unexpected, unconventional composition",
}
# Where Midjourney's --stylize (0-1000, 100 its default) and --weird (0-3000) ask for enough to be said in words.
STYLIZE_LOW = 50
STYLIZE_HIGH = 500
WEIRD_HIGH = 250
CHAOS_HIGH = 50  # of 0-100


def _said_by_value(name: str, values: list[str]) -> str | None:
    """The IN_WORDS entry a parameter asks for by its value (a run's, so its form is checked: ``_fits``): ``--style
    raw`` and ``--raw`` a plain photographic look, ``--stylize`` 50 or under a literal rendering and 500 or over a
    strongly stylised one, ``--weird`` 250 or over an offbeat twist, ``--chaos`` 50 or over an unexpected composition;
    None for any other (left out, as before)."""
    if name == "raw" or (name == "style" and values[0].lower() == "raw"):
        return "raw"
    if name in ("s", "stylize"):
        level = float(values[0])
        return "literal" if level <= STYLIZE_LOW else "stylised" if level >= STYLIZE_HIGH else None
    if name in ("w", "weird"):
        return "offbeat" if float(values[0]) >= WEIRD_HIGH else None
    if name in ("c", "chaos"):
        return "unexpected" if float(values[0]) >= CHAOS_HIGH else None
    return None


@dataclass(frozen=True, slots=True)
class Parameters:
    """A prompt's words and what the run of parameters ending it asked for."""

    words: str
    ratio: str | None = None  # "16:9", "auto"; whether the model offers it is for the caller to say
    seed: int | None = None
    repeat: int | None = None  # how many images (``count``); whether that many may be made is for the caller
    zoom: bool = False
    left_out: tuple[str, ...] = ()  # each ``--no``'s words
    ignored: tuple[str, ...] = ()  # the parameters Nano Banana has no use for, as typed ("--v 6")
    said: tuple[str, ...] = ()  # the parameters taken in words (``IN_WORDS``), by name: ("tile",)
    # ``--iw``'s value (also in ``ignored``, as typed): said in words where the request has references to weigh
    # (``image_weight_sentence``), named as left out where it has none.
    image_weight: float | None = None

    @property
    def has_parameters(self) -> bool:
        asked = (self.ratio, self.seed, self.repeat)
        taken = self.left_out or self.ignored or self.said
        return any(value is not None for value in asked) or self.zoom or bool(taken)

    @property
    def drawn(self) -> str:
        """What the words ask to draw, without the parameters and the parts weighed out (bot/multi_prompts.py)."""
        return read_multi_prompt(self.words).drawn

    @property
    def prompt(self) -> str:
        """The words to send: ``--no X``, ``--tile`` and ``--niji`` said as Nano Banana takes them, and a
        multi-prompt's ``::`` parts (bot/multi_prompts.py)."""
        parts = read_multi_prompt(self.words)
        left_out = (*parts.left_out, *self.left_out)
        if not left_out and not self.said:
            return parts.drawn
        # "a fox, --no text" is "a fox, without text", not "a fox,, without text".
        words = [parts.drawn.rstrip(" ,;")] if parts.drawn.rstrip(" ,;") else []
        asked = [IN_WORDS[name] for name in self.said]
        return ", ".join([*words, *asked, *(f"without {what}" for what in left_out)])


_KNOWN = (
    RATIO_NAMES
    | SEED_NAMES
    | REPEAT_NAMES
    | {NO_NAME}
    | _NUMERIC
    | _MAYBE_NUMBER
    | _BARE
    | _ONE_WORD
    | _ANY_VALUES
    | _SOME_VALUES
)


def known_parameter(name: str) -> bool:
    """Whether ``name`` (lower case, without its dashes) is one of the parameters read here, Midjourney's: a
    member's option set may not take its name (bot/option_sets.py)."""
    return name in _KNOWN


def _fits(name: str, values: list[str]) -> bool:
    """Whether ``values`` are what parameter ``name`` takes (False for a name not known here)."""
    if name in RATIO_NAMES:
        return _RATIO.fullmatch("".join(values).lower()) is not None
    if name in SEED_NAMES or name in REPEAT_NAMES:
        return len(values) == 1 and _SEED.fullmatch(values[0]) is not None
    if name == NO_NAME or name in _SOME_VALUES:
        return bool(values)
    if name in _NUMERIC:
        return len(values) == 1 and _NUMBER.fullmatch(values[0]) is not None and any(c.isdigit() for c in values[0])
    if name in _MAYBE_NUMBER:
        return not values or (len(values) == 1 and _NUMBER.fullmatch(values[0]) is not None)
    if name in _BARE:
        return not values
    if name in _ONE_WORD:
        return len(values) == 1 and _WORD.fullmatch(values[0]) is not None
    return name in _ANY_VALUES


def split_parameters(text: str) -> Parameters:
    """``text`` (cleaned: bot/prompts.py ``clean_prompt``) split into its words and the run of Midjourney
    parameters that ends it; all words and nothing asked where it ends otherwise."""
    # The prompt cut at each parameter's name: each piece a name and the words up to the next name.
    pieces: list[tuple[int, str, list[str]]] = []  # (where the name starts, name, values)
    for found in re.finditer(r"\S+", text):
        named = _NAME.fullmatch(found[0])
        if named is not None:
            pieces.append((found.start(), named[1].lower(), []))
        elif pieces:
            pieces[-1][2].append(found[0])
    # The run that ends the prompt: from the last piece back, as long as each is a parameter with its values.
    start = len(pieces)
    while start > 0 and _fits(pieces[start - 1][1], pieces[start - 1][2]):
        start -= 1
    run = pieces[start:]
    if not run:
        return Parameters(text)
    ratio: str | None = None
    seed: int | None = None
    repeat: int | None = None
    zoom = False
    left_out: list[str] = []
    ignored: list[str] = []
    said: list[str] = []
    image_weight: float | None = None
    for _, name, values in run:
        if name in RATIO_NAMES:
            ratio = "".join(values).lower()  # the last one given, as Midjourney takes it
        elif name in SEED_NAMES:
            seed = int(values[0])
        elif name in REPEAT_NAMES:
            repeat = int(values[0])
        elif name == ZOOM_NAME:
            zoom = True
        elif name == NO_NAME:
            left_out.append(" ".join(values).rstrip(" ,"))
        elif name in IN_WORDS:
            said += [name] if name not in said else []
        elif (asked := _said_by_value(name, values)) is not None:
            said += [asked] if asked not in said else []
        else:
            image_weight = float(values[0]) if name == IMAGE_WEIGHT_NAME else image_weight
            ignored.append(" ".join([f"--{name}", *values]))
    words = text[: run[0][0]].rstrip()
    return Parameters(words, ratio, seed, repeat, zoom, tuple(left_out), tuple(ignored), tuple(said), image_weight)


def image_weight_sentence(weight: float) -> str | None:
    """What ``--iw`` asks of a request with reference images, in words (None: Midjourney's default, as without it):
    0.5 or under, the images as loose inspiration; 1.5 or over, followed closely."""
    if weight <= 0.5:
        return "Use the reference images only loosely, as inspiration: the words count more."
    if weight >= 1.5:
        return "Follow the reference images closely: they count more than the words."
    return None


def with_image_weight(prompt: str, weight: float) -> str:
    """``prompt`` with what ``--iw`` asks of its reference images (``image_weight_sentence``) after it."""
    sentence = image_weight_sentence(weight)
    if sentence is None:
        return prompt
    words = prompt.rstrip().rstrip(",;:").rstrip()
    end = "" if not words or words[-1] in ".!?" else "."
    return f"{words}{end} {sentence}".strip()


def ignored_note(ignored: Sequence[str]) -> str | None:
    """The private word on the Midjourney parameters taken out of a prompt or an edit's words (None if none); for
    a style, character or omni reference given another way than an image's link (``--sref 1234``), how to give it."""
    if not ignored:
        return None
    # A link is named by its file: a Discord file link's signature is never repeated in a message of the bot's.
    shown = " ".join(_LINK.sub(_file_of, text) for text in ignored)
    # In a code span Discord shows the text as it is (no Markdown, no mention); a backtick would end it.
    shown = shown.replace("`", "'")
    shown = shown if len(shown) <= 200 else shown[:199] + "\u2026"
    note = f"Left out `{shown}`: Midjourney's parameters, which mean nothing to Nano Banana."
    names = {text.split(" ", 1)[0].lstrip("-\u2013\u2014").lower() for text in ignored}
    if names & _SOME_VALUES:
        note += f" {REFERENCE_ROLE}"
    elif names & _WEIGHTS:
        note += f" {WEIGHT_ALONE}"
    if IMAGE_WEIGHT_NAME in names:
        note += f" {IMAGE_WEIGHT_ALONE}"
    return note


# What a member who gave Midjourney's --sref, --cref or --oref a code (``--sref 1234``, ``random``) does here instead:
# an image's link after it is taken (bot/prompt_links.py, bot/reference_roles.py).
REFERENCE_ROLE = (
    "Here `--sref`, `--cref` and `--oref` take an image's link, not Midjourney's codes: right-click an image in "
    "Discord → Copy Link, and paste it after them (`a fox --sref <link>`)."
)
# A weight typed with no image's link for it in the same words (the weighed image alone is weighed).
WEIGHT_ALONE = (
    "`--sw`, `--cw` and `--ow` weigh the images whose links follow `--sref`, `--cref` and `--oref` in the same words "
    "(`a fox --sref <link> --sw 300`)."
)
_WEIGHTS = frozenset({"sw", "cw", "ow"})
# ``--iw`` where there was no reference image to weigh (an edit's own image is the one it changes, not a reference).
IMAGE_WEIGHT_ALONE = (
    "`--iw` weighs an /imagine's reference images (attached or linked, not those after `--sref`), and there were none."
)
_LINK = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def _file_of(link: re.Match[str]) -> str:
    """A link as its file's name (``style.png``), else ``<link>``."""
    name = link[0].split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return name if "." in name and "://" not in name and len(name) <= 60 else "<link>"
