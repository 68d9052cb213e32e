"""What a reference image is for, when the member said: Midjourney's ``--sref``, ``--cref`` and ``--oref``.

Members coming from Midjourney give an image's link after ``--sref`` to take its style (``--cref``: its character,
``--oref``: its subject). Nano Banana has no such parameters: every reference is an image in the request, and what
the model does with each is said in words. So such an image is a reference like any other, marked with its role
(bot/prompt_links.py takes it out of the words), and the prompt sent says what each marked image is for by its place
among the request's references ("Take only the style of the second image: ..."), worked out when the request is
sent (GenerationRequest.sent_prompt), not when it is typed: a Vary puts the image it varies first, an upscale sends
that image alone, an edit sends its own images. The role goes with the image, and the sentence names the places the
request being sent has, or is left out where the image is not among them.

The sentence is never shown as the member's words, nor judged by moderation as theirs: the prompt holds the member's
words alone; the image's message says which reference is for what (bot/render.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Role = Literal["style", "character", "subject"]
# Midjourney's parameter for each role.
PARAMETERS: dict[str, Role] = {"sref": "style", "cref": "character", "oref": "subject"}
# What the model is asked to do with the images of each role, ``{images}`` naming them.
_ASKED: dict[Role, str] = {
    "style": "Take only the style of {images}: {their} colours, light, medium and texture, not what {it} {shows}.",
    "character": "Draw the same character as in {images}, with the same face, hair and clothes.",
    "subject": "Include the subject of {images}, as it looks there.",
}
# How the image's message names each role ("the second for style").
SHOWN: dict[Role, str] = {"style": "style", "character": "its character", "subject": "its subject"}
_ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
)


def ordinal(place: int) -> str:
    """``place`` (1-based) as a word ("second"), past the sixteenth as a number ("17th")."""
    if place <= len(_ORDINALS):
        return _ORDINALS[place - 1]
    return f"{place}th"


def places_named(places: Sequence[int], total: int) -> str:
    """The images at ``places`` (1-based) among ``total`` references, as the prompt names them: "the image" when it
    is the only one, "the second image", "the first and third images"."""
    if total == 1:
        return "the image"
    words = [ordinal(place) for place in places]
    if len(words) == 1:
        return f"the {words[0]} image"
    return f"the {', '.join(words[:-1])} and {words[-1]} images"


def roles_sentence(roles: Sequence[str | None]) -> str | None:
    """What the model is asked to do with the references whose roles are ``roles`` (one per reference, in the
    request's order; None: an image with no role given), or None where none has one."""
    sentences = []
    for role, asked in _ASKED.items():
        places = [place for place, given in enumerate(roles, start=1) if given == role]
        if not places:
            continue
        many = len(places) > 1
        sentences.append(
            asked.format(
                images=places_named(places, len(roles)),
                their="their" if many else "its",
                it="they" if many else "it",
                shows="show" if many else "shows",
            )
        )
    return " ".join(sentences) or None


def with_roles(prompt: str, roles: Sequence[str | None]) -> str:
    """``prompt`` as sent: the member's words, then what the references with a role are for."""
    sentence = roles_sentence(roles)
    if sentence is None:
        return prompt
    # "a fox," or /blend's "Blend these images ...:" with no words after it: the sentence ends the words.
    words = prompt.rstrip().rstrip(",;:").rstrip()
    if not words:
        return sentence
    end = "" if words[-1] in ".!?" else "."
    return f"{words}{end} {sentence}"


def roles_shown(roles: Sequence[str | None]) -> str | None:
    """What the references given a role are for, as the image's message says it ("1 for style, 2 for its
    character"); None where none has a role."""
    counts = [(sum(1 for given in roles if given == role), shown) for role, shown in SHOWN.items()]
    return ", ".join(f"{count} for {shown}" for count, shown in counts if count) or None
