"""A job's result images, from the provider's answer to the upload.

Inline results (Gemini, Segmind v1 answer with the image's bytes) are written to files at once and their
rows name the files (bot/result_files.py), so a restart still finds an image that was paid for. At delivery
each image, kept or at a provider's URL, becomes a spooled file, verified by its structure and re-encoded
only when over the upload limit (bot/imagework.py): never the whole image in a row or in memory.
"""

from __future__ import annotations

import logging

import httpx

from bot.config import ImagineSettings
from bot.errors import DeliveryError
from bot.images import PreparedImage
from bot.imagework import ImageWork, Spool
from bot.models import ImageRef
from bot.result_files import ResultFiles
from bot.store.jobs import Job

log = logging.getLogger(__name__)

# Discord's upload limit for a server without boosts, used for a job that recorded none.
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
# At most this many result images are fetched per job (Discord takes 10 attachments per message), and one
# per candidate of a batch, whose candidates share one message.
MAX_RESULT_IMAGES = 4
MAX_BATCH_RESULT_IMAGES = 1


def result_stem(job_id: str, index: int) -> str:
    """The name (without extension) a job's ``index``-th image (from 1) is uploaded under: a batch's
    message tells its candidates' images apart by it."""
    return f"bananacord-{job_id}-{index}"


def names_files(job: Job) -> bool:
    """Whether the job's row names result files (an inline result, kept)."""
    ready = job.handle.ready if job.handle is not None else None
    images = [*job.result.images, *(ready.images if ready is not None else ())]
    return any(image.file is not None for image in images)


class ResultImages:
    """Keeps inline results as files, and turns a finished job's images into files ready to upload."""

    def __init__(self, files: ResultFiles, work: ImageWork, http: httpx.AsyncClient, imagine: ImagineSettings):
        self.files = files
        self.work = work
        self.http = http
        self.imagine = imagine

    async def keep_inline(self, job: Job, images: list[ImageRef]) -> list[ImageRef]:
        """Inline images written to files, each then named instead of carried. Only as many as a delivery
        posts: a list of hundreds is a broken or hostile answer, and the rest would only fill the disk
        (their bytes are dropped; the list keeps its length for the log's warning)."""
        kept = []
        for index, image in enumerate(images, start=1):
            if index > MAX_RESULT_IMAGES:
                image = image.model_copy(update={"data": None})
            elif image.data is not None:
                try:
                    name = await self.files.keep(job.id, index, image.data)
                except OSError as exc:
                    # A full disk or a folder the bot may not write: the image is paid for, so it stays in
                    # the row as before rather than being lost.
                    log.warning("job %s: cannot keep its result as a file (%s); keeping it in its row", job.id, exc)
                else:
                    image = image.model_copy(update={"data": None, "file": name})
            kept.append(image)
        return kept

    async def discard(self, job: Job) -> None:
        """Remove the files of a job whose images are posted, or never will be."""
        await self.files.discard(job.id)

    async def prepare(self, job: Job) -> list[PreparedImage]:
        """The job's images as files to upload (the first few; one for a batch candidate). Raises
        DeliveryError when there is none, or a kept one is gone."""
        limit = job.upload_limit or DEFAULT_UPLOAD_LIMIT
        items = job.result.images
        if job.batch_id is not None:
            items = items[:MAX_BATCH_RESULT_IMAGES]
        if len(items) > MAX_RESULT_IMAGES:
            # Nano Banana makes one image per request; a list of hundreds is a broken or hostile answer.
            log.warning(
                "job %s: provider sent %d images; delivering the first %d", job.id, len(items), MAX_RESULT_IMAGES
            )
        prepared: list[PreparedImage] = []
        try:
            for index, item in enumerate(items[:MAX_RESULT_IMAGES], start=1):
                # Files, not bytes, from here to the upload: inline images are decoded into one too.
                if item.file is not None:
                    source = await self._kept(job, item.file)
                elif item.data is not None:  # a row written before inline results were kept as files
                    source = await self.work.inline(item.data)
                elif item.url:
                    source = await self.work.download(
                        self.http,
                        item.url,
                        max_bytes=self.imagine.max_download_bytes,
                        timeout=self.imagine.download_timeout_seconds,
                    )
                else:
                    continue
                # Verified by structure; decoded only if over the limit, then in the bounded pool.
                prepared.append(
                    await self.work.prepare(source, limit=limit, stem=result_stem(job.id, index), source_url=item.url)
                )
        except BaseException:
            for image in prepared:
                image.close()
            raise
        if not prepared:
            raise DeliveryError("The provider reported success but sent no image.", detail="no image refs")
        return prepared

    async def _kept(self, job: Job, name: str) -> Spool:
        try:
            return await self.work.kept(self.files.path(name))
        except (FileNotFoundError, ValueError) as exc:
            # Removed from under the bot (its results folder cleared while it ran): there is nothing to try again.
            log.warning("job %s: its kept result %s is gone (%s)", job.id, name[:40], type(exc).__name__)
            raise DeliveryError(
                "The image was lost before it could be posted. You were not charged; try again.",
                detail=f"result file {name[:40]} gone",
                retryable=False,
            ) from None
