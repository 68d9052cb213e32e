"""Choices in braces in a command's prompt (Midjourney's permutation prompts: bot/permutations.py), held to the
server's images per command and to words: each prompt they make is one image of one batch (cogs/imagine.py)."""

from __future__ import annotations

from bot.errors import InvalidRequestError
from bot.permutations import COUNT_CEILING, TooManyPrompts, Variant, expand
from bot.prompt_parameters import split_parameters

EXAMPLE = "`a {red, green} bird` is two images, a red bird and a green one"


def prompt_choices(words: str, *, count: int | None, cap: int) -> tuple[list[Variant], int]:
    """The prompts ``words`` makes (itself alone without choices) and how many images of each (``count``, else
    one: with choices, the choices say how many); refused, privately, past ``cap`` images in all, where a choice
    holds a parameter (``--ar {1:1, 16:9}``: its value would be sent as words) or leaves no words."""
    try:
        variants = expand(words, most=cap)
    except TooManyPrompts as too_many:
        many = f"more than {COUNT_CEILING:,}" if too_many.count >= COUNT_CEILING else f"{too_many.count}"
        raise InvalidRequestError(
            f"The choices in braces make {many} prompts, one image each ({EXAMPLE}); this server makes up to "
            f"{cap} image{'s' if cap != 1 else ''} per command. Give fewer choices, or send several commands."
        ) from None
    if len(variants) == 1:
        return variants, count or 1
    if any(split_parameters(variant.text).has_parameters for variant in variants):
        raise InvalidRequestError(
            "Only the words take choices in braces: a parameter such as `--ar` takes one value, typed after the "
            "words (`a {red, green} bird --ar 16:9`)."
        )
    if any(not variant.text.strip() for variant in variants):
        raise InvalidRequestError(
            "One of the choices in braces leaves nothing to draw: each prompt they make needs words of its own."
        )
    each = count or 1
    if each * len(variants) > cap:
        raise InvalidRequestError(
            f"The choices in braces make {len(variants)} prompts, and you asked for {each} images of each: "
            f"{each * len(variants)} in all; this server makes up to {cap} per command. Leave out the count (one "
            "image per choice), or give fewer choices."
        )
    return variants, each
