"""Requests that work on a delivered image: Vary (strong or subtle), Edit (with a new frame: a shape, a
zoom out) and re-render (docs/architecture.md section 4.7).

Each takes the earlier job's request and the image as Discord serves it now, and keeps every option the
member chose (model, ratio, size, format, thinking, web search); the cog then sends it through the
same moderation, quota and provider choice as /imagine.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.catalogue import Catalogue
from bot.models import Derivation, GenerationRequest, JobState, PanWay, ReferenceImage, Turn
from bot.providers.base import RESOLUTIONS
from bot.providers.families import ASPECT_RATIOS
from bot.regions import Region, in_region
from bot.store.jobs import Job

# Sizes a re-render offers; only those above the image's own and served for its model are shown.
UPSCALE_SIZES: tuple[str, ...] = ("2K", "4K")
SEED_LIMIT = 2**31  # GenerationRequest.seed is below this
# Earlier turns an edit keeps in its request (providers send fewer: bot/providers/gemini.py).
HISTORY_KEPT = 8
# The earlier job's id and a link to the message that showed its image (None where there is none).
Origin = tuple[str, str | None]


def reference_limit(catalogue: Catalogue, model: str) -> int:
    """The most references any enabled provider takes for ``model`` (provider choice then finds one)."""
    limits = [caps.max_reference_images for p in catalogue.route(model) if (caps := catalogue.capabilities(p, model))]
    return max(limits, default=0)


def prompt_limit(catalogue: Catalogue, model: str) -> int:
    """The longest prompt any enabled provider takes for ``model`` (0: none serves it)."""
    limits = [caps.max_prompt_chars for p in catalogue.route(model) if (caps := catalogue.capabilities(p, model))]
    return max(limits, default=0)


def upscale_sizes(catalogue: Catalogue, model: str, size: str) -> tuple[str, ...]:
    """Re-render sizes above ``size`` that some enabled provider serves for ``model``."""
    if size not in RESOLUTIONS:
        return ()
    above = RESOLUTIONS[RESOLUTIONS.index(size) + 1 :]
    served = {r for p in catalogue.route(model) if (caps := catalogue.capabilities(p, model)) for r in caps.resolutions}
    return tuple(s for s in UPSCALE_SIZES if s in above and s in served)


def shapes(catalogue: Catalogue, model: str) -> tuple[str, ...]:
    """Aspect ratios an edit can give ``model``'s image: those some enabled provider serves for it, most used
    first ("auto" left out: a new shape is one the member picks)."""
    offers = [caps.aspect_ratios for p in catalogue.route(model) if (caps := catalogue.capabilities(p, model))]
    served = {ratio for ratios in offers for ratio in ratios}
    return tuple(ratio for ratio in ASPECT_RATIOS if ratio in served)


def shape_name(ratio: str) -> str:
    """``ratio`` with the word a member knows it by: "16:9 (landscape)"."""
    value = proportion(ratio)
    if value is None:
        return ratio
    kind = "square" if value == 1 else "landscape" if value > 1 else "portrait"
    return f"{ratio} ({kind})"


Pan = PanWay
PANS: tuple[Pan, ...] = ("left", "right", "up", "down")
# Each way's arrow: in the Edit form's choice and on the pan buttons (cogs/), in a pan's "Made from" (bot/render.py).
PAN_ARROWS: dict[Pan, str] = {"left": "⬅️", "right": "➡️", "up": "⬆️", "down": "⬇️"}
_OPPOSITE: dict[Pan, Pan] = {"left": "right", "right": "left", "up": "down", "down": "up"}
_SIDE: dict[Pan, str] = {"left": "left", "right": "right", "up": "top", "down": "bottom"}
# How much a pan widens (left, right) or heightens (up, down) the frame, as Midjourney's pan does; the
# nearest ratio the model offers is taken, and only one at least PAN_AT_LEAST as much.
PAN_FACTOR = 1.5
PAN_AT_LEAST = 1.15


@dataclass(frozen=True, slots=True)
class Frame:
    """How an edit frames its image: another ratio (None: the image's own), zoomed out, or extended one
    way (``pan``, with the wider or taller ratio that makes room for it)."""

    ratio: str | None = None
    zoom_out: bool = False
    pan: Pan | None = None


AS_IT_IS = Frame()  # the image's own shape, not zoomed out
EditAction = Literal["edit", "reframe", "zoom_out", "pan"]


def proportion(ratio: str | None) -> float | None:
    """Width over height of a "W:H" ratio; None for anything else ("auto", None)."""
    width, _, height = (ratio or "").partition(":")
    if not (width.isdigit() and height.isdigit()) or int(width) == 0 or int(height) == 0:
        return None
    return int(width) / int(height)


def own_shape(ratio: str | None, shown: float | None, offered: tuple[str, ...]) -> str | None:
    """The shape an image has: the ratio it was asked in, or (asked in none, or "auto") the offered ratio
    its width over height (``shown``) matches within 2%; None when neither says."""
    if proportion(ratio) is not None:
        return ratio
    if shown is None:
        return None
    return next((r for r in offered if (value := proportion(r)) and abs(math.log(value / shown)) < 0.02), None)


def pan_ratio(current: float, pan: Pan, offered: tuple[str, ...]) -> str | None:
    """The offered ratio that makes room to extend an image of proportion ``current`` towards ``pan``:
    about PAN_FACTOR times as wide (left, right) or as tall (up, down); None if the model has none
    at least PAN_AT_LEAST times so (a 21:9 image has no wider shape on Nano Banana Pro)."""
    sideways = pan in ("left", "right")
    want = current * PAN_FACTOR if sideways else current / PAN_FACTOR
    room = [
        (ratio, value)
        for ratio in offered
        if (value := proportion(ratio)) is not None
        and (value >= current * PAN_AT_LEAST if sideways else value <= current / PAN_AT_LEAST)
    ]
    return min(room, key=lambda item: abs(math.log(item[1] / want)), default=(None, 0.0))[0]


def pans_with_room(current: float | None, offered: tuple[str, ...]) -> tuple[Pan, ...]:
    """The ways an image of proportion ``current`` (width over height) can be panned: those with a shape that makes
    room (``pan_ratio``); all four when its shape is not known (the press works it out from the image shown)."""
    if current is None:
        return PANS
    return tuple(way for way in PANS if pan_ratio(current, way, offered) is not None)


SQUARE = "1:1"


def squares(current: float | None, offered: tuple[str, ...]) -> bool:
    """Whether an image of proportion ``current`` can be made square (Midjourney's Make Square): the model comes in
    1:1 and the image is not square already (within 2%, as ``own_shape`` matches); unknown, it may be."""
    if SQUARE not in offered:
        return False
    return current is None or abs(math.log(current)) >= 0.02


# Edits whose prompt says how to frame the image rather than what it shows (``framed``).
FRAMINGS: frozenset[EditAction] = frozenset({"reframe", "zoom_out", "pan"})
# How a framing's instruction and the member's words in its prompt are joined (``framed``, ``reworded``); the
# instructions the bot writes never hold it.
_ALSO = " Also: "
# What a framed image shows when nothing says it in words (a member's own image), for its Vary and re-render.
UNKNOWN_SUBJECT = "The scene in this image, drawn afresh in the same style."


# What /blend asks the model (cogs/blend.py); the member's words, if any, follow it. Here, beside the other
# instructions the bot writes, because an embed names a blend by the words after it (bot/render.py).
BLEND = "Blend these images into one new image, combining their subjects, styles and colours"


def blend_prompt(words: str | None) -> str:
    """The prompt /blend sends: the blend asked for, and how, in the member's words (Midjourney's parameters at
    their end are read as /imagine reads them)."""
    words = (words or "").strip()
    return f"{BLEND}: {words}" if words else f"{BLEND}."


def blend_words(request: GenerationRequest) -> str | None:
    """A /blend request's words from its member ("" when they gave none); None for any other request (a prompt
    typed to /imagine that merely starts like a blend's has no ``member_words``)."""
    if request.derived_from is None and request.member_words is not None and request.prompt.startswith(BLEND):
        return request.member_words
    return None


def subject_of(request: GenerationRequest | None) -> str:
    """What the image ``request`` made shows, in words: its prompt, or the subject of a framed one (None:
    an image no request of the bot's made)."""
    if request is None:
        return UNKNOWN_SUBJECT
    return request.subject or request.prompt


def framed(words: str, frame: Frame, *, references: int = 1) -> tuple[str, EditAction]:
    """The prompt an edit sends, and what the embed calls it: the member's words; or, to zoom out, pan or
    give the image a new shape with no words, what the model is asked to do with the image (its first
    reference; named so when there are more), with the words after it when there are some."""
    where = f"a {shape_name(frame.ratio)} frame" if frame.ratio else "the same frame"
    image = "the first image" if references > 1 else "this image"
    if frame.pan is not None:
        side, opposite = _SIDE[frame.pan], _SIDE[_OPPOSITE[frame.pan]]
        pan = (
            f"Extend {image} towards the {side} into {where}: keep the whole picture as it is at the {opposite} "
            f"of the new frame, and continue the scene naturally into the new space at the {side}, in the same "
            "style, colours and light."
        )
        return (f"{pan}{_ALSO}{words}" if words else pan), "pan"
    if frame.zoom_out:
        zoom = (
            f"Zoom out from {image} into {where}: show the whole picture smaller, with more of the scene "
            "around it, continued naturally on every side, and keep its subject, style, colours and details."
        )
        return (f"{zoom}{_ALSO}{words}" if words else zoom), "zoom_out"
    if frame.ratio and not words:
        same = "the first image as it is" if references > 1 else "this same image"
        return (
            f"Show {same} in {where}: keep its subject, style, colours and details as they are, and "
            "continue the scene naturally into the new space."
        ), "reframe"
    return words, "edit"


def framing_words(words: str, action: EditAction) -> str | None:
    """The member's part of a prompt ``framed`` made (GenerationRequest.member_words): a framing's own words
    ("" for none), the rest being the bot's instruction; None for an edit, whose prompt is the words alone."""
    return words if action in FRAMINGS else None


def new_seed(old: int) -> int:
    """A random seed other than ``old``."""
    return (old + 1 + secrets.randbelow(SEED_LIMIT - 1)) % SEED_LIMIT


def reroll(request: GenerationRequest) -> GenerationRequest:
    """The request again for a Re-roll: as it was, but with a new seed where it had one. The same seed and
    prompt make the same image, so a Re-roll of a seeded image was a near-copy charged again (/imagine refuses
    a seed with a count for the same reason). The new seed is shown in the result's embed, so either image
    can still be made again."""
    if request.seed is None:
        return request
    return request.model_copy(update={"seed": new_seed(request.seed)})


def results_in_hand(job: Job) -> bool:
    """Whether ``job`` made its images: delivered, or succeeded with its images there (being shown).

    Not DELIVERED alone: the image and its buttons are on Discord (bot/delivery.py ``deliver``, ``show_batch``)
    before the row says so (bot/job_delivery.py writes DELIVERED once Discord has answered the upload), and an
    Edit pressed, or a reply sent, as soon as the image showed found the job SUCCEEDED: Gemini got the edit
    without the image's conversation (tests/e2e/test_button_pref_regressions.py)."""
    return job.state is JobState.DELIVERED or (job.state is JobState.SUCCEEDED and bool(job.result.images))


def continued(original: Job | None, shown: list[ReferenceImage], *, by: int | None = None) -> tuple[Turn, ...]:
    """The conversation an edit of ``original``'s image continues: the turns before it and its own, whose
    result is the image as shown on Discord (``shown[0]``). Empty for an image no job made
    (``results_in_hand``).

    ``by``: the member who continues it. Another than the one who asked for ``original`` gets its turns
    without the images they were given (``public_turns``): those were the requester's references (an
    /imagine attachment no one else saw), which a stranger's reply sent to the provider inside the
    conversation. None: whoever asked for it (the turns as they are)."""
    if original is None or not results_in_hand(original) or not shown:
        return ()
    made = original.result.images
    turn = Turn(
        prompt=original.request.prompt,
        reference_images=original.request.reference_images,
        result=shown[0],
        thought_signature=made[0].thought_signature if made else None,
        member_words=original.request.member_words,
    )
    turns = (*original.request.history, turn)
    if by is not None and by != original.user_id:
        turns = public_turns(turns)
    return turns[-HISTORY_KEPT:]


def public_turns(turns: tuple[Turn, ...]) -> tuple[Turn, ...]:
    """``turns`` with only what the channel showed: each turn's prompt and result, and of the images it was
    given only an earlier turn's result (the image a reply edited). Enough for the model to know what "it"
    is, without the members' own references.

    Dropping them from the turns of the job being continued is enough: a job's history was built for the
    member who asked for it, so turns before it hold their own references or had them dropped already (an
    edit of another member's image). A turn left with none still sends its prompt and result
    (bot/providers/gemini.py ``build_request_body``)."""
    shown = {_place(turn.result.url) for turn in turns}
    return tuple(
        turn.model_copy(
            update={"reference_images": tuple(ref for ref in turn.reference_images if _place(ref.url) in shown)}
        )
        for turn in turns
    )


def _place(url: str) -> str:
    # The same image under links signed apart (renewed, or as attachment and embed) differs in its query only.
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def _derive(
    request: GenerationRequest, action: Variation | Literal["upscale"] | EditAction, origin: Origin, **changes: Any
) -> GenerationRequest:
    job_id, message_url = origin
    fields = request.model_dump()
    # A new start from the image unless ``changes`` carry a conversation on (an edit does).
    fields.update(
        history=(),
        subject=None,
        member_words=None,
        # One image, not a batch of choices: a Vary of a choice's image varies that image.
        permutation=None,
        picks=(),
        derived_from=Derivation(action=action, job_id=job_id, message_url=message_url),
    )
    fields.update(changes)
    return GenerationRequest.model_validate(fields)


# How strongly a Vary departs from its image (Midjourney's Vary (Strong) and Vary (Subtle)), as the
# Derivation action each is recorded under: "vary" is the strong one, the buttons' first and older name.
Variation = Literal["vary", "vary_subtle"]
_VARIATIONS: dict[Variation, str] = {
    "vary": (
        "Make a new take on {image}: keep its subject and style, and let the composition, viewpoint, pose and "
        "details change freely."
    ),
    "vary_subtle": (
        "Make a subtle variation of {image}: keep its subject, composition, style, colours and light as they "
        "are, and change only small details."
    ),
}


def varied(subject: str, strength: Variation, *, references: int = 1) -> str:
    """The prompt a Vary sends: how far to depart from the image (its first reference; named so when there
    are more), then the words the image was made from. The image and its prompt alone say nothing of how far
    to go, so both buttons would send the same request; the instruction is what tells them apart."""
    image = "the first image" if references > 1 else "this image"
    return f"{_VARIATIONS[strength].format(image=image)} It was made from this prompt: {subject}"


def vary(
    request: GenerationRequest,
    image: ReferenceImage,
    origin: Origin,
    *,
    limit: int,
    strength: Variation = "vary",
    max_chars: int | None = None,
) -> GenerationRequest:
    """A new take on the image, strong or subtle (``varied``): the image first, then the member's own
    references, up to ``limit``; the other options as they were.

    A new seed where the request had one (where it had none, the provider draws one anyway). The request's
    ``subject`` keeps what the image shows, so a Vary of this result words it from the same prompt again.
    ``max_chars``: the longest prompt sent here (``prompt_limit``, within the bot's own bound). A member's prompt
    near it has no room for the instruction; it goes alone with the image, as a Vary went before there were
    two, rather than be refused as longer than the member ever typed.
    """
    seed = None if request.seed is None else new_seed(request.seed)
    refs = (image, *request.own_references)[: max(limit, 1)]
    # A framed image's prompt would frame it again: its subject is what to draw afresh.
    subject = subject_of(request)
    prompt = varied(subject, strength, references=len(refs))
    if max_chars is not None and len(prompt) > max_chars:
        prompt = subject
    # Moderation judges the prompt the image was made from, not the instruction around it (member_words).
    return _derive(
        request,
        strength,
        origin,
        prompt=prompt,
        subject=subject,
        member_words=subject,
        reference_images=refs,
        seed=seed,
    )


def edit(
    request: GenerationRequest,
    image: ReferenceImage,
    instruction: str,
    origin: Origin,
    *,
    history: tuple[Turn, ...] = (),
    frame: Frame = AS_IT_IS,
    more: tuple[ReferenceImage, ...] = (),
    region: Region | None = None,
) -> GenerationRequest:
    """The member's instruction as the prompt, applied to the image; ``history`` is the image's
    conversation (``continued``), carried on as a reply to the image would, so a provider that takes
    one (Gemini) knows what "it" is. ``frame``: a new shape and/or a zoom out as well (``framed``).
    ``more``: images the member linked in their words, references after the image. ``region``: the part of the
    image alone to change (bot/regions.py), with the image's frame kept; the words are what moderation judges."""
    prompt, action = framed(instruction, frame, references=1 + len(more))
    changes: dict[str, Any] = {} if frame.ratio is None else {"aspect_ratio": frame.ratio}
    changes["member_words"] = framing_words(instruction, action)
    if action in FRAMINGS:
        changes["subject"] = subject_of(request)
    references = (image, *more)
    if frame.pan is not None:
        changes["derived_from"] = Derivation(action=action, job_id=origin[0], message_url=origin[1], way=frame.pan)
    if region is not None and action == "edit":
        prompt = in_region(instruction, region, references=len(references))
        # What the image shows, for a Vary or a re-render of it (``subject_of``): the words, as a plain edit's prompt
        # is; the sentence about the area would have them change that part again.
        changes.update(
            member_words=instruction,
            subject=instruction,
            derived_from=Derivation(action="edit", job_id=origin[0], message_url=origin[1], region=region),
        )
    return _derive(request, action, origin, prompt=prompt, reference_images=references, history=history, **changes)


# What a request made from an image can be asked again with other words (Change prompt, as Midjourney's Remix): a
# Vary by the prompt its image was made from, an edit by its instruction, a zoom out or a pan by the words added to it.
# A re-render draws the same prompt at another size: other words would make it another image, not that one larger.
REWORDABLE: frozenset[str] = frozenset({"vary", "vary_subtle", "edit", *FRAMINGS})


def words_to_change(request: GenerationRequest) -> str | None:
    """The words Change prompt's form holds for ``request``: a request of the member's own, its prompt (a /blend's,
    the words after its instruction); a Vary, the prompt its image was made from (a /blend's image, its words); an
    edit or a reply, its instruction; a zoom out, pan or new shape, the words added to it ("" for none). None where
    there are none to change: a re-render (``REWORDABLE``)."""
    origin = request.derived_from
    if request.permutation is not None:
        return request.permutation  # the member's words with their choices, as typed (a /blend's, after it)
    if origin is None:
        # A reply's edit (its message answers the reply: no "Made from") is its instruction, as an edit's.
        blended = None if request.history else blend_words(request)
        return request.prompt if blended is None else blended
    if origin.action not in REWORDABLE:
        return None
    if origin.action in _VARIATIONS:
        return shown_words(request)
    if origin.action in FRAMINGS or origin.region is not None:
        return request.member_words or ""  # an edit of a region: its words, the area kept (``reworded``)
    return request.prompt


def shown_words(request: GenerationRequest) -> str:
    """The member's words for what the image ``request`` made shows, as a Vary of it is worded from them
    (``subject_of``): a /blend's, after its instruction; "" for an image no prompt of the bot's made."""
    subject = subject_of(request)
    if subject == UNKNOWN_SUBJECT:
        return ""  # the bot's words for an image no prompt of the bot's made: none of the member's
    return _after_blend(subject) if subject.startswith(BLEND) else subject


def _after_blend(prompt: str) -> str:
    """A blend's prompt's words after its instruction (``blend_prompt``): "" for none."""
    return prompt.removeprefix(BLEND).removeprefix(":").removeprefix(".").strip()


def reworded(
    request: GenerationRequest,
    words: str,
    *,
    more: tuple[ReferenceImage, ...] = (),
    max_chars: int | None = None,
) -> GenerationRequest | None:
    """``request`` (one ``words_to_change`` offers words of, made from an image: a derivation, or a reply's edit)
    asked again with ``words`` in place of its member's: the same image, conversation, shape and options, the same
    seed (the new words drawn from the same start). A Vary varies the image again, by the new words; an edit is the
    new instruction; a zoom out or a pan has the new words added to it (none: the framing alone), and a new shape
    with words is an edit in that shape, as the Edit form makes it (``framed``). ``more``: images linked in the
    words, references after the request's own. None where the words cannot stand for what was asked (none, for a
    Vary or an edit)."""
    origin = request.derived_from
    assert request.history or (origin is not None and origin.action in REWORDABLE)
    references = (*request.reference_images, *more)
    image = "the first image" if len(references) > 1 else "this image"
    changes: dict[str, Any] = {"reference_images": references}
    if origin is None:
        # A reply's edit: its instruction.
        if not words:
            return None
        changes.update(prompt=words)
    elif origin.action in _VARIATIONS:
        if not words:
            return None
        subject = blend_prompt(words) if subject_of(request).startswith(BLEND) else words
        strength: Variation = "vary" if origin.action == "vary" else "vary_subtle"
        prompt = varied(subject, strength, references=len(references))
        if max_chars is not None and len(prompt) > max_chars:
            prompt = subject
        changes.update(prompt=prompt, subject=subject, member_words=subject)
    elif origin.action in ("zoom_out", "pan"):
        # The bot's instruction, as ``framed`` wrote it, naming the first image once there are others.
        instruction = request.prompt.partition(_ALSO)[0].replace("this image", image, 1)
        changes.update(prompt=f"{instruction}{_ALSO}{words}" if words else instruction, member_words=words)
    elif origin.action == "reframe" and not words:
        pass  # the new shape alone, as it was
    elif words and origin.region is not None:
        # An edit of a region: the new words for the same area.
        prompt = in_region(words, origin.region, references=len(references))
        changes.update(prompt=prompt, member_words=words, subject=words)
    elif words:
        # An edit's instruction; a new shape's words make it an edit in that shape, as ``framed`` has it.
        action = Derivation(action="edit", job_id=origin.job_id, message_url=origin.message_url)
        changes.update(prompt=words, member_words=None, subject=None, derived_from=action)
    else:
        return None
    return GenerationRequest.model_validate({**request.model_dump(), **changes})


def upscale(request: GenerationRequest, image: ReferenceImage, size: str, origin: Origin) -> GenerationRequest:
    """The same prompt drawn again at ``size`` from the image: a new render, not a pixel upscale (of a
    framed image, its subject: the frame is in the image already)."""
    return _derive(request, "upscale", origin, prompt=subject_of(request), reference_images=(image,), resolution=size)
