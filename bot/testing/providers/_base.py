"""What every fake provider server shares: lifecycle on 127.0.0.1, request recording, key checks,
scripted outcomes, hanging requests that end at stop(), real PNG files to download, and the clock a
job runs on.

A job's progress follows one of two clocks. By default it advances per status poll (``queued_polls``
answers queued, ``running_polls`` running, then done): tests step through states without waiting.
With ``provider_time`` (seconds a job takes, drawn per job) and optionally ``queue_time``, a job is
queued until ``created_at + queue``, running until ``ready_at``, then done, however often it is polled:
what a poll schedule is measured against (bench/poll_schedule.py). Either way each job records
``created_at`` and ``ready_at`` (wall clock), and every request its arrival time ``at``.

Two options serve the load benchmark and the fault soak (bench/load.py, bench/soak.py):
``images="noise"`` serves incompressible PNGs (about 3 MB at 1K, the size real results have; generated
once per pixel size and shared), and ``chaos=Chaos(...)`` answers a seeded share of API calls with a
fault: 429 with Retry-After, a 5xx, a hang, or a malformed body; or, when named, a hostile answer (one
that never ends, 256 MB of JSON, JSON nested past the parser).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import io
import itertools
import json
import random
import re
import secrets
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Protocol, TypedDict, TypeVar, get_args

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict
from PIL import Image, ImageChops

from bot.testing.serving import StartsAndStops

LONG_SIDE = {"0.5K": 512, "512px": 512, "512": 512, "1K": 1024, "2K": 2048, "4K": 4096}
NOT_AN_IMAGE = b"<html><body>This is not an image. Sorry.</body></html>\n"

State = Literal["queued", "running", "done"]
# Draws one duration in seconds per job, e.g. ``lambda: random.uniform(15, 45)``.
Seconds = Callable[[], float]
# What the files served at /files/ look like: a gradient with grain (compresses, ~0.2 MB at 1K), or
# noise (incompressible, ~3 MB at 1K: what a real 1K result weighs).
ImageStyle = Literal["gradient", "noise"]
# The faults Chaos can inject; see Chaos. FAULTS, the default, are what a flaky provider does;
# HOSTILE_ANSWERS are answers shaped to hurt the client, asked for by name.
Fault = Literal["429", "5xx", "hang", "malformed", "drip", "huge", "deep"]
FAULTS: tuple[Fault, ...] = ("429", "5xx", "hang", "malformed")
HOSTILE_ANSWERS: tuple[Fault, ...] = ("drip", "huge", "deep")

# The outcome names every fake's ``script()`` accepts, each spelled as that provider shows the case
# (tests/contract runs every adapter through each one).
COMMON_OUTCOMES: frozenset[str] = frozenset(
    {
        "success",
        "bad_input",
        "content_blocked",
        "rate_limited",
        "server_error",
        "auth",
        "out_of_credit",
        "transient_failure",
        "never_finish",
        "undecodable_image",
        "create_hang",
        "malformed",
    }
)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the fake received (file downloads included). ``headers`` is case-insensitive;
    ``at`` is its arrival, wall clock (time.time())."""

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any | None
    query: dict[str, str]
    body: bytes = b""
    at: float = 0.0


@dataclass(kw_only=True)
class JobTimes:
    """When a fake job was accepted and when it is (or was) done, wall clock.

    In time mode ``running_at`` and ``ready_at`` are fixed at creation (a hold can push ``ready_at``
    later). In poll mode ``running_at`` stays None and ``ready_at`` is the moment a poll first reported
    the job done.
    """

    created_at: float = 0.0
    running_at: float | None = None
    ready_at: float | None = None

    @property
    def timed(self) -> bool:
        return self.running_at is not None

    def time_state(self, now: float, *, stalled: bool) -> State:
        """Time mode: the state at ``now``. A ``stalled`` job (held, never finishing) stays running."""
        assert self.running_at is not None and self.ready_at is not None, "not a timed job"
        if now < self.running_at:
            return "queued"
        if stalled or now < self.ready_at:
            return "running"
        return "done"

    def reported(self, state: State, now: float) -> None:
        """Note a state given to a client; the first "done" fixes ``ready_at`` in poll mode."""
        if state == "done" and self.ready_at is None:
            self.ready_at = now

    def released(self, now: float) -> None:
        """A held job was let go: in time mode it cannot have finished before now."""
        if self.timed and self.ready_at is not None:
            self.ready_at = max(self.ready_at, now)


@dataclass(frozen=True, slots=True)
class Chaos:
    """Faults on a seeded share (``rate``) of API calls (file downloads are spared), one kind per call,
    drawn evenly from ``faults``:

    ``429``        answered at once with 429 and ``Retry-After: retry_after``; nothing happens
    ``5xx``        answered at once with 500, 502 or 503; nothing happens
    ``hang``       the call is carried out (a create makes its task) but the answer is held back for
                   ``hang_seconds`` (or until stop()): a reply lost after the work was done
    ``malformed``  the call is carried out, then answered 200 with a body that claims JSON and is not

    The last two are the faults a client cannot retry blindly: for a create, the task may exist. Not
    drawn unless named in ``faults``, the hostile answers (the call is carried out each time):

    ``drip``       the true answer, then spaces, one byte every ``drip_seconds`` for ever: never quiet
                   long enough for a read timeout, so only a bound on the whole answer ends it
    ``huge``       200 with ``huge_bytes`` of valid JSON, sent chunked (no length to refuse it by)
    ``deep``       200 with a small JSON body nested deeper than any JSON parser recurses

    ``gets_only`` spares every call but GETs (status and result calls), so creates go through.
    """

    rate: float = 0.2
    seed: int = 0
    faults: tuple[Fault, ...] = FAULTS
    hang_seconds: float = 5.0
    retry_after: str = "1"
    drip_seconds: float = 0.5
    huge_bytes: int = 256 * 1024 * 1024
    gets_only: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"chaos rate {self.rate} is not between 0 and 1")
        known = get_args(Fault)
        unknown = [f for f in self.faults if f not in known]
        if unknown or not self.faults:
            raise ValueError(f"unknown or no chaos faults {unknown}; choose from {known}")


@dataclass(frozen=True, slots=True)
class ChaosEvent:
    """One fault a fake injected: when (wall clock), on which call, which fault (``5xx`` as its status)."""

    at: float
    method: str
    path: str
    fault: str


def pixel_size(tier: object, aspect_ratio: object, follows: tuple[int, int] | None = None) -> tuple[int, int]:
    """Pixel size for a size tier ("1K", "0.5K", "512px", ...) and a ratio ("16:9"). Without a ratio, or
    with "auto", the shape of ``follows`` (the first reference image's size, where the provider keeps it),
    else 1:1."""
    long_side = LONG_SIDE.get(str(tier), 1024)
    if aspect_ratio in (None, "", "auto") and follows is not None and min(follows) > 0:
        a, b = follows
    else:
        try:
            a, b = (int(x) for x in str(aspect_ratio or "1:1").split(":"))
        except ValueError:
            a, b = 1, 1
    if a >= b:
        return long_side, max(1, round(long_side * b / a))
    return max(1, round(long_side * a / b)), long_side


def make_png(width: int, height: int) -> bytes:
    """A real PNG: a smooth gradient with a faint 2x2-pixel grain.

    A bare gradient compresses to almost nothing (60 kB at 4K); the grain makes sizes realistic
    (about 50 kB at 512, 0.2 MB at 1K, 0.7 MB at 2K, 2.8 MB at 4K) so upload-limit code gets exercised,
    while compress_level=1 keeps a 4K encode around half a second.
    """
    ramp = Image.linear_gradient("L")
    red = ramp.resize((width, height), Image.Resampling.BILINEAR)
    blue = ramp.rotate(90).resize((width, height), Image.Resampling.BILINEAR)
    grain = Image.effect_noise((max(1, width // 2), max(1, height // 2)), 1).resize(
        (width, height), Image.Resampling.NEAREST
    )
    green = ImageChops.add(red, grain, scale=2.0)
    buffer = io.BytesIO()
    Image.merge("RGB", (red, green, blue)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@functools.lru_cache(maxsize=16)
def result_png(width: int, height: int) -> bytes:
    """``make_png`` of a size, made once per process: a fake serves every result of a size with the same bytes.

    A 4K encode takes half a second of a core; a fresh one per job made the fakes, not the bot, most of the
    CPU of a run with many large results (50 4K results: 25 s of it). At most 16 sizes are kept (4K: 2.8 MB).
    """
    return make_png(width, height)


@functools.cache
def noise_png(width: int, height: int) -> bytes:
    """A real PNG of seeded RGB noise: incompressible, so about 3 bytes a pixel (3.1 MB at 1024 x 1024).

    Cached per size: generated once per process, then the same bytes for every job of that size.
    """
    pixels = random.Random(f"noise-{width}x{height}").randbytes(width * height * 3)
    buffer = io.BytesIO()
    # Noise does not compress; level 1 spends the least time finding that out.
    Image.frombytes("RGB", (width, height), pixels).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@functools.cache
def bomb_png(side: int = 12_600) -> bytes:
    """A decompression bomb: a ~0.6 MB PNG whose header declares ``side`` x ``side`` RGBA pixels
    (635 MB once decoded at the default side). Built chunk by chunk, never as an image in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" * (1 + side * 4)  # filter byte + RGBA zeros
    block, blocks, tail = row * 64, side // 64, row * (side % 64)
    # Compressing 635 MB of zeros took 5 s of a core, in every test process that imported a test using it. A
    # full flush makes the compressor forget what it saw, so each 64-row block after the first compresses to
    # the same bytes: two are compressed and the second repeated. The stream's checksum (Adler-32, its last
    # four bytes) is then set to that of everything it stands for.
    deflate = zlib.compressobj(9)
    parts = []
    if blocks:
        parts.append(deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH))
    if blocks > 1:
        parts.append((deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)) * (blocks - 1))
    parts.append(deflate.compress(tail) + deflate.flush())
    checksum = 1
    for _ in range(blocks):
        checksum = zlib.adler32(block, checksum)
    stream = b"".join(parts)[:-4] + struct.pack(">I", zlib.adler32(tail, checksum))
    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


# Result links a hostile provider could give; FakeProviderServer serves each under /hostile/{kind}/.
HOSTILE_KINDS = ("loop", "drip", "bomb", "redirect", "gzip", "identity-gzip")


def garbage() -> web.Response:
    """Claims JSON, is not: clients must not trust the content type."""
    return web.Response(body=b'{"status": "IN_PROGR\x00<html>502 upstream', content_type="application/json")


class ServerOptions(TypedDict, total=False):
    """The options of FakeProviderServer.__init__ a fake with both job clocks passes through as is."""

    host: str
    port: int
    queued_polls: int
    running_polls: int
    hang_seconds: float
    provider_time: Seconds | None
    queue_time: Seconds | None
    images: ImageStyle
    chaos: Chaos | None


class HeldJob(Protocol):
    """What the base class needs of a fake's job record: whether a hold keeps it from finishing."""

    held: bool


JobT = TypeVar("JobT", bound=HeldJob)


class FakeProviderServer(StartsAndStops, Generic[JobT]):
    """Base of the fake provider servers. Subclasses add routes, the key check, the outcomes and what
    a create request looks like; each keeps the jobs it accepted in ``jobs``, by the id the client sees.
    """

    OUTCOMES: ClassVar[frozenset[str]] = frozenset({"success"})
    NAME: ClassVar[str] = "provider"
    # The longest request body taken (aiohttp's own default, 1 MiB; longer ones are answered 413).
    MAX_REQUEST_BYTES: ClassVar[int] = 1024 * 1024

    def __init__(
        self,
        *,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        queued_polls: int = 1,
        running_polls: int = 1,
        hang_seconds: float = 300.0,
        provider_time: Seconds | None = None,
        queue_time: Seconds | None = None,
        images: ImageStyle = "gradient",
        chaos: Chaos | None = None,
    ) -> None:
        if queue_time is not None and provider_time is None:
            raise ValueError("queue_time needs provider_time (time mode)")
        if images not in get_args(ImageStyle):
            raise ValueError(f"unknown image style {images!r}; choose from {get_args(ImageStyle)}")
        self.api_key = api_key
        self.host = host
        self.port = port
        self.queued_polls = queued_polls
        self.running_polls = running_polls
        # A hung handler waits at most this long (or until stop()), so nothing outlives a test run.
        self.hang_seconds = hang_seconds
        self.requests: list[Recorded] = []
        self._outcomes: deque[str] = deque()
        self._files: dict[str, tuple[int, int] | bytes] = {}
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        # Where /hostile/redirect/... sends the client (e.g. an internal address); set by a test.
        self.redirect_target = "http://127.0.0.2/"
        # Seconds between bytes of /hostile/drip/...: a server that never quite stops sending.
        self.drip_interval = 0.5
        # Time mode when set (see the module docstring); poll-count mode otherwise.
        self.provider_time = provider_time
        self.queue_time = queue_time
        self.images: ImageStyle = images
        # Faults on API calls (see Chaos); may be set or cleared while the fake runs.
        self.chaos = chaos
        self.chaos_events: list[ChaosEvent] = []
        # Each drip or huge answer once it ended: (fault, bytes written before the client hung up).
        self.hostile_answers: list[tuple[Fault, int]] = []
        self._chaos_random: random.Random | None = None
        self._chaos_seeded: Chaos | None = None
        self.jobs: dict[str, JobT] = {}
        # Jobs accepted while this is set start held (see hold()).
        self._holding = False
        # Calls to lose in flight (see lose_next()): [method, path pattern, how many more].
        self._losing: list[tuple[str, re.Pattern[str], list[int]]] = []
        # Creates are refused with a 503 until this wall-clock time (see outage()).
        self._down_until = 0.0
        self._down_retry_after: float | None = None
        self._create_answers_held = False
        self._create_answers_released: asyncio.Event | None = None

    # -- to override --

    def add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def is_authorised(self, request: web.Request) -> bool:
        raise NotImplementedError

    def unauthorised(self) -> web.StreamResponse:
        return web.json_response({"error": "unauthorized"}, status=401)

    def needs_key(self, request: web.Request) -> bool:
        """Whether this path is an API call (key checked) rather than a file download."""
        return not request.path.startswith(("/files/", "/hostile/"))

    def chaos_applies(self, request: web.Request) -> bool:
        """Whether chaos may fall on this request: the API calls, which are those whose key is checked
        here unless a fake checks its key itself (to give its own 401 answers) and says so."""
        return self.needs_key(request)

    def middlewares(self) -> list[Any]:
        return []

    def is_create(self, path: str) -> bool:
        """Whether a POST to ``path`` asks for a new job."""
        raise NotImplementedError

    def rate_limited(self, request: web.Request | None, seconds: float) -> web.StreamResponse:
        """A 429 asking the client to come back in ``seconds``, as this provider words it (chaos's "429").
        SeaArt's gateway shape with Retry-After; each fake answers in its own provider's dialect."""
        body = {"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded (chaos)"}}
        return web.json_response(body, status=429, headers={"Retry-After": f"{seconds:g}"})

    def on_release(self, job: JobT, now: float) -> None:
        """A held job was let go; a subclass moves its clock or wakes whatever waits for it."""

    # -- lifecycle --

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._closing = asyncio.Event()
        app = web.Application(
            middlewares=[self._record_and_authenticate, *self.middlewares()], client_max_size=self.MAX_REQUEST_BYTES
        )
        self.add_routes(app.router)
        app.router.add_get("/files/{name}", self._file)
        app.router.add_get("/hostile/{kind}/{name}", self._hostile)
        # Short shutdown: hung handlers are released by _closing, nothing else is long-lived.
        runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is None:
            return
        assert self._closing is not None
        self._closing.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    @property
    def origin(self) -> str:
        if self._runner is None:
            raise RuntimeError(f"{type(self).__name__} is not started; use `async with {type(self).__name__}()`")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to configure as the provider's base URL (the origin unless the API lives below a path)."""
        return self.origin

    @property
    def image_base_url(self) -> str:
        """Where generated files are served: ``{image_base_url}/{name}.png``."""
        return f"{self.origin}/files"

    # -- scripting --

    def script(self, *outcomes: str) -> None:
        """Queue outcomes for the next create requests, in order; afterwards creates succeed."""
        unknown = [o for o in outcomes if o not in self.OUTCOMES]
        if unknown:
            raise ValueError(f"unknown outcome(s) {unknown}; choose from {sorted(self.OUTCOMES)}")
        self._outcomes.extend(outcomes)

    def next_outcome(self) -> str:
        return self._outcomes.popleft() if self._outcomes else "success"

    @property
    def outcomes(self) -> frozenset[str]:
        """The outcome names ``script()`` accepts."""
        return self.OUTCOMES

    @property
    def creates(self) -> list[Recorded]:
        """Every create request received (rejected ones included), in order."""
        return [r for r in self.requests if r.method == "POST" and self.is_create(r.path)]

    def hold(self, on: bool = True) -> None:
        """While held, jobs accepted do not finish until released. hold(False) releases all."""
        self._holding = on
        if not on:
            self.release()

    def release(self, job_id: str | None = None) -> None:
        """Let one held job (or all) finish: at its next poll, or in time mode once its time is up."""
        now = time.time()
        for key, job in self.jobs.items():
            if (job_id is None or key == job_id) and job.held:
                job.held = False
                self.on_release(job, now)

    def hold_create_answers(self, on: bool = True) -> None:
        """While on, a create is carried out at once (the job is made and runs, as at a provider that took
        it) but its answer waits until this is turned off: the answer of a create that was slow to come
        back. hold_create_answers(False) sends every answer held."""
        self._create_answers_held = on
        if self._create_answers_released is None:
            self._create_answers_released = asyncio.Event()
        if on:
            self._create_answers_released.clear()
        else:
            self._create_answers_released.set()

    def lose_next(self, method: str, path: str, *, times: int = 1) -> None:
        """Lose the next ``times`` calls of ``method`` to a path matching the regex ``path``: recorded,
        never carried out and never answered (until stop() or ``hang_seconds``), like a request that
        died on the way. What a client cannot tell apart from a slow answer."""
        self._losing.append((method.upper(), re.compile(path), [times]))

    def outage(self, seconds: float, *, retry_after: float | None = None) -> None:
        """Refuse every create with a 503 for the next ``seconds`` (nothing is made; status polls, results
        and cancels still work): a provider that is down for new work, which the bot should fail over
        from. Each refusal is in ``chaos_events`` as fault "outage"; with ``retry_after``, it says when to
        come back (a Retry-After header, in seconds)."""
        self._down_until = time.time() + seconds
        self._down_retry_after = retry_after

    def _lost(self, request: web.Request) -> bool:
        for method, pattern, left in self._losing:
            if left[0] > 0 and request.method == method and pattern.search(request.path):
                left[0] -= 1
                return True
        return False

    # -- the job clock --

    def new_job_times(self) -> tuple[float, float | None, float | None]:
        """``(created_at, running_at, ready_at)`` for a job accepted now; the last two only in time mode."""
        now = time.time()
        if self.provider_time is None:
            return now, None, None
        queue = max(0.0, self.queue_time()) if self.queue_time is not None else 0.0
        return now, now + queue, now + queue + max(0.0, self.provider_time())

    def job_state(self, job: JobTimes, answered: int, *, stalled: bool) -> State:
        """A job's state: in time mode as of now, in poll mode as of its ``answered``-th status answer
        (0 = first). A ``stalled`` job (held, or never finishing) stays running."""
        if job.timed:
            return job.time_state(time.time(), stalled=stalled)
        return self.poll_state(answered, stalled=stalled)

    def poll_state(self, answered: int, *, stalled: bool) -> State:
        """Poll mode: a job's state as of its ``answered``-th status answer (0 = first). A ``stalled``
        job (held, or never finishing) stays running."""
        if answered < self.queued_polls:
            return "queued"
        if stalled or answered < self.queued_polls + self.running_polls:
            return "running"
        return "done"

    # -- files --

    def register_image(self, name: str, size: tuple[int, int] | None, *, broken: bool = False) -> str:
        """Serve a PNG of ``size`` (or non-image bytes if ``broken``) at /files/{name}.png; return the URL."""
        self._files[name] = NOT_AN_IMAGE if broken or size is None else size
        return f"{self.image_base_url}/{name}.png"

    def served_size(self, url: object) -> tuple[int, int] | None:
        """The pixel size of the PNG this fake serves at ``url`` (``register_image``), or None: a link
        elsewhere, or a file that is not an image. What a fake that keeps a reference's shape goes by; it
        never downloads anything itself."""
        prefix = f"{self.image_base_url}/" if self._runner is not None else None
        if prefix is None or not isinstance(url, str) or not url.startswith(prefix):
            return None
        spec = self._files.get(url.removeprefix(prefix).removesuffix(".png"))
        return spec if isinstance(spec, tuple) else None

    def first_reference_size(self, urls: object) -> tuple[int, int] | None:
        """``served_size`` of the first link in a create's list of reference links (None if there is none)."""
        return self.served_size(urls[0]) if isinstance(urls, list) and urls else None

    def image_bytes(self, name: str) -> bytes:
        """The bytes served at ``/files/{name}.png`` (generated on first use, then cached)."""
        name = name.removesuffix(".png")
        spec = self._files[name]
        if isinstance(spec, bytes):
            return spec
        if self.images == "noise":
            return noise_png(*spec)
        return result_png(*spec)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"].removesuffix(".png")
        if name not in self._files:
            return web.Response(status=404, text="Not Found")
        data = await asyncio.to_thread(self.image_bytes, name)
        return web.Response(body=data, content_type="image/png")

    def hostile_url(self, kind: str, name: str) -> str:
        """A result link that misbehaves: ``loop`` redirects to itself, ``drip`` sends a byte every
        ``drip_interval`` s, ``bomb`` is :func:`bomb_png`, ``redirect`` sends to ``redirect_target``,
        ``gzip`` is a PNG sent gzip-encoded whatever the client asked for, ``identity-gzip`` the same under
        two Content-Encoding headers, ``identity`` first (httpx decodes every one)."""
        if kind not in HOSTILE_KINDS:
            raise ValueError(f"unknown hostile kind {kind!r}; choose from {HOSTILE_KINDS}")
        return f"{self.origin}/hostile/{kind}/{name}.png"

    async def _hostile(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        if kind == "loop":
            raise web.HTTPFound(location=str(request.rel_url))
        if kind == "redirect":
            raise web.HTTPFound(location=self.redirect_target)
        if kind == "bomb":
            return web.Response(body=await asyncio.to_thread(bomb_png), content_type="image/png")
        if kind == "gzip":  # compressed whatever the client asked for (a gzip bomb would look the same)
            body = gzip.compress(make_png(64, 64))
            return web.Response(body=body, headers={"Content-Type": "image/png", "Content-Encoding": "gzip"})
        if kind == "identity-gzip":  # the same, behind a first header that says it is not compressed
            codings = [("Content-Type", "image/png"), ("Content-Encoding", "identity"), ("Content-Encoding", "gzip")]
            return web.Response(body=gzip.compress(make_png(64, 64)), headers=CIMultiDict(codings))
        if kind != "drip":
            return web.Response(status=404, text="Not Found")
        data = make_png(64, 64)
        response = web.StreamResponse(headers={"Content-Type": "image/png", "Content-Length": str(len(data))})
        await response.prepare(request)
        assert self._closing is not None
        with contextlib.suppress(ConnectionError):  # the client gave up: that is the point
            for index in range(len(data)):
                await response.write(data[index : index + 1])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.drip_interval)
                if self._closing.is_set():
                    break
        return response

    async def _hostile_answer(
        self, fault: Fault, request: web.Request, true_answer: web.StreamResponse
    ) -> web.StreamResponse:
        """The answers of Chaos's ``drip``, ``huge`` and ``deep`` (see Chaos)."""
        chaos = self.chaos  # a test may clear it while this answer is still going out
        assert chaos is not None and self._closing is not None
        if fault == "deep":
            depth = 100_000
            return web.Response(body=b"[" * depth + b"]" * depth, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if fault == "huge":
            response.enable_chunked_encoding()
        sent = 0
        with contextlib.suppress(ConnectionError):  # the client gave up (or was killed): that is the point
            await response.prepare(request)
            if fault == "huge":
                await response.write(b'{"status": "RUNNING", "log": "')
                block = b"x" * 65_536
                for _ in range(chaos.huge_bytes // len(block)):
                    await response.write(block)
                    sent += len(block)
                    if self._closing.is_set():
                        break
                await response.write(b'"}')
            else:
                body = true_answer.body if isinstance(true_answer, web.Response) else None
                data = body if isinstance(body, bytes) else b"{}"
                # The true answer, then JSON's insignificant whitespace for ever: it never ends.
                for index in itertools.count():
                    await response.write(data[index : index + 1] or b" ")
                    sent += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), chaos.drip_seconds)
                    if self._closing.is_set():
                        break
        self.hostile_answers.append((fault, sent))
        return response

    async def hang(self) -> None:
        """Never answer (until stop() or hang_seconds): a request lost in flight."""
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), self.hang_seconds)

    # -- middleware --

    @web.middleware
    async def _record_and_authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await self._recorded_answer(request, handler)
        if self._create_answers_held and request.method == "POST" and self.is_create(request.path):
            await self._until_create_answers_released()
        return response

    async def _until_create_answers_released(self) -> None:
        assert self._closing is not None and self._create_answers_released is not None
        waits = [asyncio.ensure_future(event.wait()) for event in (self._create_answers_released, self._closing)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _recorded_answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived = time.time()
        raw = await request.read()  # cached by aiohttp, handlers can read again
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.path,
                headers=CIMultiDict(request.headers),
                json=body,
                query=dict(request.query),
                body=raw,
                at=arrived,
            )
        )
        if self._lost(request):
            await self.hang()
            return web.json_response({"detail": "lost in flight"}, status=504)
        if arrived < self._down_until and request.method == "POST" and self.is_create(request.path):
            self.chaos_events.append(ChaosEvent(arrived, request.method, request.path, "outage"))
            later = {} if self._down_retry_after is None else {"Retry-After": f"{self._down_retry_after:g}"}
            return web.json_response({"detail": "service unavailable (outage)"}, status=503, headers=later)
        if self.needs_key(request) and not self.is_authorised(request):
            return self.unauthorised()
        if not self.chaos_applies(request) or not self.is_authorised(request):
            return await handler(request)  # a refused key is answered by the fake's own check, not chaos
        fault = self._draw_fault(request)
        if fault is None:
            return await handler(request)
        return await self._inject(fault, request, handler, arrived)

    def _draw_fault(self, request: web.Request) -> Fault | None:
        chaos = self.chaos
        if chaos is None or chaos.rate <= 0 or (chaos.gets_only and request.method != "GET"):
            return None
        if self._chaos_random is None or self._chaos_seeded is not chaos:
            # A new Chaos starts its own seeded sequence.
            self._chaos_random, self._chaos_seeded = random.Random(chaos.seed), chaos
        draw = self._chaos_random
        if draw.random() >= chaos.rate:
            return None
        return draw.choice(chaos.faults)

    async def _inject(self, fault: Fault, request: web.Request, handler: Handler, at: float) -> web.StreamResponse:
        assert self.chaos is not None and self._chaos_random is not None
        chaos = self.chaos
        if fault == "429":
            self.chaos_events.append(ChaosEvent(at, request.method, request.path, fault))
            return self.rate_limited(request, float(chaos.retry_after))
        if fault == "5xx":
            status = self._chaos_random.choice((500, 502, 503))
            self.chaos_events.append(ChaosEvent(at, request.method, request.path, str(status)))
            return web.json_response({"detail": f"upstream failure (chaos {status})"}, status=status)
        self.chaos_events.append(ChaosEvent(at, request.method, request.path, fault))
        # The call is carried out; only its answer goes wrong.
        response = await handler(request)
        if fault == "malformed":
            return garbage()
        if fault in HOSTILE_ANSWERS:
            return await self._hostile_answer(fault, request, response)
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), chaos.hang_seconds)
        return response

    def key_matches(self, presented: str | None) -> bool:
        return presented is not None and secrets.compare_digest(presented.strip(), self.api_key)
