"""What a reference image is for, when the member said: Midjourney's ``--sref``, ``--cref`` and ``--oref``.

Members coming from Midjourney give an image's link after ``--sref`` to take its style (``--cref``: its character,
``--oref``: its subject). Nano Banana has no such parameters: every reference is an image in the request, and what
the model does with each is said in words. So such an image is a reference like any other, marked with its role
(bot/prompt_links.py takes it out of the words), and the prompt sent says what each marked image is for by its place
among the request's references ("Take only the style of the second image: ..."), worked out when the request is
sent (GenerationRequest.sent_prompt), not when it is typed: a Vary puts the image it varies first, an upscale sends
that image alone, an edit sends its own images. The role goes with the image, and the sentence names the places the
request being sent has, or is left out where the image is not among them.

Midjourney's weights for them (``--sw``, ``--cw``, ``--ow``, given with the links in the same words) are said in
words too: how closely the style is taken, whether the character keeps only its face (``--cw 0``), how loosely the
subject is followed (``weight_asked``). Each weight goes with the images of its role, as the role does.

The sentence is never shown as the member's words, nor judged by moderation as theirs: the prompt holds the member's
words alone; the image's message says which reference is for what (bot/render.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

Role = Literal["style", "character", "subject"]
# Midjourney's parameter for each role.
PARAMETERS: dict[str, Role] = {"sref": "style", "cref": "character", "oref": "subject"}
# Midjourney's weight for each role (``--sw 50``) and the whole numbers it takes; 100 is its default for each.
WEIGHTS: dict[str, Role] = {"sw": "style", "cw": "character", "ow": "subject"}
WEIGHT_RANGE: dict[Role, tuple[int, int]] = {"style": (0, 1000), "character": (0, 100), "subject": (1, 1000)}
# What a weight out of its range is refused with (bot/prompt_links.py).
WEIGHT_HELP: dict[Role, str] = {
    "style": "`--sw` takes a whole number from 0 to 1000: 100 is Midjourney's default, lower takes less of the "
    "style, higher follows it more closely.",
    "character": "`--cw` takes a whole number from 0 to 100: 0 keeps only the character's face, 100 its face, hair "
    "and clothes.",
    "subject": "`--ow` takes a whole number from 1 to 1000: 100 is Midjourney's default, lower follows the subject "
    "more loosely, higher more closely.",
}
# What the model is asked to do with the images of each role, by how much of it the weight asks for ("": as much
# as Midjourney's default does), ``{images}`` naming them.
_ASKED: dict[tuple[Role, str], str] = {
    ("style", "light"): (
        "Take only a light touch of the style of {images}: a hint of {their} colours, light, medium and texture, "
        "not what {it} {shows}."
    ),
    ("style", ""): (
        "Take only the style of {images}: {their} colours, light, medium and texture, not what {it} {shows}."
    ),
    ("style", "strong"): (
        "Follow the style of {images} closely: {their} colours, light, medium and texture, not what {it} {shows}."
    ),
    ("character", "face"): (
        "Draw the same character as in {images}, keeping only the face: the hair and clothes need not match."
    ),
    ("character", "face and hair"): (
        "Draw the same character as in {images}, keeping the face and hair: the clothes need not match."
    ),
    ("character", ""): "Draw the same character as in {images}, with the same face, hair and clothes.",
    ("subject", "light"): "Include a subject like the one in {images}, loosely: its details may differ.",
    ("subject", ""): "Include the subject of {images}, as it looks there.",
    ("subject", "strong"): "Include the subject of {images} exactly as it looks there, every detail kept.",
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


def weight_asked(role: str | None, weight: int | None) -> str:
    """How much of its role an image's weight asks for, as ``_ASKED`` words it: for the style and the subject "light"
    (Midjourney's weight 50 or under), "" (between) or "strong" (200 and over); for the character "face" (``--cw``
    33 or under: Midjourney keeps only the face at 0), "face and hair" (up to 66) or "" (face, hair and clothes)."""
    if weight is None:
        return ""
    if role == "character":
        return "face" if weight <= 33 else "face and hair" if weight <= 66 else ""
    return "light" if weight <= 50 else "strong" if weight >= 200 else ""


def roles_sentence(roles: Sequence[str | None], weights: Sequence[int | None] = ()) -> str | None:
    """What the model is asked to do with the references whose roles are ``roles`` (one per reference, in the
    request's order; None: an image with no role given), or None where none has one. ``weights``: each reference's
    weight for its role (None, or none given: Midjourney's default)."""
    asked_of = [weight_asked(role, weights[i] if i < len(weights) else None) for i, role in enumerate(roles)]
    sentences = []
    for (role, degree), asked in _ASKED.items():
        places = [
            place for place, given in enumerate(roles, start=1) if given == role and asked_of[place - 1] == degree
        ]
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


def with_roles(prompt: str, roles: Sequence[str | None], weights: Sequence[int | None] = ()) -> str:
    """``prompt`` as sent: the member's words, then what the references with a role are for (``roles_sentence``)."""
    sentence = roles_sentence(roles, weights)
    if sentence is None:
        return prompt
    # "a fox," or /blend's "Blend these images ...:" with no words after it: the sentence ends the words.
    words = prompt.rstrip().rstrip(",;:").rstrip()
    if not words:
        return sentence
    end = "" if words[-1] in ".!?" else "."
    return f"{words}{end} {sentence}"


def roles_shown(roles: Sequence[str | None], weights: Sequence[int | None] = ()) -> str | None:
    """What the references given a role are for, as the image's message says it ("1 for style, 2 for its
    character", "1 for style at --sw 300" with a weight); None where none has a role."""
    given = [(role, weights[i] if i < len(weights) else None) for i, role in enumerate(roles)]
    shown = []
    for role, said in SHOWN.items():
        counts = Counter(weight for named, weight in given if named == role)
        parameter = next(name for name, weighed in WEIGHTS.items() if weighed == role)
        for weight, count in sorted(counts.items(), key=lambda item: -1 if item[0] is None else item[0]):
            shown.append(f"{count} for {said}" + ("" if weight is None else f" at --{parameter} {weight}"))
    return ", ".join(shown) or None
