"""Check a job's reference images by their bytes before anything is sent to a provider.

A Discord attachment's declared type and size are whatever the uploader's client said; an "image/png"
can be empty, an HTML page, an SVG, a GIF, an animation or far larger than declared. Providers charge
for a request whatever they make of such a file, so each reference is downloaded (through the guarded
client, with the same deadline and size cap as results) and judged by its bytes first. Each is
downloaded to a temporary file on disk and judged from there (bot/images.py reads its structure a
block at a time), so references of many jobs at once take no memory of their own. For a provider that takes
the images inline (Gemini) those files are kept until its create has gone (``CheckedReferences``), so the
adapter sends what was checked instead of downloading every reference a second time; the jobs of a batch
checking a link at once share one download (``ReferencePasses``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import IO, TYPE_CHECKING

import httpx

from bot.discord_refs import expires_at
from bot.errors import DeliveryError, InvalidRequestError, ReferenceFetchError, ReferenceUnavailableError
from bot.fetch import DownloadTooLargeError, RefusedDownloadError, download_to
from bot.images import check_reference
from bot.imagework import Spool
from bot.models import ReferenceImage, shown_file_name

if TYPE_CHECKING:
    from bot.catalogue import Catalogue

log = logging.getLogger(__name__)


def _refused_words(label: str, url: str, status: int) -> str:
    """A 4xx for a reference, worded for whose link it is. Discord's CDN answers 404 for a file whose message
    was deleted (a Vary's source deleted before the job fetched it) and for a signed link past its ``ex``
    (bot/discord_refs.py); fetch's own words ("the link may have expired") guessed only the second. Only
    the file name and status are said: the link's signature, or its host, is nobody's business."""
    if expires_at(url) is not None and status in (403, 404):
        return (
            f"{label} could not be fetched: Discord no longer serves it (HTTP {status}). The image may have been "
            "deleted, or its link expired."
        )
    return f"{label} could not be fetched: its server answered HTTP {status}."


def download_cap(ref: ReferenceImage, *, member_max_bytes: int, provider_max_bytes: int) -> int:
    """How much of ``ref`` is downloaded before it counts as too large.

    A member's upload was held to ``member_max_bytes`` by its declared size when the job was asked for; the
    bot's own results (worked on again by Vary, Edit, Re-render, replies) may be larger, up to what the
    job's provider takes (routing refused any provider whose limit the declared size passes). So the cap is
    the declared size where that is larger than the members' limit, never above the provider's: a file
    bigger than it said is still cut, and a 12 MiB result of the bot's own is not refused at 10 MiB.
    """
    return min(provider_max_bytes, max(member_max_bytes, ref.size))


def check_fits_provider(catalogue: Catalogue, model: str, refs: Sequence[ReferenceImage]) -> None:
    """Refuse references larger than every provider serving ``model`` takes, before the member types in a
    form about them (routing would refuse them only when the request is made). Sizes as Discord declares
    them; the bytes are held to the same limit when downloaded (``download_cap``)."""
    caps = [c for p in catalogue.route(model) if (c := catalogue.capabilities(p, model)) is not None]
    if not caps:
        return  # the model is not served: the request's own refusal names what is
    largest = max(c.max_reference_bytes for c in caps)
    for ref in refs:
        if ref.size > largest:
            raise InvalidRequestError(
                f"`{shown_file_name(ref.filename)}` is {ref.size / 1_048_576:.1f} MiB; "
                f"{catalogue.display_name(model)} on this bot takes reference images of at most "
                f"{largest / 1_048_576:.0f} MiB, so it cannot be worked on here. "
                "Make a smaller version of it (for example, run its prompt at a lower resolution).",
                detail=f"reference of {ref.size} bytes over {largest} for {model}",
            )


class CheckedReferences:
    """The checked references' files (on disk), by URL, kept for a create that sends them inline; closed (and
    so deleted) on leaving the ``with``. Empty where nothing was kept."""

    def __init__(self, files: dict[str, IO[bytes]] | None = None) -> None:
        self.files: dict[str, IO[bytes]] = files or {}

    def __enter__(self) -> CheckedReferences:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        self.files.clear()


PASS_SECONDS = 600.0
"""How long a link whose bytes passed the check counts as passing, without another download, for a job that
needs no file of it (``ReferencePasses``)."""


class _Check:
    """One link's check under way (``ReferencePasses``): the size that passed, once known (None: it failed or
    was stopped), and the jobs waiting for a copy of the file it made (each with its own cap)."""

    __slots__ = ("copies", "outcome")

    def __init__(self) -> None:
        self.outcome: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.copies: list[tuple[int, asyncio.Future[IO[bytes] | None]]] = []

    async def copy_for(self, max_bytes: int) -> IO[bytes] | None:
        """A copy of the checked file, of the waiting job's own; None if the check did not pass within
        ``max_bytes`` (the job then checks the link itself)."""
        wanted: asyncio.Future[IO[bytes] | None] = asyncio.get_running_loop().create_future()
        self.copies.append((max_bytes, wanted))
        try:
            return await wanted  # a stop of this job cancels ``wanted``, and the check gives it no copy
        except asyncio.CancelledError:
            if wanted.done() and not wanted.cancelled() and (copy := wanted.result()) is not None:
                copy.close()  # made just before the stop came
            raise

    async def serve(self, file: IO[bytes], size: int) -> None:
        """The check passed with ``file``: tell those waiting on its outcome, and copy the file for each job
        waiting for one (those that come while copies are made too)."""
        self.outcome.set_result(size)
        while self.copies:
            waiting, self.copies = [(cap, f) for cap, f in self.copies if not f.done()], []
            for cap, wanted in waiting:
                if size > cap:
                    wanted.set_result(None)  # held to a smaller cap: its own check refuses it in its words
            fits = [wanted for cap, wanted in waiting if size <= cap]
            if fits:
                for wanted, copy in zip(fits, await _copies(file, len(fits)), strict=True):
                    if wanted.done():
                        copy.close()  # its job stopped meanwhile
                    else:
                        wanted.set_result(copy)

    def end(self) -> None:
        """Settle whatever is still waiting: after a failure or a stop, each job checks the link itself."""
        if not self.outcome.done():
            self.outcome.set_result(None)
        for _cap, wanted in self.copies:
            if not wanted.done():
                wanted.set_result(None)
        self.copies.clear()


async def _copies(source: IO[bytes], count: int) -> list[IO[bytes]]:
    """``count`` copies of ``source`` in files on disk of their own, made in a thread (a reference is up to
    tens of MiB). A thread cannot be stopped: a stop waits for it, so ``source`` is not closed under it, and
    closes what it made."""
    work = asyncio.ensure_future(asyncio.to_thread(_copy_file, source, count))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        if not work.cancelled() and work.exception() is None:
            for copy in work.result():
                copy.close()
        raise


def _copy_file(source: IO[bytes], count: int) -> list[IO[bytes]]:
    made: list[IO[bytes]] = []
    try:
        for _ in range(count):
            copy = Spool(None)  # no memory gate: straight to disk, as the checked file itself
            made.append(copy)
            source.seek(0)
            shutil.copyfileobj(source, copy)
    except BaseException:
        for done in made:
            done.close()
        raise
    return made


class ReferencePasses:
    """The links whose bytes passed the check lately, with their size, and the checks under way, so the jobs of
    a batch download and check each reference once.

    The jobs of an ``/imagine count:4`` name the same references, and each downloaded and checked every one
    of them before its create: four times the CDN traffic and four times the wait, for the same bytes. A
    Discord CDN link names fixed bytes (a new upload is a new link), and a pass holds for any cap at least
    the size that passed. Jobs checking a link another job is checking wait for that check rather than start
    their own: a job that sends the images inline (Gemini: ``kept``) then gets a copy of the checked file, of
    its own to send and close; one that needs no file (``check``) only its pass, and within ``seconds`` a
    pass needs no download at all. A check that failed (or was stopped) tells the others nothing, and each
    checks for itself, so every job still meets its own refusal in its own words. In memory only: a restart
    checks again."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, seconds: float = PASS_SECONDS) -> None:
        self._clock = clock
        self._seconds = seconds
        self._passed: dict[str, tuple[int, float]] = {}  # url -> (size that passed, when)
        self._checking: dict[str, _Check] = {}

    def _fresh(self, url: str, max_bytes: int) -> bool:
        passed = self._passed.get(url)
        if passed is None:
            return False
        size, at = passed
        if self._clock() - at > self._seconds:
            del self._passed[url]
            return False
        return size <= max_bytes

    async def check(self, url: str, max_bytes: int, check: Callable[[], Awaitable[IO[bytes]]]) -> None:
        """Pass ``url`` if it passed lately within ``max_bytes`` (or passes the check another job is running
        now); else run ``check`` (a download and check to a file, closed here) and keep its pass."""
        if self._fresh(url, max_bytes):
            return
        under_way = self._checking.get(url)
        if under_way is not None:
            # Shielded: a stop of this job must not cancel the check another job is waiting on.
            size = await asyncio.shield(under_way.outcome)
            if size is not None and size <= max_bytes:
                return
            self._record(url, await check()).close()
            return
        (await self._lead(url, check)).close()

    async def kept(self, url: str, max_bytes: int, check: Callable[[], Awaitable[IO[bytes]]]) -> IO[bytes]:
        """The checked file of ``url`` (the caller's to close): a copy of the one a check under way makes, if
        that passes within ``max_bytes``; else this job's own ``check``."""
        under_way = self._checking.get(url)
        if under_way is not None:
            copy = await under_way.copy_for(max_bytes)
            if copy is not None:
                return copy
            return self._record(url, await check())
        return await self._lead(url, check)

    async def _lead(self, url: str, check: Callable[[], Awaitable[IO[bytes]]]) -> IO[bytes]:
        """Run ``check`` as the link's check under way, which the jobs that come meanwhile wait on."""
        under_way = self._checking[url] = _Check()
        file: IO[bytes] | None = None
        try:
            file = self._record(url, await check())
            await under_way.serve(file, file.seek(0, io.SEEK_END))
            return file
        except BaseException:
            if file is not None:
                file.close()
            raise
        finally:
            # Always settled, a failure and a stop too: the jobs still waiting on it then check for themselves.
            del self._checking[url]
            under_way.end()

    def _record(self, url: str, file: IO[bytes]) -> IO[bytes]:
        """Keep the pass of ``url``, whose checked file this is."""
        self._forget_stale()
        self._passed[url] = (file.seek(0, io.SEEK_END), self._clock())
        return file

    def _forget_stale(self) -> None:
        now = self._clock()
        for url in [u for u, (_size, at) in self._passed.items() if now - at > self._seconds]:
            del self._passed[url]


async def check_references(
    client: httpx.AsyncClient,
    refs: Sequence[ReferenceImage],
    *,
    max_bytes: int | Callable[[ReferenceImage], int],
    timeout: float,
    keep: bool = False,
    passes: ReferencePasses | None = None,
) -> CheckedReferences:
    """Download every reference and check it; raise for the first bad one, in the member's order.

    ``max_bytes``: one cap for all, or each reference's own (``download_cap``).
    ``keep``: return the checked files (the caller closes them); else nothing is kept.
    ``passes``: a link another job is checking is not downloaded again (its file copied if ``keep``), nor,
    without ``keep``, one that passed lately (``ReferencePasses``).
    InvalidRequestError: the member's file is not usable (nothing to retry).
    ReferenceFetchError: its link did not give the file (nothing to retry).
    ReferenceUnavailableError: the download failed in a way that may work on a later try.
    """
    if not refs:
        return CheckedReferences()
    cap = max_bytes if callable(max_bytes) else (lambda _ref: max_bytes)
    if passes is not None and not keep:
        await _pass_all(client, refs, cap, timeout, passes)
        return CheckedReferences()

    def checking(ref: ReferenceImage) -> Awaitable[IO[bytes]]:
        def own() -> Awaitable[IO[bytes]]:
            return _check_one(client, ref, max_bytes=cap(ref), timeout=timeout)

        return own() if passes is None else passes.kept(ref.url, cap(ref), own)

    # The same link twice in one request is checked once, and one file serves both.
    first: dict[str, ReferenceImage] = {}
    for ref in refs:
        first.setdefault(ref.url, ref)
    unique = list(first.values())
    checks = [asyncio.ensure_future(checking(ref)) for ref in unique]
    try:
        results = await asyncio.gather(*checks, return_exceptions=True)
    except BaseException:
        # Cancelled (a stop) once some had their file: gather returns nothing, so those are closed here (the
        # others were cancelled, and closed their own).
        for check in checks:
            if check.done() and not check.cancelled() and check.exception() is None:
                check.result().close()
        raise
    # Every file made is closed unless all passed and they are wanted: one bad reference ends the job.
    checked = CheckedReferences()
    failures: list[BaseException] = []
    for ref, result in zip(unique, results, strict=True):
        if isinstance(result, BaseException):
            failures.append(result)
        else:
            checked.files[ref.url] = result
    if failures or not keep:
        checked.close()
    if failures:
        raise failures[0]
    return checked


async def _pass_all(
    client: httpx.AsyncClient,
    refs: Sequence[ReferenceImage],
    cap: Callable[[ReferenceImage], int],
    timeout: float,
    passes: ReferencePasses,
) -> None:
    """``check_references`` where no file is kept: each link through ``passes``; the first failure in the
    member's order is raised, once every check has ended (none is left running behind the job's back)."""

    def checking(ref: ReferenceImage) -> Callable[[], Awaitable[IO[bytes]]]:
        return lambda: _check_one(client, ref, max_bytes=cap(ref), timeout=timeout)

    # The same link twice in one request: checked once (the second waits on the first).
    results = await asyncio.gather(
        *(passes.check(ref.url, cap(ref), checking(ref)) for ref in refs), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _check_one(client: httpx.AsyncClient, ref: ReferenceImage, *, max_bytes: int, timeout: float) -> IO[bytes]:
    """The reference downloaded to a file on disk and checked; the caller closes it."""
    file = Spool(None)  # no memory gate here: straight to disk
    try:
        await _download_and_check(client, ref, file, max_bytes=max_bytes, timeout=timeout)
    except BaseException:
        file.close()
        raise
    return file


async def _download_and_check(
    client: httpx.AsyncClient, ref: ReferenceImage, file: Spool, *, max_bytes: int, timeout: float
) -> None:
    label = f"The reference image `{ref.filename}`"
    try:
        await download_to(file, client, ref.url, max_bytes=max_bytes, timeout=timeout, label=label)
    except DownloadTooLargeError as exc:
        raise InvalidRequestError(exc.user_message, detail=exc.detail) from None  # the file, not its link
    except DeliveryError as exc:
        if exc.retryable:
            raise ReferenceUnavailableError(
                f"{label} could not be downloaded just now. Try again in a moment.",
                detail=exc.detail,
                retryable=True,
            ) from None
        if isinstance(exc, RefusedDownloadError):
            raise ReferenceFetchError(_refused_words(label, ref.url, exc.status), detail=exc.detail) from None
        raise ReferenceFetchError(exc.user_message, detail=exc.detail) from None
    # A PNG's CRCs take a few ms to check: off the event loop.
    await asyncio.to_thread(check_reference, file, ref.filename)
