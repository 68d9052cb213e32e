"""The CLI sink: writes finished images to a folder and remembers what happened, for `bananacord generate`."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from bot.events import RunnerEvent
from bot.images import PreparedImage
from bot.job_sink import Delivering
from bot.store.jobs import Job


class FileSink:
    """Implements bot.job_sink.JobSink by writing files instead of editing Discord messages."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.files: dict[str, list[Path]] = {}
        self.states: list[tuple[str, str]] = []

    async def progress(self, job: Job) -> None:
        self.states.append((job.id, str(job.state)))

    async def deliver(self, job: Job, images: list[PreparedImage]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for image in images:
            path = self.out_dir / image.filename
            image.file.seek(0)
            with path.open("wb") as out:
                shutil.copyfileobj(image.file, out)  # a file to a file: never the whole image in memory
            image.close()
            written.append(path)
        self.files[job.id] = written

    async def finished(self, job: Job) -> None:
        self.states.append((job.id, str(job.state)))

    async def show_batch(self, batch: Sequence[Job], delivering: Delivering | None = None) -> list[int]:
        """Each candidate's images in files of their own (the CLI makes one job, but any sink may get a batch)."""
        if delivering is not None:
            await self.deliver(delivering.job, delivering.images)
        self.states.extend((job.id, str(job.state)) for job in batch)
        return []

    async def locate(self, job: Job) -> int | None:
        return None  # CLI jobs are never held: there is no message to find

    def notify(self, event: RunnerEvent) -> None:
        return None  # no moderators or admins to tell on the command line
