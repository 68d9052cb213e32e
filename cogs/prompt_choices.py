"""Choices in braces in a command's prompt (Midjourney's permutation prompts: bot/permutations.py), each prompt
they make read for Midjourney's parameters (``a bird --ar {1:1, 16:9}``: a square bird and a wide one) and held to
the server's images per command: each is one image of one batch (cogs/imagine.py)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import InvalidRequestError
from bot.models import GenerationRequest
from bot.permutations import COUNT_CEILING, TooManyPrompts, Variant, expand, number_of
from bot.prompt_parameters import Parameters, split_parameters
from bot.wording import counted

EXAMPLE = "`a {red, green} bird` is two images, a red bird and a green one"


@dataclass(frozen=True)
class Choice:
    """One prompt of a command: its words and the parameters that end them, and the choice it took in each group
    of braces (() without any)."""

    typed: Parameters
    picks: tuple[str, ...]


def prompt_choices(words: str, *, cap: int) -> list[Choice]:
    """The prompts ``words`` makes (itself alone without choices), each read for its parameters; refused,
    privately, past ``cap`` of them, or where a choice leaves no words at all."""
    return [Choice(split_parameters(variant.text), variant.picks) for variant in _variants(words, cap=cap)]


def _variants(words: str, *, cap: int, empty: bool = False) -> list[Variant]:
    """``words`` written out (``expand``); ``empty``: a choice may leave no words (an edit's, beside a Reframe)."""
    try:
        variants = expand(words, most=cap)
    except TooManyPrompts as too_many:
        many = f"more than {COUNT_CEILING:,}" if too_many.count >= COUNT_CEILING else f"{too_many.count}"
        raise InvalidRequestError(
            f"The choices in braces make {many} prompts, one image each ({EXAMPLE}); this server makes up to "
            f"{counted(cap, 'image')} per command. Give fewer choices, or send several commands."
        ) from None
    if not empty and len(variants) > 1 and any(not variant.text.strip() for variant in variants):
        raise InvalidRequestError(
            "One of the choices in braces leaves nothing to draw: each prompt they make needs words of its own."
        )
    return variants


def images_of_each(prompts: int, count: int | None, *, cap: int) -> int:
    """How many images of each of ``prompts`` made by choices (``count``, else one: the choices say how many);
    refused, privately, past ``cap`` in all."""
    each = count or 1
    if each * prompts > cap:
        raise InvalidRequestError(
            f"The choices in braces make {prompts} prompts, and you asked for {each} images of each: "
            f"{each * prompts} in all; this server makes up to {cap} per command. Leave out the count (one "
            "image per choice), or give fewer choices."
        )
    return each


def one_repeat(choices: list[Choice]) -> None:
    """``--repeat`` in a choice (``{a --repeat 2, b}``) would give each prompt its own count: refused."""
    if len({choice.typed.repeat for choice in choices}) > 1:
        raise InvalidRequestError(
            "`--repeat` asks for that many images of every choice: type it once, after the braces."
        )


@dataclass(frozen=True)
class Typed:
    """Which of the options a form's words ask for themselves, in any prompt their choices make."""

    ratio: bool
    seed: bool
    repeat: bool


def typed_anywhere(words: str, *, most: int) -> Typed:
    """Whether ``words`` (Change prompt's) type ``--ar``, ``--seed`` or ``--repeat`` in any of their prompts, whose
    own then take the place of the request's (``a bird --ar {1:1, 16:9}`` asks both shapes); judged on the words
    alone past ``most`` prompts, which the command refuses anyway, saying how many."""
    try:
        variants = [variant.text for variant in expand(words, most=most)]
    except TooManyPrompts:
        variants = [words]
    typed = [split_parameters(text) for text in variants]
    return Typed(
        ratio=any(t.ratio is not None for t in typed),
        seed=any(t.seed is not None for t in typed),
        repeat=any(t.repeat is not None for t in typed),
    )


# A reply's words are one instruction to one image: its answer is one reply with one image.
ONE_INSTRUCTION = (
    "Choices in braces (`{night, winter}`) make an image of each, which a reply's answer (one image) cannot "
    "show: use the image's **Edit** button with the same words, or send one choice at a time."
)


def one_instruction(words: str) -> None:
    """Refuse, privately, a reply's words whose braces hold choices: sent as typed, the model would get the braces
    and draw one muddle of them, charged."""
    if number_of(words) > 1:
        raise InvalidRequestError(ONE_INSTRUCTION)


def edit_choices(words: str, *, cap: int) -> list[Variant]:
    """The instructions an edit's words make (``make it {night, winter}``: an edit of the image for each, one
    batch), each with the parameters after them (read again by cogs/shape_field.py), held as a command's choices
    are; a parameter in a choice is refused: an edit's frame is one (the image's, or the form's Reframe). A choice
    may leave no words: with a Reframe it is the reframe alone (``{, add a lake}`` beside Zoom out), else the edit
    is refused as any edit with nothing to change is (cogs/shape_field.py)."""
    variants = _variants(words, cap=cap, empty=True)
    if len({_parameters(split_parameters(variant.text)) for variant in variants}) > 1:
        raise InvalidRequestError(
            "In an edit, choices in braces take words: a parameter such as `--ar` is typed once, after them."
        )
    return variants


def _parameters(typed: Parameters) -> tuple[object, ...]:
    return (typed.ratio, typed.seed, typed.repeat, typed.zoom, typed.left_out, typed.ignored, typed.said)


def one_of(request: GenerationRequest, words: str, variant: Variant, *, many: bool) -> GenerationRequest:
    """``request`` (made from ``variant``'s words) as one image of the batch ``words`` made, when ``many``: its
    words as typed and its pick kept, as a command's choices are (the batch's message shows them); else one image,
    with none (reworded from an image of such a batch, it had that batch's)."""
    if not many:
        return request.model_copy(update={"permutation": None, "picks": ()}) if request.permutation else request
    return request.model_copy(update={"permutation": words, "picks": variant.picks})
