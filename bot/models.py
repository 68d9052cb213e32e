"""Data shapes shared by the cogs, the job engine and the providers."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import ErrorCategory


class JobState(StrEnum):
    """Lifecycle of a job (design.md section 4). Stored as TEXT."""

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
    # A succeeded job whose delivery keeps failing ends as failed (reason: delivery).
    JobState.SUCCEEDED: frozenset({JobState.DELIVERED, JobState.FAILED}),
    JobState.DELIVERED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.BLOCKED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.EXPIRED: frozenset(),
}


class ReferenceImage(BaseModel):
    """A reference image the member attached; providers that take URLs pass ``url`` on."""

    model_config = ConfigDict(frozen=True)

    url: str
    content_type: str
    size: int = Field(ge=0)
    filename: str = "image"


class GenerationRequest(BaseModel):
    """What the member asked for, provider-neutral. Validated against Capabilities before use."""

    model_config = ConfigDict(frozen=True)

    model: str
    prompt: str
    reference_images: tuple[ReferenceImage, ...] = ()
    aspect_ratio: str | None = None
    resolution: str | None = None


class JobHandle(BaseModel):
    """What a provider returns from submit: enough to poll, fetch and cancel later (stored as JSON)."""

    provider: str
    model: str
    provider_job_id: str
    extra: dict[str, Any] = Field(default_factory=dict)


class UpdateStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ImageRef(BaseModel):
    """One generated image: a URL to download, or inline bytes (base64-decoded) for sync APIs."""

    url: str | None = None
    data: bytes | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None


class JobUpdate(BaseModel):
    """One poll's answer, normalised (providers.md 8.2)."""

    status: UpdateStatus
    images: list[ImageRef] = Field(default_factory=list)
    text: str | None = None
    error_category: ErrorCategory | None = None
    error_message: str | None = None  # user-facing
    error_detail: str | None = None  # for logs only
    usage: dict[str, Any] = Field(default_factory=dict)
