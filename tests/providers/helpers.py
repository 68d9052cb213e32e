"""What the provider tests share: every adapter as the tests build it (against its fake over a socket, or
over httpx.MockTransport for narrow parser cases), the requests they send, and the checks a failure's
message gets. The per-provider files (tests/providers) and the contract (tests/contract) both use it."""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import strategies as st
from PIL import Image

from bot.errors import ProviderError
from bot.models import GenerationRequest, ImageRef, JobHandle, JobUpdate, ReferenceImage, UpdateStatus
from bot.prompts import clean_prompt
from bot.providers._http import RetryPolicy
from bot.providers.base import Capabilities, Provider
from bot.providers.gemini import GeminiProvider
from bot.providers.kie import KieProvider, SinancodeProvider
from bot.providers.seaart import SeaArtProvider
from bot.providers.segmind import SegmindProvider
from bot.testing.providers import FakeGemini, FakeKie, FakeProviderServer, FakeSeaArt, FakeSegmind

NB2 = "nano_banana_2"
PRO = "nano_banana_pro"
PROMPT = "A red apple on a white table, clean studio lighting."
# Short enough that the hang tests finish fast, long enough for a 4K PNG over loopback.
TIMEOUT = httpx.Timeout(2.0)
HANG_TIMEOUT = httpx.Timeout(2.0, read=0.5)
MOCK_KEY = "sk-mock-0123456789"
MOCK_BASE = "https://provider.test"

Fake = FakeProviderServer[Any]


class SleepRecorder:
    """Stands in for asyncio.sleep in the retry loop: records each delay, waits for none of them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@dataclass(frozen=True)
class Adapter:
    """One adapter as the tests run it. ``id`` names the configuration (Segmind runs in two modes),
    ``name`` is what the provider calls itself; ``queued`` is False where the create call answers with
    the image itself. The options go to the fake's and the adapter's constructors."""

    id: str
    name: str
    queued: bool
    fake_class: Callable[..., Fake]
    provider_class: Callable[..., Provider]
    fake_options: dict[str, str] = field(default_factory=dict)
    provider_options: dict[str, str] = field(default_factory=dict)

    def make_fake(self) -> Fake:
        # A hung request waits at most this long, so nothing outlives a test (stop() ends it sooner).
        return self.fake_class(hang_seconds=10.0, **self.fake_options)

    def make_provider(self, **kwargs: Any) -> Provider:
        """The adapter, given its keyword arguments (client, api_key, base_url, timeout, sleep, policy)."""
        return self.provider_class(**self.provider_options, **kwargs)

    def connect(
        self,
        fake: Fake,
        client: httpx.AsyncClient,
        sleep: Callable[[float], Any],
        *,
        timeout: httpx.Timeout = TIMEOUT,
        api_key: str | None = None,
    ) -> Provider:
        """The adapter pointed at ``fake`` with its key (or ``api_key``), the default retry policy."""
        return self.make_provider(
            api_key=api_key or fake.api_key, base_url=fake.base_url, client=client, timeout=timeout, sleep=sleep
        )

    def over_mock(self, handler: Callable[[httpx.Request], Any]) -> Provider:
        """The adapter over httpx.MockTransport (no sockets, so the client needs no closing), trying twice."""
        return self.make_provider(
            api_key=MOCK_KEY,
            base_url=MOCK_BASE,
            client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
            sleep=SleepRecorder(),
            policy=RetryPolicy(max_attempts=2),
        )


ADAPTERS: dict[str, Adapter] = {
    a.id: a
    for a in (
        Adapter("seaart", "seaart", True, FakeSeaArt, SeaArtProvider),
        Adapter("kie", "kie", True, FakeKie, KieProvider, {"flavour": "kie"}),
        Adapter("sinancode", "sinancode", True, FakeKie, SinancodeProvider, {"flavour": "sinancode"}),
        Adapter("segmind_v1", "segmind", False, FakeSegmind, SegmindProvider, provider_options={"mode": "v1"}),
        Adapter("segmind_v2", "segmind", True, FakeSegmind, SegmindProvider, provider_options={"mode": "v2"}),
        Adapter("gemini", "gemini", False, FakeGemini, GeminiProvider),
    )
}
QUEUED = [a.id for a in ADAPTERS.values() if a.queued]
SYNCHRONOUS = [a.id for a in ADAPTERS.values() if not a.queued]


@functools.cache
def models_of(adapter_id: str) -> dict[str, Capabilities]:
    """The models an adapter offers, read from an instance without a network."""
    return ADAPTERS[adapter_id].over_mock(Answers()).models


def fake_fixture(*adapter_ids: str) -> Any:
    """A ``fake`` fixture serving the fake of the adapter named, or of each (test ids: the adapters')."""

    @pytest.fixture(params=adapter_ids if len(adapter_ids) > 1 else None)
    async def fake(request: pytest.FixtureRequest) -> AsyncIterator[Fake]:
        async with ADAPTERS[getattr(request, "param", adapter_ids[0])].make_fake() as server:
            yield server

    return fake


class Answers:
    """A MockTransport handler: creates (POST) and everything else answered from their own lists, the
    last answer repeating; records every request."""

    def __init__(self, create: list[httpx.Response] | None = None, poll: list[httpx.Response] | None = None):
        self.create = create or [httpx.Response(500)]
        self.poll = poll or [httpx.Response(500)]
        self.calls: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        answers = self.create if request.method == "POST" else self.poll
        return answers.pop(0) if len(answers) > 1 else answers[0]


def ref(n: int, content_type: str = "image/png", size: int = 1000) -> ReferenceImage:
    return ReferenceImage(
        url=f"https://cdn.example.test/ref-{n}.png", content_type=content_type, size=size, filename=f"r{n}.png"
    )


def req(model: str = NB2, **kw: Any) -> GenerationRequest:
    return GenerationRequest(model=model, prompt=kw.pop("prompt", PROMPT), **kw)


async def run_to_end(provider: Provider, handle: JobHandle, max_polls: int = 10) -> list[JobUpdate]:
    """Poll until the job ends (a synchronous adapter's first poll hands back its answer)."""
    updates = []
    for _ in range(max_polls):
        update = await provider.poll(handle)
        updates.append(update)
        if update.status not in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            break
    return updates


async def final(provider: Provider, request: GenerationRequest | None = None) -> JobUpdate:
    return (await run_to_end(provider, await provider.submit(request or req())))[-1]


async def image_bytes(image: ImageRef, client: httpx.AsyncClient) -> bytes:
    """What delivery would get: the bytes in the answer, or a download of the link."""
    if image.data is not None:
        return image.data
    assert image.url is not None
    download = await client.get(image.url)
    assert download.headers["content-type"] == "image/png"
    return download.content


def picture_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()
        return picture.size


def assert_user_safe(message: str | None, fake: Fake) -> None:
    """A failure's message for members: present, and without links, addresses, keys or raw JSON."""
    assert message, "every failure needs a user-facing message"
    lowered = message.lower()
    # Segmind's key error names its console; the message must not pass that on either.
    assert "http" not in lowered and "127.0.0.1" not in message and "segmind.com" not in lowered
    assert fake.api_key not in message
    assert "{" not in message  # no raw JSON


async def assert_create_refused(provider: Provider, error_type: type[ProviderError]) -> ProviderError:
    """A create the provider answered with an error: exactly that error, told without the key or links."""
    with pytest.raises(error_type) as info:
        await provider.submit(req())
    error = info.value
    assert type(error) is error_type
    assert MOCK_KEY not in error.detail and "http" not in error.user_message
    return error


# --- hypothesis strategies -------------------------------------------------------------------------


def references(caps: Capabilities) -> st.SearchStrategy[ReferenceImage]:
    """Reference images ``caps`` accepts (each within its size limit, any of its image types)."""
    return st.builds(
        ReferenceImage,
        url=st.integers(0, 99).map(lambda n: f"https://cdn.example.test/r{n}.png"),
        content_type=st.sampled_from(["image/png", "image/jpeg", "image/webp", "IMAGE/PNG; charset=binary"]),
        size=st.integers(0, caps.max_reference_bytes),
    )


def valid_requests(caps: Capabilities) -> st.SearchStrategy[GenerationRequest]:
    """Any request ``caps`` says it takes: every option it offers, within every limit it has."""
    short = st.text(min_size=1, max_size=300).filter(lambda s: clean_prompt(s) != "")
    long = st.integers(1, caps.max_prompt_chars).map(lambda n: "a" * n)

    def maybe(values: tuple[str, ...]) -> st.SearchStrategy[str | None]:
        return st.none() | st.sampled_from(values) if values else st.none()

    return st.builds(
        GenerationRequest,
        model=st.just(caps.model),
        prompt=short | long,
        reference_images=st.lists(references(caps), max_size=caps.max_reference_images).map(tuple),
        aspect_ratio=maybe(caps.aspect_ratios),
        resolution=maybe(caps.resolutions),
        seed=st.none() | st.integers(0, 2**31 - 1) if caps.seed else st.none(),
        output_format=maybe(caps.output_formats),
        thinking_level=maybe(caps.thinking_levels),
        web_search=st.booleans() if caps.web_search else st.just(False),
        safety_tolerance=st.none() | st.integers(1, 6),
    )
