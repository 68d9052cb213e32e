"""JobSink: where the job runner (bot/jobs.py) shows a job's progress and outcome: Discord messages
(bot/delivery.py) or files for the CLI (bot/cli_sink.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.events import RunnerEvent
from bot.images import PreparedImage
from bot.store.jobs import Job


@dataclass(frozen=True, slots=True)
class Delivering:
    """A batch candidate whose images are being shown for the first time."""

    job: Job
    images: list[PreparedImage]


class JobSink(Protocol):
    """Where a job's progress and outcome are shown: Discord messages, or the CLI."""

    async def progress(self, job: Job) -> None:
        """The job is still going; show its state. Failures here are logged and ignored."""

    async def deliver(self, job: Job, images: list[PreparedImage]) -> None:
        """Show the finished images. Raise DeliveryError (retryable or not) if that failed."""

    async def finished(self, job: Job) -> None:
        """The job ended without images (failed, blocked, cancelled, expired); show why."""

    async def locate(self, job: Job) -> int | None:
        """The id of the message a held job was to be shown in, if its member ever saw one; else None."""

    async def show_batch(self, batch: Sequence[Job], delivering: Delivering | None = None) -> list[int]:
        """Show every candidate of a batch in their one message: the delivered ones' images (kept), the
        images of ``delivering`` (uploaded, the job counted as delivered), the others' state or why they
        ended. Returns the attachment ids the new images got. Raise DeliveryError as ``deliver`` does."""

    def notify(self, event: RunnerEvent) -> None:
        """Pass on what others react to (bot/events.py): a blocked job, a provider's health. Returns at once."""
