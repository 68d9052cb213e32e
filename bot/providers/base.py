"""The provider protocol, capabilities as data, and the one central validation of a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.errors import InvalidRequestError
from bot.models import GenerationRequest, JobHandle, JobUpdate

# The bot's own names for output sizes; each adapter maps them to its provider's field values.
RESOLUTIONS: tuple[str, ...] = ("512", "1K", "2K", "4K")
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
    # Whether the provider lets us omit the ratio ("match the input image / model default").
    queued: bool = True


@runtime_checkable
class Provider(Protocol):
    """One HTTP API that sells Nano Banana. Implementations live one per module."""

    name: str

    @property
    def models(self) -> dict[str, Capabilities]: ...

    async def submit(self, request: GenerationRequest) -> JobHandle:
        """Create the job. Raises ProviderError; never re-sends a create that may have been accepted."""

    async def poll(self, handle: JobHandle) -> JobUpdate:
        """Ask for the job's state. Safe to repeat. Raises ProviderError for transport failures."""

    async def cancel(self, handle: JobHandle) -> bool:
        """Ask the provider to stop the job; True if it accepted the cancellation."""

    async def aclose(self) -> None: ...


def validate(request: GenerationRequest, caps: Capabilities) -> None:
    """Refuse a request the model cannot take, with a message that says what it does take."""
    prompt = request.prompt.strip()
    if len(prompt) < caps.min_prompt_chars:
        raise InvalidRequestError("The prompt is empty. Describe the image you want.")
    if len(request.prompt) > caps.max_prompt_chars:
        raise InvalidRequestError(
            f"The prompt is {len(request.prompt):,} characters; {caps.display_name} takes at most "
            f"{caps.max_prompt_chars:,}."
        )
    refs = request.reference_images
    if len(refs) > caps.max_reference_images:
        raise InvalidRequestError(
            f"{caps.display_name} takes at most {caps.max_reference_images} reference image(s); "
            f"you attached {len(refs)}."
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
