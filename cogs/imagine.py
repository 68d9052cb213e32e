"""/imagine and the job buttons as persistent DynamicItems: Cancel while it runs; Vary (Subtle and Strong),
Edit (with its modal), Re-render 2K/4K, Re-roll and Delete on a finished image (docs/architecture.md
section 4.7)."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import unicodedata
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiosqlite
import discord
from discord import app_commands
from discord.ext import commands
from pydantic import ValidationError

from bot import derive, render
from bot.app import Bananacord
from bot.catalogue import MODEL_NAMES, Catalogue
from bot.delivery import UNKNOWN_MESSAGE
from bot.discord_refs import refresh_references
from bot.errors import ErrorCategory, InvalidRequestError
from bot.jobs import MAX_CANDIDATES
from bot.models import Derivation, GenerationRequest, JobState, ReferenceImage, shown_file_name
from bot.moderation import PromptBlockedError
from bot.option_sets import unknown_name_note
from bot.permutations import number_of
from bot.preferences import ModelChoice, fill, model_at, model_for, passed_over_note
from bot.prompt_parameters import IMAGE_WEIGHT_NAME, Parameters, ignored_note, split_parameters, with_image_weight
from bot.prompt_suffix import with_suffix
from bot.prompts import PROMPT_MAX_CHARS, clean_prompt
from bot.providers.base import OUTPUT_FORMATS, RESOLUTIONS, THINKING_LEVELS
from bot.providers.families import ASPECT_RATIOS, AUTO
from bot.quotas import QuotaExceededError, Room, running_low_note
from bot.reference_roles import PARAMETERS, Role
from bot.references import check_fits_provider
from bot.result_images import result_stem
from bot.routing import require_served
from bot.store.jobs import InTransaction, Job, NewJob
from bot.wording import counted
from cogs.double_clicks import TAKEN_ONCE, RecentPresses
from cogs.errors import (
    answered_too_late,
    made_but_lost,
    send_ephemeral,
    settled_answer_failure,
)
from cogs.in_time import record_in_time
from cogs.moderation import is_moderator, record_moderation
from cogs.places import level_at, place_of
from cogs.policy import Admission, admitted, member_of, moderate
from cogs.private_answers import answer_privately
from cogs.prompt_choices import (
    Choice,
    edit_choices,
    images_of_each,
    one_of,
    one_repeat,
    prompt_choices,
    typed_anywhere,
)
from cogs.prompt_form import DEFAULT_MODEL, MODEL_INPUT_ID, PROMPT_FORM_ID, PromptForm, model_box
from cogs.reference_form import (
    AS_IT_IS,
    PROMPT_INPUT_ID,
    REFERENCE_FORM_ID,
    ROLE_INPUT_ID,
    TEXT_INPUT_MAX_CHARS,
    ReferenceForm,
)
from cogs.reference_links import linked_images
from cogs.region_field import asked_region, check_region, check_region_frame, region_field
from cogs.remix_vary import VARY_FORM_ID, VaryForm
from cogs.shape_field import KEEP, PAN_PREFIX, ZOOM_OUT, asked_change, shape_field
from cogs.slow_answers import ANSWERS_ON_ITS_OWN, watched_answer
from cogs.typed_links import member_option_sets, not_among, typed_links

log = logging.getLogger(__name__)

MODEL_CHOICES = [app_commands.Choice(name=name, value=value) for value, name in MODEL_NAMES.items()]
# "auto" first: the model picks the shape (routing sends it to a provider that offers it, or refuses clearly).
RATIO_CHOICES = [app_commands.Choice(name=r, value=r) for r in (AUTO, *ASPECT_RATIOS)]
FORMAT_CHOICES = [app_commands.Choice(name=f.upper(), value=f) for f in OUTPUT_FORMATS]
THINKING_CHOICES = [app_commands.Choice(name=t, value=t) for t in THINKING_LEVELS]
RESOLUTION_CHOICES = [app_commands.Choice(name="512 px" if r == "512" else r, value=r) for r in RESOLUTIONS]
# The request options offered as lists, by their option names (/imagine's, and /preferences' defaults).
OPTION_CHOICES: dict[str, list[app_commands.Choice[str]]] = {
    "model": MODEL_CHOICES,
    "aspect_ratio": RATIO_CHOICES,
    "resolution": RESOLUTION_CHOICES,
    "output_format": FORMAT_CHOICES,
    "thinking": THINKING_CHOICES,
}
# The `model` option's description, /blend's too (cogs/blend.py).
MODEL_DESCRIPTION = "Which Nano Banana model to use (if unset: your /preferences one, else the server's default)"
SEED_MAX = 2_147_483_647
# What a member reads when a value sent past Discord's own checks (a modified client, a raw API call)
# does not fit; Discord enforces min/max in its UI, but nothing stops a hand-made payload.
OPTION_RULES = {
    "prompt": f"`prompt` must be 1 to {PROMPT_MAX_CHARS:,} characters of text.",
    "seed": f"`seed` must be a whole number from 0 to {SEED_MAX:,}.",
    "safety_tolerance": "The safety level must be from 1 to 6.",
}
# /imagine's attachment options (Discord allows 25 options per command); more references come by link.
ATTACHMENT_SLOTS = 10
# Fourteen image links with their signatures (about 200 characters each) fit.
REFERENCES_MAX_CHARS = 4000
# Discord interaction tokens live 15 minutes.
TOKEN_LIFETIME = timedelta(minutes=15)
# Failures where pressing Re-roll with the same input cannot help.
NO_REROLL = {ErrorCategory.BAD_INPUT, ErrorCategory.CONTENT_BLOCKED, ErrorCategory.AUTH}


def _moderator_cancelled(job: Job) -> bool:
    """Whether someone other than its member (a moderator) cancelled the job: its message then offers nothing to
    run it again (Re-roll, Change prompt)."""
    return job.error_category is ErrorCategory.CANCELLED and job.cancelled_by not in (None, job.user_id)


def _offers_reroll(job: Job) -> bool:
    """Whether a job that ended without an image offers Re-roll: not for a failure the same input meets again,
    nor for a job a moderator cancelled (someone other than its member): the button under their "Cancelled
    by" invited the member, or anyone, to run again at once what a moderator had just stopped."""
    if job.error_category in NO_REROLL:
        return False
    return not _moderator_cancelled(job)


def _offers_new_prompt(job: Job) -> bool:
    """Whether a job's message offers Change prompt: a request with words of its member's to change (an /imagine, a
    /blend, a Use as reference; a Vary, an edit, a zoom out or a pan of an image: ``derive.words_to_change``; not a
    re-render), not ended by a rejected key (other words meet it again) or by a moderator's cancel."""
    if derive.words_to_change(job.request) is None:
        return False
    if job.error_category is ErrorCategory.AUTH:
        return False
    return not _moderator_cancelled(job)


def _shown_at(message: discord.Message | None) -> str | None:
    """A link to the message a button (or the form it opened) was pressed under."""
    return message.jump_url if message is not None else None


def _too_few_images(fewest: int, given: int) -> str:
    """A /blend with fewer images than it blends, attached and linked together."""
    return (
        f"A blend needs at least {fewest} images; you gave {given}. Attach them (`image1`, `image2`...), or link "
        "images already here in `references:` (right-click a message → Copy Message Link, or an image → Copy Link)."
    )


def _kept_note(typed: Sequence[str]) -> str | None:
    """The private word on the parameters Change prompt left out under an image made from another: the step it
    takes again keeps its image's shape and options (None if none was typed)."""
    if not typed:
        return None
    return (
        f"Left out `{' '.join(typed)}`: this keeps the image's shape and options. For another shape, press **Edit** "
        "and pick it under *Reframe*."
    )


def _more_menu(shown: Sequence[Job], frames: Sequence[discord.SelectOption] = ()) -> discord.ui.View:
    """A batch's More menu: for each image there, Zoom out and Use as reference (the single image's buttons, acting
    on that candidate's job; their press finds its image on the batch's message: ``Imagine._image_message``), and
    the list of its pans and Make square (``frames``: ``Imagine._frames_of``)."""
    view = discord.ui.View(timeout=None)
    for job in shown:
        view.add_item(JobButton("zoom-out", job.id, label=f"Zoom out #{job.batch_index}", row=0))
    for job in shown:
        view.add_item(JobButton("reference", job.id, label=f"Use #{job.batch_index} as reference", row=1))
    if frames:
        view.add_item(FrameChoice(shown[0].id, list(frames)))
    # Its buttons are DynamicItems routed by custom_id: a stopped view is not kept in memory per menu shown.
    view.stop()
    return view


def _reroll_refusal(batch: Sequence[Job]) -> str | None:
    """Why a Re-roll press on ``batch``'s message is refused, or None: where its message would not offer the
    button (``_offers_reroll``), which a message drawn before that rule, or a modified client, still may."""
    if not all(job.terminal for job in batch):
        return None
    if any(job.state is JobState.DELIVERED or _offers_reroll(job) for job in batch):
        return None
    if any(job.error_category is ErrorCategory.CANCELLED for job in batch):
        return "A moderator cancelled this, so it can't be re-rolled."
    return (
        "Re-rolling this would only meet the same refusal again (its message says why). "
        "Change the request and run /imagine."
    )


# action -> (label, style, emoji, row). The upscale actions are labelled as what they are: a new render.
BUTTONS: dict[str, tuple[str, discord.ButtonStyle, str, int]] = {
    "cancel": ("Cancel", discord.ButtonStyle.danger, "✖️", 0),
    # Midjourney's two Vary buttons; "vary" (the strong one) keeps the action its messages had when it was alone.
    "vary-subtle": ("Vary (Subtle)", discord.ButtonStyle.secondary, "🔀", 0),
    "vary": ("Vary (Strong)", discord.ButtonStyle.secondary, "🔀", 0),
    "edit": ("Edit", discord.ButtonStyle.secondary, "✏️", 0),
    **{f"upscale-{s}": (f"Re-render {s}", discord.ButtonStyle.secondary, "🔍", 0) for s in derive.UPSCALE_SIZES},
    # Midjourney's one-click zoom out; the Edit form's Reframe offers it too, with pans and other shapes.
    "zoom-out": ("Zoom out", discord.ButtonStyle.secondary, "🔭", 1),
    "reroll": ("Re-roll", discord.ButtonStyle.secondary, "🔁", 1),
    # The request again with other words (cogs/prompt_form.py): Midjourney's Remix of a Re-roll.
    "reprompt": ("Change prompt", discord.ButtonStyle.secondary, "📝", 1),
    # A new prompt with the image as a reference (cogs/reference_form.py), where Edit changes the image itself.
    "reference": ("Use as reference", discord.ButtonStyle.secondary, "📎", 1),
    "delete": ("Delete", discord.ButtonStyle.secondary, "🗑️", 1),
    # Midjourney's one-click pans; the Edit form's Reframe offers the same (its choice's value is the action).
    **{
        PAN_PREFIX + way: (f"Pan {way}", discord.ButtonStyle.secondary, arrow, 2)
        for way, arrow in derive.PAN_ARROWS.items()
    },
    # Midjourney's Make Square: the Edit form's new shape 1:1 in one click, beside the pans.
    "square": ("Make square", discord.ButtonStyle.secondary, "🔲", 2),
    # A batch's message has no room left for Zoom out and Use as reference per image: this offers them, privately.
    "more": ("More", discord.ButtonStyle.secondary, "➕", 3),
}
MORE_MENU = (
    "More for these images (only you see this): zoom out from one, use it as a reference for a new prompt, or pan "
    "it or make it square from the list. For another shape, press its **E** button under the images and pick from "
    "*Reframe*."
)
# The More menu list's choices: a one-click step (a pan, Make square) and the job of the image it is for.
FRAME_CHOICE = re.compile(
    rf"(?P<action>square|{re.escape(PAN_PREFIX)}(?:{'|'.join(derive.PANS)})):(?P<job_id>[0-9a-f]{{16}})"
)
NOT_OFFERED = "That choice is not one this menu offers. Press **More** under the images again."
NO_NEW_PROMPT = (
    "A re-render draws the prompt of the image it came from at another size, so there are no words of its own to "
    "change: use Change prompt under the image it came from, or Edit."
)
# Change prompt's new words for a Vary or an edit: none would leave nothing to draw or change.
NO_NEW_WORDS = "Write the words to make it with: the new prompt is empty."
# The Zoom out button's change: the same shape, more of the scene, no words (bot/derive.py ``framed``).
ZOOM_OUT_ONLY = derive.Frame(zoom_out=True)
# In Remix mode (cogs/remix_vary.py), the one-click framings open the Edit form with their frame chosen there.
REMIXED_FRAMES = {
    "zoom-out": ZOOM_OUT,
    "square": "1:1",
    **{f"{PAN_PREFIX}{way}": f"{PAN_PREFIX}{way}" for way in derive.PANS},
}
# The buttons that start a job from the image shown in one click, besides the Vary ones and REWORKS.
ONE_CLICK_STEPS = ("reroll", "zoom-out", "square")
SQUARE_ALREADY = (
    "This image is square already (or its model comes in no square shape here), so there is nothing to make square. "
    "For another shape, press **Edit** and pick it under *Reframe*."
)
# The buttons, besides Zoom out and the Vary ones, that start a job from the image shown (by their action's start).
REWORKS = ("upscale-", PAN_PREFIX)
# The buttons that do not need the request's words (the image alone, or its message): they still work on an image
# whose member erased them (/privacy, bot/store/erasure.py); every other one makes something from those words.
WITHOUT_WORDS = frozenset({"cancel", "delete", "reference", "more"})
ERASED_REFUSAL = (
    "This image's request no longer has its words (its member erased them with `/privacy`, or this bot keeps them "
    "only for a while), so nothing is made from them again: no Re-roll, Vary, Edit, re-render or reframing of it. "
    "**Use as reference** still takes the image itself for a new prompt of yours."
)
# Each Vary button's action -> how strongly it varies (bot/derive.py ``varied``).
VARIATIONS: dict[str, derive.Variation] = {"vary-subtle": "vary_subtle", "vary": "vary"}
# The Edit modal's custom_id carries the job id too, so a modal opened before a restart still works.
EDIT_MODAL_ID = re.compile(r"bananacord:edit:(?P<job_id>[0-9a-f]{16})")
EDIT_INPUT_ID = "instruction"
EDIT_SHAPE_ID = "shape"
EDIT_REGION_ID = "region"


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(rf"bananacord:job:(?P<action>{'|'.join(map(re.escape, BUTTONS))}):(?P<job_id>[0-9a-f]{{16}})"),
):
    """A job message's button; action and job id ride in the custom_id, so it works after a restart."""

    def __init__(self, action: str, job_id: str, *, label: str | None = None, row: int | None = None) -> None:
        """``label`` and ``row`` place it among a batch's buttons ("V2 strong": vary the second image)."""
        default_label, style, emoji, default_row = BUTTONS[action]
        super().__init__(
            discord.ui.Button(
                label=label or default_label,
                style=style,
                emoji=emoji,
                custom_id=render.custom_id(action, job_id),
                row=default_row if row is None else row,
            )
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        return cls(match["action"], match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog("Imagine")
        assert isinstance(cog, Imagine)
        # Refusals (a Re-roll over quota, say) answered privately, instead of Discord's bare "This
        # interaction failed"; an Edit form shown whose reply to the bot was lost is no error.
        where = f"the {self.action} button of job {self.job_id}"
        await watched_answer(
            interaction, cog.bot.services.db, where, cog.on_button(interaction, self.action, self.job_id)
        )


class FrameChoice(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=re.compile(r"bananacord:frames:(?P<job_id>[0-9a-f]{16})"),
):
    """The list in a batch's More menu: one of its images panned one way, or made square (the single image's
    button, on that candidate's job). Each choice's value names the step and the job (``FRAME_CHOICE``); a batch's
    four images with four pans and Make square each would need more rows than a message has, a list needs one."""

    def __init__(self, job_id: str, options: list[discord.SelectOption] | None = None) -> None:
        # Dispatched after a restart too (``from_custom_id``), where the choice is read from the interaction.
        choices = options or [discord.SelectOption(label="-", value="-")]
        super().__init__(
            discord.ui.Select(
                custom_id=f"bananacord:frames:{job_id}",
                placeholder="Pan one, or make it square…",
                options=choices,
                row=2,
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FrameChoice:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog("Imagine")
        assert isinstance(cog, Imagine)
        picked = FRAME_CHOICE.fullmatch(self.item.values[0] if self.item.values else "")
        if picked is None:
            # A modified client's value: nothing this menu lists.
            await send_ephemeral(interaction, NOT_OFFERED)
            return
        where = f"the More menu's {picked['action']} of job {picked['job_id']}"
        await watched_answer(
            interaction, cog.bot.services.db, where, cog.on_button(interaction, picked["action"], picked["job_id"])
        )


class EditModal(discord.ui.Modal):
    """Asks what to change in an image, and whether to reframe it (cogs/shape_field.py). Its submit is
    answered by ``Imagine.on_interaction``, not by this object: discord.py matches a submit only to a modal
    this process still holds, so one opened before a restart would go unanswered, and one never submitted
    would be held forever."""

    def __init__(self, job_id: str, *, frame: discord.ui.Label[Any], region: discord.ui.Label[Any]) -> None:
        super().__init__(title="Edit or reframe this image", custom_id=f"bananacord:edit:{job_id}", timeout=None)
        self.add_item(
            discord.ui.Label(
                text="What should change?",
                # At most 100 characters (Discord's limit for a label's description).
                description=(
                    "The image is the starting point. Say what to change (an image's link adds it), or only reframe it."
                ),
                component=discord.ui.TextInput(
                    custom_id=EDIT_INPUT_ID,
                    style=discord.TextStyle.paragraph,
                    placeholder="make it night · remove the hat · the same scene seen from the side",
                    # The words may be left out: a zoom out or a new shape alone is a change.
                    required=False,
                    max_length=TEXT_INPUT_MAX_CHARS,
                ),
            )
        )
        self.add_item(frame)
        self.add_item(region)
        # A stopped modal is not kept by discord.py (send_modal stores only unfinished ones).
        self.stop()


def form_submit(interaction: discord.Interaction[Any], custom_id: re.Pattern[str]) -> tuple[re.Match[str], Any] | None:
    """A modal submit whose custom_id matches ``custom_id``: the match and the submitted components. None for
    any other interaction (a listener sees them all, this process's forms and an earlier one's alike)."""
    if interaction.type is not discord.InteractionType.modal_submit:
        return None
    data: Any = interaction.data or {}
    match = custom_id.fullmatch(str(data.get("custom_id", "")))
    return None if match is None else (match, data.get("components") or [])


def submitted_text(components: list[Any], custom_id: str) -> str | None:
    """A text input's value in a modal submit's components (inside action rows or labels)."""
    found = _submitted(components, custom_id)
    return None if found is None else str(found.get("value") or "")


def submitted_values(components: list[Any], custom_id: str) -> list[str] | None:
    """A select's chosen values in a modal submit's components; None if the form had no such select."""
    found = _submitted(components, custom_id)
    if found is None:
        return None
    values = found.get("values")
    return [str(value) for value in values] if isinstance(values, list) else []


def _submitted(components: list[Any], custom_id: str) -> dict[str, Any] | None:
    """The submitted component ``custom_id`` names, inside action rows or labels."""
    for component in components:
        if not isinstance(component, dict):
            continue
        # A hand-made payload may put anything anywhere: `"type": true` equals 1 in Python, and a row's
        # "components" may be no list at all (a TypeError, found by tests/test_form_submits.py).
        kind, children = component.get("type"), component.get("components")
        if isinstance(kind, bool):
            continue
        if kind == 1:
            found = _submitted(children, custom_id) if isinstance(children, list) else None
        elif kind == 18:
            found = _submitted([component.get("component")], custom_id)
        else:
            found = component if component.get("custom_id") == custom_id else None
        if found is not None:
            return found
    return None


def build_request(**fields: Any) -> GenerationRequest:
    """The request from the command's options, re-checking what Discord's UI checks (bounds, lengths)."""
    try:
        request = GenerationRequest(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "option"
        message = OPTION_RULES.get(name, f"`{name}` has a value the bot cannot use.")
        raise InvalidRequestError(message, detail=f"option {name}: {first['msg']}") from None
    check_prompt_option(request.prompt)
    return request


def words_after(prompt: str, instruction: str | None) -> str | None:
    """The member's words in ``prompt`` after the bot's ``instruction`` and the mark that ends it (/blend's
    "Blend these images ...: the cat in the hat"), for moderation (GenerationRequest.member_words). None where
    there is no instruction, or the prompt no longer starts with it: then all of it is judged."""
    if instruction is None or not prompt.startswith(instruction):
        return None
    return prompt[len(instruction) :].lstrip(":.").strip()


def cleaned_length(prompt: str) -> int:
    """A cleaned prompt's length as its member typed it, near enough: cleaning composes it (NFC), which splits
    some single characters in two (a Devanagari nukta letter, a Hebrew presentation form: a letter and a
    combining mark), so a 5,900-character Hindi prompt came to 6,767. Combining marks (Mn) are not counted."""
    return sum(1 for char in prompt if unicodedata.category(char) != "Mn")


def check_prompt_option(prompt: str, *, typed: bool = False) -> None:
    """Refuse a prompt longer than PROMPT_MAX_CHARS, naming the option as Discord would. ``typed``: the option
    as Discord sent it, measured as Discord measures its max_length; else as cleaned (``cleaned_length``)."""
    length = len(prompt) if typed else cleaned_length(prompt)
    if length > PROMPT_MAX_CHARS:
        raise InvalidRequestError(
            f"`prompt` must be 1 to {PROMPT_MAX_CHARS:,} characters of text; yours has {length:,}.",
            detail=f"option prompt: {length} characters",
        )


def check_suffixed(choices: Sequence[Choice]) -> None:
    """Refuse prompts that a member's suffix took past PROMPT_MAX_CHARS, saying it was the suffix."""
    length = max(cleaned_length(choice.typed.prompt) for choice in choices)
    if length > PROMPT_MAX_CHARS:
        raise InvalidRequestError(
            f"Your prompt with your /preferences suffix has {length:,} characters; prompts may have at most "
            f"{PROMPT_MAX_CHARS:,}. Shorten the prompt, or drop the suffix (`/preferences forget:Suffix`).",
            detail=f"suffixed prompt: {length} characters",
        )


def _typed_options(
    typed: Parameters, *, aspect_ratio: str | None, seed: int | None, count: int | None
) -> tuple[str | None, int | None, int | None]:
    """The shape, seed and count of a command, its options taken with the ``--ar``, ``--seed`` and ``--repeat``
    typed at the end of its prompt, which must agree with them; refused, privately, where they do not, or
    where nothing but parameters was typed."""
    # "::2" alone is no description either: Midjourney's weight mark with no part to weigh (bot/multi_prompts.py).
    if not typed.drawn.strip() and (typed.has_parameters or typed.words.strip()):
        raise InvalidRequestError("The prompt has nothing but parameters in it: describe the image you want too.")
    if typed.ratio is not None:
        if aspect_ratio is not None and aspect_ratio != typed.ratio:
            raise InvalidRequestError(
                f"You chose `aspect_ratio:{aspect_ratio}` and typed `--ar {typed.ratio}` in the prompt: "
                "ask for one of them."
            )
        aspect_ratio = typed.ratio
    if typed.seed is not None:
        if typed.seed > SEED_MAX:
            raise InvalidRequestError(f"`--seed` takes a whole number from 0 to {SEED_MAX:,}.")
        if seed is not None and seed != typed.seed:
            raise InvalidRequestError(
                f"You chose `seed:{seed}` and typed `--seed {typed.seed}` in the prompt: ask for one of them."
            )
        seed = typed.seed
    if typed.repeat is not None:
        if not 1 <= typed.repeat <= MAX_CANDIDATES:
            raise InvalidRequestError(f"`--repeat` makes 1 to {MAX_CANDIDATES} images here, shown together.")
        if count is not None and count != typed.repeat:
            raise InvalidRequestError(
                f"You chose `count:{count}` and typed `--repeat {typed.repeat}` in the prompt: ask for one of them."
            )
        count = typed.repeat
    return aspect_ratio, seed, count


def _check_reference_count(catalogue: Catalogue, request: GenerationRequest, from_prompt: int) -> None:
    """Refuse more references than any provider here takes for the model, naming where they came from when the
    prompt brought some (a member whose custom emojis became references would not know what "you gave 4"
    counted), and another model that takes them all: /imagine and /blend can choose it (five images to
    /blend on Nano Banana 2, which SeaArt takes three of), where a button or a form cannot (routing refuses
    those, bot/routing.py)."""
    limit = derive.reference_limit(catalogue, request.model)
    given = len(request.reference_images)
    if not 0 < limit < given:
        return
    counted = ""
    if from_prompt:
        counted = f", {from_prompt} of them by links or custom emojis in the prompt (each is its image)"
    roomier = [
        (catalogue.display_name(model), room)
        for model in catalogue.models()
        if model != request.model and (room := derive.reference_limit(catalogue, model)) >= given
    ]
    other = f" {roomier[0][0]} takes up to {roomier[0][1]}: ask for `model:{roomier[0][0]}`." if roomier else ""
    raise InvalidRequestError(
        f"{catalogue.display_name(request.model)} takes at most {limit} reference image(s); you gave {given}"
        f"{counted}.{other}"
    )


def check_prompt_length(request: GenerationRequest) -> None:
    """Refuse a request built from an earlier one (an Edit form's words, a Re-roll or Vary of a job stored
    before PROMPT_MAX_CHARS was checked) whose prompt is longer than the bot sends for a member."""
    length = cleaned_length(request.prompt)
    if length > PROMPT_MAX_CHARS:
        raise InvalidRequestError(
            f"The prompt would be {length:,} characters; the bot sends at most "
            f"{PROMPT_MAX_CHARS:,}. Ask again with fewer words.",
            detail=f"prompt of {length} characters",
        )


def _chosen(request: GenerationRequest, name: str) -> GenerationRequest:
    """``request`` with ``name`` no longer counted among the options saved preferences filled in: a button or
    form chose it (a re-render's size, an edit's new shape), so it is never left out as a preference would be."""
    kept = tuple(n for n in request.defaulted if n != name)
    return request if kept == request.defaulted else request.model_copy(update={"defaulted": kept})


# A saved count beside choices in braces: the choices say how many images (cogs/prompt_choices.py).
CHOICES_NOT_COUNT = (
    "One image for each choice in braces: your /preferences count:{count} is not used here (type `count:` for "
    "that many of each)."
)


def _reserved(news: Sequence[tuple[NewJob, Admission]]) -> InTransaction:
    """The reservations of a batch's jobs, in the transaction that writes them: each admission's for its own jobs
    (the jobs of one request, or of prompts that differ only in words, share one: reserved together, so a member
    who cannot afford them all gets none)."""

    async def reserve(conn: aiosqlite.Connection, job_ids: Sequence[str]) -> None:
        # Reserved alike where they go alike: the provider, model, size and price a reservation is made of.
        groups: dict[tuple[object, ...], tuple[Admission, list[str]]] = {}
        for (new, admission), job_id in zip(news, job_ids, strict=True):
            alike = (new.provider, new.model, new.request.resolution, new.cost_micro_usd)
            groups.setdefault(alike, (admission, []))[1].append(job_id)
        for admission, ids in groups.values():
            await admission.reservation(conn, ids)

    return reserve


def _fewer_note(made: int, wanted: str, room: Room | None, *, waiting: bool = False) -> str:
    """The private word when the quotas had room for only ``made`` of the images ``wanted`` names
    (``start_up_to``), naming the limit with the least room (the member's quota, or the server's images at
    once, units or budget) where the refusal said which."""
    images = counted(made, "image")
    why = room.limit if room is not None else f"the quota had room for only {images} just now"
    if waiting:
        return f"Took {images}, waiting their turn, not {wanted}: {why}."
    return f"Started {images}, not {wanted}: {why}."


def _can_manage(interaction: discord.Interaction[Any], job: Job, moderator_role_id: int | None) -> bool:
    """The requester, whoever may manage messages in this channel (they could delete the message in Discord
    anyway), or a moderator as /mod knows them (server permissions or the configured moderator role)."""
    # interaction.permissions are the member's resolved permissions in this channel, sent by Discord.
    perms = interaction.permissions
    if interaction.user.id == job.user_id or perms.manage_messages or perms.administrator:
        return True
    return is_moderator(interaction, moderator_role_id)


async def _delete_clicked(interaction: discord.Interaction[Any]) -> None:
    """Delete the message whose button was pressed, through the click's own token: that works where the
    bot itself may not see the channel (commands and their answers still work there, the bot token's
    delete is refused), and a second press (a double click, a moderator at the same moment) finds the
    message gone, which is what it asked for."""
    try:
        await interaction.delete_original_response()
        return
    except discord.HTTPException as exc:
        if exc.code == UNKNOWN_MESSAGE or interaction.message is None:
            return
        # The click's token could not be used (its answer was lost, say): the bot's own is tried.
    with contextlib.suppress(discord.NotFound):
        await interaction.message.delete()


async def _answer_then_go_on(answer: Awaitable[object], job: Job, action: str) -> None:
    """Send a Cancel's or Delete's answer to Discord; if it fails, carry on all the same. The cancel is
    written by then and the member asked for it; and the failure is often an answer Discord made whose
    reply to the bot was lost (discord.py's resend is refused: 40060, already acknowledged), or one sent
    after Discord's 3 s (10062)."""
    try:
        await answer
    except discord.HTTPException as exc:
        if not settled_answer_failure(exc, f"the {action} button of job {job.id}"):
            log.warning("job %s: a button's answer failed (HTTP %s, code %s); going on", job.id, exc.status, exc.code)


class Imagine(commands.Cog):
    """Image generation commands."""

    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        self.presses = RecentPresses()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(JobButton, FrameChoice)
        self.bot.view_for = self.build_view
        self.bot.batch_view_for = self.build_batch_view

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(JobButton, FrameChoice)

    # Its answer is the job's message, written before it is sent: answered in time by record_in_time.
    @app_commands.command(name="imagine", extras={ANSWERS_ON_ITS_OWN: True})
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="Describe the image you want (end it with --ar 16:9, --seed 7 or --no text, as on Midjourney)",
        model=MODEL_DESCRIPTION,
        aspect_ratio="Shape of the image (each model offers its own set; auto lets the model choose)",
        resolution="Output size",
        count=f"How many images to make from this prompt, 1 to {MAX_CANDIDATES}, shown together (each costs its own)",
        image1="A reference image (PNG, JPEG or WebP)",
        image2="Another reference image",
        image3="Another reference image",
        image4="Another reference image (Nano Banana Pro takes more than Nano Banana 2)",
        references="Links to messages with images, or to images, as references too (for up to 14)",
        style_image="An image whose style to take (colours, light, medium), not what it shows: Midjourney's --sref",
        character_image="An image whose character to draw again (face, hair, clothes): Midjourney's --cref",
        seed="Same seed + same prompt gives a similar image (where the provider supports it)",
        output_format="File format of the result (where the provider lets you choose)",
        thinking="How long the model reasons before drawing (where supported)",
        web_search="Let the model look things up on the web first (where supported)",
        **{f"image{n}": "Another reference image" for n in range(5, ATTACHMENT_SLOTS + 1)},
    )
    @app_commands.choices(**OPTION_CHOICES)
    async def imagine(
        self,
        interaction: discord.Interaction[Any],
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS],
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: app_commands.Range[int, 1, MAX_CANDIDATES] | None = None,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        references: app_commands.Range[str, 1, REFERENCES_MAX_CHARS] | None = None,
        style_image: discord.Attachment | None = None,
        character_image: discord.Attachment | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        output_format: str | None = None,
        thinking: str | None = None,
        web_search: bool | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        image7: discord.Attachment | None = None,
        image8: discord.Attachment | None = None,
        image9: discord.Attachment | None = None,
        image10: discord.Attachment | None = None,
    ) -> None:
        """Generate an image with Google's Nano Banana models."""
        attached = (image1, image2, image3, image4, image5, image6, image7, image8, image9, image10)
        given_for: list[tuple[discord.Attachment | None, Role]] = [
            (style_image, "style"),
            (character_image, "character"),
        ]
        await self.make(
            interaction,
            prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count,
            attached=[a for a in attached if a is not None],
            attached_for=[(a, role) for a, role in given_for if a is not None],
            references=references,
            seed=seed,
            output_format=output_format,
            thinking=thinking,
            web_search=web_search,
            suffixed=True,
        )

    async def make(
        self,
        interaction: discord.Interaction[Any],
        prompt: str,
        *,
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: int | None = None,
        attached: Sequence[discord.Attachment] = (),
        attached_for: Sequence[tuple[discord.Attachment, Role]] = (),
        references: str | None = None,
        seed: int | None = None,
        output_format: str | None = None,
        thinking: str | None = None,
        web_search: bool | None = None,
        instruction: str | None = None,
        starting_from: Sequence[ReferenceImage] = (),
        came_from: Derivation | None = None,
        fewest_images: int = 0,
        suffixed: bool = False,
    ) -> None:
        """/imagine with its options as Discord sent them (``attached``: its images, in order); /blend's too
        (cogs/blend.py), whose ``prompt`` starts with its ``instruction`` to the model, the member's words after
        it (``words_after``: what moderation judges), and which needs ``fewest_images`` attached or linked; and the
        Use as reference form's, whose image goes first (``starting_from``: cogs/reference_form.py), and Change
        prompt's (``came_from``: the job each came from). ``suffixed``: a new prompt, to which the member's
        /preferences suffix is added (bot/prompt_suffix.py). ``attached_for``: images attached for their style or
        character (/imagine's ``style_image``: as ``--sref <link>``, bot/reference_roles.py), after the others."""
        check_prompt_option(prompt, typed=True)  # as Discord counted it; before any reference is looked up
        # "a fox --ar 16:9 --v 6", as members coming from Midjourney type it: parameters, not words for the model
        # (bot/prompt_parameters.py). Read from the cleaned prompt: a zero-width space after "16:9" hid it.
        # An image's or a message's link pasted into the prompt is a reference, not words (bot/prompt_links.py).
        here = place_of(interaction.channel)
        # The roles of the images attached for one, and of those a Change prompt keeps (its style image), so that the
        # words' --sw (--cw, --ow) weigh them: "the same, --sw 500" asks the kept style image for more of its style.
        given_roles = frozenset(role for _, role in attached_for)
        given_roles |= frozenset(image.role for image in starting_from if image.role is not None)
        sets = await member_option_sets(self.bot, interaction.guild_id, interaction.user.id)
        linked_in = await typed_links(
            self.bot, prompt, guild=interaction.guild, here=here, roles=given_roles, option_sets=sets
        )
        # "a {red, green} bird --ar {1:1, 16:9}": a prompt per choice, each its own image of one batch, each read for
        # its parameters (cogs/prompt_choices.py); one prompt without choices.
        choices = prompt_choices(linked_in.words, cap=await self.count_cap(interaction))
        unknown = unknown_name_note(choices[0].typed.words, sets)  # before a suffix: the member's own words
        permuted = len(choices) > 1
        one_repeat(choices)
        asked = [_typed_options(c.typed, aspect_ratio=aspect_ratio, seed=seed, count=count) for c in choices]
        services = self.bot.services
        # The member's own defaults (/preferences) fill what they left out, ahead of the server's.
        prefs = await services.preferences.get(interaction.guild_id or 0, interaction.user.id)
        if suffixed and prefs.suffix:
            # After the checks of what the member typed: a prompt of parameters alone is refused, suffix or not.
            choices = [replace(c, typed=with_suffix(c.typed, prefs.suffix)) for c in choices]
            check_suffixed(choices)
        count = asked[0][2]
        each = images_of_each(len(choices), count, cap=await self.count_cap(interaction)) if permuted else 1
        for _, seeded, _ in asked:
            if seeded is not None and count is not None and count > 1:
                # Every candidate of a batch is the same request: with one seed they come out alike, each charged.
                raise InvalidRequestError(
                    f"A seed makes the same image from the same prompt, so `count:{count}` with `seed:{seeded}` "
                    "would make (and charge you for) near-copies. Leave out the seed for different images, or the "
                    "count."
                )
        seed = asked[0][1]  # a count's seed: each choice's own below
        # A style (character, subject) given anew in Change prompt's words takes the place of the one it had, as a
        # new --sref does on Midjourney, rather than adding a second one. Use as reference's image, given a role in
        # its form just now, stays beside one its words give: both were asked for in the same breath.
        roles = {image.role for image in linked_in.images if image.role is not None}
        roles |= {role for role, _ in linked_in.role_messages}
        if came_from is not None and came_from.action == "reprompt":
            starting_from = [image for image in starting_from if image.role is None or image.role not in roles]
        starting_from = [
            image
            if image.role is None or (weight := linked_in.weight_of(image.role)) is None
            else image.model_copy(update={"weight": weight})
            for image in starting_from
        ]
        images = [*starting_from, *(self._reference(a) for a in attached)]
        images += [self._reference(a, role=role, weight=linked_in.weight_of(role)) for a, role in attached_for]
        # The image a Use as reference form started from, its link pasted in the words too, goes once.
        images += not_among(linked_in.images, starting_from)
        if linked_in.messages:
            linked = await linked_images(interaction, " ".join(linked_in.messages), "the prompt")
            images += [self._reference(i.attachment, own=i.by_this_bot) for i in linked]
        given_for = 0  # images of the messages linked after --sref (--cref, --oref), each with that role
        for parameter, role in PARAMETERS.items():
            if links := [link for given, link in linked_in.role_messages if given == role]:
                linked = await linked_images(interaction, " ".join(links), f"the prompt's `--{parameter}`")
                weight = linked_in.weight_of(role)
                images += [self._reference(i.attachment, own=i.by_this_bot, role=role, weight=weight) for i in linked]
                given_for += len(linked)
        if references:
            # Links to messages, as the option was made for, and to images (an image's Copy Link), as the prompt.
            listed = await typed_links(self.bot, references, guild=interaction.guild, here=here, alone=True)
            if listed.messages:
                linked = await linked_images(interaction, " ".join(listed.messages))
                images += [self._reference(i.attachment, own=i.by_this_bot) for i in linked]
            images += not_among(listed.images, images)
        if len(images) < fewest_images:
            raise InvalidRequestError(_too_few_images(fewest_images, len(images)))
        defaults = await services.settings_store.guild_defaults(interaction.guild_id or 0)
        typed = {
            "resolution": resolution,
            "output_format": output_format,
            "thinking_level": thinking,
            "web_search": web_search,
        }
        # The channel's safety level first (moderate() sets the same again): a saved model or default is kept
        # only if a provider that honours this channel's level takes it. Judged without it, a default only a
        # provider below the level offers (png, where only Kie has a format) got the whole command refused
        # "level 6 cannot be honoured" in a level-6 channel, where leaving it out goes through; so did a saved
        # model no provider honouring the level serves. A model typed in `model:` binds, and is refused so.
        level = await level_at(self.bot, interaction.guild_id or 0, place_of(interaction.channel))
        choice = (
            ModelChoice(model)
            if model
            else model_at(
                services.catalogue,
                prefs,
                server_default=defaults.default_model,
                configured=self.bot.settings.imagine.default_model,
                level=level,
            )
        )
        requests = []
        # Midjourney's --iw weighs the images given as references (not those given for a style: their sentence says
        # how much of them to take), said in words; with none, it is left out and named.
        weighed = any(image.role is None for image in images)
        for chosen, (ratio, seeded, _) in zip(choices, asked, strict=True):
            words = chosen.typed.prompt
            if weighed and chosen.typed.image_weight is not None:
                words = with_image_weight(words, chosen.typed.image_weight)
            options = {**typed, "aspect_ratio": ratio}
            request = build_request(
                model=choice.model,
                prompt=words,
                member_words=words_after(words, instruction),
                reference_images=tuple(images),
                came_from=came_from,
                seed=seeded,
                # The member's words with their choices (a /blend's, after its instruction), as typed.
                permutation=(words_after(linked_in.words, instruction) or linked_in.words) if permuted else None,
                picks=chosen.picks,
                **{name: value for name, value in options.items() if value is not None},
            )
            request = request.model_copy(update={"safety_tolerance": level})
            given = {n for n, v in options.items() if v is not None}
            requests.append(fill(services.catalogue, request, prefs, given=given))
        request = requests[0]  # the request, without choices; with them, the first (their references are alike)
        # The bot's own results linked in `references` may pass the members' limit; refused here, by name,
        # if no provider serving the model takes one, rather than by routing's general refusal.
        check_fits_provider(services.catalogue, request.model, request.reference_images)
        _check_reference_count(services.catalogue, request, len(linked_in.images) + given_for)
        preferred_count = None
        if permuted:
            count = each  # the choices say how many images: a preferred count is not asked of each of them
        elif count is None:
            # A preferred count is a default: held to the server's cap rather than refused by it (and to what
            # the quotas have room for, in start_job), and left out for a seeded request (its candidates would
            # come out alike, each charged).
            count = 1 if seed is not None else min(prefs.count or 1, await self.count_cap(interaction))
            preferred_count = count
        note = passed_over_note(services.catalogue, choice, level)
        notes = [note for note in (note, unknown) if note is not None]
        if permuted and asked[0][2] is None and (prefs.count or 1) > 1:
            notes.append(CHOICES_NOT_COUNT.format(count=prefs.count))
        # No image to zoom out of here: --zoom is for an edit (cogs/shape_field.py).
        left_out = [name for c in choices for name in (*c.typed.ignored, *(("--zoom",) if c.typed.zoom else ()))]
        left_out = [name for name in left_out if not (weighed and name.startswith(f"--{IMAGE_WEIGHT_NAME} "))]
        ignored = ignored_note(tuple(dict.fromkeys(left_out)))
        notes += [ignored] if ignored is not None else []
        try:
            if permuted:
                candidates = [request for request in requests for _ in range(count)]
                jobs = await self.start_each(interaction, candidates, preferred=defaults.default_provider)
            elif preferred_count is None:
                jobs = await self.start_job(interaction, request, preferred=defaults.default_provider, count=count)
            else:
                wanted = f"the {preferred_count} your /preferences ask for"
                jobs, fewer = await self.start_up_to(
                    interaction, [request] * count, preferred=defaults.default_provider, wanted=wanted
                )
                notes += [fewer] if fewer is not None else []
        except PromptBlockedError as exc:
            if not (suffixed and prefs.suffix):
                raise
            # A term blocked after the suffix was saved refuses every prompt of the member's: said where it may be.
            raise PromptBlockedError(
                f"{exc.user_message} Your /preferences suffix was added to it (`{prefs.suffix.replace('`', chr(39))}`)"
                "; `/preferences forget:Suffix` drops it.",
                detail=exc.detail,
            ) from None
        await self.tell_after(interaction, jobs, notes)

    async def tell_after(
        self, interaction: discord.Interaction[Any], jobs: Sequence[Job], notes: Sequence[str | None], sep: str = " "
    ) -> None:
        """The private notes on ``jobs`` just started (none: nothing said), with a word on the member's quota when it
        is nearly spent (bot/quotas.py ``running_low_note``)."""
        if not jobs:
            return
        said = [note for note in notes if note]
        quotas, member = self.bot.services.quotas, member_of(interaction)
        # Read only where the reservation's check found a window nearly spent: no statements after other requests.
        if self.bot.settings.quotas.enabled and quotas.nearly_spent(member):
            try:
                low = running_low_note(await quotas.status(member))
            except Exception:  # the jobs run whatever: a word on the quota is never worth an error to the member
                log.warning("could not read a member's quota for the word after their request", exc_info=True)
                low = None
            said += [low] if low is not None else []
        if said:
            await self.tell(interaction, sep.join(said))

    async def tell(self, interaction: discord.Interaction[Any], note: str) -> None:
        """A private word to the member once their job has started (its message is the command's answer). The
        job runs whatever becomes of it: a failure is logged, never raised to the member as an error."""
        try:
            await send_ephemeral(interaction, note)
        except discord.HTTPException as exc:
            log.info("could not tell the member a note about their job (HTTP %s, code %s)", exc.status, exc.code)

    def _reference(
        self, attachment: discord.Attachment, *, own: bool = False, role: Role | None = None, weight: int | None = None
    ) -> ReferenceImage:
        """A member's attachment as a reference, held to the members' upload limit; ``own``: the bot's own
        result, delivered up to the channel's upload limit and held instead to what a provider takes
        (routing, and ``check_fits_provider`` before a form is shown). ``role``: what it was given for (--sref:
        bot/reference_roles.py), with its ``weight`` (--sw)."""
        limit = self.bot.settings.imagine.max_attachment_bytes
        if not own and attachment.size > limit:
            raise InvalidRequestError(
                f"`{shown_file_name(attachment.filename)}` is {attachment.size / 1_048_576:.1f} MiB; reference "
                "images may be "
                f"at most {limit / 1_048_576:.0f} MiB."
            )
        return ReferenceImage(
            url=attachment.url,
            content_type=attachment.content_type or "",
            size=attachment.size,
            filename=attachment.filename,
            role=role,
            weight=weight,
        )

    async def moderate(self, interaction: discord.Interaction[Any], request: GenerationRequest) -> GenerationRequest:
        """Ban, blocked terms, then the channel's safety level, which the request carries from here on."""
        return await moderate(
            self.bot,
            request,
            guild_id=interaction.guild_id or 0,
            place=place_of(interaction.channel),
            user_id=interaction.user.id,
        )

    async def start_job(
        self,
        interaction: discord.Interaction[Any],
        request: GenerationRequest,
        *,
        preferred: str | None = None,
        count: int = 1,
    ) -> list[Job]:
        """Validate, acknowledge within Discord's 3 s, record the job (or ``count`` candidates of one
        batch, shown in one message), and hand them to the runner."""
        return await self.start_each(interaction, [request] * count, preferred=preferred)

    async def start_each(
        self, interaction: discord.Interaction[Any], requests: Sequence[GenerationRequest], *, preferred: str | None
    ) -> list[Job]:
        """``start_job`` for candidates whose requests differ (a prompt's choices in braces, each rolled again): one
        image of each, in order, all of them or none."""
        jobs, _ = await self._start(interaction, requests, preferred=preferred, fewer_if_refused=False)
        return jobs

    async def start_up_to(
        self,
        interaction: discord.Interaction[Any],
        requests: Sequence[GenerationRequest],
        *,
        preferred: str | None,
        wanted: str,
    ) -> tuple[list[Job], str | None]:
        """``start_each`` for a number of images that is a default (a saved count, a batch rolled again), which the
        quotas lower rather than refuse, leaving out those at the end first; with the private note for the member
        when fewer started (``wanted`` names the count asked for), else None."""
        count = len(requests)
        jobs, room = await self._start(interaction, requests, preferred=preferred, fewer_if_refused=True)
        if jobs and len(jobs) < count:
            waiting = any(render.waits_turn(job) for job in jobs)  # bot/waiting_requests.py
            return jobs, _fewer_note(len(jobs), wanted, room, waiting=waiting)
        return jobs, None

    async def _start(
        self,
        interaction: discord.Interaction[Any],
        requests: Sequence[GenerationRequest],
        *,
        preferred: str | None,
        fewer_if_refused: bool,
    ) -> tuple[list[Job], Room | None]:
        """``start_each``: one job per request (the same request ``count`` times for ``count`` images of it);
        with ``fewer_if_refused``, the limit with the least room when the quotas lowered their number (from their
        first refusal)."""
        # Each refusal below raises an InvalidRequestError -> ephemeral message; nothing stored, sent or charged.
        await self._check_count(interaction, len(requests))
        # Each different request judged once (a batch of one prompt is the same request each time).
        ready: dict[int, tuple[NewJob, Admission]] = {}
        for request in requests:
            if id(request) not in ready:
                ready[id(request)] = await self._admitted_job(interaction, request, preferred=preferred)
        news = [ready[id(request)] for request in requests]
        runner = self.bot.services.runner
        room: Room | None = None
        count = len(news)
        while True:
            # The quota check, the reservations and the job rows are one transaction; a refusal raises
            # QuotaExceededError (ephemeral, naming the limit and its reset) and leaves nothing behind.
            record = functools.partial(
                runner.create_batch, [new for new, _ in news[:count]], within=_reserved(news[:count]), held=True
            )
            try:
                jobs = await record_in_time(interaction, self.bot.services.db, record, undo=self._unmake)
                break
            except QuotaExceededError as refusal:
                # A preferred count is a default, never a refusal: a saved count:4 with room for 2 today had
                # every /imagine without `count:` refused "ask for count:2", an option the member never typed.
                # One fewer each time, the quotas judging each (theirs and the server's alike, in their
                # transaction); at one image, their refusal stands.
                if not fewer_if_refused or count == 1:
                    raise
                # The first refusal's, at the count asked for: the limit that binds it.
                room = room or refusal.room
                count -= 1
        try:
            # The answer is the job's first progress message itself ("Queued", its Cancel button): one
            # request, where a "thinking..." answer and then an edit were two (and two gateway events).
            callback = await interaction.response.send_message(
                **self.bot.services.sink.opening(jobs), allowed_mentions=discord.AllowedMentions.none()
            )
            message_id = callback.message_id
            if message_id is None:
                message_id = (await interaction.original_response()).id
        except Exception as exc:
            # Discord may never have seen our answer (the interaction expired), or made it and lost its
            # reply to us: the runner finds out which, starting the jobs or ending them uncharged.
            started = await runner.held.answer_failed(jobs, exc)
            if started is not None:
                return started, room
            if made_but_lost(exc):
                # Discord made the answer, and it is gone now (the member deleted it before the bot found
                # it): the jobs ended uncharged, and there is nobody to tell, nor anything wrong with us.
                return [], room
            if answered_too_late(exc):
                # Too late: Discord gives an answer 3 s, and shows the member "did not respond". Nothing can
                # be sent on this interaction any more; the operator should know the bot is that slow.
                took = discord.utils.utcnow() - interaction.created_at
                log.warning(
                    "/%s expired %.1f s after it was sent, before the bot answered; nothing started",
                    getattr(interaction.command, "qualified_name", "?"),
                    took.total_seconds(),
                )
                return [], room
            raise
        # Held until now, so nothing about them changed since that message was drawn.
        return [await runner.held.release(job.id, message_id=message_id, shown=True) or job for job in jobs], room

    async def _admitted_job(
        self, interaction: discord.Interaction[Any], request: GenerationRequest, *, preferred: str | None
    ) -> tuple[NewJob, Admission]:
        """``request`` checked (its length, the ban, blocked terms and the channel's level), routed, and as the job
        row to write, with where it goes and its reservation."""
        check_prompt_length(request)
        request = await self.moderate(interaction, request)
        request, admission = admitted(self.bot, request, member_of(interaction), preferred=preferred)
        expires = interaction.created_at + TOKEN_LIFETIME
        new = NewJob(
            provider=admission.provider,
            model=request.model,
            request=request,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            application_id=interaction.application_id,
            interaction_id=interaction.id,
            interaction_token=interaction.token,
            token_expires_at=expires.timestamp(),
            upload_limit=interaction.filesize_limit,
            cost_micro_usd=admission.caps.price_of(request),
            safety_level=request.safety_tolerance,
        )
        return new, admission

    async def _unmake(self, jobs: list[Job]) -> None:
        """Jobs written after their member was told the database was busy: ended before they start,
        uncharged, with nothing shown (their member has no message of theirs)."""
        for job in jobs:
            await self.bot.services.runner.cancel(job.id, by_user=None, message_gone=True)

    async def count_cap(self, interaction: discord.Interaction[Any]) -> int:
        cap = (await self.bot.services.settings_store.guild_defaults(interaction.guild_id or 0)).max_count
        return min(cap or MAX_CANDIDATES, MAX_CANDIDATES)

    async def _check_count(self, interaction: discord.Interaction[Any], count: int) -> None:
        cap = await self.count_cap(interaction)
        if not 1 <= count <= cap:
            raise InvalidRequestError(
                f"This server allows up to {cap} image(s) per prompt; ask for `count:{cap}` or fewer."
                if count > 1
                else "`count` must be at least 1."
            )

    def build_view(self, job: Job, phase: str, shape: float | None = None) -> discord.ui.View | None:
        """The buttons under a job's message: Cancel while it runs; on an image, what can be done with it (the pans
        its ``shape`` has room for: its width over height as delivered, else as asked)."""
        if phase == "progress":
            actions = [] if job.cancel_requested is not None else ["cancel"]
        elif phase == "result":
            catalogue = self.bot.services.catalogue
            caps = catalogue.capabilities(job.provider, job.model)
            size = job.request.resolution or (caps.default_resolution if caps else "1K")
            upscales = [f"upscale-{s}" for s in derive.upscale_sizes(catalogue, job.model, size)]
            reprompt = ["reprompt"] if _offers_new_prompt(job) else []
            actions = ["vary-subtle", "vary", "edit", *upscales, "zoom-out", "reroll", *reprompt, "reference", "delete"]
            shapes = derive.shapes(catalogue, job.model)
            current = shape or derive.proportion(job.request.aspect_ratio)
            actions += [PAN_PREFIX + way for way in derive.pans_with_room(current, shapes)]
            actions += ["square"] if derive.squares(current, shapes) else []
        else:
            actions = (["reroll"] if _offers_reroll(job) else []) + (["reprompt"] if _offers_new_prompt(job) else [])
        if not actions:
            return None
        view = discord.ui.View(timeout=None)
        for action in actions:
            view.add_item(JobButton(action, job.id))
        return view

    def build_batch_view(self, batch: Sequence[Job]) -> discord.ui.View | None:
        """The buttons under a batch's message, per image as soon as it is there: "V2 strong" and "V2 subtle"
        vary the second image, E2 edits it, "U2 4K" re-renders it at 4K (each the single image's action on
        that candidate's job); one Cancel for the candidates still running; when all have ended, Re-roll and
        Change prompt (the whole batch again, the second with other words) and Delete (the message)."""
        lead = batch[0]
        delivered = [job for job in batch if job.state is JobState.DELIVERED]
        # As /jobs counts them (bot/job_list.py ``cancellable``): a candidate whose image is in hand is being
        # delivered and cannot be stopped, so a Cancel offered for it alone would only answer "too late".
        running = any(
            not job.terminal and job.cancel_requested is None and job.state is not JobState.SUCCEEDED for job in batch
        )
        ended = all(job.terminal for job in batch)
        caps = self.bot.services.catalogue.capabilities(lead.provider, lead.model)
        size = lead.request.resolution or (caps.default_resolution if caps else "1K")
        sizes = derive.upscale_sizes(self.bot.services.catalogue, lead.model, size)
        # One row per action, the candidates side by side (at most four), as their images are: five rows
        # with both re-render sizes, Discord's most for a message (the rows' last places hold Cancel or
        # Re-roll, and Delete).
        rows: list[list[JobButton]] = [
            [JobButton("vary", j.id, label=f"V{j.batch_index} strong", row=0) for j in delivered],
            [JobButton("vary-subtle", j.id, label=f"V{j.batch_index} subtle", row=1) for j in delivered],
            [JobButton("edit", j.id, label=f"E{j.batch_index}", row=2) for j in delivered],
            *(
                [JobButton(f"upscale-{s}", j.id, label=f"U{j.batch_index} {s}", row=3 + n) for j in delivered]
                for n, s in enumerate(sizes)
            ),
        ]
        if running:
            rows[0].append(JobButton("cancel", lead.id, row=0))
        elif ended:
            if delivered or any(_offers_reroll(job) for job in batch):
                rows[0].append(JobButton("reroll", lead.id, row=0))
            # The whole batch again with other words; the subtle row has a place left (four candidates at most).
            if _offers_new_prompt(lead):
                rows[1].append(JobButton("reprompt", lead.id, row=1))
            if delivered:
                rows[2].append(JobButton("delete", lead.id, row=2))
        if delivered:
            # In the first row after E's with a place left (a re-render row holds four at most), else a row of its own.
            at = next((n for n in range(3, len(rows)) if len(rows[n]) < 5), len(rows))
            if at == len(rows):
                rows.append([])
            rows[at].append(JobButton("more", lead.id, row=at))
        items = [button for row in rows for button in row]
        if not items:
            return None
        view = discord.ui.View(timeout=None)
        for item in items:
            view.add_item(item)
        return view

    async def _image_message(self, interaction: discord.Interaction[Any], job: Job) -> discord.Message | None:
        """The message that shows ``job``'s image: the one pressed; or, for a press in a batch's More menu (a
        private message of the bot's: ``_more_menu``), the batch's message, fetched (None if it is gone)."""
        message = interaction.message
        if message is None or job.message_id is None or message.id == job.message_id or not message.flags.ephemeral:
            return message
        try:
            return await message.channel.fetch_message(job.message_id)
        except (discord.NotFound, discord.Forbidden):
            return None

    def _shown_image(self, message: discord.Message | None, job: Job) -> tuple[ReferenceImage, str]:
        """``job``'s image on ``message`` (``_image_message``), as Discord serves it now (its link freshly signed):
        the message's image, or in a batch's message the one uploaded for that candidate."""
        attachment = self.shown_attachment(message, job)
        assert message is not None  # an attachment was found on it
        image = self._reference(attachment, own=True)
        check_fits_provider(self.bot.services.catalogue, job.model, [image])
        return image, message.jump_url

    def shown_attachment(self, message: discord.Message | None, job: Job) -> discord.Attachment:
        images = [a for a in message.attachments if (a.content_type or "").startswith("image/")] if message else []
        own = [a for a in images if a.filename.rsplit(".", 1)[0] == result_stem(job.id, 1)]
        chosen = own or (images if job.batch_id is None else [])
        if message is None:
            # Only a More menu's press finds no message: the batch's message it names was deleted.
            raise InvalidRequestError(
                "The message that showed this image was deleted, so there is nothing to work from. "
                "Run /imagine again (you were not charged)."
            )
        if not chosen:
            raise InvalidRequestError(
                "The image is no longer on this message, so there is nothing to work from. "
                "Run /imagine again (you were not charged)."
            )
        return chosen[0]

    def _frame_facts(
        self, message: discord.Message | None, job: Job
    ) -> tuple[tuple[str, ...], str | None, float | None]:
        """What the Reframe choice needs of ``job``'s image: the shapes its model comes in, the one it has,
        and its width over height as Discord shows it (None if Discord does not say)."""
        attachment = self.shown_attachment(message, job)
        shown = attachment.width / attachment.height if attachment.width and attachment.height else None
        shapes = derive.shapes(self.bot.services.catalogue, job.model)
        return shapes, derive.own_shape(job.request.aspect_ratio, shown, shapes), shown

    def _frames_of(self, message: discord.Message | None, shown: Sequence[Job]) -> list[discord.SelectOption]:
        """The More menu list's choices for a batch's images on ``message``: each one's pans with room and Make square,
        as a single image's buttons offer them (an image no longer there, none)."""
        options: list[discord.SelectOption] = []
        for job in shown:
            try:
                shapes, _, width_over_height = self._frame_facts(message, job)
            except InvalidRequestError:
                continue
            current = width_over_height or derive.proportion(job.request.aspect_ratio)
            n = job.batch_index
            for way in derive.pans_with_room(current, shapes):
                value = f"{PAN_PREFIX}{way}:{job.id}"
                options.append(discord.SelectOption(label=f"Pan #{n} {way}", value=value, emoji=derive.PAN_ARROWS[way]))
            if derive.squares(current, shapes):
                options.append(discord.SelectOption(label=f"Make #{n} square", value=f"square:{job.id}", emoji="🔲"))
        return options[:25]  # Discord's most for a list (four images, five choices each, at most)

    def _frame_of(self, message: discord.Message | None, job: Job, action: str) -> derive.Frame:
        """A pan button's or Make square's frame, as the Edit form's choice of that pan or of the shape 1:1 makes it:
        the shape with room that way, from the image's proportion as Discord shows it (else as it was asked).
        Refused privately where the model has no such shape (an image whose shape was not known until it came),
        or the image is square already (a message drawn before, a modified client)."""
        shapes, current, shown = self._frame_facts(message, job)
        if action == "square" and not derive.squares(shown or derive.proportion(job.request.aspect_ratio), shapes):
            raise InvalidRequestError(SQUARE_ALREADY)
        return asked_change(
            "",
            [derive.SQUARE if action == "square" else action],
            offered=shapes,
            current=current,
            proportion=shown or derive.proportion(job.request.aspect_ratio),
            model_name=self.bot.services.catalogue.display_name(job.model),
        ).frame

    async def _renewed(self, request: GenerationRequest) -> GenerationRequest:
        return await refresh_references(self.bot.http, request, now=self.bot.clock())

    async def _job_here(self, interaction: discord.Interaction[Any], job_id: str, *, words: bool = True) -> Job | None:
        """The job a button or form names, if it belongs to this server and to the channel of the message pressed;
        else the member is told it does not exist. Discord sends a button's id as the bot set it on its message,
        but a modified client may send any id: a job of another server must not be varied, edited or cancelled
        from this one. ``words``: what the press does needs the request's words (to make it again, vary it, edit
        it...), refused, saying why, where its member erased them (/privacy)."""
        job = await self.bot.services.runner.store.get(job_id)
        # Nor a job of another channel, pressed on a message of this one: its prompt (Change prompt's form shows it),
        # its image and its references would reach members who may not see that channel. The channel the pressed
        # message is in, not the interaction's: a thread's first message is its parent's, shown in the thread too.
        shown_in = interaction.message.channel.id if interaction.message is not None else None
        elsewhere = job is not None and None not in (job.channel_id, shown_in) and job.channel_id != shown_in
        if job is None or job.guild_id is None or job.guild_id != interaction.guild_id or elsewhere:
            await send_ephemeral(interaction, "That job no longer exists.")
            return None
        if words and job.erased_at is not None:
            await send_ephemeral(interaction, ERASED_REFUSAL)
            return None
        return job

    async def on_button(self, interaction: discord.Interaction[Any], action: str, job_id: str) -> None:
        store = self.bot.services.runner.store
        job = await self._job_here(interaction, job_id, words=action not in WITHOUT_WORDS)
        if job is None:
            return
        # A button of a batch's message acts for the whole batch: its candidates share the message.
        batch = await store.batch(job.batch_id) if job.batch_id is not None else [job]
        refusal = _reroll_refusal(batch) if action == "reroll" else None
        if refusal is not None:
            await send_ephemeral(interaction, refusal)
            return
        # In Remix mode (cogs/remix_vary.py) a Vary opens a form, which a second press may open again; so does a
        # Re-roll, Change prompt's form (where the request offers one), as Midjourney's Remix has it.
        prefs = await self.bot.services.preferences.get(interaction.guild_id or 0, interaction.user.id)
        remixed = bool(prefs.remix) and (
            action in VARIATIONS or action in REMIXED_FRAMES or (action == "reroll" and _offers_new_prompt(job))
        )
        action = "reprompt" if remixed and action == "reroll" else action
        starts_a_job = action in ONE_CLICK_STEPS or action in VARIATIONS or action.startswith(REWORKS)
        if starts_a_job and not remixed and self.presses.again(interaction.user.id, job.id, action):
            await send_ephemeral(interaction, TAKEN_ONCE)
            return
        if action == "reroll":
            # The same request again, with a new seed where it had one: the same seed would make the same
            # image again, charged again (derive.reroll).
            # A batch of one prompt is that request again, each time; a prompt's choices in braces (bot/permutations.py)
            # are each candidate's own.
            rolled = batch if len({candidate.request.prompt for candidate in batch}) > 1 else [job] * len(batch)
            again: dict[str, GenerationRequest] = {}
            for candidate in rolled:
                if candidate.id not in again:
                    again[candidate.id] = await self._rerolled(interaction, candidate)
            # A batch made before the server lowered its cap is rolled again at the cap: a button cannot "ask
            # for count:2", which is all the refusal could say.
            count = min(len(batch), await self.count_cap(interaction))
            # Nor "ask for count:1" when the quota has room for fewer than the batch: a batch is rolled again
            # with as many as there is room for (a saved count:2 made it, with one unit left today its Re-roll
            # was refused so), and the member told privately, as /imagine tells of a preferred count lowered.
            started, fewer = await self.start_up_to(
                interaction,
                [again[candidate.id] for candidate in rolled[:count]],
                preferred=job.provider,
                wanted=f"the {count} of the batch you re-rolled",
            )
            await self.tell_after(interaction, started, [fewer])
            return
        if action == "edit" or (remixed and action in REMIXED_FRAMES):
            # Refuse now, not after the member has typed: no image, or a ban (moderate() checks bans
            # first, so it raises the ban's own message before looking at any prompt), or a model no longer
            # served here.
            require_served(self.bot.services.catalogue, job.model)
            shown_on = await self._image_message(interaction, job)
            shapes, current, width_over_height = self._frame_facts(shown_on, job)
            self._shown_image(shown_on, job)  # an image larger than any provider here takes: refused now
            if await self.bot.services.moderation.active_ban(interaction.guild_id or 0, interaction.user.id):
                await self.moderate(interaction, job.request)
            # In Remix mode a Zoom out, a pan or Make square opens the Edit form with that frame chosen, for words.
            chosen = REMIXED_FRAMES.get(action, KEEP)
            frame = shape_field(shapes, current, proportion=width_over_height, custom_id=EDIT_SHAPE_ID, chosen=chosen)
            region = region_field(EDIT_REGION_ID)
            await interaction.response.send_modal(EditModal(job.id, frame=frame, region=region))
            return
        if action == "more":
            shown = [j for j in batch if j.state is JobState.DELIVERED]
            if not shown:
                raise InvalidRequestError("None of these images is ready yet.")
            await answer_privately(
                interaction, MORE_MENU, view=_more_menu(shown, self._frames_of(interaction.message, shown))
            )
            return
        if action == "reprompt":
            # Refused now rather than after the member has typed: a message drawn before the rule, or a modified
            # client, on a request whose prompt is not the member's words; a ban (as Edit's).
            if not _offers_new_prompt(job):
                raise InvalidRequestError(NO_NEW_PROMPT)
            if await self.bot.services.moderation.active_ban(interaction.guild_id or 0, interaction.user.id):
                await self.moderate(interaction, job.request)
            catalogue = self.bot.services.catalogue
            models = [(model, catalogue.display_name(model)) for model in catalogue.models()]
            await interaction.response.send_modal(PromptForm(job.id, job.request, models))
            return
        if action == "reference":
            # Refused now rather than after the member has typed: no image here, or a ban (as Edit's).
            self.shown_attachment(await self._image_message(interaction, job), job)
            if await self.bot.services.moderation.active_ban(interaction.guild_id or 0, interaction.user.id):
                await self.moderate(interaction, job.request)
            await interaction.response.send_modal(ReferenceForm(job.id, await self.model_choice(interaction)))
            return
        if action in VARIATIONS or action.startswith(REWORKS) or action in ("zoom-out", "square"):
            shown_on = await self._image_message(interaction, job)
            image, message_url = self._shown_image(shown_on, job)
            origin = (job.id, message_url)
            if action in ("zoom-out", "square") or action.startswith(PAN_PREFIX):
                # The Edit form's "Zoom out", pan or new shape 1:1 with no words: the image's conversation carried
                # on as an edit's.
                framing = ZOOM_OUT_ONLY if action == "zoom-out" else self._frame_of(shown_on, job, action)
                history = derive.continued(job, [image], by=interaction.user.id)
                request = derive.edit(job.request, image, "", origin, history=history, frame=framing)
                if framing.ratio is not None:
                    # The button's shape, not a preference a provider may leave out (as the Edit form's new shape):
                    # a pan drawn in the image's own shape would have no room for what it adds.
                    request = _chosen(request, "aspect_ratio")
            elif action in VARIATIONS:
                if remixed:
                    # Remix mode (cogs/remix_vary.py): the words first, the variation on the form's submit.
                    await interaction.response.send_modal(VaryForm(job.id, action, derive.shown_words(job.request)))
                    return
                request = self._varied(job, image, origin, action)
            else:
                # The size is the button's, not a preference to leave out (start_job, ``admitted``).
                upscale = derive.upscale(job.request, image, action.removeprefix("upscale-"), origin)
                request = _chosen(upscale, "resolution")
            started = await self.start_job(interaction, await self._renewed(request), preferred=job.provider)
            await self.tell_after(interaction, started, [])
            return
        if not _can_manage(interaction, job, self.bot.settings.moderation.moderator_role_id):
            await send_ephemeral(interaction, "Only the member who asked for this image (or a moderator) can do that.")
            return
        if action == "cancel":
            runner = self.bot.services.runner
            # Kept before Discord is told the click was taken: a crash after the acknowledgement still
            # cancels (the next start carries it out), one before it shows the member the click failed.
            # A click taken is a promise: that job will not be delivered or charged.
            # Past Discord's window the member reads that the database is busy; a cancel written after that
            # is carried out all the same (the job's next step finds it), as they asked.
            # The loop may carry the cancel out meanwhile: its end waits for this answer, not drawn over by it.
            async with runner.cancels.answering(job.batch_id or job.id):
                requested = await record_in_time(
                    interaction,
                    self.bot.services.db,
                    lambda: runner.cancels.request_batch(
                        [candidate.id for candidate in batch if not candidate.terminal],
                        batch_id=job.batch_id,
                        by_user=interaction.user.id,
                        message_id=interaction.message.id if interaction.message is not None else None,
                    ),
                )
                taken = [j for j in requested if j is not None and not j.terminal and j.cancel_requested is not None]
                if not taken:
                    # Ended, or its image is in hand and being delivered: that beats throwing it away.
                    arriving = [j for j in batch if not (await store.get(j.id) or j).terminal]
                    await send_ephemeral(
                        interaction,
                        "Too late to cancel: the image is already on its way."
                        if arriving
                        else "This job has already finished.",
                    )
                    return
                # The answer itself shows "Cancelling…" (no Cancel button any more): the member sees the click
                # taken even while a step of the job holds it (a hung poll, a slow synchronous create).
                shown = [await store.get(j.id) or j for j in batch]
                await _answer_then_go_on(
                    interaction.response.edit_message(**self.bot.services.sink.opening(shown)), job, action
                )
            for candidate in taken:
                await runner.cancel(candidate.id, by_user=interaction.user.id)
            # A cancel already written by someone else (the member and a moderator pressing together) is
            # theirs: `request` returns it unchanged, and the log credits whoever wrote it.
            if interaction.user.id != job.user_id and any(j.cancelled_by == interaction.user.id for j in taken):
                await self._record_for(interaction, job, "cancel", "cancelled a job")
        elif action == "delete":
            await _answer_then_go_on(interaction.response.defer(), job, action)
            await _delete_clicked(interaction)
            for candidate in batch:
                await store.mark_deleted(candidate.id, by=interaction.user.id, now=self.bot.clock())
            if interaction.user.id != job.user_id:
                await self._record_for(interaction, job, "delete", "deleted an image")

    async def _rerolled(self, interaction: discord.Interaction[Any], job: Job) -> GenerationRequest:
        """``job``'s request again, with a new seed where it had one: the same seed would make the same image again,
        charged again (derive.reroll)."""
        request = derive.reroll(await self._renewed(job.request))
        if interaction.user.id != job.user_id and request.history:
            # The conversation's turns keep the requester's own references (attached to their /imagine,
            # never shown): another member's Re-roll sends only what the channel showed, as their reply
            # or Edit does (derive.public_turns). The request's own references are its prompt's, as Vary's.
            request = request.model_copy(update={"history": derive.public_turns(request.history)})
        return request

    async def _record_for(self, interaction: discord.Interaction[Any], job: Job, action: str, did: str) -> None:
        """A moderator acted on another member's job: the moderation log (and its channel) says so."""
        await record_moderation(
            self.bot,
            job.guild_id or 0,
            action,
            f"<@{interaction.user.id}> {did} by <@{job.user_id}> (job {job.id}).",
            actor_id=interaction.user.id,
            target_id=job.user_id,
            channel_id=job.channel_id,
            job_id=job.id,
            prompt=job.request.prompt,
        )

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """The Edit form's submit, the Use as reference form's and the Change prompt form's, whether this process
        or an earlier one opened it (see EditModal)."""
        # The two forms whose one box is a prompt (cogs/reference_form.py ``prompt_box``).
        prompt_forms = (
            (PROMPT_FORM_ID, "Change prompt", self.on_prompt_submit),
            (REFERENCE_FORM_ID, "Use as reference", self.on_reference_submit),
        )
        for form_id, name, on_submit in prompt_forms:
            sent = form_submit(interaction, form_id)
            if sent is not None:
                match, components = sent
                words = submitted_text(components, PROMPT_INPUT_ID) or ""
                where = f"the {name} form of job {match['job_id']}"
                submit = on_submit(interaction, match["job_id"], words, components)
                await watched_answer(interaction, self.bot.services.db, where, submit, typed=words)
                return
        varied = form_submit(interaction, VARY_FORM_ID)
        if varied is not None:
            match, components = varied
            words = submitted_text(components, PROMPT_INPUT_ID) or ""
            where = f"the Remix Vary form of job {match['job_id']}"
            submit = self.on_vary_submit(interaction, match["job_id"], match["action"], words)
            await watched_answer(interaction, self.bot.services.db, where, submit, typed=words)
            return
        submitted = form_submit(interaction, EDIT_MODAL_ID)
        if submitted is None:
            return
        match, components = submitted
        instruction = submitted_text(components, EDIT_INPUT_ID)
        shape = submitted_values(components, EDIT_SHAPE_ID)
        region = submitted_values(components, EDIT_REGION_ID)
        where = f"the Edit form of job {match['job_id']}"
        submit = self.on_edit_submit(interaction, match["job_id"], instruction, shape, region)
        await watched_answer(interaction, self.bot.services.db, where, submit, typed=instruction)

    async def model_choice(self, interaction: discord.Interaction[Any]) -> discord.ui.Label[Any] | None:
        """A form's Model list for a new request of the member's (Use as reference's, cogs/mention_prompts.py's):
        first the model /imagine would use for them, chosen, then each served here; None when only one is."""
        catalogue = self.bot.services.catalogue
        models = [(model, catalogue.display_name(model)) for model in catalogue.models()]
        if len(models) < 2:
            return None
        prefs = await self.bot.services.preferences.get(interaction.guild_id or 0, interaction.user.id)
        defaults = await self.bot.services.settings_store.guild_defaults(interaction.guild_id or 0)
        usual = model_for(
            catalogue, prefs, server_default=defaults.default_model, configured=self.bot.settings.imagine.default_model
        )
        return model_box(models, None, default_name=catalogue.display_name(usual))

    def picked_model(self, components: list[Any]) -> str | None:
        """The model a form's Model list picked; None for the member's default (or a form without the list)."""
        picked = submitted_values(components, MODEL_INPUT_ID)
        model = None if not picked or picked[0] == DEFAULT_MODEL else picked[0]
        if model is not None and model not in self.bot.services.catalogue.models():
            raise InvalidRequestError("That model is not served here now; pick one from the form's list.")
        return model

    async def on_reference_submit(
        self, interaction: discord.Interaction[Any], job_id: str, prompt: str, components: list[Any]
    ) -> None:
        """A new request from the form's prompt, as /imagine's, with the job's image as its first reference (for its
        style, character or subject alone where the form's *Use it for* says so): on the model picked in the form,
        else (its default, or a form without the choice) as /imagine chooses."""
        model = self.picked_model(components)
        picked_role = (submitted_values(components, ROLE_INPUT_ID) or [AS_IT_IS])[0]
        role = next((given for given in PARAMETERS.values() if given == picked_role), None)
        if role is None and picked_role != AS_IT_IS:
            raise InvalidRequestError("Pick what to use the image for from the form's list.")
        job = await self._job_here(interaction, job_id, words=False)  # the image alone: its words are not read
        if job is None:
            return
        shown_on = await self._image_message(interaction, job)
        image = self._reference(self.shown_attachment(shown_on, job), own=True, role=role)
        source = Derivation(action="reference", job_id=job.id, message_url=_shown_at(shown_on))
        await self.make(interaction, prompt, model=model, starting_from=(image,), came_from=source, suffixed=True)

    async def on_prompt_submit(
        self, interaction: discord.Interaction[Any], job_id: str, words: str, components: list[Any]
    ) -> None:
        """The job's request again, as /imagine with ``words``: its model (or the one ``picked_model`` in the form),
        the options its member chose (those their /preferences filled in are the presser's now, as for any /imagine
        of theirs), its reference images (their links renewed), one image (a batch's message: the batch). ``--ar``,
        ``--seed`` or ``--repeat`` typed in the words take the place of the request's."""
        job = await self._job_here(interaction, job_id)
        if job is None:
            return
        if not _offers_new_prompt(job):
            raise InvalidRequestError(NO_NEW_PROMPT)
        picked_model = submitted_values(components, MODEL_INPUT_ID)
        model = job.model if not picked_model else picked_model[0]
        if model != job.model and (
            job.request.derived_from is not None
            or job.request.history
            or model not in self.bot.services.catalogue.models()
        ):
            # The form offers the models served, for a request of the member's own: anything else, a modified client.
            raise InvalidRequestError("That model cannot make this image again here; pick one from the form's list.")
        if job.request.derived_from is not None or job.request.history:
            await self._rework_with(interaction, job, words)
            return
        base = await self._renewed(job.request)
        typed = typed_anywhere(clean_prompt(words), most=MAX_CANDIDATES)

        def chosen(name: str) -> Any:
            return None if name in base.defaulted else getattr(base, name)

        blended = derive.blend_words(base) is not None
        # A batch's message asks for the batch again, as its Re-roll does: as many as the server's cap allows now.
        batch_size: int | None
        if number_of(words) > 1:
            batch_size = None  # the choices in braces say how many images, as /imagine's
        elif job.batch_id is None:
            batch_size = 1
        else:
            batch_size = min(
                len(await self.bot.services.runner.store.batch(job.batch_id)), await self.count_cap(interaction)
            )
        await self.make(
            interaction,
            derive.blend_prompt(words) if blended else words,
            model=model,
            aspect_ratio=None if typed.ratio else chosen("aspect_ratio"),
            resolution=chosen("resolution"),
            # The seed it had, so that the new words are drawn from the same start, unless others are typed.
            seed=None if typed.seed or typed.repeat else base.seed,
            count=None if typed.repeat else batch_size,
            output_format=chosen("output_format"),
            thinking=chosen("thinking_level"),
            web_search=chosen("web_search"),
            starting_from=base.reference_images,
            came_from=Derivation(action="reprompt", job_id=job.id, message_url=_shown_at(interaction.message)),
            instruction=derive.BLEND if blended else None,
        )

    def _varied(
        self, job: Job, image: ReferenceImage, origin: tuple[str, str | None], action: str
    ) -> GenerationRequest:
        """The Vary (``action``: strong or subtle) of ``job``'s image, as its button asks it."""
        catalogue = self.bot.services.catalogue
        return derive.vary(
            job.request,
            image,
            origin,
            limit=derive.reference_limit(catalogue, job.model),
            strength=VARIATIONS[action],
            max_chars=min(derive.prompt_limit(catalogue, job.model), PROMPT_MAX_CHARS),
        )

    async def on_vary_submit(self, interaction: discord.Interaction[Any], job_id: str, action: str, words: str) -> None:
        """Remix mode's form (cogs/remix_vary.py): the image varied as its Vary button asks, by the words submitted."""
        job = await self._job_here(interaction, job_id)
        if job is None:
            return
        shown_on = await self._image_message(interaction, job)
        image, message_url = self._shown_image(shown_on, job)
        varied = self._varied(job, image, (job.id, message_url), action)
        await self._reworded(
            interaction, await self._renewed(varied), words, owner=interaction.user.id, provider=job.provider
        )

    async def _rework_with(self, interaction: discord.Interaction[Any], job: Job, words: str) -> None:
        """Change prompt on an image made from another (a Vary, an edit, a reply, a zoom out, a pan): the same step
        again, from the same image, with ``words`` (``derive.reworded``), as Midjourney's Remix asks a variation again
        with other words. Charged to the presser, as the buttons are; their Re-roll's rule for the conversation holds
        (another member's request sends only what the channel showed). Images linked in the words go along, as the
        Edit form takes them; Midjourney's parameters are left out and named (the step keeps the image's shape and
        options)."""
        base = await self._renewed(job.request)
        await self._reworded(interaction, base, words, owner=job.user_id, provider=job.provider)

    async def _reworded(
        self,
        interaction: discord.Interaction[Any],
        base: GenerationRequest,
        words: str,
        *,
        owner: int | None,
        provider: str,
    ) -> None:
        """``base`` (a step made from an image) with ``words`` in place of its member's (``_rework_with``): ``owner``
        the member whose request it was, ``provider`` the one it went to."""
        here = place_of(interaction.channel)
        sets = await member_option_sets(self.bot, interaction.guild_id, interaction.user.id)
        linked_in = await typed_links(self.bot, words, guild=interaction.guild, here=here, edit=True, option_sets=sets)
        variants = edit_choices(linked_in.words, cap=await self.count_cap(interaction))
        typed = split_parameters(variants[0].text)  # alike in each (edit_choices)
        asked = {"ar": typed.ratio, "seed": typed.seed, "repeat": typed.repeat, "zoom": "" if typed.zoom else None}
        kept = [f"--{name} {value}".rstrip() for name, value in asked.items() if value is not None]
        catalogue = self.bot.services.catalogue
        requests = []
        for variant in variants:
            request = derive.reworded(
                base,
                split_parameters(variant.text).prompt.strip(),
                more=tuple(not_among(linked_in.images, base.reference_images)),
                max_chars=min(derive.prompt_limit(catalogue, base.model), PROMPT_MAX_CHARS),
            )
            if request is None:
                raise InvalidRequestError(NO_NEW_WORDS)
            if interaction.user.id != owner and request.history:
                request = request.model_copy(update={"history": derive.public_turns(request.history)})
            requests.append(one_of(request, linked_in.words, variant, many=len(variants) > 1))
        jobs = await self.start_each(interaction, requests, preferred=provider)
        unknown = unknown_name_note(typed.words, sets)
        await self.tell_after(interaction, jobs, [ignored_note(typed.ignored), _kept_note(kept), unknown], sep="\n")

    async def on_edit_submit(
        self,
        interaction: discord.Interaction[Any],
        job_id: str,
        instruction: str | None,
        shape: list[str] | None,
        picked_region: list[str] | None = None,
    ) -> None:
        region = asked_region(picked_region)
        job = await self._job_here(interaction, job_id)
        if job is None:
            return
        check_region(region, instruction)
        shown_on = await self._image_message(interaction, job)
        shapes, current, width_over_height = self._frame_facts(shown_on, job)
        here = place_of(interaction.channel)
        # Other images, by their links.
        sets = await member_option_sets(self.bot, interaction.guild_id, interaction.user.id)
        linked_in = await typed_links(
            self.bot, instruction, guild=interaction.guild, here=here, edit=True, option_sets=sets
        )
        image, message_url = self._shown_image(shown_on, job)
        origin = (job.id, message_url)
        history = derive.continued(job, [image], by=interaction.user.id)
        more = tuple(not_among(linked_in.images, [image]))  # the image's own link adds nothing
        # "make it {night, winter}": an edit for each choice, one batch (cogs/prompt_choices.py).
        variants = edit_choices(linked_in.words, cap=await self.count_cap(interaction))
        requests = []
        for variant in variants:
            instruction, frame, ignored = asked_change(
                variant.text,
                shape,
                offered=shapes,
                current=current,
                proportion=width_over_height,
                model_name=self.bot.services.catalogue.display_name(job.model),
            )
            check_region_frame(region, frame)
            request = derive.edit(
                job.request, image, instruction, origin, history=history, frame=frame, more=more, region=region
            )
            if frame.ratio is not None:
                request = _chosen(request, "aspect_ratio")  # the form's new shape: no preference to leave out
            # The conversation's earlier images as Vary, Re-roll and replies send them: links renewed. Their
            # Discord links expire after a day, and an edit of a day-old Gemini image lost its earlier turns.
            request = await self._renewed(request)
            requests.append(one_of(request, linked_in.words, variant, many=len(variants) > 1))
        jobs = await self.start_each(interaction, requests, preferred=job.provider)
        unknown = unknown_name_note(split_parameters(linked_in.words).words, sets)
        await self.tell_after(interaction, jobs, [ignored_note(ignored), unknown])


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Imagine(bot))
