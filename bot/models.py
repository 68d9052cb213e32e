"""Data shapes shared by the cogs, the job engine and the providers."""

from __future__ import annotations

import json
import unicodedata
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.errors import ErrorCategory
from bot.prompts import clean_prompt
from bot.reference_roles import Role, with_roles
from bot.regions import Region


class JobState(StrEnum):
    """Lifecycle of a job (docs/architecture.md section 4). Stored as TEXT."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DELIVERED = "delivered"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {JobState.DELIVERED, JobState.FAILED, JobState.BLOCKED, JobState.CANCELLED, JobState.EXPIRED}
)

# Allowed transitions; anything else is a bug and is refused by the store.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset(
        {JobState.SUBMITTED, JobState.FAILED, JobState.BLOCKED, JobState.CANCELLED, JobState.EXPIRED}
    ),
    JobState.SUBMITTED: frozenset(
        {
            JobState.RUNNING,
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.BLOCKED,
            JobState.CANCELLED,
            JobState.EXPIRED,
        }
    ),
    JobState.RUNNING: frozenset(
        {JobState.SUCCEEDED, JobState.FAILED, JobState.BLOCKED, JobState.CANCELLED, JobState.EXPIRED}
    ),
    # A succeeded job whose delivery keeps failing ends as failed (reason: delivery); one whose message
    # was deleted before its image could be shown there, as cancelled (nothing to show it on, uncharged).
    JobState.SUCCEEDED: frozenset({JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED}),
    JobState.DELIVERED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.BLOCKED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.EXPIRED: frozenset(),
}


# The longest file name a message quotes; a longer one keeps its start and its extension.
MAX_FILE_NAME = 80


def shown_file_name(name: str) -> str:
    """A member's file name as messages quote it, in a code span: a backtick would end the span and let the
    rest of the name be read as Markdown (a masked link, bold) in the job's public message, so it becomes
    an apostrophe; control characters and line breaks become spaces; a long name is shortened."""
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in name.replace("`", "'")).strip()
    cleaned = cleaned or "image"
    if len(cleaned) <= MAX_FILE_NAME:
        return cleaned
    stem, dot, extension = cleaned.rpartition(".")
    tail = dot + extension if stem and len(extension) <= 8 else ""
    return cleaned[: MAX_FILE_NAME - 1 - len(tail)] + "…" + tail


class ReferenceImage(BaseModel):
    """A reference image the member attached; providers that take URLs pass ``url`` on."""

    model_config = ConfigDict(frozen=True)

    url: str
    content_type: str
    size: int = Field(ge=0)
    filename: str = "image"
    # What the member gave it for (Midjourney's --sref, --cref, --oref: bot/reference_roles.py); None: a reference
    # as any other. Said to the model in the prompt sent (GenerationRequest.sent_prompt), never sent as a field.
    role: Role | None = None
    # Midjourney's weight for that role, as given (``--sw 50``; None: its default), said in words too.
    weight: int | None = Field(default=None, ge=0, le=1000)

    @field_validator("filename")
    @classmethod
    def _shown_name(cls, name: str) -> str:
        return shown_file_name(name)


class Turn(BaseModel):
    """An earlier step of a conversation of edits (a reply to the bot's image, a reply to that answer...):
    what was asked, with which references, and the image the model made, with the signature Gemini
    gave it (docs/providers.md 6.3: earlier turns go back with their ``thoughtSignature``)."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    # As that step's request had them: after a first step, the first is the previous step's result.
    reference_images: tuple[ReferenceImage, ...] = ()
    result: ReferenceImage  # the image as delivered on Discord
    thought_signature: str | None = None
    # That step's request's ``member_words`` (GenerationRequest): what moderation judges of its prompt.
    member_words: str | None = None

    @property
    def judged_words(self) -> str:
        return self.prompt if self.member_words is None else self.member_words

    @property
    def sent_prompt(self) -> str:
        """The prompt as that step sent it (GenerationRequest.sent_prompt)."""
        return with_roles(
            self.prompt, [ref.role for ref in self.reference_images], [ref.weight for ref in self.reference_images]
        )


PanWay = Literal["left", "right", "up", "down"]


class Derivation(BaseModel):
    """Where a request that works on an earlier image came from: the job, and what was done to its image.

    The earlier image is always the request's first reference; a Vary keeps the member's own
    references after it, an Edit (reframed, zoomed out or panned too) and a re-render send that image alone.
    """

    model_config = ConfigDict(frozen=True)

    # "vary" is a strong variation (the Vary button's first and only kind until there were two). "reference" and
    # "reprompt" name a new request's ``came_from``: not worked on, the image a reference or the request reworded.
    action: Literal["vary", "vary_subtle", "edit", "reframe", "zoom_out", "pan", "upscale", "reference", "reprompt"]
    job_id: str
    # A link to the message that showed the earlier image, for the embed.
    message_url: str | None = None
    # Which way a pan extended the image (None for other actions, and for a pan recorded before it was kept).
    way: PanWay | None = None
    # The part of the image an edit was to change, alone (bot/regions.py); None: anywhere.
    region: Region | None = None


class GenerationRequest(BaseModel):
    """What the member asked for, provider-neutral. Validated against Capabilities before use.

    ``model`` is the bot's model name (``nano_banana_2``, ``nano_banana_pro``); each adapter maps it
    to its provider's own id. ``None`` means "not chosen": the adapter sends its documented default
    or omits the field.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    prompt: str
    reference_images: tuple[ReferenceImage, ...] = ()
    aspect_ratio: str | None = None  # "16:9", or "auto" where the model offers it
    resolution: str | None = None  # one of base.RESOLUTIONS: "512", "1K", "2K", "4K"
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    output_format: str | None = None  # one of base.OUTPUT_FORMATS: "png", "jpg"
    thinking_level: str | None = None  # one of base.THINKING_LEVELS: "minimal", "high"
    web_search: bool = False
    # 1 (strictest) .. 6 (loosest), as Segmind defines it; None = the provider's default.
    safety_tolerance: int | None = Field(default=None, ge=1, le=6)
    # The conversation this request continues, oldest first; then ``reference_images[0]`` is the last
    # turn's result. Providers that take a conversation (Gemini) send it; others send the references.
    history: tuple[Turn, ...] = ()
    # Set for Vary, Edit and re-render: never sent to a provider, shown in the embed.
    derived_from: Derivation | None = None
    # The bot's job a new request of the member's own came from: its image taken as the first reference by Use as
    # reference (action "reference"), or its request with other words by Change prompt ("reprompt"). Named in the
    # new image's "Made from" field, and nothing else: not a derivation, its references are all the member's
    # (``own_references``).
    came_from: Derivation | None = None
    # What the image shows, in words, when ``prompt`` says how to frame or vary it instead (a zoom out, a pan, a
    # new shape alone: bot/derive.py ``framed``; a Vary: ``varied``): a Vary or re-render of the result draws
    # from these words rather than zooming out, panning or varying a second time. Never sent to a provider.
    subject: str | None = None
    # The member's own words in ``prompt`` where the rest of it is the bot's instruction to the model (a Vary, a
    # zoom out, a pan, a new shape: bot/derive.py; /blend: cogs/blend.py): what moderation judges, so that a term
    # a moderator blocks refuses the member's words, never every Vary for a word of the bot's ("" where the
    # prompt is the bot's alone: a zoom out with no words). None: the prompt is all the member's. Never sent.
    member_words: str | None = None
    # The options above the member's /preferences filled in (by name), not typed: a default, never a refusal,
    # so a failover leaves out those the next provider does not offer (bot/preferences.py). Never sent.
    defaulted: tuple[str, ...] = ()
    # A prompt written with choices in braces (``a {red, green} bird``: bot/permutations.py) is one image per choice,
    # one batch: each candidate's ``prompt`` is its own choice written out, ``permutation`` the member's words as
    # typed (what the batch's message shows and Change prompt holds), ``picks`` the choice it took in each group
    # (what its line in the message says). None and () for any other request. Never sent.
    permutation: str | None = None
    picks: tuple[str, ...] = ()

    @property
    def own_references(self) -> tuple[ReferenceImage, ...]:
        """The references the member gave, without the earlier image a Vary, Edit, re-render or reply
        starts from."""
        starts_from_image = self.derived_from is not None or bool(self.history)
        return self.reference_images[1:] if starts_from_image else self.reference_images

    @property
    def sent_prompt(self) -> str:
        """The prompt a provider is sent: ``prompt``, then what the references given a role are for, by their
        places among this request's references (bot/reference_roles.py)."""
        return with_roles(
            self.prompt, [ref.role for ref in self.reference_images], [ref.weight for ref in self.reference_images]
        )

    @property
    def judged_words(self) -> str:
        """What moderation judges of the prompt: the member's part of it (``member_words``), else all of it."""
        return self.prompt if self.member_words is None else self.member_words

    @field_validator("prompt")
    @classmethod
    def _clean(cls, prompt: str) -> str:
        # Every way in (slash command, buttons, CLI, rows read back) gets the same cleaned text.
        return clean_prompt(prompt)

    @field_validator("member_words")
    @classmethod
    def _clean_words(cls, words: str | None) -> str | None:
        # Cleaned as the prompt that holds them is, so a term is judged in the form it is sent in.
        return None if words is None else clean_prompt(words)


class JobHandle(BaseModel):
    """What a provider returns from submit: enough to poll, fetch and cancel later (stored as JSON).

    A synchronous API (Segmind v1, Gemini) has its answer by the time submit returns: it puts the
    terminal update in ``ready`` and the runner applies it without polling. Stored with the job, so
    a restart after a paid-for sync call still delivers.
    """

    provider: str
    model: str
    provider_job_id: str
    extra: dict[str, Any] = Field(default_factory=dict)
    ready: JobUpdate | None = None

    @property
    def calls_back(self) -> bool:
        """Whether the provider was asked to call back when the task ends (bot/providers/kie.py sets it)."""
        return bool(self.extra.get("callback"))


class UpdateStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ImageRef(BaseModel):
    """One generated image: a URL to download, or inline bytes (base64-decoded) for sync APIs."""

    # Inline bytes travel through SQLite as JSON: base64, not the default utf-8 (which breaks binary).
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    url: str | None = None
    data: bytes | None = None
    # Where inline bytes went once received: a file of the runner's (bot/result_files.py), by name.
    file: str | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    # Gemini's signature of the image part, sent back with it when a conversation continues.
    thought_signature: str | None = None


# What a job keeps of a provider's words and accounting. A member is shown at most 1,024 characters of
# the model's text (an embed field), and usage feeds the records; a broken or hostile answer (megabytes
# of text, a usage list of a hundred thousand numbers) would otherwise sit in the job's row for good,
# and in memory while the job runs.
KEPT_TEXT_CHARS = 4000
KEPT_USAGE_BYTES = 16 * 1024


def kept_text(text: str | None) -> str | None:
    return text if text is None or len(text) <= KEPT_TEXT_CHARS else text[: KEPT_TEXT_CHARS - 1] + "…"


def kept_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """The usage entries, in order, that fit KEPT_USAGE_BYTES as JSON; one too large is left out."""
    kept: dict[str, Any] = {}
    total = 0
    for key, value in usage.items():
        try:
            size = len(json.dumps([key, value], default=str))
        except (TypeError, ValueError, RecursionError):
            continue
        if total + size <= KEPT_USAGE_BYTES:
            kept[key] = value
            total += size
    return kept


class _BoundedWords(BaseModel):
    """A model's ``text`` and ``usage`` kept within the bounds above: a job's result, and the update a
    synchronous API's handle keeps until it is applied."""

    @field_validator("text", check_fields=False)
    @classmethod
    def _bounded_text(cls, text: str | None) -> str | None:
        return kept_text(text)

    @field_validator("usage", check_fields=False)
    @classmethod
    def _bounded_usage(cls, usage: dict[str, Any]) -> dict[str, Any]:
        return kept_usage(usage)


class JobResult(_BoundedWords):
    """What a job brought back: its images (or, for a refusal, none), the model's text, the provider's usage."""

    images: list[ImageRef] = Field(default_factory=list)
    text: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)

    @field_validator("images", mode="before")
    @classmethod
    def _stored_before_typing(cls, images: Any) -> Any:
        # Rows written before results were typed name an image's inline bytes "data_b64" (standard
        # base64, which ImageRef reads as well as its own URL-safe form).
        if not isinstance(images, list):
            return images
        return [
            {("data" if key == "data_b64" else key): value for key, value in image.items()}
            if isinstance(image, dict)
            else image
            for image in images
        ]

    def without_inline_bytes(self) -> JobResult:
        """The same result with inline images dropped (their bytes, or the file they were kept in): kept
        once the images are on Discord."""
        dropped = {"data": None, "file": None}
        return self.model_copy(update={"images": [image.model_copy(update=dropped) for image in self.images]})


class ProviderAttempt(BaseModel):
    """A provider a job left before any accepted it (failover), and why, in the member's words."""

    provider: str
    category: str
    reason: str


class JobUpdate(_BoundedWords):
    """One poll's answer, normalised (docs/providers.md 8.2)."""

    status: UpdateStatus
    images: list[ImageRef] = Field(default_factory=list)
    text: str | None = None
    error_category: ErrorCategory | None = None
    error_message: str | None = None  # user-facing
    error_detail: str | None = None  # for logs only
    usage: dict[str, Any] = Field(default_factory=dict)
    # What some providers say about a job still going, for the poll schedule (bot/schedule.py).
    progress: float | None = Field(default=None, ge=0, le=1)
    queue_position: int | None = Field(default=None, ge=0)


JobHandle.model_rebuild()
