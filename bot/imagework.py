"""Bounds on the memory and CPU that result images take, shared by every job of a runner (issue 10).

- Every image is a :class:`Spool`: a temporary file that keeps its first MiB in memory while the
  :class:`MemoryGate` has a slot free, and is on disk otherwise. Downloads stream into one; inline
  results (Gemini) are written into one; uploads read from it.
- Verification reads the file's structure (bot/images.py) on a thread; nothing is decoded.
- Decoding happens only to re-encode a result over the channel's upload limit: it waits for a gate
  slot, then runs in a pool of ``reencode_workers`` threads (Pillow releases the GIL while it decodes
  and encodes), so fifty 4K results arriving at once take the memory of two, not fifty.

- A provider answer carrying an image inline (Gemini's base64) is read by the transport under the same
  gate, and first under one of ``answers_in_memory`` slots (:class:`AnswerGate`): such an answer weighs
  far more than a spool.

So memory is bounded by ``images_in_memory`` slots (each a spool of up to 4 MiB, or one image being decoded,
or one of at most ``answers_in_memory`` answers being read) whatever the number of jobs in flight;
bench/reencode.py and bench/inline_memory.py measure it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import httpx

from bot.config import ImagineSettings
from bot.fetch import download_to
from bot.images import PreparedImage, accept, reencode

log = logging.getLogger(__name__)

# What a spool keeps in memory before it moves to disk: a 1K result (up to about 3 MB as a PNG of a
# detailed picture) fits, so the common case never writes to disk and reads back; 4K ones go to disk.
SPOOL_IN_MEMORY = 4 * 1024 * 1024
# The most Discord takes in one file, anywhere (a server at boost level 3): no image of the bot's is larger.
LARGEST_UPLOAD = 100 * 1024 * 1024


class MemoryGate:
    """At most ``slots`` whole images in memory at once.

    A spool takes a slot only if one is free and nobody is waiting (else it starts on disk); decoding
    waits for one, in order. Slots come back from any thread: a spool moves to disk when a write in a
    re-encode worker takes it past its threshold, or when aiohttp asks it for a file descriptor to
    learn its size before an upload (aiohttp/payload.py, IOBasePayload.size).
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = slots
        # A spool the collector finalises gives its slot back from __del__, which can run in the middle
        # of any allocation, including one made by this thread inside this lock. So nothing is allocated
        # while the lock is held (see take), and the lock is re-entrant in case something still is: a
        # plain Lock there deadlocked the event loop (seen under load with 8 slots all in use).
        self._lock = threading.RLock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def in_use(self) -> int:
        with self._lock:
            return self.slots - self._free

    def try_take(self) -> bool:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            return False

    async def take(self) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        entry = (loop, waiter)
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                queued = entry in self._waiters
                if queued:
                    self._waiters.remove(entry)
            if not queued and waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as we were cancelled: pass it on
            raise

    def give(self) -> None:
        with self._lock:
            if not self._waiters:
                self._free += 1
                return
            loop, waiter = self._waiters.popleft()
        try:
            loop.call_soon_threadsafe(self._hand_over, waiter)
        except RuntimeError:  # that loop has closed; nobody there waits any more
            self.give()

    def _hand_over(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():
            self.give()
        else:
            waiter.set_result(None)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        await self.take()
        try:
            yield
        finally:
            self.give()


class AnswerGate:
    """What a provider answer carrying an image inline takes while it is read (bot/transport.py): one of a
    few answer slots, then a slot of the memory gate it shares with spools and re-encodes.

    A memory slot stands for an image, but such an answer is the image as base64 in JSON, up to 67 MB for
    a 4K one, and its parse makes as much again: eight of them read at once (the memory gate's default)
    took ten 4K Gemini results to 906 MB, two at a time to 436 MB (bench/inline_memory.py). The answer
    slots are taken first and always before the memory slot, so no two answers wait on each other."""

    def __init__(self, memory: MemoryGate, answers: int) -> None:
        self.answers = MemoryGate(answers)
        self.memory = memory

    async def take(self) -> None:
        await self.answers.take()
        try:
            await self.memory.take()
        except BaseException:
            self.answers.give()
            raise

    def give(self) -> None:
        self.memory.give()
        self.answers.give()


class Spool(tempfile.SpooledTemporaryFile[bytes]):
    """A temporary file holding one image: in memory up to ``in_memory`` bytes while it holds a gate
    slot, on disk (the system temp folder, TMPDIR) from the start without one or once it grows past."""

    def __init__(
        self, gate: MemoryGate | None, in_memory: int = SPOOL_IN_MEMORY, *, file: IO[bytes] | None = None
    ) -> None:
        self._gate = gate if file is None and gate is not None and gate.try_take() else None
        self._in_memory = in_memory if file is None else 0
        super().__init__(max_size=self._in_memory, mode="w+b")
        if file is not None:
            # An image already on disk, read where it lies (ImageWork.kept): as if rolled over to it.
            # Closing the spool closes the file; the file itself stays.
            self._file, self._rolled = file, True
        elif self._gate is None or in_memory <= 0:  # max_size 0 would mean "never move to disk"
            self.rollover()

    @property
    def in_memory(self) -> bool:
        return self._gate is not None

    def upload_source(self) -> IO[bytes]:
        """The file underneath, for an upload: aiohttp sends a BytesIO from memory but reads any other file
        object a 64 KiB chunk at a time in a worker thread (its IOBasePayload), which for a spool still in
        memory cost a thread hop per chunk, 48 for a 3 MB image. On disk it is the real file, read the same
        way as before. SpooledTemporaryFile offers no public name for it."""
        return self._file

    def reserve(self, size: int) -> None:
        """Make room for ``size`` bytes at once while the spool is in memory and they fit.

        A BytesIO grows by an eighth at a time, and past glibc's mmap threshold each growth copies what
        is already there: about 30 copies of a growing buffer for a 3 MB download, 1.5 ms of CPU per
        result (bench/load.py). Writing the last byte first sizes the buffer once; the writes then fill
        it in place. If fewer bytes come, ``truncate`` (``ImageWork.download`` calls it) drops the rest.
        """
        memory = self._file
        if not isinstance(memory, io.BytesIO) or size > self._in_memory:
            return
        here = memory.tell()
        if size > memory.seek(0, io.SEEK_END):
            memory.seek(size - 1)
            memory.write(b"\0")
        memory.seek(here)

    def rollover(self) -> None:
        super().rollover()
        self._give_back()

    def close(self) -> None:
        super().close()
        self._give_back()

    def _give_back(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.give()

    def __del__(self) -> None:
        # A sink that does not close its images (bot/cli_sink.py writes them and lets them go) leaves this
        # to the collector: close quietly, as any file object does. discord.File swaps an instance
        # close() for a no-op while it holds the file, hence the class's own.
        if hasattr(self, "_gate"):
            Spool.close(self)


def _copy_into(file: IO[bytes], spool: Spool) -> None:
    spool.reserve(os.fstat(file.fileno()).st_size)
    shutil.copyfileobj(file, spool, CHUNK)


# Copying a kept file into a spool: 1 MiB reads, a 4K image in a few dozen.
CHUNK = 1024 * 1024


class ImageWork:
    """Spools, the memory gate and the re-encode pool: how a runner turns result links into uploads."""

    def __init__(
        self,
        *,
        images_in_memory: int,
        reencode_workers: int,
        answers_in_memory: int = 2,
        in_memory: int = SPOOL_IN_MEMORY,
    ) -> None:
        self.gate = MemoryGate(images_in_memory)
        # For the transport: the provider answers that carry an image, read a few at a time.
        self.answer_gate = AnswerGate(self.gate, answers_in_memory)
        self.in_memory = in_memory
        self._pool = ThreadPoolExecutor(max_workers=reencode_workers, thread_name_prefix="reencode")

    @classmethod
    def from_settings(cls, imagine: ImagineSettings) -> ImageWork:
        return cls(
            images_in_memory=imagine.images_in_memory,
            reencode_workers=imagine.reencode_workers,
            answers_in_memory=imagine.answers_in_memory,
        )

    def spool(self) -> Spool:
        return Spool(self.gate, self.in_memory)

    async def download(self, client: httpx.AsyncClient, url: str, *, max_bytes: int, timeout: float) -> Spool:
        """Stream ``url`` into a new spool (bot/fetch.py raises DeliveryError as ever)."""
        spool = self.spool()
        try:
            written = await download_to(spool, client, url, max_bytes=max_bytes, timeout=timeout, expect=spool.reserve)
            spool.truncate(written)
        except BaseException:
            spool.close()
            raise
        return spool

    async def inline(self, data: bytes) -> Spool:
        """An image a provider answered with inline (its bytes, kept in the job's result), as a spool."""
        spool = self.spool()
        try:
            # Past the spool's memory share this is a write to disk: off the event loop.
            await asyncio.to_thread(spool.write, data)
        except BaseException:
            spool.close()
            raise
        return spool

    async def kept(self, path: Path) -> Spool:
        """An inline image the runner kept as a file (bot/result_files.py), as a spool. FileNotFoundError
        if the file is gone.

        One that fits the spool's memory share is copied into memory (an upload from memory costs no
        thread hop per chunk: Spool.upload_source); a larger one would only be copied to another file on
        disk, so it is read where it lies (a 2K Gemini result: 12 MB not written a second time)."""
        file = await asyncio.to_thread(path.open, "rb")
        with contextlib.ExitStack() as closing:
            closing.callback(file.close)
            if os.fstat(file.fileno()).st_size > self.in_memory:
                closing.pop_all()  # the spool closes it
                return Spool(None, file=file)
            spool = self.spool()
            try:
                await asyncio.to_thread(_copy_into, file, spool)
            except BaseException:
                spool.close()
                raise
            return spool

    async def prepare(self, source: Spool, *, limit: int, stem: str, source_url: str | None) -> PreparedImage:
        """Verify ``source`` and, only if it is over ``limit``, re-encode it under the gate and in the pool.

        Takes ``source`` over: it ends up in the returned image, or closed.
        """
        try:
            # Walking a 4K PNG's chunks and CRCs takes a few ms: off the event loop.
            image = await asyncio.to_thread(accept, source, stem=stem, source_url=source_url)
        except BaseException:
            source.close()
            raise
        if image.size <= limit:
            return image
        try:
            if source.in_memory:
                # A result waiting for a slot while its own bytes hold one: once every slot is held by
                # such a result, none is ever given back (twenty 4K results at once hung the delivery lane,
                # tests/e2e/test_reencode_memory.py). It waits on disk instead, where it holds none.
                await asyncio.to_thread(source.rollover)
            async with self.gate.held():
                out = self.spool()
                try:
                    loop = asyncio.get_running_loop()
                    return await loop.run_in_executor(self._pool, reencode, image, limit, out)
                except BaseException:
                    out.close()
                    raise
        finally:
            image.close()

    async def copy_to_fit(
        self, client: httpx.AsyncClient, url: str, *, declared: int, limit: int, stem: str, timeout: float
    ) -> PreparedImage:
        """A copy of one of the bot's own images on Discord (``url``, ``declared`` bytes as Discord says) to upload
        again where at most ``limit`` bytes fit: a DM, or a server that lost its boosts since the image was shown.
        Read up to its declared size (Discord's largest upload at most), re-encoded only if over ``limit``
        (``prepare``: a JPEG, the pixels kept while they fit). DeliveryError if it cannot be read or is no image."""
        cap = min(max(declared, limit), LARGEST_UPLOAD)
        spool = await self.download(client, url, max_bytes=cap, timeout=timeout)
        return await self.prepare(spool, limit=limit, stem=stem, source_url=None)

    def close(self) -> None:
        """Let the pool's threads go once the re-encodes already started are done."""
        self._pool.shutdown(wait=False, cancel_futures=True)
