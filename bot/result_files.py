"""Images a provider answered with inline (Gemini's base64, Segmind v1's raw bytes), kept as files beside
the database until they are delivered, so a job's row, and the runner's cache of unfinished jobs, name a
file instead of holding megabytes (issue 10: memory does not grow with the jobs in flight; the rows the
loop reads stay small). Before this, twenty 4K Gemini results at once took the bot to 1.9 GB.

A file is written whole (to a ``.part`` name, flushed to disk, then renamed) before the row that names
it is written, so a restart finds every file a row names. A file whose job has ended goes when the job
ends (``discard``); one that no unfinished job's row names (the bot stopped between the file and the row,
or between a job's end and the file's removal) goes at start-up (``sweep``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Collection
from pathlib import Path

log = logging.getLogger(__name__)

# Our own names only: "<job id>-<image number>". A row naming anything else is not followed anywhere.
_NAME = re.compile(r"(?P<job>[0-9a-f]{16})-(?P<index>[0-9]{1,3})")


class ResultFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def beside(cls, database: Path) -> ResultFiles:
        """``<database>.results/``, as ``<database>.heartbeat`` sits beside it (a Docker volume keeps both)."""
        return cls(database.with_name(database.name + ".results"))

    def path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a result file name: {name[:40]!r}")
        return self.directory / name

    async def keep(self, job_id: str, index: int, data: bytes) -> str:
        """Write one image; returns the name its row keeps."""
        name = f"{job_id}-{index}"
        path = self.path(name)
        # Tens of megabytes for a 4K image: off the event loop.
        await asyncio.to_thread(self._write, path, data)
        return name

    def copy_to(self, other: ResultFiles, jobs: Collection[str]) -> int:
        """Copy the files of ``jobs`` into ``other`` (a database copy's folder: `bananacord db backup` and
        `db restore`); returns how many were copied. A job's files go as it ends, so one that ended while
        the database was copied may have none left to copy."""
        keep = set(jobs)
        copied = 0
        for entry in self._entries():
            match = _NAME.fullmatch(entry.name)  # a ``.part`` is a write never finished: not a file
            # Only files the bot wrote: a link planted in a copy's folder is not followed to what it names.
            if match is None or match["job"] not in keep or not entry.is_file(follow_symlinks=False):
                continue
            try:
                data = Path(entry.path).read_bytes()
            except FileNotFoundError:  # the job ended meanwhile
                continue
            other._write(other.path(entry.name), data)
            copied += 1
        return copied

    def lacking(self, jobs: Collection[str]) -> set[str]:
        """Which of ``jobs`` have no file here."""
        held = {
            m["job"]
            for e in self._entries()
            if (m := _NAME.fullmatch(e.name)) is not None and e.is_file(follow_symlinks=False)
        }
        return set(jobs) - held

    def _entries(self) -> list[os.DirEntry[str]]:
        if not self.directory.is_dir():
            return []
        with os.scandir(self.directory) as entries:
            return sorted(entries, key=lambda e: e.name)

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        with part.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(part, path)

    async def discard(self, job_id: str) -> None:
        """Remove a job's files (its images are on Discord, or will never be)."""
        if self.directory.is_dir():
            await asyncio.to_thread(self._remove, lambda job: job == job_id)

    def sweep(self, unfinished: Collection[str]) -> int:
        """At start-up: remove every file but those of ``unfinished`` (the unfinished jobs whose rows name
        files), and every ``.part`` (a write the last process did not finish). Returns how many went."""
        if not self.directory.is_dir():
            return 0
        keep = set(unfinished)
        removed = self._remove(lambda job: job not in keep, partial=True)
        if removed:
            log.info("removed %d result file(s) no unfinished job's row names", removed)
        return removed

    def _remove(self, wanted: Callable[[str], bool], *, partial: bool = False) -> int:
        """Remove the files of the jobs ``wanted`` picks; with ``partial``, every unfinished write too."""
        removed = 0
        for entry in os.scandir(self.directory):
            unfinished = entry.name.endswith(".part")
            match = _NAME.fullmatch(entry.name.removesuffix(".part"))
            if match is not None and (wanted(match["job"]) or (partial and unfinished)):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:  # removed meanwhile (another step of the same end)
                    pass
        return removed
