"""The provider protocol, capabilities as data, the settings every provider has, and the one central
validation of a request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Annotated, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.errors import InvalidRequestError
from bot.models import GenerationRequest, JobHandle, JobUpdate

# The bot's own names for output sizes; each adapter maps them to its provider's field values.
RESOLUTIONS: tuple[str, ...] = ("512", "1K", "2K", "4K")
OUTPUT_FORMATS: tuple[str, ...] = ("png", "jpg")
THINKING_LEVELS: tuple[str, ...] = ("minimal", "high")
IMAGE_MIME_TYPES: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one model on one provider accepts. Declared as data by each adapter."""

    model: str
    display_name: str
    max_prompt_chars: int
    max_reference_images: int
    aspect_ratios: tuple[str, ...]
    resolutions: tuple[str, ...]
    default_resolution: str = "1K"
    min_prompt_chars: int = 1
    reference_mime_types: tuple[str, ...] = IMAGE_MIME_TYPES
    max_reference_bytes: int = 10 * 1024 * 1024
    # The provider's own id for this model (SeaArt "nano_banana_2", Kie "nano-banana-2", Gemini
    # "gemini-3.1-flash-image"); the bot's model name is the key it is filed under.
    provider_model: str = ""
    seed: bool = False
    output_formats: tuple[str, ...] = ()  # empty: the provider picks the format
    thinking_levels: tuple[str, ...] = ()  # empty: no thinking knob
    web_search: bool = False
    safety_knob: bool = False  # the provider takes a safety level (Segmind 1-6, Gemini thresholds)
    # False for APIs that answer the create call with the image itself (Segmind v1, Gemini).
    queued: bool = True
    # Estimated price in micro-dollars per image, by resolution (the bot's names); editable in config.
    prices_micro_usd: tuple[tuple[str, int], ...] = ()
    # Estimated micro-dollars added to a request that searches the web (Gemini bills its Google Search
    # grounding per prompt on top of the image).
    web_search_micro_usd: int = 0
    # Estimated micro-dollars for each image sent with a request (Gemini bills input images as tokens), and
    # how many a request sends, given the model's image limit (None: its reference images).
    input_image_micro_usd: int = 0
    images_sent: Callable[[GenerationRequest, int], int] | None = None

    def price(self, resolution: str | None, *, web_search: bool = False, input_images: int = 0) -> int | None:
        """Estimated micro-dollars for one image at ``resolution`` (the default size if None), with the web
        search surcharge when the request searches and the price of the images sent with it."""
        base = dict(self.prices_micro_usd).get(resolution or self.default_resolution)
        if base is None:
            return None
        return base + (self.web_search_micro_usd if web_search else 0) + input_images * self.input_image_micro_usd

    def price_of(self, request: GenerationRequest) -> int | None:
        """The estimate for ``request``: its size, its web search, and the images it sends (the earlier turns'
        of a conversation included where the provider sends them: ``images_sent``), at most the model's limit."""
        limit = self.max_reference_images
        sent = self.images_sent(request, limit) if self.images_sent else len(request.reference_images)
        return self.price(
            request.resolution,
            web_search=request.web_search,
            input_images=min(sent, limit),
        )


# Seconds to wait for one HTTP answer; a create that times out is never re-sent.
Seconds = Annotated[float, Field(gt=0)]


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be connected to (None: it can): its scheme is checked by the caller. A bracket
    left open or a port past 65535 passed a look at the scheme alone and crashed `run` later, while
    `check` called the configuration OK. The URL itself is not repeated: it may carry a key."""
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)  # what the providers' client parses it with
    except (ValueError, httpx.InvalidURL) as exc:
        return f"is not a valid URL ({exc})"
    if not parts.hostname:
        return "has no host name"
    if port == 0:
        return "has port 0, which nothing listens on"
    return None


class ProviderSettings(BaseModel):
    """The [providers.NAME] keys every provider has; the adapter class declares their defaults
    (bot/providers/_adapter.py). Keys come from the environment (see bot/config.py SECRET_ENV_VARS)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    base_url: str = ""
    request_timeout: Seconds = 30.0
    # Ceiling on requests per second to this provider, shared by every job (creates go first, polls
    # wait their turn); 0 means no ceiling. Providers publish few numbers; 20/s stays clear of the
    # limits people report while polling a few hundred jobs at once.
    requests_per_second: float = Field(default=20.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL")
        if (problem := url_problem(value)) is not None:
            raise ValueError(problem)
        if (problem := base_url_problem(value)) is not None:
            raise ValueError(problem)
        return value.rstrip("/")


def base_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a provider's base URL though it is a valid URL (None: it can). Every API path
    is appended to it, so a ``?query`` or ``#fragment`` would end up in the middle of each request's URL.
    Checked when the settings load: before, only the adapter refused it, after `check` called the settings
    OK and `run` had logged in to Discord, saying "is not an http(s) URL"."""
    parts = urlsplit(url)
    if parts.query or parts.fragment or url.rstrip("/").endswith(("?", "#")):
        return "has a ?query or #fragment: it must be the address alone, since each API path is appended to it"
    return None


@dataclass(frozen=True, slots=True)
class ProviderCheck:
    """What `bananacord check --providers` learns about one provider without generating anything."""

    reachable: bool
    key_accepted: bool | None  # None: the API has no call that proves a key without generating
    detail: str
    # The settings naming a model id the provider says it does not know (Gemini retires ids): `run` refuses to
    # start with one, since every job sent to it would fail.
    unknown_models: tuple[str, ...] = ()


# Reference images the bot has downloaded and checked already (bot/references.py), by URL: files on disk. An
# adapter that sends references inline reads these rather than download the same links again.
Prefetched = Mapping[str, IO[bytes]]


@runtime_checkable
class Provider(Protocol):
    """One HTTP API that sells Nano Banana. Implementations live one per module."""

    name: str

    @property
    def models(self) -> dict[str, Capabilities]: ...

    @property
    def provider_fetches_references(self) -> bool:
        """False where the adapter sends the references' bytes itself (Gemini, inline): the bot then keeps the
        files it checked for the create (``prefetched``); True where the provider downloads them from their
        links."""

    async def submit(
        self, request: GenerationRequest, *, job_id: str | None = None, prefetched: Prefetched | None = None
    ) -> JobHandle:
        """Create the job. Raises ProviderError; never re-sends a create that may have been accepted.
        ``job_id``: the bot's job, for a provider that can carry it (see ``FindsLostTasks``).
        ``prefetched``: references already downloaded and checked, for an adapter that sends them inline
        (read from the start, not closed: they are the caller's)."""

    async def poll(self, handle: JobHandle) -> JobUpdate:
        """Ask for the job's state. Safe to repeat. Raises ProviderError for transport failures."""

    async def cancel(self, handle: JobHandle) -> bool:
        """Ask the provider to stop the job; True if it accepted the cancellation."""

    async def check(self) -> ProviderCheck:
        """Reachability and the cheapest call that proves the key, without generating an image."""

    async def aclose(self) -> None: ...


@runtime_checkable
class FindsLostTasks(Protocol):
    """A provider whose tasks can be traced back to the job that created them, so a create whose answer
    was lost (SubmitUncertainError) need not be given up on: kie.ai with callbacks carries the job's id in
    ``callBackUrl``, and its status call returns the create body (``param``) that names it. The job waits for
    the task's callback, and the runner adopts the task it names (bot/lost_tasks.py)."""

    name: str

    @property
    def finds_lost_tasks(self) -> bool:
        """Whether this provider, as configured, can (kie.ai: only with callbacks enabled)."""

    async def task_owner(self, task_id: str) -> str | None:
        """The id of the bot's job that created ``task_id``, asked of the provider; None if it names none
        of ours. Raises ProviderError when the provider cannot be asked."""

    def adopted_handle(self, task_id: str, request: GenerationRequest) -> JobHandle:
        """The handle ``submit`` would have returned had its answer, naming ``task_id``, arrived."""


def _unsupported(caps: Capabilities, what: str, offered: tuple[str, ...]) -> InvalidRequestError:
    if offered:
        return InvalidRequestError(
            f"{caps.display_name} on this provider does not offer {what}. Choose one of: {', '.join(offered)}."
        )
    return InvalidRequestError(f"{caps.display_name} on this provider does not support {what}; leave it unset.")


def validate(request: GenerationRequest, caps: Capabilities) -> None:
    """Refuse a request the model cannot take, with a message that says what it does take."""
    prompt = request.prompt.strip()
    if len(prompt) < caps.min_prompt_chars:
        raise InvalidRequestError("The prompt is empty. Describe the image you want.")
    sent = request.sent_prompt  # with what a style or character reference is for (bot/reference_roles.py)
    if len(sent) > caps.max_prompt_chars:
        words = request.member_words if request.member_words is not None else request.prompt
        if len(words) < len(sent):
            # The bot's instruction around them (a zoom out's, /blend's, a style reference's) counts too: "the
            # prompt is 2,700 characters" told a member who typed 2,400 nothing they could act on.
            room = max(caps.max_prompt_chars - (len(sent) - len(words)), 0)
            raise InvalidRequestError(
                f"Your words are {len(words):,} characters; with the bot's instruction for this, the prompt is "
                f"{len(sent):,}, and {caps.display_name} takes at most {caps.max_prompt_chars:,}. "
                f"Keep your words to {room:,}."
            )
        raise InvalidRequestError(
            f"The prompt is {len(sent):,} characters; {caps.display_name} takes at most {caps.max_prompt_chars:,}."
        )
    refs = request.reference_images
    if len(refs) > caps.max_reference_images:
        raise InvalidRequestError(
            f"{caps.display_name} takes at most {caps.max_reference_images} reference image(s); you gave {len(refs)}."
        )
    for ref in refs:
        ctype = (ref.content_type or "").split(";")[0].strip().lower()
        if ctype not in caps.reference_mime_types:
            kinds = ", ".join(t.removeprefix("image/").upper() for t in caps.reference_mime_types)
            raise InvalidRequestError(
                f"`{ref.filename}` is not a supported image ({ctype or 'unknown type'}). Use {kinds}."
            )
        if ref.size > caps.max_reference_bytes:
            raise InvalidRequestError(
                f"`{ref.filename}` is {ref.size / 1_048_576:.1f} MiB; reference images may be at most "
                f"{caps.max_reference_bytes / 1_048_576:.0f} MiB."
            )
    if request.aspect_ratio is not None and request.aspect_ratio not in caps.aspect_ratios:
        raise InvalidRequestError(
            f"{caps.display_name} does not offer aspect ratio {request.aspect_ratio}. "
            f"Choose one of: {', '.join(caps.aspect_ratios)}."
        )
    if request.resolution is not None and request.resolution not in caps.resolutions:
        raise InvalidRequestError(
            f"{caps.display_name} does not offer resolution {request.resolution}. "
            f"Choose one of: {', '.join(caps.resolutions)}."
        )
    if request.seed is not None and not caps.seed:
        raise _unsupported(caps, "a seed", ())
    if request.output_format is not None and request.output_format not in caps.output_formats:
        raise _unsupported(caps, f"output format {request.output_format}", caps.output_formats)
    if request.thinking_level is not None and request.thinking_level not in caps.thinking_levels:
        raise _unsupported(caps, f"thinking level {request.thinking_level}", caps.thinking_levels)
    if request.web_search and not caps.web_search:
        raise _unsupported(caps, "web search", ())
